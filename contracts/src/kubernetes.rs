//! What the nodes run: the Kubernetes release, where its images come from, and the cluster's
//! address plan inside Kubernetes (the pod range and the DNS service's address; the service
//! range itself is `params.service_cidr`, whose first address the API certificate holds).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{BadValue, ContextError};
use crate::params::NodeSpec;

/// The release a new cluster runs: one `kubernetes-validate` knows, whose packages are on
/// pkgs.k8s.io.
pub const DEFAULT_VERSION: &str = "v1.34.2";
pub const DEFAULT_REGISTRY: &str = "registry.k8s.io";
/// The course's pod range, of which worker i gets the i-th /24.
pub const DEFAULT_CLUSTER_CIDR: &str = "172.20.0.0/16";
/// The cluster DNS service is the tenth address of the service range, as in kubeadm and
/// Kubernetes the Hard Way (10.32.0.10 in the course's range).
pub const DNS_OFFSET: u32 = 10;
/// The cluster's DNS domain, which the API server certificate's names end in.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// The kernel modules a node loads for containers and their bridged traffic
/// (`/etc/modules-load.d/k8s.conf`), at boot by the user data and in every bundle.
pub const KERNEL_MODULES: [&str; 2] = ["overlay", "br_netfilter"];
/// The kernel settings a node needs to forward pods' traffic (`/etc/sysctl.d/99-kubernetes.conf`).
pub const SYSCTLS: [(&str, &str); 3] = [
    ("net.bridge.bridge-nf-call-iptables", "1"),
    ("net.bridge.bridge-nf-call-ip6tables", "1"),
    ("net.ipv4.ip_forward", "1"),
];
/// Where those go on a node.
pub const MODULES_FILE: &str = "/etc/modules-load.d/k8s.conf";
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/99-kubernetes.conf";

/// The text of [`MODULES_FILE`].
pub fn modules_conf() -> String {
    KERNEL_MODULES.iter().map(|m| format!("{m}\n")).collect()
}

/// The text of [`SYSCTL_FILE`].
pub fn sysctl_conf() -> String {
    SYSCTLS.iter().map(|(key, value)| format!("{key} = {value}\n")).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesParams {
    /// The release every node runs (`v1.MINOR.PATCH`): the control plane's image tags and the
    /// kubelet's package. Fixed once the instances exist (changing it is an upgrade).
    pub version: String,
    /// The registry the control plane's, kube-proxy's and the sandbox's images come from.
    pub image_registry: String,
    /// The pod range of the whole cluster (`--cluster-cidr`): every worker's /24 lies inside it.
    #[schemars(with = "String")]
    pub cluster_cidr: Ipv4Net,
    /// The cluster DNS service's address, inside the service range (not its first address,
    /// which is the API service's).
    #[schemars(with = "String")]
    pub cluster_dns: Ipv4Addr,
}

impl Default for KubernetesParams {
    fn default() -> Self {
        let service: Ipv4Net = "10.32.0.0/24".parse().expect("literal CIDR");
        KubernetesParams {
            version: DEFAULT_VERSION.into(),
            image_registry: DEFAULT_REGISTRY.into(),
            cluster_cidr: DEFAULT_CLUSTER_CIDR.parse().expect("literal CIDR"),
            cluster_dns: dns_address(service).expect("the course's range holds its DNS address"),
        }
    }
}

/// The DNS service's default address in a service range; `None` if the range is too small.
pub fn dns_address(service_cidr: Ipv4Net) -> Option<Ipv4Addr> {
    let ip = Ipv4Addr::from(u32::from(service_cidr.network()).checked_add(DNS_OFFSET)?);
    (service_cidr.contains(&ip) && ip != service_cidr.broadcast()).then_some(ip)
}

/// The API service's address: the first of the service range, which the API server's
/// certificate holds.
pub fn api_service_ip(service_cidr: Ipv4Net) -> Option<Ipv4Addr> {
    service_cidr.hosts().next()
}

/// A release as `v1.MINOR.PATCH`, the form of image tags and of pkgs.k8s.io's paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub fn parse(text: &str) -> Result<Version, BadValue> {
        let bad = || BadValue::NotRelease(text.into());
        let rest = text.strip_prefix("v1.").ok_or_else(bad)?;
        let (minor, patch) = rest.split_once('.').ok_or_else(bad)?;
        let number = |s: &str| match s.parse::<u32>() {
            Ok(n) if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) && (s == "0" || !s.starts_with('0')) => {
                Ok(n)
            }
            _ => Err(bad()),
        };
        let version = Version { minor: number(minor)?, patch: number(patch)? };
        // The oldest release whose packages pkgs.k8s.io carries and whose kubelet has no
        // dockershim; anything older would need other files.
        if version.minor < 30 {
            return Err(BadValue::OldRelease(text.into()));
        }
        Ok(version)
    }

    /// `v1.34`: the package repository's channel.
    pub fn minor_channel(&self) -> String {
        format!("v1.{}", self.minor)
    }

    /// The Debian package version pkgs.k8s.io gives this release (`1.34.2-1.1`, any build).
    pub fn package_pin(&self) -> String {
        format!("1.{}.{}-*", self.minor, self.patch)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v1.{}.{}", self.minor, self.patch)
    }
}

impl KubernetesParams {
    pub fn version(&self) -> Version {
        Version::parse(&self.version).expect("validated")
    }

