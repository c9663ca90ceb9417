//! How a context is saved to a state file (the runner's, or the one a step run by hand with
//! `--in-place` replaces) so that a crash leaves the old document or the new one, and how the
//! runner and the tools read it. A step the runner runs never writes the runner's state file:
//! it sends its journal as events ([`crate::events`]) and the runner saves them.

use std::path::{Path, PathBuf};

use groundup_contracts::Context;

use crate::error::RuntimeError;
use crate::files::{partials_of, write_atomic};

/// Replaces `path` with `context` atomically, readable by this user alone (it names the
/// cluster's key files and resources). A crash in the middle leaves a `.<name>.*.partial`
/// file, which [`partial_saves`] finds.
pub fn save(context: &Context, path: &Path) -> Result<(), RuntimeError> {
    write_atomic(path, context.to_json().as_bytes(), 0o600)
}

/// What saves of `path` that were killed midway left behind.
pub fn partial_saves(path: &Path) -> Vec<PathBuf> {
    partials_of(path)
}

/// The state file a command reads when none is named.
pub const DEFAULT_STATE: &str = "groundup.json";

/// The context a state file holds; `None` when there is no file. An empty or unusable file is
/// the user's to restore (bad input); one the system will not read is a failure.
pub fn load(path: &Path) -> Result<Option<Context>, RuntimeError> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Err(RuntimeError::StateEmpty(path.into())),
        Ok(text) => Context::from_json(&text)
            .map(Some)
            .map_err(|cause| RuntimeError::StateUnusable { path: path.into(), cause: Box::new(cause) }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RuntimeError::StateUnreadable { path: path.into(), cause: e.to_string() }),
    }
}

/// The state file of an existing cluster, for commands that only make sense on one (`down`,
/// `up --plan`); `expected` guards scripts against acting on another cluster's file.
pub fn load_existing(path: &Path, expected: Option<&str>) -> Result<Context, RuntimeError> {
    let context = load(path)?.ok_or_else(|| RuntimeError::NoStateFile(path.into()))?;
    check_name(path, &context, expected)?;
    Ok(context)
}

/// The state file's cluster is the one `--name` names, if it names one.
pub fn check_name(path: &Path, context: &Context, expected: Option<&str>) -> Result<(), RuntimeError> {
    match expected {
        Some(name) if name != context.cluster.name => Err(RuntimeError::OtherClusterState {
            path: path.into(),
            cluster: context.cluster.name.clone(),
            asked: name.into(),
        }),
        _ => Ok(()),
    }
}

/// A file of the state file's own beside it: `groundup.json` + `.lock` is `groundup.json.lock`.
pub fn beside(state: &Path, suffix: &str) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    state.with_file_name(name)
}
