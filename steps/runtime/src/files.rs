//! A cluster's local files (PKI, SSH key): the one way groundup makes, writes and removes them.
//!
//! Where they live: relative paths in the context (`params.pki.dir`, `params.ssh_dir`) are
//! relative to the cluster's home, the directory that holds its state file. `groundup` runs
//! every step there; a step run by hand uses its working directory.
//!
//! Each directory belongs to one cluster: `.groundup-owner` holds the cluster's name, and
//! `.groundup-files` lists (one relative path a line) every file groundup wrote there, so that
//! a purge removes exactly those, then the directory if nothing else is left. A directory that
//! is a symbolic link, belongs to another user, is writable by group or others, or belongs to
//! another cluster is refused. Below a cluster's directory every path is walked one component
//! at a time (`openat` with `O_NOFOLLOW | O_DIRECTORY`, then `mkdirat` or `unlinkat`), so a
//! symbolic link at any depth is refused, naming it, and nothing is written or removed
//! through it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use groundup_contracts::paths::is_plain_relative;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::RuntimeError;

pub const OWNER_FILE: &str = ".groundup-owner";
pub const MANIFEST_FILE: &str = ".groundup-files";
/// `*`: git never shows (so `git add -A` never commits) a key or a copy of one.
pub const GITIGNORE: &str = ".gitignore";
const PARTIAL: &str = ".partial";

/// The directory a state file's cluster lives in: the state file's own.
pub fn home_of(state_file: &Path) -> &Path {
    state_file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Who owns `dir`: `None` if it has no owner file (missing or not made by groundup).
pub fn owner_of(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(OWNER_FILE)).ok().map(|s| s.trim().to_string())
}

/// The directory a new cluster gets: `default` unless another cluster (or something groundup
/// did not make) is already there, then `<default>-<cluster>`.
pub fn free_dir(home: &Path, default: &str, cluster: &str) -> String {
    let path = home.join(default);
    let usable = match owner_of(&path) {
        Some(owner) => owner == cluster,
        None => std::fs::read_dir(&path).map_or(true, |mut entries| entries.next().is_none()),
    };
    if usable {
        default.to_string()
    } else {
        format!("{default}-{cluster}")
    }
}

/// A directory of one cluster, checked and claimed. [`ClusterDir::lock`] serialises writers.
pub struct ClusterDir {
    path: PathBuf,
    /// The directory itself, opened without following a link: every path below starts here.
    dir: File,
    owner_file: File,
}

/// What [`ClusterDir::write_once`] found: its own bytes went in, or another writer's were there.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    New,
    Existing(Vec<u8>),
}

