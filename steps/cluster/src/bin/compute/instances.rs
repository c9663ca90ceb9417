//! The instances: find the cluster's by tags, launch the missing ones concurrently, terminate
//! those of nodes no longer in the spec, and record each node's addresses.

use super::*;
use aws_sdk_ec2::types::InstanceAttributeName;
use groundup_contracts::infra::private_dns_name;

/// Terminates the nodes the spec no longer has, then finds or launches every planned node,
/// concurrently, waits until all run and records them: the section lists exactly the plan.
pub(super) async fn ensure_instances(aws: &Aws, context: &Context, plan: &LaunchPlan) -> Result<Vec<Node>, CloudError> {
    let Existing { mut live, terminated, all } = existing_instances(aws).await?;
    let planned = planned_nodes(&context.params);
    retire(aws, &unplanned_instances(&all, &planned)).await?;
    let launched_before: Vec<(&PlannedNode, String)> =
        planned.iter().filter_map(|node| live.get(&node.logical())?.first().map(|i| (node, i.id()))).collect();
    let jobs = planned.iter().map(|node| {
        let recorded =
            context.compute.as_ref().and_then(|c| c.nodes.iter().find(|n| n.name == node.name(&context.cluster.name)));
        let wanted = WantedInstance {
            logical: node.logical(),
            context,
            plan,
            node,
            found: live.remove(&node.logical()).unwrap_or_default(),
            generation: terminated.get(&node.logical()).copied().unwrap_or(0),
        };
        async move { converge(aws, &wanted, recorded.map(|n| &n.instance_id)).await }
    });
    let instances: Vec<Converged<Instance>> = stream::iter(jobs).buffered(CONCURRENT_LAUNCHES).try_collect().await?;
    // After the instances are found, so that a plan lists the note with each.
    older_user_data(aws, context, &launched_before).await?;
    wait_running(aws, &instances.iter().map(Converged::id).collect::<Vec<_>>()).await?;
    // Described again once running, for the addresses AWS gave them.
    let existing: Vec<String> = instances.iter().filter_map(Converged::existing).map(AwsResource::id).collect();
    let running = describe(aws, &existing).await?;
    planned
        .iter()
        .zip(&instances)
        .map(|(node, instance)| {
            let described = instance.existing().map(|found| {
                let id = found.id();
                running.get(&id).ok_or(CloudError::Vanished { kind: Kind::Instance.label(), id })
            });
            Ok(record(context, node, instance.id(), described.transpose()?))
        })
        .collect()
}

/// Instances that boot with other user data than the spec gives now (made by another
/// release of groundup, or by hand): never replaced silently. The plan lists each, and a run
/// says it; to boot one with the new user data, terminate it and run `groundup up`.
async fn older_user_data(aws: &Aws, context: &Context, launched: &[(&PlannedNode, String)]) -> Result<(), CloudError> {
    for (node, id) in launched {
        let out = aws
            .ec2()
            .describe_instance_attribute()
            .instance_id(id)
            .attribute(InstanceAttributeName::UserData)
            .send()
            .await
            .api("DescribeInstanceAttribute")?;
        let encoded = out.user_data().and_then(|v| v.value()).unwrap_or_default();
        let running = openssl::base64::decode_block(encoded).unwrap_or_default();
        if running != node.user_data(&context.params.kubernetes).as_bytes() {
            let what = format!(
                "runs older user data (kept: terminate {id} and run `groundup up` to boot it with the new one)"
            );
            aws.note(&node.logical(), &what);
        }
    }
    Ok(())
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
        Filter::builder().name(format!("tag:{}", groundup_cloud::CLUSTER_TAG)).values(&aws.identity().cluster).build();
    let mut pages = aws.ec2().describe_instances().filters(cluster).into_paginator().send();
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
        let id = instance.id.as_str();
        aws.delete(Kind::Instance, &instance.logical, id, &format!("terminate {id}"), |dry_run| async move {
            aws.ec2().terminate_instances().dry_run(dry_run).instance_ids(id).send().await.api("TerminateInstances")
        })
        .await?;
    }
    let ids: Vec<Ref> = unplanned.iter().map(|i| Ref::Known(i.id.clone())).collect();
    aws.wait_for("compute", "instances to terminate", &ids, Duration::from_secs(600), |pending| async move {
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
        let out = aws.ec2().describe_instances().filters(filter).send().await.api("DescribeInstances")?;
        for instance in out.reservations().iter().flat_map(|r| r.instances()) {
            let state = instance.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default();
            states.insert(instance.instance_id().unwrap_or_default().to_string(), state);
        }
    }
    Ok(states)
}

