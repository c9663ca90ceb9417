//! What every groundup step and the runner run on.
//!
//! `groundup-contracts` says what passes between steps; this crate is how a step runs: the
//! stdin/stdout harness and the flags every step has ([`harness`]), logging to stderr, the
//! plan a step records under `--plan` and the one gate of changes, local and cloud
//! ([`plan`]), the one shape of every local file a step writes ([`artifact`]), the state file
//! ([`state`]), the journal of creates in flight ([`journal`]) and the events a step sends the
//! runner on its side channel ([`events`]), the one atomic
//! file write and the rules for a cluster's directories ([`files`]), completions and man
//! pages ([`docs`]), stdout for a reader that may stop early ([`output`]), the figures a
//! step reports for `groundup up --timings` ([`timings`]), and how programs are found and a
//! tool such as `groundup-graph` runs ([`tool`]). All of it speaks one error, [`RuntimeError`];
//! [`StepError`] is what a step's body returns to the harness, the message and its exit code
//! ([`error`]).
//!
//! It depends on the contract crate and on small CLI and logging crates; never on the AWS SDK,
//! an async runtime or OpenSSL, so the PKI steps and the runner's local commands stay light.

pub mod artifact;
pub mod docs;
pub mod error;
pub mod events;
pub mod files;
pub mod harness;
pub mod journal;
pub mod output;
pub mod plan;
pub mod state;
pub mod timings;
pub mod tool;

pub use error::{RuntimeError, StepError};
