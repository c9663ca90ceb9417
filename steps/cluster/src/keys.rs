//! The cluster's SSH key: made here, so that the private half never crosses the network
//! (CreateKeyPair would return it once, and a crash would lose it); only the public half is
//! imported.

use std::path::Path;

use groundup_runtime::files::{ClusterDir, Written};

use openssl::hash::{hash, MessageDigest};
use openssl::pkey::Private;
use openssl::rsa::Rsa;
use rsa::pkcs1::EncodeRsaPrivateKey;

const KEY_BITS: usize = 3072;

/// Made with RustCrypto's `rsa`, the PKI's backend: the system's OpenSSL 3.0 takes about
/// 0.4 s for a 3072-bit key, on `compute`'s critical path (docs/benchmarks.md's key-backend table).
pub fn generate() -> Result<Rsa<Private>, String> {
    groundup_runtime::timings::keygen(|| {
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, KEY_BITS)
            .map_err(|e| format!("cannot generate an RSA key: {e}"))?;
        let der = key.to_pkcs1_der().map_err(|e| format!("cannot encode an RSA key: {e}"))?;
        Rsa::private_key_from_der(der.as_bytes()).map_err(|e| format!("openssl cannot read an RSA key: {e}"))
    })
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

/// Writes the private key as `file` in the cluster's SSH directory, 0400 from the moment it
/// exists, write-once: if another run wrote one first, that key is the cluster's and is
/// returned instead. A crash leaves no partial key.
pub fn write_private(dir: &ClusterDir, file: &str, key: Rsa<Private>) -> Result<Rsa<Private>, String> {
    let pem = key.private_key_to_pem().map_err(|e| format!("cannot encode the SSH key: {e}"))?;
    match dir.write_once(file, &pem, 0o400)? {
        Written::New => Ok(key),
        Written::Existing(theirs) => {
            let path = dir.path().join(file);
            tracing::info!("another run wrote the SSH key {} first; using it", path.display());
            Rsa::private_key_from_pem(&theirs).map_err(|_| format!("{} is not a PEM RSA private key", path.display()))
        }
    }
}

pub fn read_private(path: &Path) -> Result<Rsa<Private>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read the SSH key {}: {e}", path.display()))?;
    Rsa::private_key_from_pem(&pem).map_err(|_| format!("{} is not a PEM RSA private key", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_private_write_once_and_round_trip() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let dir = ClusterDir::open(home.path().join("ssh"), "c").unwrap();
        let path = dir.path().join("c.id_rsa");
        let key = write_private(&dir, "c.id_rsa", Rsa::generate(1024).unwrap()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o400);
        assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fingerprint(&read_private(&path).unwrap()), fingerprint(&key));

        // A second writer (an orphaned run) neither replaces the key nor keeps its own.
        let second = write_private(&dir, "c.id_rsa", Rsa::generate(1024).unwrap()).unwrap();
        assert_eq!(fingerprint(&second), fingerprint(&key));
        assert_eq!(fingerprint(&read_private(&path).unwrap()), fingerprint(&key));
    }

    #[test]
    fn public_key_is_openssh_and_fingerprint_is_md5_pairs() {
        let key = Rsa::generate(1024).unwrap();
        assert!(openssh_public(&key).starts_with("ssh-rsa AAAAB3NzaC1yc2E"));
        let fp = fingerprint(&key);
        assert_eq!(fp.len(), 47);
        assert_eq!(fp.matches(':').count(), 15);
    }
}
