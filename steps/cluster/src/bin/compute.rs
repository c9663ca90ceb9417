//! Course section "Create The Compute Resources": the image, the SSH key pair, and the
//! masters and workers, each with its fixed private IP, a public IP, the course's user data
//! and source/dest check off.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, Instance, InstanceNetworkInterfaceSpecification, InstanceType, KeyPairInfo,
    ResourceType, Tag,
};
use clap::Args;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use groundup_cloud::{
    find_or_create, retry_eventual, run_aws_step, wait_until, Attempt, Aws, AwsResultExt, CloudError, Polled, Wanted,
    RESOURCE_TAG,
};
use groundup_cluster::{
    balancer, is_lts_name, keys, planned_nodes, unplanned_instances, wants_lts_only, FoundInstance, PlannedNode,
};
use groundup_contracts::context::need;
use groundup_contracts::infra::{ComputeSection, KeyPair, Node};
use groundup_contracts::kinds::Kind;
use groundup_contracts::params::ImageSelector;
use groundup_contracts::plan::is_planned_id;
use groundup_contracts::{Context, Section};
use groundup_runtime::files::ClusterDir;
use groundup_runtime::harness::StepInfo;
use openssl::pkey::Private;
use openssl::rsa::Rsa;

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
}

fn main() -> ExitCode {
    let info = StepInfo { name: "compute", about: "Create (or find) the SSH key pair and the masters and workers" };
    run_aws_step(info, |mut context, args: ComputeArgs, aws| async move {
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
            let key_pair = ensure_key_pair(&aws, &context.params.ssh_dir, &plan.key_name, recorded).await?;
            Ok((key_pair, ensure_instances(&aws, &context, &plan).await?))
        };
        let ((key_pair, nodes), ()) = futures_util::future::try_join(machines, balancer_active).await?;
        context.compute = Some(ComputeSection { image_id: plan.image_id, key_pair, nodes });
        Ok(context)
    })
}

async fn resolve_image(aws: &Aws, context: &Context) -> Result<String, CloudError> {
    let region = &context.cluster.region;
    match &context.params.image {
        ImageSelector::Id { id } => {
            let missing =
                || CloudError::Conflict(format!("image {id} does not exist in {region}; check params.image.id"));
            match aws.ec2.describe_images().image_ids(id).send().await.api("DescribeImages") {
                Ok(out) if !out.images().is_empty() => Ok(id.clone()),
                Ok(_) => Err(missing()),
                Err(e) if e.code().is_some_and(|c| c.starts_with("InvalidAMIID")) => Err(missing()),
                Err(e) => Err(e),
            }
        }
        ImageSelector::Newest { owner, name_pattern } => newest_image(aws, owner, name_pattern, region).await,
    }
}

/// The newest by CreationDate (then by name); the default Ubuntu lookup keeps LTS releases only.
async fn newest_image(aws: &Aws, owner: &str, pattern: &str, region: &str) -> Result<String, CloudError> {
    let filter = |name: &str, value: &str| Filter::builder().name(name).values(value).build();
    let out = aws
        .ec2
        .describe_images()
        .owners(owner)
        .filters(filter("name", pattern))
        .filters(filter("architecture", "x86_64"))
        .filters(filter("root-device-type", "ebs"))
        .filters(filter("state", "available"))
        .send()
        .await
        .api("DescribeImages")?;
    let lts_only = wants_lts_only(pattern);
    let newest =
        out.images().iter().filter(|i| !lts_only || i.name().is_some_and(is_lts_name)).max_by_key(|i| {
            (i.creation_date().unwrap_or_default().to_string(), i.name().unwrap_or_default().to_string())
        });
    let image = newest.ok_or_else(|| {
        CloudError::Conflict(format!(
            "no image of owner {owner} named like `{pattern}` (x86_64, EBS{}) in {region}; set params.image",
            if lts_only { ", LTS" } else { "" }
        ))
    })?;
    tracing::info!("compute: image {} ({})", image.image_id().unwrap_or_default(), image.name().unwrap_or_default());
    Ok(image.image_id().unwrap_or_default().to_string())
}

