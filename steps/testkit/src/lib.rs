//! What the integration tests share. Tests run the real binaries against one moto server per
//! test process (or the one in `GROUNDUP_TEST_ENDPOINT`), on loopback only; each test works on
//! its own cluster name, so tests run in parallel on one emulator without seeing each other.
//!
//! Without features it needs no AWS SDK: binaries, temporary clusters, the contract's
//! examples, running a step. The feature `cloud` adds what reads the emulator through the SDK
//! (the [`Inventory`] of a cluster). The [`FaultProxy`] speaks plain HTTP and needs no SDK;
//! `latency-proxy` runs it for the benchmark scripts. It is for tests and benchmarks only; no
//! shipped binary depends on it.

mod faults;
#[cfg(feature = "cloud")]
mod inventory;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

pub use faults::{kill_up_right_after, retarget, wait_until_unlocked, FaultProxy, Slow};
use groundup_contracts::Context;
#[cfg(feature = "cloud")]
pub use inventory::{client, group_rules, wanted_rules, Inventory};

/// The emulator's endpoint: `GROUNDUP_TEST_ENDPOINT`, or a moto server started (once, and
/// reused by later test runs) under target/test-emulator, as `groundup emulator start` does.
pub fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        if let Ok(endpoint) = std::env::var("GROUNDUP_TEST_ENDPOINT") {
            assert!(groundup_contracts::context::is_loopback_url(&endpoint), "tests only talk to loopback");
            return endpoint;
        }
        let dir = bin_dir().join("test-emulator");
        groundup_emulator::ensure_running(&dir, None).unwrap_or_else(|e| panic!("cannot start the emulator: {e:#}"))
    })
}

/// target/debug (or whichever profile the tests were built with).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    deps.parent().unwrap().to_path_buf()
}

/// A binary of the workspace; `scripts/test.sh` builds them all before the tests run.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` (scripts/test.sh does)",
        path.display()
    );
    path
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap().to_path_buf()
}

