//! `groundup-check`: whether the network lets the cluster work. Read-only: it describes the
//! security groups, the subnet's route table and network ACL, the cluster's instances, and
//! the load balancer's listener and target group (targets, health check), then evaluates every flow of the policy table ([`groundup_network::reach`]). Not a
//! pipeline step: its stdout is the report (a table, or JSON with `--json`), and it exits 1
//! when a flow is blocked or a port is open to the internet beyond the policy.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use aws_sdk_ec2::types::{Filter, RuleAction};
use clap::Parser;
use groundup_cloud::{Aws, AwsResultExt, CloudError, CLUSTER_TAG};
use groundup_contracts::context::need;
use groundup_contracts::infra::Node;
use groundup_contracts::{Context, Section};
use groundup_network::instance_groups;
use groundup_network::reach::{
    self, AclEntry, Answer, Balancer, Described, Group, Instance, Report, Route, Rule, Source, Target,
};
use groundup_runtime::harness::{init_logging, read_context};
use groundup_runtime::StepError;

#[derive(Parser, Debug)]
#[command(name = "groundup-check", about = "Check, read-only, that the network carries every flow the cluster needs")]
struct Cli {
    /// The context (a state file); stdin when not given
    #[arg(long, value_name = "FILE")]
    context: Option<PathBuf>,
    /// The report as JSON, for scripts
    #[arg(long)]
    json: bool,
    /// Allow real AWS, when the context's target is `aws` (as GROUNDUP_ALLOW_AWS=1 does)
    #[arg(long)]
    aws: bool,
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    if cli.aws {
        // Checked where the AWS clients are built.
        groundup_contracts::context::allow_aws();
    }
    match check(&cli) {
        Ok(report) => {
            let text = if cli.json {
                serde_json::to_string_pretty(&report).expect("the report serializes") + "\n"
            } else {
                table(&report)
            };
            let mut stdout = std::io::stdout().lock();
            if let Err(e) = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
                eprintln!("groundup-check: error: cannot write the report on stdout: {e}");
                return ExitCode::from(1);
            }
            let blocked = report.flows.iter().filter(|v| matches!(v.answer, Answer::Blocked { .. })).count();
            eprintln!(
                "groundup-check: {} flow(s): {} allowed, {blocked} blocked; {} port(s) open to the internet beyond the policy; {} load balancer problem(s)",
                report.flows.len(),
                report.flows.len() - blocked,
                report.openings.len(),
                report.load_balancer.len()
            );
            if report.passes() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("groundup-check: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn check(cli: &Cli) -> Result<Report, StepError> {
    let context = read_context(cli.context.as_ref())?;
    let nodes = need(&context.compute, Section::Compute)?.nodes.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StepError::new(format!("cannot start the async runtime: {e}")))?;
    let described = runtime.block_on(async {
        let aws = Aws::connect(&context, "check").await?;
        describe(&aws, &context, &nodes).await.map_err(|e| e.into_step_error(aws.target()))
    })?;
    Ok(reach::evaluate(&context.params, &nodes, &described))
}

fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder().name(name).set_values(Some(values.iter().map(ToString::to_string).collect())).build()
}

async fn describe(aws: &Aws, context: &Context, nodes: &[Node]) -> Result<Described, CloudError> {
    // An applied context holds known ids only (`Context::validate`): this is the subnet's id.
    let subnet_id = need(&context.subnet, Section::Subnet)?.id.to_string();
    let subnet_id = subnet_id.as_str();
    let instances = aws
        .ec2()
        .describe_instances()
        .filters(filter(&format!("tag:{CLUSTER_TAG}"), &[&context.cluster.name]))
        .filters(filter("instance-state-name", &["pending", "running"]))
        .send()
        .await
        .api("DescribeInstances")?;
    let instances: Vec<Instance> = instances
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| {
            Some(Instance {
                id: i.instance_id()?.to_string(),
                private_ip: i.private_ip_address()?.parse().ok()?,
                groups: instance_groups(i),
                source_dest_check: i.source_dest_check().unwrap_or(true),
                network_interface: i
                    .network_interfaces()
                    .first()
                    .and_then(|n| n.network_interface_id().map(String::from)),
            })
        })
        .filter(|i| nodes.iter().any(|n| n.private_ip == i.private_ip))
        .collect();
    let mut group_ids: Vec<&str> = instances.iter().flat_map(|i| i.groups.iter().map(String::as_str)).collect();
    group_ids.sort_unstable();
    group_ids.dedup();
    let groups = if group_ids.is_empty() {
        Vec::new()
    } else {
        let out = aws
            .ec2()
            .describe_security_groups()
            .set_group_ids(Some(group_ids.iter().map(ToString::to_string).collect()))
            .send()
            .await
            .api("DescribeSecurityGroups")?;
        out.security_groups().iter().map(group).collect()
    };
    let tables = aws
        .ec2()
        .describe_route_tables()
        .filters(filter("association.subnet-id", &[subnet_id]))
        .send()
        .await
        .api("DescribeRouteTables")?;
    let routes = tables.route_tables().first().map_or_else(Vec::new, |t| t.routes().iter().filter_map(route).collect());
    let acls = aws
        .ec2()
        .describe_network_acls()
        .filters(filter("association.subnet-id", &[subnet_id]))
        .send()
        .await
        .api("DescribeNetworkAcls")?;
    let acl = acls.network_acls().first().map_or_else(Vec::new, |a| {
        a.entries()
            .iter()
            .filter(|e| e.egress() == Some(false))
            .filter_map(|e| {
                Some(AclEntry {
                    number: e.rule_number()?,
                    protocol: e.protocol()?.to_string(),
                    ports: e.port_range().map(|p| (p.from().unwrap_or(0), p.to().unwrap_or(65535))),
                    cidr: e.cidr_block()?.parse().ok()?,
                    allow: e.rule_action() == Some(&RuleAction::Allow),
                })
            })
            .collect()
    });
    let balancer = match &context.nlb {
        Some(nlb) => Some(balancer(aws, &nlb.listener_arn.to_string(), &nlb.target_group_arn.to_string()).await?),
        None => None,
    };
    Ok(Described { vpc_cidr: context.vpc.as_ref().map(|v| v.cidr), groups, instances, routes, acl, balancer })
}

