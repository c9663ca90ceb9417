//! Errors say whose move it is: a message that asks the user to fix an input exits 2 and names
//! it (the state file with its flag `--state`, a field of it, `--name`, `--events-fd`), and a
//! failure that is not the user's (the system refusing a read, a cloud that does not answer)
//! exits 1. No test here needs the emulator: the cluster's target is a loopback port nothing
//! listens on.

use groundup_testkit::{assert_clean_failure, bin, run, TestCluster};

/// A loopback endpoint where nothing answers (a port bound, then let go).
fn dead_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port())
}

/// A cluster whose state file `groundup.json` aims at a loopback port where nothing answers.
fn cluster_with_a_dead_endpoint(label: &str) -> TestCluster {
    let cluster = TestCluster::new(label);
    let init = cluster.groundup(&["init", "--name", &cluster.name, "--endpoint", &dead_endpoint()]);
    let context = String::from_utf8(init.stdout).unwrap();
    assert!(init.status.success() && !context.is_empty(), "init: {}", String::from_utf8_lossy(&init.stderr));
    std::fs::write(cluster.state_path(), context).unwrap();
    cluster
}

#[test]
fn a_state_file_to_fix_and_another_clusters_name_exit_2_naming_them() {
    let cluster = cluster_with_a_dead_endpoint("exit-two");
    let dir = cluster.dir.path();
    std::fs::write(dir.join("empty.json"), "\n").unwrap();
    let context = std::fs::read_to_string(cluster.state_path()).unwrap();
    std::fs::write(dir.join("invalid.json"), context.replace("172.31.0.0/16", "172.31.0.0/33")).unwrap();
    let other = format!("{}-other", cluster.name);
    for (args, names) in [
        (vec!["down", "--state", "missing.json"], &["no state file at missing.json (--state)"][..]),
        (vec!["check", "--state", "missing.json"], &["no state file at missing.json (--state)"]),
        (vec!["graph", "--state", "missing.json"], &["no state file at missing.json (--state)"]),
        (vec!["down", "--state", "empty.json"], &["the state file empty.json is empty", "--state empty.json"]),
        (vec!["status", "--state", "empty.json"], &["the state file empty.json is empty"]),
        (vec!["down", "--state", "invalid.json"], &["the state file invalid.json is unusable", "params.vpc_cidr"]),
        (vec!["graph", "--state", "invalid.json"], &["params.vpc_cidr"]),
        (vec!["down", "--name", other.as_str()], &["is for cluster", "not `", "(--name)"]),
        (vec!["up", "--plan", "--name", other.as_str()], &["is for cluster", "(--name)"]),
    ] {
        let output = cluster.groundup(&args);
        let stderr = assert_clean_failure(&output, &args.join(" "));
        assert_eq!(output.status.code(), Some(2), "{args:?}: an input to fix exits 2: {stderr}");
        for name in names {
            assert!(stderr.contains(name), "{args:?}: `{name}` not named in: {stderr}");
        }
    }
    assert_eq!(std::fs::read_to_string(cluster.state_path()).unwrap(), context, "a refusal changed the state file");

    // A step given a descriptor the runner cannot have meant.
    let output = run(bin("groundup-vpc"), &["--events-fd", "1"], &context, dir);
    let stderr = assert_clean_failure(&output, "groundup-vpc --events-fd 1");
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--events-fd 1"), "{stderr}");
}

#[test]
fn a_failure_that_is_not_the_users_exits_1() {
    let cluster = cluster_with_a_dead_endpoint("exit-one");
    std::fs::create_dir(cluster.dir.path().join("directory.json")).unwrap();
    for args in [["status", "--state", "directory.json"], ["down", "--state", "directory.json"]] {
        let output = cluster.groundup(&args);
        let stderr = assert_clean_failure(&output, &args.join(" "));
        assert_eq!(output.status.code(), Some(1), "{args:?}: the system refusing a read exits 1: {stderr}");
        assert!(stderr.contains("cannot read the state file directory.json"), "{args:?}: {stderr}");
    }

    // The cloud does not answer: the step and the runner that ran it exit 1.
    let context = std::fs::read_to_string(cluster.state_path()).unwrap();
    let step = run(bin("groundup-vpc"), &[], &context, cluster.dir.path());
    let stderr = assert_clean_failure(&step, "groundup-vpc against a dead endpoint");
    assert_eq!(step.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("could not reach"), "{stderr}");
    let down = cluster.groundup(&["down"]);
    let stderr = assert_clean_failure(&down, "down against a dead endpoint");
    assert_eq!(down.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("could not reach"), "{stderr}");
}

/// A step that writes no usable context has a bug; the user has nothing to fix: exit 1, naming
/// the step and what is wrong with its output.
#[test]
fn a_step_that_writes_an_unusable_context_exits_1_naming_it() {
    let cluster = TestCluster::new("exit-garbled");
    // Contract 1 (no answer to `--contract`): reads its context, writes one without its fields.
    cluster.plugin("garbled", "[ $# -eq 0 ] || exit 2\ncat >/dev/null\necho '{\"version\": 1}'");
    let dead = dead_endpoint();
    let args = ["up", "--name", &cluster.name, "--endpoint", &dead, "--pipeline", "garbled"];
    let output = cluster.groundup_with_plugins(&args);
    let stderr = assert_clean_failure(&output, "up with a step that writes an unusable context");
    assert_eq!(output.status.code(), Some(1), "a step's bug exits 1: {stderr}");
    assert!(stderr.contains("step `garbled` wrote an unusable context"), "{stderr}");
    assert!(stderr.contains("missing field"), "what is wrong with it: {stderr}");
}
