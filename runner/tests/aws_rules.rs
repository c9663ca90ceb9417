//! Rules real AWS enforces and the emulator does not: groundup must keep them itself, or only
//! a run against AWS would find out.

use std::process::Command;

use groundup_contracts::params::SshKeyType;
use groundup_testkit::{assert_success, bin, TestCluster};

/// A load balancer's name must not begin with `internal-`, and it takes the cluster's name:
/// `up --name internal-k8s` got as far as `nlb`, where only real AWS would refuse it.
#[test]
fn a_cluster_name_aws_would_refuse_for_the_load_balancer_is_refused_at_init() {
    let dir = tempfile::tempdir().unwrap();
    let groundup = |args: &[&str]| Command::new(bin("groundup")).args(args).current_dir(dir.path()).output().unwrap();
    for command in ["init", "up"] {
        let refused = groundup(&[command, "--name", "internal-k8s", "--endpoint", "http://127.0.0.1:1"]);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{command}: {stderr}");
        assert!(stderr.contains("cluster.name") && stderr.contains("`internal-`"), "{command}: {stderr}");
        assert!(refused.stdout.is_empty(), "{command} wrote on stdout");
    }
    assert!(!dir.path().join("groundup.json").exists(), "up made a state file for a refused name");
}

/// What `ssh-keygen -l` says of a private key file: its bits and its type, e.g. `4096 RSA`.
fn key_listing(path: &std::path::Path) -> String {
    let listed = Command::new("ssh-keygen").arg("-l").arg("-f").arg(path).output().expect("ssh-keygen is installed");
    assert!(listed.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&listed.stderr));
    let text = String::from_utf8(listed.stdout).unwrap();
    let fields: Vec<&str> = text.split_whitespace().collect();
    format!("{} {}", fields[0], fields.last().unwrap().trim_matches(|c| c == '(' || c == ')'))
}

/// ImportKeyPair takes RSA of 1024, 2048 or 4096 bits (the EC2 User Guide), and groundup
/// imported 3072. A new cluster's key is ED25519, `--ssh-key rsa4096` makes RSA-4096, and a
/// cluster's existing key is kept when the type asked for changes.
#[test]
fn the_ssh_key_is_a_type_aws_imports_and_an_existing_key_is_kept() {
    let cluster = TestCluster::new("sshtype");
    assert_success(&cluster.up(&["--to", "compute"]), "up");
    let key_pair = cluster.state().compute.unwrap().key_pair;
    assert!(key_pair.private_key_path.ends_with(".id_ed25519"), "{}", key_pair.private_key_path);
    assert_eq!(key_listing(&cluster.dir.path().join(&key_pair.private_key_path)), "256 ED25519");

    let rsa = TestCluster::new("sshrsa");
    assert_success(&rsa.up(&["--to", "compute", "--ssh-key", "rsa4096"]), "up --ssh-key rsa4096");
    let made = rsa.state().compute.unwrap().key_pair;
    let path = rsa.dir.path().join(&made.private_key_path);
    assert_eq!(key_listing(&path), "4096 RSA");

    // An older state file, whose spec names no key type, reads as ED25519: its RSA key stays.
    rsa.edit_state(|state| state.params.ssh_key = SshKeyType::Ed25519);
    assert_success(&rsa.groundup(&["up", "--only", "compute"]), "up with the RSA key in place");
    assert_eq!(rsa.state().compute.unwrap().key_pair, made);
    assert_eq!(rsa.inventory().count(groundup_contracts::kinds::Kind::KeyPair), 1);
    let ssh_files: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".id_"))
        .collect();
    assert_eq!(ssh_files, [path.file_name().unwrap().to_string_lossy()], "a second key was made");
}
