//! Rules real AWS enforces and the emulator does not: groundup must keep them itself, or only
//! a run against AWS would find out.

use std::process::Command;

use groundup_testkit::bin;

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
