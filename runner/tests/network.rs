//! The six network steps and the runner, end to end on the emulator.

use groundup_contracts::kinds::Kind;
use groundup_contracts::plan::Action;
use groundup_testkit::{assert_clean_failure, assert_success, TestCluster};
use serde_json::Value;

const NETWORK: &[&str] = &["vpc", "dhcp", "subnet", "igw", "routes", "sg"];

fn expected_network() -> Vec<(Kind, usize)> {
    use Kind::*;
    // Two security groups: the masters' and the nodes'.
    [(SecurityGroup, 2), (RouteTable, 1), (InternetGateway, 1), (Subnet, 1), (DhcpOptions, 1), (Vpc, 1)].to_vec()
}

fn counts(cluster: &TestCluster) -> Vec<(Kind, usize)> {
    cluster.inventory().counts().into_iter().filter(|(_, n)| *n > 0).collect()
}

#[test]
fn hand_made_pipe_creates_each_resource_once_and_reruns_identically() {
    let cluster = TestCluster::new("pipe");
    let context = cluster.init(&[]);
    let first = cluster.pipe(&context, NETWORK);
    assert_eq!(counts(&cluster), expected_network());
    let parsed: Value = serde_json::from_str(&first).unwrap();
    for section in NETWORK {
        assert!(parsed.get(section).is_some(), "section {section} missing from {first}");
    }
    assert_eq!(parsed["completed"], serde_json::json!(NETWORK));
    let recorded: Vec<groundup_contracts::network::GroupSection> =
        serde_json::from_value(parsed["sg"]["groups"].clone()).unwrap();
    let wanted = groundup_contracts::Params::course_defaults("us-east-2").security_groups();
    assert_eq!(recorded.iter().map(|g| (g.role, g.ingress.clone())).collect::<Vec<_>>(), wanted);
    assert_eq!(
        cluster.group_rules(),
        groundup_testkit::wanted_rules(&groundup_contracts::Params::course_defaults("us-east-2"))
    );

    let second = cluster.pipe(&first, NETWORK);
    assert_eq!(first, second, "a second run must output the same context");
    assert_eq!(counts(&cluster), expected_network(), "a second run must create nothing");
}

#[test]
fn unknown_sections_pass_through_every_step() {
    let cluster = TestCluster::new("plugin");
    let mut context: Value = serde_json::from_str(&cluster.init(&[])).unwrap();
    context["my-plugin"] = serde_json::json!({"nested": [1, 2, {"x": "y"}]});
    let output: Value = serde_json::from_str(&cluster.pipe(&context.to_string(), NETWORK)).unwrap();
    assert_eq!(output["my-plugin"], context["my-plugin"]);
}

#[test]
fn groundup_up_builds_the_network_and_a_second_up_creates_nothing() {
    let cluster = TestCluster::new("up");
    assert_success(&cluster.up(&["--to", "sg"]), "first up");
    let state = cluster.state();
    assert_eq!(state.completed, NETWORK);
    let ids = (state.vpc.clone().unwrap().id, state.sg.clone().unwrap());
    assert_eq!(counts(&cluster), expected_network());

    let again = cluster.up(&["--to", "sg"]);
    assert_success(&again, "second up");
    let planned = cluster.plan(&["--to", "sg"]);
    assert!(planned.resources.iter().all(|r| r.action == Action::Leave), "a second up left work: {planned:?}");
    assert_eq!(counts(&cluster), expected_network());
    let state = cluster.state();
    assert_eq!((state.vpc.unwrap().id, state.sg.unwrap()), ids);

    let status = cluster.groundup(&["status"]);
    assert_success(&status, "status");
    // A report is the command's product: it goes to stdout, so that it pipes.
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(table.contains("done    vpc") && table.contains(&ids.0.to_string()), "{table}");
}

