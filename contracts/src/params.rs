//! Every value the course hard-codes, as parameters with the course's values as defaults,
//! and the rules that make a set of parameters buildable.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{BadValue, ContextError};

pub const UBUNTU_OWNER: &str = "099720109477";
/// Canonical's server images; `compute` keeps only LTS releases (even year, .04).
pub const UBUNTU_NAME_PATTERN: &str = "ubuntu/images/hvm-ssd*/ubuntu-*-amd64-server-*";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[schemars(with = "String")]
    pub vpc_cidr: Ipv4Net,
    #[schemars(with = "String")]
    pub subnet_cidr: Ipv4Net,
    /// The domain-name option of the DHCP option set.
    pub dhcp_domain_name: String,
    /// Who may reach SSH and the API port, besides what the cluster itself needs.
    #[schemars(with = "String")]
    pub admin_cidr: Ipv4Net,
    /// The security group's rules: Kubernetes' flows (the default) or the course's five.
    #[serde(default)]
    pub network: crate::flows::NetworkPolicy,
    pub ports: Ports,
    /// The load balancer's health check of the API servers.
    #[serde(default)]
    pub health_check: HealthCheck,
    pub masters: Vec<NodeSpec>,
    pub workers: Vec<NodeSpec>,
    pub instance_type: String,
    pub image: ImageSelector,
    /// The Kubernetes service range; its first address is a SAN of the API server certificate.
    #[schemars(with = "String")]
    pub service_cidr: Ipv4Net,
    /// What the nodes run: the Kubernetes release, its images' registry, the pod range and
    /// the DNS service's address.
    #[serde(default)]
    pub kubernetes: crate::kubernetes::KubernetesParams,
    #[serde(default)]
    pub pki: crate::pki::PkiParams,
    /// Where the SSH private key goes, relative to the cluster's directory (see
    /// the step runtime's `files`); `ssh-<cluster>` when another cluster has `ssh`.
    #[serde(default = "default_ssh_dir")]
    pub ssh_dir: String,
    /// The type of a new SSH key. A cluster's existing key is kept whatever its type.
    #[serde(default)]
    pub ssh_key: SshKeyType,
    /// Where the kubeconfigs go, relative to the cluster's directory; `kubeconfig-<cluster>`
    /// when another cluster has `kubeconfig`.
    #[serde(default = "default_kubeconfig_dir")]
    pub kubeconfig_dir: String,
    /// Where the node bundles go (`nodes-<cluster>` when another cluster has `nodes`).
    #[serde(default = "default_nodes_dir")]
    pub nodes_dir: String,
}

/// An SSH key type AWS imports and Ubuntu's images accept. ImportKeyPair takes RSA of 1024,
/// 2048 or 4096 bits, or ED25519 (the EC2 User Guide); an ED25519 key is made at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SshKeyType {
    #[default]
    Ed25519,
    Rsa4096,
}

impl SshKeyType {
    /// The names the context and the command line use.
    pub const NAMES: [&'static str; 2] = ["ed25519", "rsa4096"];

    pub fn from_name(name: &str) -> Option<SshKeyType> {
        match name {
            "ed25519" => Some(SshKeyType::Ed25519),
            "rsa4096" => Some(SshKeyType::Rsa4096),
            _ => None,
        }
    }
}

fn default_ssh_dir() -> String {
    "ssh".into()
}

fn default_kubeconfig_dir() -> String {
    "kubeconfig".into()
}

fn default_nodes_dir() -> String {
    "nodes".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    pub etcd: PortRange,
    pub node_ports: PortRange,
    pub api: u16,
    pub ssh: u16,
}

/// The target group's health check: HTTPS `GET /readyz` on the API port, which answers 200
/// only when the API server is ready (readable without credentials by default; the load
/// balancer does not verify the certificate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Seconds between checks (5-300).
    pub interval_seconds: u16,
    /// Checks passed in a row before a target is healthy (2-10).
    pub healthy_threshold: u8,
    /// Checks failed in a row before a target is unhealthy (2-10).
    pub unhealthy_threshold: u8,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck { interval_seconds: 10, healthy_threshold: 3, unhealthy_threshold: 3 }
    }
}

