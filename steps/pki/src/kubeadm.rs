//! kubeadm's layout: each master's `/etc/kubernetes/pki` tree, exported from the cfssl-named
//! files (which stay the source of truth and are what re-runs check).

use std::path::{Path, PathBuf};

use groundup_contracts::infra::Node;
use openssl::pkey::PKey;

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

/// Writes `<dir>/kubeadm/<host>/etc/kubernetes/pki/` for every master; returns the roots.
pub fn export<'a>(store: &Store, masters: impl Iterator<Item = &'a Node>) -> Result<Vec<PathBuf>, String> {
    let mut roots = Vec::new();
    for master in masters {
        crate::names::hostname(&master.hostname).map_err(|e| format!("a master's hostname: {e}"))?;
        let root = format!("kubeadm/{}/etc/kubernetes/pki", master.hostname);
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

fn copy(store: &Store, from: &Path, to: &str, mode: u32) -> Result<(), String> {
    let bytes = std::fs::read(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    store.write(to, &bytes, mode)
}

fn public_key(private: &Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(private).map_err(|e| format!("cannot read {}: {e}", private.display()))?;
    let key = PKey::private_key_from_pem(&pem).map_err(|e| format!("{}: {e}", private.display()))?;
    key.public_key_to_pem().map_err(|e| format!("{}: {e}", private.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostname_never_becomes_a_path_outside_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().join("pki").to_str().unwrap());
        let text = include_str!("../../../contracts/examples/03-infra.json");
        let mut context = groundup_contracts::Context::from_json(text).unwrap();
        let mut master = context.compute.take().unwrap().masters().next().unwrap().clone();
        master.hostname = "../../evil".into();
        let error = export(&store, std::iter::once(&master)).unwrap_err();
        assert!(error.contains("not a host name"), "{error}");
        assert!(!dir.path().join("evil").exists());
    }
}
