//! The SSH key: made locally once (0400 in a 0700 directory), imported as the cluster's key
//! pair, and checked by fingerprint against the one AWS holds.

use groundup_cluster::keys::{KeyError, SshKey};
use groundup_contracts::params::SshKeyType;
use std::path::Path;

use super::*;

/// The private key lives only in `<ssh_dir>/<cluster>.id_ed25519` (or `.id_rsa`; `ssh/`
/// unless another cluster has it); AWS gets the public half. The key is written before it
/// is imported, so a crash in between leaves a key to import, not a lost one.
pub(super) async fn ensure_key_pair(
    aws: &Aws,
    ssh_dir: &str,
    wanted: SshKeyType,
    name: &str,
    recorded: Option<&str>,
) -> Result<KeyPair, CloudError> {
    let (file, kind) = key_file(Path::new(ssh_dir), name, wanted);
    if kind != wanted {
        tracing::info!(
            "compute: the cluster's SSH key {} is kept; params.ssh_key ({wanted:?}) is the type of a new key only (`groundup down --yes --purge` then `groundup up` makes one)",
            Path::new(ssh_dir).join(&file).display()
        );
    }
    let path = PathBuf::from(ssh_dir).join(&file);
    // Checked and claimed before its key is trusted; a plan creates nothing.
    let dir = aws.in_run(|| ClusterDir::open(ssh_dir, name))?;
    let logical = Kind::KeyPair.logical().expect("the kinds table names the cluster's one key pair");
    let remote = KeyPairInfo::find_tagged(aws, logical).await?;
    let key = local_key(dir.as_ref(), &file, kind, &path, remote.first())?;
    let fingerprint = key.as_ref().map(SshKey::fingerprint).unwrap_or_default();
    let wanted = WantedKeyPair { name, key: key.as_ref(), fingerprint: &fingerprint, path: &path, remote };
    // A key pair's name is its id.
    converge(aws, &wanted, recorded.map(|name| Ref::Known(name.to_string())).as_ref()).await?;
    Ok(KeyPair { name: name.into(), private_key_path: path.display().to_string(), fingerprint })
}

/// compute's head start (`--prepare`): the SSH key of a cluster that has no key pair yet,
/// made while the network is built, for [`ensure_key_pair`] to adopt. A cluster that records
/// one is left to `compute`, which tells a lost key from a new one.
pub(super) fn prepare_key(context: Context) -> Result<Context, StepError> {
    enter_head_start(&context)?;
    if context.compute.is_none() {
        let name = &context.cluster.name;
        let dir = ClusterDir::open(&context.params.ssh_dir, name)?;
        let (file, kind) = key_file(dir.path(), name, context.params.ssh_key);
        if !dir.path().join(&file).exists() {
            make_key(&dir, &file, kind)?;
        }
    }
    Ok(context)
}

/// The cluster's private key's file name in its SSH directory, and its type: the key that
/// exists, of either type (a key is never replaced), or else a new one of the type `wanted`.
fn key_file(ssh_dir: &Path, cluster: &str, wanted: SshKeyType) -> (String, SshKeyType) {
    let other = match wanted {
        SshKeyType::Ed25519 => SshKeyType::Rsa4096,
        SshKeyType::Rsa4096 => SshKeyType::Ed25519,
    };
    [wanted, other]
        .into_iter()
        .map(|kind| (keys::file_name(cluster, kind), kind))
        .find(|(file, _)| ssh_dir.join(file).exists())
        .unwrap_or_else(|| (keys::file_name(cluster, wanted), wanted))
}

/// A new key, written once: if another run wrote one first, that one is returned.
fn make_key(dir: &ClusterDir, file: &str, kind: SshKeyType) -> Result<SshKey, KeyError> {
    keys::write_private(dir, file, SshKey::generate(kind)?)
}

/// The key pair AWS holds: the public half of the local key, found by the tags every other
/// kind has; the fingerprint tells whether it is the same key.
struct WantedKeyPair<'a> {
    name: &'a str,
    /// `None` in a plan that would make the key.
    key: Option<&'a SshKey>,
    fingerprint: &'a str,
    path: &'a std::path::Path,
    /// Found before the local key is trusted.
    remote: Vec<KeyPairInfo>,
}

