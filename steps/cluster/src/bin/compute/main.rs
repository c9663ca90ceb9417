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
    converge, converge_parts, retry_eventual, with_aws, Answered, Attempt, Aws, AwsResource, AwsResultExt, Change,
    CloudError, Converged, Immutable, NoFix, Polled, Resource, RESOURCE_TAG,
};
use groundup_cluster::{
    balancer, console_host_keys, is_lts_name, keys, planned_nodes, unplanned_instances, wants_lts_only, FoundInstance,
    PlannedNode,
};
use groundup_contracts::context::need;
use groundup_contracts::infra::{ComputeSection, KeyPair, Node, Role};
use groundup_contracts::kinds::Kind;
use groundup_contracts::params::ImageSelector;
use groundup_contracts::{Context, ContextError, Ref, Section};
use groundup_runtime::files::ClusterDir;
use groundup_runtime::harness::{enter_head_start, run_step, StepInfo};
use groundup_runtime::StepError;

use image::resolve_image;
use instances::ensure_instances;
use key::{ensure_key_pair, prepare_key};
use pod_routes::PodRoutes;

const FINGERPRINT_TAG: &str = "groundup:fingerprint";
/// Launches in flight at once: fast for 55 nodes, gentle on API rate limits.
const CONCURRENT_LAUNCHES: usize = 16;

/// What every launch shares.
struct LaunchPlan {
    image_id: String,
    key_name: String,
    instance_type: String,
    subnet_id: Ref,
    /// The security group of each role's nodes.
    masters_group: Ref,
    workers_group: Ref,
}

impl LaunchPlan {
    fn group_of(&self, role: Role) -> &Ref {
        match role {
            Role::Master => &self.masters_group,
            Role::Worker => &self.workers_group,
        }
    }
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
    /// Only confirm, with one DescribeInstances, that each node's instance is this cluster's,
    /// running, at the public IP the context records; change nothing, refuse a mismatch.
    /// `groundup distribute` runs it before it sends any file
    #[arg(long, conflicts_with_all = ["wait", "prepare"])]
    confirm: bool,
}

fn main() -> ExitCode {
    let info = StepInfo { name: "compute", about: "Create (or find) the SSH key pair and the masters and workers" };
    run_step(info, |context, args: ComputeArgs| match (args.prepare, args.confirm) {
        (true, _) => prepare_key(context),
        (_, true) => with_aws("compute", context, confirm),
        _ => with_aws("compute", context, |context, aws| compute(context, args, aws)),
    })
}

/// Where the cloud says the nodes are must be where the context says: each node's instance,
/// found among the cluster's by one DescribeInstances, running at the recorded public IP.
/// A state file that names another address, or an address that changed hands after a stop
/// and start, is refused before anything is sent there.
async fn confirm(mut context: Context, aws: Arc<Aws>) -> Result<Context, CloudError> {
    let compute = need(&context.compute, Section::Compute)?;
    let cluster =
        Filter::builder().name(format!("tag:{}", groundup_cloud::CLUSTER_TAG)).values(&aws.identity().cluster).build();
    let ids = Filter::builder()
        .name("instance-id")
        .set_values(Some(compute.nodes.iter().map(|n| n.instance_id.to_string()).collect()))
        .build();
    let out = aws.ec2().describe_instances().filters(cluster).filters(ids).send().await.api("DescribeInstances")?;
    let found: HashMap<&str, &Instance> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(|id| (id, i)))
        .collect();
    let mismatches: Vec<String> = compute
        .nodes
        .iter()
        .filter_map(|node| {
            let (host, id) = (&node.hostname, node.instance_id.to_string());
            let Some(instance) = found.get(id.as_str()) else {
                return Some(format!("{host}: no instance {id} of this cluster"));
            };
            let state = instance.state().and_then(|s| s.name()).map_or("unknown", |n| n.as_str());
            let cloud_ip = instance.public_ip_address().unwrap_or("none");
            let recorded_ip = node.public_ip.map_or("none".to_string(), |ip| ip.to_string());
            match (state, cloud_ip == recorded_ip) {
                ("running", true) => None,
                ("running", false) => Some(format!(
                    "{host}: instance {id} has the public IP {cloud_ip}, the state file says {recorded_ip}"
                )),
                (state, _) => Some(format!("{host}: instance {id} is {state}, not running")),
            }
        })
        .collect();
    if !mismatches.is_empty() {
        return Err(CloudError::Unconfirmed { mismatches });
    }
    tracing::info!("the cloud confirms the instance and public IP of {} node(s)", compute.nodes.len());
    let ids: Vec<String> = compute.nodes.iter().map(|n| n.instance_id.to_string()).collect();
    let keys: Vec<Vec<String>> = stream::iter(ids.iter()).map(|id| console_keys(&aws, id)).buffered(16).collect().await;
    for (node, keys) in context.compute.as_mut().expect("read above").nodes.iter_mut().zip(keys) {
        node.host_keys = keys;
    }
    Ok(context)
}

/// The SSH host key fingerprints the instance's console shows (see [`console_host_keys`]);
/// none where it shows none or cannot be read, which `distribute` then says.
async fn console_keys(aws: &Aws, id: &str) -> Vec<String> {
    match aws.ec2().get_console_output().instance_id(id).send().await {
        Ok(out) => out
            .output()
            .and_then(|text| openssl::base64::decode_block(text).ok())
            .map(|bytes| console_host_keys(&String::from_utf8_lossy(&bytes)))
            .unwrap_or_default(),
        Err(e) => {
            tracing::warn!("cannot read the console of {id}: {}", aws_sdk_ec2::error::DisplayErrorContext(&e));
            Vec::new()
        }
    }
}

async fn compute(mut context: Context, args: ComputeArgs, aws: Arc<Aws>) -> Result<Context, CloudError> {
    let groups = need(&context.sg, Section::Sg)?;
    let group_of = |role: Role| {
        groups.group_of(role).map(|g| g.id.clone()).ok_or_else(|| {
            ContextError::field("sg.groups", format!("has no group for the {}s; run groundup-sg", role.name()))
        })
    };
    let plan = LaunchPlan {
        subnet_id: need(&context.subnet, Section::Subnet)?.id.clone(),
        masters_group: group_of(Role::Master)?,
        workers_group: group_of(Role::Worker)?,
        image_id: resolve_image(&aws, &context).await?,
        key_name: context.cluster.name.clone(),
        instance_type: context.params.instance_type.clone(),
    };
    let balancer = args.wait.then(|| need(&context.nlb, Section::Nlb)).transpose()?.map(|n| n.arn.clone());
    let balancer_active = async {
        match balancer {
            Some(arn) => balancer::wait_active(&aws, "compute", &arn).await,
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
    let table_id = need(&context.routes, Section::Routes)?.route_table_id.clone();
    converge_parts(&aws, &PodRoutes::of(table_id, &nodes)).await?;
    context.compute = Some(ComputeSection { image_id: plan.image_id, key_pair, nodes });
    Ok(context)
}
