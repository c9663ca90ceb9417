//! `groundup down`: the cluster and target come from the state file; what to delete is found
//! by tags, so resources the state file never recorded (a crash, a lost write) go too.

use std::path::{Path, PathBuf};

use groundup_runtime::files;
use groundup_runtime::output::print_line;

use anyhow::{anyhow, Result};
use clap::Args;
use groundup_contracts::Context;

use crate::state;

#[derive(Args, Debug)]
pub struct DownArgs {
    /// The state file naming the cluster and its target
    #[arg(long, visible_alias = "context", value_name = "FILE", default_value = state::DEFAULT_STATE)]
    pub state: PathBuf,
    /// Delete; without it, `down` only lists what it would delete (JSON on stdout)
    #[arg(long)]
    pub yes: bool,
    /// Also delete the local files groundup wrote for the cluster: the SSH key (ssh/), the PKI
    /// (pki/), the kubeconfigs (kubeconfig/) and the node bundles (nodes/)
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
    let after = crate::step::run_step("down", &step_args, &context, &args.state, None, lock.as_ref())?;
    let listed = after.teardown.as_ref().map(|t| t.resources.clone()).unwrap_or_default();
    if args.yes {
        let mut after = after;
        if args.purge {
            after.forget_pki();
        }
        state::save(&args.state, &after)?;
        eprintln!("groundup: cluster `{}` torn down; the state file is marked so", context.cluster.name);
        if args.purge {
            purge_local_files(&context, &args.state)?;
        }
    }
    // Last: a reader that stops early (`| head -1`) must not keep the teardown from being recorded.
    Ok(print_line(&serde_json::to_string_pretty(&listed)?)?)
}

/// The SSH key, the PKI files, the kubeconfigs and the node bundles, which `down` otherwise leaves in place: only the files
/// groundup recorded writing for this cluster, in its directories (see
/// [`groundup_runtime::files`]), found from the parameters, which outlive a teardown.
fn purge_local_files(context: &Context, state_path: &Path) -> Result<()> {
    let home = files::home_of(state_path);
    let params = &context.params;
    let mut problems = Vec::new();
    for dir in [&params.ssh_dir, &params.pki.dir, &params.kubeconfig_dir, &params.nodes_dir] {
        match files::purge(home, dir, &context.cluster.name) {
            Ok(removed) => {
                removed.iter().for_each(|p| tracing::debug!("removed {}", p.display()));
                if !removed.is_empty() {
                    eprintln!("groundup: --purge removed {} files and directories from {dir}/ (GROUNDUP_LOG=debug lists each)", removed.len());
                }
            }
            Err(problem) => problems.push(problem.to_string()),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("--purge left files in place: {}", problems.join("; ")))
    }
}
