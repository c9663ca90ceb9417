//! The runner under misuse: a killed runner, plugins, plans without a state file, steps run by
//! hand on the state file, and what `status` reports.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use groundup_contracts::plan::{Action, PlanSection};
use groundup_runtime::harness::StepContract;
use groundup_testkit::{assert_clean_failure, assert_success, endpoint, TestCluster};

/// Kills the process group of a runner the test started (runner, steps and their children),
/// however the test ends.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.wait();
    }
}

fn pid_in(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Alive and not a zombie waiting to be reaped.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A runner killed with SIGKILL takes its step with it, and the lock stays held by whatever the
/// step started until that ends too: a new `up` cannot race a step that lives on.
#[test]
fn a_killed_runner_takes_its_step_along_and_the_lock_outlives_it() {
    let cluster = TestCluster::new("orphan");
    let dir = cluster.dir.path();
    // Contract 1: no answer to `--contract`, so the process that holds on is the step itself.
    cluster.plugin(
        "hold",
        &format!(
            "[ $# -eq 0 ] || exit 2\nsleep 600 & echo $! > {0}/helper.pid\necho $$ > {0}/step.pid\nwait",
            dir.display()
        ),
    );
    let runner =
        cluster.spawn_in_own_group(&["up", "--name", &cluster.name, "--endpoint", endpoint(), "--pipeline", "hold"]);
    let mut group = Group(runner);
    wait_until("the step to start", || pid_in(&dir.join("step.pid")).is_some());
    let step = pid_in(&dir.join("step.pid")).unwrap();
    assert!(alive(step));

    group.0.kill().unwrap();
    group.0.wait().unwrap();
    wait_until("the step to die with its runner", || !alive(step));

    let helper = pid_in(&dir.join("helper.pid")).unwrap();
    assert!(alive(helper), "the step's own child should still hold the lock");
    let stderr =
        assert_clean_failure(&cluster.command(&["up"]).output().unwrap(), "up while a step's process lives on");
    assert!(stderr.contains("another groundup"), "{stderr}");
    drop(group);
}

/// `up` and `down --yes` remove their lock file as they end; nothing is left beside the state.
#[test]
fn no_lock_file_is_left_behind() {
    let cluster = TestCluster::new("nolock");
    let lock_file = cluster.dir.path().join("groundup.json.lock");
    assert_success(&cluster.up(&["--to", "vpc"]), "up --to vpc");
    assert!(!lock_file.exists(), "up left its lock file");
    assert_success(&cluster.groundup(&["down", "--yes"]), "down --yes");
    assert!(!lock_file.exists(), "down left its lock file");
}

/// A step killed by a signal is reported with the signal's name.
#[test]
fn a_crashed_step_names_its_signal() {
    let cluster = TestCluster::new("segv");
    cluster.plugin("crash", "kill -SEGV $$");
    let output = cluster.groundup_with_plugins(&[
        "up",
        "--name",
        &cluster.name,
        "--endpoint",
        endpoint(),
        "--pipeline",
        "crash",
    ]);
    let stderr = assert_clean_failure(&output, "up with a crashing step");
    assert!(stderr.contains("killed by SIGSEGV"), "{stderr}");
}

/// `just plan` on a fresh checkout: without a state file the plan is of the cluster the init
/// flags describe, everything to create, and no state file is written.
#[test]
fn a_plan_without_a_state_file_plans_the_init_flags() {
    let cluster = TestCluster::new("plan-fresh");
    let output = cluster.up(&["--plan", "--to", "subnet", "--vpc-cidr", "10.9.0.0/16", "--subnet-cidr", "10.9.1.0/24"]);
    assert_success(&output, "up --plan without a state file");
    let plan: PlanSection = serde_json::from_slice(&output.stdout).unwrap();
    let actions: Vec<(&str, Action)> = plan.resources.iter().map(|r| (r.resource.as_str(), r.action)).collect();
    assert_eq!(actions, [("vpc", Action::Create), ("dhcp", Action::Create), ("subnet", Action::Create)]);
    assert!(!cluster.state_path().exists(), "a plan wrote a state file");
    assert!(cluster.inventory().counts().values().all(|n| *n == 0), "a plan created something");
}

/// A plugin that says nothing of `--plan` would make real changes under `up --plan`: it is not
/// run, and the plan lists it as not planned.
#[test]
fn a_plugin_without_plan_support_is_not_run_by_a_plan() {
    let cluster = TestCluster::new("plugin-plan");
    let marker = cluster.dir.path().join("marker");
    cluster.plugin(
        "marker",
        &format!("context=$(cat)\n[ -n \"$context\" ] || exit 1\ntouch {}\nprintf '%s' \"$context\"", marker.display()),
    );
    let init =
        cluster.groundup(&["init", "--name", &cluster.name, "--endpoint", endpoint(), "--pipeline", "vpc,marker"]);
    assert_success(&init, "init");
    std::fs::write(cluster.state_path(), &init.stdout).unwrap();

    let output = cluster.groundup_with_plugins(&["up", "--plan"]);
    assert_success(&output, "up --plan with a plugin");
    assert!(!marker.exists(), "the plugin ran during a plan");
    let plan: PlanSection = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(plan.not_planned, ["marker"]);
    assert_eq!(plan.resources.len(), 1, "{plan:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not planned: marker"), "{stderr}");

    assert_success(&cluster.groundup_with_plugins(&["up"]), "up with the plugin");
    assert!(marker.exists(), "the plugin did not run in a real up");
}

