use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use groundup_cloud::{AwsResultExt, CloudError, CLUSTER_TAG};
use groundup_contracts::kinds::Kind;
use groundup_contracts::{Cluster, Context, Params, Target};

/// The live resources tagged as one cluster's, by kind: what a clean run must leave, with no
/// duplicates and no orphans. Written apart from `groundup-down`'s discovery on purpose, so
/// that a blind spot there cannot hide resources from the tests of `down`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// kind -> ids, e.g. Kind::Vpc -> ["vpc-123"]; every kind of the table is listed.
    pub resources: BTreeMap<Kind, Vec<String>>,
}

impl Inventory {
    pub fn of(cluster: &str, endpoint: &str) -> Inventory {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(collect(cluster, endpoint)).unwrap_or_else(|e| panic!("inventory of {cluster}: {e}"))
    }

    pub fn count(&self, kind: Kind) -> usize {
        self.resources.get(&kind).map_or(0, Vec::len)
    }

    /// kind -> number of resources, for comparing two runs whose ids differ.
    pub fn counts(&self) -> BTreeMap<Kind, usize> {
        self.resources.iter().map(|(k, v)| (*k, v.len())).collect()
    }
}

async fn collect(cluster: &str, endpoint: &str) -> Result<Inventory, CloudError> {
    let aws = client(endpoint).await;
    let ours = || Filter::builder().name(format!("tag:{CLUSTER_TAG}")).values(cluster).build();
    let mut resources: BTreeMap<Kind, Vec<String>> = Kind::ALL.into_iter().map(|k| (k, Vec::new())).collect();
    let vpcs = aws.describe_vpcs().filters(ours()).send().await.api("DescribeVpcs")?;
    resources.insert(Kind::Vpc, vpcs.vpcs().iter().filter_map(|v| v.vpc_id().map(String::from)).collect());
    let dhcp = aws.describe_dhcp_options().filters(ours()).send().await.api("DescribeDhcpOptions")?;
    resources.insert(
        Kind::DhcpOptions,
        dhcp.dhcp_options().iter().filter_map(|v| v.dhcp_options_id().map(String::from)).collect(),
    );
    let subnets = aws.describe_subnets().filters(ours()).send().await.api("DescribeSubnets")?;
    resources.insert(Kind::Subnet, subnets.subnets().iter().filter_map(|v| v.subnet_id().map(String::from)).collect());
    let igws = aws.describe_internet_gateways().filters(ours()).send().await.api("DescribeInternetGateways")?;
    resources.insert(
        Kind::InternetGateway,
        igws.internet_gateways().iter().filter_map(|v| v.internet_gateway_id().map(String::from)).collect(),
    );
    let tables = aws.describe_route_tables().filters(ours()).send().await.api("DescribeRouteTables")?;
    resources.insert(
        Kind::RouteTable,
        tables.route_tables().iter().filter_map(|v| v.route_table_id().map(String::from)).collect(),
    );
    let groups = aws.describe_security_groups().filters(ours()).send().await.api("DescribeSecurityGroups")?;
    resources.insert(
        Kind::SecurityGroup,
        groups.security_groups().iter().filter_map(|v| v.group_id().map(String::from)).collect(),
    );
    let live =
        Filter::builder().name("instance-state-name").values("pending").values("running").values("stopped").build();
    let reservations = aws.describe_instances().filters(ours()).filters(live).send().await.api("DescribeInstances")?;
    let instances = reservations.reservations().iter().flat_map(|r| r.instances());
    resources.insert(Kind::Instance, instances.filter_map(|i| i.instance_id().map(String::from)).collect());
    let keys = aws.describe_key_pairs().filters(ours()).send().await.api("DescribeKeyPairs")?;
    resources.insert(Kind::KeyPair, keys.key_pairs().iter().filter_map(|k| k.key_name().map(String::from)).collect());
    // Tests tear down other clusters' load balancers concurrently: list again if one vanishes.
    resources.extend(groundup_cloud::retry_eventual(|| load_balancing(cluster, endpoint)).await?);
    Ok(Inventory { resources })
}

