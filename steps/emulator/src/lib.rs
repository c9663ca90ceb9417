//! The local AWS emulator: moto's server on a loopback port, installed into a project-local
//! virtualenv on first use when `moto_server` is not on PATH. The runner (`groundup emulator`,
//! `init`, `up`) and the tests' kit (`groundup_testkit::endpoint`) start and find it here.
//!
//! Its directory holds what groundup executes (the virtualenv) and the record of what it may
//! signal (`emulator.json`), so it must be ours alone: 0700 whatever the umask, owned by this
//! user, and no symlink is followed where groundup reads or writes.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use groundup_contracts::context::{is_loopback_url, parse_url};
use groundup_runtime::tool::find_on_path;
use serde::{Deserialize, Serialize};

pub use groundup_contracts::param_table::DEFAULT_EMULATOR_DIR as DEFAULT_DIR;
/// The moto release line the emulator notes were checked against.
const MOTO_REQUIREMENT: &str = "moto[server]>=5.1,<6";
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a busy emulator may take to answer the liveness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What `start` records, so that `stop` signals only the process it started: once that has
/// exited, its pid may name any other process.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Running {
    pid: u32,
    endpoint: String,
    /// Field 22 of /proc/<pid>/stat (clock ticks after boot): with the pid, names one process.
    start_time: u64,
    /// /proc/<pid>/cmdline when it started.
    cmdline: Vec<String>,
}

/// What the process a record names is now.
#[derive(Debug, PartialEq)]
enum Process {
    /// The emulator groundup started: same pid, start time and command line.
    Ours(libc::pid_t),
    /// No process has that pid.
    Gone,
    /// Something else; never signalled. Says why.
    Other(String),
}

/// Returns the endpoint of a live emulator, starting one if needed (on `port` if given).
pub fn ensure_running(dir: &Path, port: Option<u16>) -> Result<String> {
    prepare_dir(dir)?;
    if let Some(r) = live(dir)? {
        let recorded = parse_url(&r.endpoint).ok().and_then(|u| u.port);
        match port {
            Some(port) if recorded != Some(port) => bail!(
                "an emulator from {} already runs at {}; stop it first (`groundup emulator stop --emulator-dir {}`) to start one on port {port}",
                dir.display(),
                r.endpoint,
                dir.display()
            ),
            _ => return Ok(r.endpoint),
        }
    }
    let server = moto_server(dir)?;
    let port = match port {
        Some(port) => {
            TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .with_context(|| format!("port {port} on 127.0.0.1 is taken by another program"))?;
            port
        }
        None => free_port()?,
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let log = open_private(&dir.join("emulator.log"))?;
    let child = Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", server.display()))?;
    let pid = child.id();
    let started = start_time(pid)?;
    wait_until_up(&endpoint, pid, dir)?;
    // Read once it answers: a launcher (a pyenv shim, `env`) may exec several times first.
    let record = Running { pid, endpoint: endpoint.clone(), start_time: started, cmdline: cmdline(pid)? };
    write_record(dir, &record)?;
    eprintln!("groundup: emulator (moto) running at {endpoint}, pid {pid}");
    Ok(endpoint)
}

/// What to do when the emulator a state file records does not answer. A restarted emulator
/// starts empty, so the cluster is never moved to one silently.
pub fn not_answering(endpoint: &str, dir: &Path) -> anyhow::Error {
    let port = parse_url(endpoint).ok().and_then(|u| u.port).map_or(String::new(), |p| format!(" --port {p}"));
    anyhow!(
        "the emulator at {endpoint} that the state file records does not answer. If it is only busy, try again. \
         If it stopped, the cluster's resources went with it: start one on the same port with \
         `groundup emulator start{port} --emulator-dir {}`, then `groundup up` builds them again",
        dir.display()
    )
}

/// Stops the emulator started from `dir`, if it is still the process `start` recorded.
pub fn stop(dir: &Path) -> Result<()> {
    prepare_dir(dir)?;
    let Some(record) = read_record(dir)? else {
        eprintln!("groundup: no emulator was started from {}", dir.display());
        return Ok(());
    };
    match identify(&record) {
        Process::Ours(pid) => {
            // The pid alone, not its group: only this process is proven ours.
            if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
                bail!("cannot stop the emulator (pid {pid}): {}", std::io::Error::last_os_error());
            }
            eprintln!("groundup: stopped the emulator at {} (pid {pid})", record.endpoint);
        }
        Process::Gone => eprintln!("groundup: the emulator at {} was not running", record.endpoint),
        Process::Other(why) => bail!(
            "not stopping pid {}: {why}, so it is not the emulator groundup started; nothing was signalled. \
             Remove {} if that emulator is gone",
            record.pid,
            record_file(dir).display()
        ),
    }
    std::fs::remove_file(record_file(dir))?;
    Ok(())
}

