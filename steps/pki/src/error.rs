//! The PKI layer's one error type. What the user can fix in what they gave (a name, a CSR or
//! cfssl config file, a custom certificate in the spec) is [`PkiError::Input`], exit code 2;
//! a file that cannot be read or written and OpenSSL failing are failures while working,
//! exit code 1. A step turns it into its `StepError` with `?`.

use groundup_runtime::{RuntimeError, StepError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkiError {
    /// Something the user gave is wrong; the message names it.
    #[error("{0}")]
    Input(String),
    /// A file of the cluster could not be read, parsed or written.
    #[error("{0}")]
    File(String),
    /// The runtime's failure: a file of the cluster's directory could not be written, moved
    /// or removed. Its exit code is the runtime's.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// OpenSSL could not make, sign or encode a key or certificate.
    #[error("{0}")]
    Crypto(String),
}

impl From<PkiError> for StepError {
    fn from(e: PkiError) -> StepError {
        match e {
            PkiError::Input(message) => StepError::bad_input(message),
            PkiError::File(message) | PkiError::Crypto(message) => StepError::new(message),
            PkiError::Runtime(e) => e.into(),
        }
    }
}
