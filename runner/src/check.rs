//! `groundup check`: runs `groundup-check` on the state file, read-only. Its report (a table,
//! or JSON) goes to stdout as it is, and its exit code is this command's: 1 when a flow the
//! cluster needs is blocked or a port is open to the internet beyond the policy.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, Result};
use clap::Args;

use crate::state;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The state file naming the cluster and its target
    #[arg(long, default_value = state::DEFAULT_STATE)]
    pub state: PathBuf,
    /// The report as JSON on stdout, for scripts
    #[arg(long)]
    pub json: bool,
    /// Allow real AWS (read-only calls), when the state file's target is `aws`
    #[arg(long)]
    pub aws: bool,
}

/// The check's exit code.
pub fn run(args: &CheckArgs) -> Result<u8> {
    // Refuses a missing state file or another cluster's with the runner's own message.
    state::load_existing(&args.state, None)?;
    let program = crate::step::find_step("check")?;
    let mut command = Command::new(&program);
    command.arg("--context").arg(&args.state);
    if args.json {
        command.arg("--json");
    }
    if args.aws {
        command.arg("--aws");
    }
    let status = command.status().with_context(|| format!("cannot run {}", program.display()))?;
    Ok(status.code().map_or(1, |code| u8::try_from(code).unwrap_or(1)))
}
