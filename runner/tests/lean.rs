//! The runner core does pipeline, state, plan, status and supervision only (ARCHITECTURE.md's
//! invariant): the PKI, archives, SSH delivery and the AWS SDK live in steps and tools it runs
//! as processes. Checked on what cargo itself resolves the `groundup` binary to link.

use std::process::Command;

use groundup_testkit::{assert_success, workspace_root};

/// The packages the runner links (normal dependencies, transitively), by name.
fn linked_by_the_runner() -> Vec<String> {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal",
            "-p",
            "groundup",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo runs");
    assert_success(&output, "cargo tree");
    let text = String::from_utf8(output.stdout).unwrap();
    text.lines().filter_map(|line| line.split_whitespace().next()).map(String::from).collect()
}

#[test]
fn the_runner_links_no_pki_no_archives_no_ssh_tool_and_no_aws_sdk() {
    let linked = linked_by_the_runner();
    assert!(linked.iter().any(|p| p == "groundup-contracts"), "cargo tree listed nothing useful: {linked:?}");
    let forbidden = [
        "groundup-pki",
        "groundup-cloud",
        "groundup-graph",
        "groundup-distribute",
        "openssl",
        "rsa",
        "tar",
        "flate2",
        "aws-config",
        "aws-sdk-ec2",
        "tokio",
    ];
    let found: Vec<&str> = forbidden.into_iter().filter(|name| linked.iter().any(|p| p == name)).collect();
    assert!(found.is_empty(), "the runner links {found:?}: move that work into a step or a tool (groundup-<tool>)");
}
