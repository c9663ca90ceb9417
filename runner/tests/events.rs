//! The step protocol's side channel (contract 2), with the test playing the runner: a step
//! sends its journal on the descriptor it is given and sends the create only once the runner
//! has answered; it never writes the runner's state file itself.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use groundup_contracts::kinds::Kind;
use groundup_runtime::events::{Ack, Event};
use groundup_testkit::{assert_success, bin, TestCluster};

/// `groundup-vpc --events-fd N` on the cluster's starting context, with `N` the step's end
/// of a socket pair whose other end is returned. The variable that made steps write the
/// state file themselves before contract 2 is set, to show that nothing reads it any more.
fn vpc_with_events(cluster: &TestCluster) -> (Child, BufReader<UnixStream>) {
    let (runner_end, step_end) = UnixStream::pair().unwrap();
    runner_end.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let fd = step_end.as_raw_fd();
    let mut command = Command::new(bin("groundup-vpc"));
    command
        .args(["--events-fd", &fd.to_string()])
        .env("GROUNDUP_STATE_FILE", cluster.state_path())
        .current_dir(cluster.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: fcntl between fork and exec, on a descriptor this process owns.
    unsafe {
        command.pre_exec(move || match libc::fcntl(fd, libc::F_SETFD, 0) {
            -1 => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
    let mut step = command.spawn().unwrap();
    drop(step_end);
    let mut stdin = step.stdin.take().unwrap();
    stdin.write_all(cluster.init(&[]).as_bytes()).unwrap();
    drop(stdin);
    (step, BufReader::new(runner_end))
}

fn next_event(events: &mut BufReader<UnixStream>) -> Option<Event> {
    let mut line = String::new();
    match events.read_line(&mut line).unwrap() {
        0 => None,
        _ => Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("not an event: {line}: {e}"))),
    }
}

fn answer(events: &mut BufReader<UnixStream>, ack: &Ack) {
    let line = format!("{}\n", serde_json::to_string(ack).unwrap());
    events.get_mut().write_all(line.as_bytes()).unwrap();
}

#[test]
fn a_step_sends_its_journal_on_the_events_channel_and_creates_only_after_the_answer() {
    let cluster = TestCluster::new("events");
    let (step, mut events) = vpc_with_events(&cluster);
    let Some(Event::Journal { entries }) = next_event(&mut events) else { panic!("no journal event first") };
    assert_eq!(entries.iter().map(|e| e.resource.as_str()).collect::<Vec<_>>(), ["vpc"], "{entries:?}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(cluster.inventory().count(Kind::Vpc), 0, "the VPC was created before the runner saved its journal");

    answer(&mut events, &Ack { saved: true, error: None });
    let output = step.wait_with_output().unwrap();
    assert_success(&output, "groundup-vpc --events-fd");
    let Some(Event::Timings(figures)) = next_event(&mut events) else { panic!("no timings event at the end") };
    assert!(figures.step == "vpc" && figures.api_calls > 0, "{figures:?}");
    assert_eq!(next_event(&mut events), None, "more than a journal and the figures");
    assert_eq!(cluster.inventory().count(Kind::Vpc), 1);
    assert!(!cluster.state_path().exists(), "the step wrote a state file: only the runner writes it");
}

#[test]
fn a_journal_the_runner_could_not_save_stops_the_create() {
    let cluster = TestCluster::new("eventsno");
    let (step, mut events) = vpc_with_events(&cluster);
    let Some(Event::Journal { .. }) = next_event(&mut events) else { panic!("no journal event first") };
    answer(&mut events, &Ack { saved: false, error: Some("disk full".into()) });
    let output = step.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty() && stderr.contains("disk full"), "{stderr}");
    assert_eq!(cluster.inventory().count(Kind::Vpc), 0, "the VPC was created though its journal was not saved");
}

/// `up --timings=json` of a new cluster whose pipeline is `pipeline`, the plugins on `PATH`.
fn up_with_plugins(cluster: &TestCluster, pipeline: &str) -> std::process::Output {
    let endpoint = groundup_testkit::endpoint();
    let args = ["up", "--name", &cluster.name, "--endpoint", endpoint, "--pipeline", pipeline, "--timings=json"];
    cluster.groundup_with_plugins(&args)
}

/// Plugins written to contract 1 (one that does not answer `--contract`, one that answers
/// `"contract": 1`) run in a pipeline as before: with no argument they do not know, `--timings`
/// and all.
#[test]
fn plugins_of_contract_1_run_in_a_pipeline_without_the_side_channel() {
    let cluster = TestCluster::new("plugin-v1");
    let strict = "[ $# -eq 0 ] || { echo \"unexpected arguments: $*\" >&2; exit 2; }";
    cluster.plugin("quiet", &format!("{strict}\ntouch quiet.ran\ncat"));
    cluster.plugin(
        "old",
        &format!("[ \"$1\" = --contract ] && {{ echo '{{\"contract\":1,\"plan\":false}}'; exit 0; }}\n{strict}\ntouch old.ran\ncat"),
    );
    let up = up_with_plugins(&cluster, "quiet,old");
    assert_success(&up, "up with plugins of contract 1");
    assert!(cluster.dir.path().join("quiet.ran").exists() && cluster.dir.path().join("old.ran").exists());
    assert_eq!(cluster.state().completed, ["quiet", "old"]);
    let report: serde_json::Value = serde_json::from_slice(&up.stdout).unwrap();
    let steps: Vec<&str> = report["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["quiet", "old"]);
}

/// A plugin that answers contract 2 with `"events": true` gets `--events-fd`: its journal is
/// in the state file by the time the runner answers, and its figures reach `--timings`.
#[test]
fn a_plugin_of_contract_2_journals_and_reports_on_its_events_channel() {
    let cluster = TestCluster::new("plugin-v2");
    let journal =
        r#"{"event":"journal","entries":[{"step":"shout","resource":"thing","kind":"thing","client_token":"t-7"}]}"#;
    let timings = r#"{"event":"timings","step":"shout","api_calls":7,"api_seconds":0.5,"keys":0,"keygen_seconds":0.0}"#;
    cluster.plugin(
        "shout",
        &format!(
            "[ \"$1\" = --contract ] && {{ echo '{{\"contract\":2,\"plan\":false,\"events\":true}}'; exit 0; }}\n\
             [ \"$1\" = --events-fd ] || {{ echo \"no --events-fd: $*\" >&2; exit 2; }}\n\
             fd=$2\ncontext=$(cat)\n\
             echo '{journal}' >&$fd\nread -r ack <&$fd\necho \"$ack\" > ack.json\ncp groundup.json seen.json\n\
             echo '{timings}' >&$fd\nprintf '%s' \"$context\""
        ),
    );
    let up = up_with_plugins(&cluster, "shout");
    assert_success(&up, "up with a plugin of contract 2");
    let read = |name: &str| std::fs::read_to_string(cluster.dir.path().join(name)).unwrap();
    assert_eq!(read("ack.json"), "{\"saved\":true}\n");
    let seen = groundup_contracts::Context::from_json(&read("seen.json")).unwrap();
    assert_eq!(seen.journal.iter().map(|e| e.client_token.as_str()).collect::<Vec<_>>(), ["t-7"]);
    assert!(cluster.state().journal.is_empty(), "the step's output, without the entry, is the last word");
    let report: serde_json::Value = serde_json::from_slice(&up.stdout).unwrap();
    assert_eq!(report["steps"][0]["api_calls"], 7, "{report}");
}

/// Fault injection lives in the testkit's proxy, and the SSH tests use `distribute`'s own
/// flags: no shipped binary reads a test hook's variable.
#[test]
fn no_shipped_binary_carries_a_test_hook() {
    let dir = groundup_testkit::bin_dir();
    let binaries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with("groundup") && !name.contains('.') && path.is_file()
        })
        .collect();
    assert!(binaries.len() > 10, "the binaries are not built in {}: {binaries:?}", dir.display());
    for hook in ["GROUNDUP_CRASH_AFTER", "GROUNDUP_TEST_SSH"] {
        let found = Command::new("grep").args(["-l", "-a", "-F", hook]).args(&binaries).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&found.stdout), "", "binaries that read {hook}");
    }
}