impl ClusterDir {
    /// Opens `path` for `cluster`, making it (0700) if missing and claiming it if unclaimed.
    pub fn open(path: impl Into<PathBuf>, cluster: &str) -> Result<ClusterDir, RuntimeError> {
        let path = path.into();
        private_dir(&path)?;
        let dir = open_checked(&path)?;
        claim(&path, cluster)?;
        let owner_file = File::open(path.join(OWNER_FILE)).map_err(|e| fail(&path, e))?;
        let dir = ClusterDir { path, dir, owner_file };
        if std::fs::symlink_metadata(dir.path.join(GITIGNORE)).is_err() {
            dir.write_once(GITIGNORE, b"*\n", 0o644)?;
        }
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits until no other groundup writes in this directory; held until `self` is dropped.
    pub fn lock(&self) -> Result<(), RuntimeError> {
        self.owner_file.lock().map_err(|e| io("lock", &self.path, e))
    }

    /// Replaces `relative` atomically (see [`write_atomic`]), recorded before it exists.
    pub fn write(&self, relative: &str, bytes: &[u8], mode: u32) -> Result<PathBuf, RuntimeError> {
        let target = self.prepare(relative)?;
        write_atomic(&target, bytes, mode)?;
        Ok(target)
    }

    /// Writes `relative` only if it does not exist (see [`write_new`]), recorded before it
    /// exists. The loser of a race gets the winner's bytes to check.
    pub fn write_once(&self, relative: &str, bytes: &[u8], mode: u32) -> Result<Written, RuntimeError> {
        let target = self.prepare(relative)?;
        write_new(&target, bytes, mode)
    }

    /// Whether groundup wrote `relative` here (it is in the directory's record).
    pub fn is_ours(&self, relative: &str) -> bool {
        recorded(&self.path).iter().any(|r| r == relative)
    }

    /// Removes a file of ours (a key that never signed anything, left by a killed run).
    pub fn remove(&self, relative: &str) -> Result<(), RuntimeError> {
        let (parent, name) = self.split(relative)?;
        let Some(parent) = open_below(&self.dir, &self.path, parent, false)? else { return Ok(()) };
        match rustix::fs::unlinkat(&parent, name, AtFlags::empty()) {
            Err(e) if e != Errno::NOENT => Err(fail(&self.path.join(relative), e)),
            _ => Ok(()),
        }
    }

    /// Removes a file of ours, then each directory above it (up to this one) that it leaves
    /// empty, component by component like [`ClusterDir::remove`]: what a bundle no longer
    /// lists goes without a trace.
    pub fn remove_emptied(&self, relative: &str) -> Result<(), RuntimeError> {
        self.remove(relative)?;
        let (mut emptied, _) = self.split(relative)?;
        while let (Some(above), Some(name)) = (emptied.parent(), emptied.file_name()) {
            let Some(above_fd) = open_below(&self.dir, &self.path, above, false)? else { break };
            if rustix::fs::unlinkat(&above_fd, name, AtFlags::REMOVEDIR).is_err() {
                break;
            }
            emptied = above;
        }
        Ok(())
    }

    /// Moves the file `from` to `to` (both relative), never over an existing file. `to` is
    /// recorded before it exists, so a purge still removes it. A crash leaves the file at
    /// `from`, at both names (a second call finishes the move), or at `to`.
    pub fn move_file(&self, from: &str, to: &str) -> Result<PathBuf, RuntimeError> {
        let (from_parent, _) = self.split(from)?;
        open_below(&self.dir, &self.path, from_parent, false)?;
        let target = self.prepare(to)?;
        let source = self.path.join(from);
        match std::fs::hard_link(&source, &target) {
            Err(e) if !(e.kind() == std::io::ErrorKind::AlreadyExists && same_file(&source, &target)) => {
                return Err(fail(&target, e))
            }
            _ => {}
        }
        std::fs::remove_file(&source).map_err(|e| fail(&source, e))?;
        Ok(target)
    }

    /// Checks `relative`, makes its directory one component at a time (never through a
    /// symbolic link) and records it (before it exists, so a crash cannot leave an unrecorded
    /// file).
    fn prepare(&self, relative: &str) -> Result<PathBuf, RuntimeError> {
        let (parent, _) = self.split(relative)?;
        open_below(&self.dir, &self.path, parent, true)?;
        self.record(relative)?;
        Ok(self.path.join(relative))
    }

    /// `relative`'s directory (relative too) and its file name, once proven plain.
    fn split<'a>(&self, relative: &'a str) -> Result<(&'a Path, &'a std::ffi::OsStr), RuntimeError> {
        let path = Path::new(relative);
        match (is_plain_relative(path), path.parent(), path.file_name()) {
            (true, Some(parent), Some(name)) => Ok((parent, name)),
            _ => Err(RuntimeError::NotInside { relative: relative.into(), dir: self.path.clone() }),
        }
    }

    fn record(&self, relative: &str) -> Result<(), RuntimeError> {
        let manifest = self.path.join(MANIFEST_FILE);
        if manifest_text(&self.path).lines().any(|line| line == relative) {
            return Ok(());
        }
        // One short append per line: concurrent writers never interleave within a line.
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&manifest)
            .and_then(|mut f| f.write_all(format!("{relative}\n").as_bytes()))
            .map_err(|e| fail(&manifest, e))
    }
}

/// The one atomic write: `bytes` go to a fresh temporary file beside `target`, with `mode`
/// from the moment it exists, synced, then renamed over `target`. A crash leaves the old file
/// or the new one, never half of one (and at worst a `.<name>.*.partial` that [`partials_of`]
/// finds).
pub fn write_atomic(target: &Path, bytes: &[u8], mode: u32) -> Result<(), RuntimeError> {
    let temporary = temporary_copy(target, bytes, mode)?;
    std::fs::rename(&temporary, target).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        fail(target, e)
    })
}

/// Writes `target` only if it does not exist: a hard link of a complete temporary file, so
/// two writers cannot both win and nobody sees half a file. The loser gets the winner's bytes.
pub fn write_new(target: &Path, bytes: &[u8], mode: u32) -> Result<Written, RuntimeError> {
    let temporary = temporary_copy(target, bytes, mode)?;
    let linked = std::fs::hard_link(&temporary, target);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(Written::New),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read(target).map(Written::Existing).map_err(|e| fail(target, e))
        }
        Err(e) => Err(fail(target, e)),
    }
}

