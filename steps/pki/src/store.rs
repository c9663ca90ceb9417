//! Files in cfssl's naming: `<name>.pem`, `<name>-key.pem` (0600), `<name>.csr`, in the
//! cluster's 0700 PKI directory, written through [`ClusterDir`]: atomically, with their final
//! mode from the moment they exist, recorded for `down --purge`. A CA's key is write-once.

use std::path::{Path, PathBuf};

use groundup_contracts::pki::CertRecord;
use groundup_runtime::artifact::{diff, write_file, Contents, WritePolicy};
use groundup_runtime::files::{recorded, same_file, ClusterDir};
use groundup_runtime::plan::Gate;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use crate::error::PkiError;
use crate::names;
use crate::spec::Authority;
use crate::x509::{not_after, read_private_key, sans, subject_of, Issued};

/// Where certificates of nodes that are gone are kept, inside the store.
pub const RETIRED: &str = "retired";

pub struct Store {
    pub dir: PathBuf,
    /// `None` for a store opened only to read (a plan).
    files: Option<ClusterDir>,
}

impl Store {
    /// The store as it is, for reading only (a plan must not even create the directory).
    pub fn at(dir: &str) -> Store {
        Store { dir: PathBuf::from(dir), files: None }
    }

    /// The store of `cluster`, its directory checked, created (0700) if missing, and locked
    /// against another groundup writing in it until the store is dropped.
    pub fn open(dir: &str, cluster: &str) -> Result<Store, PkiError> {
        let files = ClusterDir::open(dir, cluster)?;
        files.lock()?;
        Ok(Store { dir: PathBuf::from(dir), files: Some(files) })
    }

    /// The store as a step converges it: opened (see [`Store::open`]) in a run, only read in
    /// a plan, which must not even create its directory.
    pub fn through(gate: &Gate, dir: &str, cluster: &str) -> Result<Store, PkiError> {
        Ok(gate.in_run(|| Store::open(dir, cluster))?.unwrap_or_else(|| Store::at(dir)))
    }

    /// Writes a copy under the store's directory (a kubeadm tree's file; `relative` may name
    /// subdirectories) where its bytes or mode differ: one that matches is left alone, so its
    /// time, and the bytes of a node's archive that holds it, stay as they were.
    pub fn write(&self, relative: &str, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
        let wanted = Contents { bytes: bytes.to_vec(), mode };
        let found = Contents::read(&self.dir.join(relative));
        if diff(WritePolicy::Replace, Some(&wanted), found.as_ref()).is_none() {
            return Ok(());
        }
        Ok(write_file(self.writable()?, relative, &wanted, WritePolicy::Replace)?)
    }

    /// Removes a copy groundup made here (a kubeadm tree's file), and the directories it
    /// leaves empty. Never a certificate or a key of its own: those are retired.
    pub fn remove_copy(&self, relative: &str) -> Result<(), PkiError> {
        Ok(self.writable()?.remove_emptied(relative)?)
    }

    fn writable(&self) -> Result<&ClusterDir, PkiError> {
        self.files.as_ref().ok_or_else(|| PkiError::File("the PKI store was opened read-only".into()))
    }

