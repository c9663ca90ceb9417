//! The two error kinds of the contract layer: a context that cannot be used, and a step that
//! failed. Both render as one line on stderr that says what is wrong and what to do.

use std::fmt;

/// The context document is unusable: it is empty, malformed, of another version, or holds a
/// value that does not pass validation. `field` names the JSON path of the culprit.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("the context is empty: pipe the output of `groundup init` (or of the previous step) into this step, or pass --context FILE")]
    Empty,
    #[error("the context is not valid JSON ({0}); it must be the output of `groundup init` or of a groundup step")]
    Malformed(String),
    #[error("the context has version {found}, this build understands version {expected}; re-create it with this build's `groundup init`")]
    Version { found: String, expected: u32 },
    #[error("context field `{field}`: {message}")]
    Field { field: String, message: String },
    #[error("the context has no `{section}` section: run `groundup-{step}` first (or `groundup up --from {step}`)")]
    MissingSection { section: &'static str, step: &'static str },
    #[error("the context's target is real AWS, which every run must ask for: pass --aws (or set GROUNDUP_ALLOW_AWS=1); nothing was sent")]
    AwsNotAllowed,
    #[error("cannot read the context from {path}: {message}")]
    Io { path: String, message: String },
}

impl ContextError {
    pub fn field(field: impl Into<String>, message: impl fmt::Display) -> Self {
        ContextError::Field { field: field.into(), message: message.to_string() }
    }
}

/// A step could not do its work. `hint` tells the user what to do about it.
#[derive(Debug)]
pub struct StepError {
    pub message: String,
    pub hint: Option<String>,
    /// Bad input is exit code 2, a failure while doing the work exit code 1.
    pub bad_input: bool,
}

impl StepError {
    pub fn new(message: impl Into<String>) -> Self {
        StepError { message: message.into(), hint: None, bad_input: false }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn exit_code(&self) -> u8 {
        if self.bad_input {
            2
        } else {
            1
        }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StepError {}

impl From<ContextError> for StepError {
    fn from(e: ContextError) -> Self {
        StepError { message: e.to_string(), hint: None, bad_input: true }
    }
}