fn temporary_copy(target: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf, RuntimeError> {
    let temporary = partial_name(target);
    let mut file =
        OpenOptions::new().write(true).create_new(true).mode(mode).open(&temporary).map_err(|e| fail(&temporary, e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| fail(&temporary, e))?;
    Ok(temporary)
}

/// `.<name>.<pid>.<n>.partial`: unique, so concurrent writers never share a temporary file.
fn partial_name(target: &Path) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = target.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    target.with_file_name(format!(".{name}.{}.{n}{PARTIAL}", std::process::id()))
}

/// Whether `name` is a temporary file of a write (see [`partial_name`]), which only a killed
/// write leaves behind: never part of what a cluster's directory holds.
pub fn is_partial(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('.') && name.ends_with(PARTIAL)
}

/// The temporary files of writes of `target` that were killed midway (see [`partial_name`]).
pub fn partials_of(target: &Path) -> Vec<PathBuf> {
    let name = target.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let prefix = format!(".{name}.");
    let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| is_partial(n) && n.to_string_lossy().starts_with(&prefix)))
        .collect()
}

/// Whether two paths are one file (the two names a killed move left).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::symlink_metadata(a), std::fs::symlink_metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Opens the directory `relative` (normal components only) below the open directory `base`
/// (which is at `base_path`), one component at a time, each with `O_NOFOLLOW | O_DIRECTORY`:
/// a symbolic link at any depth is refused, naming it. With `make`, a missing component is
/// made (0700) in the directory just opened; without, a missing one is `None`.
fn open_below(base: impl AsFd, base_path: &Path, relative: &Path, make: bool) -> Result<Option<OwnedFd>, RuntimeError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut current = rustix::fs::openat(base, ".", flags, Mode::empty()).map_err(|e| fail(base_path, e))?;
    let mut at = base_path.to_path_buf();
    for component in relative.components() {
        let Component::Normal(name) = component else {
            return Err(RuntimeError::NotInside { relative: relative.display().to_string(), dir: base_path.into() });
        };
        at.push(name);
        if make {
            match rustix::fs::mkdirat(&current, name, Mode::RWXU) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(fail(&at, e)),
            }
        }
        current = match rustix::fs::openat(&current, name, flags, Mode::empty()) {
            Ok(next) => next,
            Err(Errno::NOENT) if !make => return Ok(None),
            Err(e) => {
                let is_link = rustix::fs::statat(&current, name, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::Symlink);
                return Err(match is_link {
                    true => RuntimeError::LinkBelow(at),
                    false => fail(&at, e),
                });
            }
        };
    }
    Ok(Some(current))
}

fn fail(path: &Path, e: impl std::fmt::Display) -> RuntimeError {
    io("write", path, e)
}

fn io(action: &'static str, path: &Path, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Io { action, path: path.into(), cause: e.to_string() }
}

/// A directory of this user's alone: made 0700 (whatever the umask) if missing; an existing one
/// must be a real directory, not a symbolic link, owned by this user and not writable by group
/// or others (anyone who can write it can plant a key, a CA or a program); a loose mode of our
/// own directory is tightened to 0700. The cluster's directories and the emulator's use it.
pub fn private_dir(path: &Path) -> Result<(), RuntimeError> {
    let created = match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(|e| fail(path, e))?;
            true
        }
        Err(e) => return Err(fail(path, e)),
    };
    let dir = open_checked(path)?;
    if created || dir.metadata().map_err(|e| fail(path, e))?.mode() & 0o077 != 0 {
        // Ours (checked above): 0700 whatever the umask, and a loose mode is tightened.
        dir.set_permissions(std::fs::Permissions::from_mode(0o700)).map_err(|e| fail(path, e))?;
    }
    Ok(())
}

/// Opens a directory without following a symbolic link, and refuses one that another user
/// owns or that group or others may write.
fn open_checked(path: &Path) -> Result<File, RuntimeError> {
    let dir = OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW).open(path).map_err(
        |e| match e.raw_os_error() {
            Some(libc::ELOOP | libc::ENOTDIR) if path.is_symlink() => RuntimeError::LinkDir(path.into()),
            Some(libc::ENOTDIR) => RuntimeError::NotADirectory(path.into()),
            _ => io("open", path, e),
        },
    )?;
    let meta = dir.metadata().map_err(|e| fail(path, e))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(RuntimeError::NotYours { path: path.into(), owner: meta.uid(), me });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(RuntimeError::Loose { path: path.into(), mode: meta.mode() & 0o777 });
    }
    Ok(dir)
}