/// The private key lives only in `<ssh_dir>/<cluster>.id_rsa` (`ssh/` unless another cluster
/// has it); AWS gets the public half. The key is written before it is imported, so a crash in
/// between leaves a key to import, not a lost one.
async fn ensure_key_pair(aws: &Aws, ssh_dir: &str, name: &str, recorded: Option<&str>) -> Result<KeyPair, CloudError> {
    let file = format!("{name}.id_rsa");
    let path = PathBuf::from(ssh_dir).join(&file);
    // Checked and claimed before its key is trusted; a plan creates nothing.
    let dir = (!aws.planning()).then(|| ClusterDir::open(ssh_dir, name)).transpose().map_err(CloudError::Conflict)?;
    let remote = find_key_pair(aws).await?;
    let key = local_key(dir.as_ref(), &file, &path, remote.first())?;
    let fingerprint = key.as_ref().map(keys::fingerprint).unwrap_or_default();
    let wanted = Wanted::new(Kind::KeyPair, "key-pair").recorded(recorded);
    let found = find_or_create(
        aws,
        wanted,
        || async { Ok(remote.clone()) },
        |attempt| import_key_pair(aws, name, key.as_ref(), &fingerprint, attempt),
    )
    .await?;
    if !is_planned_id(found.key_name().unwrap_or_default()) {
        check_fingerprint(&found, &fingerprint, &path)?;
    }
    Ok(KeyPair { name: name.into(), private_key_path: path.display().to_string(), fingerprint })
}

/// The private key on disk, made if there is none yet. In a plan nothing is written, so a
/// key still to be made is `None`.
fn local_key(
    dir: Option<&ClusterDir>,
    file: &str,
    path: &std::path::Path,
    remote: Option<&KeyPairInfo>,
) -> Result<Option<Rsa<Private>>, CloudError> {
    match (path.exists(), remote, dir) {
        (true, _, _) => keys::read_private(path).map(Some).map_err(CloudError::Conflict),
        (false, Some(found), _) => Err(CloudError::Conflict(format!(
            "key pair {} exists but its private key {} is gone; delete the key pair (`groundup down --yes`, or aws ec2 delete-key-pair) to make a new one",
            found.key_name().unwrap_or(file),
            path.display()
        ))),
        (false, None, None) => Ok(None),
        (false, None, Some(dir)) => {
            let key = keys::generate().map_err(CloudError::Conflict)?;
            let key = keys::write_private(dir, file, key).map_err(CloudError::Conflict)?;
            tracing::info!("compute: wrote a new SSH key to {}", path.display());
            Ok(Some(key))
        }
    }
}

async fn find_key_pair(aws: &Aws) -> Result<Vec<KeyPairInfo>, CloudError> {
    let out = aws
        .ec2
        .describe_key_pairs()
        .set_filters(Some(aws.identity.filters("key-pair")))
        .send()
        .await
        .api("DescribeKeyPairs")?;
    Ok(out.key_pairs().to_vec())
}

/// The emulator computes fingerprints its own way, so the one we computed at import time is
/// kept in a tag and compared; AWS's own field is the fallback.
fn check_fingerprint(found: &KeyPairInfo, local: &str, path: &std::path::Path) -> Result<(), CloudError> {
    let tagged = found.tags().iter().find(|t| t.key() == Some(FINGERPRINT_TAG)).and_then(|t| t.value());
    let remote = tagged.or(found.key_fingerprint()).unwrap_or_default();
    if remote == local {
        return Ok(());
    }
    Err(CloudError::Conflict(format!(
        "key pair {} has fingerprint {remote}, but {} has {local}; restore the matching private key, or delete the key pair to replace it",
        found.key_name().unwrap_or_default(),
        path.display()
    )))
}

