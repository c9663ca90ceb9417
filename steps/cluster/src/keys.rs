//! The cluster's SSH key: made here, so that the private half never crosses the network
//! (CreateKeyPair would return it once, and a crash would lose it); only the public half is
//! imported. A new key is ED25519 (or RSA-4096, `params.ssh_key`): the types and lengths
//! ImportKeyPair takes. A cluster's existing key is used whatever its type (an RSA-3072 key
//! of an older groundup included): a key is never replaced.

use std::path::{Path, PathBuf};

use groundup_cloud::CloudError;
use groundup_contracts::params::SshKeyType;
use groundup_runtime::files::{ClusterDir, Written};
use groundup_runtime::{RuntimeError, StepError};

use openssl::hash::{hash, MessageDigest};
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use rsa::pkcs1::EncodeRsaPrivateKey;

const RSA_BITS: usize = 4096;
const ED25519: &[u8] = b"ssh-ed25519";
/// The OpenSSH private key format, the only one OpenSSH reads an ED25519 key from.
const OPENSSH_BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const OPENSSH_END: &str = "-----END OPENSSH PRIVATE KEY-----";
const OPENSSH_MAGIC: &[u8] = b"openssh-key-v1\0";

/// The cluster's SSH private key.
pub enum SshKey {
    Rsa(Rsa<Private>),
    Ed25519(PKey<Private>),
}

/// The file of a cluster's key of `kind` in its SSH directory, named as `ssh-keygen` names it.
pub fn file_name(cluster: &str, kind: SshKeyType) -> String {
    match kind {
        SshKeyType::Ed25519 => format!("{cluster}.id_ed25519"),
        SshKeyType::Rsa4096 => format!("{cluster}.id_rsa"),
    }
}

