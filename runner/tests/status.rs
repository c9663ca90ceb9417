//! `groundup status --json` on clusters built on the emulator: what scripts read.

use groundup_testkit::{assert_success, TestCluster};

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
    assert_eq!(steps[0]["ids"]["id"], state.vpc.unwrap().id.to_string());
    assert_eq!(steps[2]["ids"]["id"], state.subnet.unwrap().id.to_string());
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
        assert_eq!(entry["instance_id"], node.instance_id.to_string());
        assert_eq!(entry["private_ip"], node.private_ip.to_string());
        assert_eq!(entry["public_ip"], serde_json::to_value(node.public_ip).unwrap());
        assert_eq!(entry["pod_cidr"], serde_json::to_value(node.pod_cidr).unwrap());
        // Every node runs a kubelet: its certificate, kubeconfig and bundle are named after its host.
        let named = [
            ("certificate", format!("pki/{}.pem", node.hostname)),
            ("kubeconfig", format!("kubeconfig/{}.kubeconfig", node.hostname)),
            ("bundle", format!("nodes/{}.tar.gz", node.hostname)),
        ];
        for (file, expected) in named {
            let path = entry[file].as_str().unwrap_or_else(|| panic!("{} has no {file}: {entry}", node.name));
            assert_eq!(path, expected, "{}'s {file}", node.name);
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
