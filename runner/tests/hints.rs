//! Every hint groundup prints is followed here, as a user would, and must lead somewhere:
//! a refusal's way forward works, a warning's command does what it says.

use std::process::Output;

use groundup_testkit::{assert_success, endpoint, TestCluster};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The commands a message quotes, `groundup ...` between backticks, in order.
fn quoted_commands(message: &str) -> Vec<String> {
    message.split('`').skip(1).step_by(2).filter(|s| s.starts_with("groundup ")).map(String::from).collect()
}

/// Runs a quoted `groundup ...` command in the cluster's directory.
fn follow(cluster: &TestCluster, command: &str, extra: &[&str]) -> Output {
    let mut args: Vec<&str> = command.split_whitespace().skip(1).collect();
    args.extend_from_slice(extra);
    cluster.groundup(&args)
}

/// `up --plan --pki-key ecdsa-p256` on a built PKI advised `groundup down --yes`, after which
/// the same refusal came back: the PKI outlives `down` unless `--purge`.
#[test]
fn the_key_type_refusal_names_the_commands_that_change_it() {
    let cluster = TestCluster::new("hintkey");
    assert_success(&cluster.up(&["--only", "ca"]), "up --only ca");
    let refused = cluster.groundup(&["up", "--plan", "--pki-key", "ecdsa-p256"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let commands = quoted_commands(&stderr(&refused));
    assert!(commands.len() >= 2, "no commands to follow in: {}", stderr(&refused));
    let (down, up) = (&commands[0], &commands[1]);
    assert!(down.starts_with("groundup down") && up.starts_with("groundup up"), "{commands:?}");

    assert_success(&follow(&cluster, down, &[]), down);
    // "then `groundup up` with the same flags"
    assert_success(&follow(&cluster, up, &["--only", "ca", "--pki-key", "ecdsa-p256"]), up);
    assert_eq!(serde_json::to_value(cluster.state().params.pki.key).unwrap(), "ecdsa-p256");
}

/// The warning about an SSH and API port open to the world told an existing cluster to pass
/// `--admin-cidr` to `groundup init`, which makes a new context.
#[test]
fn the_open_admin_range_warning_names_a_command_that_restricts_it() {
    let cluster = TestCluster::new("hintsg");
    let open = cluster.up(&["--to", "sg", "--admin-cidr", "0.0.0.0/0"]);
    assert_success(&open, "up --admin-cidr 0.0.0.0/0");
    let warning = stderr(&open);
    let command = quoted_commands(&warning)
        .into_iter()
        .find(|c| c.starts_with("groundup up"))
        .unwrap_or_else(|| panic!("the warning names no `groundup up`: {warning}"));
    let command = command.replace("YOUR.IP/32", "203.0.113.7/32");

    let restricted = follow(&cluster, &command, &["--to", "sg", "--endpoint", endpoint()]);
    assert_success(&restricted, &command);
    assert!(!stderr(&restricted).contains("whole internet"), "{}", stderr(&restricted));
    let state = cluster.state();
    assert_eq!(state.params.admin_cidr.to_string(), "203.0.113.7/32");
    // The masters' group, which has both ports.
    let ingress = &state.sg.unwrap().groups[0].ingress;
    let admitted = |port: i32| match ingress.iter().find(|rule| rule.from_port == port)?.source {
        groundup_contracts::network::RuleSource::Cidr(cidr) => Some(cidr.to_string()),
        groundup_contracts::network::RuleSource::Group(role) => Some(role.logical().to_string()),
    };
    for port in [22, state.params.ports.api.into()] {
        assert_eq!(admitted(port).as_deref(), Some("203.0.113.7/32"), "port {port}: {ingress:?}");
    }
}

/// After a pipeline built by hand (`groundup init | ... > ctx.json`), `status` said only "no
/// state file at groundup.json", and `up --from certs` made an empty groundup.json, failed,
/// and advised the same command again. Both name `--state`, and following that works.
#[test]
fn without_a_state_file_status_and_up_from_name_state() {
    let cluster = TestCluster::new("hintstate");
    let steps = ["vpc", "dhcp", "subnet", "igw", "routes", "sg", "nlb", "compute", "ca"];
    let context = cluster.pipe(&cluster.init(&[]), &steps);
    std::fs::write(cluster.dir.path().join("ctx.json"), context).unwrap();

    let status = cluster.groundup(&["status"]);
    assert!(!status.status.success() && stderr(&status).contains("--state FILE"), "{}", stderr(&status));
    let status = cluster.groundup(&["status", "--state", "ctx.json"]);
    assert_success(&status, "status --state ctx.json");
    assert!(String::from_utf8_lossy(&status.stdout).contains("done    ca"), "{status:?}");

    let refused = cluster.groundup(&["up", "--from", "certs"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--state FILE"), "{}", stderr(&refused));
    let left: Vec<_> = std::fs::read_dir(cluster.dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!left.iter().any(|name| name.to_string_lossy().starts_with("groundup.json")), "made: {left:?}");

    assert_success(&cluster.groundup(&["up", "--from", "certs", "--state", "ctx.json"]), "up --from certs --state");
    let finished = cluster.groundup(&["status", "--state", "ctx.json"]);
    assert!(!String::from_utf8_lossy(&finished.stdout).contains("pending"), "{finished:?}");
}

/// `up --state` but the steps' `--context`; `up --emulator-dir` but `emulator start --dir`.
/// One name each on every command, the old one kept as an alias.
#[test]
fn the_state_file_and_the_emulator_directory_have_one_name_everywhere() {
    let help = |program: &str, args: &[&str]| {
        let output = std::process::Command::new(groundup_testkit::bin(program)).args(args).output().unwrap();
        assert_success(&output, &format!("{program} {args:?}"));
        String::from_utf8(output.stdout).unwrap()
    };
    for (program, args) in [
        ("groundup", &["up", "--help"][..]),
        ("groundup", &["down", "--help"]),
        ("groundup", &["status", "--help"]),
        ("groundup", &["graph", "--help"]),
        ("groundup", &["distribute", "--help"]),
        ("groundup-vpc", &["--help"]),
        ("groundup-certs", &["--help"]),
    ] {
        let text = help(program, args);
        assert!(text.contains("--state <FILE>") && text.contains("--context"), "{program} {args:?}:\n{text}");
    }
    for args in [&["up", "--help"][..], &["init", "--help"], &["emulator", "start", "--help"]] {
        assert!(help("groundup", args).contains("--emulator-dir <DIR>"), "{args:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ctx.json"), groundup_testkit::example("03-infra.json")).unwrap();
    let run = |program: &str, args: &[&str]| {
        std::process::Command::new(groundup_testkit::bin(program)).args(args).current_dir(dir.path()).output().unwrap()
    };
    assert_success(&run("groundup", &["status", "--context", "ctx.json"]), "status --context");
    assert_success(&run("groundup-encryption", &["--state", "ctx.json", "--plan"]), "a step's --state");
}
