//! The state file: the last good context, replaced atomically after every step.

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result};
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

/// Writes to a temporary file beside the target and renames it over, so that a crash leaves
/// either the old context or the new one, never half of one.
pub fn save(path: &Path, context: &Context) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    file.write_all(context.to_json().as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).with_context(|| format!("cannot replace the state file {}", path.display()))?;
    Ok(())
}
