//! Renewal and rotation through `groundup up` (issue 24 item 5): `--renew NAME` re-issues a
//! chosen certificate for its own key (a new one with `--new-key`), `--rotate-encryption-key`
//! and `--retire-old-encryption-key` change the encryption config's keys in order, and what
//! embeds either (kubeconfigs, bundles) follows in the same `up`.

use std::path::Path;

use groundup_contracts::Context;
use groundup_testkit::{assert_clean_failure, assert_success, TestCluster};
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
