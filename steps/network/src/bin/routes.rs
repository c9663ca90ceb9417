//! Course section "Route tables": a route table for the subnet with a default route to the
//! internet gateway.

use std::process::ExitCode;

use aws_sdk_ec2::types::{Filter, ResourceType, RouteTable};
use groundup_cloud::{find_or_create, retry_eventual, run_aws_step, Attempt, Aws, AwsResultExt, CloudError, Wanted};
use groundup_contracts::context::need;
use groundup_contracts::kinds::Kind;
use groundup_contracts::network::RoutesSection;
use groundup_contracts::plan::{is_planned_id, planned_id};
use groundup_contracts::Section;
use groundup_runtime::harness::{NoArgs, StepInfo};

const LOGICAL: &str = "route-table";
const DEFAULT_ROUTE: &str = "0.0.0.0/0";

fn main() -> ExitCode {
    let info = StepInfo {
        name: "routes",
        about: "Create (or find) the route table, associate it with the subnet, route 0.0.0.0/0 to the gateway",
    };
    run_aws_step(info, |mut context, NoArgs {}, aws| async move {
        let vpc_id = need(&context.vpc, Section::Vpc)?.id.clone();
        let subnet_id = need(&context.subnet, Section::Subnet)?.id.clone();
        let igw_id = need(&context.igw, Section::Igw)?.id.clone();
        let wanted = Wanted::new(Kind::RouteTable, LOGICAL)
            .recorded(context.routes.as_ref().map(|r| r.route_table_id.as_str()))
            .client_token(aws.identity.client_token(LOGICAL, &vpc_id));
        let table = find_or_create(&aws, wanted, || find(&aws), |attempt| create(&aws, &vpc_id, attempt)).await?;
        let table_id = table.route_table_id().unwrap_or_default().to_string();
        let association_id = associate(&aws, &table, &table_id, &subnet_id).await?;
        ensure_default_route(&aws, &table, &table_id, &igw_id).await?;
        context.routes = Some(RoutesSection {
            route_table_id: table_id,
            association_id,
            default_route: DEFAULT_ROUTE.parse().expect("literal CIDR"),
        });
        Ok(context)
    })
}

async fn find(aws: &Aws) -> Result<Vec<RouteTable>, CloudError> {
    let out = aws
        .ec2
        .describe_route_tables()
        .set_filters(Some(aws.identity.filters(LOGICAL)))
        .send()
        .await
        .api("DescribeRouteTables")?;
    Ok(out.route_tables().to_vec())
}

async fn create(aws: &Aws, vpc_id: &str, attempt: Attempt) -> Result<RouteTable, CloudError> {
    let out = retry_eventual(|| async {
        aws.ec2
            .create_route_table()
            .dry_run(attempt.dry_run)
            .vpc_id(vpc_id)
            .client_token(&attempt.client_token)
            .tag_specifications(aws.identity.tag_spec(ResourceType::RouteTable, LOGICAL, &aws.identity.cluster))
            .send()
            .await
            .api("CreateRouteTable")
    })
    .await?;
    out.route_table.ok_or_else(|| CloudError::Conflict("CreateRouteTable returned nothing".into()))
}

/// Associates the table with the subnet, taking the subnet over from another table if needed.
async fn associate(aws: &Aws, table: &RouteTable, table_id: &str, subnet_id: &str) -> Result<String, CloudError> {
    let ours = table.associations().iter().find(|a| a.subnet_id() == Some(subnet_id));
    if let Some(id) = ours.and_then(|a| a.route_table_association_id()) {
        return Ok(id.to_string());
    }
    let what = format!("associate with {subnet_id}");
    let association_id = match current_association(aws, subnet_id).await? {
        Some(old) => {
            aws.change(LOGICAL, &what, |dry_run| async move {
                let out = aws
                    .ec2
                    .replace_route_table_association()
                    .dry_run(dry_run)
                    .association_id(&old)
                    .route_table_id(table_id)
                    .send()
                    .await
                    .api("ReplaceRouteTableAssociation")?;
                Ok(out.new_association_id().unwrap_or_default().to_string())
            })
            .await?
        }
        None => {
            aws.change(LOGICAL, &what, |dry_run| {
                retry_eventual(move || async move {
                    let out = aws
                        .ec2
                        .associate_route_table()
                        .dry_run(dry_run)
                        .route_table_id(table_id)
                        .subnet_id(subnet_id)
                        .send()
                        .await
                        .api("AssociateRouteTable")?;
                    Ok(out.association_id().unwrap_or_default().to_string())
                })
            })
            .await?
        }
    };
    Ok(association_id.unwrap_or_else(|| planned_id("route-table-association")))
}

/// The association that ties the subnet to another table (the VPC's main one has none).
async fn current_association(aws: &Aws, subnet_id: &str) -> Result<Option<String>, CloudError> {
    if is_planned_id(subnet_id) {
        return Ok(None);
    }
    let current = aws
        .ec2
        .describe_route_tables()
        .filters(Filter::builder().name("association.subnet-id").values(subnet_id).build())
        .send()
        .await
        .api("DescribeRouteTables")?;
    Ok(current
        .route_tables()
        .iter()
        .flat_map(|t| t.associations())
        .find(|a| a.subnet_id() == Some(subnet_id))
        .and_then(|a| a.route_table_association_id())
        .map(str::to_string))
}

async fn ensure_default_route(aws: &Aws, table: &RouteTable, table_id: &str, igw_id: &str) -> Result<(), CloudError> {
    let current = table.routes().iter().find(|r| r.destination_cidr_block() == Some(DEFAULT_ROUTE));
    let what = format!("route {DEFAULT_ROUTE} to {igw_id}");
    match current.map(|r| r.gateway_id()) {
        Some(Some(gateway)) if gateway == igw_id => {}
        Some(_) => {
            aws.change(LOGICAL, &what, |dry_run| async move {
                aws.ec2
                    .replace_route()
                    .dry_run(dry_run)
                    .route_table_id(table_id)
                    .destination_cidr_block(DEFAULT_ROUTE)
                    .gateway_id(igw_id)
                    .send()
                    .await
                    .api("ReplaceRoute")
            })
            .await?;
        }
        None => {
            aws.change(LOGICAL, &what, |dry_run| {
                retry_eventual(move || async move {
                    aws.ec2
                        .create_route()
                        .dry_run(dry_run)
                        .route_table_id(table_id)
                        .destination_cidr_block(DEFAULT_ROUTE)
                        .gateway_id(igw_id)
                        .send()
                        .await
                        .api("CreateRoute")
                })
            })
            .await?;
        }
    }
    Ok(())
}
