//! Real AWS only when this invocation asks for it. Every command here runs in a network
//! namespace without a route (`unshare -rn`), so that a regression cannot reach AWS.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use groundup_contracts::context::ALLOW_AWS_ENV;
use groundup_testkit::{assert_clean_failure, assert_success, bin, TestCluster};

/// `program args` with `stdin`, offline, in `dir`, without the opt-in variable unless `env`.
fn offline(dir: &Path, program: &str, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new("unshare");
    command.args(["-rn", "--"]).arg(bin(program)).args(args).env_remove(ALLOW_AWS_ENV).envs(env.iter().copied());
    let mut child = command
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare (util-linux) runs the test offline");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// A context whose target is real AWS; `init --aws` only writes it.
fn aws_context(cluster: &TestCluster) -> String {
    let output = offline(cluster.dir.path(), "groundup", &["init", "--aws", "--name", &cluster.name], "", &[]);
    assert_success(&output, "init --aws");
    String::from_utf8(output.stdout).unwrap()
}

fn refused_for_want_of_the_opt_in(output: &Output, what: &str) {
    let stderr = assert_clean_failure(output, what);
    assert!(stderr.contains("--aws") && stderr.contains(ALLOW_AWS_ENV), "{what}: {stderr}");
}

#[test]
fn every_step_refuses_an_aws_context_without_the_opt_in() {
    let cluster = TestCluster::new("optin-steps");
    let context = aws_context(&cluster);
    for step in ["vpc", "subnet", "compute", "down"] {
        let output = offline(cluster.dir.path(), &format!("groundup-{step}"), &[], &context, &[]);
        refused_for_want_of_the_opt_in(&output, step);
        assert_eq!(output.status.code(), Some(2), "{step}: bad input is exit code 2");
    }
    let planned = offline(cluster.dir.path(), "groundup-vpc", &["--plan"], &context, &[]);
    refused_for_want_of_the_opt_in(&planned, "vpc --plan");
}

#[test]
fn the_opt_in_lets_the_step_through_to_aws() {
    let cluster = TestCluster::new("optin-given");
    let context = aws_context(&cluster);
    for (args, env) in [(&["--aws"][..], &[][..]), (&[][..], &[(ALLOW_AWS_ENV, "1")][..])] {
        let output = offline(cluster.dir.path(), "groundup-vpc", args, &context, env);
        let stderr = assert_clean_failure(&output, "vpc offline");
        assert!(!stderr.contains(ALLOW_AWS_ENV), "the opt-in was given: {stderr}");
        assert_eq!(output.status.code(), Some(1), "a failure to reach AWS, not bad input: {stderr}");
    }
}

#[test]
fn up_and_down_on_an_aws_state_need_the_opt_in_each_time() {
    let cluster = TestCluster::new("optin-runner");
    let context = aws_context(&cluster);
    std::fs::write(cluster.state_path(), &context).unwrap();
    let dir = cluster.dir.path();

    refused_for_want_of_the_opt_in(&offline(dir, "groundup", &["up"], "", &[]), "up");
    refused_for_want_of_the_opt_in(&offline(dir, "groundup", &["up", "--plan"], "", &[]), "up --plan");
    refused_for_want_of_the_opt_in(&offline(dir, "groundup", &["down"], "", &[]), "down");
    refused_for_want_of_the_opt_in(&offline(dir, "groundup", &["down", "--yes"], "", &[]), "down --yes");
    assert_eq!(std::fs::read_to_string(cluster.state_path()).unwrap(), context, "the state file is untouched");
}

#[test]
fn up_with_another_target_than_the_state_file_is_refused() {
    let cluster = TestCluster::new("optin-endpoint");
    let context = aws_context(&cluster);
    std::fs::write(cluster.state_path(), &context).unwrap();
    let output = offline(cluster.dir.path(), "groundup", &["up", "--endpoint", "http://127.0.0.1:9"], "", &[]);
    let stderr = assert_clean_failure(&output, "up --endpoint on an AWS state");
    assert!(stderr.contains("real AWS") && stderr.contains("http://127.0.0.1:9"), "{stderr}");
    assert_eq!(output.status.code(), Some(2), "a flag to drop is bad input: {stderr}");

    let emulated = cluster.init(&[]);
    std::fs::write(cluster.state_path(), &emulated).unwrap();
    let output = offline(cluster.dir.path(), "groundup", &["up", "--aws"], "", &[]);
    let stderr = assert_clean_failure(&output, "up --aws on an emulator state");
    assert!(stderr.contains("keeps its target"), "{stderr}");
    assert_eq!(output.status.code(), Some(2), "a flag to drop is bad input: {stderr}");
}

#[test]
fn an_emulator_url_with_userinfo_is_refused_before_any_request() {
    let cluster = TestCluster::new("optin-userinfo");
    let mut context: serde_json::Value = serde_json::from_str(&cluster.init(&[])).unwrap();
    context["target"] = serde_json::json!({"kind": "emulator", "endpoint": "http://127.0.0.1:5999@10.1.2.3/"});
    let output = offline(cluster.dir.path(), "groundup-vpc", &[], &context.to_string(), &[]);
    let stderr = assert_clean_failure(&output, "vpc on 10.1.2.3 disguised as loopback");
    assert!(stderr.contains("target.endpoint"), "{stderr}");
    assert_eq!(output.status.code(), Some(2));
}

/// `up --aws` passes the opt-in to each step explicitly: `--aws` to a step of contract 2, the
/// variable to a plugin of contract 1, which knows no `--aws`; and nothing without it.
#[test]
fn up_passes_the_opt_in_to_each_step_by_its_contract() {
    let cluster = TestCluster::new("optin-plugins");
    let dir = cluster.dir.path();
    let record = |name: &str| format!("echo \"args=$* env=${ALLOW_AWS_ENV}\" >> {name}.seen\ncat");
    cluster.plugin("legacy", &format!("[ $# -eq 0 ] || exit 2\n{}", record("legacy")));
    cluster.plugin(
        "modern",
        &format!(
            "[ \"$1\" = --contract ] && {{ echo '{{\"contract\":2,\"plan\":false,\"events\":false}}'; exit 0; }}\n{}",
            record("modern")
        ),
    );
    let init = ["init", "--aws", "--name", &cluster.name, "--pipeline", "legacy,modern"];
    let output = offline(dir, "groundup", &init, "", &[]);
    assert_success(&output, "init --aws with plugins");
    std::fs::write(cluster.state_path(), &output.stdout).unwrap();
    let path = format!("{}:{}", dir.join("plugins").display(), std::env::var("PATH").unwrap_or_default());

    assert_success(&offline(dir, "groundup", &["up"], "", &[("PATH", &path)]), "up without the opt-in");
    assert_success(&offline(dir, "groundup", &["up", "--aws"], "", &[("PATH", &path)]), "up --aws");
    let seen = |name: &str| std::fs::read_to_string(dir.join(format!("{name}.seen"))).unwrap();
    assert_eq!(seen("legacy"), "args= env=\nargs= env=1\n");
    assert_eq!(seen("modern"), "args= env=\nargs=--aws env=\n");
}
