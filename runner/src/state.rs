//! The state file: the last good context, replaced atomically after every step.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use groundup_contracts::Context;

pub use groundup_runtime::state::{beside, check_name, load, load_existing, DEFAULT_STATE};

/// Held while a command changes the cluster: a second `up` or `down --yes` on the same state
/// file refuses to start instead of racing the first. The steps inherit the lock (see
/// [`StateLock::fd`]), so it is held until the runner and every step it started
/// are gone, however they end. The lock file is removed when the command ends.
pub struct StateLock {
    file: std::fs::File,
    path: PathBuf,
}

pub fn lock(path: &Path) -> Result<StateLock> {
    let lock_path = lock_path(path);
    loop {
        let file = open_lock_file(&lock_path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "another groundup is changing the cluster of {} (it, or a step it started, holds {}); wait for it to finish, nothing was changed",
                path.display(),
                lock_path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()))
            }
        }
        // The previous holder removes the file as it ends: a lock on a removed (or replaced)
        // file guards nothing, so take the one the path names now.
        if !still_named_by(&file, &lock_path) {
            continue;
        }
        // Holding the lock, any half-written state file is from a run that was killed.
        for partial in groundup_runtime::state::partial_saves(path) {
            let _ = std::fs::remove_file(partial);
        }
        return Ok(StateLock { file, path: lock_path });
    }
}

/// Owner-only, and never through a symbolic link: a link would let the lock create or
/// truncate a file elsewhere.
fn open_lock_file(lock_path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(lock_path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => anyhow!(
                "the lock file {} is a symbolic link; remove it (groundup makes its own), nothing was changed",
                lock_path.display()
            ),
            _ => anyhow!("cannot open the lock file {}: {e}", lock_path.display()),
        })
}

fn still_named_by(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(held), Ok(named)) => held.dev() == named.dev() && held.ino() == named.ino(),
        _ => false,
    }
}

impl StateLock {
    /// The lock's file descriptor, for a step to inherit (see `step::run_step`): the lock
    /// is then held while the step lives, even if the runner is killed.
    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.file.as_raw_fd()
    }
}

impl Drop for StateLock {
    /// Removed while still held, so no other run can have taken the lock on this file.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn lock_path(path: &Path) -> PathBuf {
    beside(path, ".lock")
}

pub fn save(path: &Path, context: &Context) -> Result<()> {
    groundup_runtime::state::save(context, path)
        .with_context(|| format!("cannot replace the state file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The step harness's hint (`pass --state FILE`) is for a step, not for the runner.
    #[test]
    fn an_empty_state_file_gets_the_runners_own_hint() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("groundup.json");
        std::fs::write(&state, "").unwrap();
        let error = format!("{:#}", load(&state).unwrap_err());
        assert!(error.contains("is empty") && error.contains("--in-place"), "{error}");
        assert!(!error.contains("pass --state"), "{error}");
    }

    #[test]
    fn the_lock_file_is_private_and_gone_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("groundup.json");
        let held = lock(&state).unwrap();
        let lock_file = dir.path().join("groundup.json.lock");
        assert_eq!(lock_file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        assert!(lock(&state).err().expect("locked twice").to_string().contains("another groundup"));
        drop(held);
        assert!(!lock_file.exists(), "the lock file was left behind");
        drop(lock(&state).unwrap());
    }

    #[test]
    fn a_symbolic_link_as_lock_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("precious");
        std::fs::write(&elsewhere, "keep me").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("groundup.json.lock")).unwrap();
        let error = lock(&dir.path().join("groundup.json")).err().expect("a symlinked lock file was used");
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "keep me");
        assert!(dir.path().join("groundup.json.lock").symlink_metadata().unwrap().file_type().is_symlink());
    }

    #[test]
    fn a_lock_on_a_file_removed_meanwhile_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let lock_file = dir.path().join("groundup.json.lock");
        let stale = open_lock_file(&lock_file).unwrap();
        std::fs::remove_file(&lock_file).unwrap();
        std::fs::write(&lock_file, "").unwrap();
        assert!(!still_named_by(&stale, &lock_file));
        assert!(still_named_by(&open_lock_file(&lock_file).unwrap(), &lock_file));
    }
}
