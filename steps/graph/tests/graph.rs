//! `groundup graph` on a cluster built on the emulator, rendered by a real Graphviz.

use std::process::Command;

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
    assert_eq!(ids.len(), 10 + nodes, "one id per network resource (two security groups) and node: {ids:?}");
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

    let committed =
        std::fs::read_to_string(groundup_testkit::workspace_root().join("steps/graph/doc/cluster.dot")).unwrap();
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
        text.contains("<svg") && text.contains(&state.vpc.as_ref().unwrap().id.to_string().replace('-', "&#45;")),
        "not an SVG of the cluster"
    );
    let dot_file = cluster.dir.path().join("cluster.dot");
    std::fs::write(&dot_file, &dot).unwrap();
    let checked = Command::new(graphviz).arg("-Tsvg").arg("-o/dev/null").arg(&dot_file).output().unwrap();
    assert!(checked.status.success() && checked.stderr.is_empty(), "{}", String::from_utf8_lossy(&checked.stderr));
    // Graphviz writes a node's tooltip as the title of its link, escaping '-'.
    let nlb = state.nlb.as_ref().unwrap();
    for arn in [nlb.arn.to_string(), nlb.listener_arn.to_string(), nlb.target_group_arn.to_string()] {
        let title = format!("xlink:title=\"{}\"", arn.replace('-', "&#45;"));
        assert!(text.contains(&title), "the SVG has no title with the full ARN {arn}");
    }
    for kubeconfig in &state.kubeconfig.as_ref().unwrap().files {
        let file = std::path::Path::new(&kubeconfig.path).file_name().unwrap().to_string_lossy().into_owned();
        assert!(text.contains(&format!("<title>kubeconfig&#45;{}</title>", file.replace('-', "&#45;"))), "{file}");
    }

    let mermaid = cluster.groundup(&["graph", "--format", "mermaid"]);
    assert_success(&mermaid, "graph --format mermaid");
    assert!(String::from_utf8_lossy(&mermaid.stdout).starts_with("flowchart LR"));
}

/// `graph --help`: every flag, with a description.
#[test]
fn graph_help_describes_every_flag() {
    let cluster = TestCluster::new("graph-help");
    let help = cluster.groundup(&["graph", "-h"]);
    assert_success(&help, "graph -h");
    let help = String::from_utf8(help.stdout).unwrap();
    let flags: Vec<&str> = help.lines().filter(|line| line.trim_start().starts_with('-')).collect();
    assert!(flags.len() >= 4, "{help}");
    for line in flags {
        // `  --svg <FILE>       Render to ...`: the flag, then its description after a gap.
        let description = line.trim_start().split_once("  ").map(|(_, rest)| rest.trim());
        assert!(description.is_some_and(|d| !d.is_empty()), "a flag without a description: {line}");
    }
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
