//! The runner under misuse: a killed runner, plugins, plans without a state file, steps run by
//! hand on the state file, and what `status` reports.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

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
    cluster
        .plugin("hold", &format!("sleep 600 & echo $! > {0}/helper.pid\necho $$ > {0}/step.pid\nwait", dir.display()));
    let runner = cluster
        .command(&["up", "--name", &cluster.name, "--endpoint", endpoint(), "--pipeline", "hold"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
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
