//! Files made from other files of the cluster: a kubeconfig embeds certificates, a node's
//! bundle copies certificates, kubeconfigs and the encryption config. Each records, as its
//! `sources`, the fingerprint the context held for every such file when it was made; one whose
//! fingerprint has changed since (a certificate re-issued, the encryption key rotated) makes
//! it stale. `groundup status` flags stale files, and `groundup up` runs the steps that make
//! them again.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use crate::{Context, Section};

/// File path -> fingerprint, as the context records them.
pub type Fingerprints = BTreeMap<String, String>;

/// A kubeconfig or a bundle made from a file that has changed since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Stale {
    /// The kubeconfig, or the bundle's archive.
    pub path: String,
    /// The step that makes it again.
    pub step: String,
    /// Its sources whose fingerprint changed since it was made.
    pub changed: Vec<String>,
}

impl Context {
    /// The fingerprint of every file the context records one for: each certificate and CA
    /// (its SHA-256), each kubeconfig (the SHA-256 of the file), the encryption config (its
    /// keys', in the order the API server tries them).
    pub fn fingerprints(&self) -> Fingerprints {
        let certificates = self.ca.iter().flat_map(|ca| &ca.authorities);
        let certificates = certificates.chain(self.certs.iter().flat_map(|certs| &certs.certificates));
        let mut prints: Fingerprints = certificates.map(|c| (c.cert_path.clone(), c.sha256.clone())).collect();
        let kubeconfigs = self.kubeconfig.iter().flat_map(|k| &k.files).filter(|file| !file.sha256.is_empty());
        prints.extend(kubeconfigs.map(|file| (file.path.clone(), file.sha256.clone())));
        if let Some(encryption) = &self.encryption {
            let keys = encryption.providers.iter().flat_map(|p| p.keys.iter().map(move |k| (&p.provider, k)));
            let keys: Vec<String> =
                keys.map(|(provider, key)| format!("{provider}/{}/{}", key.name, key.sha256)).collect();
            prints.insert(encryption.path.clone(), keys.join(" "));
        }
        prints
    }

    /// What a file made from the files at `paths` records as its sources: the fingerprints the
    /// context holds for them now (a file it records none for, a key, is left out).
    pub fn sources<P: AsRef<str>>(&self, paths: impl IntoIterator<Item = P>) -> Fingerprints {
        let prints = self.fingerprints();
        let known = |path: P| prints.get_key_value(path.as_ref()).map(|(path, print)| (path.clone(), print.clone()));
        paths.into_iter().filter_map(known).collect()
    }

    /// The kubeconfigs and bundles made from a file whose fingerprint has changed since. A
    /// source the context no longer records is not judged: the step that made the file
    /// compares it with what it wants when it runs.
    pub fn stale(&self) -> Vec<Stale> {
        let prints = self.fingerprints();
        let stale = |path: &str, step: Section, sources: &Fingerprints| {
            let changed: Vec<String> = sources
                .iter()
                .filter(|(source, print)| prints.get(*source).is_some_and(|now| now != *print))
                .map(|(source, _)| source.clone())
                .collect();
            (!changed.is_empty()).then(|| Stale { path: path.to_string(), step: step.step().to_string(), changed })
        };
        let kubeconfigs = self.kubeconfig.iter().flat_map(|k| &k.files);
        let kubeconfigs = kubeconfigs.filter_map(|file| stale(&file.path, Section::Kubeconfig, &file.sources));
        let bundles = self.bundles.iter().flat_map(|b| &b.nodes);
        kubeconfigs.chain(bundles.filter_map(|node| stale(&node.archive, Section::Bundles, &node.sources))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole pipeline's example with sources recorded as the steps record them.
    fn made() -> Context {
        let mut context = Context::from_json(include_str!("../examples/05-kubeadm.json")).unwrap();
        let kubeconfig = context.kubeconfig.as_mut().unwrap();
        kubeconfig.files[0].sha256 = "K1".into();
        let admin = kubeconfig.files.iter().position(|f| f.path == "kubeconfig/admin.kubeconfig").unwrap();
        let sources = ["pki/ca.pem", "pki/admin.pem", "pki/admin-key.pem"];
        context.kubeconfig.as_mut().unwrap().files[admin].sources = context.sources(sources);
        let archive = context.bundles.as_ref().unwrap().nodes[0].archive.clone();
        let kubeconfig_path = context.kubeconfig.as_ref().unwrap().files[0].path.clone();
        let bundle_sources = context.sources(["pki/ca.pem", "pki/encryption-config.yaml", kubeconfig_path.as_str()]);
        let node = context.bundles.as_mut().unwrap().nodes.iter_mut().find(|n| n.archive == archive).unwrap();
        node.sources = bundle_sources;
        context
    }

    #[test]
    fn a_file_records_the_fingerprints_of_the_sources_the_context_knows() {
        let context = made();
        let admin = context.kubeconfig.as_ref().unwrap().files.iter().find(|f| f.user == "admin").unwrap();
        let sources: Vec<&str> = admin.sources.keys().map(String::as_str).collect();
        assert_eq!(sources, ["pki/admin.pem", "pki/ca.pem"], "a key has no fingerprint in the context");
        let bundle = &context.bundles.as_ref().unwrap().nodes[0];
        assert_eq!(bundle.sources.len(), 3, "{:?}", bundle.sources);
        assert!(context.stale().is_empty(), "{:?}", context.stale());
    }

    /// A re-issued certificate makes the kubeconfig that embeds it stale; a rotated key the
    /// bundles that copy the encryption config; a kubeconfig written again the bundles that
    /// copy it.
    #[test]
    fn a_changed_source_makes_what_was_made_from_it_stale() {
        let mut context = made();
        let certs = &mut context.certs.as_mut().unwrap().certificates;
        certs.iter_mut().find(|c| c.cert_path == "pki/admin.pem").unwrap().sha256 = "re-issued".into();
        let stale = context.stale();
        assert_eq!(
            stale,
            [Stale {
                path: "kubeconfig/admin.kubeconfig".into(),
                step: "kubeconfig".into(),
                changed: vec!["pki/admin.pem".into()]
            }]
        );

        let mut context = made();
        let encryption = context.encryption.as_mut().unwrap();
        encryption.providers[0].keys[0].sha256 = "rotated".into();
        context.kubeconfig.as_mut().unwrap().files[0].sha256 = "K2".into();
        let stale = context.stale();
        assert_eq!(stale.len(), 1, "{stale:?}");
        assert_eq!(stale[0].step, "bundles");
        let kubeconfig = context.kubeconfig.as_ref().unwrap().files[0].path.clone();
        assert_eq!(stale[0].changed, [kubeconfig, "pki/encryption-config.yaml".to_string()]);
    }
}
