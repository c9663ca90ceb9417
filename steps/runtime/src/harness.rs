//! The discipline every step follows: read the context (stdin or `--state FILE`), run,
//! write the context on stdout in one piece (or back to the file with `--in-place`), or write nothing on stdout and one error line
//! on stderr with a non-zero exit code.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser};
use serde::{Deserialize, Serialize};

use groundup_contracts::context::allow_aws;
use groundup_contracts::plan::PlanSection;
use groundup_contracts::{Context, ContextError};

use crate::error::StepError;

/// What the harness needs to know about a step.
pub struct StepInfo {
    /// The step's name; its executable is `groundup-<name>`.
    pub name: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
}

/// What a step promises the runner; `groundup-<step> --contract` prints it as one line of JSON
/// (`{"contract":2,"plan":true,"events":true}`). The runner runs a step with `--plan` only if it
/// says `"plan": true` (a plugin that knows nothing of `--plan` would make real changes), and
/// passes `--events-fd` only to a step of contract 2 that says `"events": true`. A step that
/// does not answer is of contract 1 and gets neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepContract {
    /// The version of the contract the step follows: 1 is stdin/stdout, exit codes and
    /// pass-through; 2 adds the side channel (`--events-fd`, see [`crate::events`]), `--aws`
    /// and `--all` with `--plan`.
    pub contract: u32,
    /// `--plan` changes nothing and records what would be done in the `plan` section.
    pub plan: bool,
    /// `--events-fd N` is taken: the step journals its creates and reports its figures there.
    #[serde(default)]
    pub events: bool,
}

impl StepContract {
    /// What every built-in step follows, and answers.
    pub const CURRENT: StepContract = StepContract { contract: 2, plan: true, events: true };

    /// A step that does not answer `--contract`: stdin and stdout only.
    pub const FIRST: StepContract = StepContract { contract: 1, plan: false, events: false };

    /// Whether the runner passes the step its side channel.
    pub fn takes_events(&self) -> bool {
        self.contract >= 2 && self.events
    }
}

#[derive(Parser)]
struct StepCli<A: Args> {
    /// Read the context from FILE instead of stdin (for example the runner's groundup.json);
    /// `--state`, as on `groundup up`
    #[arg(long = "state", visible_alias = "context", value_name = "FILE", global = true)]
    context: Option<PathBuf>,
    /// With --state FILE: replace FILE with the result (atomically) instead of writing it on
    /// stdout; `> FILE` would empty the file before the step reads it
    #[arg(long, requires = "context", conflicts_with = "plan")]
    in_place: bool,
    /// Print what this step supports, as JSON (`{"contract":2,"plan":true,"events":true}`), and exit
    #[arg(long, exclusive = true)]
    contract: bool,
    /// Change nothing: report what the step would create, adopt, change or leave (in the
    /// context's `plan` section on stdout, and as a summary on stderr)
    #[arg(long)]
    plan: bool,
    /// With --plan, list the resources left as they are too, not only what would change
    /// (`groundup up --plan --all` passes it on)
    #[arg(long, requires = "plan")]
    all: bool,
    /// Allow real AWS for this run, when the context's target is `aws` (as GROUNDUP_ALLOW_AWS=1 does)
    #[arg(long)]
    aws: bool,
    /// Send journal and timing events as JSON lines on this inherited file descriptor, and read
    /// the runner's answers on it (contract 2; `groundup up` passes it)
    #[arg(long, value_name = "FD")]
    events_fd: Option<i32>,
    /// Print this step's shell completion script and exit (`groundup completions` gathers them)
    #[arg(long, value_name = "SHELL", hide = true, exclusive = true)]
    completions: Option<crate::docs::Shell>,
    /// Print this step's man page (roff) and exit (`groundup man --dir` gathers them)
    #[arg(long, hide = true, exclusive = true)]
    man: bool,
    #[command(flatten)]
    args: A,
}

/// Logs go to stderr; stdout is reserved for the context. `GROUNDUP_LOG` sets the level.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GROUNDUP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .without_time()
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Enters a step's head start (its `--prepare`, which `groundup up` runs in the background,
/// at a lower priority, from the start of the run: work that depends only on the spec). It
/// makes files, so a plan refuses it.
pub fn enter_head_start(context: &Context) -> Result<(), StepError> {
    match context.planning() {
        true => Err(StepError::new("--prepare makes files; a plan changes nothing")),
        false => Ok(()),
    }
}

/// Runs a step: `body` gets the parsed context and the step's own arguments and returns the
/// context with the step's section added.
pub fn run_step<A, F>(info: StepInfo, body: F) -> ExitCode
where
    A: Args,
    F: FnOnce(Context, A) -> Result<Context, StepError>,
{
    run_step_or_report(info, |context, args| body(context, args).map(Some))
}

