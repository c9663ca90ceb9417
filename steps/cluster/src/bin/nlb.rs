//! Course sections "Network Load Balancer", "Target Group" and "K8s Public Address": an
//! internet-facing NLB in the subnet, a TCP target group with the masters' IPs, a listener on
//! the API port, and the NLB's DNS name as the cluster's public address.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::ExitCode;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, IpAddressType, Listener, LoadBalancer, LoadBalancerSchemeEnum, LoadBalancerTypeEnum,
    ProtocolEnum, TargetDescription, TargetGroup, TargetTypeEnum,
};
use clap::Args;
use groundup_cloud::{
    find_or_create, owned_by_name, retry_eventual, run_aws_step, Attempt, Aws, AwsResultExt, CloudError, Wanted,
};
use groundup_cluster::{balancer, reservation_changes, Reservation, RESERVATION_DESCRIPTION};
use groundup_contracts::context::need;
use groundup_contracts::infra::NlbSection;
use groundup_contracts::kinds::Kind;
use groundup_contracts::plan::{is_planned_id, planned_id};
use groundup_contracts::Section;
use groundup_runtime::harness::StepInfo;
use ipnet::Ipv4Net;

#[derive(Args, Debug)]
struct NlbArgs {
    /// Wait (up to 10 minutes) until the load balancer is active (`groundup up --wait` has
    /// `groundup-compute --wait` do it instead, while the instances start)
    #[arg(long)]
    wait: bool,
}

fn main() -> ExitCode {
    let info = StepInfo { name: "nlb", about: "Create (or find) the API load balancer, its target group and listener" };
    run_aws_step(info, |mut context, args: NlbArgs, aws| async move {
        let vpc_id = need(&context.vpc, Section::Vpc)?.id.clone();
        let subnet_id = need(&context.subnet, Section::Subnet)?.id.clone();
        let name = context.cluster.name.clone();
        let port = i32::from(context.params.ports.api);
        let nodes: Vec<Ipv4Addr> =
            context.params.masters.iter().chain(&context.params.workers).map(|n| n.private_ip).collect();
        let recorded = context.nlb.as_ref();
        let reserved = recorded.map_or(&[][..], |n| n.reservations.as_slice());
        let reservations = reserve_node_addresses(&aws, &subnet_id, &nodes, reserved).await?;
        let wanted = Wanted::new(Kind::LoadBalancer, "nlb").recorded(recorded.map(|n| n.arn.as_str()));
        let balancer = find_or_create(
            &aws,
            wanted,
            || find_balancer(&aws, &name),
            |attempt| create_balancer(&aws, &name, &subnet_id, attempt),
        )
        .await?;
        let wanted =
            Wanted::new(Kind::TargetGroup, "target-group").recorded(recorded.map(|n| n.target_group_arn.as_str()));
        let group = find_or_create(
            &aws,
            wanted,
            || find_group(&aws, &name),
            |attempt| create_group(&aws, &name, &vpc_id, port, attempt),
        )
        .await?;
        let balancer_arn = balancer.load_balancer_arn().unwrap_or_default().to_string();
        let group_arn = group.target_group_arn().unwrap_or_default().to_string();
        let masters: Vec<Ipv4Addr> = context.params.masters.iter().map(|n| n.private_ip).collect();
        converge_targets(&aws, &group_arn, &masters, port).await?;
        let wanted = Wanted::new(Kind::Listener, "listener").recorded(recorded.map(|n| n.listener_arn.as_str()));
        let listener = find_or_create(
            &aws,
            wanted,
            || find_listener(&aws, &balancer_arn, port),
            |attempt| create_listener(&aws, &balancer_arn, &group_arn, port, attempt),
        )
        .await?;
        ensure_forwarding(&aws, &listener, &group_arn).await?;
        if args.wait && !aws.planning() {
            balancer::wait_active(&aws, "nlb", &balancer_arn).await?;
        }
        context.nlb = Some(NlbSection {
            arn: balancer_arn,
            dns_name: balancer.dns_name().map_or_else(|| planned_id("nlb"), String::from),
            target_group_arn: group_arn,
            listener_arn: listener.listener_arn().unwrap_or_default().to_string(),
            targets: masters,
            reservations,
        });
        Ok(context)
    })
}