/// The listener and the target group, with its targets and health check.
async fn balancer(aws: &Aws, listener_arn: &str, group_arn: &str) -> Result<Balancer, CloudError> {
    let listeners = aws.elb().describe_listeners().listener_arns(listener_arn).send().await.api("DescribeListeners")?;
    let listener = listeners.listeners().first();
    let groups =
        aws.elb().describe_target_groups().target_group_arns(group_arn).send().await.api("DescribeTargetGroups")?;
    let group = groups.target_groups().first();
    let health =
        aws.elb().describe_target_health().target_group_arn(group_arn).send().await.api("DescribeTargetHealth")?;
    Ok(Balancer {
        listener_port: listener.and_then(|l| l.port()),
        forwards_to: listener
            .map(|l| l.default_actions().iter().filter_map(|a| a.target_group_arn().map(String::from)).collect())
            .unwrap_or_default(),
        target_group_arn: group_arn.to_string(),
        targets: health
            .target_health_descriptions()
            .iter()
            .filter_map(|d| Some((d.target()?.id()?.to_string(), d.target()?.port()?)))
            .collect(),
        health_check_protocol: group.and_then(|g| g.health_check_protocol()).map(|p| p.as_str().to_string()),
        health_check_path: group.and_then(|g| g.health_check_path()).map(String::from),
    })
}

fn group(g: &aws_sdk_ec2::types::SecurityGroup) -> Group {
    let rules = g
        .ip_permissions()
        .iter()
        .flat_map(|p| {
            let (protocol, from_port, to_port) =
                (p.ip_protocol().unwrap_or("-1").to_string(), p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
            let sources = p
                .ip_ranges()
                .iter()
                .filter_map(|r| r.cidr_ip()?.parse().ok().map(Source::Cidr))
                .chain(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6().map(|c| Source::Cidr6(c.to_string()))))
                .chain(
                    p.user_id_group_pairs()
                        .iter()
                        .filter_map(|pair| pair.group_id().map(|id| Source::Group(id.to_string()))),
                )
                .collect::<Vec<_>>();
            sources.into_iter().map(move |source| Rule { protocol: protocol.clone(), from_port, to_port, source })
        })
        .collect();
    Group { id: g.group_id().unwrap_or_default().to_string(), rules }
}

fn route(r: &aws_sdk_ec2::types::Route) -> Option<Route> {
    let destination = r.destination_cidr_block()?.parse().ok()?;
    let blackhole = r.state().is_some_and(|s| s.as_str() == "blackhole");
    let target = match (r.gateway_id(), r.instance_id(), r.network_interface_id()) {
        _ if blackhole => Target::Other("blackhole".into()),
        (Some("local"), ..) => Target::Local,
        (Some(gateway), ..) if gateway.starts_with("igw-") => Target::Gateway(gateway.into()),
        (_, Some(instance), _) => Target::Instance(instance.into()),
        (_, _, Some(interface)) => Target::NetworkInterface(interface.into()),
        (Some(other), ..) => Target::Other(other.into()),
        _ => Target::Other("unknown target".into()),
    };
    Some(Route { destination, target })
}

/// One line per flow, aligned, then the openings.
fn table(report: &Report) -> String {
    let rows: Vec<[String; 6]> = report
        .flows
        .iter()
        .map(|v| {
            let (answer, detail) = match &v.answer {
                Answer::Allowed { rule } => ("allowed".to_string(), rule.clone()),
                Answer::Blocked { at, why } => (format!("blocked ({at})"), why.clone()),
            };
            [v.flow.to_string(), v.from.clone(), v.to.clone(), v.ports.clone(), answer, detail]
        })
        .collect();
    let header = ["FLOW", "FROM", "TO", "PORTS", "ANSWER", "BY"].map(String::from);
    let widths: Vec<usize> =
        (0..5).map(|c| rows.iter().chain([&header]).map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = (0..5).map(|c| format!("{:<w$}", row[c], w = widths[c])).collect();
        out.push_str(&format!("{}  {}\n", cells.join("  "), row[5]));
    }
    for opening in &report.openings {
        out.push_str(&format!("open to the internet beyond the policy: {} {}\n", opening.group, opening.rule));
    }
    for problem in &report.load_balancer {
        out.push_str(&format!("load balancer: {problem}\n"));
    }
    out
}
