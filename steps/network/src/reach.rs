//! Reachability, as AWS's Reachability Analyzer answers it, but only over what the describe
//! calls return: every flow of the policy table (`groundup_contracts::flows`) from each of its
//! sources to each of its nodes is `allowed` by a security-group rule, or `blocked` where it
//! stops: a route, the subnet's network ACL, the instance, or its security groups. Pure, so
//! that the emulator (which moves no packets) and real AWS get the same answers.

use std::net::Ipv4Addr;

use groundup_contracts::flows::{anywhere, Peer, PortSpec, Role, FLOWS};
use groundup_contracts::infra::{node_logical_name, Node, Role as NodeRole};
use groundup_contracts::network::{IngressRule, RuleSource};
use groundup_contracts::params::HEALTH_CHECK_PATH;
use groundup_contracts::Params;
use ipnet::Ipv4Net;
use serde::Serialize;

/// Where a security-group rule admits traffic from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Cidr(Ipv4Net),
    /// An IPv6 range, kept as text: only `::/0` matters, as an opening.
    Cidr6(String),
    /// Instances in this group.
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `tcp`, `udp`, `icmp`, `-1` or a protocol number.
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub private_ip: Ipv4Addr,
    pub groups: Vec<String>,
    pub source_dest_check: bool,
    pub network_interface: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Inside the VPC.
    Local,
    /// An internet gateway.
    Gateway(String),
    Instance(String),
    NetworkInterface(String),
    /// Anything else, a blackhole included.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: Ipv4Net,
    pub target: Target,
}

/// One inbound entry of the subnet's network ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    pub number: i32,
    /// A protocol number, or `-1` for all.
    pub protocol: String,
    /// `None`: every port.
    pub ports: Option<(i32, i32)>,
    pub cidr: Ipv4Net,
    pub allow: bool,
}

/// What the describe calls returned.
#[derive(Debug, Clone, Default)]
pub struct Described {
    pub vpc_cidr: Option<Ipv4Net>,
    pub groups: Vec<Group>,
    pub instances: Vec<Instance>,
    /// The routes of the subnet's route table.
    pub routes: Vec<Route>,
    /// The inbound entries of the subnet's network ACL.
    pub acl: Vec<AclEntry>,
    /// The API load balancer, where the cluster has one.
    pub balancer: Option<Balancer>,
}

/// The API load balancer's listener and target group, as ELBv2 describes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Balancer {
    pub listener_port: Option<i32>,
    /// The target groups the listener forwards to.
    pub forwards_to: Vec<String>,
    pub target_group_arn: String,
    /// The registered targets: address and port.
    pub targets: Vec<(String, i32)>,
    pub health_check_protocol: Option<String>,
    pub health_check_path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    Route,
    Nacl,
    Instance,
    SecurityGroup,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stop::Route => "route",
            Stop::Nacl => "NACL",
            Stop::Instance => "instance",
            Stop::SecurityGroup => "security group",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    Allowed { rule: String },
    Blocked { at: Stop, why: String },
}

/// One flow from one source to one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub flow: &'static str,
    pub from: String,
    pub to: String,
    pub ports: String,
    #[serde(flatten)]
    pub answer: Answer,
}

/// A rule open to the whole internet that the policy does not ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Opening {
    pub group: String,
    pub rule: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub flows: Vec<Verdict>,
    pub openings: Vec<Opening>,
    /// What keeps the load balancer from carrying the API to the masters.
    pub load_balancer: Vec<String>,
}

impl Report {
    pub fn passes(&self) -> bool {
        self.openings.is_empty()
            && self.load_balancer.is_empty()
            && self.flows.iter().all(|v| matches!(v.answer, Answer::Allowed { .. }))
    }
}

/// A source of traffic: its label, a sample address, and the node or worker it is, if any.
struct Sample<'a> {
    label: String,
    address: Ipv4Addr,
    /// The node whose own address this is (it may be named by a group reference).
    node: Option<&'a Node>,
    /// The worker whose pod range this is (replies must be routed to it).
    pods_of: Option<&'a Node>,
}

/// A documentation address (TEST-NET-1, RFC 5737) standing for "anyone on the internet".
const SOMEONE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn offset(net: Ipv4Net, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()).saturating_add(n).min(u32::from(net.broadcast())))
}

