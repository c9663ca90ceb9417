//! `groundup status`: each pipeline step as done or pending, with what it recorded. The report
//! is the command's product, so it goes on stdout (`groundup status | grep compute`); `--json`
//! puts the same facts there for scripts.

use std::path::Path;

use anyhow::{anyhow, Result};
use groundup_contracts::{Context, Target};
use groundup_runtime::output::print_line;
use serde_json::Value;

use crate::state;

pub fn run(path: &Path, json: bool) -> Result<()> {
    let context = state::load(path)?.ok_or_else(|| {
        anyhow!(
            "no state file at {}; name yours with `--state FILE` (a pipeline by hand: the file its last step wrote), \
             or build a cluster with `groundup up`",
            path.display()
        )
    })?;
    if json {
        return Ok(print_line(&serde_json::to_string_pretty(&document(&context)?)?)?);
    }
    Ok(print_line(&report(&context)?.join("\n"))?)
}

/// `status --json`: the cluster, its target, and per step its state and the resource ids its
/// section records, by their path in the section (`nodes[0].instance_id`).
fn document(context: &Context) -> Result<Value> {
    let sections: Value = serde_json::from_str(&context.to_json())?;
    let steps: Vec<Value> = context
        .pipeline
        .iter()
        .map(|step| {
            let mut ids = serde_json::Map::new();
            if let Some(section) = sections.get(step) {
                collect_ids(section, "", &mut ids);
            }
            let state = if context.is_completed(step) { "done" } else { "pending" };
            serde_json::json!({"step": step, "state": state, "ids": ids})
        })
        .collect();
    let interrupted: Vec<Value> = context
        .journal
        .iter()
        .map(|e| serde_json::json!({"step": e.step, "kind": e.kind, "resource": e.resource}))
        .collect();
    Ok(serde_json::json!({
        "cluster": context.cluster.name,
        "region": context.cluster.region,
        "target": target(context),
        "torn_down": context.teardown.as_ref().is_some_and(|t| t.torn_down),
        "steps": steps,
        "interrupted": interrupted,
    }))
}

/// Fields that identify a resource: ids, ARNs, the load balancer's DNS name, certificate
/// fingerprints.
fn is_identifier(key: &str) -> bool {
    key == "id" || key.ends_with("_id") || key == "arn" || key.ends_with("_arn") || key == "dns_name" || key == "sha256"
}

fn collect_ids(value: &Value, path: &str, ids: &mut serde_json::Map<String, Value>) {
    match value {
        Value::Object(fields) => {
            for (key, inner) in fields {
                let at = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match inner {
                    Value::String(_) if is_identifier(key) => {
                        ids.insert(at, inner.clone());
                    }
                    _ => collect_ids(inner, &at, ids),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_ids(item, &format!("{path}[{i}]"), ids);
            }
        }
        _ => {}
    }
}

fn report(context: &Context) -> Result<Vec<String>> {
    let document: Value = serde_json::from_str(&context.to_json())?;
    let mut lines = vec![format!("cluster {} on {}", context.cluster.name, target(context))];
    if let Some(teardown) = context.teardown.as_ref().filter(|t| t.torn_down) {
        lines.push(format!(
            "  torn down: {} resource(s) deleted; `groundup up` builds it again",
            teardown.resources.len()
        ));
    }
    for step in &context.pipeline {
        let mark = if context.is_completed(step) { "done   " } else { "pending" };
        let recorded = document.get(step).map(summary).unwrap_or_default();
        lines.push(format!("  {mark} {step:<10} {recorded}").trim_end().to_string());
    }
    for entry in &context.journal {
        lines.push(format!(
            "  interrupted: {} was creating {} `{}`; the next run looks for it before creating one",
            entry.step, entry.kind, entry.resource
        ));
    }
    Ok(lines)
}

/// The target as a person names it: `emulator http://127.0.0.1:PORT`, `aws us-east-2`.
fn target(context: &Context) -> String {
    match &context.target {
        Target::Emulator { endpoint } => format!("emulator {endpoint}"),
        Target::Endpoint { endpoint } => format!("endpoint {endpoint}"),
        Target::Aws => format!("aws {}", context.cluster.region),
    }
}

/// What a section records: its identifiers (ids, ARNs, names, paths) as `key=value`, those of
/// nested objects as `outer.key=value`, and lists by their length (`6 nodes`).
fn summary(section: &Value) -> String {
    let Value::Object(fields) = section else { return String::new() };
    let mut parts = Vec::new();
    for (key, value) in fields {
        match value {
            Value::String(text) => parts.push(format!("{key}={text}")),
            Value::Array(items) => parts.push(format!("{} {key}", items.len())),
            Value::Object(inner) => {
                parts.extend(inner.iter().filter_map(|(name, v)| v.as_str().map(|text| format!("{key}.{name}={text}"))))
            }
            _ => {}
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> Context {
        let path = format!("{}/../contracts/examples/{name}", env!("CARGO_MANIFEST_DIR"));
        Context::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn line<'a>(lines: &'a [String], step: &str) -> &'a str {
        lines.iter().find(|l| l.split_whitespace().nth(1) == Some(step)).unwrap_or_else(|| panic!("{lines:?}"))
    }

    #[test]
    fn the_target_reads_as_a_person_names_it() {
        let mut context = example("01-init.json");
        context.target = Target::Emulator { endpoint: "http://127.0.0.1:5000".into() };
        assert_eq!(report(&context).unwrap()[0], "cluster k8s-cluster on emulator http://127.0.0.1:5000");
        context.target = Target::Aws;
        assert_eq!(report(&context).unwrap()[0], "cluster k8s-cluster on aws us-east-2");
    }

    /// compute showed only `image_id`; lists and nested records count too.
    #[test]
    fn every_section_shows_what_it_recorded() {
        let lines = report(&example("03-infra.json")).unwrap();
        let compute = line(&lines, "compute");
        assert!(compute.contains("6 nodes") && compute.contains("key_pair.name=k8s-cluster"), "{compute}");
        assert!(line(&lines, "sg").contains("5 ingress"), "{lines:?}");
    }

    #[test]
    fn json_lists_each_steps_state_and_resource_ids() {
        let mut context = example("03-infra.json");
        context.pipeline.push("ca".into());
        let document = document(&context).unwrap();
        assert_eq!(document["target"], target(&context));
        let steps = document["steps"].as_array().unwrap();
        assert_eq!(steps.len(), context.pipeline.len());
        let step = |name: &str| steps.iter().find(|s| s["step"] == name).unwrap();
        assert_eq!(step("vpc")["state"], "done");
        assert_eq!(step("vpc")["ids"]["id"], context.vpc.as_ref().unwrap().id.as_str());
        let nodes = &context.compute.as_ref().unwrap().nodes;
        assert_eq!(step("compute")["ids"]["nodes[5].instance_id"], nodes[5].instance_id.as_str());
        assert_eq!(step("nlb")["ids"]["listener_arn"], context.nlb.as_ref().unwrap().listener_arn.as_str());
        assert_eq!(step("ca")["state"], "pending");
        assert!(step("ca")["ids"].as_object().unwrap().is_empty());
    }

    #[test]
    fn a_torn_down_cluster_says_so() {
        let mut context = example("01-init.json");
        context.teardown = Some(groundup_contracts::teardown::TeardownSection { resources: vec![], torn_down: true });
        assert!(report(&context).unwrap()[1].contains("torn down"));
    }
}
