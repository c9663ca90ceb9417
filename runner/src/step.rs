//! A step as a process: finding its executable (beside the runner, then on PATH), asking its
//! contract, and running it with the context on stdin, in the cluster's home, tied to the
//! runner's life and lock.

use std::ffi::OsStr;
use std::path::Path;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::builder::{PossibleValue, StringValueParser, TypedValueParser};
use groundup_contracts::context::{aws_allowed, ALLOW_AWS_ENV};
use groundup_contracts::{steps, Context};
use groundup_runtime::files::home_of;
use groundup_runtime::harness::StepContract;

use crate::events::{Channel, Listener, Sink};
use crate::state;

/// What `step` promises (see [`StepContract`]): a built-in step (the steps table) follows
/// this runner's contract; a plugin is asked with `--contract`, and one that gives no answer
/// is of contract 1. The plugin is asked as a step of this run (see [`step_command`]) with an
/// empty stdin, so one that ignores its arguments fails for want of a context instead of
/// doing its work, and one that hangs dies with the runner.
pub fn contract(step: &str, state: &Path, lock: Option<&state::StateLock>) -> Result<StepContract> {
    if steps::step(step).is_some() {
        return Ok(StepContract::CURRENT);
    }
    let program = find_step(step)?;
    let cannot_run = || format!("cannot run {}", program.display());
    let handle = step_command(&program, &["--contract"], state, None, None, lock)
        .stdin_null()
        .stdout_capture()
        .stderr_null()
        .unchecked()
        .start()
        .with_context(cannot_run)?;
    let watched: Vec<_> = handle.pids().into_iter().map(crate::interrupt::watch).collect();
    let output = handle.into_output().with_context(cannot_run)?;
    drop(watched);
    // Ctrl-C ended the question, not the plugin's answer: the step is not run.
    if crate::interrupt::received() {
        bail!("interrupted while asking `{}` --contract", program.display());
    }
    let answer: Option<StepContract> =
        output.status.success().then(|| serde_json::from_slice(&output.stdout).ok()).flatten();
    Ok(answer.filter(|c| c.contract >= 1).unwrap_or(StepContract::FIRST))
}

/// Pipes the context through `groundup-<step> <args>`; the step's stderr goes straight to ours.
/// The step runs in the cluster's home, the state file's directory, where its files live
/// (see [`groundup_runtime::files`]). With `events`, a step whose contract takes them gets its
/// side channel, and what it sends there goes into `events` (see [`crate::events`]). The step dies
/// with the runner, and holds the runner's lock (if any) while it lives.
pub fn run_step(
    step: &str,
    args: &[&str],
    context: &Context,
    state: &Path,
    events: Option<Sink>,
    lock: Option<&state::StateLock>,
) -> Result<Context> {
    let program = find_step(step)?;
    let cannot_run = || format!("cannot run {}", program.display());
    let contract = contract(step, state, lock)?;
    let channel = (events.is_some() && contract.takes_events()).then(Channel::new).transpose()?;
    let handle = step_command(&program, args, state, Some(&contract), channel.as_ref(), lock)
        .stdin_bytes(context.to_json())
        .stdout_capture()
        .unchecked()
        .start()
        .with_context(cannot_run)?;
    let listener = channel.zip(events).map(|(channel, sink)| channel.listen(sink));
    let watched: Vec<_> = handle.pids().into_iter().map(crate::interrupt::watch).collect();
    let output = handle.into_output().with_context(cannot_run)?;
    drop(watched);
    let listened = listener.map_or(Ok(()), Listener::finish);
    match output.status.code() {
        Some(0) => {}
        // The step refused its input (it said why on stderr): so does the runner.
        Some(2) => return Err(crate::init::Refused(format!("step `{step}` refused its input (exit code 2)")).into()),
        _ => bail!("step `{step}` failed ({})", describe_exit(&output.status)),
    }
    listened.with_context(|| format!("step `{step}` broke the step contract"))?;
    let text = String::from_utf8(output.stdout).map_err(|_| anyhow!("step `{step}` wrote non-UTF-8 output"))?;
    let mut next = Context::from_json(&text).with_context(|| format!("step `{step}` wrote an unusable context"))?;
    if next.cluster != context.cluster {
        bail!("step `{step}` changed the cluster identity; refusing to save its output");
    }
    // Recorded here too, so that a plugin that knows nothing of `completed` is resumable.
    if !next.planning() && next.pipeline.iter().any(|s| s == step) {
        next.mark_completed(step);
    }
    Ok(next)
}

/// `program` as a step of this runner: in the cluster's home, dying with the runner, holding
/// its lock (if any), and with the step's end of `events` (if any) as `--events-fd`. If this
/// run may use real AWS, a step of `contract` 2 gets `--aws`, one of contract 1 the variable
/// it knows (`GROUNDUP_ALLOW_AWS=1`); without a contract (asking for it) neither.
pub fn step_command(
    program: &Path,
    args: &[&str],
    state: &Path,
    contract: Option<&StepContract>,
    events: Option<&Channel>,
    lock: Option<&state::StateLock>,
) -> duct::Expression {
    let events_fd = events.map(Channel::step_fd);
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if let Some(fd) = events_fd {
        args.extend(["--events-fd".to_string(), fd.to_string()]);
    }
    let aws = contract.filter(|_| aws_allowed());
    if aws.is_some_and(|c| c.contract >= 2) {
        args.push("--aws".to_string());
    }
    let mut command = duct::cmd(program, args).dir(home_of(state));
    if aws.is_some_and(|c| c.contract < 2) {
        command = command.env(ALLOW_AWS_ENV, "1");
    }
    let lock_fd = lock.map(state::StateLock::fd);
    let runner = std::process::id();
    command.before_spawn(move |cmd| {
        use std::os::unix::process::CommandExt;
        // SAFETY: the hook runs between fork and exec and makes only async-signal-safe calls.
        unsafe {
            cmd.pre_exec(move || {
                die_with_parent(runner)?;
                lock_fd.into_iter().chain(events_fd).try_for_each(keep_open_across_exec)
            });
        }
        Ok(())
    })
}

/// A step outliving a killed runner would race the next run (two `compute`s importing one key
/// pair). The kernel sends SIGKILL when the runner dies; if it died before the request was
/// made, the step is already an orphan and must not start.
fn die_with_parent(runner: u32) -> std::io::Result<()> {
    // SAFETY: prctl and getppid are async-signal-safe.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::getppid() as u32 != runner {
            return Err(std::io::Error::other("the runner is gone"));
        }
    }
    Ok(())
}

/// Clears close-on-exec on a descriptor in the step: the lock's, so the step holds the lock
/// too, and its end of the events channel.
fn keep_open_across_exec(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor this process owns; async-signal-safe.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// "exit code 3", or the signal by name: "killed by SIGSEGV (signal 11)".
fn describe_exit(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by {} (signal {signal})", signal_name(signal)),
        (None, None) => "no exit code".into(),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT (an abort, often a failed assertion)",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL (killed from outside, or out of memory)",
        libc::SIGSEGV => "SIGSEGV (a crash)",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

pub use groundup_runtime::tool::find_program as find_step;

/// Any step name is accepted (a plugin's too); the course's steps are offered to completion.
#[derive(Clone)]
pub struct StepName;

impl TypedValueParser for StepName {
    type Value = String;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<String, clap::Error> {
        StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(steps::pipeline().map(PossibleValue::new)))
    }
}
