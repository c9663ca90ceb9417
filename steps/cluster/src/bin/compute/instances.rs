//! The instances: find the cluster's by tags, launch the missing ones concurrently, terminate
//! those of nodes no longer in the spec, and record each node's addresses.

use super::*;
use groundup_contracts::infra::private_dns_name;

/// Terminates the nodes the spec no longer has, then finds or launches every planned node,
/// concurrently, waits until all run and records them: the section lists exactly the plan.
pub(super) async fn ensure_instances(aws: &Aws, context: &Context, plan: &LaunchPlan) -> Result<Vec<Node>, CloudError> {
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
        None if is_planned_id(id) => (None, private_dns_name(&context.cluster.region, private_ip)),
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
