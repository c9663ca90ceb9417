//! `groundup completions SHELL` and `groundup man`: generated from the clap definitions of the
//! runner (which `main` passes in) and of every step (each step prints its own with the
//! harness's hidden flags).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::Args;
use groundup_contracts::steps;
use groundup_runtime::docs::{self, Shell};
use groundup_runtime::output::print_bytes;

/// The step executables beside the runner: the course's steps and the teardown step.
fn steps() -> impl Iterator<Item = &'static str> {
    steps::pipeline().chain(["down"])
}

pub fn completions(runner: clap::Command, shell: Shell) -> Result<()> {
    let mut script = Vec::new();
    docs::completions(runner, shell, &mut script)?;
    for step in steps() {
        script.extend(step_output(step, &["--completions", &shell.to_string()])?);
    }
    Ok(print_bytes(&script)?)
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write a page per command and per step (groundup.1, groundup-up.1, groundup-vpc.1, ...)
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
    // The runner's own `down` page is groundup-down.1; the step of that name is its engine.
    for step in steps().filter(|s| *s != "down") {
        write_page(dir, &format!("groundup-{step}.1"), &step_output(step, &["--man"])?)?;
    }
    clap_mangen::generate_to(runner, dir).with_context(|| format!("cannot write into {}", dir.display()))?;
    eprintln!("groundup: man pages written to {}", dir.display());
    Ok(())
}

fn write_page(dir: &Path, name: &str, page: &[u8]) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))
}

fn step_output(step: &str, args: &[&str]) -> Result<Vec<u8>> {
    let program = crate::step::find_step(step)?;
    let output = duct::cmd(&program, args).stdout_capture().unchecked().run()?;
    if !output.status.success() {
        bail!("{} {} failed", program.display(), args.join(" "));
    }
    Ok(output.stdout)
}
