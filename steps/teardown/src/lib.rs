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

/// Resource kinds in deletion order: a kind may depend only on kinds after it.
pub const KINDS: &[&str] = &[
    "instance",
    "listener",
    "load-balancer",
    "target-group",
    "key-pair",
    "security-group",
    "route-table",
    "internet-gateway",
    "subnet",
    "dhcp-options",
    "vpc",
];

pub fn rank(kind: &str) -> usize {
    KINDS.iter().position(|k| *k == kind).unwrap_or(KINDS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependents_are_deleted_before_what_they_depend_on() {
        let before = |a: &str, b: &str| rank(a) < rank(b);
        assert!(before("instance", "security-group"));
        assert!(before("instance", "subnet"));
        assert!(before("listener", "load-balancer"));
        assert!(before("load-balancer", "target-group"));
        assert!(before("load-balancer", "subnet"));
        assert!(before("route-table", "internet-gateway"));
        assert!(before("internet-gateway", "vpc"));
        assert!(before("subnet", "vpc"));
        assert!(before("dhcp-options", "vpc"));
    }
}