#[test]
fn a_failed_step_keeps_the_last_good_context_and_up_resumes_there() {
    let cluster = TestCluster::new("resume");
    // A plugin step that fails, placed after `subnet`, stands in for any failing step.
    let plugin_dir = cluster.dir.path().join("plugins");
    std::fs::create_dir(&plugin_dir).unwrap();
    let plugin = plugin_dir.join("groundup-flaky");
    std::fs::write(
        &plugin,
        "#!/bin/sh\nif [ -e fixed ]; then exec cat; fi\necho 'groundup-flaky: error: not fixed yet' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", plugin_dir.display(), std::env::var("PATH").unwrap());
    let pipeline = "vpc,dhcp,subnet,flaky,igw,routes,sg";
    let up = |cluster: &TestCluster| {
        let mut command = std::process::Command::new(groundup_testkit::bin("groundup"));
        command
            .args(["up", "--name", &cluster.name, "--endpoint", groundup_testkit::endpoint(), "--pipeline", pipeline])
            .current_dir(cluster.dir.path())
            .env("PATH", &path);
        command.output().unwrap()
    };

    let failed = up(&cluster);
    assert_clean_failure(&failed, "up with a failing step");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("step `flaky` failed") && stderr.contains("resume"), "{stderr}");
    let saved = std::fs::read_to_string(cluster.state_path()).unwrap();
    let state = cluster.state();
    assert_eq!(state.completed, ["vpc", "dhcp", "subnet"]);
    assert!(state.igw.is_none());

    std::fs::write(cluster.dir.path().join("fixed"), "").unwrap();
    let resumed = up(&cluster);
    assert_success(&resumed, "resumed up");
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(!stderr.contains("] vpc"), "resume re-ran a done step: {stderr}");
    assert!(stderr.contains("[1/4] flaky"), "{stderr}");
    assert_eq!(cluster.state().completed, ["vpc", "dhcp", "subnet", "flaky", "igw", "routes", "sg"]);
    assert_ne!(saved, std::fs::read_to_string(cluster.state_path()).unwrap());
    assert_eq!(counts(&cluster), expected_network());
}

#[test]
fn from_to_and_only_select_steps() {
    let cluster = TestCluster::new("select");
    assert_success(&cluster.up(&["--to", "subnet"]), "up --to subnet");
    assert_eq!(cluster.state().completed, ["vpc", "dhcp", "subnet"]);
    assert_eq!(cluster.inventory().count(Kind::InternetGateway), 0);

    let only = cluster.up(&["--only", "igw"]);
    assert_success(&only, "up --only igw");
    assert_eq!(cluster.state().completed, ["vpc", "dhcp", "subnet", "igw"]);

    let from = cluster.up(&["--from", "subnet", "--to", "sg"]);
    assert_success(&from, "up --from subnet --to sg");
    let stderr = String::from_utf8_lossy(&from.stderr);
    assert!(stderr.contains("[1/4] subnet") && !stderr.contains("] vpc"), "{stderr}");
    assert_eq!(counts(&cluster), expected_network());

    assert_clean_failure(&cluster.up(&["--only", "nosuch"]), "--only nosuch");
}

#[test]
fn a_step_without_its_prerequisite_names_the_step_to_run_first() {
    let cluster = TestCluster::new("prereq");
    let context = cluster.init(&[]);
    let stderr = assert_clean_failure(&cluster.step("routes", &context), "routes without vpc");
    assert!(stderr.contains("no `vpc` section") && stderr.contains("groundup-vpc"), "{stderr}");
}

#[test]
fn bad_input_gets_one_clear_line_and_nothing_on_stdout() {
    let cluster = TestCluster::new("badin");
    let good: Value = serde_json::from_str(&cluster.init(&[])).unwrap();
    let with = |path: &[&str], value: Value| {
        let mut doc = good.clone();
        let (last, parents) = path.split_last().unwrap();
        let slot = parents.iter().fold(&mut doc, |v, k| &mut v[*k]);
        slot[*last] = value;
        doc.to_string()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty stdin", String::new(), "empty"),
        ("malformed JSON", "{\"version\": 1,".into(), "not valid JSON"),
        ("another version", with(&["version"], 2.into()), "version 2"),
        ("wrong section type", with(&["vpc"], "vpc-1".into()), "`vpc`"),
        ("bad CIDR", with(&["params", "vpc_cidr"], "172.31.0.0/40".into()), "`params.vpc_cidr`"),
        ("subnet outside VPC", with(&["params", "subnet_cidr"], "10.0.0.0/24".into()), "`params.subnet_cidr`"),
        ("unknown region", with(&["cluster", "region"], "moon-1".into()), "`cluster.region`"),
        (
            "non-loopback emulator",
            with(&["target"], serde_json::json!({"kind": "emulator", "endpoint": "http://10.1.1.1:5000"})),
            "`target.endpoint`",
        ),
    ];
    for (what, input, expected) in cases {
        let stderr = assert_clean_failure(&cluster.step("vpc", &input), what);
        assert!(stderr.contains(expected), "{what}: expected `{expected}` in: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{what}: one line expected: {stderr}");
    }
    assert_eq!(cluster.inventory().count(Kind::Vpc), 0, "bad input must not reach AWS");
}

