//! `groundup up`: runs the context's pipeline, one step executable after another, each fed
//! the previous step's output, with the state file replaced after every step.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, Result};
use clap::Args;
use groundup_contracts::param_table::Place;
use groundup_contracts::steps::{Act, Run, Selection};
use groundup_contracts::{steps, Context, Target};
use groundup_runtime::files::home_of;
use groundup_runtime::output::print_line;

use crate::events::{Gone, Sink};
use crate::headstart::HeadStarts;
use crate::init::{InitArgs, Refused};
use crate::interrupt::{self, Interrupted};
use crate::state;
use crate::step::{contract, run_step};
use crate::timings::{Timings, TimingsFormat};

#[derive(Args, Debug)]
pub struct UpArgs {
    /// The state file: the context after the last good step
    #[arg(long, visible_alias = "context", value_name = "FILE", default_value = state::DEFAULT_STATE)]
    pub state: PathBuf,
    /// Start at this step, even if it and the ones after it are done
    #[arg(long, value_name = "STEP", value_parser = crate::step::StepName)]
    pub from: Option<String>,
    /// Stop after this step
    #[arg(long, value_name = "STEP", value_parser = crate::step::StepName)]
    pub to: Option<String>,
    /// Run only these steps (comma-separated), in pipeline order
    #[arg(long, value_name = "STEPS", value_delimiter = ',', value_parser = crate::step::StepName, conflicts_with_all = ["from", "to"])]
    pub only: Option<Vec<String>>,
    /// Change nothing: report what every selected step would create, adopt, change or leave
    /// (JSON on stdout, a summary on stderr). Without a state file, plans the cluster the init
    /// flags describe.
    #[arg(long)]
    pub plan: bool,
    /// With --plan, list every resource, the ones left as they are too (by default only what
    /// would change is listed; the JSON always holds everything)
    #[arg(long, requires = "plan")]
    pub all: bool,
    /// Re-issue certificates that expire soon or no longer match the context (with new keys),
    /// and the certificates NAMEd even if they match (each keeping its key unless --new-key):
    /// runs `certs` with `--renew`, even if it is done, then what embeds them (kubeconfigs,
    /// bundles). CAs are never replaced.
    #[arg(long, value_name = "NAME", num_args = 0..)]
    pub renew: Option<Vec<String>>,
    /// With --renew NAME: give the certificates named new keys, retiring the old ones
    #[arg(long, requires = "renew")]
    pub new_key: bool,
    /// Put a new encryption key first in the encryption config, keeping the old ones to decrypt
    /// what they wrote (`encryption --rotate`); the masters' bundles follow
    #[arg(long, conflicts_with = "retire_old_encryption_key")]
    pub rotate_encryption_key: bool,
    /// Keep only the first key of the encryption config, once every Secret is rewritten with
    /// it; the config as it was is kept in the PKI directory's retired/ (`encryption
    /// --retire-old`)
    #[arg(long)]
    pub retire_old_encryption_key: bool,
    /// At the end, per step: wall time, AWS calls and their time, key generation time (a
    /// table on stderr; `--timings=json`: JSON on stdout)
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "table", conflicts_with = "plan")]
    pub timings: Option<TimingsFormat>,
    /// Return only when the load balancer is active and the instances run: `compute` waits
    /// for the load balancer while its instances start (`nlb` does, if `compute` is not run)
    #[arg(long, conflicts_with = "plan")]
    pub wait: bool,
    /// Without a state file, the new cluster (`up --plan` writes none); with one, those given
    /// change its spec: counts, admin range, ports, ... (what cannot change in place is refused)
    #[command(flatten)]
    pub init: InitArgs,
}

