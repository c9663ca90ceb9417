//! Teardown: discover every resource tagged as the cluster's (whatever the state file says),
//! then delete them in dependency order, concurrently within each rank, retrying the answers
//! that mean "not yet" while progress is being made.
//!
//! It finds resources by the tag scheme of `groundup-cloud`, never by the state file alone,
//! and depends on no other step crate.

mod delete;
mod discover;

pub use delete::delete_all;
pub use discover::{discover, Discovery};
