//! The section `groundup-down` adds: what the cluster owns (found by tags), and whether it is gone.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kinds::Kind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TeardownSection {
    /// Every resource tagged as this cluster's, in deletion order.
    pub resources: Vec<OwnedResource>,
    /// True once everything listed was deleted; false for a plan (`down` without `--yes`).
    pub torn_down: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OwnedResource {
    pub kind: Kind,
    pub id: String,
    /// The Name tag (or the resource's name), for people.
    pub name: String,
}
