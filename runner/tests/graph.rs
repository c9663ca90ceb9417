//! `groundup graph` on a cluster built on the emulator, rendered by a real Graphviz.

use std::process::Command;

use groundup_contracts::infra::Role;
use groundup_testkit::{assert_clean_failure, assert_success, TestCluster};

#[test]
fn the_graph_of_an_emulator_cluster_renders_and_names_everything() {
    let cluster = TestCluster::new("graph");
    assert_success(&cluster.up(&["--pki-key", "ecdsa-p256"]), "up");
    let state = cluster.state();

    let dot = cluster.groundup(&["graph"]);
    assert_success(&dot, "graph");
    let dot = String::from_utf8(dot.stdout).unwrap();
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cluster.state_path()).unwrap()).unwrap();
    let mut ids = Vec::new();
    collect_ids(&document, &mut ids);
    let nodes = state.compute.as_ref().unwrap().nodes.len();
    assert_eq!(ids.len(), 9 + nodes, "one id per network resource and node: {ids:?}");
    for id in &ids {
        assert!(dot.contains(id.as_str()), "{id} is not in the graph");
    }
    let certificates =
        state.ca.iter().flat_map(|c| &c.authorities).chain(state.certs.iter().flat_map(|c| &c.certificates));
    for record in certificates {
        assert!(dot.contains(&format!("\"cert-{}\"", record.name)), "certificate {} is not drawn", record.name);
    }

    let home = cluster.dir.path();
    std::fs::copy(home.join("pki/ca.pem"), home.join("pki/admin.pem")).unwrap();
    let tampered = cluster.groundup(&["graph"]);
    let tampered = String::from_utf8(tampered.stdout).unwrap();
    let admin = tampered.lines().find(|l| l.contains("\"cert-admin\" [")).unwrap();
    assert!(admin.contains("color=red") && admin.contains("not the recorded certificate"), "{admin}");
    let kube_proxy = tampered.lines().find(|l| l.contains("\"cert-kube-proxy\" [")).unwrap();
    assert!(!kube_proxy.contains("color=red"), "{kube_proxy}");

    let committed = std::fs::read_to_string(groundup_testkit::workspace_root().join("runner/doc/cluster.dot")).unwrap();
    assert_eq!(
        shape(&committed, "k8s-cluster"),
        shape(&dot, &cluster.name),
        "the README's picture no longer matches the emulator's output: run scripts/graph.sh"
    );

    let Some(graphviz) = groundup_testkit::find_on_path("dot") else {
        eprintln!("SKIPPED rendering: Graphviz's `dot` is not installed (Debian: apt-get install graphviz; .ci/run installs it)");
        return;
    };
    let svg = cluster.dir.path().join("cluster.svg");
    assert_success(&cluster.groundup(&["graph", "--svg", svg.to_str().unwrap()]), "graph --svg");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.contains("<svg") && text.contains(&state.vpc.as_ref().unwrap().id.replace('-', "&#45;")),
        "not an SVG of the cluster"
    );
    let checked =
        Command::new(graphviz).arg("-Tsvg").arg("-o/dev/null").stdin(std::fs::File::open(svg).unwrap()).output();
    assert!(checked.is_ok());

    let mermaid = cluster.groundup(&["graph", "--format", "mermaid"]);
    assert_success(&mermaid, "graph --format mermaid");
    assert!(String::from_utf8_lossy(&mermaid.stdout).starts_with("flowchart LR"));
}

#[test]
fn graph_without_a_state_file_says_so() {
    let cluster = TestCluster::new("nograph");
    let stderr = assert_clean_failure(&cluster.groundup(&["graph"]), "graph without state");
    assert!(stderr.contains("no state file"), "{stderr}");
}

/// The graph without its labels: which nodes exist, in which groups, and the edges between
/// them; what differs between two runs of the same shape (ids, addresses, dates) is left out.
fn shape(dot: &str, cluster: &str) -> Vec<String> {
    dot.lines()
        .map(|line| line.split(" [label=").next().unwrap_or_default().replace(cluster, "CLUSTER"))
        .filter(|line| !line.trim_start().starts_with("label="))
        .collect()
}