fn label(node: &Node) -> String {
    format!("{} {}", node_logical_name(node.role, node.index), node.private_ip)
}

fn samples<'a>(peer: Peer, params: &Params, nodes: &'a [Node]) -> Vec<Sample<'a>> {
    let of_node =
        |node: &'a Node| Sample { label: label(node), address: node.private_ip, node: Some(node), pods_of: None };
    let address = |label: &str, address: Ipv4Addr| Sample {
        label: format!("{label} {address}"),
        address,
        node: None,
        pods_of: None,
    };
    match peer {
        Peer::Admin => vec![address("admin", offset(params.admin_cidr, 1))],
        Peer::Subnet => {
            // An address the load balancer may have: the subnet's first one AWS lets out that
            // no node has.
            let lb = (4..).map(|n| offset(params.subnet_cidr, n)).find(|ip| nodes.iter().all(|n| n.private_ip != *ip));
            vec![address("load balancer", lb.expect("a subnet has a free address"))]
        }
        Peer::ControlPlane => nodes.iter().filter(|n| n.role == NodeRole::Master).map(of_node).collect(),
        Peer::Nodes => nodes.iter().map(of_node).collect(),
        Peer::PodRanges => nodes
            .iter()
            .filter_map(|n| n.pod_cidr.map(|cidr| (n, cidr)))
            .map(|(n, cidr)| {
                let address = offset(cidr, 2);
                let label = format!("pods of {} {address}", node_logical_name(n.role, n.index));
                Sample { label, address, node: None, pods_of: Some(n) }
            })
            .collect(),
        Peer::Anywhere => vec![address("internet", SOMEONE)],
    }
}

fn destinations(role: Role, nodes: &[Node]) -> impl Iterator<Item = &Node> {
    nodes.iter().filter(move |n| match role {
        Role::ControlPlane => n.role == NodeRole::Master,
        Role::Workers => n.role == NodeRole::Worker,
        Role::AllNodes => true,
    })
}

/// Every flow of the policy from each of its sources to each of its nodes (a node does not
/// reach itself over the network), and the openings to the internet the policy does not ask for.
pub fn evaluate(params: &Params, nodes: &[Node], described: &Described) -> Report {
    let mut flows = Vec::new();
    for flow in FLOWS {
        let ports = flow.service.ports(params);
        for source in samples(flow.from, params, nodes) {
            for node in destinations(flow.to, nodes) {
                if source.node.is_some_and(|s| s.private_ip == node.private_ip) {
                    continue;
                }
                flows.push(Verdict {
                    flow: flow.name,
                    from: source.label.clone(),
                    to: label(node),
                    ports: ports.to_string(),
                    answer: answer(&ports, &source, node, described),
                });
            }
        }
    }
    let load_balancer = described.balancer.as_ref().map_or_else(Vec::new, |b| balancer_problems(params, nodes, b));
    Report { flows, openings: openings(params, described), load_balancer }
}

