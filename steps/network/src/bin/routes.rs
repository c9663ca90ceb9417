//! Course section "Route tables": a route table for the subnet with a default route to the
//! internet gateway.

use std::process::ExitCode;

use aws_sdk_ec2::types::{Filter, ResourceType, RouteTable};
use groundup_cloud::{converge, retry_eventual, run_aws_step, Answered, Attempt, Aws, AwsResultExt, CloudError};
use groundup_cloud::{Change, Resource};
use groundup_contracts::context::need;
use groundup_contracts::network::RoutesSection;
use groundup_contracts::{Ref, Section};
use groundup_runtime::harness::{NoArgs, StepInfo};

const DEFAULT_ROUTE: &str = "0.0.0.0/0";

fn main() -> ExitCode {
    let info = StepInfo {
        name: "routes",
        about: "Create (or find) the route table, associate it with the subnet, route 0.0.0.0/0 to the gateway",
    };
    run_aws_step(info, |mut context, NoArgs {}, aws| async move {
        let wanted = WantedTable {
            vpc_id: need(&context.vpc, Section::Vpc)?.id.clone(),
            subnet_id: need(&context.subnet, Section::Subnet)?.id.clone(),
            igw_id: need(&context.igw, Section::Igw)?.id.clone(),
        };
        let table = converge(&aws, &wanted, context.routes.as_ref().map(|r| &r.route_table_id)).await?;
        let association = table.value("route-table-association", "subnet association", |table| {
            let association =
                table.associations().iter().find(|a| wanted.subnet_id == *a.subnet_id().unwrap_or_default());
            association.and_then(|a| a.route_table_association_id())
        })?;
        context.routes = Some(RoutesSection {
            route_table_id: table.id(),
            association_id: association,
            default_route: DEFAULT_ROUTE.parse().expect("literal CIDR"),
        });
        Ok(context)
    })
}

struct WantedTable {
    vpc_id: Ref,
    subnet_id: Ref,
    igw_id: Ref,
}

/// The association that ties the subnet to another table, if any (the VPC's main table has
/// none), which an association of this table replaces.
#[derive(Default)]
struct Elsewhere(Option<String>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fix {
    Associate { subnet_id: Ref, replacing: Option<String> },
    Route { igw_id: Ref, replacing: bool },
}

impl std::fmt::Display for Fix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fix::Associate { subnet_id, replacing: None } => write!(f, "associate with {subnet_id}"),
            Fix::Associate { subnet_id, replacing: Some(old) } => {
                write!(f, "associate with {subnet_id} (instead of {old})")
            }
            Fix::Route { igw_id, .. } => write!(f, "route {DEFAULT_ROUTE} to {igw_id}"),
        }
    }
}

impl Resource for WantedTable {
    const DESCRIBE_AFTER_CHANGES: bool = true;
    type Described = RouteTable;
    type Observed = Elsewhere;
    type Fix = Fix;

    fn token_scope(&self) -> Option<String> {
        Some(self.vpc_id.to_string())
    }

    async fn create(&self, aws: &Aws, attempt: Attempt) -> Result<RouteTable, CloudError> {
        let out = retry_eventual(|| async {
            aws.ec2()
                .create_route_table()
                .dry_run(attempt.dry_run)
                .vpc_id(self.vpc_id.to_string())
                .client_token(&attempt.client_token)
                .tag_specifications(aws.identity().tag_spec(
                    ResourceType::RouteTable,
                    self.logical(),
                    &aws.identity().cluster,
                ))
                .send()
                .await
                .api("CreateRouteTable")
        })
        .await?;
        out.route_table.answered(self.logical())
    }

    async fn observe(&self, aws: &Aws, table: &RouteTable) -> Result<Elsewhere, CloudError> {
        if self.associated(table) {
            return Ok(Elsewhere(None));
        }
        let current = aws.read_existing(&self.subnet_id, |subnet_id| current_association(aws, subnet_id)).await?;
        Ok(Elsewhere(current.flatten()))
    }

    fn diff(&self, found: Option<&RouteTable>, elsewhere: &Elsewhere) -> Vec<Change<Fix>> {
        let route = found.and_then(|t| t.routes().iter().find(|r| r.destination_cidr_block() == Some(DEFAULT_ROUTE)));
        let mut changes = Vec::new();
        if !found.is_some_and(|table| self.associated(table)) {
            let replacing = elsewhere.0.clone();
            changes.push(Change::InPlace(Fix::Associate { subnet_id: self.subnet_id.clone(), replacing }));
        }
        if route.is_none_or(|r| self.igw_id != *r.gateway_id().unwrap_or_default()) {
            changes.push(Change::InPlace(Fix::Route { igw_id: self.igw_id.clone(), replacing: route.is_some() }));
        }
        changes
    }

