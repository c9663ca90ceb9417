//! `groundup`: writes the starting context, runs the steps as a pipeline with a checkpoint after
//! each one, reports progress, and manages the local AWS emulator.

mod down;
mod emulator;
mod init;
mod pipeline;
mod state;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "groundup",
    version,
    about = "Build a Kubernetes cluster's AWS infrastructure and PKI from the ground up"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// `--aws` on a command that runs steps: this invocation may use real AWS.
    fn allows_aws(&self) -> bool {
        match &self.command {
            Command::Up(args) => args.init.aws,
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
    Up(pipeline::UpArgs),
    /// List everything tagged as the cluster's; with --yes, delete it all
    Down(down::DownArgs),
    /// Show each step of the pipeline as done or pending, with its resources
    Status {
        /// The state file
        #[arg(long, default_value = state::DEFAULT_STATE)]
        state: PathBuf,
    },
    /// Start, stop or locate the local AWS emulator (moto on 127.0.0.1)
    Emulator {
        #[command(subcommand)]
        action: emulator::Action,
        /// Where the emulator keeps its virtualenv, log and pid
        #[arg(long, default_value = emulator::DEFAULT_DIR, global = true)]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    groundup_contracts::harness::init_logging();
    let cli = Cli::parse();
    if cli.allows_aws() {
        // Read by every step this run starts (and checked where AWS clients are built); set
        // before any thread exists.
        std::env::set_var(groundup_contracts::context::ALLOW_AWS_ENV, "1");
    }
    let result = match cli.command {
        Command::Init(args) => init::run(&args),
        Command::Up(args) => pipeline::up(&args),
        Command::Down(args) => down::run(&args),
        Command::Status { state } => status::run(&state),
        Command::Emulator { action, dir } => emulator::run(action, &dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("groundup: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