fn answer(ports: &PortSpec, source: &Sample, node: &Node, described: &Described) -> Answer {
    let blocked = |at: Stop, why: String| Answer::Blocked { at, why };
    let Some(instance) = described.instances.iter().find(|i| i.private_ip == node.private_ip) else {
        return blocked(Stop::Instance, format!("no running instance has {}", node.private_ip));
    };
    // The reply goes back to the source: outside the VPC through a gateway, to a pod range
    // through its worker, which must forward packets that are not its own.
    if let Some(worker) = source.pods_of {
        let to_worker = described.instances.iter().find(|i| i.private_ip == worker.private_ip);
        let worker_name = node_logical_name(worker.role, worker.index);
        match (longest_prefix(&described.routes, source.address), to_worker) {
            (Some(route), Some(w)) if routes_to(route, w) => {
                if w.source_dest_check {
                    return blocked(Stop::Instance, format!("{worker_name} has its source/dest check on"));
                }
            }
            (route, _) => {
                let pod_cidr = worker.pod_cidr.map(|c| c.to_string()).unwrap_or_default();
                let now =
                    route.map_or("no route".to_string(), |r| format!("{} goes to {}", r.destination, show(&r.target)));
                return blocked(Stop::Route, format!("no route of {pod_cidr} to {worker_name} ({now})"));
            }
        }
    } else if !described.vpc_cidr.is_some_and(|vpc| vpc.contains(&source.address)) {
        match longest_prefix(&described.routes, source.address) {
            Some(Route { target: Target::Gateway(_), .. }) => {}
            route => {
                let now =
                    route.map_or("no route".to_string(), |r| format!("{} goes to {}", r.destination, show(&r.target)));
                return blocked(
                    Stop::Route,
                    format!("replies to {} do not reach an internet gateway ({now})", source.address),
                );
            }
        }
    }
    if let Some(denied) = acl_denies(&described.acl, ports, source.address) {
        return blocked(Stop::Nacl, denied);
    }
    let source_groups: &[String] = source
        .node
        .and_then(|n| described.instances.iter().find(|i| i.private_ip == n.private_ip))
        .map_or(&[], |i| i.groups.as_slice());
    for group in described.groups.iter().filter(|g| instance.groups.contains(&g.id)) {
        for rule in &group.rules {
            let from = match &rule.source {
                Source::Cidr(cidr) => cidr.contains(&source.address),
                Source::Group(id) => source_groups.contains(id),
                Source::Cidr6(_) => false,
            };
            if from && covers(rule, ports) {
                return Answer::Allowed { rule: format!("{} {}", group.id, show_rule(rule)) };
            }
        }
    }
    blocked(
        Stop::SecurityGroup,
        format!("no rule of {} admits {} from {}", instance.groups.join(", "), ports, source.address),
    )
}

fn routes_to(route: &Route, instance: &Instance) -> bool {
    match &route.target {
        Target::Instance(id) => *id == instance.id,
        Target::NetworkInterface(eni) => instance.network_interface.as_ref() == Some(eni),
        _ => false,
    }
}

fn show(target: &Target) -> String {
    match target {
        Target::Local => "local".into(),
        Target::Gateway(id) | Target::Instance(id) | Target::NetworkInterface(id) | Target::Other(id) => id.clone(),
    }
}

/// The most specific route for an address, as the VPC router picks it.
pub fn longest_prefix(routes: &[Route], address: Ipv4Addr) -> Option<&Route> {
    routes.iter().filter(|r| r.destination.contains(&address)).max_by_key(|r| r.destination.prefix_len())
}

/// Protocol names as numbers, as network ACLs give them.
fn protocol_number(protocol: &str) -> &str {
    match protocol {
        "tcp" => "6",
        "udp" => "17",
        "icmp" => "1",
        other => other,
    }
}

/// Whether a security-group rule admits the whole of these ports.
pub fn covers(rule: &Rule, ports: &PortSpec) -> bool {
    let (rule_protocol, wanted) = (protocol_number(&rule.protocol), protocol_number(&ports.protocol));
    if rule_protocol == "-1" {
        return true;
    }
    if rule_protocol != wanted {
        return false;
    }
    match wanted {
        // ICMP: -1 is every type; otherwise the type must match.
        "1" => rule.from_port == -1 || (rule.from_port == ports.from_port && rule.to_port == ports.to_port),
        _ => rule.from_port <= ports.from_port && ports.to_port <= rule.to_port,
    }
}

/// The first entry (by rule number) that matches decides; no match denies. `None` when allowed.
pub fn acl_denies(entries: &[AclEntry], ports: &PortSpec, address: Ipv4Addr) -> Option<String> {
    if entries.is_empty() {
        // The emulator describes no ACL for a subnet that has only the default one, which
        // allows everything.
        return None;
    }
    let mut sorted: Vec<&AclEntry> = entries.iter().collect();
    sorted.sort_by_key(|e| e.number);
    let wanted = protocol_number(&ports.protocol);
    let matched = sorted.into_iter().find(|e| {
        let protocol = e.protocol == "-1" || e.protocol == wanted;
        let in_ports = match (e.ports, wanted) {
            (None, _) | (_, "1") => true,
            (Some(_), "-1") => false,
            (Some((from, to)), _) => from <= ports.from_port && ports.to_port <= to,
        };
        protocol && in_ports && e.cidr.contains(&address)
    });
    match matched {
        Some(e) if e.allow => None,
        Some(e) => Some(format!("entry {} denies {} from {}", e.number, ports, e.cidr)),
        None => Some(format!("no entry allows {ports} from {address}")),
    }
}

