//! The contract layer's one error type: a context that cannot be used. It renders as one line
//! on stderr that says what is wrong and what to do.

use std::fmt;

/// The context document is unusable: it is empty, malformed, of another version, or holds a
/// value that does not pass validation. `field` names the JSON path of the culprit.
#[derive(Debug)]
pub enum ContextError {
    Empty,
    Malformed(String),
    Version {
        found: String,
        expected: u32,
    },
    Field {
        field: String,
        message: String,
    },
    MissingSection {
        section: &'static str,
        step: &'static str,
    },
    AwsNotAllowed,
    Io {
        path: String,
        message: String,
    },
    /// A flag's value that its row of the parameter table does not accept.
    Flag {
        flag: &'static str,
        message: String,
    },
    /// A field of the spec that a step has built on, asked to change: it is `now`, `asked`
    /// was asked for, and `way` is the way forward.
    CannotChange {
        field: String,
        step: &'static str,
        now: String,
        asked: String,
        way: String,
    },
}

impl ContextError {
    pub fn field(field: impl Into<String>, message: impl fmt::Display) -> Self {
        ContextError::Field { field: field.into(), message: message.to_string() }
    }
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContextError::Empty => f.write_str("the context is empty: pipe the output of `groundup init` (or of the previous step) into this step, or pass --state FILE"),
            ContextError::Malformed(e) => write!(f, "the context is not valid JSON ({e}); it must be the output of `groundup init` or of a groundup step"),
            ContextError::Version { found, expected } => write!(f, "the context has version {found}, this build understands version {expected}; re-create it with this build's `groundup init`"),
            ContextError::Field { field, message } => write!(f, "context field `{field}`: {message}"),
            ContextError::MissingSection { section, step } => write!(f, "the context has no `{section}` section: run `groundup-{step}` first (or `groundup up --from {step}`)"),
            ContextError::AwsNotAllowed => f.write_str("the context's target is real AWS, which every run must ask for: pass --aws (or set GROUNDUP_ALLOW_AWS=1); nothing was sent"),
            ContextError::Io { path, message } => write!(f, "cannot read the context from {path}: {message}"),
            ContextError::Flag { flag, message } => write!(f, "--{flag}: {message}"),
            ContextError::CannotChange { field, step, now, asked, way } => write!(
                f,
                "`{field}` cannot change in place (`{step}` has built on it): it is {now}, asked for {asked}; \
                 {way}; or make another cluster with another --name and --state; nothing was changed"
            ),
        }
    }
}

impl std::error::Error for ContextError {}
