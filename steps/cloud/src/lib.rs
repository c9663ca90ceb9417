//! The AWS core every cloud step uses, so that each step file holds only what is particular to
//! its resources: clients built from the context's target ([`Aws::connect`]), the one tag
//! scheme ([`Identity`]), the one shape of a resource kind ([`Resource`]: find by tags,
//! create, observe, a typed diff, apply) and the one core that converges it ([`converge`]:
//! find or create, refuse what cannot change, change the rest), the gate every change
//! passes so that `--plan` records instead of changing, the same for the untagged parts of a
//! resource ([`Parts`], [`converge_parts`]), the journal of creates in flight
//! (`groundup_runtime::journal`), retries of AWS's eventual consistency ([`retry_eventual`]),
//! progress of long waits ([`Aws::wait_for`], [`Waiting`]), and the step entry point
//! ([`run_aws_step`]). A plan's placeholders (`groundup_contracts::Ref::Planned`) are handled
//! here and nowhere else: [`Converged`], [`Aws::read_existing`], [`Aws::value`].
//!
//! The cloud steps depend on it; it depends on the contract and the step runtime and never on
//! a step, the PKI crate or the runner.

mod calls;
mod change;
mod client;
mod elb;
mod error;
mod find;
mod groups;
mod identity;
mod parts;
mod progress;
mod resource;
mod retry;
mod step;

pub use client::Aws;
pub use elb::owned_by_name;
pub use error::{Answered, AwsResultExt, CloudError, Immutable};
pub use find::{Attempt, AwsResource, Converged};
pub use groups::{cluster_groups, revoke_group_references};
pub use identity::{Identity, CLUSTER_TAG, RESOURCE_TAG};
pub use parts::{converge_parts, Parts};
pub use progress::{Polled, Waiting};
pub use resource::{converge, converge_obtained, lines, obtain, Change, NoFix, Resource};
pub use retry::retry_eventual;
pub use step::{run_aws_step, with_aws};
