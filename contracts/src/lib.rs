//! The contract between groundup steps.
//!
//! Every step reads one JSON document, the *context*, on stdin and writes it back on stdout
//! with its own section added. This crate is the single definition of that document: its
//! typed sections, its version, its validation rules, the JSON Schema generated from the
//! types, and the harness that gives every step the same input/output discipline.

pub mod context;
pub mod docs;
pub mod error;
pub mod files;
pub mod harness;
pub mod infra;
pub mod network;
pub mod params;
pub mod pki;
pub mod plan;
pub mod region;
pub mod schema;
pub mod teardown;
pub mod timings;

pub use context::{Cluster, Context, Section, Target, CONTEXT_VERSION, DEFAULT_PIPELINE};
pub use error::{ContextError, StepError};
pub use params::Params;
