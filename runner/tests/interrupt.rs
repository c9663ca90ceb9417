//! Ctrl-C during `up`: the step ends, the runner says where it stopped and that nothing was
//! lost, removes its lock file, exits 130, and the next `up` resumes.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use groundup_testkit::{assert_success, endpoint, TestCluster};

/// A plugin step that naps while the file `nap` exists in the cluster's directory (it runs
/// there), ending at once on SIGINT as a step that handles it would; then passes the context on.
const NAP: &str = r#"ctx=$(cat)
if [ -e nap ]; then
  trap 'kill $nap 2>/dev/null; exit 130' INT
  sleep 60 & nap=$!
  touch napping
  wait $nap
fi
printf '%s\n' "$ctx""#;

/// SIGINT is sent to the runner alone, as `kill -INT` does: the runner must forward it to the
/// step (a terminal's Ctrl-C reaches the whole process group).
#[test]
fn sigint_during_a_step_says_so_removes_the_lock_and_up_resumes() {
    let cluster = TestCluster::new("sigint");
    cluster.plugin("nap", NAP);
    let home = cluster.dir.path();
    std::fs::write(home.join("nap"), "").unwrap();
    let mut runner = cluster
        .command(&["up", "--name", &cluster.name, "--endpoint", endpoint(), "--pipeline", "vpc,nap,subnet"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(runner.stderr.take().unwrap());
    let reader = std::thread::spawn(move || stderr.lines().map_while(Result::ok).collect::<Vec<_>>());

    let deadline = Instant::now() + Duration::from_secs(60);
    while !home.join("napping").exists() {
        assert!(Instant::now() < deadline, "the nap step never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(home.join("groundup.json.lock").exists(), "no lock while the step runs");
    let started = Instant::now();
    // SAFETY: kill on the pid of a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(runner.id() as i32, libc::SIGINT) }, 0);
    let status = runner.wait().unwrap();
    let lines = reader.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(30), "the step was not ended: it napped on");
    assert_eq!(status.code(), Some(130), "{lines:#?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("groundup: interrupted during nap; nothing was lost; run `groundup up` to resume"),
        "{lines:#?}"
    );
    assert!(!home.join("groundup.json.lock").exists(), "the lock file was left behind");
    let state = cluster.state();
    assert_eq!(state.completed, ["vpc"], "the state file is not the last good step's");

    // Following the message resumes at the interrupted step.
    std::fs::remove_file(home.join("nap")).unwrap();
    let resumed = cluster.groundup_with_plugins(&["up"]);
    assert_success(&resumed, "up after the interruption");
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("[1/2] nap"), "did not resume at nap");
    assert_eq!(cluster.state().completed, ["vpc", "nap", "subnet"]);
}