pub fn up(args: &UpArgs) -> Result<()> {
    refuse_a_selection_without_state(args)?;
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
    let mut run = select(&context, args)?;
    if run.steps().is_empty() {
        eprintln!("groundup: nothing to run");
        return Ok(());
    }
    if changed {
        // The run that applies the new spec starts now.
        state::save(&args.state, &context)?;
        eprintln!("groundup: the cluster's spec changed; every step runs again to apply it");
    }
    let mut timings = args.timings.map(Timings::start);
    let figures = timings.as_ref().map(Timings::reported);
    let total = Instant::now();
    interrupt::catch();
    let mut head_starts = HeadStarts::start(&context, run.steps(), &args.state, &lock, figures.as_ref());
    // A run goes back for a resource gone once: after that, something else is deleting them.
    let (mut went_back, mut i) = (false, 0);
    while let Some(step) = run.steps().get(i).cloned().as_ref() {
        head_starts.finish(step);
        let interrupted = || Interrupted { step: step.clone() };
        if interrupt::received() {
            return Err(interrupted().into());
        }
        eprintln!("groundup: [{}/{}] {step}", i + 1, run.steps().len());
        let started = Instant::now();
        // The step's journal goes into the state file as it comes, onto the context it started from.
        let (gone, journal) = (Gone::default(), Some((args.state.clone(), context.clone())));
        let events = Sink { journal, figures: figures.clone(), gone: gone.clone() };
        let flags = step_args(step, args, run.steps());
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let ran = run_step(step, &flags, &context, &args.state, Some(events), Some(&lock));
        let gone = gone.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        // A step that finished despite the signal keeps its work; one the signal ended left
        // the state file as of the last good step. Either way the next step does not start.
        match ran {
            Ok(next) if interrupt::received() => {
                state::save(&args.state, &next)?;
                return Err(interrupted().into());
            }
            Err(_) if interrupt::received() => return Err(interrupted().into()),
            Ok(next) => {
                run.ran(i, &context, &next).iter().for_each(|note| eprintln!("groundup: {note}"));
                context = next;
            }
            Err(_) if gone.is_some() && !went_back => {
                run.gone(i);
                (i, went_back, context.completed) = (0, true, Vec::new());
                state::save(&args.state, &context)?;
                eprintln!("groundup: `{step}` needs a resource that is gone; the steps before it run again first");
                continue;
            }
            Err(e) => {
                let message = format!(
                    "{e:#}\n  the state file {} keeps the context as of the last good step; fix the cause and {}",
                    args.state.display(),
                    resume_hint(&context, step, args.renew.is_some())
                );
                // A step's refusal of its input stays one (exit code 2).
                return Err(match e.is::<crate::init::Refused>() {
                    true => anyhow::Error::new(crate::init::Refused(message)),
                    false => anyhow!(message),
                });
            }
        }
        state::save(&args.state, &context)?;
        let wall = started.elapsed();
        eprintln!("groundup: [{}/{}] {step} done in {:.2}s", i + 1, run.steps().len(), wall.as_secs_f64());
        if let Some(timings) = &mut timings {
            timings.step_done(step, wall);
        }
        i += 1;
    }
    eprintln!(
        "groundup: {} step(s) in {:.2}s; context saved in {}",
        run.steps().len(),
        total.elapsed().as_secs_f64(),
        args.state.display()
    );
    timings.map_or(Ok(()), |t| t.print(total.elapsed()))
}