async fn import_key_pair(
    aws: &Aws,
    name: &str,
    key: Option<&Rsa<Private>>,
    fingerprint: &str,
    attempt: Attempt,
) -> Result<KeyPairInfo, CloudError> {
    let key = key.ok_or_else(|| CloudError::Conflict("the SSH key is not made yet".into()))?;
    let mut tags = aws.identity.ec2_tags("key-pair", name);
    tags.push(Tag::builder().key(FINGERPRINT_TAG).value(fingerprint).build());
    let spec = aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(ResourceType::KeyPair)
        .set_tags(Some(tags.clone()))
        .build();
    let out = aws
        .ec2
        .import_key_pair()
        .dry_run(attempt.dry_run)
        .key_name(name)
        .public_key_material(aws_smithy_types::Blob::new(keys::openssh_public(key)))
        .tag_specifications(spec)
        .send()
        .await
        .api("ImportKeyPair")
        .map_err(|e| match e.code() {
            Some("InvalidKeyPair.Duplicate") => CloudError::Conflict(format!(
                "a key pair named `{name}` exists but is not tagged as this cluster's; delete or rename it"
            )),
            _ => e,
        })?;
    Ok(KeyPairInfo::builder()
        .key_name(out.key_name().unwrap_or(name))
        .set_key_pair_id(out.key_pair_id().map(String::from))
        .set_tags(Some(tags))
        .build())
}

/// Terminates the nodes the spec no longer has, then finds or launches every planned node,
/// concurrently, waits until all run and records them: the section lists exactly the plan.
async fn ensure_instances(aws: &Aws, context: &Context, plan: &LaunchPlan) -> Result<Vec<Node>, CloudError> {
    let Existing { mut live, terminated, all } = existing_instances(aws).await?;
    let planned = planned_nodes(&context.params);
    retire(aws, &unplanned_instances(&all, &planned)).await?;
    let jobs = planned.iter().map(|node| {
        let found = live.remove(&node.logical()).unwrap_or_default();
        let generation = terminated.get(&node.logical()).copied().unwrap_or(0);
        ensure_instance(aws, context, plan, node, found, generation)
    });
    let ids: Vec<String> = stream::iter(jobs).buffered(CONCURRENT_LAUNCHES).try_collect().await?;
    let existing: Vec<String> = ids.iter().filter(|id| !is_planned_id(id)).cloned().collect();
    if !aws.planning() {
        wait_running(aws, &existing).await?;
    }
    let running = describe(aws, &existing).await?;
    planned.iter().zip(&ids).map(|(node, id)| record(context, node, id, running.get(id))).collect()
}

/// The cluster's instances found by their tags.
struct Existing {
    /// The live ones by logical name.
    live: HashMap<String, Vec<Instance>>,
    /// How many were terminated, by logical name (a new generation gets a new client token,
    /// so a token never returns a dead instance).
    terminated: HashMap<String, usize>,
    /// Every one, whatever its state.
    all: Vec<FoundInstance>,
}

async fn existing_instances(aws: &Aws) -> Result<Existing, CloudError> {
    let cluster =
        Filter::builder().name(format!("tag:{}", groundup_cloud::CLUSTER_TAG)).values(&aws.identity.cluster).build();
    let mut pages = aws.ec2.describe_instances().filters(cluster).into_paginator().send();
    let mut existing = Existing { live: HashMap::new(), terminated: HashMap::new(), all: Vec::new() };
    while let Some(page) = pages.next().await {
        for instance in page.api("DescribeInstances")?.reservations().iter().flat_map(|r| r.instances()) {
            let logical = instance.tags().iter().find(|t| t.key() == Some(RESOURCE_TAG)).and_then(|t| t.value());
            let Some(logical) = logical else { continue };
            let state = instance.state().and_then(|s| s.name()).map(|n| n.as_str()).unwrap_or_default();
            if matches!(state, "terminated" | "shutting-down") {
                *existing.terminated.entry(logical.to_string()).or_insert(0) += 1;
            } else {
                existing.live.entry(logical.to_string()).or_default().push(instance.clone());
            }
            existing.all.push(FoundInstance {
                logical: logical.to_string(),
                id: instance.instance_id().unwrap_or_default().to_string(),
                state: state.to_string(),
            });
        }
    }
    Ok(existing)
}

