//! The step layer's one error type: a step could not do its work. It renders as one line on
//! stderr that says what is wrong and what to do.

use std::fmt;

use groundup_contracts::ContextError;

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

    /// Something the user gave is wrong (a flag, a file they named, the spec): exit code 2.
    pub fn bad_input(message: impl Into<String>) -> Self {
        StepError { message: message.into(), hint: None, bad_input: true }
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

/// A cluster's file that cannot be written is a failure while working (exit 1); its message
/// names the path and what to do.
impl From<crate::files::FileError> for StepError {
    fn from(e: crate::files::FileError) -> StepError {
        StepError::new(e.to_string())
    }
}

impl From<ContextError> for StepError {
    fn from(e: ContextError) -> Self {
        StepError::bad_input(e.to_string())
    }
}
