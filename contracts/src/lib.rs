//! The contract between groundup steps: data, and nothing else.
//!
//! Every step reads one JSON document, the *context*, on stdin and writes it back on stdout
//! with its own section added. This crate is the single definition of that document: its
//! typed sections, its version, its validation rules, the table of steps and of resource
//! kinds, the JSON Schema generated from the types (and that of `groundup status --json`), and the examples in `examples/`.
//!
//! It must not depend on anything that does work: no CLI parsing, logging, files beyond
//! reading, async runtime or AWS SDK (`cargo tree -p groundup-contracts` shows serde, JSON,
//! schema and IP-network crates only). The code that runs a step is `groundup-runtime`.

pub mod context;
pub mod derived;
pub mod error;
pub mod flows;
pub mod infra;
pub mod kinds;
pub mod kubernetes;
pub mod network;
pub mod param_table;
pub mod params;
pub mod paths;
pub mod pki;
pub mod plan;
pub mod reference;
pub mod region;
pub mod schema;
pub mod status;
pub mod steps;
pub mod teardown;
pub mod tools;
pub mod x509;

pub use context::{Cluster, Context, Target, CONTEXT_VERSION};
pub use error::{BadValue, ContextError};
pub use params::Params;
pub use reference::Ref;
pub use steps::Section;