    pub fn cert_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    pub fn key_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-key.pem"))
    }

    /// The certificate and its key. The certificate is written last, so without it there is
    /// nothing to keep (a crash came between the key and the certificate); a certificate
    /// without its key, or an unreadable file, is an error.
    pub fn load(&self, name: &str) -> Result<Option<(X509, PKey<Private>)>, PkiError> {
        let Some(cert) = self.load_cert(name)? else { return Ok(None) };
        let key = private_key(&self.key_path(name))?;
        Ok(Some((cert, key)))
    }

    /// The certificate alone, for what needs no key (a record of one just written).
    pub fn load_cert(&self, name: &str) -> Result<Option<X509>, PkiError> {
        let cert_path = self.cert_path(name);
        if !cert_path.exists() {
            return Ok(None);
        }
        let cert = X509::from_pem(&read(&cert_path)?)
            .map_err(|_| PkiError::File(format!("{} is not a PEM certificate", cert_path.display())))?;
        Ok(Some(cert))
    }

    /// Whether any certificate in the directory verifies with `name`'s key; an unreadable key
    /// or directory is an error (the caller then assumes it did).
    pub fn key_signed_anything(&self, name: &str) -> Result<bool, PkiError> {
        let key = private_key(&self.key_path(name))?;
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| PkiError::File(format!("cannot list {}: {e}", self.dir.display())))?;
        for path in entries.flatten().map(|e| e.path()) {
            let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default();
            if !file.ends_with(".pem") || file.ends_with("-key.pem") {
                continue;
            }
            let signed = read(&path).ok().and_then(|pem| X509::from_pem(&pem).ok()).and_then(|c| c.verify(&key).ok());
            if signed == Some(true) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Saves a certificate, its request and, under `key`, its key: key first, certificate
    /// last (see [`Store::load`]). `key` is the key rule: a new key replaces whatever is there
    /// (`Replace`: only once [`Store::retire`] moved an old one away); a certificate issued for
    /// the key on disk leaves it as it is (`KeepKey`); a CA's key is written once and never
    /// replaced (`WriteOnce`). A leaf never goes under a CA's file names, nor outside the
    /// directory, whatever the plan says (a CA key lost is every certificate lost).
    pub fn save(&self, name: &str, issued: &Issued, key: WritePolicy) -> Result<(), PkiError> {
        let files = self.writable()?;
        match key {
            WritePolicy::WriteOnce => names::plain(name)?,
            WritePolicy::Replace | WritePolicy::KeepKey => leaf_name(name)?,
        }
        let key_file = format!("{name}-key.pem");
        // With the directory locked, a CA key without its certificate was left by a killed
        // run and signed nothing (its own certificate comes first): it alone may go.
        if key == WritePolicy::WriteOnce && !self.cert_path(name).exists() && self.key_path(name).exists() {
            tracing::warn!("{key_file}: a key without its certificate, left by a killed run, is replaced");
            files.remove(&key_file)?;
        }
        let write = |file: &str, bytes, mode, policy| {
            write_file(files, file, &Contents { bytes, mode }, policy).map_err(PkiError::from)
        };
        if key != WritePolicy::KeepKey {
            write(&key_file, pem(name, issued.key.private_key_to_pem_pkcs8())?, 0o600, key)?;
        }
        write(&format!("{name}.csr"), pem(name, issued.csr.to_pem())?, 0o644, WritePolicy::Replace)?;
        write(&format!("{name}.pem"), pem(name, issued.cert.to_pem())?, 0o644, WritePolicy::Replace)
    }

    /// The certificates (CAs included) groundup wrote here: the request files it recorded
    /// at the top level. A request goes last when a certificate is retired, so a certificate
    /// whose move was cut short is still found.
    pub fn written(&self) -> Vec<String> {
        recorded(&self.dir)
            .iter()
            .filter(|file| !file.contains('/'))
            .filter_map(|file| file.strip_suffix(".csr"))
            .map(String::from)
            .collect()
    }

    /// Moves a certificate that is no longer wanted, with its key and request, to
    /// `retired/<name>` (or `retired/<name>-<n>` if an earlier one is there): never deleted,
    /// never over another file, still recorded for a purge. Certificate first: without it,
    /// what stays behind is nothing to keep, and the next run moves the rest to the same place.
    /// Returns where the certificate went, or `None` if none of its files is here.
    pub fn retire(&self, name: &str) -> Result<Option<PathBuf>, PkiError> {
        let files = self.writable()?;
        names::plain(name)?;
        let here: Vec<(String, &str)> = [".pem", "-key.pem", ".csr"]
            .into_iter()
            .map(|suffix| (format!("{name}{suffix}"), suffix))
            .filter(|(file, _)| self.dir.join(file).exists())
            .collect();
        if here.is_empty() {
            return Ok(None);
        }
        // A name a killed move already gave this very file counts as free.
        let free = |stem: &str| {
            here.iter().all(|(file, suffix)| {
                let target = self.dir.join(format!("{RETIRED}/{stem}{suffix}"));
                !target.exists() || same_file(&self.dir.join(file), &target)
            })
        };
        let stem = std::iter::once(name.to_string())
            .chain((2..).map(|n| format!("{name}-{n}")))
            .find(|stem| free(stem))
            .expect("an endless list has a free name");
        for (file, suffix) in &here {
            files.move_file(file, &format!("{RETIRED}/{stem}{suffix}"))?;
        }
        Ok(Some(self.dir.join(RETIRED).join(format!("{stem}.pem"))))
    }

    /// A leaf's private key made ahead of its certificate: a key already there is kept
    /// (whoever wrote it, `certs` adopts it).
    pub fn save_key(&self, name: &str, key: &PKey<Private>) -> Result<(), PkiError> {
        let files = self.writable()?;
        leaf_name(name)?;
        let bytes = pem(name, key.private_key_to_pem_pkcs8())?;
        Ok(write_file(files, &format!("{name}-key.pem"), &Contents { bytes, mode: 0o600 }, WritePolicy::KeepKey)?)
    }

    /// The private key of `name` if its file is there and reads as a key (written atomically,
    /// a key file is whole or absent; one that does not read is replaced by a new key).
    pub fn load_key(&self, name: &str) -> Option<PKey<Private>> {
        std::fs::read(self.key_path(name)).ok().and_then(|pem| read_private_key(&pem).ok())
    }

    /// Tells the gate that `name` exists (`cert`, unless its files are unreadable), and
    /// whether the context records that very certificate.
    pub fn found(&self, gate: &Gate, kind: &str, name: &str, cert: Option<&X509>, recorded: &[CertRecord]) {
        let known = cert.is_some_and(|c| recorded.iter().any(|r| r.name == name && r.sha256 == fingerprint(c)));
        gate.found(kind, name, &self.cert_path(name).display().to_string(), known);
    }

    pub fn record(&self, name: &str, signer: &str, cert: &X509) -> CertRecord {
        let digest = fingerprint(cert);
        let serial =
            cert.serial_number().to_bn().and_then(|b| b.to_hex_str().map(|s| s.to_string())).unwrap_or_default();
        CertRecord {
            name: name.into(),
            signer: signer.into(),
            cert_path: self.cert_path(name).display().to_string(),
            key_path: self.key_path(name).display().to_string(),
            subject: subject_of(cert.subject_name()),
            sans: sans(cert),
            serial,
            sha256: digest,
            not_after: not_after(cert),
        }
    }
}

