//! The PKI steps' parameters and sections. Sections hold paths, subjects and fingerprints,
//! never key material.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::derived::Fingerprints;
use crate::error::ContextError;
use crate::x509::{CertTime, Subject};

/// The longest validity groundup gives a certificate: 100 years, well inside X.509's dates.
pub const MAX_VALIDITY_DAYS: u32 = 36_500;

/// How the certificates are made; the defaults are the course's subject and kubeadm's
/// lifetimes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PkiParams {
    /// Where the files go, relative to the cluster's directory (the state file's); a plain
    /// relative path unless `allow_outside_dir`.
    pub dir: String,
    /// Allows a `dir` that is `.`, absolute or has `..` (`init --allow-outside-dir`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_outside_dir: bool,
    pub key: KeyAlgorithm,
    pub ca_days: u32,
    pub leaf_days: u32,
    /// A certificate expiring within this many days counts as a problem.
    pub renew_within_days: u32,
    pub subject: SubjectNames,
    /// cfssl (flat, the course's names) or also kubeadm: a `<host>/etc/kubernetes/pki` tree
    /// per master under `<dir>/kubeadm/`, kubeadm's `admin.conf`, `super-admin.conf`,
    /// `controller-manager.conf`, `scheduler.conf` and `kubelet.conf` per master (and the
    /// certificates they need), and both in the masters' node bundles.
    pub layout: Layout,
    /// Certificates added with `groundup-certs --csr`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom: Vec<CustomCert>,
}

impl Default for PkiParams {
    fn default() -> Self {
        PkiParams {
            dir: "pki".into(),
            allow_outside_dir: false,
            key: KeyAlgorithm::Rsa2048,
            ca_days: 3650,
            leaf_days: 365,
            renew_within_days: 30,
            subject: SubjectNames::default(),
            layout: Layout::Cfssl,
            custom: Vec::new(),
        }
    }
}

