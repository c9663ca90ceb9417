use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{Filter, InstanceStateName};
use futures_util::future::join_all;
use groundup_cloud::{Aws, AwsResultExt, CloudError, Waiting};
use groundup_contracts::kinds::Kind;
use groundup_contracts::teardown::OwnedResource;

/// Answers that mean "something still depends on it: try again later".
const LATER: &[&str] = &["DependencyViolation", "ResourceInUse", "InvalidIPAddress.InUse", "IncorrectState"];

enum Progress {
    Done,
    Later(String),
}

/// Deletes everything in `resources`, rank by rank, each rank concurrently, in passes. A pass
/// that deletes something resets the clock; when nothing has moved for `patience`, it stops
/// and names what is left and what blocks it. A resource the endpoint refuses to delete (an
/// API it lacks, a permission missing) is set aside with its error, so that everything else
/// still goes; those errors are returned.
pub async fn delete_all(
    aws: &Aws,
    mut remaining: Vec<OwnedResource>,
    patience: Duration,
) -> Result<Vec<String>, CloudError> {
    let mut last_progress = Instant::now();
    let mut delay = Duration::from_millis(500);
    let mut refused = Vec::new();
    let mut waiting = Waiting::new("down", "the cluster's resources to go", remaining.iter().map(label));
    while !remaining.is_empty() {
        let before = remaining.len();
        let blocked = pass(aws, std::mem::take(&mut remaining), &mut refused, &mut waiting).await?;
        if blocked.len() < before {
            last_progress = Instant::now();
            delay = Duration::from_millis(500);
        } else if last_progress.elapsed() >= patience {
            let left = blocked.iter().map(|(r, why)| format!("{} {} ({why})", r.kind.label(), r.id)).collect();
            let what = "the teardown to make progress".into();
            return Err(CloudError::TimedOut { what, seconds: patience.as_secs(), left });
        }
        if !blocked.is_empty() {
            tracing::info!("down: {} resource(s) not deletable yet; retrying in {delay:?}", blocked.len());
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
        remaining = blocked.into_iter().map(|(r, _)| r).collect();
    }
    Ok(refused)
}

/// One attempt at every remaining resource; returns those that must wait, with the reason,
/// and adds those that cannot be deleted to `refused`.
async fn pass(
    aws: &Aws,
    remaining: Vec<OwnedResource>,
    refused: &mut Vec<String>,
    waiting: &mut Waiting,
) -> Result<Vec<(OwnedResource, String)>, CloudError> {
    let mut blocked = Vec::new();
    let mut ranks: Vec<usize> = remaining.iter().map(|r| r.kind.deletion_rank()).collect();
    ranks.dedup();
    for current in ranks {
        let batch: Vec<&OwnedResource> = remaining.iter().filter(|r| r.kind.deletion_rank() == current).collect();
        let outcomes = join_all(batch.iter().map(|r| delete_one(aws, r))).await;
        for (resource, outcome) in batch.into_iter().zip(outcomes) {
            match outcome {
                Ok(Progress::Done) => {
                    waiting.set(&label(resource), "deleted", true);
                    tracing::info!("down: deleted {} {} {}", resource.kind.label(), resource.id, resource.name)
                }
                Ok(Progress::Later(why)) => {
                    waiting.set(&label(resource), &why, false);
                    blocked.push((resource.clone(), why));
                }
                Err(e @ CloudError::Api { .. }) => {
                    waiting.set(&label(resource), "cannot be deleted", true);
                    tracing::warn!("down: cannot delete {} {}: {e}", resource.kind.label(), resource.id);
                    refused.push(format!("{} {}: {e}", resource.kind.label(), resource.id));
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(blocked)
}

fn label(resource: &OwnedResource) -> String {
    format!("{} {}", resource.kind.label(), resource.id)
}

async fn delete_one(aws: &Aws, r: &OwnedResource) -> Result<Progress, CloudError> {
    let id = r.id.as_str();
    let ec2 = &aws.ec2();
    let result = match r.kind {
        Kind::Instance => return terminate(aws, id).await,
        Kind::LoadBalancer => return delete_load_balancer(aws, id).await,
        Kind::Listener => aws.elb().delete_listener().listener_arn(id).send().await.api("DeleteListener").map(drop),
        Kind::TargetGroup => {
            aws.elb().delete_target_group().target_group_arn(id).send().await.api("DeleteTargetGroup").map(drop)
        }
        Kind::KeyPair => ec2.delete_key_pair().key_name(id).send().await.api("DeleteKeyPair").map(drop),
        Kind::SecurityGroup => {
            ec2.delete_security_group().group_id(id).send().await.api("DeleteSecurityGroup").map(drop)
        }
        Kind::RouteTable => delete_route_table(aws, id).await,
        Kind::InternetGateway => delete_internet_gateway(aws, id).await,
        Kind::Subnet => return delete_subnet(aws, id).await,
        Kind::DhcpOptions => delete_dhcp_options(aws, id).await,
        Kind::Vpc => ec2.delete_vpc().vpc_id(id).send().await.api("DeleteVpc").map(drop),
    };
    classify(result)
}

fn classify(result: Result<(), CloudError>) -> Result<Progress, CloudError> {
    match result {
        Ok(()) => Ok(Progress::Done),
        Err(e) if e.is_gone() => Ok(Progress::Done),
        Err(e) if e.code().is_some_and(|c| LATER.contains(&c)) => Ok(Progress::Later(e.to_string())),
        Err(e) => Err(e),
    }
}

/// Terminated counts as gone; until then the instance holds its subnet, group and key.
async fn terminate(aws: &Aws, id: &str) -> Result<Progress, CloudError> {
    if let Progress::Later(why) =
        classify(aws.ec2().terminate_instances().instance_ids(id).send().await.api("TerminateInstances").map(drop))?
    {
        return Ok(Progress::Later(why));
    }
    let out = aws.ec2().describe_instances().instance_ids(id).send().await.api("DescribeInstances");
    let state = match out {
        Ok(out) => out.reservations().iter().flat_map(|r| r.instances()).find_map(|i| i.state()?.name().cloned()),
        Err(e) => return classify(Err(e)),
    };
    Ok(match state {
        None | Some(InstanceStateName::Terminated) => Progress::Done,
        Some(state) => Progress::Later(format!("instance is {}", state.as_str())),
    })
}

/// A load balancer is gone when it is no longer listed and its network interfaces, which AWS
/// releases minutes later, have left the subnet.
async fn delete_load_balancer(aws: &Aws, arn: &str) -> Result<Progress, CloudError> {
    let deleted = classify(
        aws.elb().delete_load_balancer().load_balancer_arn(arn).send().await.api("DeleteLoadBalancer").map(drop),
    )?;
    if let Progress::Later(why) = deleted {
        return Ok(Progress::Later(why));
    }
    match aws.elb().describe_load_balancers().load_balancer_arns(arn).send().await.api("DescribeLoadBalancers") {
        Ok(out) if !out.load_balancers().is_empty() => {
            return Ok(Progress::Later("load balancer is being deleted".into()))
        }
        Ok(_) => {}
        Err(e) if e.code() == Some("LoadBalancerNotFound") => {}
        Err(e) => return Err(e),
    }
    let suffix = arn.split_once(":loadbalancer/").map_or(arn, |(_, s)| s);
    let interfaces = aws
        .ec2()
        .describe_network_interfaces()
        .filters(Filter::builder().name("description").values(format!("ELB {suffix}")).build())
        .send()
        .await
        .api("DescribeNetworkInterfaces")?;
    let left: Vec<&str> = interfaces.network_interfaces().iter().filter_map(|i| i.network_interface_id()).collect();
    if left.is_empty() {
        Ok(Progress::Done)
    } else {
        Ok(Progress::Later(format!("its network interfaces {} are still there", left.join(", "))))
    }
}

async fn delete_route_table(aws: &Aws, id: &str) -> Result<(), CloudError> {
    let tables = aws.ec2().describe_route_tables().route_table_ids(id).send().await.api("DescribeRouteTables")?;
    for association in tables.route_tables().iter().flat_map(|t| t.associations()) {
        if association.main() != Some(true) {
            let association_id = association.route_table_association_id().unwrap_or_default();
            aws.ec2()
                .disassociate_route_table()
                .association_id(association_id)
                .send()
                .await
                .api("DisassociateRouteTable")?;
        }
    }
    aws.ec2().delete_route_table().route_table_id(id).send().await.api("DeleteRouteTable").map(drop)
}

async fn delete_internet_gateway(aws: &Aws, id: &str) -> Result<(), CloudError> {
    let gateways =
        aws.ec2().describe_internet_gateways().internet_gateway_ids(id).send().await.api("DescribeInternetGateways")?;
    for vpc in gateways.internet_gateways().iter().flat_map(|g| g.attachments()).filter_map(|a| a.vpc_id()) {
        aws.ec2()
            .detach_internet_gateway()
            .internet_gateway_id(id)
            .vpc_id(vpc)
            .send()
            .await
            .api("DetachInternetGateway")?;
    }
    aws.ec2().delete_internet_gateway().internet_gateway_id(id).send().await.api("DeleteInternetGateway").map(drop)
}

/// When the subnet is still in use, the reason names the network interfaces in it.
async fn delete_subnet(aws: &Aws, id: &str) -> Result<Progress, CloudError> {
    let progress = classify(aws.ec2().delete_subnet().subnet_id(id).send().await.api("DeleteSubnet").map(drop))?;
    let Progress::Later(why) = progress else { return Ok(progress) };
    let interfaces = aws
        .ec2()
        .describe_network_interfaces()
        .filters(Filter::builder().name("subnet-id").values(id).build())
        .send()
        .await
        .api("DescribeNetworkInterfaces")?;
    let ids: Vec<&str> = interfaces.network_interfaces().iter().filter_map(|i| i.network_interface_id()).collect();
    Ok(Progress::Later(if ids.is_empty() {
        why
    } else {
        format!("network interfaces still in it: {}", ids.join(", "))
    }))
}

/// The VPC goes back to the `default` option set first, as AWS requires.
async fn delete_dhcp_options(aws: &Aws, id: &str) -> Result<(), CloudError> {
    let vpcs = aws
        .ec2()
        .describe_vpcs()
        .filters(Filter::builder().name("dhcp-options-id").values(id).build())
        .send()
        .await
        .api("DescribeVpcs")?;
    for vpc in vpcs.vpcs().iter().filter_map(|v| v.vpc_id()) {
        aws.ec2()
            .associate_dhcp_options()
            .dhcp_options_id("default")
            .vpc_id(vpc)
            .send()
            .await
            .api("AssociateDhcpOptions")?;
    }
    aws.ec2().delete_dhcp_options().dhcp_options_id(id).send().await.api("DeleteDhcpOptions").map(drop)
}
