//! The runner's state file as the steps see it: where it is, and how a context is saved to it
//! (or to any file) so that a crash leaves the old document or the new one.

use std::path::{Path, PathBuf};

use groundup_contracts::Context;

use crate::files::{partials_of, write_atomic};

/// The runner names its state file in this variable, so that a step can journal a create
/// into it before sending the call. A step run by hand has no state file and journals nothing.
pub const STATE_FILE_ENV: &str = "GROUNDUP_STATE_FILE";

/// Replaces `path` with `context` atomically, readable by this user alone (it names the
/// cluster's key files and resources). A crash in the middle leaves a `.<name>.*.partial`
/// file, which [`partial_saves`] finds.
pub fn save(context: &Context, path: &Path) -> Result<(), String> {
    write_atomic(path, context.to_json().as_bytes(), 0o600)
}

/// What saves of `path` that were killed midway left behind.
pub fn partial_saves(path: &Path) -> Vec<PathBuf> {
    partials_of(path)
}
