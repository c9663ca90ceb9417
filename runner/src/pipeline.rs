//! `groundup up`: runs the context's pipeline, one step executable after another, each fed
//! the previous step's output, with the state file replaced after every step.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use groundup_contracts::{Context, Target};
use groundup_runtime::files::home_of;
use groundup_runtime::harness::StepContract;
use groundup_runtime::state::STATE_FILE_ENV;

use crate::init::InitArgs;
use crate::state;

#[derive(Args, Debug)]
pub struct UpArgs {
    /// The state file: the context after the last good step
    #[arg(long, default_value = state::DEFAULT_STATE)]
    pub state: PathBuf,
    /// Start at this step, even if it and the ones after it are done
    #[arg(long, value_name = "STEP", value_parser = crate::docs::StepName)]
    pub from: Option<String>,
    /// Stop after this step
    #[arg(long, value_name = "STEP", value_parser = crate::docs::StepName)]
    pub to: Option<String>,
    /// Run only these steps (comma-separated), in pipeline order
    #[arg(long, value_name = "STEPS", value_delimiter = ',', value_parser = crate::docs::StepName, conflicts_with_all = ["from", "to"])]
    pub only: Option<Vec<String>>,
    /// Change nothing: report what every selected step would create, adopt, change or leave
    /// (JSON on stdout, a summary on stderr). Without a state file, plans the cluster the init
    /// flags describe.
    #[arg(long)]
    pub plan: bool,
    /// Re-issue certificates that expire soon or no longer match the context: runs `certs`
    /// with `--renew`, even if it is done. CAs are never replaced.
    #[arg(long)]
    pub renew: bool,
    /// Without a state file, the new cluster (`up --plan` writes none); with one, those given
    /// change its spec: counts, admin range, ports, ... (what cannot change in place is refused)
    #[command(flatten)]
    pub init: InitArgs,
    /// The ids of the flags given on the command line (not defaulted), filled in by `main`:
    /// only these change an existing cluster's spec.
    #[arg(skip)]
    pub given: Vec<String>,
}

pub fn up(args: &UpArgs) -> Result<()> {
    if args.plan {
        return plan(args);
    }
    let lock = state::lock(&args.state)?;
    let (mut context, changed) = match state::load(&args.state)? {
        Some(current) => changed_spec(current, args)?,
        None => {
            let context = crate::init::build(&args.init, home_of(&args.state))?;
            state::save(&args.state, &context)?;
            eprintln!("groundup: new state file {}", args.state.display());
            (context, false)
        }
    };
    // Building again after a teardown: the old teardown report no longer describes anything.
    context.teardown = None;
    if changed {
        // No step is done with the new spec: each runs again (a later `up` resumes the ones
        // this run does not reach) and converges to it.
        context.completed.clear();
    }
    let steps = select(&context, args)?;
    if steps.is_empty() {
        eprintln!("groundup: nothing to run");
        return Ok(());
    }
    if changed {
        // The run that applies the new spec starts now.
        state::save(&args.state, &context)?;
        eprintln!("groundup: the cluster's spec changed; every step runs again to apply it");
    }
    let total = Instant::now();
    for (i, step) in steps.iter().enumerate() {
        eprintln!("groundup: [{}/{}] {step}", i + 1, steps.len());
        let started = Instant::now();
        context = run_step(step, step_args(step, args), &context, &args.state, true, Some(&lock)).map_err(|e| {
            anyhow!(
                "{e:#}\n  the state file {} keeps the context as of the last good step; fix the cause and {}",
                args.state.display(),
                resume_hint(&context, step, args.renew)
            )
        })?;
        state::save(&args.state, &context)?;
        eprintln!("groundup: [{}/{}] {step} done in {:.2}s", i + 1, steps.len(), started.elapsed().as_secs_f64());
    }
    eprintln!(
        "groundup: {} step(s) in {:.2}s; context saved in {}",
        steps.len(),
        total.elapsed().as_secs_f64(),
        args.state.display()
    );
    Ok(())
}

