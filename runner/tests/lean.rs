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

/// The runner stays lean in size too (issue 21: 3,330 lines at filing): work that is not
/// pipeline, state, plan, status or supervision goes to the crate it belongs to.
const RUNNER_LINE_BUDGET: usize = 2_200;

/// The lines of every Rust source under `dir`, tests included, as `cat runner/src/*.rs | wc -l` counts them.
fn lines_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .map(|path| match path.is_dir() {
            true => lines_under(&path),
            false if path.extension().is_some_and(|ext| ext == "rs") => {
                std::fs::read_to_string(&path).expect("readable source").lines().count()
            }
            false => 0,
        })
        .sum()
}

#[test]
fn the_runner_s_sources_stay_within_their_line_budget() {
    let lines = lines_under(&workspace_root().join("runner/src"));
    assert!(lines > 100, "counted nothing useful: {lines} lines");
    assert!(
        lines <= RUNNER_LINE_BUDGET,
        "runner/src has {lines} lines, over its budget of {RUNNER_LINE_BUDGET}: move what is not pipeline, state, plan, status or supervision into the contracts, the runtime, a step or a tool"
    );
}
