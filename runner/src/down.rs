//! `groundup down`: the cluster and target come from the state file; what to delete is found
//! by tags, so resources the state file never recorded (a crash, a lost write) go too.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use clap::Args;
use groundup_contracts::Context;

use crate::state;

#[derive(Args, Debug)]
pub struct DownArgs {
    /// The state file naming the cluster and its target
    #[arg(long, default_value = state::DEFAULT_STATE)]
    pub state: PathBuf,
    /// Delete; without it, `down` only lists what it would delete (JSON on stdout)
    #[arg(long)]
    pub yes: bool,
    /// Also delete the local SSH key and the PKI directory
    #[arg(long, requires = "yes")]
    pub purge: bool,
    /// Refuse unless the state file is this cluster's (a guard for scripts)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Allow real AWS, when the state file's target is `aws` (as GROUNDUP_ALLOW_AWS=1 does)
    #[arg(long)]
    pub aws: bool,
    /// Seconds without progress before giving up
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    pub patience: u64,
}

pub fn run(args: &DownArgs) -> Result<()> {
    let context = state::load_existing(&args.state, args.name.as_deref())?;
    let lock = if args.yes { Some(state::lock(&args.state)?) } else { None };
    let patience = args.patience.to_string();
    let mut step_args = vec!["--patience", patience.as_str()];
    if args.yes {
        step_args.push("--yes");
    }
    let after = crate::pipeline::run_step("down", &step_args, &context, None, lock.as_ref())?;
    let listed = after.teardown.as_ref().map(|t| t.resources.clone()).unwrap_or_default();
    println!("{}", serde_json::to_string_pretty(&listed)?);
    if args.yes {
        let mut after = after;
        if args.purge {
            purge_local_files(&context, &args.state)?;
            after.forget_pki();
        }
        state::save(&args.state, &after)?;
        eprintln!("groundup: cluster `{}` torn down; the state file is marked so", context.cluster.name);
    }
    Ok(())
}

/// The SSH key and the PKI directory, which `down` otherwise leaves in place.
fn purge_local_files(context: &Context, state_path: &Path) -> Result<()> {
    let base = state_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Some(compute) = &context.compute {
        remove(&base.join(&compute.key_pair.private_key_path))?;
    }
    remove(&base.join(&context.params.pki.dir))
}

fn remove(path: &Path) -> Result<()> {
    let result = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
    match result {
        Ok(()) => {
            eprintln!("groundup: removed {}", path.display());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow!("cannot remove {}: {e}", path.display())),
    }
}