/// `up --plan`: every selected step, done or not, runs with `--plan` on the state file's
/// context, or without a state file on the one `init` flags describe (everything would be
/// created); nothing is created and no state file is written. A step that does not declare
/// `--plan` support is not run at all, and listed as not planned.
fn plan(args: &UpArgs) -> Result<()> {
    let mut context = match state::load(&args.state)? {
        Some(current) => changed_spec(current, args)?.0,
        None => {
            eprintln!(
                "groundup: no state file at {}; planning a new cluster from the init flags",
                args.state.display()
            );
            crate::init::build(&args.init, home_of(&args.state))?
        }
    };
    context.teardown = None;
    let steps = selection(&context, args)?;
    let mut not_planned = Vec::new();
    for step in &steps {
        if plans(step)? {
            let step_args = [&["--plan"], step_args(step, args)].concat();
            context = run_step(step, &step_args, &context, &args.state, false, None)?;
        } else {
            eprintln!("groundup: `{step}` does not declare --plan support (`groundup-{step} --contract`); not run, not planned");
            not_planned.push(step.clone());
        }
    }
    let mut plan = context.plan.unwrap_or_default();
    plan.not_planned = not_planned;
    println!("{}", serde_json::to_string_pretty(&plan)?);
    let skipped = match plan.not_planned.len() {
        0 => String::new(),
        _ => format!("; not planned: {}", plan.not_planned.join(", ")),
    };
    eprintln!("groundup: plan for `{}` ({} step(s)): {}{skipped}", context.cluster.name, steps.len(), plan.counts());
    Ok(())
}

/// The state file's context with the init flags given on the command line applied (see
/// [`crate::init::change`]), and whether that changed its spec. Only in memory: the caller
/// saves it when the run that applies it starts.
fn changed_spec(current: Context, args: &UpArgs) -> Result<(Context, bool)> {
    state::check_name(&args.state, &current, args.init.name.as_deref())?;
    check_target(&current, &args.init)?;
    let desired = crate::init::change(&current, &args.init, &args.given)?;
    let changed =
        desired.cluster != current.cluster || desired.params != current.params || desired.pipeline != current.pipeline;
    Ok((desired, changed))
}

/// Whether `groundup-<step> --contract` declares `--plan` support. It gets an empty stdin, so
/// a plugin that ignores its arguments fails for want of a context instead of doing its work.
fn plans(step: &str) -> Result<bool> {
    let program = find_step(step)?;
    let output = duct::cmd(&program, ["--contract"])
        .stdin_null()
        .stdout_capture()
        .stderr_null()
        .unchecked()
        .run()
        .with_context(|| format!("cannot run {}", program.display()))?;
    let contract: Option<StepContract> =
        output.status.success().then(|| serde_json::from_slice(&output.stdout).ok()).flatten();
    Ok(contract.is_some_and(|c| c.contract >= 1 && c.plan))
}

/// With a state file the target is the state file's: a flag naming another is refused, not
/// ignored, and an emulator that does not answer is reported, never swapped for an empty one.
fn check_target(context: &Context, init: &InitArgs) -> Result<()> {
    let recorded = match &context.target {
        Target::Aws => "real AWS".to_string(),
        Target::Emulator { endpoint } | Target::Endpoint { endpoint } => endpoint.clone(),
    };
    let named = match (&init.endpoint, init.aws) {
        (Some(endpoint), _) if context.target.endpoint() != Some(endpoint.as_str()) => Some(endpoint.clone()),
        (None, true) if !context.target.is_real_aws() => Some("real AWS (--aws)".to_string()),
        _ => None,
    };
    if let Some(named) = named {
        bail!(
            "the state file's cluster is on {recorded}, and the flags name {named}; a state file keeps its target. \
             Drop the flag, or use another --state file for a cluster elsewhere"
        );
    }
    match &context.target {
        Target::Emulator { endpoint } if !crate::emulator::answers(endpoint) => {
            Err(crate::emulator::not_answering(endpoint, &init.emulator_dir))
        }
        _ => Ok(()),
    }
}

/// The step that issues certificates, and takes `--renew`.
const RENEWING_STEP: &str = "certs";

fn step_args(step: &str, args: &UpArgs) -> &'static [&'static str] {
    if args.renew && step == RENEWING_STEP {
        &["--renew"]
    } else {
        &[]
    }
}