#[test]
fn a_corrupt_state_file_is_reported_and_left_as_it_was() {
    let cluster = TestCluster::new("corrupt");
    std::fs::write(cluster.state_path(), "{\"version\": 1, \"cluster\": ").unwrap();
    let stderr = assert_clean_failure(&cluster.up(&[]), "up on a corrupt state file");
    assert!(stderr.contains("state file") && stderr.contains("not valid JSON"), "{stderr}");
    assert_eq!(std::fs::read_to_string(cluster.state_path()).unwrap(), "{\"version\": 1, \"cluster\": ");
}

#[test]
fn init_rejects_bad_flags_naming_the_field() {
    let cluster = TestCluster::new("initbad");
    for (flags, expected) in [
        (vec!["--subnet-cidr", "10.0.0.0/24"], "params.subnet_cidr"),
        (vec!["--region", "us-nowhere-1"], "cluster.region"),
        (vec!["--masters", "150", "--workers", "150"], "params.masters"),
        (vec!["--vpc-cidr", "300.0.0.0/16"], "--vpc-cidr"),
    ] {
        let mut args = vec!["init", "--endpoint", groundup_testkit::endpoint()];
        args.extend(flags.iter().copied());
        let stderr = String::from_utf8_lossy(&cluster.groundup(&args).stderr).to_string();
        assert!(stderr.contains(expected), "{flags:?}: expected `{expected}` in: {stderr}");
    }
}

#[test]
fn an_unreachable_target_fails_fast_with_a_hint() {
    let cluster = TestCluster::new("dead");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    drop(listener);
    let context = cluster.init(&[]).replace(groundup_testkit::endpoint(), &dead);
    let started = std::time::Instant::now();
    let stderr = assert_clean_failure(&cluster.step("vpc", &context), "vpc against a dead endpoint");
    assert!(stderr.contains("could not reach"), "{stderr}");
    assert!(stderr.contains("nothing answers at that address"), "the reason in words: {stderr}");
    assert!(!stderr.contains("dispatch failure"), "SDK internals leak: {stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "took {:?}", started.elapsed());
}

/// A resource that differs from the context in a field AWS cannot change in place (here a
/// subnet whose range the context no longer has) stops its step before anything changes:
/// exit code 2, one line naming the field, both values and the way forward, nothing on
/// stdout, and the resource left as it was.
#[test]
fn a_field_that_cannot_change_in_place_is_refused_before_anything_changes() {
    let cluster = TestCluster::new("immutable");
    assert_success(&cluster.up(&["--to", "subnet"]), "up --to subnet");
    let mut context: Value = serde_json::from_str(&std::fs::read_to_string(cluster.state_path()).unwrap()).unwrap();
    let subnet_id = context["subnet"]["id"].as_str().unwrap().to_string();
    context["params"]["subnet_cidr"] = "172.31.0.0/25".into();
    let output = cluster.step("subnet", &context.to_string());
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stdout.is_empty(), "a refused step wrote a context");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "subnet {subnet_id}: cidr is 172.31.0.0/24, the context asks for 172.31.0.0/25; it cannot change in place"
        )) && stderr.contains("set params.subnet_cidr to match; nothing was changed"),
        "{stderr}"
    );
    assert_eq!(counts(&cluster), expected_network()[3..].to_vec(), "the refused step created something");
}
