//! What every groundup step and the runner run on.
//!
//! `groundup-contracts` says what passes between steps; this crate is how a step runs: the
//! stdin/stdout harness and the flags every step has ([`harness`]), logging to stderr, the
//! plan a step records under `--plan` ([`plan`]), the state file ([`state`]), the one atomic
//! file write and the rules for a cluster's directories ([`files`]), and completions and man
//! pages ([`docs`]).
//!
//! It depends on the contract crate and on small CLI and logging crates; never on the AWS SDK,
//! an async runtime or OpenSSL, so the PKI steps and the runner's local commands stay light.

pub mod docs;
pub mod error;
pub mod files;
pub mod harness;
pub mod plan;
pub mod state;

pub use error::StepError;