/// The endpoint of the emulator started from `dir`, if it answers.
pub fn running_endpoint(dir: &Path) -> Result<Option<String>> {
    Ok(live(dir)?.map(|record| record.endpoint))
}

/// The recorded emulator, if it answers. One that runs but does not answer is an error:
/// starting a second one would orphan it.
fn live(dir: &Path) -> Result<Option<Running>> {
    let Some(record) = read_record(dir)? else { return Ok(None) };
    if answers(&record.endpoint) {
        return Ok(Some(record));
    }
    if let Process::Ours(pid) = identify(&record) {
        bail!(
            "the emulator (pid {pid}) runs but does not answer at {}; wait and try again, or stop it with `groundup emulator stop --emulator-dir {}`",
            record.endpoint,
            dir.display()
        );
    }
    Ok(None)
}

/// Whether the record names the process groundup started, checked on /proc before any signal.
fn identify(record: &Running) -> Process {
    // 0 is our own process group, -1 (what 4294967295 becomes) every process we may signal,
    // 1 is init: none can be an emulator we started.
    let pid = match libc::pid_t::try_from(record.pid) {
        Ok(pid) if pid > 1 => pid,
        _ => return Process::Other(format!("pid {} cannot be a process groundup started", record.pid)),
    };
    let Ok(started) = start_time(record.pid) else { return Process::Gone };
    if started != record.start_time {
        return Process::Other(format!("it started at tick {started}, the emulator at {}", record.start_time));
    }
    match cmdline(record.pid) {
        Ok(line) if line == record.cmdline => Process::Ours(pid),
        Ok(line) => Process::Other(format!("it runs `{}`", line.join(" "))),
        Err(_) => Process::Gone,
    }
}

/// Field 22 of /proc/<pid>/stat; the fields start after the command name's closing parenthesis
/// (the name itself may hold spaces and parentheses).
fn start_time(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = &stat[stat.rfind(')').ok_or_else(|| anyhow!("/proc/{pid}/stat is unreadable"))? + 1..];
    // After the name come field 3 (state) onwards, so field 22 is the 20th.
    let field = after_name.split_whitespace().nth(19).ok_or_else(|| anyhow!("/proc/{pid}/stat is short"))?;
    Ok(field.parse()?)
}

fn cmdline(pid: u32) -> Result<Vec<String>> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline"))?;
    Ok(bytes.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect())
}

/// The emulator's directory must be private: one others can write may hold a planted
/// `venv/bin/moto_server`, which `start` would run.
fn prepare_dir(dir: &Path) -> Result<()> {
    groundup_runtime::files::private_dir(dir).map_err(anyhow::Error::msg)
}

fn record_file(dir: &Path) -> PathBuf {
    dir.join("emulator.json")
}

/// The record of the emulator started from `dir`; it must name a loopback endpoint.
fn read_record(dir: &Path) -> Result<Option<Running>> {
    let path = record_file(dir);
    let mut file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => bail!("cannot read {} ({e}); a symlink there is refused", path.display()),
    };
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let record: Running = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is corrupt or from an older groundup; stop that emulator by hand and remove the file",
            path.display()
        )
    })?;
    if !is_loopback_url(&record.endpoint) {
        bail!("{} records `{}`, which is not http:// on loopback; refusing to use it", path.display(), record.endpoint);
    }
    Ok(Some(record))
}

/// Written to a temporary file and renamed over, which replaces a symlink rather than following it.
fn write_record(dir: &Path, record: &Running) -> Result<()> {
    groundup_runtime::files::write_atomic(&record_file(dir), serde_json::to_string(record)?.as_bytes(), 0o600)
        .map_err(anyhow::Error::msg)
}

/// A file of ours, 0600; a symlink in its place is refused rather than followed.
fn open_private(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot open {} (a symlink there is refused)", path.display()))
}

