//! The runtime layer's errors. [`RuntimeError`] is its one error type: what can go wrong with
//! a cluster's files and directories ([`crate::files`]), the side channel to the runner
//! ([`crate::events`]) and the journal on it ([`crate::journal`]), the state file
//! ([`crate::state`]), and finding a program ([`crate::tool`]). [`StepError`] is not a second
//! kind of failure but the harness's exit-code carrier: what a step's body returns, one line on
//! stderr and the exit code (2 for bad input, 1 otherwise). Each layer above converts its own
//! error into it with `?`, and the runtime's with [`RuntimeError::is_bad_input`] deciding the
//! code.
//!
//! Every message is whole: it names its path or field, its cause and what to do, and no variant
//! chains a cause through `source()`, so `{:#}` never prints one twice.

use std::fmt;
use std::os::fd::RawFd;
use std::path::PathBuf;

use groundup_contracts::ContextError;

use crate::files::OWNER_FILE;

/// What went wrong in the runtime layer. A cluster's files and directories come from the spec,
/// which `init` checked, so their failures are failures while working (exit 1); what a user
/// gave (a descriptor on the command line, a state file to restore or write, a cluster's name
/// that is not the state file's) is bad input (exit 2): see [`RuntimeError::is_bad_input`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    // A cluster's files and directories.
    /// The system refused a read, write or lock; `cause` is its message.
    #[error("cannot {action} {}: {cause}", path.display())]
    Io { action: &'static str, path: PathBuf, cause: String },
    /// A symbolic link below a cluster's directory: never followed.
    #[error("{} is a symbolic link; groundup never follows one below a cluster's directory, so nothing was written or removed through it: replace the link with a directory", .0.display())]
    LinkBelow(PathBuf),
    /// A cluster's directory that is a symbolic link.
    #[error("{} is a symbolic link; groundup keeps keys and programs only in a real directory of its own: replace the link with a directory", .0.display())]
    LinkDir(PathBuf),
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("{} belongs to user {owner}, not to you ({me}); its files cannot be trusted: use a directory of your own", path.display())]
    NotYours { path: PathBuf, owner: u32, me: u32 },
    #[error("{} is writable by others than you (it is writable by group or others, mode {mode:o}), so its files cannot be trusted; check them, then `chmod 700` it", path.display())]
    Loose { path: PathBuf, mode: u32 },
    /// Another cluster's directory, claimed by its `.groundup-owner`.
    #[error("{} belongs to cluster `{owner}` (see {OWNER_FILE}), not `{cluster}`; give this cluster its own directory in its context (params.pki.dir, params.ssh_dir), or run `groundup down --yes --purge` on the other cluster's state file", path.display())]
    OtherCluster { path: PathBuf, owner: String, cluster: String },
    /// A directory `--purge` leaves: another cluster's, or one groundup did not make.
    #[error("{} {why}; left as it is", path.display())]
    NotPurged { path: PathBuf, why: String },
    /// A name that is not a plain path inside the directory (`..`, absolute, empty).
    #[error("`{relative}` is not a plain path inside {}", dir.display())]
    NotInside { relative: String, dir: PathBuf },
    /// A file written once holds other bytes than this run's.
    #[error("{} exists and holds other bytes than this run's; it is written only once, never replaced", .0.display())]
    WrittenOnce(PathBuf),

    // The side channel to the runner.
    /// A descriptor the runner cannot have meant (bad input).
    #[error("--events-fd {fd}: {why}")]
    BadEventsFd { fd: RawFd, why: String },
    #[error("the events channel is connected already")]
    EventsConnected,
    #[error("cannot tell the runner: {0}")]
    EventNotSent(String),
    #[error("no answer from the runner: {0}")]
    NoAnswer(String),
    #[error("the runner answered `{0}`, not an acknowledgement")]
    NotAnAck(String),
    /// The runner could not record an event; its reason.
    #[error("{0}")]
    NotSaved(String),
    /// A create that was not sent: the runner did not record it first (`cause` is the side
    /// channel's failure).
    #[error("cannot journal the {kind} `{logical}` before creating it: {cause}")]
    Unjournaled { kind: String, logical: String, cause: Box<RuntimeError> },

    // The state file.
    /// Emptied, typically by `groundup-<step> > FILE` (bad input: restore it or write a new one).
    #[error("the state file {path} is empty (`groundup-<step> > {path}` empties it before the step reads it; use `groundup-<step> --state {path} --in-place`); restore it, or write a new one with `groundup init --name NAME ... > {path}`", path = .0.display())]
    StateEmpty(PathBuf),
    /// Not a context this build can use; `cause` names the field (bad input).
    #[error("the state file {} is unusable; it was left as it is: {cause}", path.display())]
    StateUnusable { path: PathBuf, cause: Box<ContextError> },
    /// The system would not let it be read (a failure, not bad input).
    #[error("cannot read the state file {}: {cause}", path.display())]
    StateUnreadable { path: PathBuf, cause: String },
    /// A command that needs an existing cluster was given no state file (bad input).
    #[error("no state file at {path} (--state); write one first: `groundup init --name NAME [--endpoint URL | --aws] > {path}`", path = .0.display())]
    NoStateFile(PathBuf),
    /// `--name` names another cluster than the state file's (bad input).
    #[error("the state file {} is for cluster `{cluster}`, not `{asked}` (--name); name its cluster, or another state file with --state; nothing was changed", path.display())]
    OtherClusterState { path: PathBuf, cluster: String, asked: String },

    // Programs.
    /// No `groundup-<name>` beside the running program or on PATH.
    #[error("no executable `{program}` beside {beside} or on PATH")]
    NoProgram { program: String, beside: String },
    /// A step run by a tool exited 2: it refused its input, and said why on stderr.
    #[error("step `{step}` refused its input (exit code 2)")]
    StepRefused { step: String },
}