/// One node's instance: launched with everything the course gives it, so that only the
/// source/dest check (which RunInstances cannot set) is changed afterwards.
struct WantedInstance<'a> {
    logical: String,
    context: &'a Context,
    plan: &'a LaunchPlan,
    node: &'a PlannedNode,
    /// The live instances tagged as this node, found with all the others in one call.
    found: Vec<Instance>,
    /// How many instances of this node were terminated: the client token's generation.
    generation: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SourceDestCheckOff;

impl std::fmt::Display for SourceDestCheckOff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("turn the source/dest check off")
    }
}

impl Resource for WantedInstance<'_> {
    type Described = Instance;
    type Observed = ();
    type Fix = SourceDestCheckOff;

    fn logical(&self) -> &str {
        &self.logical
    }

    fn token_scope(&self) -> Option<String> {
        Some(format!("{}/{}", self.plan.subnet_id, self.generation))
    }

    async fn find(&self, _: &Aws) -> Result<Vec<Instance>, CloudError> {
        Ok(self.found.clone())
    }

    async fn create(&self, aws: &Aws, attempt: Attempt) -> Result<Instance, CloudError> {
        launch(aws, self.context, self.plan, self.node, attempt).await
    }

    /// The address and the type are fixed at launch; the source/dest check is on at launch.
    fn diff(&self, actual: Option<&Instance>, _: &()) -> Vec<Change<SourceDestCheckOff>> {
        let Some(instance) = actual else { return vec![Change::InPlace(SourceDestCheckOff)] };
        let mut changes = Vec::new();
        let private_ip = instance.private_ip_address().unwrap_or("?");
        if private_ip != self.node.spec.private_ip.to_string() {
            changes.push(Change::Immutable(Immutable {
                field: "private IP",
                now: private_ip.to_string(),
                wanted: self.node.spec.private_ip.to_string(),
                way_forward: "terminate it and run the step again".into(),
            }));
        }
        let instance_type = instance.instance_type().map_or("?", |t| t.as_str());
        if instance_type != self.plan.instance_type {
            let param = "params.instance_type";
            changes.push(Change::Immutable(Immutable::param(
                "instance type",
                instance_type,
                &self.plan.instance_type,
                param,
            )));
        }
        if instance.source_dest_check() != Some(false) {
            changes.push(Change::InPlace(SourceDestCheckOff));
        }
        changes
    }

    async fn apply(&self, aws: &Aws, id: &str, _: &SourceDestCheckOff, dry_run: bool) -> Result<(), CloudError> {
        retry_eventual(|| {
            let off = AttributeBooleanValue::builder().value(false).build();
            let request = aws.ec2().modify_instance_attribute().dry_run(dry_run).instance_id(id).source_dest_check(off);
            async move { request.send().await.api("ModifyInstanceAttribute") }
        })
        .await?;
        Ok(())
    }
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
        .subnet_id(plan.subnet_id.to_string())
        .private_ip_address(node.spec.private_ip.to_string())
        .groups(plan.group_of(node.role).to_string())
        .associate_public_ip_address(true)
        // AWS's default for an interface made at launch, said explicitly: terminating a node
        // scaled away must free its IP for a node added later (the emulator frees it only then).
        .delete_on_termination(true)
        .build();
    let out = aws
        .ec2()
        .run_instances()
        .image_id(&plan.image_id)
        .instance_type(InstanceType::from(plan.instance_type.as_str()))
        .key_name(&plan.key_name)
        .min_count(1)
        .max_count(1)
        .network_interfaces(interface)
        .user_data(openssl::base64::encode_block(node.user_data(&context.params.kubernetes).as_bytes()))
        .dry_run(attempt.dry_run)
        .client_token(&attempt.client_token)
        .tag_specifications(aws.identity().tag_spec(
            ResourceType::Instance,
            &logical,
            &node.name(&context.cluster.name),
        ))
        .send()
        .await
        .api("RunInstances")?;
    out.instances().first().cloned().answered(&logical)
}