/// [`run_step`] for a step that can also only report (such as `groundup-certs check`): `body`
/// returns `None` when it has written its report on stderr, and then stdout stays empty.
pub fn run_step_or_report<A, F>(info: StepInfo, body: F) -> ExitCode
where
    A: Args,
    F: FnOnce(Context, A) -> Result<Option<Context>, StepError>,
{
    init_logging();
    let program = format!("groundup-{}", info.name);
    let command = StepCli::<A>::command().name(program.clone()).bin_name(program.clone()).about(info.about).after_help(
        "Reads the groundup context (JSON) on stdin and writes it, with this step's section added, on stdout.",
    );
    let cli = match StepCli::<A>::from_arg_matches(&command.clone().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let help = match (cli.completions, cli.man) {
        (Some(shell), _) => Some(crate::docs::completions(command, shell, &mut std::io::stdout())),
        (None, true) => Some(crate::docs::man(command, &mut std::io::stdout())),
        (None, false) => None,
    };
    if let Some(written) = help {
        return match written {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if crate::output::is_closed_pipe(&e) => ExitCode::from(crate::output::CLOSED_PIPE_EXIT),
            Err(e) => {
                eprintln!("{program}: error: cannot write on stdout: {e}");
                ExitCode::from(1)
            }
        };
    }
    if cli.contract {
        let contract = serde_json::to_string(&StepContract::CURRENT).expect("serializes");
        return write_stdout(&program, &format!("{contract}\n"));
    }
    let planning = cli.plan;
    let list_all = cli.all;
    let in_place = cli.in_place.then(|| cli.context.clone()).flatten();
    if cli.aws {
        // Checked where the AWS clients are built.
        allow_aws();
    }
    let connected = cli.events_fd.map_or(Ok(()), crate::events::connect).map_err(StepError::from);
    let outcome = connected
        .and_then(|()| read_context(cli.context.as_ref()).map_err(StepError::from))
        .and_then(|context| enter_mode(context, planning))
        .and_then(|context| body(context, cli.args))
        .map(|output| {
            output.map(|mut context| {
                if planning {
                    print_plan(info.name, &context, list_all);
                } else if context.pipeline.iter().any(|s| s == info.name) {
                    // Only pipeline steps count as done; `down` and other tools leave the list alone.
                    context.mark_completed(info.name);
                }
                context
            })
        });
    crate::timings::report(info.name);
    match (outcome, in_place) {
        (Ok(Some(context)), Some(path)) => match crate::state::save(&context, &path) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{program}: error: cannot replace {}: {e}; it was left as it was", path.display());
                ExitCode::from(1)
            }
        },
        (Ok(Some(context)), None) => write_stdout(&program, &context.to_json()),
        (Ok(None), _) => ExitCode::SUCCESS,
        (Err(e), _) => {
            eprintln!("{program}: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// A plan starts (or continues) the context's `plan` section; a real run refuses a context
/// that has one, because its ids for resources still to be created are placeholders.
fn enter_mode(mut context: Context, planning: bool) -> Result<Context, StepError> {
    match (planning, context.plan.is_some()) {
        (true, _) => {
            context.plan.get_or_insert_with(Default::default);
            Ok(context)
        }
        (false, true) => Err(StepError::from(ContextError::field(
            "plan",
            "this context is the output of --plan and holds placeholder ids; run the step on the state file or on the output of a run without --plan",
        ))),
        (false, false) => Ok(context),
    }
}

/// The step's plan on stderr: its counts, then what would change (everything with `all`).
fn print_plan(step: &str, context: &Context, all: bool) {
    let Some(plan) = &context.plan else { return };
    let mine = PlanSection {
        resources: plan.resources.iter().filter(|r| r.step == step).cloned().collect(),
        ..Default::default()
    };
    eprintln!("groundup-{step}: plan: {}", mine.counts());
    let listed = PlanSection {
        resources: mine.resources.iter().filter(|r| all || r.changes_anything()).cloned().collect(),
        ..Default::default()
    };
    for line in listed.summary_lines() {
        eprintln!("{line}");
    }
}

/// Reads a context from a file, or from stdin when no file is given.
pub fn read_context(path: Option<&PathBuf>) -> Result<Context, ContextError> {
    let text = match path {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| ContextError::Io { path: path.display().to_string(), message: e.to_string() })?,
        None => {
            if std::io::stdin().is_terminal() {
                return Err(ContextError::Empty);
            }
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| ContextError::Io { path: "stdin".into(), message: e.to_string() })?;
            text
        }
    };
    Context::from_json(&text)
}

fn write_stdout(program: &str, text: &str) -> ExitCode {
    match crate::output::print(text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if crate::output::is_closed_pipe(&e) => ExitCode::from(crate::output::CLOSED_PIPE_EXIT),
        Err(e) => {
            eprintln!("{program}: error: cannot write the context to stdout: {e}");
            ExitCode::from(1)
        }
    }
}

/// For steps that take no arguments of their own.
#[derive(Args, Debug)]
pub struct NoArgs {}
