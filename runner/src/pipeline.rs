//! `groundup up`: runs the context's pipeline, one step executable after another, each fed
//! the previous step's output, with the state file replaced after every step.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use groundup_contracts::files::home_of;
use groundup_contracts::plan::STATE_FILE_ENV;
use groundup_contracts::{Context, Target};

use crate::init::InitArgs;
use crate::state;

#[derive(Args, Debug)]
pub struct UpArgs {
    /// The state file: the context after the last good step
    #[arg(long, default_value = state::DEFAULT_STATE)]
    pub state: PathBuf,
    /// Start at this step, even if it and the ones after it are done
    #[arg(long, value_name = "STEP")]
    pub from: Option<String>,
    /// Stop after this step
    #[arg(long, value_name = "STEP")]
    pub to: Option<String>,
    /// Run only these steps (comma-separated), in pipeline order
    #[arg(long, value_name = "STEPS", value_delimiter = ',', conflicts_with_all = ["from", "to"])]
    pub only: Option<Vec<String>>,
    /// Change nothing: report what every selected step would create, adopt, change or leave
    /// (JSON on stdout, a summary on stderr). Needs an existing state file.
    #[arg(long)]
    pub plan: bool,
    /// Used only when there is no state file yet
    #[command(flatten)]
    pub init: InitArgs,
}

pub fn up(args: &UpArgs) -> Result<()> {
    if args.plan {
        return plan(args);
    }
    let _lock = state::lock(&args.state)?;
    let mut context = match state::load(&args.state)? {
        Some(context) => {
            state::check_name(&args.state, &context, args.init.name.as_deref())?;
            refresh_emulator(context, &args.init)?
        }
        None => {
            let context = crate::init::build(&args.init, home_of(&args.state))?;
            state::save(&args.state, &context)?;
            eprintln!("groundup: new state file {}", args.state.display());
            context
        }
    };
    // Building again after a teardown: the old teardown report no longer describes anything.
    context.teardown = None;
    let steps = select(&context, args)?;
    if steps.is_empty() {
        eprintln!("groundup: nothing to run");
        return Ok(());
    }
    let total = Instant::now();
    for (i, step) in steps.iter().enumerate() {
        eprintln!("groundup: [{}/{}] {step}", i + 1, steps.len());
        let started = Instant::now();
        context = run_step(step, &[], &context, &args.state, true).map_err(|e| {
            anyhow!(
                "{e:#}\n  the state file {} keeps the context as of the last good step; fix the cause and run `groundup up` again to resume at `{step}`",
                args.state.display()
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
/// context; nothing is created and the state file is not written.
fn plan(args: &UpArgs) -> Result<()> {
    let mut context = state::load_existing(&args.state, args.init.name.as_deref())?;
    if let Target::Emulator { endpoint } = &context.target {
        if !crate::emulator::answers(endpoint) {
            bail!("the emulator at {endpoint} does not answer; start it (`groundup emulator start`) or run `groundup up`, which starts a new one");
        }
    }
    context.teardown = None;
    let steps = selection(&context, args)?;
    for step in &steps {
        context = run_step(step, &["--plan"], &context, &args.state, false)?;
    }
    let plan = context.plan.unwrap_or_default();
    println!("{}", serde_json::to_string_pretty(&plan)?);
    eprintln!("groundup: plan for `{}` ({} step(s)): {}", context.cluster.name, steps.len(), plan.counts());
    Ok(())
}

/// A restarted emulator listens on a new port and has forgotten everything; the steps will
/// find nothing by tags and build again, so only the endpoint needs updating.
fn refresh_emulator(mut context: Context, init: &InitArgs) -> Result<Context> {
    if let Target::Emulator { endpoint } = &context.target {
        if !crate::emulator::answers(endpoint) {
            let fresh = crate::emulator::ensure_running(&init.emulator_dir)?;
            eprintln!(
                "groundup: the emulator at {endpoint} is gone; using a new one at {fresh} (its resources start empty)"
            );
            context.target = Target::Emulator { endpoint: fresh };
        }
    }
    Ok(context)
}

/// Which steps to run: the selection, where without `--from` steps already done are skipped
/// (resume), unless every selected step is done: then all of them run again, which finds
/// everything and repairs drift.
pub fn select(context: &Context, args: &UpArgs) -> Result<Vec<String>> {
    let range = selection(context, args)?;
    if args.only.is_some() || args.from.is_some() || range.iter().all(|s| context.is_completed(s)) {
        return Ok(range);
    }
    Ok(range.into_iter().filter(|s| !context.is_completed(s)).collect())
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
/// (see [`groundup_contracts::files`]). With `journal`, the step may journal a create into the
/// state file before sending the call.
pub fn run_step(step: &str, args: &[&str], context: &Context, state: &Path, journal: bool) -> Result<Context> {
    let program = find_step(step)?;
    let home = home_of(state);
    let mut command = duct::cmd(&program, args).dir(home);
    if journal {
        let state = std::path::absolute(state).with_context(|| format!("cannot resolve {}", state.display()))?;
        command = command.env(STATE_FILE_ENV, state);
    }
    let output = command
        .stdin_bytes(context.to_json())
        .stdout_capture()
        .unchecked()
        .run()
        .with_context(|| format!("cannot run {}", program.display()))?;
    if !output.status.success() {
        let code = output.status.code().map_or("a signal".to_string(), |c| format!("exit code {c}"));
        bail!("step `{step}` failed ({code})");
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
            ["vpc", "dhcp", "subnet", "igw"].map(String::from).to_vec(),
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
        assert_eq!(selected(&["vpc", "dhcp"], &[]).unwrap(), ["subnet", "igw"]);
    }

    #[test]
    fn a_finished_pipeline_runs_again_in_full() {
        assert_eq!(selected(&["vpc", "dhcp", "subnet", "igw"], &[]).unwrap(), ["vpc", "dhcp", "subnet", "igw"]);
    }

    #[test]
    fn from_and_to_bound_the_range() {
        assert_eq!(selected(&["vpc", "dhcp", "subnet"], &["--from", "dhcp"]).unwrap(), ["dhcp", "subnet", "igw"]);
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
}