/// Writes the owner file if there is none (complete or absent, never half); refuses a
/// directory another cluster owns.
fn claim(path: &Path, cluster: &str) -> Result<(), RuntimeError> {
    // Claimed already (every step after the first opens its directories again): no write,
    // which would make, sync and unlink a temporary file each time. Else read again after the
    // write: another writer may have won.
    let owner = match owner_of(path) {
        Some(owner) => Some(owner),
        None => {
            write_new(&path.join(OWNER_FILE), format!("{cluster}\n").as_bytes(), 0o600)?;
            owner_of(path)
        }
    };
    match owner {
        Some(owner) if owner == cluster => Ok(()),
        owner => Err(RuntimeError::OtherCluster {
            path: path.into(),
            owner: owner.unwrap_or_default(),
            cluster: cluster.into(),
        }),
    }
}

/// The files groundup recorded in `dir`, each a plain relative path, without repeats.
pub fn recorded(dir: &Path) -> Vec<String> {
    let text = manifest_text(dir);
    let mut seen = std::collections::HashSet::new();
    text.lines().filter(|l| is_plain_relative(Path::new(l)) && seen.insert(*l)).map(str::to_string).collect()
}

/// The manifest of `dir` as it is on disk: empty if there is none yet.
fn manifest_text(dir: &Path) -> String {
    let mut text = String::new();
    let _ = File::open(dir.join(MANIFEST_FILE)).and_then(|mut f| f.read_to_string(&mut text));
    text
}

/// The files groundup recorded in `dir` that are still there and that `wanted` no longer names
/// (the directory's `.gitignore` always stays): what a step that converges the directory
/// removes.
pub fn unwanted(dir: &Path, wanted: impl Fn(&str) -> bool) -> Vec<String> {
    recorded(dir)
        .into_iter()
        .filter(|file| file != GITIGNORE && !wanted(file))
        .filter(|file| std::fs::symlink_metadata(dir.join(file)).is_ok_and(|m| m.is_file()))
        .collect()
}

/// The files of [`unwanted`] kind that belong to something no longer `kept` (`owner` says what
/// a file belongs to, e.g. a node's hostname, or `None`: such a file stays), grouped by owner
/// in the order first seen: what goes with a node that is gone.
pub fn unwanted_by(dir: &Path, owner: fn(&str) -> Option<&str>, kept: &[&str]) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for file in unwanted(dir, |file| owner(file).is_none_or(|o| kept.contains(&o))) {
        let Some(of) = owner(&file).map(String::from) else { continue };
        match groups.iter_mut().find(|(o, _)| *o == of) {
            Some((_, files)) => files.push(file),
            None => groups.push((of, vec![file])),
        }
    }
    groups
}

