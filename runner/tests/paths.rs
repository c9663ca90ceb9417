//! Names and paths from the state file, which someone who cannot read `pki/` may still be able
//! to edit: every step proves them the cluster's own where they become paths, and refuses
//! anything else (exit code 2, naming the field) before it writes a byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use groundup_contracts::infra::Role;
use groundup_testkit::{assert_clean_failure, assert_success, TestCluster};

/// A built cluster of one master and one worker (ECDSA keys: quick).
fn small_cluster(label: &str) -> TestCluster {
    let cluster = TestCluster::new(label);
    assert_success(&cluster.up(&["--masters", "1", "--workers", "1", "--pki-key", "ecdsa-p256"]), "up");
    cluster
}

/// Every file below `dir` (symbolic links not followed) with its bytes.
fn files_below(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                files.insert(entry.path(), std::fs::read(entry.path()).unwrap());
            }
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Exit code 2, nothing on stdout, and the field named on stderr.
fn refused(output: &Output, field: &str, what: &str) {
    let stderr = assert_clean_failure(output, what);
    assert_eq!(output.status.code(), Some(2), "{what}: bad input is exit code 2: {stderr}");
    assert!(stderr.contains(field), "{what}: the error does not name `{field}`: {stderr}");
}

#[test]
fn a_node_named_like_the_ca_or_a_path_out_is_refused_and_no_file_gets_the_ca_key() {
    let cluster = small_cluster("names");
    let home = cluster.dir.path();
    let ca_key = std::fs::read(home.join("pki/ca-key.pem")).unwrap();
    let ca_key_base64 = openssl::base64::encode_block(&ca_key);
    // Somewhere a `../..` from `pki/` reaches, holding a key groundup must never copy.
    std::fs::create_dir_all(home.join("elsewhere")).unwrap();
    std::fs::write(home.join("elsewhere/stolen-key.pem"), "THE STOLEN KEY").unwrap();
    let compute = cluster.state().compute.unwrap();
    let worker = compute.nodes.iter().position(|n| n.role == Role::Worker).unwrap();
    let master = compute.nodes.iter().find(|n| n.role == Role::Master).unwrap().hostname.clone();
    let mut before = files_below(home);
    before.remove(&cluster.state_path());

    for name in ["ca", "../../elsewhere/stolen"] {
        cluster.edit_state(|context| context.compute.as_mut().unwrap().nodes[worker].name = name.into());
        let edited = std::fs::read(cluster.state_path()).unwrap();
        refused(&cluster.groundup(&["up", "--from", "kubeconfig"]), &format!("compute.nodes[{worker}].name"), name);
        let mut after = files_below(home);
        assert_eq!(after.remove(&cluster.state_path()), Some(edited), "{name}: the state file changed");
        assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>(), "{name}: files came or went");
        for (path, bytes) in &after {
            assert_eq!(bytes, &before[path], "{name}: {} changed", path.display());
            let written = path.starts_with(home.join("kubeconfig")) || path.starts_with(home.join("nodes"));
            if written && !path.to_string_lossy().contains(&master) {
                let leaked = contains(bytes, &ca_key) || contains(bytes, ca_key_base64.as_bytes());
                assert!(!leaked, "{name}: {} holds the CA key", path.display());
                assert!(!contains(bytes, b"THE STOLEN KEY"), "{name}: {} holds the stolen key", path.display());
            }
        }
    }
}

/// A directory outside the cluster's, holding what a worker's bundle holds.
fn foreign_bundle() -> tempfile::TempDir {
    let foreign = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(foreign.path().join("var/lib/kubelet")).unwrap();
    std::fs::write(foreign.path().join("var/lib/kubelet/kubeconfig"), "not groundup's").unwrap();
    foreign
}

#[test]
fn purge_refuses_a_symlinked_bundle_and_deletes_nothing_through_it() {
    let cluster = small_cluster("purgelink");
    let home = cluster.dir.path();
    let worker = cluster.state().compute.unwrap().workers().next().unwrap().hostname.clone();
    let foreign = foreign_bundle();
    std::fs::remove_dir_all(home.join("nodes").join(&worker)).unwrap();
    std::os::unix::fs::symlink(foreign.path(), home.join("nodes").join(&worker)).unwrap();

    let output = cluster.groundup(&["down", "--yes", "--purge"]);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "purge went through a link: {stderr}");
    assert!(stderr.contains(&format!("nodes/{worker} is a symbolic link")), "{stderr}");
    assert_eq!(std::fs::read(foreign.path().join("var/lib/kubelet/kubeconfig")).unwrap(), b"not groundup's");
    assert!(foreign.path().join("var/lib/kubelet").is_dir(), "a foreign directory was removed");
    assert!(!home.join("pki").exists(), "the other directories were not purged");
}

#[test]
fn bundles_refuse_a_symlinked_kubelet_dir_before_writing_a_key_through_it() {
    let cluster = small_cluster("bundlelink");
    let home = cluster.dir.path();
    let worker = cluster.state().compute.unwrap().workers().next().unwrap().hostname.clone();
    let foreign = foreign_bundle();
    let kubelet = home.join("nodes").join(&worker).join("var/lib/kubelet");
    std::fs::remove_dir_all(&kubelet).unwrap();
    std::os::unix::fs::symlink(foreign.path().join("var/lib/kubelet"), &kubelet).unwrap();

    let output = cluster.groundup(&["up", "--only", "bundles"]);
    let stderr = assert_clean_failure(&output, "bundles through a symlinked kubelet directory");
    assert!(stderr.contains(&format!("nodes/{worker}/var/lib/kubelet is a symbolic link")), "{stderr}");
    let left: Vec<_> =
        std::fs::read_dir(foreign.path().join("var/lib/kubelet")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["kubeconfig"], "a file was written through the link");
    assert_eq!(std::fs::read(foreign.path().join("var/lib/kubelet/kubeconfig")).unwrap(), b"not groundup's");
}
