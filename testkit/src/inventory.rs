use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use groundup_cloud::{AwsResultExt, CLUSTER_TAG};
use groundup_contracts::{Cluster, Context, Params, Target};

/// The live resources tagged as one cluster's, by kind: what a clean run must leave, with no
/// duplicates and no orphans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// kind -> ids, e.g. "vpc" -> ["vpc-123"]
    pub resources: BTreeMap<&'static str, Vec<String>>,
}

impl Inventory {
    pub fn of(cluster: &str, endpoint: &str) -> Inventory {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(collect(cluster, endpoint)).unwrap_or_else(|e| panic!("inventory of {cluster}: {e}"))
    }

    pub fn count(&self, kind: &str) -> usize {
        self.resources.get(kind).map_or(0, Vec::len)
    }

    /// kind -> number of resources, for comparing two runs whose ids differ.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        self.resources.iter().map(|(k, v)| (*k, v.len())).collect()
    }
}

async fn collect(cluster: &str, endpoint: &str) -> Result<Inventory, groundup_cloud::CloudError> {
    let aws = client(endpoint).await;
    let ours = || Filter::builder().name(format!("tag:{CLUSTER_TAG}")).values(cluster).build();
    let mut resources = BTreeMap::new();
    let vpcs = aws.describe_vpcs().filters(ours()).send().await.api("DescribeVpcs")?;
    resources.insert("vpc", vpcs.vpcs().iter().filter_map(|v| v.vpc_id().map(String::from)).collect());
    let dhcp = aws.describe_dhcp_options().filters(ours()).send().await.api("DescribeDhcpOptions")?;
    resources
        .insert("dhcp", dhcp.dhcp_options().iter().filter_map(|v| v.dhcp_options_id().map(String::from)).collect());
    let subnets = aws.describe_subnets().filters(ours()).send().await.api("DescribeSubnets")?;
    resources.insert("subnet", subnets.subnets().iter().filter_map(|v| v.subnet_id().map(String::from)).collect());
    let igws = aws.describe_internet_gateways().filters(ours()).send().await.api("DescribeInternetGateways")?;
    resources.insert(
        "igw",
        igws.internet_gateways().iter().filter_map(|v| v.internet_gateway_id().map(String::from)).collect(),
    );
    let tables = aws.describe_route_tables().filters(ours()).send().await.api("DescribeRouteTables")?;
    resources.insert(
        "route-table",
        tables.route_tables().iter().filter_map(|v| v.route_table_id().map(String::from)).collect(),
    );
    let groups = aws.describe_security_groups().filters(ours()).send().await.api("DescribeSecurityGroups")?;
    resources.insert("sg", groups.security_groups().iter().filter_map(|v| v.group_id().map(String::from)).collect());
    Ok(Inventory { resources })
}

/// Clients for the emulator, built the way the steps build theirs.
pub async fn client(endpoint: &str) -> aws_sdk_ec2::Client {
    groundup_cloud::Aws::connect(&emulator_context(endpoint)).await.ec2
}

fn emulator_context(endpoint: &str) -> Context {
    Context::new(
        Cluster { name: "inventory".into(), region: "us-east-2".into() },
        Target::Endpoint { endpoint: endpoint.into() },
        Params::course_defaults("us-east-2"),
        Vec::new(),
    )
}