/// Load balancers, target groups and listeners whose tags name the cluster.
async fn load_balancing(cluster: &str, endpoint: &str) -> Result<BTreeMap<Kind, Vec<String>>, CloudError> {
    let aws = groundup_cloud::Aws::connect(&emulator_context(endpoint), "inventory").await.expect("an emulator target");
    let elb = aws.elb();
    // The emulator answers 50 to a page: a long test run leaves more than that.
    let balancers = elb.describe_load_balancers().into_paginator().items().send().collect::<Vec<_>>().await;
    let balancers: Vec<_> = balancers.into_iter().collect::<Result<_, _>>().api("DescribeLoadBalancers")?;
    let groups = elb.describe_target_groups().into_paginator().items().send().collect::<Vec<_>>().await;
    let groups: Vec<_> = groups.into_iter().collect::<Result<_, _>>().api("DescribeTargetGroups")?;
    let mut arns: Vec<(Kind, String)> = Vec::new();
    arns.extend(balancers.iter().filter_map(|b| Some((Kind::LoadBalancer, b.load_balancer_arn()?.to_string()))));
    arns.extend(groups.iter().filter_map(|g| Some((Kind::TargetGroup, g.target_group_arn()?.to_string()))));
    for balancer in &balancers {
        let listeners = elb
            .describe_listeners()
            .load_balancer_arn(balancer.load_balancer_arn().unwrap_or_default())
            .send()
            .await
            .api("DescribeListeners")?;
        arns.extend(listeners.listeners().iter().filter_map(|l| Some((Kind::Listener, l.listener_arn()?.to_string()))));
    }
    let mut found: BTreeMap<Kind, Vec<String>> =
        [Kind::LoadBalancer, Kind::TargetGroup, Kind::Listener].map(|k| (k, Vec::new())).into();
    for chunk in arns.chunks(20) {
        let tags = elb
            .describe_tags()
            .set_resource_arns(Some(chunk.iter().map(|(_, a)| a.clone()).collect()))
            .send()
            .await
            .api("DescribeTags")?;
        for description in tags.tag_descriptions() {
            let ours = description.tags().iter().any(|t| t.key() == Some(CLUSTER_TAG) && t.value() == Some(cluster));
            let arn = description.resource_arn().unwrap_or_default();
            if let Some((kind, _)) = chunk.iter().find(|(_, a)| a == arn).filter(|_| ours) {
                found.entry(*kind).or_default().push(arn.to_string());
            }
        }
    }
    Ok(found)
}

/// Clients for the emulator, built the way the steps build theirs.
pub async fn client(endpoint: &str) -> aws_sdk_ec2::Client {
    let aws = groundup_cloud::Aws::connect(&emulator_context(endpoint), "inventory").await.expect("an emulator target");
    aws.ec2().clone()
}

fn emulator_context(endpoint: &str) -> Context {
    Context::new(
        Cluster { name: "inventory".into(), region: "us-east-2".into() },
        Target::Endpoint { endpoint: endpoint.into() },
        Params::course_defaults("us-east-2"),
        Vec::new(),
    )
}

/// Every rule of the cluster's security groups as the emulator describes them, as
/// `<group logical>: <protocol> <from port> <range, or the logical name of the group named>`,
/// sorted; compare with [`wanted_rules`].
pub fn group_rules(cluster: &str, endpoint: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let aws = client(endpoint).await;
        let ours = Filter::builder().name(format!("tag:{CLUSTER_TAG}")).values(cluster).build();
        let out = aws.describe_security_groups().filters(ours).send().await.unwrap();
        let logical = |g: &aws_sdk_ec2::types::SecurityGroup| {
            let tag = g.tags().iter().find(|t| t.key() == Some(groundup_cloud::RESOURCE_TAG));
            tag.and_then(|t| t.value()).unwrap_or("?").to_string()
        };
        let names: BTreeMap<String, String> =
            out.security_groups().iter().map(|g| (g.group_id().unwrap_or_default().to_string(), logical(g))).collect();
        let mut rules = Vec::new();
        for group in out.security_groups() {
            for p in group.ip_permissions() {
                let head =
                    format!("{}: {} {}", logical(group), p.ip_protocol().unwrap_or("?"), p.from_port().unwrap_or(-1));
                let ranges = p.ip_ranges().iter().filter_map(|r| r.cidr_ip().map(String::from));
                let pairs = p.user_id_group_pairs().iter().filter_map(|pair| {
                    let id = pair.group_id()?;
                    Some(names.get(id).cloned().unwrap_or_else(|| id.to_string()))
                });
                rules.extend(ranges.chain(pairs).map(|source| format!("{head} {source}")));
            }
        }
        rules.sort();
        rules
    })
}

/// The rules the policy wants, in the form of [`group_rules`].
pub fn wanted_rules(params: &Params) -> Vec<String> {
    use groundup_contracts::network::RuleSource;
    let mut rules: Vec<String> = params
        .security_groups()
        .into_iter()
        .flat_map(|(role, rules)| {
            rules.into_iter().map(move |r| {
                let source = match r.source {
                    RuleSource::Cidr(cidr) => cidr.to_string(),
                    RuleSource::Group(peer) => peer.logical().to_string(),
                };
                format!("{}: {} {} {source}", role.logical(), r.protocol, r.from_port)
            })
        })
        .collect();
    rules.sort();
    rules
}
