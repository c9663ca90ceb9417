//! One shape for every local file groundup writes, as `groundup-cloud`'s `Resource` is for AWS
//! resources. An [`Artifact`] (a certificate, a kubeconfig, the encryption config, a node's
//! bundle) reads what is on disk and compares it with what is wanted into typed differences;
//! [`converge_file`] sends what that finds through the [`Gate`]: recorded in a plan, made in a
//! run, so a step's plan and its run are one code path. Every write goes through
//! [`write_file`], the one atomic write under the file's [`WritePolicy`] (the key rule), so
//! which function a caller picks never decides whether a key is kept.
//!
//! Most artifacts are plain files whose wanted bytes are known: [`Files`] is that artifact,
//! and its compare, [`diff`], is pure. A certificate, whose compare is a verdict on X.509
//! fields rather than bytes, implements [`Artifact`] itself (`groundup_pki::certificate`).
//!
//! Adding a kind of file is building a [`Files`] and converging it; removing what is no longer
//! wanted stays the step's (`files::unwanted`, through the same gate):
//!
//! ```no_run
//! use groundup_runtime::artifact::{converge_file, Contents, Files, LocalDir, LocalFile, WritePolicy};
//! use groundup_runtime::plan::Gate;
//!
//! # fn main() -> Result<(), groundup_runtime::StepError> {
//! let gate = Gate::new("nodeconfig", false); // `true` under --plan: nothing is written
//! let dir = LocalDir::open("nodes", "k8s-cluster", &gate)?;
//! let wanted = Contents { bytes: b"kind: KubeletConfiguration\n".to_vec(), mode: 0o644 };
//! let config = LocalFile::new("worker-0/kubelet.yaml", Ok(wanted), WritePolicy::Replace);
//! let recorded = false; // whether the context already records it
//! converge_file(&gate, &Files::new(&dir, "kubelet config", "worker-0", recorded, vec![config]))?;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::RuntimeError;
use crate::files::{ClusterDir, Written};
use crate::plan::Gate;
use crate::StepError;

/// What happens to a file that is already there: the key rule, declared with the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WritePolicy {
    /// It follows its sources: rewritten, atomically, whenever its bytes or mode differ
    /// (certificates, requests, kubeconfigs, the encryption config, bundles).
    Replace,
    /// Written where missing and never changed; another writer's different bytes are an
    /// error (a CA's key, which signed everything; a retired encryption config).
    WriteOnce,
    /// Written where missing; one already there is kept, whatever it holds (a leaf's key when
    /// its certificate is re-issued, or one made ahead by the head start).
    KeepKey,
}

/// A file's bytes and permission bits, wanted or found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contents {
    pub bytes: Vec<u8>,
    pub mode: u32,
}

impl Contents {
    /// What is at `path`; `None` if no regular file is there (a link is never followed: the
    /// write replaces it) or it cannot be read (the write replaces it too).
    pub fn read(path: &Path) -> Option<Contents> {
        let metadata = std::fs::symlink_metadata(path).ok().filter(|m| m.is_file())?;
        let bytes = std::fs::read(path).ok()?;
        Some(Contents { bytes, mode: metadata.permissions().mode() & 0o7777 })
    }
}

/// How a plain file on disk differs from the one wanted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Diff {
    /// Nothing is there: it is written.
    Missing,
    /// Its bytes differ: it is rewritten.
    ContentDiffers,
    /// What it is made from is not there yet (a plan made before the step that writes it):
    /// it follows once that has run.
    SourceMissing,
    /// Only its permission bits differ: it is rewritten with the wanted ones.
    ModeDiffers { found: u32, wanted: u32 },
    /// It differs, and its policy keeps it (a key already made): nothing is written.
    KeyKept,
    /// A write-once file holds other bytes: never replaced, so writing it fails.
    WriteOnceDiffers,
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diff::Missing => f.write_str("missing"),
            Diff::ContentDiffers => f.write_str("its content differs"),
            Diff::SourceMissing => f.write_str("what it is made from is not there yet"),
            Diff::ModeDiffers { found, wanted } => write!(f, "mode {found:04o}, wanted {wanted:04o}"),
            Diff::KeyKept => f.write_str("kept: a key is never replaced"),
            Diff::WriteOnceDiffers => f.write_str("holds other bytes, and is written only once"),
        }
    }
}