fn show_rule(rule: &Rule) -> String {
    let ports = PortSpec { protocol: rule.protocol.clone(), from_port: rule.from_port, to_port: rule.to_port };
    let from = match &rule.source {
        Source::Cidr(cidr) => cidr.to_string(),
        Source::Cidr6(cidr) => cidr.clone(),
        Source::Group(id) => id.clone(),
    };
    format!("{ports} from {from}")
}

/// The listener must forward the API port to the target group, whose targets are exactly the
/// masters on the API port, checked by HTTPS `GET /readyz`.
fn balancer_problems(params: &Params, nodes: &[Node], balancer: &Balancer) -> Vec<String> {
    let api = i32::from(params.ports.api);
    let mut problems = Vec::new();
    if balancer.listener_port != Some(api) {
        let port = balancer.listener_port.map_or("no port".to_string(), |p| format!("port {p}"));
        problems.push(format!("the listener is on {port}, not the API port {api}"));
    }
    if !balancer.forwards_to.contains(&balancer.target_group_arn) {
        problems.push(format!("the listener does not forward to the target group {}", balancer.target_group_arn));
    }
    let masters = nodes.iter().filter(|n| n.role == NodeRole::Master);
    for master in masters.clone() {
        if !balancer.targets.contains(&(master.private_ip.to_string(), api)) {
            problems.push(format!("{} is not a target on port {api}", label(master)));
        }
    }
    for (address, port) in &balancer.targets {
        if !masters.clone().any(|m| (m.private_ip.to_string(), api) == (address.clone(), *port)) {
            problems.push(format!("target {address}:{port} is not a master's API server"));
        }
    }
    let health = (balancer.health_check_protocol.as_deref(), balancer.health_check_path.as_deref());
    if health != (Some("HTTPS"), Some(HEALTH_CHECK_PATH)) {
        problems.push(format!(
            "the health check is {} {}, not HTTPS GET {HEALTH_CHECK_PATH}: an API server that is not ready stays in rotation",
            health.0.unwrap_or("unset"),
            health.1.unwrap_or("")
        ));
    }
    problems
}

