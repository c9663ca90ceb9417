//! Course section "Create The Compute Resources": the image, the SSH key pair, and the
//! masters and workers, each with its fixed private IP, a public IP, the course's user data
//! and source/dest check off, and each worker's pod range routed to it. The image (`image.rs`), the key pair (`key.rs`) and the
//! instances (`instances.rs`) each have their module; this file puts them together.

mod image;
mod instances;
mod key;
mod pod_routes;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, Instance, InstanceNetworkInterfaceSpecification, InstanceType, KeyPairInfo,
    ResourceType, Tag,
};
use clap::Args;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use groundup_cloud::{
    converge, retry_eventual, wait_until, with_aws, Answered, Attempt, Aws, AwsResource, AwsResultExt, Change,
    CloudError, Immutable, NoFix, Polled, Resource, RESOURCE_TAG,
};
use groundup_cluster::{
    balancer, is_lts_name, keys, planned_nodes, unplanned_instances, wants_lts_only, FoundInstance, PlannedNode,
};
use groundup_contracts::context::need;
use groundup_contracts::infra::{ComputeSection, KeyPair, Node};
use groundup_contracts::kinds::Kind;
use groundup_contracts::params::ImageSelector;
use groundup_contracts::{Context, Section};
use groundup_runtime::files::ClusterDir;
use groundup_runtime::harness::{enter_head_start, run_step, StepInfo};
use groundup_runtime::StepError;

use image::resolve_image;
use instances::ensure_instances;
use key::{ensure_key_pair, prepare_key};
use pod_routes::converge_pod_routes;

const FINGERPRINT_TAG: &str = "groundup:fingerprint";
/// Launches in flight at once: fast for 55 nodes, gentle on API rate limits.
const CONCURRENT_LAUNCHES: usize = 16;

/// What every launch shares.
struct LaunchPlan {
    image_id: String,
    key_name: String,
    instance_type: String,
    subnet_id: String,
    group_id: String,
}

#[derive(Args, Debug)]
struct ComputeArgs {
    /// Also wait (up to 10 minutes) until the cluster's load balancer is active, while the
    /// instances start (`groundup up --wait` passes it)
    #[arg(long)]
    wait: bool,
    /// Only make the cluster's SSH key, if the context records no key pair yet, and make no
    /// AWS call: compute's head start, which `groundup up` runs in the background while the
    /// network is built. The key depends only on the cluster's name
    #[arg(long, conflicts_with = "wait")]
    prepare: bool,
}

fn main() -> ExitCode {
    let info = StepInfo { name: "compute", about: "Create (or find) the SSH key pair and the masters and workers" };
    run_step(info, |context, args: ComputeArgs| match args.prepare {
        true => prepare_key(context),
        false => with_aws("compute", context, |context, aws| compute(context, args, aws)),
    })
}

async fn compute(mut context: Context, args: ComputeArgs, aws: Arc<Aws>) -> Result<Context, CloudError> {
    let plan = LaunchPlan {
        subnet_id: need(&context.subnet, Section::Subnet)?.id.clone(),
        group_id: need(&context.sg, Section::Sg)?.id.clone(),
        image_id: resolve_image(&aws, &context).await?,
        key_name: context.cluster.name.clone(),
        instance_type: context.params.instance_type.clone(),
    };
    let balancer = args.wait.then(|| need(&context.nlb, Section::Nlb)).transpose()?.map(|n| n.arn.clone());
    let balancer_active = async {
        match balancer {
            Some(arn) if !aws.planning() => balancer::wait_active(&aws, "compute", &arn).await,
            _ => Ok(()),
        }
    };
    let recorded = context.compute.as_ref().map(|c| c.key_pair.name.as_str());
    let machines = async {
        let key_pair =
            ensure_key_pair(&aws, &context.params.ssh_dir, context.params.ssh_key, &plan.key_name, recorded).await?;
        Ok((key_pair, ensure_instances(&aws, &context, &plan).await?))
    };
    let ((key_pair, nodes), ()) = futures_util::future::try_join(machines, balancer_active).await?;
    converge_pod_routes(&aws, &need(&context.routes, Section::Routes)?.route_table_id, &nodes).await?;
    context.compute = Some(ComputeSection { image_id: plan.image_id, key_pair, nodes });
    Ok(context)
}