/// The one compare of a plain file with what is wanted (`None`: its source is missing), under
/// its key rule; `None` when they agree.
pub fn diff(policy: WritePolicy, wanted: Option<&Contents>, found: Option<&Contents>) -> Option<Diff> {
    let Some(found) = found else { return Some(Diff::Missing) };
    let same_bytes = wanted.is_some_and(|w| w.bytes == found.bytes);
    match (policy, wanted) {
        (WritePolicy::KeepKey, _) => (!same_bytes).then_some(Diff::KeyKept),
        (_, None) => Some(Diff::SourceMissing),
        (WritePolicy::WriteOnce, _) => (!same_bytes).then_some(Diff::WriteOnceDiffers),
        (WritePolicy::Replace, _) if !same_bytes => Some(Diff::ContentDiffers),
        (WritePolicy::Replace, Some(wanted)) if wanted.mode != found.mode => {
            Some(Diff::ModeDiffers { found: found.mode, wanted: wanted.mode })
        }
        (WritePolicy::Replace, Some(_)) => None,
    }
}

/// The one write of a cluster's file: `relative` in `files` under its key rule, through the
/// one atomic write (`files::write_atomic`, or `files::write_new` for a file written once).
pub fn write_file(
    files: &ClusterDir,
    relative: &str,
    wanted: &Contents,
    policy: WritePolicy,
) -> Result<(), RuntimeError> {
    let Contents { bytes, mode } = wanted;
    match policy {
        WritePolicy::Replace => files.write(relative, bytes, *mode).map(drop),
        WritePolicy::KeepKey => files.write_once(relative, bytes, *mode).map(drop),
        WritePolicy::WriteOnce => match files.write_once(relative, bytes, *mode)? {
            Written::Existing(theirs) if theirs != *bytes => {
                Err(RuntimeError::WrittenOnce(files.path().join(relative)))
            }
            _ => Ok(()),
        },
    }
}

/// What the gate does with a difference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// Mend it: made in a run, recorded in a plan.
    Mend,
    /// Report it and leave it, in a plan too (a key kept).
    Leave,
    /// Only with the user's word (a certificate that needs `--renew`): a plan shows the change
    /// it would take, a run leaves it for the step to refuse ([`Gate::propose`]).
    Ask,
}

/// One way an artifact on disk differs from the one wanted; its `Display` is the line in the
/// plan and the log.
pub trait Difference: fmt::Display {
    /// What the gate does with it.
    fn act(&self) -> Act {
        Act::Mend
    }
}

/// What [`Artifact::diff`] found on disk.
#[derive(Debug, PartialEq, Eq)]
pub enum Found<D> {
    /// Nothing of it: it is made whole.
    Missing,
    /// It is there; `recorded` says whether the context already holds it, and `diffs` how it
    /// differs from what is wanted (none: it is kept).
    Present { recorded: bool, diffs: Vec<D> },
}

/// A local file (or a few that go together) that a step converges.
pub trait Artifact {
    type Diff: Difference;
    /// What the plan calls its kind (`kubeconfig`).
    fn kind(&self) -> &str;
    /// Its name in the plan and the log.
    fn name(&self) -> &str;
    /// Where it is, for the plan.
    fn location(&self) -> String;
    /// Reads what is on disk and compares it with what is wanted.
    fn diff(&self) -> Result<Found<Self::Diff>, StepError>;
    /// Makes it whole, where nothing of it is there. Only in a run.
    fn create(&self) -> Result<(), StepError>;
    /// Mends one difference. Only in a run.
    fn fix(&self, diff: &Self::Diff) -> Result<(), StepError>;
}

/// The one loop of every local artifact: read and compare, then act through the gate (in a
/// plan recorded, in a run made). Returns what it found, for the step's record.
pub fn converge_file<A: Artifact>(gate: &Gate, artifact: &A) -> Result<Found<A::Diff>, StepError> {
    let found = artifact.diff()?;
    match &found {
        Found::Missing => {
            gate.create(artifact.kind(), artifact.name(), || artifact.create())?;
        }
        Found::Present { recorded, diffs } => {
            gate.found(artifact.kind(), artifact.name(), &artifact.location(), *recorded);
            for diff in diffs {
                match diff.act() {
                    Act::Mend => drop(gate.change(artifact.name(), &diff.to_string(), || artifact.fix(diff))?),
                    Act::Ask => gate.propose(artifact.name(), &diff.to_string()),
                    Act::Leave => {}
                }
            }
        }
    }
    Ok(found)
}

/// A cluster's directory as a step converges it: opened (checked, claimed, see
/// [`ClusterDir::open`]) in a run, only read in a plan, which must not even create it.
pub struct LocalDir {
    path: PathBuf,
    files: Option<ClusterDir>,
}

