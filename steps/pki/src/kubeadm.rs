//! kubeadm's layout: each master's `/etc/kubernetes/pki` tree, exported from the cfssl-named
//! files (which stay the source of truth and are what re-runs check), and the kubeconfigs
//! kubeadm keeps in `/etc/kubernetes/`.

use std::path::{Path, PathBuf};

use crate::x509::read_private_key;
use groundup_contracts::infra::Node;

use crate::catalogue::{KUBEADM_ADMIN, KUBEADM_SUPER_ADMIN};
use crate::error::PkiError;
use crate::store::Store;

/// (cfssl base name, kubeadm path without extension); `{host}` is the master's hostname.
const FILES: &[(&str, &str)] = &[
    ("ca", "ca"),
    ("master-kubernetes", "apiserver"),
    ("apiserver-kubelet-client", "apiserver-kubelet-client"),
    ("apiserver-etcd-client", "apiserver-etcd-client"),
    ("front-proxy-ca", "front-proxy-ca"),
    ("front-proxy-client", "front-proxy-client"),
    ("etcd-ca", "etcd/ca"),
    ("etcd-healthcheck-client", "etcd/healthcheck-client"),
    ("etcd-server-{host}", "etcd/server"),
    ("etcd-peer-{host}", "etcd/peer"),
];

/// Which API server a kubeconfig talks to, as `kubeadm init phase kubeconfig` sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// The control-plane endpoint: the load balancer.
    Endpoint,
    /// The API server on the same master (its own address).
    Local,
}

/// kubeadm's kubeconfigs on each master, `/etc/kubernetes/<file>`: (file, certificate, user,
/// server); `{host}` is the master's hostname.
pub const KUBECONFIGS: &[(&str, &str, &str, Server)] = &[
    ("admin.conf", KUBEADM_ADMIN, KUBEADM_ADMIN, Server::Endpoint),
    ("super-admin.conf", KUBEADM_SUPER_ADMIN, KUBEADM_SUPER_ADMIN, Server::Endpoint),
    ("controller-manager.conf", "kube-controller-manager", "system:kube-controller-manager", Server::Local),
    ("scheduler.conf", "kube-scheduler", "system:kube-scheduler", Server::Local),
    ("kubelet.conf", "{host}", "system:node:{host}", Server::Endpoint),
];

/// Where a master's kubeadm kubeconfig is, relative to the cluster's kubeconfig directory.
pub fn kubeconfig_path(hostname: &str, file: &str) -> String {
    format!("kubeadm/{hostname}/{file}")
}

/// Where a master's `/etc/kubernetes/pki` tree is, relative to the PKI directory.
pub fn pki_root(hostname: &str) -> String {
    format!("kubeadm/{hostname}/etc/kubernetes/pki")
}

/// The files of a master's tree, relative to its root, with their modes.
pub fn pki_files() -> Vec<(String, u32)> {
    let pairs =
        FILES.iter().flat_map(|(_, target)| [(format!("{target}.crt"), 0o644), (format!("{target}.key"), 0o600)]);
    pairs.chain([("sa.key".to_string(), 0o600), ("sa.pub".to_string(), 0o644)]).collect()
}

/// Writes `<dir>/kubeadm/<host>/etc/kubernetes/pki/` for every master; returns the roots.
pub fn export<'a>(store: &Store, masters: impl Iterator<Item = &'a Node>) -> Result<Vec<PathBuf>, PkiError> {
    let mut roots = Vec::new();
    for master in masters {
        crate::names::hostname(&master.hostname).map_err(|e| PkiError::Input(format!("a master's hostname: {e}")))?;
        let root = pki_root(&master.hostname);
        for (source, target) in FILES {
            let source = source.replace("{host}", &master.hostname);
            copy(store, &store.cert_path(&source), &format!("{root}/{target}.crt"), 0o644)?;
            copy(store, &store.key_path(&source), &format!("{root}/{target}.key"), 0o600)?;
        }
        copy(store, &store.key_path("service-account"), &format!("{root}/sa.key"), 0o600)?;
        let public = public_key(&store.key_path("service-account"))?;
        store.write(&format!("{root}/sa.pub"), &public, 0o644)?;
        roots.push(store.dir.join(root));
    }
    Ok(roots)
}

/// The files of the kubeadm trees no master needs now (a master that is gone, or every tree
/// once the layout is left), by hostname: copies of what `pki/` keeps, so they can go.
pub fn unwanted_trees(store: &Store, masters: &[&str]) -> Vec<(String, Vec<String>)> {
    groundup_runtime::files::unwanted_by(&store.dir, tree_host, masters)
}

/// The master whose kubeadm tree holds `file` (relative to the PKI directory), if any.
fn tree_host(file: &str) -> Option<&str> {
    file.strip_prefix("kubeadm/").and_then(|rest| rest.split_once('/')).map(|(host, _)| host)
}

fn copy(store: &Store, from: &Path, to: &str, mode: u32) -> Result<(), PkiError> {
    let bytes = std::fs::read(from).map_err(|e| PkiError::File(format!("cannot read {}: {e}", from.display())))?;
    store.write(to, &bytes, mode)
}

fn public_key(private: &Path) -> Result<Vec<u8>, PkiError> {
    let unusable = |e: &dyn std::fmt::Display| PkiError::File(format!("{}: {e}", private.display()));
    let pem = std::fs::read(private).map_err(|e| unusable(&format!("cannot read it: {e}")))?;
    let key = read_private_key(&pem).map_err(|e| unusable(&e))?;
    key.public_key_to_pem().map_err(|e| unusable(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_has_each_pair_and_keeps_its_keys_private() {
        let files = pki_files();
        assert_eq!(files.len(), 2 * FILES.len() + 2);
        assert!(files.contains(&("ca.crt".into(), 0o644)) && files.contains(&("etcd/peer.key".into(), 0o600)));
        assert!(files.iter().filter(|(name, _)| name.ends_with(".key")).all(|(_, mode)| *mode == 0o600));
    }

    #[test]
    fn a_hostname_never_becomes_a_path_outside_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().join("pki").to_str().unwrap());
        let text = include_str!("../../../contracts/examples/03-infra.json");
        let mut context = groundup_contracts::Context::from_json(text).unwrap();
        let mut master = context.compute.take().unwrap().masters().next().unwrap().clone();
        master.hostname = "../../evil".into();
        let error = export(&store, std::iter::once(&master)).unwrap_err();
        assert!(matches!(&error, PkiError::Input(m) if m.contains("not a host name")), "{error}");
        assert!(!dir.path().join("evil").exists());
    }
}
