//! `groundup`: writes the starting context, runs the steps as a pipeline with a checkpoint after
//! each one, reports progress, and manages the local AWS emulator. Any other command runs the
//! tool `groundup-<command>` (`graph`, `distribute`, a plugin), see [`tools`].
//!
//! The runner never calls AWS itself: every AWS call is made by a step it runs as a process,
//! so it links neither the AWS SDK nor `groundup-cloud` (only its tests do). It depends on the
//! contract and the step runtime only.

mod check;
mod docs;
mod down;
mod emulator;
mod events;
mod headstart;
mod init;
mod interrupt;
mod state;
mod status;
mod step;
mod timings;
mod tools;
mod up;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use groundup_runtime::tool::exit_on_error;

#[derive(Parser)]
#[command(
    name = "groundup",
    version,
    about = "Build a Kubernetes cluster's AWS infrastructure and PKI from the ground up",
    after_help = "Any other COMMAND runs `groundup-COMMAND` (beside groundup, then on PATH) with the arguments that follow, as cargo runs `cargo-COMMAND`: a plugin of your own works the same way."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// `--aws` on a command that runs steps: this invocation may use real AWS.
    fn allows_aws(&self) -> bool {
        match &self.command {
            Command::Up(args) => args.init.place().aws,
            Command::Down(args) => args.aws,
            _ => false,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Write the starting context on stdout (starts the local emulator unless --endpoint or --aws)
    Init(init::InitArgs),
    /// Run the pipeline, saving the context after every step; resumes after a failure
    Up(up::UpArgs),
    /// List everything tagged as the cluster's; with --yes, delete it all
    Down(down::DownArgs),
    /// Show each step of the pipeline as done or pending, with its resources (a table on
    /// stdout, or JSON with --json)
    Status {
        /// The state file
        #[arg(long, visible_alias = "context", value_name = "FILE", default_value = state::DEFAULT_STATE)]
        state: PathBuf,
        /// For scripts: each step's state and resource ids as JSON on stdout
        #[arg(long)]
        json: bool,
    },
    /// Check, read-only, that the network carries every flow the cluster needs (exit code 1
    /// names what is blocked, or open to the internet beyond the policy)
    Check(check::CheckArgs),
    /// Print the shell completion script of groundup and every step (bash, zsh, fish, ...)
    Completions {
        #[arg(value_enum)]
        shell: groundup_runtime::docs::Shell,
    },
    /// Print groundup's man page, or write every command's and step's into a directory
    Man(docs::ManArgs),
    /// Start, stop or locate the local AWS emulator (moto on 127.0.0.1)
    Emulator {
        #[command(subcommand)]
        action: emulator::Action,
        /// Where the emulator keeps its virtualenv, log and pid
        #[arg(long = "emulator-dir", visible_alias = "dir", value_name = "DIR", default_value = emulator::DEFAULT_DIR, global = true)]
        dir: PathBuf,
    },
    /// `groundup-<COMMAND>` with the arguments that follow (see `tools`)
    #[command(external_subcommand)]
    Tool(Vec<OsString>),
}

fn main() -> ExitCode {
    groundup_runtime::harness::init_logging();
    let cli = parse();
    if cli.allows_aws() {
        // Passed on to every step this run starts (see `step::step_command`).
        groundup_contracts::context::allow_aws();
    }
    let result = match cli.command {
        Command::Init(args) => init::run(&args),
        Command::Up(args) => up::up(&args),
        Command::Down(args) => down::run(&args),
        Command::Status { state, json } => status::run(&state, json),
        Command::Check(args) => match check::run(&args) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        Command::Completions { shell } => docs::completions(command(), shell),
        Command::Man(args) => docs::man(command(), &args),
        Command::Emulator { action, dir } => emulator::run(action, &dir),
        Command::Tool(command_line) => tools::run(&command_line),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<interrupt::Interrupted>().is_some() => {
            eprintln!("groundup: {e}");
            ExitCode::from(interrupt::INTERRUPTED_EXIT)
        }
        // Bad input (a value that fails validation, a change the cloud cannot make in place, a
        // state file to restore or write, `--name` of another cluster) is exit code 2, as for
        // the steps; the runner's own is `init::Refused`.
        Err(e) => exit_on_error(&e, e.downcast_ref::<init::Refused>().is_some()),
    }
}

/// The runner's commands and the shipped tools'.
fn command() -> clap::Command {
    Cli::command().subcommands(tools::commands())
}

/// The command line: a shipped tool's, or one of the runner's commands.
fn parse() -> Cli {
    let matches = command().get_matches();
    if let Some(command_line) = matches.subcommand().and_then(|(name, args)| tools::shipped(name, args)) {
        return Cli { command: Command::Tool(command_line) };
    }
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}