impl PkiParams {
    /// Validity within bounds: at least a day, at most [`MAX_VALIDITY_DAYS`], and a CA
    /// outliving the renewal window (a CA is never replaced automatically, so one made
    /// already "expiring" would stop every later run).
    pub fn validate(&self) -> Result<(), ContextError> {
        for (field, days) in [("params.pki.ca_days", self.ca_days), ("params.pki.leaf_days", self.leaf_days)] {
            if !(1..=MAX_VALIDITY_DAYS).contains(&days) {
                return Err(ContextError::field(
                    field,
                    format!("{days} is not between 1 and {MAX_VALIDITY_DAYS} days"),
                ));
            }
        }
        if self.ca_days <= self.renew_within_days {
            return Err(ContextError::field(
                "params.pki.ca_days",
                format!(
                    "{} days is within the renewal window (renew_within_days {})",
                    self.ca_days, self.renew_within_days
                ),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    Rsa2048,
    EcdsaP256,
}

impl KeyAlgorithm {
    /// The names the context and the command line use.
    pub const NAMES: [&'static str; 2] = ["rsa2048", "ecdsa-p256"];

    pub fn from_name(name: &str) -> Option<KeyAlgorithm> {
        match name {
            "rsa2048" => Some(KeyAlgorithm::Rsa2048),
            "ecdsa-p256" => Some(KeyAlgorithm::EcdsaP256),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    Cfssl,
    Kubeadm,
}

/// The course's `names` block: C, L, O (of the CA), OU, ST.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectNames {
    pub country: String,
    pub locality: String,
    pub organization: String,
    pub organizational_unit: String,
    pub state: String,
}

impl Default for SubjectNames {
    fn default() -> Self {
        SubjectNames {
            country: "UK".into(),
            locality: "England".into(),
            organization: "Ytech".into(),
            organizational_unit: "DEVOPS".into(),
            state: "London".into(),
        }
    }
}

/// The three authorities: Kubernetes, etcd and front-proxy (etcd never shares the API
/// server's CA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CaSection {
    pub authorities: Vec<CertRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CertsSection {
    pub certificates: Vec<CertRecord>,
}

/// One certificate on disk, as it is: enough to find it, recognise it and know when it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CertRecord {
    /// The cfssl-style base name: `<name>.pem`, `<name>-key.pem`, `<name>.csr`.
    pub name: String,
    /// The authority that signed it (its own name for a CA).
    pub signer: String,
    pub cert_path: String,
    pub key_path: String,
    pub subject: Subject,
    pub sans: Vec<String>,
    pub serial: String,
    pub sha256: String,
    pub not_after: CertTime,
}

/// A certificate asked for in cfssl's terms (`groundup-certs --csr`), kept so that every later
/// run checks it like the built-in ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomCert {
    /// The file base name: the CSR file's name without `-csr.json`.
    pub name: String,
    pub csr: CfsslCsr,
    /// cfssl usages from the profile: "signing", "key encipherment", "server auth", "client auth".
    pub usages: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_hours: Option<u32>,
}

/// cfssl's CSR JSON: `{"CN", "hosts", "key": {"algo", "size"}, "names": [{"C","L","O","OU","ST"}]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CfsslCsr {
    #[serde(rename = "CN")]
    pub common_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<CfsslKey>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<CfsslName>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CfsslKey {
    pub algo: String,
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CfsslName {
    #[serde(rename = "C", default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(rename = "L", default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(rename = "O", default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(rename = "OU", default, skip_serializing_if = "Option::is_none")]
    pub organizational_unit: Option<String>,
    #[serde(rename = "ST", default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_algorithm_names_are_the_serialized_ones() {
        for name in KeyAlgorithm::NAMES {
            let algorithm = KeyAlgorithm::from_name(name).unwrap();
            assert_eq!(serde_json::to_value(algorithm).unwrap(), name);
        }
        assert_eq!(KeyAlgorithm::from_name("rsa4096"), None);
    }

    #[test]
    fn validity_is_bounded() {
        assert!(PkiParams::default().validate().is_ok());
        let with = |change: fn(&mut PkiParams)| {
            let mut params = PkiParams::default();
            change(&mut params);
            params.validate().unwrap_err().to_string()
        };
        assert!(with(|p| p.ca_days = u32::MAX).contains("params.pki.ca_days"));
        assert!(with(|p| p.leaf_days = 0).contains("params.pki.leaf_days"));
        assert!(with(|p| p.leaf_days = MAX_VALIDITY_DAYS + 1).contains("params.pki.leaf_days"));
        assert!(with(|p| p.ca_days = 30).contains("renewal window"));
    }
}

/// The encryption-at-rest config for the API server (`groundup-encryption`): where it is and
/// which keys it holds, by name and fingerprint, never the keys themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EncryptionSection {
    /// The `EncryptionConfiguration` file, 0600, in the PKI directory.
    pub path: String,
    /// The providers in the order the API server tries them; the first encrypts new writes.
    pub providers: Vec<EncryptionProviderRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EncryptionProviderRecord {
    /// aescbc, aesgcm or secretbox (`identity`, always last, is implied).
    pub provider: String,
    pub keys: Vec<EncryptionKeyRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EncryptionKeyRecord {
    pub name: String,
    /// SHA-256 of the key, to recognise it; the key itself is only in the file.
    pub sha256: String,
}

/// The kubeconfigs `groundup-kubeconfig` wrote (certificates embedded): where each is, whom it
/// authenticates and which server it talks to; never key material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KubeconfigSection {
    pub files: Vec<KubeconfigRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KubeconfigRecord {
    pub path: String,
    /// The user: the client certificate's CN (`admin`, `system:node:<hostname>`, ...).
    pub user: String,
    pub server: String,
    /// SHA-256 of the file, so that a bundle that copies it knows when it changed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    /// The certificates it embeds, by the fingerprints they had when it was written (see
    /// [`crate::derived`]): one re-issued since makes it stale.
    #[serde(default, skip_serializing_if = "Fingerprints::is_empty")]
    pub sources: Fingerprints,
}

/// The node bundles `groundup-bundles` laid out: per node, its tree and its archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BundlesSection {
    pub nodes: Vec<BundleRecord>,
}

impl BundlesSection {
    /// Proves each bundle's paths are exactly `<nodes_dir>/<hostname>` and its archive, so a
    /// hand-edited state file cannot make `distribute` read and send any other file.
    pub fn check_paths(&self, nodes_dir: &str) -> Result<(), ContextError> {
        for (i, bundle) in self.nodes.iter().enumerate() {
            crate::paths::check_plain_name(&format!("bundles.nodes[{i}].hostname"), &bundle.hostname)?;
            let dir = std::path::Path::new(nodes_dir).join(&bundle.hostname);
            let archive = std::path::Path::new(nodes_dir).join(format!("{}.tar.gz", bundle.hostname));
            for (field, value, wanted) in [("dir", &bundle.dir, dir), ("archive", &bundle.archive, archive)] {
                if std::path::Path::new(value) != wanted {
                    return Err(ContextError::field(
                        format!("bundles.nodes[{i}].{field}"),
                        format!("`{value}` is not `{}`, where groundup lays out that node's bundle; run `groundup up --from bundles` to record it again", wanted.display()),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BundleRecord {
    pub hostname: String,
    /// `nodes/<hostname>/`, mirroring the node's filesystem.
    pub dir: String,
    /// `nodes/<hostname>.tar.gz`, the same for `scp` by hand.
    pub archive: String,
    pub files: usize,
    /// The cluster's files it copies, by the fingerprints they had when it was laid out (see
    /// [`crate::derived`]): one changed since (a certificate re-issued, the encryption key
    /// rotated, a kubeconfig written again) makes it stale.
    #[serde(default, skip_serializing_if = "Fingerprints::is_empty")]
    pub sources: Fingerprints,
}