    async fn apply(&self, aws: &Aws, id: &str, fix: &Fix, dry_run: bool) -> Result<(), CloudError> {
        match fix {
            Fix::Associate { replacing: Some(old), .. } => {
                let request = aws.ec2().replace_route_table_association().dry_run(dry_run).association_id(old);
                request.route_table_id(id).send().await.api("ReplaceRouteTableAssociation")?;
            }
            Fix::Associate { subnet_id, replacing: None } => {
                retry_eventual(|| async {
                    let request = aws.ec2().associate_route_table().dry_run(dry_run).route_table_id(id);
                    request.subnet_id(subnet_id.to_string()).send().await.api("AssociateRouteTable")
                })
                .await?;
            }
            Fix::Route { igw_id, replacing: true } => {
                let request = aws.ec2().replace_route().dry_run(dry_run).route_table_id(id);
                let request = request.destination_cidr_block(DEFAULT_ROUTE).gateway_id(igw_id.to_string());
                request.send().await.api("ReplaceRoute")?;
            }
            Fix::Route { igw_id, replacing: false } => {
                retry_eventual(|| async {
                    let request = aws.ec2().create_route().dry_run(dry_run).route_table_id(id);
                    let request = request.destination_cidr_block(DEFAULT_ROUTE).gateway_id(igw_id.to_string());
                    request.send().await.api("CreateRoute")
                })
                .await?;
            }
        }
        Ok(())
    }
}

impl WantedTable {
    fn associated(&self, table: &RouteTable) -> bool {
        table.associations().iter().any(|a| self.subnet_id == *a.subnet_id().unwrap_or_default())
    }
}

async fn current_association(aws: &Aws, subnet_id: &str) -> Result<Option<String>, CloudError> {
    let filter = Filter::builder().name("association.subnet-id").values(subnet_id).build();
    let current = aws.ec2().describe_route_tables().filters(filter).send().await.api("DescribeRouteTables")?;
    Ok(current
        .route_tables()
        .iter()
        .flat_map(|t| t.associations())
        .find(|a| a.subnet_id() == Some(subnet_id))
        .and_then(|a| a.route_table_association_id())
        .map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{Route, RouteTableAssociation};
    use groundup_cloud::lines;

    #[test]
    fn the_table_takes_the_subnet_over_and_routes_everything_to_the_gateway() {
        let known = |id: &str| Ref::Known(id.into());
        let wanted = WantedTable { vpc_id: known("vpc-1"), subnet_id: known("subnet-1"), igw_id: known("igw-1") };
        // A table associated with the subnet or not, with a default route to a gateway, to
        // none, or without one.
        let table = |associated: bool, route: Option<Option<&str>>| {
            let mut table = RouteTable::builder();
            if associated {
                table = table.associations(RouteTableAssociation::builder().subnet_id("subnet-1").build());
            }
            if let Some(to) = route {
                table = table.routes(
                    Route::builder().destination_cidr_block(DEFAULT_ROUTE).set_gateway_id(to.map(String::from)).build(),
                );
            }
            table.build()
        };
        let diff = |associated, elsewhere: Option<&str>, route: Option<Option<&str>>| {
            lines(&wanted.diff(Some(&table(associated, route)), &Elsewhere(elsewhere.map(String::from))))
        };
        assert!(diff(true, None, Some(Some("igw-1"))).is_empty());
        assert_eq!(diff(false, None, Some(Some("igw-1"))), ["associate with subnet-1"]);
        assert_eq!(
            diff(false, Some("rtbassoc-9"), Some(Some("igw-1"))),
            ["associate with subnet-1 (instead of rtbassoc-9)"]
        );
        assert_eq!(diff(true, None, Some(Some("igw-2"))), ["route 0.0.0.0/0 to igw-1"]);
        assert_eq!(diff(true, None, Some(None)), ["route 0.0.0.0/0 to igw-1"]);
        assert_eq!(
            lines(&wanted.diff(None, &Elsewhere::default())),
            ["associate with subnet-1", "route 0.0.0.0/0 to igw-1"]
        );
        let replacing = |route| match &wanted.diff(Some(&table(true, route)), &Elsewhere::default())[..] {
            [Change::InPlace(Fix::Route { replacing, .. })] => *replacing,
            other => panic!("{other:?}"),
        };
        assert!(replacing(Some(Some("igw-2"))), "a route to elsewhere is replaced");
        assert!(!replacing(None), "a missing route is created");
    }
}
