use aws_sdk_ec2::types::{Filter, Tag};
use groundup_cloud::{cluster_groups, Aws, AwsResultExt, CloudError, CLUSTER_TAG};
use groundup_contracts::kinds::Kind;
use groundup_contracts::teardown::OwnedResource;

/// What discovery found, and what it could not look at.
pub struct Discovery {
    /// Everything tagged `groundup:cluster=<cluster>`, in deletion order. Untagged resources
    /// and other clusters' resources never appear here, so they are never touched.
    pub resources: Vec<OwnedResource>,
    /// Kinds the endpoint would not list (no ELBv2 on LocalStack's free edition, a missing
    /// permission), each with its error: the rest is still torn down.
    pub unlisted: Vec<String>,
}

pub async fn discover(aws: &Aws) -> Result<Discovery, CloudError> {
    let mut discovery = Discovery { resources: Vec::new(), unlisted: Vec::new() };
    discovery.take("instances", instances(aws).await)?;
    // Another cluster's load balancer may vanish between the listing and its tags: list again.
    let balancing = groundup_cloud::retry_eventual(|| load_balancing(aws)).await;
    discovery.take("load balancers, listeners and target groups", balancing)?;
    discovery.take("network resources", network(aws).await)?;
    discovery.resources.sort_by_key(|r| r.kind.deletion_rank());
    Ok(discovery)
}

impl Discovery {
    /// An API error is noted against its kinds; an unreachable endpoint stops everything.
    fn take(&mut self, kinds: &str, listed: Result<Vec<OwnedResource>, CloudError>) -> Result<(), CloudError> {
        match listed {
            Ok(found) => self.resources.extend(found),
            Err(e @ CloudError::Api { .. }) => self.unlisted.push(format!("{kinds}: {e}")),
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

fn owned(kind: Kind, id: Option<&str>, tags: &[Tag]) -> Option<OwnedResource> {
    let name = tags.iter().find(|t| t.key() == Some("Name")).and_then(|t| t.value()).unwrap_or_default();
    id.map(|id| OwnedResource { kind, id: id.into(), name: name.into() })
}

async fn instances(aws: &Aws) -> Result<Vec<OwnedResource>, CloudError> {
    let live = Filter::builder()
        .name("instance-state-name")
        .set_values(Some(["pending", "running", "stopping", "stopped", "shutting-down"].map(String::from).to_vec()))
        .build();
    let mut pages =
        aws.ec2().describe_instances().filters(aws.identity().cluster_filter()).filters(live).into_paginator().send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.api("DescribeInstances")?;
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            found.extend(owned(Kind::Instance, instance.instance_id(), instance.tags()));
        }
    }
    Ok(found)
}

async fn network(aws: &Aws) -> Result<Vec<OwnedResource>, CloudError> {
    let ec2 = &aws.ec2();
    let mut found = Vec::new();
    let keys =
        ec2.describe_key_pairs().filters(aws.identity().cluster_filter()).send().await.api("DescribeKeyPairs")?;
    // Key pairs are deleted by name: the emulator ignores KeyPairId on DeleteKeyPair.
    found.extend(keys.key_pairs().iter().filter_map(|k| owned(Kind::KeyPair, k.key_name(), k.tags())));
    let groups = cluster_groups(aws).await?;
    found.extend(groups.iter().filter_map(|g| owned(Kind::SecurityGroup, g.group_id(), g.tags())));
    let tables =
        ec2.describe_route_tables().filters(aws.identity().cluster_filter()).send().await.api("DescribeRouteTables")?;
    found.extend(tables.route_tables().iter().filter_map(|t| owned(Kind::RouteTable, t.route_table_id(), t.tags())));
    let gateways = ec2
        .describe_internet_gateways()
        .filters(aws.identity().cluster_filter())
        .send()
        .await
        .api("DescribeInternetGateways")?;
    found.extend(
        gateways
            .internet_gateways()
            .iter()
            .filter_map(|g| owned(Kind::InternetGateway, g.internet_gateway_id(), g.tags())),
    );
    let subnets =
        ec2.describe_subnets().filters(aws.identity().cluster_filter()).send().await.api("DescribeSubnets")?;
    found.extend(subnets.subnets().iter().filter_map(|s| owned(Kind::Subnet, s.subnet_id(), s.tags())));
    let options =
        ec2.describe_dhcp_options().filters(aws.identity().cluster_filter()).send().await.api("DescribeDhcpOptions")?;
    found.extend(options.dhcp_options().iter().filter_map(|d| owned(Kind::DhcpOptions, d.dhcp_options_id(), d.tags())));
    let vpcs = ec2.describe_vpcs().filters(aws.identity().cluster_filter()).send().await.api("DescribeVpcs")?;
    found.extend(vpcs.vpcs().iter().filter_map(|v| owned(Kind::Vpc, v.vpc_id(), v.tags())));
    Ok(found)
}

/// ELBv2 cannot filter by tag: list everything, then read the tags, 20 ARNs a call.
async fn load_balancing(aws: &Aws) -> Result<Vec<OwnedResource>, CloudError> {
    let balancers = aws.elb().describe_load_balancers().into_paginator().items().send().collect::<Vec<_>>().await;
    let balancers: Vec<_> = balancers.into_iter().collect::<Result<_, _>>().api("DescribeLoadBalancers")?;
    let groups = aws.elb().describe_target_groups().into_paginator().items().send().collect::<Vec<_>>().await;
    let groups: Vec<_> = groups.into_iter().collect::<Result<_, _>>().api("DescribeTargetGroups")?;
    let candidates: Vec<(Kind, String)> = balancers
        .iter()
        .filter_map(|b| b.load_balancer_arn().map(|a| (Kind::LoadBalancer, a.to_string())))
        .chain(groups.iter().filter_map(|g| g.target_group_arn().map(|a| (Kind::TargetGroup, a.to_string()))))
        .collect();
    let mut found = Vec::new();
    for chunk in candidates.chunks(20) {
        let arns: Vec<String> = chunk.iter().map(|(_, arn)| arn.clone()).collect();
        let tags = aws.elb().describe_tags().set_resource_arns(Some(arns)).send().await.api("DescribeTags")?;
        for description in tags.tag_descriptions() {
            let tag = |key: &str| description.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value());
            if tag(CLUSTER_TAG) != Some(aws.identity().cluster.as_str()) {
                continue;
            }
            let arn = description.resource_arn().unwrap_or_default();
            let Some((kind, _)) = chunk.iter().find(|(_, a)| a == arn) else { continue };
            found.push(OwnedResource { kind: *kind, id: arn.into(), name: tag("Name").unwrap_or_default().into() });
        }
    }
    let mut listeners = Vec::new();
    for balancer in found.iter().filter(|r| r.kind == Kind::LoadBalancer) {
        let out =
            aws.elb().describe_listeners().load_balancer_arn(&balancer.id).send().await.api("DescribeListeners")?;
        listeners.extend(out.listeners().iter().filter_map(|l| {
            l.listener_arn().map(|arn| OwnedResource {
                kind: Kind::Listener,
                id: arn.into(),
                name: balancer.name.clone(),
            })
        }));
    }
    found.extend(listeners);
    Ok(found)
}
