//! What `groundup status --json` prints: the report scripts read, as plain nested JSON. Its
//! JSON Schema is generated from these types (`contracts/schema/status.schema.json`), like the
//! context's.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use schemars::JsonSchema;
use serde::Serialize;

use crate::derived::Stale;
use crate::infra::Role;

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Status {
    pub cluster: String,
    pub region: String,
    /// Where the cluster lives, as a person names it: `emulator URL`, `endpoint URL`, `aws REGION`.
    pub target: String,
    pub torn_down: bool,
    pub steps: Vec<StepStatus>,
    /// The machines, once `compute` has made them.
    pub nodes: Vec<NodeStatus>,
    /// Creates a killed run left unfinished; the next run looks for them before creating.
    pub interrupted: Vec<InterruptedCreate>,
    /// Kubeconfigs and bundles made from a file that changed since (a certificate re-issued,
    /// the encryption key rotated): `groundup up` makes them again.
    pub stale: Vec<Stale>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    Done,
    Pending,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct StepStatus {
    pub step: String,
    pub state: StepState,
    /// The identifiers the step's section records (ids, ARNs, the load balancer's DNS name,
    /// fingerprints), nested as in the section: `{"nodes": [{"instance_id": "i-..."}]}`.
    pub ids: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct NodeStatus {
    pub name: String,
    pub role: Role,
    /// The kubelet's node name, e.g. ip-172-31-0-10.
    pub hostname: String,
    pub instance_id: String,
    #[schemars(with = "String")]
    pub private_ip: Ipv4Addr,
    #[schemars(with = "Option<String>")]
    pub public_ip: Option<Ipv4Addr>,
    /// The pod range (workers).
    #[schemars(with = "Option<String>")]
    pub pod_cidr: Option<Ipv4Net>,
    /// The certificate of the node's kubelet (every node runs one), named after its host name
    /// (`pki/ip-172-31-0-10.pem`), once `certs` has issued it.
    pub certificate: Option<String>,
    /// The node's kubelet kubeconfig (`kubeconfig/ip-172-31-0-10.kubeconfig`), once
    /// `kubeconfig` has written it.
    pub kubeconfig: Option<String>,
    /// The archive of the node's files, once `bundles` has packed it.
    pub bundle: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct InterruptedCreate {
    pub step: String,
    pub kind: String,
    pub resource: String,
}