/// What to run after `step` failed: plain `up` resumes at the first step not done, which is
/// `step` only if everything before it is done (not so after `up --from sg` on a new state).
fn resume_hint(context: &Context, step: &str, renewing: bool) -> String {
    let renew_hint = match step == RENEWING_STEP && !renewing {
        true => "; if it asks for --renew, `groundup up --renew` passes it",
        false => "",
    };
    match context.pipeline.iter().find(|s| !context.is_completed(s)) {
        Some(first) if first == step => format!("run `groundup up` again to resume at `{step}`{renew_hint}"),
        Some(first) => format!(
            "run `groundup up --from {step}` to retry from `{step}`{renew_hint} (a plain `groundup up` starts at `{first}`, the first step not done)"
        ),
        None => format!("run `groundup up --from {step}` to retry from `{step}`{renew_hint}"),
    }
}

/// Which steps to run: the selection, where without `--from` steps already done are skipped
/// (resume), unless every selected step is done: then all of them run again, which finds
/// everything and repairs drift.
pub fn select(context: &Context, args: &UpArgs) -> Result<Vec<String>> {
    let range = selection(context, args)?;
    if args.only.is_some() || args.from.is_some() || range.iter().all(|s| context.is_completed(s)) {
        return Ok(range);
    }
    let renewing = |s: &String| args.renew && s == RENEWING_STEP;
    Ok(range.into_iter().filter(|s| !context.is_completed(s) || renewing(s)).collect())
}

/// The steps `--only`, or the `--from`..`--to` range, names, done or not. A plan looks at all
/// of them: drift hides in done ones.
fn selection(context: &Context, args: &UpArgs) -> Result<Vec<String>> {
    let pipeline = &context.pipeline;
    let position = |step: &str| {
        pipeline
            .iter()
            .position(|s| s == step)
            .ok_or_else(|| anyhow!("`{step}` is not a step of this pipeline ({})", pipeline.join(", ")))
    };
    if let Some(only) = &args.only {
        for step in only {
            position(step)?;
        }
        return Ok(pipeline.iter().filter(|s| only.contains(s)).cloned().collect());
    }
    let first = args.from.as_deref().map(position).transpose()?.unwrap_or(0);
    let last = args.to.as_deref().map(position).transpose()?.unwrap_or(pipeline.len().saturating_sub(1));
    if first > last {
        bail!("--from {} comes after --to {}", pipeline[first], pipeline[last]);
    }
    Ok(pipeline[first..=last].to_vec())
}