/// Until every instance runs; one that stops or terminates on its way will never run.
async fn wait_running(aws: &Aws, ids: &[Ref]) -> Result<(), CloudError> {
    aws.wait_for("compute", "instances to run", ids, Duration::from_secs(600), |pending| async move {
        let found = describe(aws, &pending).await?;
        pending
            .into_iter()
            .map(|id| {
                let state = found.get(&id).and_then(|i| i.state()?.name().cloned());
                let state = state.map_or("pending".to_string(), |s| s.as_str().to_string());
                if matches!(state.as_str(), "shutting-down" | "terminated" | "stopping" | "stopped") {
                    let kind = Kind::Instance.label();
                    return Err(CloudError::NeverReady { kind, id, state, wanted: "running" });
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
            aws.ec2().describe_instances().set_instance_ids(Some(chunk.to_vec())).send().await.api("DescribeInstances")
        })
        .await?;
        for instance in out.reservations().iter().flat_map(|r| r.instances()) {
            found.insert(instance.instance_id().unwrap_or_default().to_string(), instance.clone());
        }
    }
    Ok(found)
}

/// The node as the context records it. A node a plan would launch (no instance described)
/// gets the names AWS gives an instance with that private IP, so that later steps of the plan
/// can use them.
fn record(context: &Context, node: &PlannedNode, instance_id: Ref, instance: Option<&Instance>) -> Node {
    let private_ip = node.spec.private_ip;
    let private_dns = instance
        .and_then(Instance::private_dns_name)
        .filter(|name| !name.is_empty())
        .map_or_else(|| private_dns_name(&context.cluster.region, private_ip), String::from);
    Node {
        name: node.name(&context.cluster.name),
        role: node.role,
        index: node.index,
        instance_id,
        private_ip,
        public_ip: instance.and_then(Instance::public_ip_address).and_then(|ip| ip.parse().ok()),
        hostname: private_dns.split('.').next().unwrap_or_default().to_string(),
        private_dns,
        pod_cidr: node.spec.pod_cidr,
        host_keys: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::InstanceType;
    use groundup_cloud::lines;

    #[test]
    fn an_instance_keeps_its_address_and_type_and_gets_the_source_dest_check_off() {
        let mut context: Context =
            serde_json::from_str(include_str!("../../../../../contracts/examples/01-init.json")).unwrap();
        context.params.instance_type = "t3.small".into();
        let plan = LaunchPlan {
            image_id: "ami-1".into(),
            key_name: "k8s".into(),
            instance_type: "t3.small".into(),
            subnet_id: Ref::Known("subnet-1".into()),
            masters_group: Ref::Known("sg-1".into()),
            workers_group: Ref::Known("sg-2".into()),
        };
        let node = &planned_nodes(&context.params)[0];
        let wanted = WantedInstance {
            logical: node.logical(),
            context: &context,
            plan: &plan,
            node,
            found: Vec::new(),
            generation: 0,
        };
        let ip = node.spec.private_ip.to_string();
        let diff = |ip: &str, kind: &str, check: bool| {
            let instance = Instance::builder().private_ip_address(ip).instance_type(InstanceType::from(kind));
            lines(&wanted.diff(Some(&instance.source_dest_check(check).build()), &()))
        };
        assert!(diff(&ip, "t3.small", false).is_empty());
        assert_eq!(diff(&ip, "t3.small", true), ["turn the source/dest check off"]);
        assert_eq!(lines(&wanted.diff(None, &())), ["turn the source/dest check off"]);
        assert_eq!(diff("10.240.0.99", "t3.small", false), [format!("private IP 10.240.0.99 -> {ip} cannot change")]);
        assert_eq!(diff(&ip, "m5.large", false), ["instance type m5.large -> t3.small cannot change"]);
    }
}
