//! What each node needs, laid out as on its filesystem, in the places the course's later parts
//! (and Kubernetes the Hard Way) use. A worker gets its own credentials and the CA certificate,
//! never a CA key, another node's key or the admin's.

use std::path::{Path, PathBuf};

use groundup_contracts::infra::{Node, Role};
use groundup_contracts::pki::Layout;
use groundup_contracts::Context;

use crate::spec::Authority;
use crate::{encryption, kubeadm};

/// One file of a bundle: where it comes from (relative to the cluster's directory) and where
/// it goes on the node (relative to `/`), with its mode there.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleFile {
    pub source: PathBuf,
    pub target: String,
    pub mode: u32,
}

/// The files `node` needs.
pub fn contents(context: &Context, node: &Node) -> Vec<BundleFile> {
    let pki = Path::new(&context.params.pki.dir);
    let kubeconfigs = Path::new(&context.params.kubeconfig_dir);
    let cert = |name: &str, target: &str| BundleFile {
        source: pki.join(format!("{name}.pem")),
        target: target.into(),
        mode: 0o644,
    };
    let key = |name: &str, target: &str| BundleFile {
        source: pki.join(format!("{name}-key.pem")),
        target: target.into(),
        mode: 0o600,
    };
    let private = |source: PathBuf, target: &str| BundleFile { source, target: target.into(), mode: 0o600 };
    let ca = Authority::Kubernetes.file();
    match node.role {
        Role::Worker => vec![
            cert(ca, "var/lib/kubernetes/ca.pem"),
            cert(&node.name, &format!("var/lib/kubelet/{}.pem", node.hostname)),
            key(&node.name, &format!("var/lib/kubelet/{}-key.pem", node.hostname)),
            private(kubeconfigs.join(format!("{}.kubeconfig", node.hostname)), "var/lib/kubelet/kubeconfig"),
            private(kubeconfigs.join("kube-proxy.kubeconfig"), "var/lib/kube-proxy/kubeconfig"),
        ],
        Role::Master => {
            let etcd = Authority::Etcd.file();
            let host = &node.hostname;
            let mut files = vec![
                cert(ca, "var/lib/kubernetes/ca.pem"),
                key(ca, "var/lib/kubernetes/ca-key.pem"),
                cert("master-kubernetes", "var/lib/kubernetes/kubernetes.pem"),
                key("master-kubernetes", "var/lib/kubernetes/kubernetes-key.pem"),
                cert("service-account", "var/lib/kubernetes/service-account.pem"),
                key("service-account", "var/lib/kubernetes/service-account-key.pem"),
                cert("apiserver-etcd-client", "var/lib/kubernetes/apiserver-etcd-client.pem"),
                key("apiserver-etcd-client", "var/lib/kubernetes/apiserver-etcd-client-key.pem"),
                cert("apiserver-kubelet-client", "var/lib/kubernetes/apiserver-kubelet-client.pem"),
                key("apiserver-kubelet-client", "var/lib/kubernetes/apiserver-kubelet-client-key.pem"),
                cert(etcd, "var/lib/kubernetes/etcd-ca.pem"),
                private(pki.join(encryption::FILE), "var/lib/kubernetes/encryption-config.yaml"),
                private(
                    kubeconfigs.join("kube-controller-manager.kubeconfig"),
                    "var/lib/kubernetes/kube-controller-manager.kubeconfig",
                ),
                private(kubeconfigs.join("kube-scheduler.kubeconfig"), "var/lib/kubernetes/kube-scheduler.kubeconfig"),
                cert(etcd, "etc/etcd/ca.pem"),
                cert(&format!("etcd-server-{host}"), "etc/etcd/server.pem"),
                key(&format!("etcd-server-{host}"), "etc/etcd/server-key.pem"),
                cert(&format!("etcd-peer-{host}"), "etc/etcd/peer.pem"),
                key(&format!("etcd-peer-{host}"), "etc/etcd/peer-key.pem"),
            ];
            if context.params.pki.layout == Layout::Kubeadm {
                let tree = pki.join(kubeadm::pki_root(host));
                files.extend(kubeadm::pki_files().into_iter().map(|(file, mode)| BundleFile {
                    source: tree.join(&file),
                    target: format!("etc/kubernetes/pki/{file}"),
                    mode,
                }));
                files.extend(kubeadm::KUBECONFIGS.iter().map(|(file, ..)| {
                    private(kubeconfigs.join(kubeadm::kubeconfig_path(host, file)), &format!("etc/kubernetes/{file}"))
                }));
            }
            files
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_gets_its_own_credentials_and_no_ca_key_other_nodes_or_admin() {
        let context = Context::from_json(include_str!("../../../contracts/examples/03-infra.json")).unwrap();
        let compute = context.compute.as_ref().unwrap();
        for worker in compute.workers() {
            let files = contents(&context, worker);
            let sources: Vec<String> = files.iter().map(|f| f.source.display().to_string()).collect();
            assert!(sources.contains(&format!("pki/{}-key.pem", worker.name)), "{sources:?}");
            assert!(!sources.iter().any(|s| s.contains("ca-key") || s.contains("admin")), "{sources:?}");
            for other in compute.nodes.iter().filter(|n| n.name != worker.name) {
                assert!(!sources.iter().any(|s| s.contains(&other.name) || s.contains(&other.hostname)), "{sources:?}");
            }
            assert!(files.iter().filter(|f| f.source.to_string_lossy().ends_with("-key.pem")).all(|f| f.mode == 0o600));
        }
    }

    #[test]
    fn a_master_gets_the_api_server_etcd_and_encryption_files_of_its_own() {
        let context = Context::from_json(include_str!("../../../contracts/examples/03-infra.json")).unwrap();
        let master = context.compute.as_ref().unwrap().masters().next().unwrap();
        let files = contents(&context, master);
        let targets: Vec<&str> = files.iter().map(|f| f.target.as_str()).collect();
        for wanted in
            ["var/lib/kubernetes/kubernetes.pem", "var/lib/kubernetes/encryption-config.yaml", "etc/etcd/peer-key.pem"]
        {
            assert!(targets.contains(&wanted), "{wanted} missing: {targets:?}");
        }
        let peer = files.iter().find(|f| f.target == "etc/etcd/peer.pem").unwrap();
        assert!(peer.source.to_string_lossy().contains(&master.hostname));
        assert!(!targets.iter().any(|t| t.starts_with("etc/kubernetes/")), "kubeadm's files without its layout");
    }

    #[test]
    fn kubeadms_layout_gives_a_master_its_etc_kubernetes_and_a_worker_nothing_more() {
        let cfssl = Context::from_json(include_str!("../../../contracts/examples/03-infra.json")).unwrap();
        let mut context = cfssl.clone();
        context.params.pki.layout = Layout::Kubeadm;
        let compute = context.compute.as_ref().unwrap();
        let master = compute.masters().nth(2).unwrap();
        let files = contents(&context, master);
        let file = |target: &str| files.iter().find(|f| f.target == target).unwrap_or_else(|| panic!("no {target}"));
        let kubelet = file("etc/kubernetes/kubelet.conf");
        assert_eq!(kubelet.source, Path::new(&format!("kubeconfig/kubeadm/{}/kubelet.conf", master.hostname)));
        assert_eq!(kubelet.mode, 0o600);
        let ca = file("etc/kubernetes/pki/ca.crt");
        assert_eq!(ca.source, Path::new(&format!("pki/kubeadm/{}/etc/kubernetes/pki/ca.crt", master.hostname)));
        for conf in ["admin", "super-admin", "controller-manager", "scheduler"] {
            assert_eq!(file(&format!("etc/kubernetes/{conf}.conf")).mode, 0o600);
        }
        for worker in compute.workers() {
            assert_eq!(contents(&context, worker), contents(&cfssl, worker), "{}", worker.hostname);
        }
    }
}