/// Removes what groundup wrote in `home/dir` for `cluster`: the recorded files, then the
/// directories they leave empty, then the records and the directory itself if empty. Never
/// `home` or a directory above it, never a file it did not record, never anything through a
/// symbolic link: one anywhere below `home` refuses the whole directory before anything is
/// removed. Returns what it removed.
pub fn purge(home: &Path, dir: &str, cluster: &str) -> Result<Vec<PathBuf>, RuntimeError> {
    let path = home.join(dir);
    // A plain relative directory is walked from the home; one outside it (allowed by a flag)
    // is opened as given, its last component never followed.
    let root = if is_plain_relative(Path::new(dir)) {
        let home_dir = File::open(home).map_err(|e| fail(home, e))?;
        match open_below(&home_dir, home, Path::new(dir), false)? {
            None => return Ok(Vec::new()),
            Some(root) => root,
        }
    } else {
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            _ => open_checked(&path)?.into(),
        }
    };
    drop(open_checked(&path)?);
    match owner_of(&path) {
        Some(owner) if owner == cluster => {}
        Some(owner) => {
            return Err(RuntimeError::NotPurged { path, why: format!("belongs to cluster `{owner}`, not `{cluster}`") })
        }
        None => {
            let why = format!(
                "has no {OWNER_FILE}: groundup did not make it (or an older version did); remove its files by hand"
            );
            return Err(RuntimeError::NotPurged { path, why });
        }
    }
    let files = recorded(&path);
    // Every directory a recorded file lies in, walked before anything goes.
    let mut parents = std::collections::BTreeMap::new();
    for relative in &files {
        for parent in Path::new(relative).ancestors().skip(1) {
            if !parents.contains_key(parent) {
                parents.insert(parent.to_path_buf(), open_below(&root, &path, parent, false)?);
            }
        }
    }
    let mut removed = Vec::new();
    let unlink = |parent: &Path, name: &std::ffi::OsStr, flags: AtFlags| match &parents[parent] {
        Some(fd) => rustix::fs::unlinkat(fd, name, flags).map(|()| true),
        None => Ok(false),
    };
    for relative in &files {
        let parent = Path::new(relative).parent().unwrap_or(Path::new(""));
        let target = path.join(relative);
        for file in std::iter::once(target.clone()).chain(partials_of(&target)) {
            let name = file.file_name().expect("a recorded file has a name");
            let plain_file = parents[parent].as_ref().is_some_and(|fd| {
                rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) != FileType::Directory)
            });
            if plain_file {
                unlink(parent, name, AtFlags::empty()).map_err(|e| io("remove", &file, e))?;
                removed.push(file);
            }
        }
    }
    // Deepest first, so a directory's subdirectories go before it.
    for dir in parents.keys().rev().filter(|d| !d.as_os_str().is_empty()) {
        let (parent, name) = (dir.parent().unwrap_or(Path::new("")), dir.file_name().expect("a normal component"));
        if parents.contains_key(parent) && unlink(parent, name, AtFlags::REMOVEDIR).unwrap_or(false) {
            removed.push(path.join(dir));
        }
    }
    for record in [MANIFEST_FILE, OWNER_FILE] {
        let _ = rustix::fs::unlinkat(&root, record, AtFlags::empty());
    }
    if !encloses(&path, home) && std::fs::remove_dir(&path).is_ok() {
        removed.push(path);
    }
    Ok(removed)
}

