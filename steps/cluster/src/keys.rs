//! The cluster's SSH key: made here, so that the private half never crosses the network
//! (CreateKeyPair would return it once, and a crash would lose it); only the public half is
//! imported.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use openssl::hash::{hash, MessageDigest};
use openssl::pkey::Private;
use openssl::rsa::Rsa;

const KEY_BITS: u32 = 3072;

pub fn generate() -> Result<Rsa<Private>, String> {
    Rsa::generate(KEY_BITS).map_err(|e| format!("cannot generate an RSA key: {e}"))
}

/// The public half in OpenSSH's `ssh-rsa AAAA...` form, which ImportKeyPair takes.
pub fn openssh_public(key: &Rsa<Private>) -> String {
    format!("ssh-rsa {}", openssl::base64::encode_block(&public_blob(key)))
}

/// The fingerprint AWS shows for an imported key (RFC 4716: MD5 of the public key blob), the
/// same as `ssh-keygen -l -E md5`.
pub fn fingerprint(key: &Rsa<Private>) -> String {
    let digest = hash(MessageDigest::md5(), &public_blob(key)).expect("MD5 is available");
    digest.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// SSH wire format: string "ssh-rsa", mpint e, mpint n.
fn public_blob(key: &Rsa<Private>) -> Vec<u8> {
    let mut blob = Vec::new();
    put_string(&mut blob, b"ssh-rsa");
    put_mpint(&mut blob, &key.e().to_vec());
    put_mpint(&mut blob, &key.n().to_vec());
    blob
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A positive integer whose top bit is set gets a leading zero byte.
fn put_mpint(out: &mut Vec<u8>, magnitude: &[u8]) {
    if magnitude.first().is_some_and(|b| b & 0x80 != 0) {
        let mut padded = vec![0u8];
        padded.extend_from_slice(magnitude);
        put_string(out, &padded);
    } else {
        put_string(out, magnitude);
    }
}

/// Writes the private key with mode 0400 from the moment the file exists, in a 0700
/// directory, under a temporary name renamed into place: a crash leaves no partial key.
pub fn write_private(path: &Path, key: &Rsa<Private>) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write the SSH key {}: {e}", path.display());
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(fail)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    let pem = key.private_key_to_pem().map_err(|e| format!("cannot encode the SSH key: {e}"))?;
    let temporary = dir.join(format!(".{}.partial", path.file_name().and_then(|n| n.to_str()).unwrap_or("key")));
    let _ = std::fs::remove_file(&temporary);
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o400).open(&temporary).map_err(fail)?;
    file.write_all(&pem).and_then(|()| file.sync_all()).map_err(fail)?;
    std::fs::rename(&temporary, path).map_err(fail)
}

pub fn read_private(path: &Path) -> Result<Rsa<Private>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read the SSH key {}: {e}", path.display()))?;
    Rsa::private_key_from_pem(&pem).map_err(|_| format!("{} is not a PEM RSA private key", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_private_and_round_trip() {
        let dir = tempfile_dir();
        let path = dir.join("ssh").join("c.id_rsa");
        let key = Rsa::generate(1024).unwrap();
        write_private(&path, &key).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o400);
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fingerprint(&read_private(&path).unwrap()), fingerprint(&key));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn public_key_is_openssh_and_fingerprint_is_md5_pairs() {
        let key = Rsa::generate(1024).unwrap();
        assert!(openssh_public(&key).starts_with("ssh-rsa AAAAB3NzaC1yc2E"));
        let fp = fingerprint(&key);
        assert_eq!(fp.len(), 47);
        assert_eq!(fp.matches(':').count(), 15);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("groundup-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
