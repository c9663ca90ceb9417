//! Course sections "Network Load Balancer", "Target Group" and "K8s Public Address": an
//! internet-facing NLB in the subnet, a TCP target group with the masters' IPs, a listener on
//! the API port, and the NLB's DNS name as the cluster's public address. Each resource kind
//! has its module (`balancer.rs`: the NLB and its listener; `targets.rs`: the target group),
//! and `reservations.rs` keeps the node addresses from the NLB's interface.

mod balancer;
mod reservations;
mod targets;

use std::net::Ipv4Addr;
use std::process::ExitCode;

use clap::Args;
use groundup_cloud::{converge, converge_parts, run_aws_step};
use groundup_contracts::context::need;
use groundup_contracts::infra::NlbSection;
use groundup_contracts::Section;
use groundup_runtime::harness::StepInfo;

use balancer::{WantedBalancer, WantedListener};
use reservations::NodeAddresses;
use targets::WantedGroup;

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
        let subnet_id = need(&context.subnet, Section::Subnet)?.id.clone();
        let name = context.cluster.name.clone();
        let port = i32::from(context.params.ports.api);
        let recorded = context.nlb.as_ref();
        let nodes: Vec<Ipv4Addr> =
            context.params.masters.iter().chain(&context.params.workers).map(|n| n.private_ip).collect();
        let recorded_reservations = recorded.map(|n| n.reservations.clone()).unwrap_or_default();
        let addresses = NodeAddresses { subnet_id: subnet_id.clone(), nodes, recorded: recorded_reservations };
        let reservations = addresses.ours(&converge_parts(&aws, &addresses).await?);
        let balancer = WantedBalancer { name: name.clone(), subnet_id };
        let balancer = converge(&aws, &balancer, recorded.map(|n| &n.arn)).await?;
        let group = WantedGroup {
            name,
            vpc_id: need(&context.vpc, Section::Vpc)?.id.clone(),
            port,
            masters: context.params.masters.iter().map(|n| n.private_ip).collect(),
            health_check: context.params.health_check,
        };
        let group_arn = converge(&aws, &group, recorded.map(|n| &n.target_group_arn)).await?.id();
        let balancer_arn = balancer.id();
        let listener = WantedListener { balancer_arn: balancer_arn.clone(), group_arn: group_arn.clone(), port };
        let listener = converge(&aws, &listener, recorded.map(|n| &n.listener_arn)).await?;
        if args.wait {
            groundup_cluster::balancer::wait_active(&aws, "nlb", &balancer_arn).await?;
        }
        context.nlb = Some(NlbSection {
            dns_name: balancer.value("nlb", "DNS name", |b| b.dns_name())?,
            arn: balancer_arn,
            target_group_arn: group_arn,
            listener_arn: listener.id(),
            targets: group.masters,
            reservations,
        });
        Ok(context)
    })
}
