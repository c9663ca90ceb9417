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