/// What can go wrong with the cluster's SSH key: the one error of this module (a failure
/// while working, never bad input).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The crypto library could not make, encode or read a key; `what` says which.
    #[error("cannot {what}: {cause}")]
    Crypto { what: &'static str, cause: String },
    #[error("{} is not an SSH private key groundup wrote (PEM RSA or OpenSSH ED25519)", .0.display())]
    Unreadable(PathBuf),
    #[error("cannot read the SSH key {}: {cause}", path.display())]
    Read { path: PathBuf, cause: String },
    /// A plan makes no key, so there is none to import (a DryRun on real AWS asks).
    #[error("the SSH key is not made yet")]
    NotMade,
    /// The key's directory or file, as the runtime writes it.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// In a cloud step: the runtime's failure stays the runtime's, the key's own is boxed (the
/// cloud layer sits below this crate).
impl From<KeyError> for CloudError {
    fn from(e: KeyError) -> CloudError {
        match e {
            KeyError::Runtime(e) => CloudError::Runtime(e),
            e => CloudError::SshKey(Box::new(e)),
        }
    }
}

/// In a head start, which runs without AWS: a failure while working (exit 1), or the runtime's
/// own exit code.
impl From<KeyError> for StepError {
    fn from(e: KeyError) -> StepError {
        match e {
            KeyError::Runtime(e) => e.into(),
            e => StepError::new(e.to_string()),
        }
    }
}

/// The error of a crypto call, saying which.
fn crypto(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> KeyError {
    move |e| KeyError::Crypto { what, cause: e.to_string() }
}

impl SshKey {
    /// A new key. RSA is made with RustCrypto's `rsa`, the PKI's backend: the system's
    /// OpenSSL 3.0 is several times slower (docs/benchmarks.md's key-backend table).
    pub fn generate(kind: SshKeyType) -> Result<SshKey, KeyError> {
        groundup_runtime::timings::keygen(|| match kind {
            SshKeyType::Ed25519 => {
                PKey::generate_ed25519().map(SshKey::Ed25519).map_err(|e| crypto("generate an ED25519 key")(&e))
            }
            SshKeyType::Rsa4096 => {
                let key = rsa::PrivateKey::new(&mut getrandom::SysRng, RSA_BITS)
                    .map_err(|e| crypto("generate an RSA key")(&e))?;
                let der = key.to_pkcs1_der().map_err(|e| crypto("encode an RSA key")(&e))?;
                Rsa::private_key_from_der(der.as_bytes())
                    .map(SshKey::Rsa)
                    .map_err(|e| crypto("read an RSA key with openssl")(&e))
            }
        })
    }

    /// The public half in OpenSSH's `ssh-ed25519 AAAA...` form, which ImportKeyPair takes.
    pub fn openssh_public(&self) -> String {
        let kind = match self {
            SshKey::Rsa(_) => "ssh-rsa",
            SshKey::Ed25519(_) => "ssh-ed25519",
        };
        format!("{kind} {}", openssl::base64::encode_block(&self.public_blob()))
    }

    /// The fingerprint of the public key blob as MD5 pairs (RFC 4716), the same as
    /// `ssh-keygen -l -E md5` and what AWS shows for an imported RSA key.
    pub fn fingerprint(&self) -> String {
        let digest = hash(MessageDigest::md5(), &self.public_blob()).expect("MD5 is available");
        digest.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
    }

    /// SSH wire format: string "ssh-rsa", mpint e, mpint n; or string "ssh-ed25519", string key.
    fn public_blob(&self) -> Vec<u8> {
        let mut blob = Vec::new();
        match self {
            SshKey::Rsa(key) => {
                put_string(&mut blob, b"ssh-rsa");
                put_mpint(&mut blob, &key.e().to_vec());
                put_mpint(&mut blob, &key.n().to_vec());
            }
            SshKey::Ed25519(key) => {
                put_string(&mut blob, ED25519);
                put_string(&mut blob, &key.raw_public_key().expect("an ED25519 key has a public half"));
            }
        }
        blob
    }

    /// The private key file's contents: PEM for RSA, OpenSSH's own format for ED25519.
    fn to_file(&self) -> Result<Vec<u8>, KeyError> {
        match self {
            SshKey::Rsa(key) => key.private_key_to_pem().map_err(|e| crypto("encode the SSH key")(&e)),
            SshKey::Ed25519(key) => {
                let seed = key.raw_private_key().map_err(|e| crypto("encode the SSH key")(&e))?;
                let public = key.raw_public_key().map_err(|e| crypto("encode the SSH key")(&e))?;
                Ok(openssh_ed25519(&seed, &public, &self.public_blob()).into_bytes())
            }
        }
    }

    fn from_file(bytes: &[u8], path: &Path) -> Result<SshKey, KeyError> {
        let unreadable = || KeyError::Unreadable(path.into());
        match std::str::from_utf8(bytes).map(str::trim_start) {
            Ok(text) if text.starts_with(OPENSSH_BEGIN) => read_openssh_ed25519(text).ok_or_else(unreadable),
            _ => Rsa::private_key_from_pem(bytes).map(SshKey::Rsa).map_err(|_| unreadable()),
        }
    }
}

/// An unencrypted OpenSSH private key holding one ED25519 key (PROTOCOL.key in OpenSSH's
/// sources): the public blob, then a private section of two equal check words, the key type,
/// the public key, seed and public key together, an empty comment, and padding to 8 bytes.
fn openssh_ed25519(seed: &[u8], public: &[u8], public_blob: &[u8]) -> String {
    let mut check = [0u8; 4];
    openssl::rand::rand_bytes(&mut check).expect("the system's random number generator works");
    let mut private = Vec::new();
    private.extend_from_slice(&check);
    private.extend_from_slice(&check);
    put_string(&mut private, ED25519);
    put_string(&mut private, public);
    put_string(&mut private, &[seed, public].concat());
    put_string(&mut private, b"");
    for pad in 1u8.. {
        if private.len() % 8 == 0 {
            break;
        }
        private.push(pad);
    }
    let mut blob = OPENSSH_MAGIC.to_vec();
    for field in [&b"none"[..], b"none", b""] {
        put_string(&mut blob, field);
    }
    blob.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut blob, public_blob);
    put_string(&mut blob, &private);
    let encoded = openssl::base64::encode_block(&blob);
    let lines: Vec<&str> = encoded.as_bytes().chunks(70).map(|c| std::str::from_utf8(c).expect("base64")).collect();
    format!("{OPENSSH_BEGIN}\n{}\n{OPENSSH_END}\n", lines.join("\n"))
}

/// The key [`openssh_ed25519`] wrote; `None` for anything else (encrypted, other types).
fn read_openssh_ed25519(text: &str) -> Option<SshKey> {
    let body: String = text.lines().skip(1).take_while(|l| !l.starts_with(OPENSSH_END)).collect();
    let blob = openssl::base64::decode_block(&body).ok()?;
    let mut reader = Reader(blob.strip_prefix(OPENSSH_MAGIC)?);
    let (cipher, kdf, _options) = (reader.string()?, reader.string()?, reader.string()?);
    if cipher != b"none" || kdf != b"none" || reader.u32()? != 1 {
        return None;
    }
    reader.string()?;
    let mut private = Reader(reader.string()?);
    if private.u32()? != private.u32()? || private.string()? != ED25519 {
        return None;
    }
    let public = private.string()?;
    let pair = private.string()?;
    let key = PKey::private_key_from_raw_bytes(pair.get(..32)?, Id::ED25519).ok()?;
    (key.raw_public_key().ok()? == public).then_some(SshKey::Ed25519(key))
}

/// Reads SSH wire format: big-endian u32s and length-prefixed strings.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (word, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*word))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        let (bytes, rest) = (self.0.get(..len)?, self.0.get(len..)?);
        self.0 = rest;
        Some(bytes)
    }
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
pub fn write_private(dir: &ClusterDir, file: &str, key: SshKey) -> Result<SshKey, KeyError> {
    match dir.write_once(file, &key.to_file()?, 0o400)? {
        Written::New => Ok(key),
        Written::Existing(theirs) => {
            let path = dir.path().join(file);
            tracing::info!("another run wrote the SSH key {} first; using it", path.display());
            SshKey::from_file(&theirs, &path)
        }
    }
}

