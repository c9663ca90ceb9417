//! The untagged things that hang off one of the cluster's resources (a subnet's address
//! reservations, the route table's routes to the nodes): AWS gives them no tags, so they are
//! found through their parent and compared as a set. [`converge_parts`] does for them what
//! [`crate::converge`] does for a resource: the plan lists them as found or missing, each
//! change goes through the gate (made in a run, recorded in a plan), and a create the target
//! cannot mark as ours is journaled first and settled after. The step declares; it never
//! decides whether to apply or record, and never writes the plan or the journal.

use std::fmt::Display;
use std::future::Future;

use groundup_contracts::Ref;

use crate::client::Aws;
use crate::error::CloudError;

/// A set of parts of one parent resource.
pub trait Parts {
    /// How plans and logs name the set, e.g. "address reservations".
    const LABEL: &'static str;
    /// The set's logical name, under which its changes are planned and logged.
    const LOGICAL: &'static str;
    /// A part as found.
    type Found;
    /// One change to the set; its `Display` is the line in plans and logs.
    type Fix: Display;

    /// The name this set is planned and logged under: [`Parts::LOGICAL`], unless each of
    /// several parents has a set of its own (each instance's security groups: the instance's).
    fn logical(&self) -> &str {
        Self::LOGICAL
    }
    /// The resource the parts hang off; one the plan would create has none yet.
    fn parent(&self) -> &Ref;
    /// The parts found on an existing parent.
    fn find(&self, aws: &Aws, parent: &str) -> impl Future<Output = Result<Vec<Self::Found>, CloudError>>;
    /// Whether a found part is the cluster's.
    fn ours(found: &Self::Found) -> bool;
    /// Pure: the changes that make the found parts the wanted ones, in the order to make them.
    fn diff(&self, found: &[Self::Found]) -> Vec<Self::Fix>;
    /// The journal's name for a create that must be journaled before it is sent (a part the
    /// target keeps no mark of ours on, so a killed run's part is known only by the entry).
    fn journaled(&self, _: &Self::Fix) -> Option<String> {
        None
    }
    fn apply(
        &self,
        aws: &Aws,
        parent: &str,
        fix: &Self::Fix,
        dry_run: bool,
    ) -> impl Future<Output = Result<(), CloudError>>;
}

/// Finds the parts, makes (or, in a plan, records) the changes, and returns what was found
/// before them. A plan lists the set as found if any part is the cluster's, as missing if
/// none is and some are wanted.
pub async fn converge_parts<P: Parts>(aws: &Aws, parts: &P) -> Result<Vec<P::Found>, CloudError> {
    let parent = parts.parent();
    let found = aws.read_existing(parent, |id| parts.find(aws, id)).await?.unwrap_or_default();
    let fixes = parts.diff(&found);
    if let Some(plan) = aws.gate.plan() {
        match found.iter().any(P::ours) {
            true => plan.found(P::LABEL, parts.logical(), &parent.to_string(), true),
            false if !fixes.is_empty() => plan.missing(P::LABEL, parts.logical()),
            false => {}
        }
    }
    let parent_id = parent.to_string();
    let parent_id = parent_id.as_str();
    let mut made = 0;
    for fix in &fixes {
        let entry = parts.journaled(fix);
        let what = fix.to_string();
        let gate = aws.gate(parts.logical(), &what, true, |dry_run| async move {
            if let (Some(entry), false) = (&entry, dry_run) {
                aws.journal.begin(P::LABEL, entry, "")?;
            }
            parts.apply(aws, parent_id, fix, dry_run).await
        });
        made += usize::from(gate.await?.is_some());
    }
    // Once every change is made, every part is as wanted, including one a killed run
    // journaled: none is in flight any more. (A plan makes none, so it settles nothing.)
    if made == fixes.len() {
        for entry in aws.journal.entries().iter().filter(|e| e.kind == P::LABEL) {
            aws.journal.settle(&entry.resource);
        }
    }
    Ok(found)
}
