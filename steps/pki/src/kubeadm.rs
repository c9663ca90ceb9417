//! kubeadm's layout: each master's `/etc/kubernetes/pki` tree, exported from the cfssl-named
//! files (which stay the source of truth and are what re-runs check).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
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
        let root = store.dir.join("kubeadm").join(&master.hostname).join("etc/kubernetes/pki");
        for (source, target) in FILES {
            let source = source.replace("{host}", &master.hostname);
            copy(&store.cert_path(&source), &root.join(format!("{target}.crt")), 0o644)?;
            copy(&store.key_path(&source), &root.join(format!("{target}.key")), 0o600)?;
        }
        copy(&store.key_path("service-account"), &root.join("sa.key"), 0o600)?;
        write_public_key(&store.key_path("service-account"), &root.join("sa.pub"))?;
        roots.push(root);
    }
    Ok(roots)
}

fn private_dir(path: &Path) -> Result<(), String> {
    let dir = path.parent().expect("files live in a directory");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<(), String> {
    private_dir(to)?;
    let bytes = std::fs::read(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    write(to, &bytes, mode)
}

fn write_public_key(private: &Path, to: &Path) -> Result<(), String> {
    let pem = std::fs::read(private).map_err(|e| format!("cannot read {}: {e}", private.display()))?;
    let key = PKey::private_key_from_pem(&pem).map_err(|e| format!("{}: {e}", private.display()))?;
    let public = key.public_key_to_pem().map_err(|e| format!("{}: {e}", private.display()))?;
    write(to, &public, 0o644)
}

/// The mode is set before the content goes in, so a key is never readable by others.
fn write(to: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", to.display());
    let _ = std::fs::remove_file(to);
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(to).map_err(fail)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(fail)?;
    std::io::Write::write_all(&mut &file, bytes).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostname_never_becomes_a_path_outside_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store { dir: dir.path().join("pki") };
        let text = include_str!("../../../contracts/examples/03-infra.json");
        let mut context = groundup_contracts::Context::from_json(text).unwrap();
        let mut master = context.compute.take().unwrap().masters().next().unwrap().clone();
        master.hostname = "../../evil".into();
        let error = export(&store, std::iter::once(&master)).unwrap_err();
        assert!(error.contains("not a host name"), "{error}");
        assert!(!dir.path().join("evil").exists());
    }
}