pub fn read_private(path: &Path) -> Result<SshKey, KeyError> {
    let bytes = std::fs::read(path).map_err(|e| KeyError::Read { path: path.into(), cause: e.to_string() })?;
    SshKey::from_file(&bytes, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn small_rsa() -> SshKey {
        SshKey::Rsa(Rsa::generate(1024).unwrap())
    }

    #[test]
    fn key_files_are_private_write_once_and_round_trip() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let dir = ClusterDir::open(home.path().join("ssh"), "c").unwrap();
        for (file, make) in [
            ("c.id_rsa", small_rsa as fn() -> SshKey),
            ("c.id_ed25519", || SshKey::generate(SshKeyType::Ed25519).unwrap()),
        ] {
            let path = dir.path().join(file);
            let key = write_private(&dir, file, make()).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o400);
            assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777, 0o700);
            assert_eq!(read_private(&path).unwrap().fingerprint(), key.fingerprint());

            // A second writer (an orphaned run) neither replaces the key nor keeps its own.
            let second = write_private(&dir, file, make()).unwrap();
            assert_eq!(second.fingerprint(), key.fingerprint());
            assert_eq!(read_private(&path).unwrap().fingerprint(), key.fingerprint());
        }
    }

    /// OpenSSH's own `ssh-keygen` reads the key files: the public key it derives is the one
    /// imported, and its MD5 fingerprint is the one recorded.
    #[test]
    fn ssh_keygen_reads_the_keys_and_agrees_on_the_public_half_and_fingerprint() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for (file, key) in [("ed", SshKey::generate(SshKeyType::Ed25519).unwrap()), ("rsa", small_rsa())] {
            let path = dir.path().join(file);
            std::fs::write(&path, key.to_file().unwrap()).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let keygen = |args: &[&str]| {
                let output =
                    Command::new("ssh-keygen").args(args).arg(&path).output().expect("ssh-keygen is installed");
                assert!(output.status.success(), "ssh-keygen {args:?}: {}", String::from_utf8_lossy(&output.stderr));
                String::from_utf8(output.stdout).unwrap()
            };
            assert_eq!(keygen(&["-y", "-f"]).trim(), key.openssh_public(), "{file}");
            let listed = keygen(&["-l", "-E", "md5", "-f"]);
            assert!(listed.contains(&format!("MD5:{}", key.fingerprint())), "{file}: {listed}");
        }
    }

    #[test]
    fn public_keys_are_openssh_and_fingerprints_are_md5_pairs() {
        let ed25519 = SshKey::generate(SshKeyType::Ed25519).unwrap();
        assert!(ed25519.openssh_public().starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"));
        assert!(small_rsa().openssh_public().starts_with("ssh-rsa AAAAB3NzaC1yc2E"));
        let fp = ed25519.fingerprint();
        assert_eq!((fp.len(), fp.matches(':').count()), (47, 15));
    }

    #[test]
    fn anything_else_is_not_taken_for_a_key() {
        let path = Path::new("k");
        let truncated = String::from_utf8(SshKey::generate(SshKeyType::Ed25519).unwrap().to_file().unwrap()).unwrap();
        let truncated = format!("{}\n{OPENSSH_END}\n", &truncated[..120]);
        for bytes in [&b"not a key"[..], truncated.as_bytes()] {
            assert!(SshKey::from_file(bytes, path).is_err());
        }
    }
}
