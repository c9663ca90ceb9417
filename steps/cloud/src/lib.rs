//! The AWS core every cloud step uses, so that each step file holds only what is particular to
//! its resource: clients built from the context's target ([`Aws::connect`]), the one tag
//! scheme ([`Identity`]), find-or-create by those tags ([`find_or_create`]), the gates every
//! change passes ([`Aws::change`], [`Aws::change_without_dry_run`]) so that `--plan` records instead of
//! changing, the journal of creates in flight ([`Journal`]), retries of AWS's eventual
//! consistency ([`retry_eventual`]), progress of long waits ([`wait_until`], [`Waiting`]),
//! and the step entry point ([`run_aws_step`]).
//!
//! The cloud steps depend on it; it depends on the contract and the step runtime and never on
//! a step, the PKI crate or the runner.

mod calls;
mod change;
mod client;
mod elb;
mod error;
mod find;
mod identity;
mod journal;
mod progress;
mod retry;
mod step;

pub use client::Aws;
pub use elb::owned_by_name;
pub use error::{AwsResultExt, CloudError, CRASH_AFTER_ENV};
pub use find::{find_or_create, Attempt, HasId, Wanted};
pub use identity::{Identity, CLUSTER_TAG, RESOURCE_TAG};
pub use journal::Journal;
pub use progress::{wait_until, Polled, Waiting};
pub use retry::retry_eventual;
pub use step::run_aws_step;