/// A leaf's files go under a plain name that is no CA's.
fn leaf_name(name: &str) -> Result<(), PkiError> {
    names::plain(name)?;
    match Authority::ALL.iter().find(|a| names::collide(name, a.file())) {
        Some(ca) => Err(PkiError::Input(format!(
            "refusing to write the certificate `{name}` over the {} CA's files",
            ca.file()
        ))),
        None => Ok(()),
    }
}

/// The threads that write `files` of a cluster's files at once (one per file, up to 16). Every
/// file is written atomically and synced to disk before its rename, so a step that writes many
/// mostly waits on the disk: a thread per file overlaps those waits, where one per core (rayon's
/// default) would leave the cores idle.
pub fn disk_writers(files: usize) -> Result<rayon::ThreadPool, PkiError> {
    const MOST: usize = 16;
    rayon::ThreadPoolBuilder::new()
        .num_threads(files.clamp(1, MOST))
        .build()
        .map_err(|e| PkiError::File(format!("cannot start the threads that write the files: {e}")))
}

/// SHA-256 of the certificate, as the context records it.
pub fn fingerprint(cert: &X509) -> String {
    cert.digest(MessageDigest::sha256()).map(|d| hex(&d)).unwrap_or_default()
}

/// SHA-256 of a file of the cluster's (a kubeconfig), written as a certificate's.
pub fn file_fingerprint(bytes: &[u8]) -> String {
    hex(&openssl::sha::sha256(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

fn pem(name: &str, encoded: Result<Vec<u8>, openssl::error::ErrorStack>) -> Result<Vec<u8>, PkiError> {
    encoded.map_err(|e| PkiError::Crypto(format!("cannot encode {name}: {e}")))
}

fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    std::fs::read(path).map_err(|e| PkiError::File(format!("cannot read {}: {e}", path.display())))
}

fn private_key(path: &Path) -> Result<PKey<Private>, PkiError> {
    read_private_key(&read(path)?).map_err(|_| PkiError::File(format!("{} is not a PEM private key", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{CertSpec, Usage};
    use crate::x509::{issue_ca, issue_leaf};
    use groundup_contracts::pki::{KeyAlgorithm, PkiParams};

    #[test]
    fn a_leaf_is_never_saved_under_a_ca_name_or_outside_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("pki").to_str().unwrap(), "test").unwrap();
        let params = PkiParams { key: KeyAlgorithm::EcdsaP256, ..PkiParams::default() };
        let ca = issue_ca(Authority::Kubernetes, &params).unwrap();
        let issued = issue_leaf(
            &CertSpec::new("admin", Authority::Kubernetes, "admin", None, Usage { server: false, client: true }),
            &ca.cert,
            &ca.key,
            &params,
        )
        .unwrap();
        for name in ["ca", "etcd-ca-key", "front-proxy-ca", "../evil", ".hidden"] {
            assert!(store.save(name, &issued, WritePolicy::Replace).is_err(), "{name}");
        }
        let written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(written, ["pki"]);
        let certificates = |dir: &std::path::Path| {
            std::fs::read_dir(dir)
                .unwrap()
                .filter(|e| !e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
                .count()
        };
        assert_eq!(certificates(&store.dir), 0);
        store.save("admin", &issued, WritePolicy::Replace).unwrap();
        assert!(store.cert_path("admin").exists());
    }
}
