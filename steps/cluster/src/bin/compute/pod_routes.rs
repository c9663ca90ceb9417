//! Each worker's pod range routed to the worker, in the cluster's route table (see
//! `groundup_cluster::pod_routes`): made once the instances exist, so it follows scaling. The
//! routes have no tags: they are parts of the route table (`groundup_cloud::Parts`).

use aws_sdk_ec2::types::RouteState;
use groundup_cloud::{Aws, AwsResultExt, CloudError, Parts};
use groundup_cluster::pod_routes::{pod_route_changes, FoundRoute, PodRoute, PodRouteFix};
use groundup_contracts::infra::{node_logical_name, Node};
use groundup_contracts::Ref;

/// The workers' pod routes in the cluster's route table.
pub(super) struct PodRoutes {
    pub table_id: Ref,
    pub wanted: Vec<PodRoute>,
}

impl PodRoutes {
    pub fn of(table_id: Ref, nodes: &[Node]) -> PodRoutes {
        let wanted = nodes
            .iter()
            .filter_map(|n| {
                Some(PodRoute {
                    cidr: n.pod_cidr?,
                    worker: node_logical_name(n.role, n.index),
                    instance_id: n.instance_id.clone(),
                })
            })
            .collect();
        PodRoutes { table_id, wanted }
    }
}

impl Parts for PodRoutes {
    const LABEL: &'static str = "pod routes";
    const LOGICAL: &'static str = "pod-routes";
    type Found = FoundRoute;
    type Fix = PodRouteFix;

    fn parent(&self) -> &Ref {
        &self.table_id
    }

    async fn find(&self, aws: &Aws, table_id: &str) -> Result<Vec<FoundRoute>, CloudError> {
        let request = aws.ec2().describe_route_tables().route_table_ids(table_id);
        let out = request.send().await.api("DescribeRouteTables")?;
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

    fn ours(found: &FoundRoute) -> bool {
        found.to_node
    }

    fn diff(&self, found: &[FoundRoute]) -> Vec<PodRouteFix> {
        pod_route_changes(&self.wanted, found)
    }

    async fn apply(&self, aws: &Aws, table_id: &str, fix: &PodRouteFix, dry_run: bool) -> Result<(), CloudError> {
        match fix {
            PodRouteFix::Create(route) => {
                let request = aws.ec2().create_route().dry_run(dry_run).route_table_id(table_id);
                let request =
                    request.destination_cidr_block(route.cidr.to_string()).instance_id(route.instance_id.to_string());
                request.send().await.api("CreateRoute")?;
            }
            PodRouteFix::Replace(route) => {
                let request = aws.ec2().replace_route().dry_run(dry_run).route_table_id(table_id);
                let request =
                    request.destination_cidr_block(route.cidr.to_string()).instance_id(route.instance_id.to_string());
                request.send().await.api("ReplaceRoute")?;
            }
            PodRouteFix::Remove(cidr) => {
                let request = aws.ec2().delete_route().dry_run(dry_run).route_table_id(table_id);
                request.destination_cidr_block(cidr.to_string()).send().await.api("DeleteRoute")?;
            }
        }
        Ok(())
    }
}
