//! What each node needs, laid out as on its filesystem, in the places the course's later parts
//! (and Kubernetes the Hard Way) use: its credentials, and the files that make it run
//! Kubernetes ([`crate::node`]). A worker gets its own credentials and the CA certificate,
//! never a CA key, another node's key, the admin's or a master's manifest.

use std::path::{Path, PathBuf};

use groundup_contracts::infra::{Node, Role};
use groundup_contracts::pki::Layout;
use groundup_contracts::Context;

use crate::node::{self, paths};
use crate::spec::Authority;
use crate::{encryption, kubeadm};

/// One file of a bundle: where it comes from, and where it goes on the node (relative to
/// `/`), with its mode there.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleFile {
    pub source: Source,
    pub target: String,
    pub mode: u32,
}

/// Where a bundle file's bytes come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A file an earlier step wrote, relative to the cluster's directory.
    File(PathBuf),
    /// Rendered from the context ([`crate::node`]): a manifest, a config or a unit, no secret.
    Rendered(String),
}

impl Source {
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Source::File(path) => std::fs::read(path),
            Source::Rendered(text) => Ok(text.clone().into_bytes()),
        }
    }

    /// The cluster's file it is a copy of, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Source::File(path) => Some(path),
            Source::Rendered(_) => None,
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Rendered(_) => f.write_str("(rendered from the context)"),
        }
    }
}

/// The directories groundup makes on a node, relative to `/`: every file of a bundle lies
/// below one of them or is one of the [`DROP_INS`]. What is above them (`/`, `etc`, `var`,
/// `var/lib`) belongs to the node's OS, so neither an archive nor `distribute` ever names it:
/// GNU tar applies an entry's mode to a directory that already exists, and
/// `tar xzf <bundle> -C /` must not change `/`.
pub const ROOTS: [&str; 6] =
    ["etc/containerd", "etc/etcd", "etc/kubernetes", "var/lib/kube-proxy", "var/lib/kubelet", "var/lib/kubernetes"];

/// Files groundup puts in directories the node's OS owns and reads drop-ins from (systemd's
/// units, the kernel modules and sysctl settings to load at boot): the file is groundup's, its
/// directory never is, so neither an archive nor `distribute` names the directory.
pub const DROP_INS: [&str; 3] = [paths::KUBELET_UNIT, paths::MODULES, paths::SYSCTL];

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

