//! The state file: the last good context, replaced atomically after every step.

use std::path::Path;

use anyhow::{anyhow, bail, Context as _, Result};
use groundup_contracts::Context;

pub const DEFAULT_STATE: &str = "groundup.json";

pub fn load(path: &Path) -> Result<Option<Context>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Context::from_json(&text)
            .map(Some)
            .with_context(|| format!("the state file {} is unusable; it was left as it is", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read the state file {}", path.display())),
    }
}

/// The state file of an existing cluster, for commands that only make sense on one (`down`,
/// `up --plan`); `expected` guards scripts against acting on another cluster's file.
pub fn load_existing(path: &Path, expected: Option<&str>) -> Result<Context> {
    let context = load(path)?.ok_or_else(|| {
        anyhow!(
            "no state file at {}; write one first: `groundup init --name NAME [--endpoint URL | --aws] > {}`",
            path.display(),
            path.display()
        )
    })?;
    check_name(path, &context, expected)?;
    Ok(context)
}

pub fn check_name(path: &Path, context: &Context, expected: Option<&str>) -> Result<()> {
    match expected {
        Some(name) if name != context.cluster.name => bail!(
            "the state file {} is for cluster `{}`, not `{name}`; nothing was changed",
            path.display(),
            context.cluster.name
        ),
        _ => Ok(()),
    }
}

/// Held while a command changes the cluster: a second `up` or `down --yes` on the same state
/// file refuses to start instead of racing the first. The OS drops the lock when the process
/// ends, however it ends.
pub struct StateLock {
    _file: std::fs::File,
}

pub fn lock(path: &Path) -> Result<StateLock> {
    let lock_path = lock_path(path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open the lock file {}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another groundup is changing the cluster of {} (it holds {}); wait for it to finish, nothing was changed",
            path.display(),
            lock_path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()))
        }
    }
    // Holding the lock, any half-written state file is from a run that was killed.
    for partial in groundup_contracts::context::partial_saves(path) {
        let _ = std::fs::remove_file(partial);
    }
    Ok(StateLock { _file: file })
}

fn lock_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

pub fn save(path: &Path, context: &Context) -> Result<()> {
    context.save(path).with_context(|| format!("cannot replace the state file {}", path.display()))
}