/// Terminates the instances of nodes scaled away and waits until they are gone, so that
/// their private IPs are free for nodes launched later. No journal entry is needed, unlike a
/// create: the instances are found again by their tags on every run, so a run killed before,
/// during or after TerminateInstances terminates what is still live the next time (again is
/// harmless), skips what is terminated and waits for what is shutting down.
async fn retire(aws: &Aws, unplanned: &[&FoundInstance]) -> Result<(), CloudError> {
    for instance in unplanned {
        if let Some(plan) = &aws.plan {
            plan.unwanted("instance", &instance.logical, &instance.id);
        }
        let id = instance.id.as_str();
        aws.change(&instance.logical, &format!("terminate {id}"), |dry_run| async move {
            aws.ec2.terminate_instances().dry_run(dry_run).instance_ids(id).send().await.api("TerminateInstances")
        })
        .await?;
    }
    if aws.planning() || unplanned.is_empty() {
        return Ok(());
    }
    let ids = unplanned.iter().map(|i| i.id.clone()).collect();
    wait_until("compute", "instances to terminate", ids, Duration::from_secs(600), |pending| async move {
        let states = instance_states(aws, &pending).await?;
        Ok(pending
            .into_iter()
            .map(|id| {
                // AWS forgets a terminated instance after a while: gone is terminated.
                let state = states.get(&id).cloned().unwrap_or_else(|| "terminated".into());
                Polled { done: state == "terminated", resource: id, state }
            })
            .collect())
    })
    .await
}

/// The states of these instances; an id AWS no longer knows is absent (a filter, unlike
/// InstanceIds, does not fail on it).
async fn instance_states(aws: &Aws, ids: &[String]) -> Result<HashMap<String, String>, CloudError> {
    let mut states = HashMap::new();
    for chunk in ids.chunks(100) {
        let filter = Filter::builder().name("instance-id").set_values(Some(chunk.to_vec())).build();
        let out = aws.ec2.describe_instances().filters(filter).send().await.api("DescribeInstances")?;
        for instance in out.reservations().iter().flat_map(|r| r.instances()) {
            let state = instance.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default();
            states.insert(instance.instance_id().unwrap_or_default().to_string(), state);
        }
    }
    Ok(states)
}

async fn ensure_instance(
    aws: &Aws,
    context: &Context,
    plan: &LaunchPlan,
    node: &PlannedNode,
    found: Vec<Instance>,
    generation: usize,
) -> Result<String, CloudError> {
    let logical = node.logical();
    let recorded =
        context.compute.as_ref().and_then(|c| c.nodes.iter().find(|n| n.name == node.name(&context.cluster.name)));
    let wanted = Wanted::new(Kind::Instance, &logical)
        .recorded(recorded.map(|n| n.instance_id.as_str()))
        .client_token(aws.identity.client_token(&logical, &format!("{}/{generation}", plan.subnet_id)));
    let instance = find_or_create(
        aws,
        wanted,
        || async { Ok(found.clone()) },
        |attempt| launch(aws, context, plan, node, attempt),
    )
    .await?;
    let id = instance.instance_id().unwrap_or_default().to_string();
    if instance.source_dest_check() != Some(false) {
        let id = id.as_str();
        aws.change(&logical, "turn the source/dest check off", |dry_run| {
            retry_eventual(move || {
                let request = aws
                    .ec2
                    .modify_instance_attribute()
                    .dry_run(dry_run)
                    .instance_id(id)
                    .source_dest_check(AttributeBooleanValue::builder().value(false).build());
                async move { request.send().await.api("ModifyInstanceAttribute") }
            })
        })
        .await?;
    }
    Ok(id)
}