impl Resource for WantedKeyPair<'_> {
    type Described = KeyPairInfo;
    type Observed = ();
    type Fix = NoFix;

    async fn find(&self, _: &Aws) -> Result<Vec<KeyPairInfo>, CloudError> {
        Ok(self.remote.clone())
    }

    async fn create(&self, aws: &Aws, attempt: Attempt) -> Result<KeyPairInfo, CloudError> {
        import_key_pair(aws, self.logical(), self.name, self.key, self.fingerprint, attempt).await
    }

    /// The emulator computes fingerprints its own way, so the one we computed at import time
    /// is kept in a tag and compared; AWS's own field is the fallback.
    fn diff(&self, actual: Option<&KeyPairInfo>, _: &()) -> Vec<Change<NoFix>> {
        let Some(found) = actual else { return Vec::new() };
        let tagged = found.tags().iter().find(|t| t.key() == Some(FINGERPRINT_TAG)).and_then(|t| t.value());
        let remote = tagged.or(found.key_fingerprint()).unwrap_or_default();
        if remote == self.fingerprint {
            return Vec::new();
        }
        vec![Change::Immutable(Immutable {
            field: "fingerprint",
            now: remote.to_string(),
            wanted: format!("{} (of {})", self.fingerprint, self.path.display()),
            way_forward: "restore the matching private key, or delete the key pair to replace it".into(),
        })]
    }

    async fn apply(&self, _: &Aws, _: &str, fix: &NoFix, _: bool) -> Result<(), CloudError> {
        match *fix {}
    }
}

/// The private key on disk, made if there is none yet. In a plan nothing is written, so a
/// key still to be made is `None`.
fn local_key(
    dir: Option<&ClusterDir>,
    file: &str,
    kind: SshKeyType,
    path: &Path,
    remote: Option<&KeyPairInfo>,
) -> Result<Option<SshKey>, CloudError> {
    match (path.exists(), remote, dir) {
        (true, _, _) => Ok(Some(keys::read_private(path)?)),
        (false, Some(found), _) => Err(CloudError::KeyLost {
            name: found.key_name().unwrap_or(file).to_string(),
            path: path.display().to_string(),
        }),
        (false, None, None) => Ok(None),
        (false, None, Some(dir)) => {
            let key = make_key(dir, file, kind)?;
            tracing::info!("compute: wrote a new SSH key to {}", path.display());
            Ok(Some(key))
        }
    }
}

async fn import_key_pair(
    aws: &Aws,
    logical: &str,
    name: &str,
    key: Option<&SshKey>,
    fingerprint: &str,
    attempt: Attempt,
) -> Result<KeyPairInfo, CloudError> {
    let key = key.ok_or(KeyError::NotMade)?;
    let mut tags = aws.identity().ec2_tags(logical, name);
    tags.push(Tag::builder().key(FINGERPRINT_TAG).value(fingerprint).build());
    let spec = aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(ResourceType::KeyPair)
        .set_tags(Some(tags.clone()))
        .build();
    let out = aws
        .ec2()
        .import_key_pair()
        .dry_run(attempt.dry_run)
        .key_name(name)
        .public_key_material(aws_smithy_types::Blob::new(key.openssh_public()))
        .tag_specifications(spec)
        .send()
        .await
        .api("ImportKeyPair")
        .map_err(|e| match e.code() {
            Some("InvalidKeyPair.Duplicate") => {
                CloudError::Foreign { kind: Kind::KeyPair.label(), name: name.into(), logical: logical.into() }
            }
            _ => e,
        })?;
    Ok(KeyPairInfo::builder()
        .key_name(out.key_name().unwrap_or(name))
        .set_key_pair_id(out.key_pair_id().map(String::from))
        .set_tags(Some(tags))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundup_cloud::lines;

    #[test]
    fn a_key_pair_with_another_fingerprint_is_refused() {
        let path = std::path::Path::new("ssh/k8s.id_rsa");
        let wanted = |fingerprint| WantedKeyPair { name: "k8s", key: None, fingerprint, path, remote: Vec::new() };
        let tagged = |fingerprint: &str| {
            KeyPairInfo::builder().tags(Tag::builder().key(FINGERPRINT_TAG).value(fingerprint).build()).build()
        };
        assert!(lines(&wanted("aa:bb").diff(Some(&tagged("aa:bb")), &())).is_empty());
        assert_eq!(
            lines(&wanted("aa:bb").diff(Some(&tagged("cc:dd")), &())),
            ["fingerprint cc:dd -> aa:bb (of ssh/k8s.id_rsa) cannot change"]
        );
        let untagged = KeyPairInfo::builder().key_fingerprint("aa:bb").build();
        assert!(lines(&wanted("aa:bb").diff(Some(&untagged), &())).is_empty(), "AWS's own fingerprint is the fallback");
    }
}
