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

pub fn save(path: &Path, context: &Context) -> Result<()> {
    context.save(path).with_context(|| format!("cannot replace the state file {}", path.display()))
}