/// `--from` and `--only` may skip steps whose sections a selected step needs: that is a
/// cluster whose state file is elsewhere (a pipeline built by hand writes its own). Without
/// a state file such a selection is refused before anything is made, naming `--state`.
fn refuse_a_selection_without_state(args: &UpArgs) -> Result<()> {
    let picked = match (&args.from, &args.only) {
        (Some(step), _) => format!("--from {step}"),
        (None, Some(names)) => format!("--only {}", names.join(",")),
        (None, None) => return Ok(()),
    };
    if state::load(&args.state)?.is_some() {
        return Ok(());
    }
    let pipeline = crate::init::plan(&args.init)?.pipeline;
    let mut made = Vec::new();
    for name in selection(&pipeline, args)? {
        let Some(step) = steps::step(&name) else { continue };
        if let Some(need) = step.needs.iter().find(|need| !made.contains(*need)) {
            return Err(Refused(format!(
                "no state file at {}, and `{name}` needs the `{}` section, which `{picked}` does not make; \
                 name the cluster's state file with `--state FILE` (a pipeline by hand: the file its last step \
                 wrote), or build a new cluster with `groundup up` without `{picked}`; nothing was created",
                args.state.display(),
                need.key()
            ))
            .into());
        }
        made.push(step.section);
    }
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
    let steps = selection(&context.pipeline, args)?;
    let mut not_planned = Vec::new();
    for step in &steps {
        let contract = contract(step, &args.state, None)?;
        if contract.plan {
            let mut flags = vec!["--plan"];
            // Contract 2 takes `--all` with `--plan`; a plugin of contract 1 is not given it.
            if args.all && contract.contract >= 2 {
                flags.push("--all");
            }
            let asked = step_args(step, args, &steps);
            flags.extend(asked.iter().map(String::as_str));
            context = run_step(step, &flags, &context, &args.state, None, None)?;
        } else {
            eprintln!("groundup: `{step}` does not declare --plan support (`groundup-{step} --contract`); not run, not planned");
            not_planned.push(step.clone());
        }
    }
    let mut plan = context.plan.unwrap_or_default();
    plan.not_planned = not_planned;
    print_line(&serde_json::to_string_pretty(&plan)?)?;
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
    let place = args.init.place();
    state::check_name(&args.state, &current, place.name.as_deref())?;
    check_target(&current, &place)?;
    let desired = crate::init::change(&current, &args.init)?;
    let changed =
        desired.cluster != current.cluster || desired.params != current.params || desired.pipeline != current.pipeline;
    Ok((desired, changed))
}

/// With a state file the target is the state file's: a flag naming another is refused, not
/// ignored, and an emulator that does not answer is reported, never swapped for an empty one.
fn check_target(context: &Context, place: &Place) -> Result<()> {
    let recorded = match &context.target {
        Target::Aws => "real AWS".to_string(),
        Target::Emulator { endpoint } | Target::Endpoint { endpoint } => endpoint.clone(),
    };
    let named = match (&place.endpoint, place.aws) {
        (Some(endpoint), _) if context.target.endpoint() != Some(endpoint.as_str()) => Some(endpoint.clone()),
        (None, true) if !context.target.is_real_aws() => Some("real AWS (--aws)".to_string()),
        _ => None,
    };
    if let Some(named) = named {
        return Err(Refused(format!(
            "the state file's cluster is on {recorded}, and the flags name {named}; a state file keeps its target. \
             Drop the flag, or use another --state file for a cluster elsewhere"
        ))
        .into());
    }
    match &context.target {
        Target::Emulator { endpoint } if !crate::emulator::answers(endpoint) => {
            Err(crate::emulator::not_answering(endpoint, &place.emulator_dir))
        }
        _ => Ok(()),
    }
}

impl UpArgs {
    /// The acts this `up` asks of the steps (see [`Act`]).
    fn acts(&self) -> Vec<Act> {
        let asked = [
            (Act::Renew, self.renew.is_some()),
            (Act::RotateEncryptionKey, self.rotate_encryption_key),
            (Act::RetireOldEncryptionKey, self.retire_old_encryption_key),
        ];
        asked.into_iter().filter_map(|(act, asked)| asked.then_some(act)).collect()
    }

    /// The step's flags for `act`, which this `up` asks for.
    fn act_flags(&self, act: Act) -> Vec<String> {
        let mut flags = vec![act.step_flag().to_string()];
        if act == Act::Renew {
            flags.extend(self.renew.iter().flatten().cloned());
            flags.extend(self.new_key.then(|| "--new-key".to_string()));
        }
        flags
    }
}

