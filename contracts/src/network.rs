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

/// The cluster's security groups: `masters.<cluster>` and `nodes.<cluster>`, each rule
/// naming the other group by id where the flow comes from the control plane or the nodes (as
/// kops has them), or the course's one group with `init --course-network`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(from = "SgFields")]
pub struct SgSection {
    pub groups: Vec<GroupSection>,
}

/// The section as read: the groups, or the one group a cluster built before there were two
/// recorded (`id`, `name`, `ingress`), which is the course's group and which `sg` then moves
/// to the two.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
enum SgFields {
    Groups { groups: Vec<GroupSection> },
    OneGroup { id: Ref, name: String, ingress: Vec<IngressRule> },
}

impl From<SgFields> for SgSection {
    fn from(fields: SgFields) -> Self {
        match fields {
            SgFields::Groups { groups } => SgSection { groups },
            SgFields::OneGroup { id, name, ingress } => {
                SgSection { groups: vec![GroupSection { role: GroupRole::Cluster, id, name, ingress }] }
            }
        }
    }
}

impl SgSection {
    /// The group a node of this role is launched in.
    pub fn group_of(&self, role: crate::infra::Role) -> Option<&GroupSection> {
        self.groups.iter().find(|g| g.role.holds(role))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GroupSection {
    pub role: GroupRole,
    pub id: Ref,
    pub name: String,
    pub ingress: Vec<IngressRule>,
}

/// Which nodes a security group holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupRole {
    /// The course's one group, every node's (`--course-network`).
    Cluster,
    /// The control plane's: `masters.<cluster>`.
    Masters,
    /// The workers': `nodes.<cluster>`.
    Nodes,
}

impl GroupRole {
    pub const ALL: [GroupRole; 3] = [GroupRole::Cluster, GroupRole::Masters, GroupRole::Nodes];

    /// The `groundup:resource` tag: the course's group keeps the tag it always had, so a
    /// cluster built with one group is found and moved.
    pub fn logical(self) -> &'static str {
        match self {
            GroupRole::Cluster => "sg",
            GroupRole::Masters => "sg-masters",
            GroupRole::Nodes => "sg-nodes",
        }
    }

    pub fn from_logical(logical: &str) -> Option<GroupRole> {
        GroupRole::ALL.into_iter().find(|r| r.logical() == logical)
    }

    /// The group's name in AWS, as kops names them.
    pub fn group_name(self, cluster: &str) -> String {
        match self {
            GroupRole::Cluster => cluster.to_string(),
            GroupRole::Masters => format!("masters.{cluster}"),
            GroupRole::Nodes => format!("nodes.{cluster}"),
        }
    }

    /// Whether a node of this role is in the group.
    pub fn holds(self, role: crate::infra::Role) -> bool {
        use crate::infra::Role::{Master, Worker};
        matches!((self, role), (GroupRole::Cluster, _) | (GroupRole::Masters, Master) | (GroupRole::Nodes, Worker))
    }
}

impl std::fmt::Display for GroupRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GroupRole::Cluster => "the cluster's group",
            GroupRole::Masters => "the masters' group",
            GroupRole::Nodes => "the nodes' group",
        })
    }
}

/// Where a rule admits traffic from: a range, or the instances of one of the cluster's groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleSource {
    Cidr(#[schemars(with = "String")] Ipv4Net),
    Group(GroupRole),
}

/// One ingress rule of a security group. Ports are -1 for ICMP "all types".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub struct IngressRule {
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    /// `cidr` (a range) or `group` (`masters`, `nodes`).
    #[serde(flatten)]
    pub source: RuleSource,
}

impl std::fmt::Display for IngressRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ports = crate::flows::PortSpec {
            protocol: self.protocol.clone(),
            from_port: self.from_port,
            to_port: self.to_port,
        };
        match self.source {
            RuleSource::Cidr(cidr) => write!(f, "{ports} from {cidr}"),
            RuleSource::Group(role) => write!(f, "{ports} from {role}"),
        }
    }
}

impl Params {
    /// The cluster's security groups and the ingress rules of each, from the policy table.
    pub fn security_groups(&self) -> Vec<(GroupRole, Vec<IngressRule>)> {
        crate::flows::security_groups(self)
    }
}
