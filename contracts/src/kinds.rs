//! The one table of the cloud resource kinds groundup makes: how machines spell each kind
//! (its slug: `down`'s JSON, the tests' inventory), how people read it (its label: plans,
//! logs, errors), which API carries its tags, the name its one resource has in a cluster's
//! tags, and when `down` deletes it. Nothing else lists the kinds.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a kind's identity tags (`Name`, `groundup:cluster`, `groundup:resource`) live, which
/// decides how it is found: EC2 filters by tag; ELBv2 lists everything, then reads the tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagApi {
    Ec2,
    Elbv2,
}

/// A kind of cloud resource, in deletion order: a kind may depend only on kinds after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Instance,
    Listener,
    LoadBalancer,
    TargetGroup,
    KeyPair,
    SecurityGroup,
    RouteTable,
    InternetGateway,
    Subnet,
    DhcpOptions,
    Vpc,
}

impl Kind {
    /// Every kind, in the order `down` deletes them.
    pub const ALL: [Kind; 11] = [
        Kind::Instance,
        Kind::Listener,
        Kind::LoadBalancer,
        Kind::TargetGroup,
        Kind::KeyPair,
        Kind::SecurityGroup,
        Kind::RouteTable,
        Kind::InternetGateway,
        Kind::Subnet,
        Kind::DhcpOptions,
        Kind::Vpc,
    ];

    /// The kind's one spelling for machines.
    pub fn slug(self) -> &'static str {
        self.row().0
    }

    /// The kind's one spelling for people.
    pub fn label(self) -> &'static str {
        self.row().1
    }

    pub fn tag_api(self) -> TagApi {
        self.row().2
    }

    /// The logical name (the `groundup:resource` tag) of the cluster's one resource of this
    /// kind; `None` for instances, one per node, each named after its node, and for security
    /// groups, one per role (`groundup_contracts::network::GroupRole::logical`).
    pub fn logical(self) -> Option<&'static str> {
        self.row().3
    }

    /// 0 is deleted first; a kind is deleted only after every kind of a lower rank.
    pub fn deletion_rank(self) -> usize {
        Kind::ALL.iter().position(|k| *k == self).expect("every kind is in ALL")
    }

    pub fn from_slug(slug: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.slug() == slug)
    }

    fn row(self) -> (&'static str, &'static str, TagApi, Option<&'static str>) {
        use TagApi::*;
        match self {
            Kind::Instance => ("instance", "instance", Ec2, None),
            Kind::Listener => ("listener", "listener", Elbv2, Some("listener")),
            Kind::LoadBalancer => ("load-balancer", "load balancer", Elbv2, Some("nlb")),
            Kind::TargetGroup => ("target-group", "target group", Elbv2, Some("target-group")),
            Kind::KeyPair => ("key-pair", "key pair", Ec2, Some("key-pair")),
            Kind::SecurityGroup => ("security-group", "security group", Ec2, None),
            Kind::RouteTable => ("route-table", "route table", Ec2, Some("route-table")),
            Kind::InternetGateway => ("internet-gateway", "internet gateway", Ec2, Some("igw")),
            Kind::Subnet => ("subnet", "subnet", Ec2, Some("subnet")),
            Kind::DhcpOptions => ("dhcp-options", "DHCP option set", Ec2, Some("dhcp")),
            Kind::Vpc => ("vpc", "VPC", Ec2, Some("vpc")),
        }
    }
}

/// In documents a kind is its slug; a slug this build does not know is refused, naming the known ones.
impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.slug())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let slug = Cow::<str>::deserialize(deserializer)?;
        Kind::from_slug(&slug).ok_or_else(|| {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.slug()).collect();
            serde::de::Error::custom(format!(
                "`{slug}` is not a kind of resource groundup makes ({})",
                known.join(", ")
            ))
        })
    }
}

impl JsonSchema for Kind {
    fn schema_name() -> Cow<'static, str> {
        "Kind".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let slugs: Vec<&str> = Kind::ALL.iter().map(|k| k.slug()).collect();
        json_schema!({ "type": "string", "enum": slugs, "description": "A kind of cloud resource, by its slug" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn each_kind_has_one_slug_and_one_label_and_no_two_share_one() {
        let slugs: BTreeSet<&str> = Kind::ALL.iter().map(|k| k.slug()).collect();
        let labels: BTreeSet<&str> = Kind::ALL.iter().map(|k| k.label()).collect();
        assert_eq!((slugs.len(), labels.len()), (Kind::ALL.len(), Kind::ALL.len()));
        for kind in Kind::ALL {
            assert_eq!(Kind::from_slug(kind.slug()), Some(kind));
            assert!(kind.slug().bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "{kind:?}");
        }
        assert_eq!(Kind::from_slug("igw"), None, "one spelling per kind");
        assert_eq!(serde_json::to_string(&Kind::DhcpOptions).unwrap(), r#""dhcp-options""#);
        assert_eq!(serde_json::from_str::<Kind>(r#""route-table""#).unwrap(), Kind::RouteTable);
        let unknown = serde_json::from_str::<Kind>(r#""igw""#).unwrap_err().to_string();
        assert!(unknown.contains("`igw` is not a kind") && unknown.contains("internet-gateway"), "{unknown}");
    }

    #[test]
    fn dependents_are_deleted_before_what_they_depend_on() {
        use Kind::*;
        let before = |a: Kind, b: Kind| a.deletion_rank() < b.deletion_rank();
        assert!(before(Instance, SecurityGroup));
        assert!(before(Instance, Subnet));
        assert!(before(Instance, KeyPair));
        assert!(before(Listener, LoadBalancer));
        assert!(before(LoadBalancer, TargetGroup));
        assert!(before(LoadBalancer, Subnet));
        assert!(before(RouteTable, InternetGateway));
        assert!(before(InternetGateway, Vpc));
        assert!(before(Subnet, Vpc));
        assert!(before(DhcpOptions, Vpc));
        let ranks: Vec<usize> = Kind::ALL.iter().map(|k| k.deletion_rank()).collect();
        assert_eq!(ranks, (0..Kind::ALL.len()).collect::<Vec<_>>());
    }
}
