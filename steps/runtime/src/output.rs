//! What a command prints on stdout: its product (a step's context, a report, a plan), for a
//! reader that may stop early. `groundup status | head -1` closes the pipe after one line;
//! Rust ignores SIGPIPE, so the next write fails with `BrokenPipe`, and `println!` panics on it.
//! Every binary writes stdout through [`print`] and ends quietly when the reader has gone,
//! with the status a shell reports for `yes | head -1`.

use std::io::Write;

/// The exit status of a command whose stdout reader went away: 128 + SIGPIPE, as for a
/// process the signal ended.
pub const CLOSED_PIPE_EXIT: u8 = 128 + libc::SIGPIPE as u8;

/// Writes `text` on stdout in one piece and flushes it. A reader that has gone away is the
/// error `BrokenPipe`; see [`is_closed_pipe`].
pub fn print(text: &str) -> std::io::Result<()> {
    print_bytes(text.as_bytes())
}

/// [`print`] with a newline after `text`, as `println!` would.
pub fn print_line(text: &str) -> std::io::Result<()> {
    print(&format!("{text}\n"))
}

/// [`print`] for bytes (a man page, a completion script).
pub fn print_bytes(bytes: &[u8]) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()
}

/// Whether `error`, or any error in its chain of causes, is stdout's reader having gone away:
/// then the command ends with [`CLOSED_PIPE_EXIT`] and says nothing.
pub fn is_closed_pipe(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
            return true;
        }
        cause = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapped(std::io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot print")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_closed_pipe_is_found_among_the_causes() {
        let closed = Wrapped(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_closed_pipe(&closed));
        assert!(!is_closed_pipe(&Wrapped(std::io::Error::from(std::io::ErrorKind::PermissionDenied))));
        assert_eq!(CLOSED_PIPE_EXIT, 141);
    }
}
