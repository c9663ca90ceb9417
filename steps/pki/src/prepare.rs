//! The PKI's head start (`groundup-ca --prepare`, which `groundup up` runs in the background
//! while the infrastructure is built): a private key for every certificate the spec calls for,
//! made before the nodes exist. A key depends only on the certificate's name and key type, and
//! those only on the spec: host names, which name the kubelets' certificates, follow from the
//! node addresses (`ip-172-31-0-10`, as EC2 names a host and `compute` records it). Only the SANs need the
//! infrastructure, and `certs` signs for them when its turn comes, adopting the keys it finds.

use groundup_contracts::infra::{
    node_logical_name, node_name, private_dns_name, ComputeSection, KeyPair, NlbSection, Node, Role,
};
use groundup_contracts::kinds::Kind;
use groundup_contracts::params::NodeSpec;
use groundup_contracts::{Context, ContextError, Ref};

use crate::{catalogue::certificates, spec::CertSpec};

/// The certificates the spec calls for, for their names and key types: the nodes the context
/// records where `compute` ran, and for the others the names `compute` will give them.
pub fn planned(context: &Context) -> Result<Vec<CertSpec>, ContextError> {
    let mut predicted = context.clone();
    let recorded = context.compute.as_ref().map(|c| c.nodes.as_slice()).unwrap_or_default();
    let nodes = [(Role::Master, &context.params.masters), (Role::Worker, &context.params.workers)]
        .into_iter()
        .flat_map(|(role, specs)| specs.iter().enumerate().map(move |(i, spec)| (role, i, spec)))
        .map(|(role, i, spec)| {
            let name = node_name(&context.cluster.name, role, i as u32);
            let found = recorded.iter().find(|n| n.name == name && n.private_ip == spec.private_ip);
            found.cloned().unwrap_or_else(|| predict(context, name, role, i, spec))
        })
        .collect();
    let key_pair = KeyPair { name: String::new(), private_key_path: String::new(), fingerprint: String::new() };
    predicted.compute = Some(ComputeSection { image_id: String::new(), key_pair, nodes });
    // The load balancer's DNS name is only in the SANs: one not made yet stands as planned.
    if predicted.nlb.is_none() {
        let planned = |kind: Kind| Ref::Planned(kind.logical().expect("the cluster has one").to_string());
        predicted.nlb = Some(NlbSection {
            arn: planned(Kind::LoadBalancer),
            dns_name: planned(Kind::LoadBalancer),
            target_group_arn: planned(Kind::TargetGroup),
            listener_arn: planned(Kind::Listener),
            targets: Vec::new(),
            reservations: Vec::new(),
        });
    }
    certificates(&predicted)
}

/// The node `compute` will record: EC2 names a host after its private address.
fn predict(context: &Context, name: String, role: Role, index: usize, spec: &NodeSpec) -> Node {
    let private_dns = private_dns_name(&context.cluster.region, spec.private_ip);
    Node {
        name,
        role,
        index: index as u32,
        instance_id: Ref::Planned(node_logical_name(role, index as u32)),
        private_ip: spec.private_ip,
        public_ip: None,
        hostname: private_dns.split('.').next().unwrap_or_default().to_string(),
        private_dns,
        pod_cidr: spec.pod_cidr,
        host_keys: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Context {
        Context::from_json(include_str!("../../../contracts/examples/03-infra.json")).unwrap()
    }

    fn names(set: &[CertSpec]) -> Vec<String> {
        let mut names: Vec<String> = set.iter().map(|c| c.name.clone()).collect();
        names.sort();
        names
    }

    /// Before the infrastructure exists, the spec alone names the same certificates.
    #[test]
    fn the_spec_alone_names_the_certificates_the_infrastructure_will() {
        let built = example();
        let mut before = built.clone();
        before.compute = None;
        before.nlb = None;
        assert_eq!(names(&planned(&before).unwrap()), names(&certificates(&built).unwrap()));
        assert_eq!(names(&planned(&built).unwrap()), names(&certificates(&built).unwrap()));
    }

    #[test]
    fn more_workers_in_the_spec_get_keys_before_their_instances_exist() {
        let mut context = example();
        let mut more = context.params.workers[2].clone();
        more.private_ip = "172.31.0.23".parse().unwrap();
        context.params.workers.push(more);
        let set = names(&planned(&context).unwrap());
        assert!(set.contains(&"ip-172-31-0-23".to_string()), "{set:?}");
        assert_eq!(set.len(), 22 + 1);
    }
}