/// Every built-in step declares the contract it follows, `--plan` included.
#[test]
fn steps_declare_their_contract() {
    let cluster = TestCluster::new("contract");
    for step in ["vpc", "certs"] {
        let output = cluster.run_step(step, &["--contract"], "");
        assert_success(&output, step);
        let contract: StepContract = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(contract, StepContract::CURRENT);
        assert_eq!(String::from_utf8_lossy(&output.stdout), "{\"contract\":2,\"plan\":true,\"events\":true}\n");
    }
}

/// `groundup-down --plan` used to print an empty plan; it refuses and points to the listing.
#[test]
fn the_teardown_step_refuses_to_plan() {
    let cluster = TestCluster::new("down-plan");
    let output = cluster.run_step("down", &["--plan"], &cluster.init(&[]));
    let stderr = assert_clean_failure(&output, "groundup-down --plan");
    assert!(stderr.contains("without --yes"), "{stderr}");
}

/// `groundup-ca > groundup.json` empties the file before the step reads it; `--in-place`
/// replaces it with the step's output instead.
#[test]
fn a_step_run_by_hand_updates_the_state_file_in_place() {
    let cluster = TestCluster::new("in-place");
    std::fs::write(cluster.state_path(), cluster.init(&["--pki-key", "ecdsa-p256"])).unwrap();
    let output = cluster.run_step("ca", &["--context", "groundup.json", "--in-place"], "");
    assert_success(&output, "groundup-ca --in-place");
    assert!(output.stdout.is_empty(), "--in-place wrote on stdout");
    let state = cluster.state();
    assert!(state.ca.is_some() && state.is_completed("ca"), "the state file lacks the step's section");
    let refused = cluster.run_step("ca", &["--in-place"], "");
    assert_clean_failure(&refused, "--in-place without --context");
}

/// A certificate that no longer matches the context: `up` names `groundup up --renew`, which
/// exists and re-issues it.
#[test]
fn renewal_goes_through_the_runner() {
    let cluster = TestCluster::new("renew");
    assert_success(&cluster.up(&["--pki-key", "ecdsa-p256"]), "up");
    cluster.edit_state(|state| {
        state.params.service_cidr = "10.33.0.0/24".parse().unwrap();
        state.params.kubernetes.cluster_dns = "10.33.0.10".parse().unwrap();
    });

    let stderr = assert_clean_failure(&cluster.groundup(&["up", "--only", "certs"]), "up with a stale certificate");
    assert!(stderr.contains("`groundup up --renew`"), "{stderr}");
    assert_success(&cluster.groundup(&["up", "--only", "certs", "--renew"]), "up --renew");
    assert_success(&cluster.groundup(&["up", "--only", "certs"]), "up after the renewal");
}

/// `--from sg` on a new state file cannot work: `sg` needs the `vpc` section. It is refused at
/// once, and the hint must not say it resumes at `sg`; it names the state file's flag and the
/// plain `up` that starts at `vpc`.
#[test]
fn the_resume_hint_after_up_from_is_true() {
    let cluster = TestCluster::new("from-sg");
    let stderr = assert_clean_failure(&cluster.up(&["--from", "sg"]), "up --from sg on a new state");
    assert!(!stderr.contains("resume at `sg`"), "{stderr}");
    assert!(stderr.contains("`--state FILE`") && stderr.contains("without `--from sg`"), "{stderr}");
}

/// `--from sg` on a state file with no step done (written by `groundup init`) fails at `sg`;
/// plain `up` would start at `vpc`, so the hint must not say it resumes at `sg`.
#[test]
fn the_resume_hint_after_up_from_on_an_unbuilt_state_is_true() {
    let cluster = TestCluster::new("from-sg-state");
    std::fs::write(cluster.state_path(), cluster.init(&[])).unwrap();
    let stderr = assert_clean_failure(&cluster.up(&["--from", "sg"]), "up --from sg on an unbuilt state");
    assert!(!stderr.contains("resume at `sg`"), "{stderr}");
    assert!(stderr.contains("`groundup up --from sg`"), "{stderr}");
}