/// The files `node` needs: its credentials, and what makes it run Kubernetes (rendered only
/// once the instances exist, which every bundle follows).
pub fn contents(context: &Context, node: &Node) -> Vec<BundleFile> {
    let pki = Path::new(&context.params.pki.dir);
    let kubeconfigs = Path::new(&context.params.kubeconfig_dir);
    let cert = |name: &str, target: &str| BundleFile {
        source: Source::File(pki.join(format!("{name}.pem"))),
        target: target.into(),
        mode: 0o644,
    };
    let key = |name: &str, target: &str| BundleFile {
        source: Source::File(pki.join(format!("{name}-key.pem"))),
        target: target.into(),
        mode: 0o600,
    };
    let private =
        |source: PathBuf, target: &str| BundleFile { source: Source::File(source), target: target.into(), mode: 0o600 };
    let ca = Authority::Kubernetes.file();
    let host = &node.hostname;
    // Every node runs a kubelet and kube-proxy.
    let mut files = vec![
        cert(ca, paths::CA),
        cert(host, &paths::kubelet_cert(host)),
        key(host, &paths::kubelet_key(host)),
        private(kubeconfigs.join(format!("{host}.kubeconfig")), paths::KUBELET_KUBECONFIG),
        private(kubeconfigs.join("kube-proxy.kubeconfig"), paths::PROXY_KUBECONFIG),
    ];
    if node.role == Role::Master {
        let etcd = Authority::Etcd.file();
        let front_proxy = Authority::FrontProxy.file();
        files.extend([
            key(ca, paths::CA_KEY),
            cert("master-kubernetes", paths::API_CERT),
            key("master-kubernetes", paths::API_KEY),
            cert("service-account", paths::SERVICE_ACCOUNT_CERT),
            key("service-account", paths::SERVICE_ACCOUNT_KEY),
            cert("apiserver-etcd-client", paths::ETCD_CLIENT_CERT),
            key("apiserver-etcd-client", paths::ETCD_CLIENT_KEY),
            cert("apiserver-kubelet-client", paths::KUBELET_CLIENT_CERT),
            key("apiserver-kubelet-client", paths::KUBELET_CLIENT_KEY),
            cert(etcd, paths::ETCD_CA_FOR_API),
            cert(front_proxy, paths::FRONT_PROXY_CA),
            cert("front-proxy-client", paths::FRONT_PROXY_CERT),
            key("front-proxy-client", paths::FRONT_PROXY_KEY),
            private(pki.join(encryption::FILE), paths::ENCRYPTION_CONFIG),
            private(kubeconfigs.join("kube-controller-manager.kubeconfig"), paths::CONTROLLER_MANAGER_KUBECONFIG),
            private(kubeconfigs.join("kube-scheduler.kubeconfig"), paths::SCHEDULER_KUBECONFIG),
            cert(etcd, paths::ETCD_CA),
            cert(&format!("etcd-server-{host}"), paths::ETCD_SERVER_CERT),
            key(&format!("etcd-server-{host}"), paths::ETCD_SERVER_KEY),
            cert(&format!("etcd-peer-{host}"), paths::ETCD_PEER_CERT),
            key(&format!("etcd-peer-{host}"), paths::ETCD_PEER_KEY),
        ]);
        if context.params.pki.layout == Layout::Kubeadm {
            let tree = pki.join(kubeadm::pki_root(host));
            files.extend(kubeadm::pki_files().into_iter().map(|(file, mode)| BundleFile {
                source: Source::File(tree.join(&file)),
                target: format!("etc/kubernetes/pki/{file}"),
                mode,
            }));
            files.extend(kubeadm::KUBECONFIGS.iter().map(|(file, ..)| {
                private(kubeconfigs.join(kubeadm::kubeconfig_path(host, file)), &format!("etc/kubernetes/{file}"))
            }));
        }
    }
    if let Some(compute) = &context.compute {
        let cluster = node::Cluster::new(context, compute);
        files.extend(cluster.files(node).into_iter().map(|file| BundleFile {
            source: Source::Rendered(file.text),
            target: file.target,
            mode: file.mode,
        }));
    }
    files
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
            let sources: Vec<String> = files.iter().map(|f| f.source.to_string()).collect();
            assert!(sources.contains(&format!("pki/{}-key.pem", worker.hostname)), "{sources:?}");
            assert!(!sources.iter().any(|s| s.contains("ca-key") || s.contains("admin")), "{sources:?}");
            for other in compute.nodes.iter().filter(|n| n.name != worker.name) {
                assert!(!sources.iter().any(|s| s.contains(&other.name) || s.contains(&other.hostname)), "{sources:?}");
            }
            assert!(files.iter().filter(|f| f.source.to_string().ends_with("-key.pem")).all(|f| f.mode == 0o600));
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
        assert!(peer.source.to_string().contains(&master.hostname));
        let kubeadms = |t: &&str| t.starts_with("etc/kubernetes/") && !t.starts_with("etc/kubernetes/manifests/");
        assert!(!targets.iter().any(kubeadms), "kubeadm's files without its layout");
    }

    #[test]
    fn every_file_lies_below_a_root_and_no_directory_of_the_os_is_named() {
        let mut context = Context::from_json(include_str!("../../../contracts/examples/03-infra.json")).unwrap();
        context.params.pki.layout = Layout::Kubeadm;
        for node in &context.compute.as_ref().unwrap().nodes {
            let files = contents(&context, node);
            for file in &files {
                let below_a_root = ROOTS.iter().any(|root| Path::new(&file.target).starts_with(root));
                assert!(below_a_root || DROP_INS.contains(&file.target.as_str()), "{}", file.target);
            }
            let dirs = directories(&files);
            for os in [
                "",
                ".",
                "etc",
                "var",
                "var/lib",
                "etc/systemd",
                "etc/systemd/system",
                "etc/sysctl.d",
                "etc/modules-load.d",
            ] {
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
        assert_eq!(
            kubelet.source.path().unwrap(),
            Path::new(&format!("kubeconfig/kubeadm/{}/kubelet.conf", master.hostname))
        );
        assert_eq!(kubelet.mode, 0o600);
        let ca = file("etc/kubernetes/pki/ca.crt");
        assert_eq!(
            ca.source.path().unwrap(),
            Path::new(&format!("pki/kubeadm/{}/etc/kubernetes/pki/ca.crt", master.hostname))
        );
        for conf in ["admin", "super-admin", "controller-manager", "scheduler"] {
            assert_eq!(file(&format!("etc/kubernetes/{conf}.conf")).mode, 0o600);
        }
        for worker in compute.workers() {
            assert_eq!(contents(&context, worker), contents(&cfssl, worker), "{}", worker.hostname);
        }
    }
}
