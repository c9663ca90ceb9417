//! Renewal and rotation through `groundup up` (issue 24 item 5): `--renew NAME` re-issues a
//! chosen certificate for its own key (a new one with `--new-key`), `--rotate-encryption-key`
//! and `--retire-old-encryption-key` change the encryption config's keys in order, and what
//! embeds either (kubeconfigs, bundles) follows in the same `up`. A cluster whose kubelet
//! certificates an earlier release named after the node moves to the hosts' names (issue 24
//! item 7), its old keys retired.

use std::path::Path;

use groundup_contracts::infra::{Node, Role};
use groundup_contracts::Context;
use groundup_testkit::{assert_clean_failure, assert_success, TestCluster};
use openssl::nid::Nid;
use openssl::x509::X509;

/// The admin certificate's serial and the SHA-256 of its public key.
fn admin(home: &Path) -> (String, Vec<u8>) {
    let cert = X509::from_pem(&std::fs::read(home.join("pki/admin.pem")).unwrap()).unwrap();
    let serial = cert.serial_number().to_bn().unwrap().to_hex_str().unwrap().to_string();
    let public_key = cert.public_key().unwrap().public_key_to_der().unwrap();
    (serial, openssl::sha::sha256(&public_key).to_vec())
}

/// Whether admin.kubeconfig embeds the admin certificate on disk.
fn kubeconfig_embeds_admin(home: &Path) -> bool {
    let pem = std::fs::read(home.join("pki/admin.pem")).unwrap();
    let kubeconfig = std::fs::read_to_string(home.join("kubeconfig/admin.kubeconfig")).unwrap();
    kubeconfig.contains(&openssl::base64::encode_block(&pem))
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn renew_a_named_certificate_keeps_its_key_unless_a_new_one_is_asked() {
    let cluster = TestCluster::new("renew-named");
    assert_success(&cluster.up(&["--pki-key", "ecdsa-p256", "--masters", "1", "--workers", "1"]), "up");
    let home = cluster.dir.path();
    let (serial, key) = admin(home);
    let kube_proxy = std::fs::read(home.join("pki/kube-proxy.pem")).unwrap();

    let nothing_due = cluster.groundup(&["up", "--renew"]);
    assert_success(&nothing_due, "up --renew with nothing due");
    assert!(stderr(&nothing_due).contains("nothing due before 20"), "{}", stderr(&nothing_due));
    assert_eq!(admin(home).0, serial, "--renew renewed a certificate that was not due");

    assert_success(&cluster.groundup(&["up", "--renew", "admin"]), "up --renew admin");
    let (renewed, renewed_key) = admin(home);
    assert_ne!(renewed, serial, "admin was not re-issued");
    assert_eq!(renewed_key, key, "--renew NAME must keep the key");
    assert_eq!(std::fs::read(home.join("pki/kube-proxy.pem")).unwrap(), kube_proxy, "only admin is renewed");
    assert!(kubeconfig_embeds_admin(home), "admin.kubeconfig still holds the old certificate");
    let recorded = cluster.state().certs.unwrap().certificates.into_iter().find(|c| c.name == "admin").unwrap();
    assert_eq!(recorded.serial.to_uppercase(), renewed.to_uppercase(), "the state records the old admin");

    assert_success(&cluster.groundup(&["up", "--renew", "admin", "--new-key"]), "up --renew admin --new-key");
    let (_, new_key) = admin(home);
    assert_ne!(new_key, key, "--new-key kept the key");
    assert!(home.join("pki/retired/admin-key.pem").exists(), "the old key was not retired");
    assert!(kubeconfig_embeds_admin(home), "admin.kubeconfig still holds the old certificate");
}

#[test]
fn renew_an_unknown_name_is_refused_naming_the_known_ones() {
    let cluster = TestCluster::new("renew-unknown");
    assert_success(&cluster.up(&["--pki-key", "ecdsa-p256", "--masters", "1", "--workers", "1"]), "up");
    let refused = cluster.groundup(&["up", "--renew", "admn"]);
    let message = assert_clean_failure(&refused, "up --renew admn");
    assert_eq!(refused.status.code(), Some(2), "{message}");
    assert!(message.contains("admn") && message.contains("admin, ") && message.contains("kube-proxy"), "{message}");
    let ca = cluster.groundup(&["up", "--renew", "ca"]);
    assert!(assert_clean_failure(&ca, "up --renew ca").contains("a CA is never renewed"));
}

/// The records of the encryption config's keys: (provider, key name, fingerprint) in order.
fn keys(state: &Context) -> Vec<(String, String, String)> {
    let providers = &state.encryption.as_ref().unwrap().providers;
    let keys = providers
        .iter()
        .flat_map(|p| p.keys.iter().map(move |k| (p.provider.clone(), k.name.clone(), k.sha256.clone())));
    keys.collect()
}

#[test]
fn rotate_then_retire_the_encryption_key_and_the_masters_bundles_follow() {
    let cluster = TestCluster::new("rotate");
    assert_success(&cluster.up(&["--pki-key", "ecdsa-p256", "--masters", "1", "--workers", "1"]), "up");
    let home = cluster.dir.path();
    let original = keys(&cluster.state());
    assert_eq!(original.len(), 1);
    let master = cluster.state().compute.unwrap().masters().next().unwrap().hostname.clone();
    let in_bundle = home.join("nodes").join(&master).join("var/lib/kubernetes/encryption-config.yaml");
    let config = home.join("pki/encryption-config.yaml");

    assert_success(&cluster.groundup(&["up", "--rotate-encryption-key"]), "up --rotate-encryption-key");
    let rotated = keys(&cluster.state());
    assert_eq!(rotated.len(), 2, "{rotated:?}");
    assert_eq!(rotated[1], original[0], "the old key must stay, second, to decrypt what it wrote");
    assert_ne!(rotated[0], original[0], "no new key first");
    assert_eq!(std::fs::read(&in_bundle).unwrap(), std::fs::read(&config).unwrap(), "the master's bundle is stale");

    assert_success(&cluster.groundup(&["up", "--retire-old-encryption-key"]), "up --retire-old-encryption-key");
    assert_eq!(keys(&cluster.state()), rotated[..1], "only the new key stays");
    assert_eq!(std::fs::read(&in_bundle).unwrap(), std::fs::read(&config).unwrap(), "the master's bundle is stale");
    let copies: Vec<_> = std::fs::read_dir(home.join("pki/retired"))
        .unwrap()
        .flatten()
        .filter(|f| f.file_name().to_string_lossy().starts_with("encryption-config-"))
        .collect();
    assert_eq!(copies.len(), 1, "the retired key is not kept");
}

/// Every file below the cluster's directories, with its mode and bytes: what a run changed. A
/// node's archive is compared by its bytes too: it takes its sources' times, so it stays the
/// same only if no file it holds was written again.
fn files_below(home: &Path) -> std::collections::BTreeMap<String, (u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut found = std::collections::BTreeMap::new();
    let mut stack: Vec<_> = ["pki", "kubeconfig", "nodes"].iter().map(|dir| home.join(dir)).collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                let path = entry.path().strip_prefix(home).unwrap().display().to_string();
                let mode = entry.metadata().unwrap().permissions().mode();
                found.insert(path, (mode, std::fs::read(entry.path()).unwrap()));
            }
        }
    }
    found
}

