//! The local AWS emulator: moto's server on a free loopback port, installed into a
//! project-local virtualenv on first use when `moto_server` is not on PATH.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Subcommand;
use serde::{Deserialize, Serialize};

pub const DEFAULT_DIR: &str = ".groundup";
/// The moto release line the emulator notes were checked against.
const MOTO_REQUIREMENT: &str = "moto[server]>=5.1,<6";
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Subcommand)]
pub enum Action {
    /// Start the emulator, or reuse the one already running; prints its endpoint on stdout
    Start,
    /// Stop the emulator started from this directory
    Stop,
    /// Print the endpoint of the running emulator, or fail if none runs
    Status,
}

#[derive(Serialize, Deserialize)]
struct Running {
    pid: u32,
    endpoint: String,
}

pub fn run(action: Action, dir: &Path) -> Result<()> {
    match action {
        Action::Start => println!("{}", ensure_running(dir)?),
        Action::Stop => stop(dir)?,
        Action::Status => match running(dir) {
            Some(r) => println!("{}", r.endpoint),
            None => bail!("no emulator is running from {}; start one with `groundup emulator start`", dir.display()),
        },
    }
    Ok(())
}

/// Returns the endpoint of a live emulator, starting one if needed.
pub fn ensure_running(dir: &Path) -> Result<String> {
    if let Some(r) = running(dir) {
        return Ok(r.endpoint);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let server = moto_server(dir)?;
    let port = free_port()?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.join("emulator.log"))?;
    let child = Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", server.display()))?;
    let record = Running { pid: child.id(), endpoint: endpoint.clone() };
    std::fs::write(state_file(dir), serde_json::to_string(&record)?)?;
    wait_until_up(&endpoint, child.id(), dir)?;
    eprintln!("groundup: emulator (moto) running at {endpoint}, pid {}", child.id());
    Ok(endpoint)
}

fn stop(dir: &Path) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(state_file(dir)) else {
        eprintln!("groundup: no emulator was started from {}", dir.display());
        return Ok(());
    };
    let record: Running = serde_json::from_str(&text).context("the emulator's pid file is corrupt")?;
    if answers(&record.endpoint) {
        let _ = Command::new("kill").arg(record.pid.to_string()).status();
        eprintln!("groundup: stopped the emulator at {} (pid {})", record.endpoint, record.pid);
    }
    std::fs::remove_file(state_file(dir))?;
    Ok(())
}

fn running(dir: &Path) -> Option<Running> {
    let text = std::fs::read_to_string(state_file(dir)).ok()?;
    let record: Running = serde_json::from_str(&text).ok()?;
    answers(&record.endpoint).then_some(record)
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join("emulator.json")
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
    if let Some(found) = crate::pipeline::find_on_path("moto_server") {
        return Ok(found);
    }
    eprintln!("groundup: moto_server not found; installing {MOTO_REQUIREMENT} into {}", venv.display());
    let python =
        crate::pipeline::find_on_path("python3").context("python3 is needed to install the emulator (moto)")?;
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

/// Whether moto's management API answers at `endpoint` (loopback only, by construction).
pub fn answers(endpoint: &str) -> bool {
    let Some(address) = endpoint.strip_prefix("http://") else { return false };
    let address = address.trim_end_matches('/');
    let Ok(addr) = address.parse::<std::net::SocketAddr>() else { return false };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /moto-api/data.json HTTP/1.0\r\nHost: {address}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}