/// `moto_server` from GROUNDUP_MOTO_SERVER, the project virtualenv, or PATH; installed into
/// the virtualenv when none is found.
fn moto_server(dir: &Path) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("GROUNDUP_MOTO_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let venv = dir.join("venv");
    let local = venv.join("bin").join("moto_server");
    if local.exists() {
        return Ok(local);
    }
    if let Some(found) = find_on_path("moto_server") {
        return Ok(found);
    }
    eprintln!("groundup: moto_server not found; installing {MOTO_REQUIREMENT} into {}", venv.display());
    let python = find_on_path("python3").context("python3 is needed to install the emulator (moto)")?;
    run_quietly(Command::new(python).args(["-m", "venv"]).arg(&venv))?;
    run_quietly(Command::new(venv.join("bin").join("pip")).args(["install", "--quiet", MOTO_REQUIREMENT]))?;
    Ok(local)
}

fn run_quietly(command: &mut Command) -> Result<()> {
    let output = command.stdout(Stdio::null()).output().with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

fn wait_until_up(endpoint: &str, pid: u32, dir: &Path) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < START_TIMEOUT {
        if answers(endpoint) {
            return Ok(());
        }
        if !Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = std::fs::read_to_string(dir.join("emulator.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(5).collect();
    bail!("the emulator did not come up at {endpoint}; last lines of its log: {}", tail.join(" | "))
}

/// Whether moto answers at `endpoint`, which must be http:// on loopback. The probe is moto's
/// configuration (63 bytes), not its data dump (megabytes once a cluster exists, seconds to
/// send): a busy emulator must not be taken for a dead one.
pub fn answers(endpoint: &str) -> bool {
    let Some(addr) = loopback_address(endpoint) else { return false };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else { return false };
    let _ = stream.set_read_timeout(Some(PROBE_TIMEOUT));
    let request = format!("GET /moto-api/config HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut reply = Vec::new();
    let _ = stream.take(16 * 1024).read_to_end(&mut reply);
    is_moto_config(&String::from_utf8_lossy(&reply))
}

/// moto answers `GET /moto-api/config` with a 2xx and its JSON settings, which name "batch".
fn is_moto_config(reply: &str) -> bool {
    let status_ok = reply.starts_with("HTTP/1.") && reply.get(9..10) == Some("2");
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    status_ok && body.trim_start().starts_with('{') && body.contains("\"batch\"")
}

fn loopback_address(endpoint: &str) -> Option<SocketAddr> {
    if !is_loopback_url(endpoint) {
        return None;
    }
    let url = parse_url(endpoint).ok()?;
    (url.host.as_str(), url.port.unwrap_or(80)).to_socket_addrs().ok()?.find(|a| a.ip().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: u32) -> Running {
        Running { pid, endpoint: "http://127.0.0.1:1".into(), start_time: 0, cmdline: vec!["moto_server".into()] }
    }

    #[test]
    fn pids_that_mean_many_processes_are_refused_before_any_signal() {
        for pid in [0, 1, u32::MAX, i32::MAX as u32 + 1] {
            assert!(matches!(identify(&record(pid)), Process::Other(_)), "pid {pid}");
        }
    }

    #[test]
    fn a_process_is_ours_only_with_its_start_time_and_command_line() {
        let me = std::process::id();
        let mut mine = record(me);
        mine.start_time = start_time(me).unwrap();
        mine.cmdline = cmdline(me).unwrap();
        assert_eq!(identify(&mine), Process::Ours(me as libc::pid_t));
        mine.start_time += 1;
        assert!(matches!(identify(&mine), Process::Other(_)));
        mine.start_time -= 1;
        mine.cmdline.push("extra".into());
        assert!(matches!(identify(&mine), Process::Other(_)));
    }

    #[test]
    fn the_probe_wants_moto_config() {
        let moto = "HTTP/1.1 201 CREATED\r\nServer: Werkzeug\r\n\r\n{\"batch\": {\"use_docker\": true}}";
        assert!(is_moto_config(moto));
        assert!(!is_moto_config("HTTP/1.1 404 NOT FOUND\r\n\r\n{\"batch\": 1}"));
        assert!(!is_moto_config("HTTP/1.1 200 OK\r\n\r\n<html>batch</html>"));
    }

    #[test]
    fn the_recorded_endpoint_must_be_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let mut planted = record(2);
        planted.endpoint = "http://127.0.0.1:5999@10.1.2.3/".into();
        write_record(dir.path(), &planted).unwrap();
        let error = read_record(dir.path()).unwrap_err().to_string();
        assert!(error.contains("not http:// on loopback"), "{error}");
        assert_eq!(loopback_address("http://127.0.0.1:5999@10.1.2.3/"), None);
        assert_eq!(loopback_address("http://10.1.2.3:5000"), None);
    }
}
