//! Each worker's pod range routed to the worker, in the cluster's route table (see
//! `groundup_cluster::pod_routes`): made once the instances exist, so it follows scaling.

use aws_sdk_ec2::types::RouteState;
use groundup_cloud::{Aws, AwsResultExt, CloudError};
use groundup_cluster::pod_routes::{pod_route_changes, FoundRoute, PodRoute, PodRouteFix};
use groundup_contracts::infra::{node_logical_name, Node};

const LOGICAL: &str = "pod-routes";
const KIND: &str = "pod routes";

pub(super) async fn converge_pod_routes(aws: &Aws, table_id: &str, nodes: &[Node]) -> Result<(), CloudError> {
    let wanted: Vec<PodRoute> = nodes
        .iter()
        .filter_map(|n| {
            Some(PodRoute {
                cidr: n.pod_cidr?,
                worker: node_logical_name(n.role, n.index),
                instance_id: n.instance_id.clone(),
            })
        })
        .collect();
    let found = aws.read_existing(table_id, || routes(aws, table_id)).await?.unwrap_or_default();
    if let Some(plan) = aws.plan.as_ref().filter(|_| !wanted.is_empty() || found.iter().any(|r| r.to_node)) {
        if found.iter().any(|r| r.to_node) {
            plan.found(KIND, LOGICAL, table_id, true);
        } else {
            plan.missing(KIND, LOGICAL);
        }
    }
    for fix in pod_route_changes(&wanted, &found) {
        aws.change(LOGICAL, &fix.to_string(), |dry_run| async move {
            match &fix {
                PodRouteFix::Create(route) => {
                    let request = aws.ec2.create_route().dry_run(dry_run).route_table_id(table_id);
                    let request =
                        request.destination_cidr_block(route.cidr.to_string()).instance_id(&route.instance_id);
                    request.send().await.api("CreateRoute").map(drop)
                }
                PodRouteFix::Replace(route) => {
                    let request = aws.ec2.replace_route().dry_run(dry_run).route_table_id(table_id);
                    let request =
                        request.destination_cidr_block(route.cidr.to_string()).instance_id(&route.instance_id);
                    request.send().await.api("ReplaceRoute").map(drop)
                }
                PodRouteFix::Remove(cidr) => {
                    let request = aws.ec2.delete_route().dry_run(dry_run).route_table_id(table_id);
                    request.destination_cidr_block(cidr.to_string()).send().await.api("DeleteRoute").map(drop)
                }
            }
        })
        .await?;
    }
    Ok(())
}

async fn routes(aws: &Aws, table_id: &str) -> Result<Vec<FoundRoute>, CloudError> {
    let out = aws.ec2.describe_route_tables().route_table_ids(table_id).send().await.api("DescribeRouteTables")?;
    Ok(out
        .route_tables()
        .iter()
        .flat_map(|t| t.routes())
        .filter_map(|r| {
            Some(FoundRoute {
                cidr: r.destination_cidr_block()?.parse().ok()?,
                instance_id: r.instance_id().map(String::from),
                to_node: r.instance_id().is_some() || r.network_interface_id().is_some(),
                blackhole: r.state() == Some(&RouteState::Blackhole),
            })
        })
        .collect())
}
