//! What the cluster's network must carry: one table of flows, from Kubernetes' "Ports and
//! Protocols" (kubernetes.io/docs/reference/networking/ports-and-protocols), the course's
//! ICMP and node ports, and SSH for the admin. The security groups' rules are built from it,
//! and `groundup-check` evaluates every flow of it against what the cloud describes.

use ipnet::Ipv4Net;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::network::{GroupRole, IngressRule, RuleSource};
use crate::params::{NodeSpec, Params};

/// The kubelet's API: logs, exec, port-forward and metrics, asked for by the control plane.
pub const KUBELET_PORT: u16 = 10250;
/// kube-proxy's health endpoint.
pub const KUBE_PROXY_HEALTH_PORT: u16 = 10256;

/// Which rules the cluster's security group holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NetworkPolicy {
    /// Every flow of [`FLOWS`]: what a working cluster needs.
    #[default]
    Kubernetes,
    /// The course's five rules, exactly (`init --course-network`), for following the course
    /// step by step; `groundup check` names the flows they block.
    Course,
}

/// Where traffic comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Peer {
    /// `params.admin_cidr`.
    Admin,
    /// The nodes' subnet, where the load balancer's own addresses are.
    Subnet,
    /// The masters' addresses.
    ControlPlane,
    /// Every node's address.
    Nodes,
    /// Every worker's pod range.
    PodRanges,
    Anywhere,
}

/// Which nodes a flow reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    ControlPlane,
    Workers,
    AllNodes,
}

/// What is reached: a protocol and its ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Api,
    Etcd,
    Kubelet,
    KubeProxyHealth,
    NodePorts,
    Ssh,
    /// Pod-to-pod traffic: every protocol and port.
    AllTraffic,
    Icmp,
}

/// A protocol as security groups name it (`tcp`, `icmp`, `-1` for all) and a port range
/// (-1 to -1 where the protocol has no ports).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub struct PortSpec {
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
}

impl std::fmt::Display for PortSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.protocol.as_str(), self.from_port, self.to_port) {
            ("-1", ..) => write!(f, "all traffic"),
            (protocol, -1, -1) => write!(f, "{protocol}"),
            (protocol, from, to) if from == to => write!(f, "{protocol} {from}"),
            (protocol, from, to) => write!(f, "{protocol} {from}-{to}"),
        }
    }
}

impl Service {
    pub fn ports(self, params: &Params) -> PortSpec {
        let tcp = |from: u16, to: u16| PortSpec { protocol: "tcp".into(), from_port: from.into(), to_port: to.into() };
        let p = &params.ports;
        match self {
            Service::Api => tcp(p.api, p.api),
            Service::Etcd => tcp(p.etcd.from, p.etcd.to),
            Service::Kubelet => tcp(KUBELET_PORT, KUBELET_PORT),
            Service::KubeProxyHealth => tcp(KUBE_PROXY_HEALTH_PORT, KUBE_PROXY_HEALTH_PORT),
            Service::NodePorts => tcp(p.node_ports.from, p.node_ports.to),
            Service::Ssh => tcp(p.ssh, p.ssh),
            Service::AllTraffic => PortSpec { protocol: "-1".into(), from_port: -1, to_port: -1 },
            Service::Icmp => PortSpec { protocol: "icmp".into(), from_port: -1, to_port: -1 },
        }
    }
}

/// One row of the policy: who must reach which nodes, on what, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub name: &'static str,
    pub from: Peer,
    pub to: Role,
    pub service: Service,
    pub why: &'static str,
}

/// The flows a working cluster needs. kube-scheduler (10259) and kube-controller-manager
/// (10257) listen on loopback only, so they need no rule.
pub const FLOWS: &[Flow] = &[
    Flow {
        name: "api-from-admin",
        from: Peer::Admin,
        to: Role::ControlPlane,
        service: Service::Api,
        why: "admins run kubectl against the API server",
    },
    Flow {
        name: "api-from-load-balancer",
        from: Peer::Subnet,
        to: Role::ControlPlane,
        service: Service::Api,
        why: "the NLB's IP targets get health checks and forwarded connections from its own addresses in the subnet",
    },
    Flow {
        name: "api-from-nodes",
        from: Peer::Nodes,
        to: Role::ControlPlane,
        service: Service::Api,
        why: "kubelets and kube-proxy talk to the API server",
    },
    Flow {
        name: "etcd",
        from: Peer::ControlPlane,
        to: Role::ControlPlane,
        service: Service::Etcd,
        why: "the API servers and the other etcd members: the control plane only",
    },
    Flow {
        name: "kubelet",
        from: Peer::ControlPlane,
        to: Role::AllNodes,
        service: Service::Kubelet,
        why: "the API server asks kubelets for logs, exec, port-forward and metrics",
    },
    Flow {
        name: "kube-proxy-health",
        from: Peer::Nodes,
        to: Role::Workers,
        service: Service::KubeProxyHealth,
        why: "kube-proxy's health endpoint, checked from inside the cluster",
    },
    Flow {
        name: "node-ports",
        from: Peer::Subnet,
        to: Role::Workers,
        service: Service::NodePorts,
        why: "NodePort services, for the subnet as the course has them",
    },
    Flow {
        name: "pods",
        from: Peer::PodRanges,
        to: Role::AllNodes,
        service: Service::AllTraffic,
        why: "pods reach pods on other nodes with their own addresses (no NAT)",
    },
    Flow {
        name: "ssh",
        from: Peer::Admin,
        to: Role::AllNodes,
        service: Service::Ssh,
        why: "the admin logs in to the nodes",
    },
    Flow {
        name: "icmp",
        from: Peer::Anywhere,
        to: Role::AllNodes,
        service: Service::Icmp,
        why: "ping and path MTU discovery, as the course has it",
    },
];

