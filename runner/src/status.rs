//! `groundup status`: each pipeline step as done or pending, with what it recorded. The report
//! is the command's product, so it goes on stdout (`groundup status | grep compute`); `--json`
//! puts the same facts there for scripts, with the node list, as nested JSON whose schema is
//! `contracts/schema/status.schema.json`.

use std::path::Path;

use anyhow::Result;
use groundup_contracts::infra::Node;
use groundup_contracts::status::{InterruptedCreate, NodeStatus, Status, StepState, StepStatus};
use groundup_contracts::{Context, Target};
use groundup_runtime::output::print_line;
use serde_json::Value;

use crate::init::Refused;
use crate::state;

pub fn run(path: &Path, json: bool) -> Result<()> {
    let context = state::load(path)?.ok_or_else(|| {
        Refused(format!(
            "no state file at {}; name yours with `--state FILE` (a pipeline by hand: the file its last step wrote), \
             or build a cluster with `groundup up`",
            path.display()
        ))
    })?;
    if json {
        return Ok(print_line(&serde_json::to_string_pretty(&document(&context)?)?)?);
    }
    Ok(print_line(&report(&context)?.join("\n"))?)
}

/// `status --json`: the cluster, its target, per step its state and the resource ids its
/// section records, and each node with its addresses and files.
fn document(context: &Context) -> Result<Status> {
    let sections: Value = serde_json::from_str(&context.to_json())?;
    let steps = context
        .pipeline
        .iter()
        .map(|step| StepStatus {
            step: step.clone(),
            state: if context.is_completed(step) { StepState::Done } else { StepState::Pending },
            ids: match sections.get(step).and_then(identifiers) {
                Some(Value::Object(ids)) => ids,
                _ => serde_json::Map::new(),
            },
        })
        .collect();
    let nodes =
        context.compute.iter().flat_map(|compute| &compute.nodes).map(|node| node_status(context, node)).collect();
    let interrupted = context
        .journal
        .iter()
        .map(|e| InterruptedCreate { step: e.step.clone(), kind: e.kind.clone(), resource: e.resource.clone() })
        .collect();
    Ok(Status {
        cluster: context.cluster.name.clone(),
        region: context.cluster.region.clone(),
        target: target(context),
        torn_down: context.teardown.as_ref().is_some_and(|t| t.torn_down),
        steps,
        nodes,
        interrupted,
        stale: context.stale(),
    })
}

/// A node and the files made for it, each named after its host name: its kubelet's certificate,
/// the kubeconfig of its kubelet (`system:node:<hostname>`) and its bundle.
fn node_status(context: &Context, node: &Node) -> NodeStatus {
    let kubelet_user = format!("system:node:{}", node.hostname);
    NodeStatus {
        name: node.name.clone(),
        role: node.role,
        hostname: node.hostname.clone(),
        instance_id: node.instance_id.to_string(),
        private_ip: node.private_ip,
        public_ip: node.public_ip,
        pod_cidr: node.pod_cidr,
        certificate: context
            .certs
            .iter()
            .flat_map(|certs| &certs.certificates)
            .find(|cert| cert.name == node.hostname)
            .map(|cert| cert.cert_path.clone()),
        kubeconfig: context
            .kubeconfig
            .iter()
            .flat_map(|kubeconfig| &kubeconfig.files)
            .find(|file| file.user == kubelet_user)
            .map(|file| file.path.clone()),
        bundle: context
            .bundles
            .iter()
            .flat_map(|bundles| &bundles.nodes)
            .find(|bundle| bundle.hostname == node.hostname)
            .map(|bundle| bundle.archive.clone()),
    }
}

/// Fields that identify a resource: ids, ARNs, the load balancer's DNS name, certificate
/// fingerprints.
fn is_identifier(key: &str) -> bool {
    key == "id" || key.ends_with("_id") || key == "arn" || key.ends_with("_arn") || key == "dns_name" || key == "sha256"
}

/// The identifiers in a section, nested as they are there; `None` where there are none. A list
/// keeps its length, so the n-th entry still names the n-th record.
fn identifiers(value: &Value) -> Option<Value> {
    match value {
        Value::Object(fields) => {
            let ids: serde_json::Map<String, Value> = fields
                .iter()
                .filter_map(|(key, inner)| match inner {
                    Value::String(_) if is_identifier(key) => Some((key.clone(), inner.clone())),
                    _ => identifiers(inner).map(|ids| (key.clone(), ids)),
                })
                .collect();
            (!ids.is_empty()).then_some(Value::Object(ids))
        }
        Value::Array(items) => {
            let ids: Vec<Option<Value>> = items.iter().map(identifiers).collect();
            ids.iter().any(Option::is_some).then(|| {
                Value::Array(
                    ids.into_iter().map(|id| id.unwrap_or_else(|| Value::Object(serde_json::Map::new()))).collect(),
                )
            })
        }
        _ => None,
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
    for stale in context.stale() {
        let (path, from, step) = (stale.path, stale.changed.join(", "), stale.step);
        lines.push(format!("  stale: {path} ({from} changed since); `groundup up --only {step}` makes it again"));
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
        assert!(line(&lines, "sg").contains("1 groups"), "{lines:?}");
    }

    #[test]
    fn json_lists_each_steps_state_and_resource_ids() {
        let mut context = example("03-infra.json");
        context.pipeline.push("ca".into());
        let document = serde_json::to_value(document(&context).unwrap()).unwrap();
        assert_eq!(document["target"], target(&context));
        let steps = document["steps"].as_array().unwrap();
        assert_eq!(steps.len(), context.pipeline.len());
        let step = |name: &str| steps.iter().find(|s| s["step"] == name).unwrap();
        assert_eq!(step("vpc")["state"], "done");
        assert_eq!(step("vpc")["ids"]["id"], context.vpc.as_ref().unwrap().id.to_string());
        let nodes = &context.compute.as_ref().unwrap().nodes;
        assert_eq!(step("compute")["ids"]["nodes"][5]["instance_id"], nodes[5].instance_id.to_string());
        assert_eq!(document["nodes"][5]["instance_id"], nodes[5].instance_id.to_string());
        assert_eq!(step("nlb")["ids"]["listener_arn"], context.nlb.as_ref().unwrap().listener_arn.to_string());
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