/// A cluster an earlier release built, its kubelet certificates named after the node
/// (`pki/<cluster>-worker-0.pem`, where the kubeconfig and the bundle say `ip-172-31-0-20`), in
/// kubeadm's layout (whose `kubelet.conf` embeds it too), is migrated in place by the next `up`:
/// each certificate is issued under its host's name, the old one retired with its key (never
/// dropped), and the kubeconfigs and bundles carry the new one. A second `up` changes nothing.
#[test]
fn kubelet_certificates_named_after_the_node_move_to_the_host_name_and_the_old_ones_are_retired() {
    let cluster = TestCluster::new("node-names");
    let small = ["--pki-key", "ecdsa-p256", "--masters", "1", "--workers", "1", "--kubeadm-layout"];
    assert_success(&cluster.up(&small), "up");
    let home = cluster.dir.path();
    let pki = home.join("pki");
    let nodes = cluster.state().compute.unwrap().nodes;
    // The files and the state as the earlier release wrote them.
    let manifest = pki.join(".groundup-files");
    let mut listed = std::fs::read_to_string(&manifest).unwrap();
    let mut old_keys = Vec::new();
    for node in &nodes {
        for suffix in [".pem", "-key.pem", ".csr"] {
            let (new, old) = (format!("{}{suffix}", node.hostname), format!("{}{suffix}", node.name));
            std::fs::rename(pki.join(&new), pki.join(&old)).unwrap();
            listed = listed.replace(&format!("{new}\n"), &format!("{old}\n"));
        }
        old_keys.push(std::fs::read(pki.join(format!("{}-key.pem", node.name))).unwrap());
    }
    std::fs::write(&manifest, listed).unwrap();
    cluster.edit_state(|state| {
        let old_path = |node: &Node, suffix: &str| format!("pki/{}{suffix}", node.name);
        for node in &nodes {
            let new_cert = format!("pki/{}.pem", node.hostname);
            let record = state.certs.as_mut().unwrap().certificates.iter_mut().find(|c| c.name == node.hostname);
            let record = record.expect("the kubelet's certificate is recorded");
            (record.name, record.cert_path, record.key_path) =
                (node.name.clone(), old_path(node, ".pem"), old_path(node, "-key.pem"));
            let kubeconfigs = state.kubeconfig.as_mut().unwrap().files.iter_mut().map(|f| &mut f.sources);
            for sources in kubeconfigs.chain(state.bundles.as_mut().unwrap().nodes.iter_mut().map(|b| &mut b.sources)) {
                if let Some(print) = sources.remove(&new_cert) {
                    sources.insert(old_path(node, ".pem"), print);
                }
            }
        }
    });

    assert_success(&cluster.groundup(&["up"]), "up on the earlier release's files");
    let state = cluster.state();
    let recorded = &state.certs.as_ref().unwrap().certificates;
    for (node, key) in nodes.iter().zip(old_keys) {
        let retired = pki.join("retired").join(format!("{}-key.pem", node.name));
        assert_eq!(std::fs::read(&retired).unwrap(), key, "{}'s old key was not retired", node.name);
        assert!(!pki.join(format!("{}.pem", node.name)).exists(), "{} is still in use", node.name);
        assert!(!recorded.iter().any(|c| c.name == node.name), "{} is still recorded", node.name);
        let record = recorded.iter().find(|c| c.name == node.hostname).expect("the new certificate is recorded");
        assert_eq!(record.cert_path, format!("pki/{}.pem", node.hostname));
        let cert = std::fs::read(pki.join(format!("{}.pem", node.hostname))).unwrap();
        let x509 = X509::from_pem(&cert).unwrap();
        let cn = x509.subject_name().entries_by_nid(Nid::COMMONNAME).next().unwrap().data().to_string().unwrap();
        assert_eq!(cn, format!("system:node:{}", node.hostname));
        let mut embedding = vec![format!("kubeconfig/{}.kubeconfig", node.hostname)];
        if node.role == Role::Master {
            embedding.push(format!("kubeconfig/kubeadm/{}/kubelet.conf", node.hostname));
        }
        for kubeconfig in embedding {
            let text = std::fs::read_to_string(home.join(&kubeconfig)).unwrap();
            assert!(text.contains(&openssl::base64::encode_block(&cert)), "{kubeconfig} embeds another certificate");
        }
        let in_bundle = home.join("nodes").join(&node.hostname).join(format!("var/lib/kubelet/{}.pem", node.hostname));
        assert_eq!(std::fs::read(&in_bundle).unwrap(), cert, "{}'s bundle holds another certificate", node.hostname);
    }
    assert!(state.stale().is_empty(), "{:?}", state.stale());
    let check = cluster.run_step("certs", &["check", "--context", "groundup.json"], "");
    assert_success(&check, "certs check after the migration");

    let migrated = files_below(home);
    assert!(cluster.pending_work().is_empty(), "{:#?}", cluster.pending_work());
    assert_success(&cluster.groundup(&["up"]), "up again");
    let again = files_below(home);
    assert_eq!(again.keys().collect::<Vec<_>>(), migrated.keys().collect::<Vec<_>>());
    let changed: Vec<&String> =
        again.iter().filter(|(path, held)| migrated[*path] != **held).map(|(path, _)| path).collect();
    assert!(changed.is_empty(), "the second up changed {changed:?}");
}