impl LocalDir {
    pub fn open(path: impl Into<PathBuf>, cluster: &str, gate: &Gate) -> Result<LocalDir, StepError> {
        let path = path.into();
        let files = gate.in_run(|| ClusterDir::open(&path, cluster))?;
        Ok(LocalDir { path, files })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The opened directory; `None` in a plan.
    pub fn files(&self) -> Option<&ClusterDir> {
        self.files.as_ref()
    }

    /// The opened directory, for a write; only a run writes.
    pub fn writable(&self) -> Result<&ClusterDir, StepError> {
        self.files.as_ref().ok_or_else(|| StepError::new(format!("{} was opened read-only", self.path.display())))
    }
}

/// A plain file of an artifact: where it goes in its directory, what it should hold, its key
/// rule, and how the plan names it.
pub struct LocalFile {
    pub file: String,
    /// What it should hold; where a source is missing, what to run first (a plan records the
    /// file as following; a run fails with this).
    pub wanted: Result<Contents, String>,
    pub policy: WritePolicy,
    /// The plan's and the log's line when it changes (its path on a node, say); the file
    /// name unless [`LocalFile::shown`] says otherwise.
    pub label: String,
}

impl LocalFile {
    pub fn new(file: impl Into<String>, wanted: Result<Contents, String>, policy: WritePolicy) -> LocalFile {
        let file = file.into();
        LocalFile { label: file.clone(), file, wanted, policy }
    }

    /// The same, named `label` in the plan and the log.
    pub fn shown(self, label: impl Into<String>) -> LocalFile {
        LocalFile { label: label.into(), ..self }
    }
}

/// The artifact of plain files that go together under one name (a kubeconfig is one file; a
/// node's bundle many, its archive last): it exists if any of its files does, and its files
/// are written in their order (a copy that keeps a key before the file that drops it).
pub struct Files<'a> {
    dir: &'a LocalDir,
    kind: &'a str,
    name: &'a str,
    recorded: bool,
    files: Vec<LocalFile>,
}

impl<'a> Files<'a> {
    pub fn new(dir: &'a LocalDir, kind: &'a str, name: &'a str, recorded: bool, files: Vec<LocalFile>) -> Files<'a> {
        Files { dir, kind, name, recorded, files }
    }

    fn write(&self, file: &LocalFile) -> Result<(), StepError> {
        let wanted = file.wanted.as_ref().map_err(|e| StepError::new(e.clone()))?;
        Ok(write_file(self.dir.writable()?, &file.file, wanted, file.policy)?)
    }
}

/// One file's difference, with the file it is about.
#[derive(Debug, PartialEq, Eq)]
pub struct FileDiff {
    /// Its place in the artifact's files.
    pub index: usize,
    pub label: String,
    pub diff: Diff,
}

/// The file's label, which says what changes; the reason where it is not the content.
impl fmt::Display for FileDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.diff {
            Diff::Missing | Diff::ContentDiffers | Diff::SourceMissing => f.write_str(&self.label),
            other => write!(f, "{} ({other})", self.label),
        }
    }
}

impl Difference for FileDiff {
    fn act(&self) -> Act {
        match self.diff {
            Diff::KeyKept => Act::Leave,
            _ => Act::Mend,
        }
    }
}

