//! groundup-bundles after the PKI, kubeconfig and encryption steps on the example context:
//! every node gets exactly what it needs, and a worker never a CA key, another node's key or
//! the admin's credentials.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use groundup_testkit::{ok, run};

const EXAMPLE: &str = include_str!("../../../contracts/examples/03-infra.json");

fn step(bin: &str, stdin: &str, dir: &Path) -> String {
    ok(&run(bin, &[], stdin, dir), bin)
}

fn every_file(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                found.push(entry.path().strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn each_node_gets_its_own_files_and_a_worker_no_ca_key_foreign_key_or_admin() {
    let dir = tempfile::tempdir().unwrap();
    let mut context: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
    context["params"]["pki"]["key"] = "ecdsa-p256".into();
    let mut context = context.to_string();
    for bin in [
        env!("CARGO_BIN_EXE_groundup-ca"),
        env!("CARGO_BIN_EXE_groundup-certs"),
        env!("CARGO_BIN_EXE_groundup-kubeconfig"),
        env!("CARGO_BIN_EXE_groundup-encryption"),
        env!("CARGO_BIN_EXE_groundup-bundles"),
    ] {
        context = step(bin, &context, dir.path());
    }
    let state: serde_json::Value = serde_json::from_str(&context).unwrap();
    let pki = dir.path().join("pki");
    let key_bytes: Vec<(String, Vec<u8>)> = std::fs::read_dir(&pki)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("-key.pem"))
        .map(|e| (e.file_name().to_string_lossy().to_string(), std::fs::read(e.path()).unwrap()))
        .collect();
    let admin = [pki.join("admin.pem"), pki.join("admin-key.pem"), dir.path().join("kubeconfig/admin.kubeconfig")]
        .map(|p| std::fs::read(p).unwrap());
    let nodes = state["compute"]["nodes"].as_array().unwrap();
    for node in nodes {
        let (host, name, role) =
            (node["hostname"].as_str().unwrap(), node["name"].as_str().unwrap(), node["role"].as_str().unwrap());
        let root = dir.path().join("nodes").join(host);
        let files = every_file(&root);
        let archive =
            Command::new("tar").arg("-tzf").arg(dir.path().join(format!("nodes/{host}.tar.gz"))).output().unwrap();
        let mut listed: Vec<String> = String::from_utf8_lossy(&archive.stdout)
            .lines()
            .filter(|l| !l.ends_with('/'))
            .map(|l| l.trim_start_matches("./").to_string())
            .collect();
        listed.sort();
        assert_eq!(listed, files, "{host}: the archive differs from the tree");
        for file in &files {
            let bytes = std::fs::read(root.join(file)).unwrap();
            let mode = std::fs::metadata(root.join(file)).unwrap().permissions().mode() & 0o777;
            if file.ends_with("-key.pem") || file.ends_with("kubeconfig") || file.ends_with(".yaml") {
                assert_eq!(mode, 0o600, "{host}: {file}");
            }
            for (key_name, key) in &key_bytes {
                if bytes == *key && role == "worker" {
                    assert_eq!(key_name, &format!("{name}-key.pem"), "{host} holds {key_name}");
                }
            }
            if role == "worker" {
                assert!(!admin.contains(&bytes), "{host}: {file} holds the admin's credentials");
            }
        }
        if role == "worker" {
            assert!(files.contains(&format!("var/lib/kubelet/{host}-key.pem")), "{host}: {files:?}");
            assert!(!files.iter().any(|f| f.contains("ca-key")), "{host}: {files:?}");
        } else {
            assert!(files.contains(&"var/lib/kubernetes/encryption-config.yaml".to_string()), "{host}: {files:?}");
            assert!(files.contains(&"var/lib/kubernetes/kubernetes.pem".to_string()), "{host}: {files:?}");
            assert_eq!(
                std::fs::read(root.join("etc/etcd/peer.pem")).unwrap(),
                std::fs::read(pki.join(format!("etcd-peer-{host}.pem"))).unwrap()
            );
        }
    }

    let archive = dir.path().join(format!("nodes/{}.tar.gz", nodes[0]["hostname"].as_str().unwrap()));
    let before = std::fs::metadata(&archive).unwrap().modified().unwrap();
    step(env!("CARGO_BIN_EXE_groundup-bundles"), &context, dir.path());
    assert_eq!(std::fs::metadata(&archive).unwrap().modified().unwrap(), before, "an unchanged bundle was rewritten");
}