impl RuntimeError {
    /// Whether the user must fix what they gave (exit code 2), rather than a failure while
    /// working (exit code 1).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            RuntimeError::BadEventsFd { .. }
                | RuntimeError::StateEmpty(_)
                | RuntimeError::StateUnusable { .. }
                | RuntimeError::NoStateFile(_)
                | RuntimeError::OtherClusterState { .. }
                | RuntimeError::StepRefused { .. }
        )
    }

    /// Whether an error a binary's top reports (through `anyhow`, say) is bad input: a
    /// [`ContextError`] (every one is) or a [`RuntimeError`] that [`is_bad_input`](Self::is_bad_input).
    pub fn is_bad_input_error(error: &(dyn std::error::Error + 'static)) -> bool {
        error.is::<ContextError>() || error.downcast_ref::<RuntimeError>().is_some_and(RuntimeError::is_bad_input)
    }
}

/// What a step's body returns when it cannot do its work: the message, what to do about it,
/// and the exit code. `hint` tells the user what to do.
#[derive(Debug)]
pub struct StepError {
    pub message: String,
    pub hint: Option<String>,
    /// Bad input is exit code 2, a failure while doing the work exit code 1.
    pub bad_input: bool,
}

impl StepError {
    pub fn new(message: impl Into<String>) -> Self {
        StepError { message: message.into(), hint: None, bad_input: false }
    }

    /// Something the user gave is wrong (a flag, a file they named, the spec): exit code 2.
    pub fn bad_input(message: impl Into<String>) -> Self {
        StepError { message: message.into(), hint: None, bad_input: true }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn exit_code(&self) -> u8 {
        if self.bad_input {
            2
        } else {
            1
        }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StepError {}

/// The runtime's error keeps its message; [`RuntimeError::is_bad_input`] decides the exit code.
impl From<RuntimeError> for StepError {
    fn from(e: RuntimeError) -> StepError {
        StepError { bad_input: e.is_bad_input(), message: e.to_string(), hint: None }
    }
}

impl From<ContextError> for StepError {
    fn from(e: ContextError) -> Self {
        StepError::bad_input(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ARCHITECTURE.md's "one error type per layer": the runtime's sources declare exactly two
    /// error types, its one error and the harness's exit-code carrier. A type that derives
    /// `thiserror::Error` or implements `std::error::Error`, whatever its name, counts (outside
    /// the test modules).
    #[test]
    fn the_runtime_declares_one_error_type_and_the_exit_code_carrier() {
        let sources = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&sources).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let mut deriving_error = false;
            // What a test module declares is not the layer's.
            for line in text.lines().map(str::trim).take_while(|line| *line != "#[cfg(test)]") {
                if line.starts_with("#[derive(") && line.contains("Error") {
                    deriving_error = true;
                } else if let Some(name) = declared_type(line).filter(|_| deriving_error) {
                    found.push(name.to_string());
                    deriving_error = false;
                } else if let Some(rest) = line.strip_prefix("impl std::error::Error for ") {
                    found.push(rest.trim_end_matches(" {}").trim_end_matches(" {").to_string());
                } else if declared_type(line).is_some() {
                    deriving_error = false;
                }
            }
        }
        found.sort();
        assert_eq!(found, ["RuntimeError", "StepError"], "error types in steps/runtime/src");
    }

    /// `Name` of a line `pub enum Name {` or `struct Name<..> {`.
    fn declared_type(line: &str) -> Option<&str> {
        let rest = line.strip_prefix("pub ").unwrap_or(line);
        let rest = rest.strip_prefix("enum ").or_else(|| rest.strip_prefix("struct "))?;
        rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next()
    }

    /// Bad input exits 2, a failure while working 1, through the one conversion.
    #[test]
    fn what_the_user_must_fix_is_bad_input_and_a_failure_is_not() {
        let path = PathBuf::from("groundup.json");
        for bad in [
            RuntimeError::StateEmpty(path.clone()),
            RuntimeError::NoStateFile(path.clone()),
            RuntimeError::StateUnusable { path: path.clone(), cause: Box::new(ContextError::Empty) },
            RuntimeError::OtherClusterState { path: path.clone(), cluster: "a".into(), asked: "b".into() },
            RuntimeError::BadEventsFd { fd: 1, why: "stdout".into() },
        ] {
            assert_eq!(StepError::from(bad.clone()).exit_code(), 2, "{bad}");
            assert!(RuntimeError::is_bad_input_error(&bad), "{bad}");
        }
        for failure in [
            RuntimeError::StateUnreadable { path: path.clone(), cause: "Is a directory".into() },
            RuntimeError::Io { action: "write", path, cause: "No space left on device".into() },
            RuntimeError::NotSaved("disk full".into()),
        ] {
            assert_eq!(StepError::from(failure.clone()).exit_code(), 1, "{failure}");
            assert!(!RuntimeError::is_bad_input_error(&failure), "{failure}");
        }
    }
}