    /// `service_cidr` and `workers` are the params' own: the DNS address lies in the one, the
    /// pod range holds every worker's.
    pub fn validate(&self, service_cidr: Ipv4Net, workers: &[NodeSpec]) -> Result<(), ContextError> {
        Version::parse(&self.version).map_err(|e| ContextError::field("params.kubernetes.version", e))?;
        check_registry(&self.image_registry)?;
        if self.cluster_cidr != self.cluster_cidr.trunc() {
            return Err(ContextError::field(
                "params.kubernetes.cluster_cidr",
                format!("{} has host bits set; did you mean {}?", self.cluster_cidr, self.cluster_cidr.trunc()),
            ));
        }
        if self.cluster_cidr.contains(&service_cidr) || service_cidr.contains(&self.cluster_cidr) {
            return Err(ContextError::field(
                "params.kubernetes.cluster_cidr",
                format!("{} overlaps the service range {service_cidr}", self.cluster_cidr),
            ));
        }
        let dns = self.cluster_dns;
        let field = "params.kubernetes.cluster_dns";
        if !service_cidr.contains(&dns) || dns == service_cidr.network() || dns == service_cidr.broadcast() {
            return Err(ContextError::field(
                field,
                format!("{dns} is not an address of the service range {service_cidr}"),
            ));
        }
        if Some(dns) == api_service_ip(service_cidr) {
            return Err(ContextError::field(field, format!("{dns} is the API service's address; use another")));
        }
        for (i, worker) in workers.iter().enumerate() {
            if let Some(pods) = worker.pod_cidr.filter(|pods| !self.cluster_cidr.contains(pods)) {
                return Err(ContextError::field(
                    format!("params.workers[{i}].pod_cidr"),
                    format!(
                        "{pods} is outside the cluster's pod range {} (params.kubernetes.cluster_cidr)",
                        self.cluster_cidr
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A registry host (with an optional port and path), as an image reference starts.
fn check_registry(registry: &str) -> Result<(), ContextError> {
    let (host, path) = registry.split_once('/').unwrap_or((registry, ""));
    let (name, port) = host.split_once(':').unwrap_or((host, ""));
    let name_ok = !name.is_empty() && name.split('.').all(crate::params::is_dns_label);
    let port_ok = port.is_empty() || port.parse::<u16>().is_ok_and(|p| p > 0);
    let path_ok = path.is_empty()
        || path.split('/').all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        });
    if name_ok && port_ok && path_ok {
        Ok(())
    } else {
        Err(ContextError::field(
            "params.kubernetes.image_registry",
            format!("`{registry}` is not an image registry like {DEFAULT_REGISTRY} (host[:port][/path])"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Params;

    fn field_of(params: &Params) -> String {
        match params.validate() {
            Err(ContextError::Field { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn the_defaults_are_the_courses_ranges_and_hold_together() {
        let params = Params::course_defaults("us-east-2");
        params.validate().unwrap();
        let kubernetes = &params.kubernetes;
        assert_eq!(kubernetes.cluster_dns.to_string(), "10.32.0.10");
        assert_eq!(api_service_ip(params.service_cidr).unwrap().to_string(), "10.32.0.1");
        assert!(params.workers.iter().all(|w| kubernetes.cluster_cidr.contains(&w.pod_cidr.unwrap())));
        assert_eq!(kubernetes.version().minor_channel(), "v1.34");
    }

    #[test]
    fn versions_are_releases_of_v1_recent_enough() {
        assert_eq!(Version::parse("v1.34.2").unwrap(), Version { minor: 34, patch: 2 });
        assert_eq!(Version::parse("v1.30.0").unwrap().to_string(), "v1.30.0");
        for bad in ["1.34.2", "v1.34", "v2.0.0", "v1.34.x", "v1.034.1", "v1.34.2-rc.0", "v1.29.9", "v1..1", ""] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn inconsistent_values_name_their_field() {
        let mut p = Params::course_defaults("us-east-2");
        p.kubernetes.version = "1.34".into();
        assert_eq!(field_of(&p), "params.kubernetes.version");
        let mut p = Params::course_defaults("us-east-2");
        p.kubernetes.image_registry = "https://registry.k8s.io".into();
        assert_eq!(field_of(&p), "params.kubernetes.image_registry");
        for dns in ["10.32.1.10", "10.32.0.1", "10.32.0.0", "10.32.0.255"] {
            let mut p = Params::course_defaults("us-east-2");
            p.kubernetes.cluster_dns = dns.parse().unwrap();
            assert_eq!(field_of(&p), "params.kubernetes.cluster_dns", "{dns}");
        }
        let mut p = Params::course_defaults("us-east-2");
        p.kubernetes.cluster_cidr = "172.20.0.0/23".parse().unwrap();
        assert_eq!(field_of(&p), "params.workers[2].pod_cidr");
        p.kubernetes.cluster_cidr = "10.0.0.0/8".parse().unwrap();
        assert_eq!(field_of(&p), "params.kubernetes.cluster_cidr");
        for registry in ["registry.k8s.io", "localhost:5000/mirror/k8s", "my-registry.example.com"] {
            check_registry(registry).unwrap_or_else(|e| panic!("{registry}: {e}"));
        }
    }

    #[test]
    fn the_dns_address_follows_the_service_range() {
        assert_eq!(dns_address("10.96.0.0/12".parse().unwrap()).unwrap().to_string(), "10.96.0.10");
        assert_eq!(dns_address("10.32.0.0/29".parse().unwrap()), None);
    }
}