/// Explicit reservations: AWS assigns no address from them on its own, so the load balancer's
/// interface can never take a node's address; instances may still ask for them by name. They
/// follow the node set: stale ones of ours go first, since AWS refuses overlapping blocks and
/// a changed node set aggregates into other blocks. Returns the reservations of ours.
async fn reserve_node_addresses(
    aws: &Aws,
    subnet_id: &str,
    nodes: &[Ipv4Addr],
    recorded: &[Ipv4Net],
) -> Result<Vec<Ipv4Net>, CloudError> {
    let existing = reservations(aws, subnet_id, recorded).await?;
    if let Some(plan) = &aws.plan {
        if existing.iter().any(|r| r.ours) {
            plan.found("address reservations", "node-addresses", subnet_id, true);
        } else {
            plan.missing("address reservations", "node-addresses");
        }
    }
    let changes = reservation_changes(nodes, &existing);
    for stale in &changes.delete {
        let (id, cidr) = (stale.id.as_str(), stale.cidr);
        aws.change(
            "node-addresses",
            &format!("remove the reservation of {cidr} from {subnet_id}"),
            |dry_run| async move {
                aws.ec2
                    .delete_subnet_cidr_reservation()
                    .dry_run(dry_run)
                    .subnet_cidr_reservation_id(id)
                    .send()
                    .await
                    .api("DeleteSubnetCidrReservation")
            },
        )
        .await?;
    }
    for block in &changes.create {
        let cidr = block.to_string();
        aws.change("node-addresses", &format!("reserve {cidr} in {subnet_id} for the nodes"), |dry_run| async move {
            aws.ec2
                .create_subnet_cidr_reservation()
                .dry_run(dry_run)
                .subnet_id(subnet_id)
                .cidr(&cidr)
                .reservation_type(aws_sdk_ec2::types::SubnetCidrReservationType::Explicit)
                .description(RESERVATION_DESCRIPTION)
                .send()
                .await
                .api("CreateSubnetCidrReservation")
        })
        .await?;
    }
    Ok(changes.ours)
}

/// The subnet's IPv4 reservations; ours carry our description, or (where the target keeps no
/// description) are the ones the context records.
async fn reservations(aws: &Aws, subnet_id: &str, recorded: &[Ipv4Net]) -> Result<Vec<Reservation>, CloudError> {
    if is_planned_id(subnet_id) {
        return Ok(Vec::new());
    }
    let existing =
        aws.ec2.get_subnet_cidr_reservations().subnet_id(subnet_id).send().await.api("GetSubnetCidrReservations")?;
    Ok(existing
        .subnet_ipv4_cidr_reservations()
        .iter()
        .filter_map(|r| {
            let cidr: Ipv4Net = r.cidr()?.parse().ok()?;
            let ours = r.description() == Some(RESERVATION_DESCRIPTION) || recorded.contains(&cidr);
            Some(Reservation { id: r.subnet_cidr_reservation_id()?.to_string(), cidr, ours })
        })
        .collect())
}

async fn find_balancer(aws: &Aws, name: &str) -> Result<Vec<LoadBalancer>, CloudError> {
    let found = match aws.elb.describe_load_balancers().names(name).send().await.api("DescribeLoadBalancers") {
        Ok(out) => out.load_balancers().to_vec(),
        Err(e) if e.code() == Some("LoadBalancerNotFound") => Vec::new(),
        Err(e) => return Err(e),
    };
    owned_by_name(aws, "load balancer", "nlb", found).await
}

/// ELBv2 has no client tokens: the name makes the call idempotent on AWS.
async fn create_balancer(aws: &Aws, name: &str, subnet_id: &str, _: Attempt) -> Result<LoadBalancer, CloudError> {
    let out = aws
        .elb
        .create_load_balancer()
        .name(name)
        .subnets(subnet_id)
        .scheme(LoadBalancerSchemeEnum::InternetFacing)
        .r#type(LoadBalancerTypeEnum::Network)
        .ip_address_type(IpAddressType::Ipv4)
        .set_tags(Some(aws.identity.elb_tags("nlb", name)))
        .send()
        .await
        .api("CreateLoadBalancer")?;
    out.load_balancers()
        .first()
        .cloned()
        .ok_or_else(|| CloudError::Conflict("CreateLoadBalancer returned nothing".into()))
}

async fn find_group(aws: &Aws, name: &str) -> Result<Vec<TargetGroup>, CloudError> {
    let found = match aws.elb.describe_target_groups().names(name).send().await.api("DescribeTargetGroups") {
        Ok(out) => out.target_groups().to_vec(),
        Err(e) if e.code() == Some("TargetGroupNotFound") => Vec::new(),
        Err(e) => return Err(e),
    };
    owned_by_name(aws, "target group", "target-group", found).await
}