/// Whether `dir` is `home` or one of its ancestors (a `.` or `..` that was allowed).
fn encloses(dir: &Path, home: &Path) -> bool {
    match (dir.canonicalize(), home.canonicalize()) {
        (Ok(dir), Ok(home)) => home.starts_with(dir),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn a_new_dir_is_private_whatever_the_umask_and_claimed() {
        let home = tempfile::tempdir().unwrap();
        // SAFETY: umask has no preconditions; 0 is the most permissive mask.
        let old = unsafe { libc::umask(0) };
        let dir = ClusterDir::open(home.path().join("a/pki"), "c1");
        unsafe { libc::umask(old) };
        let dir = dir.unwrap();
        assert_eq!(mode(dir.path()), 0o700);
        assert_eq!(owner_of(dir.path()).as_deref(), Some("c1"));
        let written = dir.write("sub/k.pem", b"secret", 0o600).unwrap();
        assert_eq!(mode(&written), 0o600);
        assert_eq!(mode(&home.path().join("a/pki/sub")), 0o700);
    }

    #[test]
    fn another_clusters_dir_is_refused_and_a_loose_own_dir_tightened() {
        let home = tempfile::tempdir().unwrap();
        ClusterDir::open(home.path().join("pki"), "a").unwrap();
        let error = ClusterDir::open(home.path().join("pki"), "b").err().unwrap().to_string();
        assert!(error.contains("belongs to cluster `a`"), "{error}");
        std::fs::set_permissions(home.path().join("pki"), std::fs::Permissions::from_mode(0o750)).unwrap();
        ClusterDir::open(home.path().join("pki"), "a").unwrap();
        assert_eq!(mode(&home.path().join("pki")), 0o700);
    }

    #[test]
    fn symlinks_foreign_and_writable_dirs_are_refused_and_left_alone() {
        let home = tempfile::tempdir().unwrap();
        let target = home.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&target, home.path().join("ssh")).unwrap();
        let error = ClusterDir::open(home.path().join("ssh"), "c").err().unwrap().to_string();
        assert!(error.contains("symbolic link"), "{error}");
        assert_eq!(mode(&target), 0o755, "the link's target was changed");

        let open = home.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = ClusterDir::open(&open, "c").err().unwrap().to_string();
        assert!(error.contains("writable by group or others"), "{error}");
        assert_eq!(mode(&open), 0o777);
        assert!(!open.join(OWNER_FILE).exists());

        let foreign = home.path().join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        std::os::unix::fs::chown(&foreign, Some(4321), Some(4321)).unwrap();
        std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o755)).unwrap();
        let error = ClusterDir::open(&foreign, "c").err().unwrap().to_string();
        assert!(error.contains("belongs to user 4321"), "{error}");
        assert_eq!(mode(&foreign), 0o755);
    }

    #[test]
    fn a_symlink_at_any_depth_is_refused_naming_it_and_nothing_is_written_or_removed_through_it() {
        let home = tempfile::tempdir().unwrap();
        let foreign = home.path().join("foreign");
        std::fs::create_dir_all(foreign.join("var/lib/kubelet")).unwrap();
        std::fs::write(foreign.join("var/lib/kubelet/kubeconfig"), "theirs").unwrap();
        let dir = ClusterDir::open(home.path().join("nodes"), "c").unwrap();
        for host in ["ip-1", "ip-2"] {
            dir.write(&format!("{host}/var/lib/kubelet/kubeconfig"), b"ours", 0o600).unwrap();
            dir.write(&format!("{host}/var/lib/kubelet/key.pem"), b"ours", 0o600).unwrap();
        }
        // One link at the top of a bundle, one deep inside another.
        std::fs::remove_dir_all(home.path().join("nodes/ip-1")).unwrap();
        std::os::unix::fs::symlink(&foreign, home.path().join("nodes/ip-1")).unwrap();
        std::fs::remove_dir_all(home.path().join("nodes/ip-2/var/lib")).unwrap();
        std::os::unix::fs::symlink(foreign.join("var/lib"), home.path().join("nodes/ip-2/var/lib")).unwrap();

        for (host, link) in [("ip-1", "nodes/ip-1"), ("ip-2", "nodes/ip-2/var/lib")] {
            let error =
                dir.write(&format!("{host}/var/lib/kubelet/new-key.pem"), b"key", 0o600).unwrap_err().to_string();
            assert!(error.contains(&format!("{link} is a symbolic link")), "{error}");
            let error = dir.remove(&format!("{host}/var/lib/kubelet/kubeconfig")).unwrap_err().to_string();
            assert!(error.contains(&format!("{link} is a symbolic link")), "{error}");
        }
        assert!(!foreign.join("var/lib/kubelet/new-key.pem").exists(), "a key was written through a link");
        let error = purge(home.path(), "nodes", "c").unwrap_err().to_string();
        assert!(error.contains("symbolic link") && error.contains("nodes/ip-"), "{error}");
        assert_eq!(std::fs::read(foreign.join("var/lib/kubelet/kubeconfig")).unwrap(), b"theirs");
        assert!(home.path().join("nodes/.groundup-files").exists(), "a refused purge removed something");

        // The whole directory a link: refused the same way.
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", home.path().join("a")).unwrap();
        let error = purge(home.path(), "a/nodes", "c").unwrap_err().to_string();
        assert!(error.contains("a is a symbolic link"), "{error}");
    }

    #[test]
    fn write_once_has_one_winner_and_the_losers_see_its_bytes() {
        let home = tempfile::tempdir().unwrap();
        let dir = ClusterDir::open(home.path().join("pki"), "c").unwrap();
        let barrier = std::sync::Barrier::new(8);
        let outcomes: Vec<(Vec<u8>, Written)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8u8)
                .map(|i| {
                    let (dir, barrier) = (&dir, &barrier);
                    scope.spawn(move || {
                        let mine = vec![i; 4096];
                        barrier.wait();
                        (mine.clone(), dir.write_once("ca-key.pem", &mine, 0o600).unwrap())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<&Vec<u8>> = outcomes.iter().filter(|(_, w)| *w == Written::New).map(|(m, _)| m).collect();
        assert_eq!(winners.len(), 1);
        let on_disk = std::fs::read(dir.path().join("ca-key.pem")).unwrap();
        assert_eq!(&on_disk, winners[0]);
        for (_, outcome) in &outcomes {
            assert!(matches!(outcome, Written::New) || *outcome == Written::Existing(on_disk.clone()));
        }
        assert_eq!(dir.write_once("ca-key.pem", b"other", 0o600).unwrap(), Written::Existing(on_disk.clone()));
        assert_eq!(std::fs::read(dir.path().join("ca-key.pem")).unwrap(), on_disk, "a write-once file was replaced");
    }

    #[test]
    fn a_moved_file_stays_recorded_is_never_moved_over_another_and_a_killed_move_finishes() {
        let home = tempfile::tempdir().unwrap();
        let dir = ClusterDir::open(home.path().join("pki"), "c").unwrap();
        dir.write("w.pem", b"cert", 0o644).unwrap();
        dir.write("v.pem", b"other", 0o644).unwrap();
        dir.move_file("w.pem", "retired/w.pem").unwrap();
        assert!(!home.path().join("pki/w.pem").exists());
        assert_eq!(std::fs::read(home.path().join("pki/retired/w.pem")).unwrap(), b"cert");
        assert_eq!(mode(&home.path().join("pki/retired")), 0o700);

        assert!(dir.move_file("v.pem", "retired/w.pem").is_err(), "moved over an existing file");
        assert_eq!(std::fs::read(home.path().join("pki/retired/w.pem")).unwrap(), b"cert");
        // Killed between the link and the removal: both names, one file.
        std::fs::hard_link(home.path().join("pki/v.pem"), home.path().join("pki/retired/v.pem")).unwrap();
        dir.move_file("v.pem", "retired/v.pem").unwrap();
        assert!(!home.path().join("pki/v.pem").exists() && home.path().join("pki/retired/v.pem").exists());
        assert!(dir.move_file("../x", "retired/x").is_err() && dir.move_file("v.pem", "/tmp/x").is_err());

        purge(home.path(), "pki", "c").unwrap();
        assert!(!home.path().join("pki").exists(), "a purge left a moved file");
    }

    #[test]
    fn a_removal_takes_the_directories_it_empties_and_unwanted_lists_only_recorded_files() {
        let home = tempfile::tempdir().unwrap();
        let dir = ClusterDir::open(home.path().join("nodes"), "c").unwrap();
        dir.write("h/etc/etcd/peer-key.pem", b"k", 0o600).unwrap();
        dir.write("h/var/lib/kubelet/kubeconfig", b"k", 0o600).unwrap();
        std::fs::write(home.path().join("nodes/h/etc/mine.txt"), "user's").unwrap();
        let unwanted = unwanted(dir.path(), |file| file.starts_with("h/var/"));
        assert_eq!(unwanted, ["h/etc/etcd/peer-key.pem"], "the .gitignore and a file groundup did not write stay");
        dir.remove_emptied("h/etc/etcd/peer-key.pem").unwrap();
        assert!(!home.path().join("nodes/h/etc/etcd").exists(), "an emptied directory stayed");
        assert!(
            home.path().join("nodes/h/etc/mine.txt").exists() && home.path().join("nodes/h/var/lib/kubelet").exists()
        );
        assert!(dir.remove_emptied("../x").is_err());
    }

    #[test]
    fn purge_removes_only_recorded_files_and_never_home() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("precious"), "keep").unwrap();
        let dir = ClusterDir::open(home.path().join("pki"), "c").unwrap();
        dir.write("a/b.pem", b"x", 0o600).unwrap();
        dir.write("ca.pem", b"x", 0o644).unwrap();
        std::fs::write(home.path().join("pki/.ca.pem.1.0.partial"), "killed midway").unwrap();
        std::fs::write(home.path().join("pki/mine.txt"), "user's").unwrap();
        let error = purge(home.path(), "pki", "other").unwrap_err().to_string();
        assert!(error.contains("belongs to cluster `c`"), "{error}");

        purge(home.path(), "pki", "c").unwrap();
        assert!(!home.path().join("pki/ca.pem").exists() && !home.path().join("pki/a").exists());
        assert!(!home.path().join("pki/.ca.pem.1.0.partial").exists(), "a killed write's temporary file stayed");
        assert!(home.path().join("pki/mine.txt").exists(), "a file groundup did not write was removed");
        std::fs::remove_file(home.path().join("pki/mine.txt")).unwrap();

        // The home itself as the directory (allowed with a flag): its files are never removed.
        let dir = ClusterDir::open(home.path().join("."), "c").unwrap();
        dir.write("ca.pem", b"x", 0o644).unwrap();
        purge(home.path(), ".", "c").unwrap();
        assert!(home.path().is_dir() && home.path().join("precious").exists() && home.path().join("pki").exists());
        assert!(!home.path().join("ca.pem").exists());
    }
}
