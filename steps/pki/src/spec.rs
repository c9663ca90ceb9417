//! What a certificate is: the authority that signs it, its subject, its names and addresses,
//! its usages and key. The catalogue (`catalogue`) lists the ones a cluster needs; `x509`
//! issues and checks them.

use std::net::IpAddr;

use groundup_contracts::pki::{CfsslName, KeyAlgorithm};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Authority {
    Kubernetes,
    Etcd,
    FrontProxy,
}

impl Authority {
    pub const ALL: [Authority; 3] = [Authority::Kubernetes, Authority::Etcd, Authority::FrontProxy];

    /// The CA's file base name.
    pub fn file(self) -> &'static str {
        match self {
            Authority::Kubernetes => "ca",
            Authority::Etcd => "etcd-ca",
            Authority::FrontProxy => "front-proxy-ca",
        }
    }

    pub fn common_name(self) -> &'static str {
        match self {
            Authority::Kubernetes => "Kubernetes",
            Authority::Etcd => "etcd-ca",
            Authority::FrontProxy => "front-proxy-ca",
        }
    }

    pub fn by_file(file: &str) -> Option<Authority> {
        Authority::ALL.into_iter().find(|a| a.file() == file)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub server: bool,
    pub client: bool,
}

pub(crate) const CLIENT: Usage = Usage { server: false, client: true };
pub(crate) const SERVER: Usage = Usage { server: true, client: false };
pub(crate) const BOTH: Usage = Usage { server: true, client: true };

/// One leaf certificate to have.
#[derive(Debug, Clone, PartialEq)]
pub struct CertSpec {
    pub name: String,
    pub signer: Authority,
    pub common_name: String,
    pub organization: Option<String>,
    pub usage: Usage,
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    /// Overrides of `params.pki` for this certificate (cfssl requests carry their own).
    pub key: Option<KeyAlgorithm>,
    pub hours: Option<u32>,
    /// A cfssl request's own C, ST, L, OU (only those it gives); `None`: the course's.
    pub names: Option<CfsslName>,
    /// The SANs the infrastructure decides (the NLB's name, the nodes' addresses and names),
    /// as in [`CertSpec::sans`]. When only these differ, the certificate is re-issued by
    /// itself for its existing key; empty: it never follows the infrastructure.
    pub infrastructure_sans: Vec<String>,
}

impl CertSpec {
    pub(crate) fn new(
        name: impl Into<String>,
        signer: Authority,
        cn: impl Into<String>,
        org: Option<&str>,
        usage: Usage,
    ) -> Self {
        CertSpec {
            name: name.into(),
            signer,
            common_name: cn.into(),
            organization: org.map(String::from),
            usage,
            dns: Vec::new(),
            ips: Vec::new(),
            key: None,
            hours: None,
            names: None,
            infrastructure_sans: Vec::new(),
        }
    }

    pub(crate) fn with_sans(mut self, dns: Vec<String>, ips: Vec<IpAddr>) -> Self {
        self.dns = dns;
        self.ips = ips;
        self
    }

    /// Marks these of its SANs as the infrastructure's.
    pub(crate) fn following(mut self, dns: &[String], ips: &[IpAddr]) -> Self {
        let dns = dns.iter().map(|d| format!("DNS:{d}"));
        self.infrastructure_sans = dns.chain(ips.iter().map(|ip| format!("IP:{ip}"))).collect();
        self.infrastructure_sans.sort();
        self
    }

    /// The SAN set as strings, `DNS:name` / `IP:address`, sorted: what a re-run compares.
    pub fn sans(&self) -> Vec<String> {
        let mut sans: Vec<String> =
            self.dns.iter().map(|d| format!("DNS:{d}")).chain(self.ips.iter().map(|ip| format!("IP:{ip}"))).collect();
        sans.sort();
        sans.dedup();
        sans
    }
}