/// Rules open to 0.0.0.0/0 or ::/0 that the policy's own rules do not have.
fn openings(params: &Params, described: &Described) -> Vec<Opening> {
    let wanted: Vec<IngressRule> = params.security_groups().into_iter().flat_map(|(_, rules)| rules).collect();
    let everyone = anywhere();
    let used: Vec<&String> = described.instances.iter().flat_map(|i| &i.groups).collect();
    let mut found = Vec::new();
    for group in described.groups.iter().filter(|g| used.contains(&&g.id)) {
        for rule in &group.rules {
            let expected = match &rule.source {
                Source::Cidr(cidr) if *cidr == everyone => wanted.iter().any(|w| {
                    (w.protocol.as_str(), w.from_port, w.to_port, w.source)
                        == (rule.protocol.as_str(), rule.from_port, rule.to_port, RuleSource::Cidr(everyone))
                }),
                Source::Cidr6(cidr) if cidr == "::/0" => false,
                _ => true,
            };
            if !expected {
                found.push(Opening { group: group.id.clone(), rule: show_rule(rule) });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundup_contracts::network::GroupRole;

    fn tcp(from: i32, to: i32) -> PortSpec {
        PortSpec { protocol: "tcp".into(), from_port: from, to_port: to }
    }

    fn rule(protocol: &str, from: i32, to: i32, source: Source) -> Rule {
        Rule { protocol: protocol.into(), from_port: from, to_port: to, source }
    }

    /// The groups as `sg` makes them from params, as the describe call returns them: the
    /// group of each role is `sg-<logical>` (`sg-sg-masters`, or `sg-sg` for the course's).
    fn groups_of(params: &Params) -> Vec<Group> {
        let id = |role: GroupRole| format!("sg-{}", role.logical());
        let rule = |r: IngressRule| Rule {
            protocol: r.protocol,
            from_port: r.from_port,
            to_port: r.to_port,
            source: match r.source {
                RuleSource::Cidr(cidr) => Source::Cidr(cidr),
                RuleSource::Group(role) => Source::Group(id(role)),
            },
        };
        params
            .security_groups()
            .into_iter()
            .map(|(role, rules)| Group { id: id(role), rules: rules.into_iter().map(rule).collect() })
            .collect()
    }

    /// Each instance in the group of its role.
    fn place(params: &Params, nodes: &[Node], described: &mut Described) {
        described.groups = groups_of(params);
        let groups = params.security_groups();
        for (instance, node) in described.instances.iter_mut().zip(nodes) {
            let (role, _) = groups.iter().find(|(role, _)| role.holds(node.role)).unwrap();
            instance.groups = vec![format!("sg-{}", role.logical())];
        }
    }

    fn cidr(text: &str) -> Source {
        Source::Cidr(text.parse().unwrap())
    }

    #[test]
    fn port_ranges_and_protocols() {
        assert!(covers(&rule("tcp", 2379, 2380, cidr("0.0.0.0/0")), &tcp(2379, 2380)));
        assert!(!covers(&rule("tcp", 2379, 2379, cidr("0.0.0.0/0")), &tcp(2379, 2380)), "half a range");
        assert!(covers(&rule("tcp", 30000, 32767, cidr("0.0.0.0/0")), &tcp(30000, 32767)));
        assert!(!covers(&rule("udp", 10250, 10250, cidr("0.0.0.0/0")), &tcp(10250, 10250)));
        assert!(covers(&rule("6", 10250, 10250, cidr("0.0.0.0/0")), &tcp(10250, 10250)), "numbers and names");
        assert!(covers(&rule("-1", -1, -1, cidr("0.0.0.0/0")), &tcp(22, 22)), "protocol -1 is everything");
        let all = PortSpec { protocol: "-1".into(), from_port: -1, to_port: -1 };
        assert!(!covers(&rule("tcp", 0, 65535, cidr("0.0.0.0/0")), &all), "tcp is not all traffic");
        let icmp = PortSpec { protocol: "icmp".into(), from_port: -1, to_port: -1 };
        assert!(covers(&rule("icmp", -1, -1, cidr("0.0.0.0/0")), &icmp));
        assert!(!covers(&rule("icmp", 8, 0, cidr("0.0.0.0/0")), &icmp), "echo only is not every type");
    }

    #[test]
    fn routes_by_longest_prefix() {
        let routes = vec![
            Route { destination: "0.0.0.0/0".parse().unwrap(), target: Target::Gateway("igw-1".into()) },
            Route { destination: "172.31.0.0/16".parse().unwrap(), target: Target::Local },
            Route { destination: "172.20.0.0/16".parse().unwrap(), target: Target::Other("blackhole".into()) },
            Route { destination: "172.20.1.0/24".parse().unwrap(), target: Target::Instance("i-1".into()) },
        ];
        let at = |ip: &str| longest_prefix(&routes, ip.parse().unwrap()).map(|r| r.target.clone());
        assert_eq!(at("172.20.1.2"), Some(Target::Instance("i-1".into())));
        assert_eq!(at("172.20.2.2"), Some(Target::Other("blackhole".into())));
        assert_eq!(at("172.31.0.10"), Some(Target::Local));
        assert_eq!(at("203.0.113.1"), Some(Target::Gateway("igw-1".into())));
        assert_eq!(longest_prefix(&routes[1..], "203.0.113.1".parse().unwrap()), None);
    }

    #[test]
    fn the_acl_entry_with_the_lowest_number_decides() {
        let entry = |number, allow, cidr: &str, ports| AclEntry {
            number,
            protocol: "6".into(),
            ports,
            cidr: cidr.parse().unwrap(),
            allow,
        };
        let deny_first = vec![
            entry(200, true, "0.0.0.0/0", None),
            entry(100, false, "172.31.0.0/24", Some((10250, 10250))),
            entry(32767, false, "0.0.0.0/0", None),
        ];
        let kubelet = tcp(10250, 10250);
        let denied = acl_denies(&deny_first, &kubelet, "172.31.0.10".parse().unwrap()).unwrap();
        assert!(denied.contains("entry 100"), "{denied}");
        assert_eq!(acl_denies(&deny_first, &kubelet, "10.0.0.1".parse().unwrap()), None, "outside entry 100's range");
        assert_eq!(acl_denies(&deny_first, &tcp(22, 22), "172.31.0.10".parse().unwrap()), None, "outside its ports");
        let only_default = vec![entry(32767, false, "0.0.0.0/0", None)];
        assert!(acl_denies(&only_default, &kubelet, "172.31.0.10".parse().unwrap()).unwrap().contains("32767"));
    }

    /// The course's cluster as the describe calls would return it, with the policy's rules.
    fn cluster() -> (Params, Vec<Node>, Described) {
        let params = Params::course_defaults("us-east-2");
        let nodes: Vec<Node> = params
            .masters
            .iter()
            .map(|n| (NodeRole::Master, n))
            .chain(params.workers.iter().map(|n| (NodeRole::Worker, n)))
            .enumerate()
            .map(|(i, (role, spec))| {
                let index = if role == NodeRole::Master { i } else { i - params.masters.len() } as u32;
                Node {
                    name: format!("k8s-{}", node_logical_name(role, index)),
                    role,
                    index,
                    instance_id: groundup_contracts::Ref::Known(format!("i-{i}")),
                    private_ip: spec.private_ip,
                    public_ip: None,
                    private_dns: String::new(),
                    hostname: String::new(),
                    pod_cidr: spec.pod_cidr,
                    host_keys: Vec::new(),
                }
            })
            .collect();
        let instances = nodes
            .iter()
            .map(|n| Instance {
                id: n.instance_id.to_string(),
                private_ip: n.private_ip,
                groups: Vec::new(),
                source_dest_check: false,
                network_interface: Some(format!("eni-{}", n.index)),
            })
            .collect();
        let mut routes = vec![
            Route { destination: "0.0.0.0/0".parse().unwrap(), target: Target::Gateway("igw-1".into()) },
            Route { destination: params.vpc_cidr, target: Target::Local },
        ];
        routes.extend(nodes.iter().filter_map(|n| {
            n.pod_cidr.map(|c| Route { destination: c, target: Target::Instance(n.instance_id.to_string()) })
        }));
        let balancer = Balancer {
            listener_port: Some(6443),
            forwards_to: vec!["tg".into()],
            target_group_arn: "tg".into(),
            targets: params.masters.iter().map(|m| (m.private_ip.to_string(), 6443)).collect(),
            health_check_protocol: Some("HTTPS".into()),
            health_check_path: Some("/readyz".into()),
        };
        let mut described = Described {
            vpc_cidr: Some(params.vpc_cidr),
            groups: Vec::new(),
            instances,
            routes,
            acl: vec![],
            balancer: Some(balancer),
        };
        place(&params, &nodes, &mut described);
        (params, nodes, described)
    }

    fn blocked(report: &Report) -> Vec<(String, String, String)> {
        report
            .flows
            .iter()
            .filter_map(|v| match &v.answer {
                Answer::Blocked { at, .. } => Some((v.flow.to_string(), v.to.clone(), at.to_string())),
                Answer::Allowed { .. } => None,
            })
            .collect()
    }

    #[test]
    fn the_policys_own_rules_allow_every_flow() {
        let (params, nodes, described) = cluster();
        let report = evaluate(&params, &nodes, &described);
        assert!(report.passes(), "{:?} {:?}", blocked(&report), report.openings);
        assert!(report.flows.len() > 80, "{}", report.flows.len());
        let kubelet = report.flows.iter().find(|v| v.flow == "kubelet").unwrap();
        assert_eq!(kubelet.answer, Answer::Allowed { rule: "sg-sg-masters tcp 10250 from sg-sg-masters".into() });
    }

    #[test]
    fn the_load_balancer_must_carry_the_api_to_the_masters_and_check_readyz() {
        let (params, nodes, mut described) = cluster();
        let balancer = described.balancer.as_mut().unwrap();
        balancer.targets[1] = ("172.31.0.20".into(), 6443);
        balancer.health_check_protocol = Some("TCP".into());
        balancer.health_check_path = None;
        let report = evaluate(&params, &nodes, &described);
        assert!(!report.passes());
        assert_eq!(
            report.load_balancer,
            [
                "master-1 172.31.0.11 is not a target on port 6443",
                "target 172.31.0.20:6443 is not a master's API server",
                "the health check is TCP , not HTTPS GET /readyz: an API server that is not ready stays in rotation",
            ]
        );
        described.balancer.as_mut().unwrap().listener_port = Some(443);
        let report = evaluate(&params, &nodes, &described);
        assert!(report.load_balancer[0].contains("the listener is on port 443, not the API port 6443"), "{report:?}");
    }

    #[test]
    fn the_course_rules_block_the_kubelet_and_the_pods() {
        let (mut params, nodes, mut described) = cluster();
        params.network = groundup_contracts::flows::NetworkPolicy::Course;
        place(&params, &nodes, &mut described);
        let report = evaluate(&params, &nodes, &described);
        let flows: std::collections::BTreeSet<String> = blocked(&report).into_iter().map(|(flow, ..)| flow).collect();
        assert_eq!(flows.into_iter().collect::<Vec<_>>(), ["kube-proxy-health", "kubelet", "pods"]);
    }

    /// etcd admits the masters' group: a master's own address is allowed, a worker's is not,
    /// whatever its address; a master taken out of the group loses etcd.
    #[test]
    fn group_references_admit_the_groups_instances_only() {
        let (params, nodes, mut described) = cluster();
        let report = evaluate(&params, &nodes, &described);
        let by_group = Answer::Allowed { rule: "sg-sg-masters tcp 2379-2380 from sg-sg-masters".into() };
        let etcd: Vec<&Verdict> = report.flows.iter().filter(|v| v.flow == "etcd").collect();
        assert_eq!(etcd.len(), 6, "{etcd:?}");
        assert!(etcd.iter().all(|v| v.answer == by_group), "{etcd:?}");
        // A worker tries etcd: the masters' group does not hold it.
        let worker = nodes.iter().find(|n| n.role == NodeRole::Worker).unwrap();
        let master = nodes.iter().find(|n| n.role == NodeRole::Master).unwrap();
        let etcd_ports = groundup_contracts::flows::Service::Etcd.ports(&params);
        fn from(node: &Node) -> Sample<'_> {
            Sample { label: label(node), address: node.private_ip, node: Some(node), pods_of: None }
        }
        assert_eq!(answer(&etcd_ports, &from(&nodes[1]), master, &described), by_group);
        match answer(&etcd_ports, &from(worker), master, &described) {
            Answer::Blocked { at: Stop::SecurityGroup, why } => {
                assert!(why.contains("sg-sg-masters") && why.contains(&worker.private_ip.to_string()), "{why}")
            }
            other => panic!("etcd from a worker: {other:?}"),
        }
        // A master out of its group reaches no etcd, and no other master reaches its etcd.
        described.instances[0].groups = vec!["sg-sg-nodes".into()];
        let report = evaluate(&params, &nodes, &described);
        let etcd: Vec<(String, String)> = report
            .flows
            .iter()
            .filter(|v| v.flow == "etcd" && v.answer != by_group)
            .map(|v| (v.from.clone(), v.to.clone()))
            .collect();
        assert_eq!(etcd.len(), 4, "{etcd:?}");
        assert!(etcd.iter().all(|(from, to)| from.starts_with("master-0") || to.starts_with("master-0")), "{etcd:?}");
    }

    #[test]
    fn a_missing_pod_route_or_rule_names_the_worker_and_the_flow() {
        let (params, nodes, mut described) = cluster();
        described.routes.retain(|r| r.destination.to_string() != "172.20.1.0/24");
        for group in &mut described.groups {
            group.rules.retain(|r| r.from_port != 10250);
        }
        described.groups[0].rules.push(rule("tcp", 2379, 2379, cidr("0.0.0.0/0")));
        let report = evaluate(&params, &nodes, &described);
        assert!(!report.passes());
        let pods = report.flows.iter().find(|v| v.from.starts_with("pods of worker-1")).unwrap();
        match &pods.answer {
            Answer::Blocked { at: Stop::Route, why } => assert!(why.contains("172.20.1.0/24 to worker-1"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(blocked(&report).iter().any(|(flow, _, at)| flow == "kubelet" && at == "security group"));
        assert_eq!(
            report.openings,
            [Opening { group: "sg-sg-masters".into(), rule: "tcp 2379 from 0.0.0.0/0".into() }]
        );
    }
}