impl Peer {
    /// The ranges this peer's traffic comes from, merged where they touch.
    pub fn cidrs(self, params: &Params) -> Vec<Ipv4Net> {
        let hosts = |nodes: &mut dyn Iterator<Item = &NodeSpec>| {
            Ipv4Net::aggregate(&nodes.map(|n| Ipv4Net::from(n.private_ip)).collect())
        };
        match self {
            Peer::Admin => vec![params.admin_cidr],
            Peer::Subnet => vec![params.subnet_cidr],
            Peer::ControlPlane => hosts(&mut params.masters.iter()),
            Peer::Nodes => hosts(&mut params.masters.iter().chain(&params.workers)),
            Peer::PodRanges => Ipv4Net::aggregate(&params.workers.iter().filter_map(|w| w.pod_cidr).collect()),
            Peer::Anywhere => vec![anywhere()],
        }
    }
}

pub fn anywhere() -> Ipv4Net {
    Ipv4Net::new(std::net::Ipv4Addr::UNSPECIFIED, 0).expect("prefix 0 is valid")
}

impl Peer {
    /// Where this peer's traffic comes from, as rules of the two groups name it: the masters
    /// and the nodes by their groups, whatever their addresses; the others by range.
    fn sources(self, params: &Params) -> Vec<RuleSource> {
        match self {
            Peer::ControlPlane => vec![RuleSource::Group(GroupRole::Masters)],
            Peer::Nodes => vec![RuleSource::Group(GroupRole::Masters), RuleSource::Group(GroupRole::Nodes)],
            other => other.cidrs(params).into_iter().map(RuleSource::Cidr).collect(),
        }
    }
}

impl GroupRole {
    /// Whether the group holds nodes a flow to `role` reaches.
    fn receives(self, role: Role) -> bool {
        matches!(
            (self, role),
            (GroupRole::Cluster, _)
                | (_, Role::AllNodes)
                | (GroupRole::Masters, Role::ControlPlane)
                | (GroupRole::Nodes, Role::Workers)
        )
    }
}

/// The cluster's security groups and their ingress rules: `masters` and `nodes`, each with one
/// rule per flow that reaches its nodes and source, in the table's order (a range rule that a
/// wider range for the same ports covers is left out); or the course's one group with
/// `--course-network`.
pub fn security_groups(params: &Params) -> Vec<(GroupRole, Vec<IngressRule>)> {
    match params.network {
        NetworkPolicy::Course => vec![(GroupRole::Cluster, course_rules(params))],
        NetworkPolicy::Kubernetes => [GroupRole::Masters, GroupRole::Nodes]
            .into_iter()
            .map(|group| (group, group_rules(params, group)))
            .collect(),
    }
}

fn group_rules(params: &Params, group: GroupRole) -> Vec<IngressRule> {
    let all: Vec<IngressRule> = FLOWS
        .iter()
        .filter(|flow| group.receives(flow.to))
        .flat_map(|flow| {
            let ports = flow.service.ports(params);
            flow.from.sources(params).into_iter().map(move |source| IngressRule {
                protocol: ports.protocol.clone(),
                from_port: ports.from_port,
                to_port: ports.to_port,
                source,
            })
        })
        .collect();
    let mut kept: Vec<IngressRule> = Vec::with_capacity(all.len());
    for (i, rule) in all.iter().enumerate() {
        let same_ports = |other: &IngressRule| {
            (&other.protocol, other.from_port, other.to_port) == (&rule.protocol, rule.from_port, rule.to_port)
        };
        // Covered by a wider range, or the same as one earlier in the table.
        let covered = all.iter().enumerate().any(|(j, other)| {
            j != i
                && same_ports(other)
                && match (other.source, rule.source) {
                    (RuleSource::Cidr(wider), RuleSource::Cidr(cidr)) => {
                        wider.contains(&cidr) && (wider.prefix_len() < cidr.prefix_len() || j < i)
                    }
                    (other, source) => other == source && j < i,
                }
        });
        if !covered {
            kept.push(rule.clone());
        }
    }
    kept
}