async fn create_group(aws: &Aws, name: &str, vpc_id: &str, port: i32, _: Attempt) -> Result<TargetGroup, CloudError> {
    let out = aws
        .elb
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Tcp)
        .port(port)
        .vpc_id(vpc_id)
        .target_type(TargetTypeEnum::Ip)
        .set_tags(Some(aws.identity.elb_tags("target-group", name)))
        .send()
        .await
        .api("CreateTargetGroup")?;
    out.target_groups()
        .first()
        .cloned()
        .ok_or_else(|| CloudError::Conflict("CreateTargetGroup returned nothing".into()))
}

/// Registers the missing masters and deregisters everything else.
async fn converge_targets(aws: &Aws, group_arn: &str, masters: &[Ipv4Addr], port: i32) -> Result<(), CloudError> {
    let registered = registered_targets(aws, group_arn).await?;
    let wanted: BTreeSet<String> = masters.iter().map(ToString::to_string).collect();
    let target = |ip: &String| TargetDescription::builder().id(ip).port(port).build();
    let missing: Vec<TargetDescription> = wanted.difference(&registered).map(target).collect();
    let extra: Vec<TargetDescription> = registered.difference(&wanted).map(target).collect();
    if !extra.is_empty() {
        aws.change_without_dry_run("target-group", &format!("deregister {}", ids(&extra)), || async {
            aws.elb
                .deregister_targets()
                .target_group_arn(group_arn)
                .set_targets(Some(extra.clone()))
                .send()
                .await
                .api("DeregisterTargets")
        })
        .await?;
    }
    if !missing.is_empty() {
        aws.change_without_dry_run("target-group", &format!("register {}", ids(&missing)), || async {
            aws.elb
                .register_targets()
                .target_group_arn(group_arn)
                .set_targets(Some(missing.clone()))
                .send()
                .await
                .api("RegisterTargets")
        })
        .await?;
    }
    Ok(())
}

async fn registered_targets(aws: &Aws, group_arn: &str) -> Result<BTreeSet<String>, CloudError> {
    if is_planned_id(group_arn) {
        return Ok(BTreeSet::new());
    }
    let health = retry_eventual(|| async {
        aws.elb.describe_target_health().target_group_arn(group_arn).send().await.api("DescribeTargetHealth")
    })
    .await?;
    Ok(health.target_health_descriptions().iter().filter_map(|d| d.target()?.id().map(String::from)).collect())
}

fn ids(targets: &[TargetDescription]) -> String {
    targets.iter().filter_map(|t| t.id()).collect::<Vec<_>>().join(", ")
}

async fn find_listener(aws: &Aws, balancer_arn: &str, port: i32) -> Result<Vec<Listener>, CloudError> {
    if is_planned_id(balancer_arn) {
        return Ok(Vec::new());
    }
    let out = retry_eventual(|| async {
        aws.elb.describe_listeners().load_balancer_arn(balancer_arn).send().await.api("DescribeListeners")
    })
    .await?;
    Ok(out.listeners().iter().filter(|l| l.port() == Some(port)).cloned().collect())
}

async fn create_listener(
    aws: &Aws,
    balancer_arn: &str,
    group_arn: &str,
    port: i32,
    _: Attempt,
) -> Result<Listener, CloudError> {
    let out = aws
        .elb
        .create_listener()
        .load_balancer_arn(balancer_arn)
        .protocol(ProtocolEnum::Tcp)
        .port(port)
        .default_actions(forward(group_arn))
        .set_tags(Some(aws.identity.elb_tags("listener", &aws.identity.cluster)))
        .send()
        .await
        .api("CreateListener")?;
    out.listeners().first().cloned().ok_or_else(|| CloudError::Conflict("CreateListener returned nothing".into()))
}

fn forward(group_arn: &str) -> Action {
    Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(group_arn).build()
}

/// A listener found on the API port must forward to the cluster's target group and nowhere else.
async fn ensure_forwarding(aws: &Aws, listener: &Listener, group_arn: &str) -> Result<(), CloudError> {
    let arn = listener.listener_arn().unwrap_or_default();
    let forwards_to: Vec<&str> = listener.default_actions().iter().filter_map(|a| a.target_group_arn()).collect();
    if is_planned_id(arn) || forwards_to == [group_arn] {
        return Ok(());
    }
    aws.change_without_dry_run("listener", &format!("forward to {group_arn}"), || async {
        aws.elb
            .modify_listener()
            .listener_arn(arn)
            .default_actions(forward(group_arn))
            .send()
            .await
            .api("ModifyListener")
    })
    .await?;
    Ok(())
}
