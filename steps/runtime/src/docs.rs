//! Shell completions and man pages, generated from a command's clap definition so that they
//! cannot drift from the flags. The runner and every step print them the same way.

use std::io::Write;

use clap::Command;
pub use clap_complete::Shell;

/// Writes the completion script for `command` in `shell`. It is generated into memory first:
/// clap_complete panics on a failed write (a closed pipe), we report it.
pub fn completions(mut command: Command, shell: Shell, out: &mut dyn Write) -> std::io::Result<()> {
    let name = command.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    out.write_all(&script)
}

/// The man page (roff) of `command`.
pub fn man(command: Command, out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(command).render(out)
}
