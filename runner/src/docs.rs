//! `groundup completions SHELL` and `groundup man`: generated from the clap definitions of the
//! runner (which `main` passes in) and of every step and shipped tool (each prints its own with
//! the harness's hidden flags).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::Args;
use groundup_contracts::{steps, tools};
use groundup_runtime::docs::{self, Shell};
use groundup_runtime::output::print_bytes;

/// The executables beside the runner: the course's steps, the teardown step and the tools.
fn programs() -> impl Iterator<Item = &'static str> {
    steps::pipeline().chain(["down"]).chain(tools::TOOLS.iter().map(|tool| tool.name))
}

pub fn completions(runner: clap::Command, shell: Shell) -> Result<()> {
    let mut script = Vec::new();
    docs::completions(runner, shell, &mut script)?;
    for program in programs() {
        script.extend(program_output(program, &["--completions", &shell.to_string()])?);
    }
    Ok(print_bytes(&script)?)
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write a page per command, step and tool (groundup.1, groundup-up.1, groundup-vpc.1, ...)
    /// into DIR instead of printing groundup(1)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn man(runner: clap::Command, args: &ManArgs) -> Result<()> {
    let Some(dir) = &args.dir else {
        let mut page = Vec::new();
        docs::man(runner, &mut page)?;
        return Ok(print_bytes(&page)?);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(runner, dir).with_context(|| format!("cannot write into {}", dir.display()))?;
    // A tool's own page (its flags) replaces the runner's page of its subcommand. The runner's
    // own `down` page is groundup-down.1; the step of that name is its engine.
    for program in programs().filter(|p| *p != "down") {
        write_page(dir, &format!("groundup-{program}.1"), &program_output(program, &["--man"])?)?;
    }
    eprintln!("groundup: man pages written to {}", dir.display());
    Ok(())
}

fn write_page(dir: &Path, name: &str, page: &[u8]) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))
}

fn program_output(name: &str, args: &[&str]) -> Result<Vec<u8>> {
    let program = crate::step::find_step(name)?;
    let output = duct::cmd(&program, args).stdout_capture().unchecked().run()?;
    if !output.status.success() {
        bail!("{} {} failed", program.display(), args.join(" "));
    }
    Ok(output.stdout)
}
