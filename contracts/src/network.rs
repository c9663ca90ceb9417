//! The sections the network steps add: vpc, dhcp, subnet, igw, routes, sg.

use ipnet::Ipv4Net;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::params::Params;
use crate::reference::Ref;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VpcSection {
    pub id: Ref,
    #[schemars(with = "String")]
    pub cidr: Ipv4Net,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DhcpSection {
    pub id: Ref,
    pub domain_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SubnetSection {
    pub id: Ref,
    #[schemars(with = "String")]
    pub cidr: Ipv4Net,
    pub availability_zone: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IgwSection {
    pub id: Ref,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoutesSection {
    pub route_table_id: Ref,
    pub association_id: Ref,
    /// The destination routed to the internet gateway.
    #[schemars(with = "String")]
    pub default_route: Ipv4Net,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SgSection {
    pub id: Ref,
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

impl std::fmt::Display for IngressRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.from_port, self.to_port) {
            _ if self.protocol == "-1" => write!(f, "all traffic from {}", self.cidr),
            (-1, -1) => write!(f, "{} from {}", self.protocol, self.cidr),
            (from, to) if from == to => write!(f, "{} {from} from {}", self.protocol, self.cidr),
            (from, to) => write!(f, "{} {from}-{to} from {}", self.protocol, self.cidr),
        }
    }
}

impl Params {
    /// The ingress rules of the cluster's security group, from the policy table.
    pub fn ingress_rules(&self) -> Vec<IngressRule> {
        crate::flows::ingress_rules(self)
    }
}
