//! Files in cfssl's naming: `<name>.pem`, `<name>-key.pem` (0600), `<name>.csr`, in a 0700
//! directory. Every file is written under a temporary name and renamed into place, with its
//! final mode from the moment it exists.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use groundup_contracts::pki::CertRecord;
use groundup_contracts::plan::PlanLog;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use crate::names;
use crate::plan::Authority;
use crate::x509::{name_text, sans, Issued};

pub struct Store {
    pub dir: PathBuf,
}

impl Store {
    /// The store as it is, for reading only (a plan must not even create the directory).
    pub fn at(dir: &str) -> Store {
        Store { dir: PathBuf::from(dir) }
    }

    /// The store, its directory created (0700) if missing.
    pub fn open(dir: &str) -> Result<Store, String> {
        let dir = PathBuf::from(dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)))
            .map_err(|e| format!("cannot create the PKI directory {}: {e}", dir.display()))?;
        Ok(Store { dir })
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
    pub fn load(&self, name: &str) -> Result<Option<(X509, PKey<Private>)>, String> {
        let (cert_path, key_path) = (self.cert_path(name), self.key_path(name));
        if !cert_path.exists() {
            return Ok(None);
        }
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        let cert = X509::from_pem(&read(&cert_path)?)
            .map_err(|_| format!("{} is not a PEM certificate", cert_path.display()))?;
        let key = PKey::private_key_from_pem(&read(&key_path)?)
            .map_err(|_| format!("{} is not a PEM private key", key_path.display()))?;
        Ok(Some((cert, key)))
    }

    /// Key first, certificate last: see [`Store::load`].
    pub fn save(&self, name: &str, issued: &Issued) -> Result<(), String> {
        let pem = |r: Result<Vec<u8>, openssl::error::ErrorStack>| r.map_err(|e| format!("cannot encode {name}: {e}"));
        write(&self.key_path(name), &pem(issued.key.private_key_to_pem_pkcs8())?, 0o600)?;
        write(&self.dir.join(format!("{name}.csr")), &pem(issued.csr.to_pem())?, 0o644)?;
        write(&self.cert_path(name), &pem(issued.cert.to_pem())?, 0o644)
    }

    /// A leaf certificate: never under a CA's file names, never outside the directory,
    /// whatever the plan says (the plan checks this too; a CA key lost is every certificate lost).
    pub fn save_leaf(&self, name: &str, issued: &Issued) -> Result<(), String> {
        names::plain(name)?;
        if let Some(ca) = Authority::ALL.iter().find(|a| names::collide(name, a.file())) {
            return Err(format!("refusing to write the certificate `{name}` over the {} CA's files", ca.file()));
        }
        self.save(name, issued)
    }

    /// A certificate on disk as a plan sees it: left if the context records this very
    /// certificate, adopted if it does not.
    pub fn plan_found(&self, log: &PlanLog, kind: &str, name: &str, cert: &X509, recorded: &[CertRecord]) {
        let sha256 = fingerprint(cert);
        let known = recorded.iter().any(|r| r.name == name && r.sha256 == sha256);
        log.found(kind, name, &self.cert_path(name).display().to_string(), known);
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
            subject: name_text(cert.subject_name()),
            sans: sans(cert),
            serial,
            sha256: digest,
            not_after: cert.not_after().to_string(),
        }
    }
}

/// SHA-256 of the certificate, as the context records it.
fn fingerprint(cert: &X509) -> String {
    cert.digest(MessageDigest::sha256()).map(|d| hex(&d)).unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let temporary = path.with_extension("partial");
    let _ = std::fs::remove_file(&temporary);
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&temporary).map_err(fail)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(fail)?;
    std::fs::rename(&temporary, path).map_err(fail)
}