async fn launch(
    aws: &Aws,
    context: &Context,
    plan: &LaunchPlan,
    node: &PlannedNode,
    attempt: Attempt,
) -> Result<Instance, CloudError> {
    let logical = node.logical();
    let interface = InstanceNetworkInterfaceSpecification::builder()
        .device_index(0)
        .subnet_id(&plan.subnet_id)
        .private_ip_address(node.spec.private_ip.to_string())
        .groups(&plan.group_id)
        .associate_public_ip_address(true)
        // AWS's default for an interface made at launch, said explicitly: terminating a node
        // scaled away must free its IP for a node added later (the emulator frees it only then).
        .delete_on_termination(true)
        .build();
    let out = aws
        .ec2
        .run_instances()
        .image_id(&plan.image_id)
        .instance_type(InstanceType::from(plan.instance_type.as_str()))
        .key_name(&plan.key_name)
        .min_count(1)
        .max_count(1)
        .network_interfaces(interface)
        .user_data(openssl::base64::encode_block(node.user_data().as_bytes()))
        .dry_run(attempt.dry_run)
        .client_token(&attempt.client_token)
        .tag_specifications(aws.identity.tag_spec(ResourceType::Instance, &logical, &node.name(&context.cluster.name)))
        .send()
        .await
        .api("RunInstances")?;
    out.instances().first().cloned().ok_or_else(|| CloudError::Conflict("RunInstances returned no instance".into()))
}

/// Until every instance runs; one that stops or terminates on its way will never run.
async fn wait_running(aws: &Aws, ids: &[String]) -> Result<(), CloudError> {
    wait_until("compute", "instances to run", ids.to_vec(), Duration::from_secs(600), |pending| async move {
        let found = describe(aws, &pending).await?;
        pending
            .into_iter()
            .map(|id| {
                let state = found.get(&id).and_then(|i| i.state()?.name().cloned());
                let state = state.map_or("pending".to_string(), |s| s.as_str().to_string());
                if matches!(state.as_str(), "shutting-down" | "terminated" | "stopping" | "stopped") {
                    return Err(CloudError::Conflict(format!("instance {id} is {state} instead of starting")));
                }
                Ok(Polled { done: state == "running", resource: id, state })
            })
            .collect()
    })
    .await
}

async fn describe(aws: &Aws, ids: &[String]) -> Result<HashMap<String, Instance>, CloudError> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(100) {
        let out = retry_eventual(|| async {
            aws.ec2.describe_instances().set_instance_ids(Some(chunk.to_vec())).send().await.api("DescribeInstances")
        })
        .await?;
        for instance in out.reservations().iter().flat_map(|r| r.instances()) {
            found.insert(instance.instance_id().unwrap_or_default().to_string(), instance.clone());
        }
    }
    Ok(found)
}

/// The node as the context records it. A node a plan would launch gets the names AWS gives an
/// instance with that private IP, so that later steps of the plan can use them.
fn record(context: &Context, node: &PlannedNode, id: &str, instance: Option<&Instance>) -> Result<Node, CloudError> {
    let name = node.name(&context.cluster.name);
    let private_ip = node.spec.private_ip;
    let (public_ip, private_dns) = match instance {
        Some(instance) => {
            if instance.private_ip_address().and_then(|ip| ip.parse().ok()) != Some(private_ip) {
                return Err(CloudError::Conflict(format!(
                    "instance {id} has private IP {:?}, the context plans {private_ip}; terminate it and run the step again",
                    instance.private_ip_address(),
                )));
            }
            let public_ip = instance.public_ip_address().and_then(|ip| ip.parse().ok());
            (public_ip, instance.private_dns_name().unwrap_or_default().to_string())
        }
        None if is_planned_id(id) => (None, predicted_dns(&context.cluster.region, private_ip)),
        None => return Err(CloudError::Conflict(format!("instance {id} ({}) vanished", node.logical()))),
    };
    Ok(Node {
        name,
        role: node.role,
        index: node.index,
        instance_id: id.to_string(),
        private_ip,
        public_ip,
        hostname: private_dns.split('.').next().unwrap_or_default().to_string(),
        private_dns,
        pod_cidr: node.spec.pod_cidr,
    })
}

/// `ip-172-31-0-10.us-east-2.compute.internal` (`.ec2.internal` in us-east-1).
fn predicted_dns(region: &str, ip: std::net::Ipv4Addr) -> String {
    format!("ip-{}.{}", ip.to_string().replace('.', "-"), groundup_contracts::region::internal_domain(region))
}
