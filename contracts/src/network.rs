//! The sections the network steps add: vpc, dhcp, subnet, igw, routes, sg.

use ipnet::Ipv4Net;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::params::Params;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VpcSection {
    pub id: String,
    #[schemars(with = "String")]
    pub cidr: Ipv4Net,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DhcpSection {
    pub id: String,
    pub domain_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SubnetSection {
    pub id: String,
    #[schemars(with = "String")]
    pub cidr: Ipv4Net,
    pub availability_zone: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IgwSection {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoutesSection {
    pub route_table_id: String,
    pub association_id: String,
    /// The destination routed to the internet gateway.
    #[schemars(with = "String")]
    pub default_route: Ipv4Net,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SgSection {
    pub id: String,
    pub name: String,
    pub ingress: Vec<IngressRule>,
}

/// One ingress rule of the cluster's security group. Ports are -1 for ICMP "all types".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub struct IngressRule {
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    #[schemars(with = "String")]
    pub cidr: Ipv4Net,
}

impl IngressRule {
    fn tcp(from: u16, to: u16, cidr: Ipv4Net) -> Self {
        IngressRule { protocol: "tcp".into(), from_port: from.into(), to_port: to.into(), cidr }
    }
}

impl std::fmt::Display for IngressRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.from_port, self.to_port) {
            (-1, -1) => write!(f, "{} from {}", self.protocol, self.cidr),
            (from, to) if from == to => write!(f, "{} {from} from {}", self.protocol, self.cidr),
            (from, to) => write!(f, "{} {from}-{to} from {}", self.protocol, self.cidr),
        }
    }
}

impl Params {
    /// The course's five ingress rules: etcd and node ports from the subnet, the API and SSH
    /// from the admin range, ICMP from anywhere.
    pub fn ingress_rules(&self) -> Vec<IngressRule> {
        let anywhere: Ipv4Net = "0.0.0.0/0".parse().expect("literal CIDR");
        let p = &self.ports;
        vec![
            IngressRule::tcp(p.etcd.from, p.etcd.to, self.subnet_cidr),
            IngressRule::tcp(p.node_ports.from, p.node_ports.to, self.subnet_cidr),
            IngressRule::tcp(p.api, p.api, self.admin_cidr),
            IngressRule::tcp(p.ssh, p.ssh, self.admin_cidr),
            IngressRule { protocol: "icmp".into(), from_port: -1, to_port: -1, cidr: anywhere },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_course_rules_in_the_course_order() {
        let mut params = Params::course_defaults("us-east-2");
        params.admin_cidr = "0.0.0.0/0".parse().unwrap();
        let rules: Vec<String> = params.ingress_rules().iter().map(ToString::to_string).collect();
        assert_eq!(
            rules,
            [
                "tcp 2379-2380 from 172.31.0.0/24",
                "tcp 30000-32767 from 172.31.0.0/24",
                "tcp 6443 from 0.0.0.0/0",
                "tcp 22 from 0.0.0.0/0",
                "icmp from 0.0.0.0/0",
            ]
        );
    }
}
