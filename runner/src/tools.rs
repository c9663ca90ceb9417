//! Tools outside the core: `groundup <name> ARGS` runs `groundup-<name> ARGS`, found beside the
//! runner, then on PATH, the way cargo runs `cargo-<name>`. groundup ships `graph` and
//! `distribute` (listed in the help, the completions and the man pages, from
//! `groundup_contracts::tools`); a third party's `groundup-<name>` on PATH runs the same way.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use anyhow::{Context as _, Result};
use clap::{value_parser, Arg, ArgMatches};
use groundup_contracts::tools::TOOLS;
use groundup_runtime::tool::find_program;

use crate::init::Refused;

/// The id of a shipped tool's arguments, which the runner passes on untouched.
const ARGS: &str = "args";

/// A subcommand per shipped tool, for the help, completions and man pages: it takes any
/// arguments (`--help` included) and passes them on.
pub fn commands() -> impl Iterator<Item = clap::Command> {
    TOOLS.iter().map(|tool| {
        clap::Command::new(tool.name)
            .about(format!("{}; runs groundup-{}", tool.about, tool.name))
            .disable_help_flag(true)
            .arg(
                Arg::new(ARGS)
                    .num_args(0..)
                    .trailing_var_arg(true)
                    .allow_hyphen_values(true)
                    .value_parser(value_parser!(OsString)),
            )
    })
}

/// The command line of a shipped tool's subcommand, its name first, as the external
/// subcommand of any other tool is.
pub fn shipped(name: &str, matches: &ArgMatches) -> Option<Vec<OsString>> {
    TOOLS.iter().any(|tool| tool.name == name).then(|| {
        let args = matches.get_many::<OsString>(ARGS).into_iter().flatten().cloned();
        std::iter::once(OsString::from(name)).chain(args).collect()
    })
}

/// Replaces the runner with `groundup-<name>` and the rest of `command_line`: its output, exit
/// code and signals are the command's own. Returns only if it cannot start.
pub fn run(command_line: &[OsString]) -> Result<()> {
    let (name, args) = command_line.split_first().expect("clap gives an external subcommand its name");
    // A name becomes part of a path only once proven plain: `groundup ../x` runs nothing.
    let name = name
        .to_str()
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .ok_or_else(|| Refused(format!("no command {name:?}; `groundup --help` lists them")))?;
    let program =
        find_program(name).map_err(|e| Refused(format!("no command `{name}` ({e}); `groundup --help` lists them")))?;
    let error = std::process::Command::new(&program).args(args).exec();
    Err(error).with_context(|| format!("cannot run {}", program.display()))
}
