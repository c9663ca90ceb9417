//! How a context is saved to a state file (the runner's, or the one a step run by hand with
//! `--in-place` replaces) so that a crash leaves the old document or the new one, and how the
//! runner and the tools read it. A step the runner runs never writes the runner's state file:
//! it sends its journal as events ([`crate::events`]) and the runner saves them.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use groundup_contracts::Context;

use crate::files::{partials_of, write_atomic, FileError};

/// Replaces `path` with `context` atomically, readable by this user alone (it names the
/// cluster's key files and resources). A crash in the middle leaves a `.<name>.*.partial`
/// file, which [`partial_saves`] finds.
pub fn save(context: &Context, path: &Path) -> Result<(), FileError> {
    write_atomic(path, context.to_json().as_bytes(), 0o600)
}

/// What saves of `path` that were killed midway left behind.
pub fn partial_saves(path: &Path) -> Vec<PathBuf> {
    partials_of(path)
}

/// The state file a command reads when none is named.
pub const DEFAULT_STATE: &str = "groundup.json";

/// The context a state file holds; `None` when there is no file.
pub fn load(path: &Path) -> Result<Option<Context>> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => bail!(
            "the state file {0} is empty (`groundup-<step> > {0}` empties it before the step reads it; use `groundup-<step> --state {0} --in-place`); restore it, or write a new one with `groundup init --name NAME ... > {0}`",
            path.display()
        ),
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

/// A file of the state file's own beside it: `groundup.json` + `.lock` is `groundup.json.lock`.
pub fn beside(state: &Path, suffix: &str) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    state.with_file_name(name)
}