impl Artifact for Files<'_> {
    type Diff = FileDiff;

    fn kind(&self) -> &str {
        self.kind
    }

    fn name(&self) -> &str {
        self.name
    }

    fn location(&self) -> String {
        self.dir.path().join(self.name).display().to_string()
    }

    fn diff(&self) -> Result<Found<FileDiff>, StepError> {
        let found: Vec<Option<Contents>> =
            self.files.iter().map(|file| Contents::read(&self.dir.path().join(&file.file))).collect();
        if found.iter().all(Option::is_none) {
            return Ok(Found::Missing);
        }
        let diffs = self
            .files
            .iter()
            .zip(&found)
            .enumerate()
            .filter_map(|(index, (file, found))| {
                let diff = diff(file.policy, file.wanted.as_ref().ok(), found.as_ref())?;
                Some(FileDiff { index, label: file.label.clone(), diff })
            })
            .collect();
        Ok(Found::Present { recorded: self.recorded, diffs })
    }

    fn create(&self) -> Result<(), StepError> {
        self.files.iter().try_for_each(|file| self.write(file))
    }

    fn fix(&self, diff: &FileDiff) -> Result<(), StepError> {
        self.write(&self.files[diff.index])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(bytes: &str, mode: u32) -> Contents {
        Contents { bytes: bytes.as_bytes().to_vec(), mode }
    }

    #[test]
    fn a_plain_file_differs_by_presence_bytes_mode_and_key_rule() {
        use WritePolicy::*;
        let wanted = contents("new", 0o600);
        let same = Some(&wanted);
        let other = contents("old", 0o600);
        let loose = contents("new", 0o644);
        for policy in [Replace, WriteOnce, KeepKey] {
            assert_eq!(diff(policy, same, None), Some(Diff::Missing), "{policy:?}");
            assert_eq!(diff(policy, None, None), Some(Diff::Missing), "{policy:?}");
            assert_eq!(diff(policy, same, Some(&wanted)), None, "{policy:?}");
        }
        assert_eq!(diff(Replace, same, Some(&other)), Some(Diff::ContentDiffers));
        assert_eq!(diff(Replace, same, Some(&loose)), Some(Diff::ModeDiffers { found: 0o644, wanted: 0o600 }));
        assert_eq!(diff(Replace, None, Some(&other)), Some(Diff::SourceMissing));
        assert_eq!(diff(WriteOnce, same, Some(&other)), Some(Diff::WriteOnceDiffers));
        assert_eq!(diff(WriteOnce, same, Some(&loose)), None, "a write-once file is never rewritten for its mode");
        assert_eq!(diff(KeepKey, same, Some(&other)), Some(Diff::KeyKept));
        assert_eq!(diff(KeepKey, None, Some(&other)), Some(Diff::KeyKept), "a key is kept, whatever its source");
        assert_eq!(Diff::ModeDiffers { found: 0o644, wanted: 0o600 }.to_string(), "mode 0644, wanted 0600");
    }

    /// The loop the PKI steps share: a plan records and writes nothing; a run writes what is
    /// missing or different, rewrites a mode, keeps a key and refuses a write-once file's
    /// other bytes; a second run finds nothing to do.
    #[test]
    fn converge_file_records_in_a_plan_and_writes_by_the_key_rule_in_a_run() {
        let home = tempfile::tempdir().unwrap();
        let path = home.path().join("kubeconfig");
        fn files<'a>(dir: &'a LocalDir, key: &str) -> Files<'a> {
            let files = vec![
                LocalFile::new("a.conf", Ok(contents("a", 0o600)), WritePolicy::Replace).shown("~ /etc/a.conf"),
                LocalFile::new("a-key.pem", Ok(contents(key, 0o600)), WritePolicy::KeepKey),
                LocalFile::new("copy", Ok(contents("c", 0o600)), WritePolicy::WriteOnce),
            ];
            Files::new(dir, "kubeconfig", "a", false, files)
        }
        let plan = Gate::new("kubeconfig", true);
        let planned = LocalDir::open(&path, "test", &plan).unwrap();
        assert_eq!(converge_file(&plan, &files(&planned, "k1")).unwrap(), Found::Missing);
        assert!(!path.exists(), "a plan made the directory");
        assert_eq!(plan.take()[0].action, groundup_contracts::plan::Action::Create);

        let run = Gate::new("kubeconfig", false);
        let dir = LocalDir::open(&path, "test", &run).unwrap();
        converge_file(&run, &files(&dir, "k1")).unwrap();
        let read = |file: &str| Contents::read(&path.join(file)).unwrap();
        assert_eq!(read("a-key.pem"), contents("k1", 0o600));
        std::fs::set_permissions(path.join("a.conf"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let found = converge_file(&run, &files(&dir, "k2")).unwrap();
        let Found::Present { diffs, .. } = found else { panic!("{found:?}") };
        let lines: Vec<String> = diffs.iter().map(ToString::to_string).collect();
        assert_eq!(lines, ["~ /etc/a.conf (mode 0644, wanted 0600)", "a-key.pem (kept: a key is never replaced)"]);
        assert_eq!(read("a.conf"), contents("a", 0o600), "the mode was not restored");
        assert_eq!(read("a-key.pem"), contents("k1", 0o600), "a kept key was replaced");
        assert_eq!(
            converge_file(&run, &files(&dir, "k1")).unwrap(),
            Found::Present { recorded: false, diffs: Vec::new() },
            "a second run still changes something"
        );

        std::fs::write(path.join("copy"), "another's").unwrap();
        let refused = converge_file(&run, &files(&dir, "k1")).unwrap_err();
        assert!(refused.message.contains("written only once"), "{refused}");
        assert_eq!(std::fs::read_to_string(path.join("copy")).unwrap(), "another's");
    }
}