/// The path the health check asks for.
pub const HEALTH_CHECK_PATH: &str = "/readyz";

impl HealthCheck {
    /// The bounds a network load balancer accepts.
    fn validate(&self) -> Result<(), ContextError> {
        let field = |name: &str| format!("params.health_check.{name}");
        if !(5..=300).contains(&self.interval_seconds) {
            return Err(ContextError::field(
                field("interval_seconds"),
                format!("{} s is outside the 5-300 s a network load balancer allows", self.interval_seconds),
            ));
        }
        for (name, value) in
            [("healthy_threshold", self.healthy_threshold), ("unhealthy_threshold", self.unhealthy_threshold)]
        {
            if !(2..=10).contains(&value) {
                return Err(ContextError::field(
                    field(name),
                    format!("{value} is outside the 2-10 a load balancer allows"),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    pub from: u16,
    pub to: u16,
}

/// As the command line writes it: `2379-2380`.
impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.from, self.to)
    }
}

impl std::str::FromStr for PortRange {
    type Err = BadValue;

    fn from_str(s: &str) -> Result<Self, BadValue> {
        let parse = |p: &str| p.trim().parse::<u16>().map_err(|_| BadValue::NotPortRange(s.into()));
        let (from, to) = match s.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => (parse(s)?, parse(s)?),
        };
        Ok(PortRange { from, to })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    #[schemars(with = "String")]
    pub private_ip: Ipv4Addr,
    /// Workers only: the pod range routed to this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub pod_cidr: Option<Ipv4Net>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "by", rename_all = "snake_case", deny_unknown_fields)]
pub enum ImageSelector {
    /// Exactly this AMI.
    Id { id: String },
    /// The newest image (by CreationDate) of this owner whose name matches the pattern.
    Newest { owner: String, name_pattern: String },
}

impl Default for ImageSelector {
    fn default() -> Self {
        ImageSelector::Newest { owner: UBUNTU_OWNER.into(), name_pattern: UBUNTU_NAME_PATTERN.into() }
    }
}

/// How `init` lays out the nodes: counts and first addresses, expanded into explicit
/// [`NodeSpec`]s so that a user may still edit single addresses in the context.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLayout {
    pub masters: u32,
    pub workers: u32,
    pub first_master_ip: Ipv4Addr,
    pub first_worker_ip: Ipv4Addr,
    /// Worker i gets the i-th /24 of this range, as in the course (172.20.i.0/24).
    pub pod_cidr_base: Ipv4Net,
    /// The nodes' subnet, which bounds how many there can be.
    pub subnet: Ipv4Net,
}

impl NodeLayout {
    pub fn course_default() -> Self {
        NodeLayout {
            masters: 3,
            workers: 3,
            first_master_ip: Ipv4Addr::new(172, 31, 0, 10),
            first_worker_ip: Ipv4Addr::new(172, 31, 0, 20),
            pod_cidr_base: "172.20.0.0/16".parse().expect("literal CIDR"),
            subnet: "172.31.0.0/24".parse().expect("literal CIDR"),
        }
    }

    pub fn expand(&self) -> Result<(Vec<NodeSpec>, Vec<NodeSpec>), ContextError> {
        self.check_counts()?;
        let masters = (0..self.masters)
            .map(|i| Ok(NodeSpec { private_ip: nth_ip(self.first_master_ip, i, "masters")?, pod_cidr: None }))
            .collect::<Result<_, ContextError>>()?;
        let mut pod_cidrs = self.pod_cidr_base.subnets(24).map_err(|_| {
            ContextError::field(
                "pod_cidr_base",
                format!("{} is smaller than the /24 each worker gets", self.pod_cidr_base),
            )
        })?;
        let workers = (0..self.workers)
            .map(|i| {
                let pod_cidr = pod_cidrs.next().ok_or_else(|| {
                    ContextError::field(
                        "pod_cidr_base",
                        format!("{} has fewer than {} /24 ranges, one per worker", self.pod_cidr_base, self.workers),
                    )
                })?;
                Ok(NodeSpec { private_ip: nth_ip(self.first_worker_ip, i, "workers")?, pod_cidr: Some(pod_cidr) })
            })
            .collect::<Result<_, ContextError>>()?;
        Ok((masters, workers))
    }
}

impl NodeLayout {
    /// The layout an existing cluster's nodes follow: its counts, its first master's and first
    /// worker's addresses, and a pod range whose first /24 is worker 0's, so that `expand`
    /// numbers new nodes after the existing ones as `init` would have. Where there is no
    /// node, `init`'s defaults (subnet + 10, subnet + 20, 172.20.0.0/16).
    pub fn of(masters: &[NodeSpec], workers: &[NodeSpec], subnet: Ipv4Net) -> Self {
        let course = NodeLayout::course_default();
        let subnet_base = u32::from(subnet.network());
        let pod_cidr_base = workers.first().and_then(|w| w.pod_cidr).map_or(course.pod_cidr_base, |first| {
            // The widest range (at most a /16, as the course's) that starts at worker 0's.
            let start = first.network();
            let prefix = (32 - u32::from(start).trailing_zeros()).clamp(16, 24) as u8;
            Ipv4Net::new(start, prefix).expect("a prefix of 16 to 24")
        });
        NodeLayout {
            masters: masters.len() as u32,
            workers: workers.len() as u32,
            first_master_ip: masters.first().map_or(Ipv4Addr::from(subnet_base + 10), |n| n.private_ip),
            first_worker_ip: workers.first().map_or(Ipv4Addr::from(subnet_base + 20), |n| n.private_ip),
            pod_cidr_base,
            subnet,
        }
    }
}

impl NodeLayout {
    /// The counts before anything is allocated for them: the subnet first (it bounds every
    /// node), then the pod range (it bounds the workers).
    fn check_counts(&self) -> Result<(), ContextError> {
        check_node_count(u64::from(self.masters), u64::from(self.workers), self.subnet)?;
        let pod_ranges = 1u64 << 24u8.saturating_sub(self.pod_cidr_base.prefix_len());
        if u64::from(self.workers) > pod_ranges && self.pod_cidr_base.prefix_len() <= 24 {
            return Err(ContextError::field(
                "pod_cidr_base",
                format!(
                    "the pod range {} holds {pod_ranges} /24 ranges, one per worker, too few for {} workers; give a larger one",
                    self.pod_cidr_base, self.workers
                ),
            ));
        }
        Ok(())
    }
}

/// Names the larger of the two counts, the one most likely asked for (`up --workers 300`).
fn check_node_count(masters: u64, workers: u64, subnet: Ipv4Net) -> Result<(), ContextError> {
    let usable = usable_hosts(subnet);
    let nodes = masters + workers;
    if nodes > usable {
        let field = if workers > masters { "params.workers" } else { "params.masters" };
        return Err(ContextError::field(
            field,
            format!("{masters} masters and {workers} workers do not fit in the subnet {subnet}, which has {usable} usable addresses; give a larger subnet or fewer nodes"),
        ));
    }
    Ok(())
}

fn nth_ip(first: Ipv4Addr, i: u32, field: &str) -> Result<Ipv4Addr, ContextError> {
    u32::from(first)
        .checked_add(i)
        .map(Ipv4Addr::from)
        .ok_or_else(|| ContextError::field(field, "node addresses run past 255.255.255.255"))
}

impl Params {
    /// The course's values; the DHCP domain depends on the region.
    pub fn course_defaults(region: &str) -> Self {
        let (masters, workers) = NodeLayout::course_default().expand().expect("the course layout is valid");
        Params {
            vpc_cidr: "172.31.0.0/16".parse().expect("literal CIDR"),
            subnet_cidr: "172.31.0.0/24".parse().expect("literal CIDR"),
            dhcp_domain_name: crate::region::internal_domain(region),
            admin_cidr: "172.31.0.0/16".parse().expect("literal CIDR"),
            network: crate::flows::NetworkPolicy::default(),
            ports: Ports {
                etcd: PortRange { from: 2379, to: 2380 },
                node_ports: PortRange { from: 30000, to: 32767 },
                api: 6443,
                ssh: 22,
            },
            health_check: HealthCheck::default(),
            masters,
            workers,
            instance_type: "t2.micro".into(),
            image: ImageSelector::default(),
            service_cidr: "10.32.0.0/24".parse().expect("literal CIDR"),
            kubernetes: crate::kubernetes::KubernetesParams::default(),
            pki: crate::pki::PkiParams::default(),
            ssh_dir: default_ssh_dir(),
            ssh_key: SshKeyType::default(),
            kubeconfig_dir: default_kubeconfig_dir(),
            nodes_dir: default_nodes_dir(),
        }
    }

    /// Rejects what AWS would reject later (or, on the emulator, silently accept).
    pub fn validate(&self) -> Result<(), ContextError> {
        check_prefix("params.vpc_cidr", self.vpc_cidr)?;
        check_prefix("params.subnet_cidr", self.subnet_cidr)?;
        check_host_bits("params.admin_cidr", self.admin_cidr)?;
        if !self.vpc_cidr.contains(&self.subnet_cidr) {
            return Err(ContextError::field(
                "params.subnet_cidr",
                format!("{} is not inside the VPC range {}", self.subnet_cidr, self.vpc_cidr),
            ));
        }
        check_no_overlap("params.service_cidr", self.service_cidr, "the VPC range", self.vpc_cidr)?;
        check_domain("params.dhcp_domain_name", &self.dhcp_domain_name)?;
        check_range("params.ports.etcd", self.ports.etcd)?;
        check_range("params.ports.node_ports", self.ports.node_ports)?;
        check_port("params.ports.api", self.ports.api)?;
        check_port("params.ports.ssh", self.ports.ssh)?;
        self.health_check.validate()?;
        check_instance_type(&self.instance_type)?;
        self.check_image()?;
        crate::paths::check_dir("params.pki.dir", &self.pki.dir, self.pki.allow_outside_dir)?;
        crate::paths::check_dir("params.ssh_dir", &self.ssh_dir, false)?;
        crate::paths::check_dir("params.kubeconfig_dir", &self.kubeconfig_dir, false)?;
        crate::paths::check_dir("params.nodes_dir", &self.nodes_dir, false)?;
        // The workers' own pod ranges first: they are what a flag (--pod-cidr-base) moved.
        self.check_nodes()?;
        let cluster_cidr = self.kubernetes.cluster_cidr;
        check_no_overlap("params.kubernetes.cluster_cidr", cluster_cidr, "the VPC range", self.vpc_cidr)?;
        self.kubernetes.validate(self.service_cidr, &self.workers)
    }

    fn check_image(&self) -> Result<(), ContextError> {
        match &self.image {
            ImageSelector::Id { id } if !(id.starts_with("ami-") && id.len() > 4) => {
                Err(ContextError::field("params.image.id", format!("`{id}` is not an AMI id (ami-...)")))
            }
            ImageSelector::Newest { owner, name_pattern } if owner.is_empty() || name_pattern.is_empty() => {
                Err(ContextError::field("params.image", "an image lookup needs both an owner and a name pattern"))
            }
            _ => Ok(()),
        }
    }

    fn check_nodes(&self) -> Result<(), ContextError> {
        if self.masters.is_empty() {
            return Err(ContextError::field("params.masters", "the cluster needs at least one master"));
        }
        check_node_count(self.masters.len() as u64, self.workers.len() as u64, self.subnet_cidr)?;
        let mut seen = HashSet::with_capacity(self.masters.len() + self.workers.len());
        for (role, nodes) in [("masters", &self.masters), ("workers", &self.workers)] {
            for (i, node) in nodes.iter().enumerate() {
                let field = || format!("params.{role}[{i}].private_ip");
                self.check_node_ip(field, node.private_ip)?;
                if !seen.insert(node.private_ip) {
                    return Err(ContextError::field(field(), format!("{} is used by another node", node.private_ip)));
                }
            }
        }
        self.check_pod_cidrs()
    }

    fn check_node_ip(&self, field: impl Fn() -> String, ip: Ipv4Addr) -> Result<(), ContextError> {
        if !self.subnet_cidr.contains(&ip) {
            return Err(ContextError::field(field(), format!("{ip} is outside the subnet {}", self.subnet_cidr)));
        }
        if is_reserved(self.subnet_cidr, ip) {
            return Err(ContextError::field(
                field(),
                format!("{ip} is reserved by AWS in {} (the first four addresses and the last one)", self.subnet_cidr),
            ));
        }
        Ok(())
    }

    /// Linear in the workers but for one sort: CIDR ranges are nested or disjoint, so sorted
    /// by first address, a range overlaps an earlier one exactly when it starts inside the
    /// one reaching furthest so far.
    fn check_pod_cidrs(&self) -> Result<(), ContextError> {
        for (i, master) in self.masters.iter().enumerate() {
            if master.pod_cidr.is_some() {
                return Err(ContextError::field(
                    format!("params.masters[{i}].pod_cidr"),
                    "masters run no pods: remove it",
                ));
            }
        }
        let mut ranges = Vec::with_capacity(self.workers.len());
        for (i, worker) in self.workers.iter().enumerate() {
            let field = || format!("params.workers[{i}].pod_cidr");
            let cidr = worker.pod_cidr.ok_or_else(|| ContextError::field(field(), "every worker needs a pod range"))?;
            check_no_overlap(&field(), cidr, "the VPC range", self.vpc_cidr)?;
            check_no_overlap(&field(), cidr, "the service range", self.service_cidr)?;
            ranges.push((cidr, i));
        }
        ranges.sort_unstable_by_key(|(cidr, i)| (cidr.network(), *i));
        let mut furthest: Option<(Ipv4Net, usize)> = None;
        for (cidr, i) in ranges {
            if let Some((earlier, j)) = furthest.filter(|(earlier, _)| cidr.network() <= earlier.broadcast()) {
                let ((later, later_cidr), (first, first_cidr)) =
                    if i > j { ((i, cidr), (j, earlier)) } else { ((j, earlier), (i, cidr)) };
                return Err(ContextError::field(
                    format!("params.workers[{later}].pod_cidr"),
                    format!("{later_cidr} overlaps worker {first}'s pod range {first_cidr}"),
                ));
            }
            if furthest.is_none_or(|(earlier, _)| cidr.broadcast() > earlier.broadcast()) {
                furthest = Some((cidr, i));
            }
        }
        Ok(())
    }
}

/// A CIDR range given on the command line; a bare address gets the prefix it probably lacks.
pub fn parse_cidr(text: &str) -> Result<Ipv4Net, BadValue> {
    text.parse().map_err(|_| match text.parse::<Ipv4Addr>() {
        Ok(_) => BadValue::AddressNotRange(text.into()),
        Err(_) => BadValue::NotRange(text.into()),
    })
}

/// AWS reserves the network address, the next three (router, DNS, future use) and the last.
pub fn is_reserved(subnet: Ipv4Net, ip: Ipv4Addr) -> bool {
    let offset = u32::from(ip) - u32::from(subnet.network());
    offset < 4 || ip == subnet.broadcast()
}

pub fn usable_hosts(subnet: Ipv4Net) -> u64 {
    (1u64 << (32 - subnet.prefix_len())).saturating_sub(5)
}

fn check_prefix(field: &str, cidr: Ipv4Net) -> Result<(), ContextError> {
    check_host_bits(field, cidr)?;
    if !(16..=28).contains(&cidr.prefix_len()) {
        return Err(ContextError::field(field, format!("{cidr}: AWS allows prefixes from /16 to /28")));
    }
    Ok(())
}

fn check_host_bits(field: &str, cidr: Ipv4Net) -> Result<(), ContextError> {
    if cidr != cidr.trunc() {
        return Err(ContextError::field(field, format!("{cidr} has host bits set; did you mean {}?", cidr.trunc())));
    }
    Ok(())
}

fn check_no_overlap(field: &str, cidr: Ipv4Net, what: &str, other: Ipv4Net) -> Result<(), ContextError> {
    if cidr.contains(&other) || other.contains(&cidr) {
        return Err(ContextError::field(field, format!("{cidr} overlaps {what} {other}")));
    }
    Ok(())
}

fn check_range(field: &str, range: PortRange) -> Result<(), ContextError> {
    check_port(field, range.from)?;
    if range.from > range.to {
        return Err(ContextError::field(field, format!("{}-{} is an empty range", range.from, range.to)));
    }
    Ok(())
}

fn check_port(field: &str, port: u16) -> Result<(), ContextError> {
    if port == 0 {
        return Err(ContextError::field(field, "port 0 is not a port"));
    }
    Ok(())
}

/// One label of a DNS name: 1-63 letters, digits and inner hyphens.
pub fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

fn check_domain(field: &str, domain: &str) -> Result<(), ContextError> {
    if domain.is_empty() || domain.len() > 253 || !domain.split('.').all(is_dns_label) {
        return Err(ContextError::field(field, format!("`{domain}` is not a DNS domain name")));
    }
    Ok(())
}

/// EC2 instance types are `<family><generation>[attributes].<size>`, e.g. t2.micro, c6gn.16xlarge.
pub fn check_instance_type(instance_type: &str) -> Result<(), ContextError> {
    let err = || {
        ContextError::field(
            "params.instance_type",
            format!("`{instance_type}` is not an EC2 instance type (like t2.micro or m5.large)"),
        )
    };
    let (family, size) = instance_type.split_once('.').ok_or_else(err)?;
    let family_ok = family.len() >= 2
        && family.starts_with(|c: char| c.is_ascii_lowercase())
        && family.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && family.chars().any(|c| c.is_ascii_digit());
    const SIZES: &[&str] = &["nano", "micro", "small", "medium", "large", "xlarge", "metal"];
    let size_ok = SIZES.contains(&size)
        || size.strip_suffix("xlarge").is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        || size.strip_prefix("metal-").is_some_and(|n| n.ends_with("xl"));
    if family_ok && size_ok {
        Ok(())
    } else {
        Err(err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params::course_defaults("us-east-2")
    }

    fn field_of(result: Result<(), ContextError>) -> String {
        match result {
            Err(ContextError::Field { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn course_defaults_are_valid_and_match_the_course() {
        let p = params();
        p.validate().unwrap();
        let ips: Vec<String> = p.masters.iter().chain(&p.workers).map(|n| n.private_ip.to_string()).collect();
        assert_eq!(ips, ["172.31.0.10", "172.31.0.11", "172.31.0.12", "172.31.0.20", "172.31.0.21", "172.31.0.22"]);
        assert_eq!(p.workers[2].pod_cidr.unwrap().to_string(), "172.20.2.0/24");
        assert_eq!(p.dhcp_domain_name, "us-east-2.compute.internal");
    }

    #[test]
    fn subnet_outside_the_vpc_is_rejected() {
        let mut p = params();
        p.subnet_cidr = "10.0.0.0/24".parse().unwrap();
        assert_eq!(field_of(p.validate()), "params.subnet_cidr");
    }

    #[test]
    fn host_bits_and_odd_prefixes_are_rejected() {
        let mut p = params();
        p.vpc_cidr = "172.31.0.1/16".parse().unwrap();
        assert_eq!(field_of(p.validate()), "params.vpc_cidr");
        let mut p = params();
        p.vpc_cidr = "172.0.0.0/8".parse().unwrap();
        assert_eq!(field_of(p.validate()), "params.vpc_cidr");
        let mut p = params();
        p.admin_cidr = "1.2.3.4/24".parse().unwrap();
        assert_eq!(
            p.validate().unwrap_err().to_string(),
            "context field `params.admin_cidr`: 1.2.3.4/24 has host bits set; did you mean 1.2.3.0/24?"
        );
        p.admin_cidr = "203.0.113.7/32".parse().unwrap();
        p.validate().unwrap();
    }

    #[test]
    fn reserved_duplicate_and_outside_ips_are_rejected() {
        for ip in ["172.31.0.0", "172.31.0.1", "172.31.0.3", "172.31.0.255"] {
            let mut p = params();
            p.masters[0].private_ip = ip.parse().unwrap();
            assert_eq!(field_of(p.validate()), "params.masters[0].private_ip", "{ip}");
        }
        let mut p = params();
        p.workers[1].private_ip = "172.31.0.10".parse().unwrap();
        assert_eq!(field_of(p.validate()), "params.workers[1].private_ip");
        let mut p = params();
        p.workers[0].private_ip = "172.31.1.20".parse().unwrap();
        assert_eq!(field_of(p.validate()), "params.workers[0].private_ip");
    }

    #[test]
    fn more_nodes_than_the_subnet_holds_are_rejected() {
        let mut p = params();
        p.subnet_cidr = "172.31.0.0/28".parse().unwrap();
        let layout = NodeLayout {
            masters: 6,
            workers: 6,
            first_master_ip: "172.31.0.4".parse().unwrap(),
            first_worker_ip: "172.31.0.10".parse().unwrap(),
            ..NodeLayout::course_default()
        };
        (p.masters, p.workers) = layout.expand().unwrap();
        assert_eq!(field_of(p.validate()), "params.masters");
        let layout = NodeLayout { subnet: p.subnet_cidr, ..layout };
        assert_eq!(field_of(layout.expand().map(drop)), "params.masters");
    }

    /// Four billion masters are refused by their count, before any is allocated.
    #[test]
    fn huge_counts_are_refused_before_anything_is_allocated() {
        let layout = NodeLayout { masters: 4_000_000_000, ..NodeLayout::course_default() };
        assert_eq!(field_of(layout.expand().map(drop)), "params.masters");
        let layout = NodeLayout { workers: u32::MAX, ..NodeLayout::course_default() };
        assert_eq!(field_of(layout.expand().map(drop)), "params.workers");
    }

    /// The subnet is named before the pod range, which only bounds the workers.
    #[test]
    fn too_many_workers_blame_the_subnet_first_then_the_pod_range() {
        let layout = NodeLayout { workers: 300, ..NodeLayout::course_default() };
        assert_eq!(field_of(layout.expand().map(drop)), "params.workers");
        let layout = NodeLayout { workers: 300, subnet: "172.31.0.0/22".parse().unwrap(), ..layout };
        match layout.expand() {
            Err(ContextError::Field { field, message }) => {
                assert_eq!(field, "pod_cidr_base");
                assert!(message.contains("256 /24 ranges") && message.contains("300 workers"), "{message}");
            }
            other => panic!("expected the pod range to be blamed, got {other:?}"),
        }
    }

    /// 65,000 nodes, the most a /16 subnet holds: validation must not be quadratic (it took
    /// 42 s for 20,000 workers, and this test would run for many minutes).
    #[test]
    fn the_largest_layout_validates() {
        let mut p = params();
        p.subnet_cidr = "172.31.0.0/16".parse().unwrap();
        let layout = NodeLayout {
            masters: 5,
            workers: 65_000,
            first_master_ip: "172.31.0.10".parse().unwrap(),
            first_worker_ip: "172.31.0.20".parse().unwrap(),
            pod_cidr_base: "100.0.0.0/8".parse().unwrap(),
            subnet: p.subnet_cidr,
        };
        (p.masters, p.workers) = layout.expand().unwrap();
        p.kubernetes.cluster_cidr = layout.pod_cidr_base;
        p.validate().unwrap();
        p.workers[64_999].pod_cidr = p.workers[3].pod_cidr;
        assert_eq!(field_of(p.validate()), "params.workers[64999].pod_cidr");
    }

    /// Expanded again, a cluster's own layout gives back its nodes, and numbers more after them.
    #[test]
    fn the_layout_of_existing_nodes_numbers_new_ones_after_them() {
        let p = params();
        let layout = NodeLayout::of(&p.masters, &p.workers, p.subnet_cidr);
        assert_eq!(layout, NodeLayout::course_default());
        let custom = NodeLayout {
            workers: 2,
            first_worker_ip: "172.31.0.40".parse().unwrap(),
            pod_cidr_base: "10.200.16.0/20".parse().unwrap(),
            ..NodeLayout::course_default()
        };
        let (masters, workers) = custom.expand().unwrap();
        let grown = NodeLayout { workers: 4, ..NodeLayout::of(&masters, &workers, custom.subnet) };
        let (_, grown_workers) = grown.expand().unwrap();
        assert_eq!(grown_workers[..2], workers[..]);
        assert_eq!(grown_workers[3].private_ip.to_string(), "172.31.0.43");
        assert_eq!(grown_workers[3].pod_cidr.unwrap().to_string(), "10.200.19.0/24");
        let empty = NodeLayout::of(&[], &[], "10.0.1.0/24".parse().unwrap());
        assert_eq!(
            (empty.first_master_ip.to_string(), empty.first_worker_ip.to_string()),
            ("10.0.1.10".into(), "10.0.1.20".into())
        );
    }

    #[test]
    fn overlapping_pod_ranges_are_rejected() {
        let mut p = params();
        p.workers[1].pod_cidr = Some("172.20.0.0/16".parse().unwrap());
        assert_eq!(field_of(p.validate()), "params.workers[1].pod_cidr");
        let mut p = params();
        p.workers[0].pod_cidr = Some("172.31.5.0/24".parse().unwrap());
        assert_eq!(field_of(p.validate()), "params.workers[0].pod_cidr");
    }

    #[test]
    fn instance_types_are_checked_for_shape() {
        for ok in ["t2.micro", "m5.large", "c6gn.16xlarge", "m7i-flex.large", "u-6tb1.metal", "m5.metal"] {
            check_instance_type(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["t2", "micro", "t2.huge", "T2.micro", "t.micro", "t2.micro ", "t2.xxlarge"] {
            assert!(check_instance_type(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_ranges_parse_and_validate() {
        assert_eq!("2379-2380".parse::<PortRange>().unwrap(), PortRange { from: 2379, to: 2380 });
        assert_eq!("22".parse::<PortRange>().unwrap(), PortRange { from: 22, to: 22 });
        assert!("22-x".parse::<PortRange>().is_err());
        let mut p = params();
        p.ports.etcd = PortRange { from: 2380, to: 2379 };
        assert_eq!(field_of(p.validate()), "params.ports.etcd");
    }

    #[test]
    fn health_checks_within_the_load_balancers_bounds() {
        let mut p = params();
        p.health_check.interval_seconds = 4;
        assert_eq!(field_of(p.validate()), "params.health_check.interval_seconds");
        let mut p = params();
        p.health_check.unhealthy_threshold = 11;
        assert_eq!(field_of(p.validate()), "params.health_check.unhealthy_threshold");
        p.health_check = HealthCheck { interval_seconds: 30, healthy_threshold: 2, unhealthy_threshold: 10 };
        p.validate().unwrap();
    }

    #[test]
    fn bad_domain_and_image_are_rejected() {
        let mut p = params();
        p.dhcp_domain_name = "bad domain".into();
        assert_eq!(field_of(p.validate()), "params.dhcp_domain_name");
        let mut p = params();
        p.image = ImageSelector::Id { id: "ubuntu".into() };
        assert_eq!(field_of(p.validate()), "params.image.id");
    }
}
