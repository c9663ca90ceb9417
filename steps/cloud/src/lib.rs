//! The AWS core every cloud step uses, so that each step file holds only what is particular to
//! its resource: clients built from the context's target ([`Aws::connect`]), the one tag
//! scheme ([`Identity`]), find-or-create by those tags ([`find_or_create`]), retries of
//! AWS's eventual consistency ([`retry_eventual`]), and the step entry point ([`run_aws_step`]).

mod client;
mod elb;
mod error;
mod find;
mod identity;
mod retry;
mod step;

pub use client::Aws;
pub use elb::owned_by_name;
pub use error::{AwsResultExt, CloudError};
pub use find::{find_or_create, HasId, Outcome};
pub use identity::{Identity, CLUSTER_TAG, RESOURCE_TAG};
pub use retry::retry_eventual;
pub use step::run_aws_step;
