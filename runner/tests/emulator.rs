//! The emulator directory and process are groundup's alone: `stop` signals only the process
//! `start` made, the directory is private, and a stopped emulator is never silently replaced.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Output};

use groundup_testkit::{assert_clean_failure, assert_success, bin, endpoint, TestCluster};

fn emulator(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin("groundup")).arg("emulator").args(args).arg("--dir").arg(dir).output().unwrap()
}

/// Stops the emulator of a test directory however the test ends.
struct Stopper<'a>(&'a Path);

impl Drop for Stopper<'_> {
    fn drop(&mut self) {
        let _ = emulator(self.0, &["stop"]);
    }
}

/// A process of the test's own, to stand for a pid that is not the emulator.
struct Sleeper(Child);

impl Sleeper {
    fn new() -> Self {
        Sleeper(Command::new("sleep").arg("600").spawn().unwrap())
    }

    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    fn start_time(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0.id())).unwrap();
        stat[stat.rfind(')').unwrap() + 1..].split_whitespace().nth(19).unwrap().parse().unwrap()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn private_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn stop_signals_only_the_process_start_recorded() {
    let mut sleeper = Sleeper::new();
    let dir = private_dir();
    // The endpoint answers, as a live emulator's would, so only the pid checks stand between
    // `stop` and the sleeper.
    let records = [
        serde_json::json!({"pid": sleeper.0.id(), "endpoint": endpoint(), "start_time": sleeper.start_time(),
                           "cmdline": ["python", "moto_server", "-H", "127.0.0.1"]}),
        serde_json::json!({"pid": sleeper.0.id(), "endpoint": endpoint(), "start_time": sleeper.start_time() + 1,
                           "cmdline": ["sleep", "600"]}),
    ];
    for record in records {
        std::fs::write(dir.path().join("emulator.json"), record.to_string()).unwrap();
        let stderr = assert_clean_failure(&emulator(dir.path(), &["stop"]), "stop of another process");
        assert!(stderr.contains("nothing was signalled"), "{stderr}");
        assert!(sleeper.alive(), "stop signalled a process it did not start");
    }
}

#[test]
fn the_directory_is_private_whatever_the_umask() {
    let parent = private_dir();
    let dir = parent.path().join("emulator");
    let _stop = Stopper(&dir);
    let output = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" emulator start --dir \"$1\"")
        .arg(bin("groundup"))
        .arg(&dir)
        .output()
        .unwrap();
    assert_success(&output, "emulator start under umask 000");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("emulator.json")), 0o600);
    assert_eq!(mode(&dir.join("emulator.log")), 0o600);
}

#[test]
fn a_directory_others_can_write_is_refused_and_nothing_in_it_runs() {
    let dir = private_dir();
    let marker = dir.path().join("planted-ran");
    let planted = dir.path().join("venv/bin/moto_server");
    std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
    std::fs::write(&planted, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let output = Command::new(bin("groundup"))
        .args(["emulator", "start", "--dir"])
        .arg(dir.path())
        .env_remove("GROUNDUP_MOTO_SERVER")
        .output()
        .unwrap();
    let stderr = assert_clean_failure(&output, "start in a world-writable directory");
    assert!(stderr.contains("writable by others"), "{stderr}");
    assert!(!marker.exists(), "the planted moto_server ran");
}

#[test]
fn a_directory_of_another_user_is_refused() {
    let dir = private_dir();
    let _stop = Stopper(dir.path());
    // 65534 is `nobody`; the tests run as root (here and in CI), which may give it away.
    let chown = Command::new("chown").arg("65534").arg(dir.path()).status().unwrap();
    assert!(chown.success(), "chown needs root, as the test suite has");
    let stderr = assert_clean_failure(&emulator(dir.path(), &["start"]), "start in another user's directory");
    assert!(stderr.contains("belongs to user 65534"), "{stderr}");
}

#[test]
fn symlinks_in_the_directory_are_not_followed() {
    let outside = private_dir();
    for name in ["emulator.log", "emulator.json"] {
        let dir = private_dir();
        let _stop = Stopper(dir.path());
        let victim = outside.path().join(name);
        std::fs::write(&victim, "precious").unwrap();
        symlink(&victim, dir.path().join(name)).unwrap();
        let stderr = assert_clean_failure(&emulator(dir.path(), &["start"]), name);
        assert!(stderr.contains("symlink"), "{name}: {stderr}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious", "{name} was followed");
    }
}

#[test]
fn a_stopped_emulator_is_reported_with_a_hint_that_works() {
    let cluster = TestCluster::new("emu-restart");
    let dir = cluster.dir.path().join("emulator");
    let _stop = Stopper(&dir);
    let dir_flag = dir.to_str().unwrap();
    let up = |extra: &[&str]| {
        let mut args = vec!["up", "--name", &cluster.name, "--emulator-dir", dir_flag, "--to", "vpc"];
        args.extend_from_slice(extra);
        cluster.groundup(&args)
    };
    assert_success(&up(&[]), "first up");
    let recorded = cluster.state().target;
    let log = std::fs::read_to_string(dir.join("emulator.log")).unwrap();
    assert!(log.contains("/moto-api/config") && !log.contains("data.json"), "the probe is cheap: {log}");

    assert_success(&emulator(&dir, &["stop"]), "stop");
    let stderr = assert_clean_failure(&up(&[]), "up with the emulator stopped");
    assert_eq!(cluster.state().target, recorded, "the state file still names the recorded emulator");
    assert!(!emulator(&dir, &["status"]).status.success(), "up started an emulator of its own");

    let hint = stderr.split('`').find(|s| s.starts_with("groundup emulator start")).expect("a command to run");
    let words: Vec<&str> = hint.split_whitespace().skip(1).collect();
    let restarted = cluster.groundup(&words);
    assert_success(&restarted, hint);
    assert_eq!(String::from_utf8(restarted.stdout).unwrap().trim(), recorded.endpoint().unwrap());
    assert_success(&up(&[]), "up after following the hint");
    assert_eq!(cluster.state().target, recorded);
}
