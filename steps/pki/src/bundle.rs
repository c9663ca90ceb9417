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

/// The directories groundup makes on a node, relative to `/`: every file of a bundle lies
/// below one of them. What is above them (`/`, `etc`, `var`, `var/lib`) belongs to the node's
/// OS, so neither an archive nor `distribute` ever names it: GNU tar applies an entry's mode
/// to a directory that already exists, and `tar xzf <bundle> -C /` must not change `/`.
pub const ROOTS: [&str; 5] =
    ["etc/etcd", "etc/kubernetes", "var/lib/kube-proxy", "var/lib/kubelet", "var/lib/kubernetes"];

/// The mode of a directory groundup makes on a node: what packages and kubeadm give these
/// directories, so that extracting over an existing one leaves it as it is. The secrets in
/// them are protected by their own mode (0600).
pub const DIR_MODE: u32 = 0o755;

/// The directories `files` go in that groundup makes on the node (see [`ROOTS`]), parents
/// first: each root a file lies below and every directory between it and the file.
pub fn directories<'a>(files: impl IntoIterator<Item = &'a BundleFile>) -> Vec<String> {
    let mut dirs = std::collections::BTreeSet::new();
    for file in files {
        let Some(root) = ROOTS.iter().find(|root| Path::new(&file.target).starts_with(root)) else { continue };
        let mut parent = Path::new(&file.target).parent();
        while let Some(dir) = parent.filter(|dir| dir.starts_with(root)) {
            dirs.insert(dir.display().to_string());
            parent = dir.parent();
        }
    }
    dirs.into_iter().collect()
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
    fn every_file_lies_below_a_root_and_no_directory_of_the_os_is_named() {
        let mut context = Context::from_json(include_str!("../../../contracts/examples/03-infra.json")).unwrap();
        context.params.pki.layout = Layout::Kubeadm;
        for node in &context.compute.as_ref().unwrap().nodes {
            let files = contents(&context, node);
            for file in &files {
                assert!(ROOTS.iter().any(|root| Path::new(&file.target).starts_with(root)), "{}", file.target);
            }
            let dirs = directories(&files);
            for os in ["", ".", "etc", "var", "var/lib", "etc/systemd"] {
                assert!(!dirs.iter().any(|d| d == os), "{}: {os} in {dirs:?}", node.hostname);
            }
            let mut sorted = dirs.clone();
            sorted.sort();
            assert_eq!(dirs, sorted, "parents first");
            if node.role == Role::Master {
                for own in ["etc/etcd", "etc/kubernetes/pki/etcd", "var/lib/kubernetes"] {
                    assert!(dirs.iter().any(|d| d == own), "{own} missing: {dirs:?}");
                }
            }
        }
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