/// Every resource id the steps recorded: strings that look like AWS ids or ARNs.
fn collect_ids(value: &serde_json::Value, ids: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) if s.starts_with("arn:") || is_ec2_id(s) => ids.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_ids(v, ids)),
        serde_json::Value::Object(map) => {
            map.iter().filter(|(k, _)| *k != "params" && *k != "plan").for_each(|(_, v)| collect_ids(v, ids))
        }
        _ => {}
    }
}

fn is_ec2_id(s: &str) -> bool {
    let prefixes = ["vpc-", "subnet-", "igw-", "rtb-", "sg-", "dopt-", "i-"];
    prefixes
        .iter()
        .any(|p| s.strip_prefix(p).is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_hexdigit())))
}

#[test]
fn status_json_gives_scripts_each_steps_state_and_ids_on_stdout() {
    let cluster = TestCluster::new("statusjson");
    assert_success(&cluster.up(&["--to", "subnet"]), "up --to subnet");
    let output = cluster.groundup(&["status", "--json"]);
    assert_success(&output, "status --json");
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    let state = cluster.state();
    assert_eq!(status["cluster"], cluster.name.as_str());
    assert!(status["target"].as_str().unwrap().starts_with("endpoint http://127.0.0.1:"));
    let steps = status["steps"].as_array().unwrap();
    assert_eq!(steps[0]["step"], "vpc");
    assert_eq!(steps[0]["state"], "done");
    assert_eq!(steps[0]["ids"]["id"], state.vpc.unwrap().id.as_str());
    assert_eq!(steps[2]["ids"]["id"], state.subnet.unwrap().id.as_str());
    assert_eq!(steps[3]["state"], "pending");
    assert_eq!(status["nodes"], serde_json::json!([]), "no machines before compute");
}

/// Scripts read `status --json` of a built cluster as plain nested JSON that keeps the
/// checked-in schema, with each node as the state file records it and the files made for it.
#[test]
fn status_json_of_a_built_cluster_lists_its_nodes_and_keeps_the_schema() {
    let cluster = TestCluster::new("statusnodes");
    assert_success(&cluster.up(&["--masters", "1", "--workers", "1"]), "up 1+1");
    let output = cluster.groundup(&["status", "--json"]);
    assert_success(&output, "status --json");
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");

    let schema_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../contracts/schema/status.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the checked-in schema is a JSON Schema");
    let errors: Vec<String> = validator.iter_errors(&status).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");

    let mut keys = Vec::new();
    collect_keys(&status, &mut keys);
    let flat: Vec<&String> = keys.iter().filter(|k| k.contains('[') || k.contains('.')).collect();
    assert!(flat.is_empty(), "keys that flatten a path: {flat:?}");

    let state = cluster.state();
    let nodes = &state.compute.as_ref().unwrap().nodes;
    let listed = status["nodes"].as_array().unwrap();
    assert_eq!(listed.len(), nodes.len());
    for node in nodes {
        let entry = listed.iter().find(|n| n["name"] == node.name.as_str()).unwrap_or_else(|| panic!("{listed:?}"));
        assert_eq!(entry["role"], node.role.name());
        assert_eq!(entry["instance_id"], node.instance_id.as_str());
        assert_eq!(entry["private_ip"], node.private_ip.to_string());
        assert_eq!(entry["public_ip"], serde_json::to_value(node.public_ip).unwrap());
        assert_eq!(entry["pod_cidr"], serde_json::to_value(node.pod_cidr).unwrap());
        // In the course's layout a master runs no kubelet: it has a bundle but no node
        // certificate or kubelet kubeconfig.
        let files: &[&str] =
            if node.role == Role::Worker { &["certificate", "kubeconfig", "bundle"] } else { &["bundle"] };
        for file in files {
            let path = entry[file].as_str().unwrap_or_else(|| panic!("{} has no {file}: {entry}", node.name));
            assert!(cluster.dir.path().join(path).is_file(), "{}'s {file} {path} is not a file", node.name);
        }
    }
    let worker = listed.iter().find(|n| n["role"] == "worker").unwrap();
    assert!(worker["pod_cidr"].is_string(), "a worker shows its pod range: {worker}");
}

fn collect_keys(value: &serde_json::Value, keys: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(fields) => {
            for (key, inner) in fields {
                keys.push(key.clone());
                collect_keys(inner, keys);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_keys(item, keys)),
        _ => {}
    }
}
