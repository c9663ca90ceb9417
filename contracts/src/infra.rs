//! The sections of the infrastructure steps after the network: the API load balancer (nlb)
//! and the machines (compute). The PKI steps read the node names, addresses and the load
//! balancer's DNS name from here.

use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ContextError;
use crate::params::is_dns_label;
use crate::paths::{check_plain_name, is_plain_name};
use crate::reference::Ref;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NlbSection {
    pub arn: Ref,
    /// The cluster's public API address.
    pub dns_name: Ref,
    pub target_group_arn: Ref,
    pub listener_arn: Ref,
    /// The registered targets: the masters' private IPs.
    #[schemars(with = "Vec<String>")]
    pub targets: Vec<Ipv4Addr>,
    /// The subnet's address reservations groundup made for the node IPs. AWS keeps their
    /// description, which marks them as groundup's; the emulator keeps none, so this list is
    /// how a reservation no node needs any more is known as ours to remove.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub reservations: Vec<Ipv4Net>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ComputeSection {
    pub image_id: String,
    pub key_pair: KeyPair,
    pub nodes: Vec<Node>,
}

/// The SSH key pair: where the private key is and how to recognise it, never the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KeyPair {
    pub name: String,
    pub private_key_path: String,
    /// The fingerprint AWS shows for an imported key (RFC 4716: MD5 of the public key blob, as
    /// `ssh-keygen -l -E md5` prints it).
    pub fingerprint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Master,
    Worker,
}

impl Role {
    /// As in node names and user data: `master`, `worker`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Worker => "worker",
        }
    }
}

/// The logical name of a node, as its identity tag and the course's user data have it:
/// `master-0`, `worker-2`.
pub fn node_logical_name(role: Role, index: u32) -> String {
    format!("{}-{index}", role.name())
}

/// A node's Name tag, as in the course: `<cluster>-master-0`.
pub fn node_name(cluster: &str, role: Role, index: u32) -> String {
    format!("{cluster}-{}", node_logical_name(role, index))
}

/// The private DNS name EC2 gives an instance with this address in this region
/// (`ip-172-31-0-10.us-east-2.compute.internal`, `.ec2.internal` in us-east-1), known before
/// the instance exists.
pub fn private_dns_name(region: &str, ip: Ipv4Addr) -> String {
    format!("ip-{}.{}", ip.to_string().replace('.', "-"), crate::region::internal_domain(region))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Node {
    /// The Name tag: `<cluster>-master-<i>` / `<cluster>-worker-<i>`.
    pub name: String,
    pub role: Role,
    pub index: u32,
    pub instance_id: Ref,
    #[schemars(with = "String")]
    pub private_ip: Ipv4Addr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub public_ip: Option<Ipv4Addr>,
    /// EC2's private DNS name, e.g. ip-172-31-0-10.us-east-2.compute.internal.
    pub private_dns: String,
    /// The short host name (the kubelet's node name), e.g. ip-172-31-0-10.
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub pod_cidr: Option<Ipv4Net>,
    /// The SSH host key fingerprints (`SHA256:...`) the instance's console showed at its first
    /// boot: filled in only by `groundup-compute --confirm` for `groundup distribute`, which pins
    /// the first contact to them; never stored in the state file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_keys: Vec<String>,
}

impl ComputeSection {
    pub fn masters(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role == Role::Master)
    }

    pub fn workers(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role == Role::Worker)
    }

    /// Proves the names that become paths (`pki/<hostname>-key.pem`, `nodes/<hostname>/`,
    /// `kubeconfig/<hostname>.kubeconfig`): each node's name is the one its role and index give
    /// (`<cluster>-worker-0`); each hostname is a plain name and one DNS label, and no two nodes
    /// share one. Every step that makes a path from them calls this first, at the point of use:
    /// the context may come from a state file edited by hand. That no hostname names a CA's or
    /// another certificate's files (`ca`, `admin-key`) the PKI's catalogue proves on top
    /// (`groundup_pki::catalogue::check_names`), as only it knows their names.
    pub fn check_names(&self, cluster: &str) -> Result<(), ContextError> {
        for (i, node) in self.nodes.iter().enumerate() {
            let field = |name: &str| format!("compute.nodes[{i}].{name}");
            let expected = node_name(cluster, node.role, node.index);
            if node.name != expected {
                return Err(ContextError::field(
                    field("name"),
                    format!("{:?} is not the name of {} {} of cluster `{cluster}` ({expected:?}); it becomes a path, so nothing was written: run `groundup up --from compute` to record the nodes again", node.name, node.role.name(), node.index),
                ));
            }
            check_plain_name(&field("hostname"), &node.hostname)?;
            if !is_dns_label(&node.hostname) {
                let message =
                    format!("{:?} is not a host name (one DNS label: letters, digits, inner `-`)", node.hostname);
                return Err(ContextError::field(field("hostname"), message));
            }
            if let Some(other) = self.nodes[..i].iter().position(|n| n.hostname == node.hostname || n.name == node.name)
            {
                return Err(ContextError::field(
                    field("hostname"),
                    format!("node {other} has the same name or hostname"),
                ));
            }
        }
        Ok(())
    }

    /// Proves that the SSH key's path lies in the cluster's SSH directory (`<ssh_dir>/<file>`,
    /// a plain file name): a hand-edited path must not make groundup hand another file to ssh.
    pub fn check_key_path(&self, ssh_dir: &str) -> Result<(), ContextError> {
        let path = Path::new(&self.key_pair.private_key_path);
        let in_dir = path.parent() == Some(Path::new(ssh_dir));
        let plain = path.file_name().and_then(|n| n.to_str()).is_some_and(is_plain_name);
        if in_dir && plain {
            Ok(())
        } else {
            Err(ContextError::field(
                "compute.key_pair.private_key_path",
                format!("`{}` is not a file in the cluster's SSH directory `{ssh_dir}`; run `groundup up --from compute` to record the key again", path.display()),
            ))
        }
    }
}
