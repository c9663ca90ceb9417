//! What the commands print on stdout reaches a pipe, and a reader that stops early
//! (`groundup status | head -1`) ends them quietly, never with a panic.

use std::process::{Command, Output, Stdio};

use groundup_testkit::{assert_success, bin, example, TestCluster};

/// 128 + SIGPIPE: what a shell reports for `yes | head -1`.
const CLOSED_PIPE_EXIT: i32 = 141;

/// Runs `command` with its stdout a pipe whose reading end is already closed, so that its
/// first write on stdout fails however fast it is.
fn with_closed_stdout(command: &mut Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    command.stdin(Stdio::null()).stdout(writer).stderr(Stdio::piped()).output().unwrap()
}

fn assert_ends_quietly(output: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(CLOSED_PIPE_EXIT), "{what}: {:?}\n{stderr}", output.status);
    assert!(stderr.is_empty(), "{what} said something as its reader went away:\n{stderr}");
}

/// A cluster's directory with the contract's example of a built infrastructure as its state.
fn built_cluster() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("groundup.json"), example("03-infra.json")).unwrap();
    dir
}

#[test]
fn status_prints_its_report_on_stdout_for_grep() {
    let dir = built_cluster();
    let output = Command::new(bin("groundup")).arg("status").current_dir(dir.path()).output().unwrap();
    assert_success(&output, "status");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let compute = stdout.lines().find(|l| l.contains(" compute ")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(compute.contains("done") && compute.contains("6 nodes"), "{compute}");
    assert!(output.stderr.is_empty(), "the report went to stderr too: {}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn every_command_with_a_product_ends_quietly_when_its_reader_has_gone() {
    let dir = built_cluster();
    let runner = |args: &[&str]| {
        let mut command = Command::new(bin("groundup"));
        command.args(args).current_dir(dir.path());
        with_closed_stdout(&mut command)
    };
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["graph"],
        &["init", "--endpoint", "http://127.0.0.1:1"],
        &["completions", "bash"],
        &["man"],
    ] {
        assert_ends_quietly(&runner(args), &format!("groundup {}", args.join(" ")));
    }
    // clap prints the help, and ignores a closed pipe: no panic, no message.
    let help = runner(&["--help"]);
    assert!(help.status.success() && help.stderr.is_empty(), "{help:?}");
    let contract = with_closed_stdout(Command::new(bin("groundup-vpc")).arg("--contract"));
    assert_ends_quietly(&contract, "groundup-vpc --contract");
    let step = with_closed_stdout(
        Command::new(bin("groundup-encryption")).args(["--state", "groundup.json", "--plan"]).current_dir(dir.path()),
    );
    let stderr = String::from_utf8_lossy(&step.stderr);
    assert_eq!(step.status.code(), Some(CLOSED_PIPE_EXIT), "{stderr}");
    assert!(!stderr.contains("error") && !stderr.contains("panicked"), "{stderr}");
}

/// `groundup down | head -1` panicked with exit code 101.
#[test]
fn down_ends_quietly_when_its_reader_has_gone() {
    let cluster = TestCluster::new("downpipe");
    assert_success(&cluster.up(&["--to", "vpc"]), "up --to vpc");
    let listed = with_closed_stdout(&mut cluster.command(&["down"]));
    assert_eq!(listed.status.code(), Some(CLOSED_PIPE_EXIT), "{}", String::from_utf8_lossy(&listed.stderr));
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("error"), "{stderr}");
}
