//! groundup-encryption on the example context: the current format, a key that a re-run never
//! changes, explicit rotation and retirement, and no key material outside the file.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use groundup_testkit::{ok, run};

const EXAMPLE: &str = include_str!("../../../contracts/examples/01-init.json");

fn encryption(args: &[&str], stdin: &str, dir: &Path) -> Output {
    run(env!("CARGO_BIN_EXE_groundup-encryption"), args, stdin, dir)
}

/// The config as YAML, read by a YAML parser of its own: (provider, key name, secret) in order.
fn keys(dir: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(dir.join("pki/encryption-config.yaml")).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(doc["kind"], "EncryptionConfiguration");
    assert_eq!(doc["apiVersion"], "apiserver.config.k8s.io/v1");
    let resource = &doc["resources"][0];
    assert_eq!(resource["resources"][0], "secrets");
    let providers = resource["providers"].as_sequence().unwrap();
    assert!(providers.last().unwrap().get("identity").is_some(), "identity must come last");
    let mut found = Vec::new();
    for provider in &providers[..providers.len() - 1] {
        let (name, body) = provider.as_mapping().unwrap().iter().next().unwrap();
        for key in body["keys"].as_sequence().unwrap() {
            let secret = key["secret"].as_str().unwrap().to_string();
            assert_eq!(openssl::base64::decode_block(&secret).unwrap().len(), 32);
            found.push((name.as_str().unwrap().into(), key["name"].as_str().unwrap().into(), secret));
        }
    }
    found
}

#[test]
fn the_key_is_made_once_kept_by_re_runs_and_changed_only_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let first = encryption(&[], EXAMPLE, dir.path());
    let context = ok(&first, "first run");
    let path = dir.path().join("pki/encryption-config.yaml");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let original = keys(dir.path());
    assert_eq!(original.iter().map(|k| (k.0.as_str(), k.1.as_str())).collect::<Vec<_>>(), [("aescbc", "key1")]);
    let bytes = std::fs::read(&path).unwrap();

    let again = encryption(&[], &context, dir.path());
    let context = ok(&again, "second run");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "a re-run must keep the file byte for byte");

    let rotated = encryption(&["--rotate"], &context, dir.path());
    let context = ok(&rotated, "--rotate");
    let after = keys(dir.path());
    assert_eq!(after.iter().map(|k| k.1.as_str()).collect::<Vec<_>>(), ["key2", "key1"], "new key first");
    assert_eq!(after[1].2, original[0].2, "the old key is kept");

    let switched = ok(&encryption(&["--rotate", "--provider", "secretbox"], &context, dir.path()), "switch");
    let retired = ok(&encryption(&["--retire-old"], &switched, dir.path()), "--retire-old");
    let last = keys(dir.path());
    assert_eq!(last.iter().map(|k| (k.0.as_str(), k.1.as_str())).collect::<Vec<_>>(), [("secretbox", "key3")]);

    let logs: Vec<Output> = vec![first, again, rotated];
    for secret in original.iter().chain(&after).chain(&last).map(|k| &k.2) {
        assert!(!retired.contains(secret.as_str()) && !context.contains(secret.as_str()), "a key is in the context");
        for output in &logs {
            assert!(!String::from_utf8_lossy(&output.stderr).contains(secret.as_str()), "a key is in a log");
        }
    }
    let section: serde_json::Value = serde_json::from_str(&retired).unwrap();
    assert_eq!(section["encryption"]["providers"][0]["keys"][0]["name"], "key3");
}

#[test]
fn a_file_groundup_did_not_write_or_a_lost_one_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let context = ok(&encryption(&[], EXAMPLE, dir.path()), "first run");
    let path = dir.path().join("pki/encryption-config.yaml");

    std::fs::remove_file(&path).unwrap();
    let lost = encryption(&[], &context, dir.path());
    assert!(!lost.status.success() && lost.stdout.is_empty());
    assert!(String::from_utf8_lossy(&lost.stderr).contains("is gone"), "{}", String::from_utf8_lossy(&lost.stderr));
    assert!(!path.exists(), "a new key was made in place of the lost one");

    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir(other.path().join("pki")).unwrap();
    std::fs::set_permissions(other.path().join("pki"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let planted = other.path().join("pki/encryption-config.yaml");
    std::fs::write(&planted, "kind: EncryptionConfig\napiVersion: v1\n").unwrap();
    let refused = encryption(&[], EXAMPLE, other.path());
    assert!(!refused.status.success() && refused.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&planted).unwrap(), "kind: EncryptionConfig\napiVersion: v1\n");

    // On a config that is there (the one above is gone, which is refused first).
    let kept = tempfile::tempdir().unwrap();
    let context = ok(&encryption(&[], EXAMPLE, kept.path()), "a config to switch");
    let switch = encryption(&["--provider", "aesgcm"], &context, kept.path());
    let stderr = String::from_utf8_lossy(&switch.stderr);
    assert!(!switch.status.success() && stderr.contains("--rotate"), "a switch without --rotate went by: {stderr}");
    assert_eq!(switch.status.code(), Some(2), "a provider switch without --rotate is bad input: {stderr}");
}

#[test]
fn a_plan_makes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut context: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
    context["plan"] = serde_json::json!({"resources": []});
    let planned = ok(&encryption(&["--plan"], &context.to_string(), dir.path()), "--plan");
    assert!(!dir.path().join("pki").exists(), "a plan created files");
    let plan: serde_json::Value = serde_json::from_str(&planned).unwrap();
    let entry = &plan["plan"]["resources"][0];
    assert_eq!(entry["action"], "create", "{plan}");
}

#[test]
fn a_retired_key_is_kept_in_pki_retired_with_its_date_and_the_message_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let context = ok(&encryption(&[], EXAMPLE, dir.path()), "first run");
    let key1 = keys(dir.path()).remove(0);
    let rotated = ok(&encryption(&["--rotate"], &context, dir.path()), "--rotate");
    let output = encryption(&["--retire-old"], &rotated, dir.path());
    ok(&output, "--retire-old at once");
    assert_eq!(keys(dir.path()).len(), 1, "the old key is still in the config");

    let retired: Vec<_> =
        std::fs::read_dir(dir.path().join("pki/retired")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(retired.len(), 1, "{retired:?}");
    let copy = &retired[0];
    let name = copy.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("encryption-config-20") && name.ends_with("Z.yaml"), "{name}");
    assert_eq!(copy.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(copy).unwrap();
    assert!(text.starts_with("# Retired 20") && text.contains("key1 (aescbc)"), "{text}");
    assert!(text.contains(&key1.2), "the copy lacks the retired key");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("key1 (aescbc)") && stderr.contains(&format!("pki/retired/{name}")), "{stderr}");
    assert!(!stderr.contains(&key1.2), "a key is in a log");

    // A purge removes the copy with the rest: it is recorded.
    let manifest = std::fs::read_to_string(dir.path().join("pki/.groundup-files")).unwrap();
    assert!(manifest.lines().any(|l| l == format!("retired/{name}")), "{manifest}");
}