/// Pipes the context through `groundup-<step> <args>`; the step's stderr goes straight to ours.
/// The step runs in the cluster's home, the state file's directory, where its files live
/// (see [`groundup_runtime::files`]). With `journal`, the step may journal a create into the
/// state file before sending the call. The step dies with the runner, and holds the runner's
/// lock (if any) while it lives.
pub fn run_step(
    step: &str,
    args: &[&str],
    context: &Context,
    state: &Path,
    journal: bool,
    lock: Option<&state::StateLock>,
) -> Result<Context> {
    let program = find_step(step)?;
    let home = home_of(state);
    let mut command = duct::cmd(&program, args).dir(home);
    if journal {
        let state = std::path::absolute(state).with_context(|| format!("cannot resolve {}", state.display()))?;
        command = command.env(STATE_FILE_ENV, state);
    }
    let lock_fd = lock.map(state::StateLock::fd);
    let runner = std::process::id();
    let output = command
        .before_spawn(move |cmd| {
            use std::os::unix::process::CommandExt;
            // SAFETY: the hook runs between fork and exec and makes only async-signal-safe calls.
            unsafe {
                cmd.pre_exec(move || {
                    die_with_parent(runner)?;
                    lock_fd.map_or(Ok(()), keep_open_across_exec)
                });
            }
            Ok(())
        })
        .stdin_bytes(context.to_json())
        .stdout_capture()
        .unchecked()
        .run()
        .with_context(|| format!("cannot run {}", program.display()))?;
    if !output.status.success() {
        bail!("step `{step}` failed ({})", describe_exit(&output.status));
    }
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

/// Clears close-on-exec on the lock's descriptor in the step, so the step holds the lock too.
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

/// Steps are executables named `groundup-<step>`, looked up beside this runner, then on PATH,
/// so a plugin is installed by putting it on PATH.
pub fn find_step(step: &str) -> Result<PathBuf> {
    let name = format!("groundup-{step}");
    let beside = std::env::current_exe().ok().and_then(|exe| exe.parent().map(|dir| dir.join(&name)));
    beside.filter(|p| is_executable(p)).or_else(|| find_on_path(&name)).ok_or_else(|| {
        anyhow!(
            "no executable `{name}` beside {} or on PATH",
            std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default()
        )
    })
}

pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| is_executable(p)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use groundup_contracts::{Cluster, Params};

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        up: UpArgs,
    }

    fn context(done: &[&str]) -> Context {
        let mut context = Context::new(
            Cluster { name: "c".into(), region: "us-east-2".into() },
            Target::Aws,
            Params::course_defaults("us-east-2"),
            ["vpc", "dhcp", "subnet", "igw", "certs"].map(String::from).to_vec(),
        );
        done.iter().for_each(|s| context.mark_completed(s));
        context
    }

    fn selected(done: &[&str], flags: &[&str]) -> Result<Vec<String>> {
        let args = Wrapper::try_parse_from(std::iter::once("up").chain(flags.iter().copied()))?.up;
        select(&context(done), &args)
    }

    #[test]
    fn resumes_after_the_done_steps() {
        assert_eq!(selected(&["vpc", "dhcp"], &[]).unwrap(), ["subnet", "igw", "certs"]);
    }

    #[test]
    fn a_finished_pipeline_runs_again_in_full() {
        let all = ["vpc", "dhcp", "subnet", "igw", "certs"];
        assert_eq!(selected(&all, &[]).unwrap(), all);
    }

    #[test]
    fn from_and_to_bound_the_range() {
        assert_eq!(
            selected(&["vpc", "dhcp", "subnet"], &["--from", "dhcp"]).unwrap(),
            ["dhcp", "subnet", "igw", "certs"]
        );
        assert_eq!(selected(&[], &["--to", "dhcp"]).unwrap(), ["vpc", "dhcp"]);
        assert_eq!(selected(&[], &["--from", "dhcp", "--to", "subnet"]).unwrap(), ["dhcp", "subnet"]);
        assert!(selected(&[], &["--from", "subnet", "--to", "vpc"]).is_err());
    }

    #[test]
    fn only_keeps_pipeline_order_and_rejects_unknown_steps() {
        assert_eq!(selected(&[], &["--only", "igw,vpc"]).unwrap(), ["vpc", "igw"]);
        let error = selected(&[], &["--only", "nope"]).unwrap_err().to_string();
        assert!(error.contains("`nope` is not a step"), "{error}");
    }

    /// `up --renew` reaches `certs` even when it is done, and only `certs` gets `--renew`.
    #[test]
    fn renew_runs_the_certificate_step_again() {
        assert_eq!(selected(&["vpc", "dhcp", "subnet", "certs"], &["--renew"]).unwrap(), ["igw", "certs"]);
        let args = Wrapper::try_parse_from(["up", "--renew"]).unwrap().up;
        assert_eq!(step_args("certs", &args), ["--renew"]);
        assert!(step_args("vpc", &args).is_empty());
    }

    /// After `up --from sg` failed on a new state file, a plain `up` would start at `vpc`.
    #[test]
    fn the_resume_hint_names_what_plain_up_would_do() {
        assert_eq!(resume_hint(&context(&["vpc"]), "dhcp", false), "run `groundup up` again to resume at `dhcp`");
        let hint = resume_hint(&context(&[]), "subnet", false);
        assert!(hint.starts_with("run `groundup up --from subnet`") && hint.contains("starts at `vpc`"), "{hint}");
        let hint = resume_hint(&context(&["vpc", "dhcp", "subnet", "igw"]), "certs", false);
        assert!(hint.contains("`groundup up --renew`"), "{hint}");
    }
}
