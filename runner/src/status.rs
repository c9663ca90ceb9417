//! `groundup status`: each pipeline step as done or pending, with the resources it recorded.

use std::path::Path;

use anyhow::{anyhow, Result};
use serde_json::Value;

use crate::state;

pub fn run(path: &Path) -> Result<()> {
    let context =
        state::load(path)?.ok_or_else(|| anyhow!("no state file at {}; run `groundup up` first", path.display()))?;
    let document: Value = serde_json::from_str(&context.to_json())?;
    println!("cluster {} in {} ({:?})", context.cluster.name, context.cluster.region, context.target);
    for step in &context.pipeline {
        let mark = if context.is_completed(step) { "done   " } else { "pending" };
        let resources = document.get(step).map(summary).unwrap_or_default();
        println!("  {mark} {step:<10} {resources}");
    }
    for entry in &context.journal {
        println!(
            "  interrupted: {} was creating {} `{}`; the next run looks for it before creating one",
            entry.step, entry.kind, entry.resource
        );
    }
    Ok(())
}

/// The section's identifiers (ids, ARNs, names), as `key=value` pairs.
fn summary(section: &Value) -> String {
    let Value::Object(fields) = section else { return String::new() };
    fields.iter().filter_map(|(key, value)| value.as_str().map(|v| format!("{key}={v}"))).collect::<Vec<_>>().join(" ")
}