/// One of the contract's examples (`contracts/examples/<name>`), as text.
pub fn example(name: &str) -> String {
    let path = workspace_root().join("contracts/examples").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs the program `program args` in `dir` with `stdin` as its input (a step run by hand).
pub fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str], stdin: &str, dir: &Path) -> Output {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

/// The stdout of a run that must have succeeded.
pub fn ok(output: &Output, what: &str) -> String {
    assert_success(output, what);
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// A cluster of one test: a unique name and a working directory for its state file.
pub struct TestCluster {
    pub name: String,
    pub dir: tempfile::TempDir,
}

impl TestCluster {
    /// `label` keeps names readable; the pid and a counter keep them unique across runs.
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let mut name = format!("{label}-{}-{n}", std::process::id());
        name.truncate(32);
        TestCluster { name, dir: tempfile::tempdir().unwrap() }
    }

    /// `groundup <args>` in the cluster's directory, aimed at the test emulator.
    pub fn groundup(&self, args: &[&str]) -> Output {
        self.output_of(Command::new(bin("groundup")).args(args), None)
    }

    /// `groundup up` with this cluster's name and the test emulator, plus `extra` flags.
    pub fn up(&self, extra: &[&str]) -> Output {
        let mut args = vec!["up", "--name", &self.name, "--endpoint", endpoint()];
        args.extend_from_slice(extra);
        self.groundup(&args)
    }

    /// The output of `groundup init` for this cluster, plus `extra` flags.
    pub fn init(&self, extra: &[&str]) -> String {
        let mut args = vec!["init", "--name", &self.name, "--endpoint", endpoint()];
        args.extend_from_slice(extra);
        let output = self.groundup(&args);
        assert_success(&output, "groundup init");
        String::from_utf8(output.stdout).unwrap()
    }

    /// What `groundup up --plan <extra>` would do, read from its JSON output.
    pub fn plan(&self, extra: &[&str]) -> groundup_contracts::plan::PlanSection {
        let mut args = vec!["up", "--plan"];
        args.extend_from_slice(extra);
        let output = self.groundup(&args);
        assert_success(&output, "up --plan");
        serde_json::from_slice(&output.stdout).expect("up --plan writes the plan as JSON on stdout")
    }

    /// What `groundup up --plan` would still do: empty when every resource is as it should be.
    pub fn pending_work(&self) -> Vec<groundup_contracts::plan::PlannedResource> {
        let plan = self.plan(&[]);
        plan.resources.into_iter().filter(|r| r.action != groundup_contracts::plan::Action::Leave).collect()
    }

    /// Runs `groundup-<step>` with `stdin` as its input.
    pub fn step(&self, step: &str, stdin: &str) -> Output {
        self.run_step(step, &[], stdin)
    }

    /// Runs `groundup-<step> <args>` with `stdin` as its input.
    pub fn run_step(&self, step: &str, args: &[&str], stdin: &str) -> Output {
        self.output_of(Command::new(bin(&format!("groundup-{step}"))).args(args), Some(stdin))
    }

    /// Pipes `context` through the steps, like `groundup init | groundup-vpc | ...`.
    pub fn pipe(&self, context: &str, steps: &[&str]) -> String {
        steps.iter().fold(context.to_string(), |input, step| {
            let output = self.step(step, &input);
            assert_success(&output, step);
            String::from_utf8(output.stdout).unwrap()
        })
    }

    /// Installs a shell-script plugin step `groundup-<step>` in the cluster's `plugins/`
    /// directory, which [`TestCluster::command`] puts first on PATH.
    pub fn plugin(&self, step: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.dir.path().join("plugins");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("groundup-{step}"));
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// `groundup <args>` in the cluster's directory with its plugins on PATH, not yet started.
    pub fn command(&self, args: &[&str]) -> Command {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let dirs = std::iter::once(self.dir.path().join("plugins")).chain(std::env::split_paths(&path));
        let mut command = Command::new(bin("groundup"));
        command.args(args).current_dir(self.dir.path()).env("PATH", std::env::join_paths(dirs).unwrap());
        command
    }

    /// `groundup <args>` started in a process group of its own (so that a test can kill it
    /// with everything it started), with no input and its output discarded.
    pub fn spawn_in_own_group(&self, args: &[&str]) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap()
    }

    /// Like [`TestCluster::groundup`], with the cluster's plugins on PATH.
    pub fn groundup_with_plugins(&self, args: &[&str]) -> Output {
        self.output_of(&mut self.command(args), None)
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.path().join("groundup.json")
    }

    pub fn state(&self) -> Context {
        Context::from_json(&std::fs::read_to_string(self.state_path()).unwrap()).unwrap()
    }

    /// Changes the state file's context, as a user's edit or a crash leaves it; returns what
    /// `edit` returns.
    pub fn edit_state<T>(&self, edit: impl FnOnce(&mut Context) -> T) -> T {
        let mut state = self.state();
        let edited = edit(&mut state);
        std::fs::write(self.state_path(), state.to_json()).unwrap();
        edited
    }

    /// Everything in the emulator tagged as this cluster's.
    #[cfg(feature = "cloud")]
    pub fn inventory(&self) -> Inventory {
        Inventory::of(&self.name, endpoint())
    }

    /// The rules of this cluster's security groups in the emulator (see [`group_rules`]).
    #[cfg(feature = "cloud")]
    pub fn group_rules(&self) -> Vec<String> {
        group_rules(&self.name, endpoint())
    }

    fn output_of(&self, command: &mut Command, stdin: Option<&str>) -> Output {
        use std::io::Write;
        command.current_dir(self.dir.path()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            let _ = pipe.write_all(text.as_bytes());
        }
        drop(pipe);
        child.wait_with_output().unwrap()
    }
}

pub fn assert_success(output: &Output, what: &str) {
    assert!(output.status.success(), "{what} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
}

/// A failure as the tool promises it: non-zero, nothing on stdout, one message on stderr.
/// Returns stderr for further checks.
pub fn assert_clean_failure(output: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "{what} should have failed; stderr: {stderr}");
    assert!(output.stdout.is_empty(), "{what} wrote on stdout: {}", String::from_utf8_lossy(&output.stdout));
    assert!(!stderr.contains("panicked"), "{what} panicked: {stderr}");
    assert!(stderr.contains("error"), "{what} gave no error message: {stderr}");
    stderr
}

/// A small seeded generator (SplitMix64), so that a failing random test can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// An executable on PATH, for tests that use a real peer (Graphviz, etcd, ...) when present.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|p| p.is_file())
}