/// The course's five rules: etcd and node ports from the subnet, the API and SSH from the
/// admin range, ICMP from anywhere.
fn course_rules(params: &Params) -> Vec<IngressRule> {
    let rule = |service: Service, cidr: Ipv4Net| {
        let PortSpec { protocol, from_port, to_port } = service.ports(params);
        IngressRule { protocol, from_port, to_port, source: RuleSource::Cidr(cidr) }
    };
    vec![
        rule(Service::Etcd, params.subnet_cidr),
        rule(Service::NodePorts, params.subnet_cidr),
        rule(Service::Api, params.admin_cidr),
        rule(Service::Ssh, params.admin_cidr),
        rule(Service::Icmp, anywhere()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(params: &Params) -> Vec<String> {
        let groups = security_groups(params);
        let mut lines = Vec::new();
        for (group, rules) in groups {
            lines.extend(rules.iter().map(|rule| format!("{}: {rule}", group.logical())));
        }
        lines
    }

    #[test]
    fn the_course_rules_in_the_course_order() {
        let mut params = Params::course_defaults("us-east-2");
        params.admin_cidr = "0.0.0.0/0".parse().unwrap();
        params.network = NetworkPolicy::Course;
        assert_eq!(
            rules(&params),
            [
                "sg: tcp 2379-2380 from 172.31.0.0/24",
                "sg: tcp 30000-32767 from 172.31.0.0/24",
                "sg: tcp 6443 from 0.0.0.0/0",
                "sg: tcp 22 from 0.0.0.0/0",
                "sg: icmp from 0.0.0.0/0",
            ]
        );
    }

    /// Two groups, as kops has them: the masters and the nodes are named by their groups, so
    /// etcd admits the masters only. The default admin range is the VPC's, which covers the
    /// load balancer's subnet.
    #[test]
    fn every_flow_of_the_table_has_its_rule_in_the_group_of_the_nodes_it_reaches() {
        let params = Params::course_defaults("us-east-2");
        assert_eq!(
            rules(&params),
            [
                "sg-masters: tcp 6443 from 172.31.0.0/16",
                "sg-masters: tcp 6443 from the masters' group",
                "sg-masters: tcp 6443 from the nodes' group",
                "sg-masters: tcp 2379-2380 from the masters' group",
                "sg-masters: tcp 10250 from the masters' group",
                "sg-masters: all traffic from 172.20.0.0/23",
                "sg-masters: all traffic from 172.20.2.0/24",
                "sg-masters: tcp 22 from 172.31.0.0/16",
                "sg-masters: icmp from 0.0.0.0/0",
                "sg-nodes: tcp 10250 from the masters' group",
                "sg-nodes: tcp 10256 from the masters' group",
                "sg-nodes: tcp 10256 from the nodes' group",
                "sg-nodes: tcp 30000-32767 from 172.31.0.0/24",
                "sg-nodes: all traffic from 172.20.0.0/23",
                "sg-nodes: all traffic from 172.20.2.0/24",
                "sg-nodes: tcp 22 from 172.31.0.0/16",
                "sg-nodes: icmp from 0.0.0.0/0",
            ]
        );
    }

    /// An admin range only adds: the load balancer's subnet and the nodes keep the API.
    #[test]
    fn an_admin_range_adds_and_never_removes_what_the_cluster_needs() {
        let mut params = Params::course_defaults("us-east-2");
        let before = rules(&params);
        params.admin_cidr = "203.0.113.0/24".parse().unwrap();
        let after = rules(&params);
        for kept in [
            "sg-masters: tcp 6443 from 172.31.0.0/24",
            "sg-masters: tcp 6443 from 203.0.113.0/24",
            "sg-masters: tcp 6443 from the nodes' group",
            "sg-masters: tcp 22 from 203.0.113.0/24",
            "sg-nodes: tcp 22 from 203.0.113.0/24",
        ] {
            assert!(after.contains(&kept.to_string()), "{kept}: {after:?}");
        }
        // Only what the old admin range (the VPC) gave the admin goes.
        let gone: Vec<&String> = before.iter().filter(|r| !after.contains(r)).collect();
        assert_eq!(
            gone,
            [
                "sg-masters: tcp 6443 from 172.31.0.0/16",
                "sg-masters: tcp 22 from 172.31.0.0/16",
                "sg-nodes: tcp 22 from 172.31.0.0/16"
            ]
        );
    }

    /// Scaling changes no rule that names a group: only the pod ranges follow the workers.
    #[test]
    fn the_rules_do_not_follow_node_addresses() {
        let params = Params::course_defaults("us-east-2");
        let mut fewer = params.clone();
        fewer.masters.truncate(1);
        let groups =
            |params: &Params| -> Vec<String> { rules(params).into_iter().filter(|r| !r.contains("172.20.")).collect() };
        assert_eq!(groups(&params), groups(&fewer));
    }
}
