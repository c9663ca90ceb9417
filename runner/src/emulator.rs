//! `groundup emulator start|stop|status`: the command line of `groundup_emulator`.

use std::path::Path;

use anyhow::{bail, Result};
use clap::Subcommand;
use groundup_emulator::{running_endpoint, stop};
use groundup_runtime::output::print_line;

pub use groundup_emulator::{answers, ensure_running, not_answering, DEFAULT_DIR};

#[derive(Subcommand)]
pub enum Action {
    /// Start the emulator, or reuse the one already running; prints its endpoint on stdout
    Start {
        /// Listen on this loopback port (the one a state file records) instead of a free one
        #[arg(long)]
        port: Option<u16>,
    },
    /// Stop the emulator started from this directory
    Stop,
    /// Print the endpoint of the running emulator, or fail if none runs
    Status,
}

pub fn run(action: Action, dir: &Path) -> Result<()> {
    match action {
        Action::Start { port } => print_line(&ensure_running(dir, port)?)?,
        Action::Stop => stop(dir)?,
        Action::Status => match running_endpoint(dir)? {
            Some(endpoint) => print_line(&endpoint)?,
            None => bail!("no emulator is running from {}; start one with `groundup emulator start`", dir.display()),
        },
    }
    Ok(())
}
