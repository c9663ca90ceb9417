//! How groundup finds its programs, and the discipline of a tool.
//!
//! Steps and tools are executables named `groundup-<name>`, looked up beside the running
//! program, then on PATH ([`find_program`]), so a plugin is installed by putting it on PATH.
//! A *tool* (`groundup-graph`, `groundup-distribute`, a third party's `groundup-<name>`) is
//! not a pipeline step: it reads a state file, and its stdout is its product (a drawing, a
//! report), never a context. `groundup <name> ARGS` runs `groundup-<name> ARGS`, the way cargo
//! runs `cargo-<name>`. [`run_tool`] gives the built-in tools the runner's discipline: logs and
//! errors on stderr, exit code 2 for bad input, a quiet end when stdout's reader has gone, and
//! the hidden `--completions` and `--man` that `groundup completions` and `groundup man` gather.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::docs::Shell;
use crate::error::RuntimeError;
use crate::output;
use clap::{Args, CommandFactory, FromArgMatches, Parser};

/// `groundup-<name>` beside the running program, then on PATH.
pub fn find_program(name: &str) -> Result<PathBuf, RuntimeError> {
    let program = format!("groundup-{name}");
    let here = std::env::current_exe().ok();
    let beside = here.as_ref().and_then(|exe| exe.parent().map(|dir| dir.join(&program)));
    beside.filter(|p| is_executable(p)).or_else(|| find_on_path(&program)).ok_or_else(|| RuntimeError::NoProgram {
        program,
        beside: here.map(|p| p.display().to_string()).unwrap_or_default(),
    })
}

/// An executable named `name` in a directory of PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| is_executable(p)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[derive(Parser)]
struct ToolCli<A: Args> {
    /// Print this tool's shell completion script and exit (`groundup completions` gathers them)
    #[arg(long, value_name = "SHELL", hide = true, exclusive = true)]
    completions: Option<Shell>,
    /// Print this tool's man page (roff) and exit (`groundup man --dir` gathers them)
    #[arg(long, hide = true, exclusive = true)]
    man: bool,
    #[command(flatten)]
    args: A,
}

/// Runs the shipped tool `groundup-<name>` (its help from `groundup_contracts::tools`): `body`
/// gets its parsed arguments and returns its exit code. A tool is the top of its binary, as the
/// runner's commands are, so its body speaks `anyhow` over the layers' typed errors. An error is
/// one line on stderr, exit code 2 when it is bad input (a `ContextError` naming a field, or a
/// [`RuntimeError`] that is: a state file to restore, a step that refused its input), 1
/// otherwise.
pub fn run_tool<A: Args>(name: &str, body: impl FnOnce(A) -> anyhow::Result<ExitCode>) -> ExitCode {
    crate::harness::init_logging();
    let program = format!("groundup-{name}");
    let command =
        ToolCli::<A>::command().name(program.clone()).bin_name(program).about(groundup_contracts::tools::about(name));
    let cli = ToolCli::<A>::from_arg_matches(&command.clone().get_matches()).unwrap_or_else(|e| e.exit());
    let result = match (cli.completions, cli.man) {
        (Some(shell), _) => print_generated(|out| crate::docs::completions(command, shell, out)),
        (None, true) => print_generated(|out| crate::docs::man(command, out)),
        (None, false) => body(cli.args),
    };
    result.unwrap_or_else(|e| exit_on_error(&e, false))
}

/// How a binary whose top speaks anyhow (the runner, a tool) ends on an error: quietly for a
/// reader that stopped early (`groundup graph | head -1`: it has what it wanted), else the
/// message on stderr and exit code 2 for bad input (`bad_input`, the binary's own, or a
/// contract or runtime error anywhere in the chain that is), 1 otherwise.
pub fn exit_on_error(e: &anyhow::Error, bad_input: bool) -> ExitCode {
    if e.chain().any(output::is_closed_pipe) {
        return ExitCode::from(output::CLOSED_PIPE_EXIT);
    }
    eprintln!("groundup: error: {e:#}");
    let bad_input = bad_input || e.chain().any(RuntimeError::is_bad_input_error);
    ExitCode::from(if bad_input { 2 } else { 1 })
}

/// A completion script or a man page, made in memory and printed in one piece.
fn print_generated(generate: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> anyhow::Result<ExitCode> {
    let mut text = Vec::new();
    generate(&mut text)?;
    output::print_bytes(&text)?;
    Ok(ExitCode::SUCCESS)
}
