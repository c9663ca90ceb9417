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

use groundup_contracts::kinds::Kind;

/// When a resource of this kind (a slug of [`Kind`]) is deleted: after every kind of a lower
/// rank. A kind this build does not know goes last.
pub fn rank(kind: &str) -> usize {
    Kind::from_slug(kind).map_or(Kind::ALL.len(), Kind::deletion_rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_ranked_by_the_table_and_an_unknown_one_goes_last() {
        assert!(rank("instance") < rank("security-group") && rank("subnet") < rank("vpc"));
        assert_eq!(rank("igw"), Kind::ALL.len(), "slugs only: `igw` is not one");
    }
}
