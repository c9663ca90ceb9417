//! A change follows through: what embeds a re-issued certificate or a rotated encryption key
//! (kubeconfigs, node bundles) is made again in the same `up`, and `groundup status` flags
//! what a step run by hand left stale, until `up` makes it again.

use std::path::Path;

use groundup_contracts::infra::{Node, Role};
use groundup_testkit::{assert_success, TestCluster};

const SMALL: [&str; 4] = ["--masters", "1", "--workers", "1"];

fn node(cluster: &TestCluster, role: Role) -> Node {
    let nodes = cluster.state().compute.expect("compute is done").nodes;
    nodes.into_iter().find(|n| n.role == role).expect("a node of the role")
}

fn read(cluster: &TestCluster, path: impl AsRef<Path>) -> Vec<u8> {
    let path = cluster.dir.path().join(path);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether the kubeconfig at `kubeconfig` embeds the certificate file at `cert` as it is now.
fn embeds(cluster: &TestCluster, kubeconfig: &str, cert: &str) -> bool {
    let embedded = openssl::base64::encode_block(&read(cluster, cert));
    String::from_utf8(read(cluster, kubeconfig)).unwrap().contains(&embedded)
}

/// `groundup status` on stdout, and its `--json` document's `stale` list.
fn status(cluster: &TestCluster) -> (String, Vec<serde_json::Value>) {
    let text = cluster.groundup(&["status"]);
    assert_success(&text, "status");
    let json = cluster.groundup(&["status", "--json"]);
    assert_success(&json, "status --json");
    let document: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    (String::from_utf8(text.stdout).unwrap(), document["stale"].as_array().unwrap().clone())
}

/// A worker's certificate file deleted, then `up --only certs`: the certificate is issued
/// again, and the worker's kubeconfig and bundle, which embed it, are made again in the same
/// run, although `--only` named `certs` alone. Nothing is left stale.
#[test]
fn up_only_certs_brings_the_kubeconfigs_and_bundles_that_embed_a_reissued_certificate() {
    let cluster = TestCluster::new("follow");
    assert_success(&cluster.up(&SMALL), "up");
    let worker = node(&cluster, Role::Worker);
    let cert = format!("pki/{}.pem", worker.hostname);
    let (kubeconfig, copy) = (
        format!("kubeconfig/{}.kubeconfig", worker.hostname),
        format!("nodes/{0}/var/lib/kubelet/{0}.pem", worker.hostname),
    );
    let before = read(&cluster, &cert);
    std::fs::remove_file(cluster.dir.path().join(&cert)).unwrap();

    let output = cluster.groundup(&["up", "--only", "certs"]);
    assert_success(&output, "up --only certs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`kubeconfig`, `bundles`, made from it, run too"), "{stderr}");
    assert_ne!(read(&cluster, &cert), before, "the certificate was issued again");
    assert!(embeds(&cluster, &kubeconfig, &cert), "{kubeconfig} embeds the old certificate");
    assert_eq!(read(&cluster, &copy), read(&cluster, &cert), "the bundle holds the old certificate");
    let (text, stale) = status(&cluster);
    assert!(stale.is_empty() && !text.contains("stale"), "{text}");
}

/// Steps run by hand on the state file: `groundup-certs` re-issues the admin's certificate,
/// `groundup-encryption --rotate` puts a new key first. `status` flags the admin's kubeconfig
/// and the master's bundle (which copies the encryption config) as stale, naming what
/// changed and the command; `groundup up` makes them again and `status` is clean.
#[test]
fn status_flags_what_a_step_by_hand_left_stale_and_up_makes_it_again() {
    let cluster = TestCluster::new("byhand");
    assert_success(&cluster.up(&SMALL), "up");
    let master = node(&cluster, Role::Master);
    let (admin, config) = ("kubeconfig/admin.kubeconfig", "pki/encryption-config.yaml");
    let copy = format!("nodes/{}/var/lib/kubernetes/encryption-config.yaml", master.hostname);
    std::fs::remove_file(cluster.dir.path().join("pki/admin.pem")).unwrap();
    assert_success(&cluster.run_step("certs", &["--state", "groundup.json", "--in-place"], ""), "certs by hand");
    let rotate = ["--state", "groundup.json", "--in-place", "--rotate"];
    assert_success(&cluster.run_step("encryption", &rotate, ""), "encryption --rotate by hand");
    assert!(!embeds(&cluster, admin, "pki/admin.pem"));
    assert_ne!(read(&cluster, &copy), read(&cluster, config));

    let (text, stale) = status(&cluster);
    let archive = format!("nodes/{}.tar.gz", master.hostname);
    for (path, source, step) in [(admin, "pki/admin.pem", "kubeconfig"), (archive.as_str(), config, "bundles")] {
        let line = text.lines().find(|l| l.contains(&format!("stale: {path}"))).unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains(source) && line.contains(&format!("`groundup up --only {step}`")), "{line}");
        assert!(stale.iter().any(|s| s["path"] == path && s["step"] == step), "{stale:?}");
    }
    assert_eq!(stale.len(), 2, "only what was made from what changed: {stale:?}");

    assert_success(&cluster.groundup(&["up"]), "up");
    assert!(embeds(&cluster, admin, "pki/admin.pem"));
    assert_eq!(read(&cluster, &copy), read(&cluster, config));
    let (text, stale) = status(&cluster);
    assert!(stale.is_empty() && !text.contains("stale"), "{text}");
}
