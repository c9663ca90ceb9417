//! `groundup completions SHELL` and `groundup man`: generated from the clap definitions of the
//! runner and of every step (each step prints its own with the harness's hidden flags), and
//! the step-name values that `--from`, `--to` and `--only` complete.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::builder::{PossibleValue, StringValueParser, TypedValueParser};
use clap::{Args, CommandFactory};
use groundup_contracts::steps;
use groundup_runtime::docs::{self, Shell};

/// The step executables beside the runner: the course's steps and the teardown step.
fn steps() -> impl Iterator<Item = &'static str> {
    steps::pipeline().chain(["down"])
}

pub fn completions(shell: Shell) -> Result<()> {
    let mut out = std::io::stdout();
    docs::completions(crate::Cli::command(), shell, &mut out)?;
    for step in steps() {
        std::io::Write::write_all(&mut out, &step_output(step, &["--completions", &shell.to_string()])?)?;
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write a page per command and per step (groundup.1, groundup-up.1, groundup-vpc.1, ...)
    /// into DIR instead of printing groundup(1)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn man(args: &ManArgs) -> Result<()> {
    let Some(dir) = &args.dir else {
        return Ok(docs::man(crate::Cli::command(), &mut std::io::stdout())?);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The runner's own `down` page is groundup-down.1; the step of that name is its engine.
    for step in steps().filter(|s| *s != "down") {
        write_page(dir, &format!("groundup-{step}.1"), &step_output(step, &["--man"])?)?;
    }
    clap_mangen::generate_to(crate::Cli::command(), dir)
        .with_context(|| format!("cannot write into {}", dir.display()))?;
    eprintln!("groundup: man pages written to {}", dir.display());
    Ok(())
}

fn write_page(dir: &Path, name: &str, page: &[u8]) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))
}

fn step_output(step: &str, args: &[&str]) -> Result<Vec<u8>> {
    let program = crate::pipeline::find_step(step)?;
    let output = duct::cmd(&program, args).stdout_capture().unchecked().run()?;
    if !output.status.success() {
        bail!("{} {} failed", program.display(), args.join(" "));
    }
    Ok(output.stdout)
}

/// Any step name is accepted (a plugin's too); the course's steps are offered to completion.
#[derive(Clone)]
pub struct StepName;

impl TypedValueParser for StepName {
    type Value = String;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<String, clap::Error> {
        StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(steps::pipeline().map(PossibleValue::new)))
    }
}