/// The flags of `up` a step takes, as its row in the steps table declares them: the acts it
/// is asked for (`--renew`, `--rotate`, ...), and `--wait` unless another step of the run
/// waits for what it would.
fn step_args(step: &str, args: &UpArgs, steps: &[String]) -> Vec<String> {
    let Some(row) = steps::step(step) else { return Vec::new() };
    let mut flags: Vec<String> =
        args.acts().into_iter().filter(|act| row.acts.contains(act)).flat_map(|act| args.act_flags(act)).collect();
    let names: Vec<&str> = steps.iter().map(String::as_str).collect();
    if args.wait && row.waits_among(&names) {
        flags.push("--wait".to_string());
    }
    flags
}

/// What to run after `step` failed: plain `up` resumes at the first step not done, which is
/// `step` only if everything before it is done (not so after `up --from sg` on a new state).
fn resume_hint(context: &Context, step: &str, renewing: bool) -> String {
    let renews = steps::step(step).is_some_and(|row| row.acts.contains(&Act::Renew));
    let renew_hint = match renews && !renewing {
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

/// The steps to run, as the steps table's [`Run`] decides them from the selection, the state
/// file and, as the run goes, what changed.
fn select(context: &Context, args: &UpArgs) -> Result<Run> {
    let (named, resumes) = (selection(&context.pipeline, args)?, args.only.is_none() && args.from.is_none());
    Ok(Run::new(context, Selection { named, resumes, last: args.to.clone(), acts: args.acts() }))
}

/// The steps `--only`, or the `--from`..`--to` range, names, done or not. A plan looks at all
/// of them: drift hides in done ones.
fn selection(pipeline: &[String], args: &UpArgs) -> Result<Vec<String>> {
    let position = |step: &str| {
        pipeline
            .iter()
            .position(|s| s == step)
            .ok_or_else(|| Refused(format!("`{step}` is not a step of this pipeline ({})", pipeline.join(", "))))
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
        return Err(Refused(format!("--from {} comes after --to {}", pipeline[first], pipeline[last])).into());
    }
    Ok(pipeline[first..=last].to_vec())
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
        Ok(select(&context(done), &args)?.steps().to_vec())
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
        assert_eq!(step_args("certs", &args, &[]), ["--renew"]);
        assert!(step_args("vpc", &args, &[]).is_empty());
    }

    /// `--renew NAME --new-key` reaches `certs` as its own flags; the encryption acts reach
    /// `encryption` only, as its `--rotate` and `--retire-old`.
    #[test]
    fn each_act_goes_to_the_steps_whose_rows_declare_it() {
        let args = Wrapper::try_parse_from(["up", "--renew", "admin", "kube-proxy", "--new-key"]).unwrap().up;
        assert_eq!(step_args("certs", &args, &[]), ["--renew", "admin", "kube-proxy", "--new-key"]);
        assert!(step_args("encryption", &args, &[]).is_empty());
        let args = Wrapper::try_parse_from(["up", "--rotate-encryption-key"]).unwrap().up;
        assert_eq!(step_args("encryption", &args, &[]), ["--rotate"]);
        assert!(step_args("certs", &args, &[]).is_empty());
        let args = Wrapper::try_parse_from(["up", "--retire-old-encryption-key"]).unwrap().up;
        assert_eq!(step_args("encryption", &args, &[]), ["--retire-old"]);
        assert!(Wrapper::try_parse_from(["up", "--new-key"]).is_err(), "--new-key without --renew");
    }

    /// `up --wait` has compute wait for the load balancer while the instances start; nlb
    /// waits itself only when compute does not run.
    #[test]
    fn wait_goes_to_compute_or_else_to_nlb() {
        let args = Wrapper::try_parse_from(["up", "--wait"]).unwrap().up;
        let steps = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let all = steps(&["nlb", "compute", "certs"]);
        assert!(step_args("nlb", &args, &all).is_empty());
        assert_eq!(step_args("compute", &args, &all), ["--wait"]);
        assert!(step_args("certs", &args, &all).is_empty());
        assert_eq!(step_args("nlb", &args, &steps(&["sg", "nlb"])), ["--wait"]);
        let without = Wrapper::try_parse_from(["up"]).unwrap().up;
        assert!(step_args("compute", &without, &all).is_empty());
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
