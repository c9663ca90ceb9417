//! Course section "Route tables": a route table for the subnet with a default route to the
//! internet gateway.

use std::process::ExitCode;

use aws_sdk_ec2::types::{Filter, ResourceType, RouteTable};
use groundup_cloud::{find_or_create, retry_eventual, run_aws_step, Aws, AwsResultExt, CloudError};
use groundup_contracts::context::need;
use groundup_contracts::harness::{NoArgs, StepInfo};
use groundup_contracts::network::RoutesSection;
use groundup_contracts::Section;

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
        let (table, _) = find_or_create("route table", LOGICAL, || find(&aws), || create(&aws, &vpc_id)).await?;
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

async fn create(aws: &Aws, vpc_id: &str) -> Result<RouteTable, CloudError> {
    let out = retry_eventual(|| async {
        aws.ec2
            .create_route_table()
            .vpc_id(vpc_id)
            .client_token(aws.identity.client_token(LOGICAL, vpc_id))
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
    let current = aws
        .ec2
        .describe_route_tables()
        .filters(Filter::builder().name("association.subnet-id").values(subnet_id).build())
        .send()
        .await
        .api("DescribeRouteTables")?;
    let other = current
        .route_tables()
        .iter()
        .flat_map(|t| t.associations())
        .find(|a| a.subnet_id() == Some(subnet_id))
        .and_then(|a| a.route_table_association_id());
    let association_id = match other {
        Some(old) => {
            let out = aws
                .ec2
                .replace_route_table_association()
                .association_id(old)
                .route_table_id(table_id)
                .send()
                .await
                .api("ReplaceRouteTableAssociation")?;
            out.new_association_id().unwrap_or_default().to_string()
        }
        None => {
            let out = retry_eventual(|| async {
                aws.ec2
                    .associate_route_table()
                    .route_table_id(table_id)
                    .subnet_id(subnet_id)
                    .send()
                    .await
                    .api("AssociateRouteTable")
            })
            .await?;
            out.association_id().unwrap_or_default().to_string()
        }
    };
    tracing::info!("{LOGICAL}: associated {table_id} with {subnet_id}");
    Ok(association_id)
}

async fn ensure_default_route(aws: &Aws, table: &RouteTable, table_id: &str, igw_id: &str) -> Result<(), CloudError> {
    let current = table.routes().iter().find(|r| r.destination_cidr_block() == Some(DEFAULT_ROUTE));
    match current.map(|r| r.gateway_id()) {
        Some(Some(gateway)) if gateway == igw_id => return Ok(()),
        Some(_) => {
            aws.ec2
                .replace_route()
                .route_table_id(table_id)
                .destination_cidr_block(DEFAULT_ROUTE)
                .gateway_id(igw_id)
                .send()
                .await
                .api("ReplaceRoute")?;
        }
        None => {
            retry_eventual(|| async {
                aws.ec2
                    .create_route()
                    .route_table_id(table_id)
                    .destination_cidr_block(DEFAULT_ROUTE)
                    .gateway_id(igw_id)
                    .send()
                    .await
                    .api("CreateRoute")
            })
            .await?;
        }
    }
    tracing::info!("{LOGICAL}: routed {DEFAULT_ROUTE} to {igw_id}");
    Ok(())
}
