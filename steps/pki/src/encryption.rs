//! Encryption at rest: the API server's `EncryptionConfiguration` (apiserver.config.k8s.io/v1)
//! for Secrets, as typed structs that round-trip the YAML. The first provider encrypts new
//! writes; every listed key can still decrypt; `identity` comes last so that Secrets written
//! before encryption was turned on stay readable.
//!
//! The key is the one piece of this cluster whose loss loses data (every stored Secret), so
//! nothing here ever replaces it: rotation puts a new key first and keeps the old ones, and
//! only an explicit retirement drops them.

use groundup_contracts::pki::{EncryptionKeyRecord, EncryptionProviderRecord};
use openssl::base64;
use openssl::hash::{hash, MessageDigest};
use serde::{Deserialize, Serialize};

use crate::error::PkiError;

pub const FILE: &str = "encryption-config.yaml";
const KIND: &str = "EncryptionConfiguration";
const API_VERSION: &str = "apiserver.config.k8s.io/v1";
/// AES-256 for aescbc and aesgcm; secretbox (XSalsa20-Poly1305) takes 32 bytes too.
const KEY_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    Aescbc,
    Aesgcm,
    Secretbox,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    kind: String,
    api_version: String,
    resources: Vec<ResourceConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceConfig {
    resources: Vec<String>,
    /// Each provider is a one-key map (`- aescbc: {keys: ...}`), not a YAML tag (`!aescbc`),
    /// which is how serde_yaml_ng would write an enum by default.
    #[serde(with = "serde_yaml_ng::with::singleton_map_recursive")]
    providers: Vec<ProviderConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ProviderConfig {
    Aescbc(Keys),
    Aesgcm(Keys),
    Secretbox(Keys),
    Identity(Empty),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    keys: Vec<Key>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Key {
    name: String,
    secret: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

impl ProviderConfig {
    fn new(provider: Provider, keys: Vec<Key>) -> ProviderConfig {
        match provider {
            Provider::Aescbc => ProviderConfig::Aescbc(Keys { keys }),
            Provider::Aesgcm => ProviderConfig::Aesgcm(Keys { keys }),
            Provider::Secretbox => ProviderConfig::Secretbox(Keys { keys }),
        }
    }

    /// The provider and its keys; `None` for identity.
    fn keyed(&self) -> Option<(Provider, &Vec<Key>)> {
        match self {
            ProviderConfig::Aescbc(k) => Some((Provider::Aescbc, &k.keys)),
            ProviderConfig::Aesgcm(k) => Some((Provider::Aesgcm, &k.keys)),
            ProviderConfig::Secretbox(k) => Some((Provider::Secretbox, &k.keys)),
            ProviderConfig::Identity(_) => None,
        }
    }
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Aescbc => "aescbc",
            Provider::Aesgcm => "aesgcm",
            Provider::Secretbox => "secretbox",
        }
    }
}

impl Config {
    /// A config with one new random key, `key1`, for `provider`.
    pub fn new(provider: Provider) -> Result<Config, PkiError> {
        let first = ProviderConfig::new(provider, vec![Key { name: "key1".into(), secret: random_key()? }]);
        Ok(Config {
            kind: KIND.into(),
            api_version: API_VERSION.into(),
            resources: vec![ResourceConfig {
                resources: vec!["secrets".into()],
                providers: vec![first, ProviderConfig::Identity(Empty {})],
            }],
        })
    }

    /// Reads a config groundup wrote: the current format, Secrets only, every key 32 bytes of
    /// base64, identity last. Anything else is not ours to change.
    pub fn parse(text: &str) -> Result<Config, PkiError> {
        let config: Config = serde_yaml_ng::from_str(text)
            .map_err(|e| PkiError::File(format!("not an EncryptionConfiguration: {e}")))?;
        if config.kind != KIND || config.api_version != API_VERSION {
            return Err(PkiError::File(format!(
                "kind `{}`, apiVersion `{}`, not {KIND} {API_VERSION}",
                config.kind, config.api_version
            )));
        }
        let [resource] = config.resources.as_slice() else {
            return Err(PkiError::File("it must hold exactly one resources entry".into()));
        };
        if resource.resources != ["secrets"] {
            return Err(PkiError::File(format!("it encrypts {:?}, groundup's encrypts `secrets`", resource.resources)));
        }
        let (last, keyed) =
            resource.providers.split_last().ok_or_else(|| PkiError::File("it has no providers".into()))?;
        if !matches!(last, ProviderConfig::Identity(_)) || keyed.is_empty() {
            return Err(PkiError::File("it must list keyed providers first and `identity` last".into()));
        }
        for provider in keyed {
            let (name, keys) =
                provider.keyed().ok_or_else(|| PkiError::File("`identity` must come last only".into()))?;
            if keys.is_empty() {
                return Err(PkiError::File(format!("the {} provider has no key", name.name())));
            }
            for key in keys {
                let bytes = base64::decode_block(&key.secret)
                    .map_err(|_| PkiError::File(format!("key `{}` is not base64", key.name)))?;
                if bytes.len() != KEY_BYTES {
                    return Err(PkiError::File(format!(
                        "key `{}` has {} bytes, not {KEY_BYTES}",
                        key.name,
                        bytes.len()
                    )));
                }
            }
        }
        Ok(config)
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).expect("the config always serializes")
    }

    fn keyed(&self) -> impl Iterator<Item = (Provider, &Vec<Key>)> {
        self.resources[0].providers.iter().filter_map(ProviderConfig::keyed)
    }

    /// The provider that encrypts new writes.
    pub fn current(&self) -> Provider {
        self.keyed().next().expect("parse and new keep a keyed provider first").0
    }

    /// A new key first (under `provider`), every old key kept after it, as the documented
    /// rotation does: the API servers can then read Secrets written with either key.
    pub fn rotate(&self, provider: Provider) -> Result<Config, PkiError> {
        let highest = self
            .keyed()
            .flat_map(|(_, keys)| keys)
            .filter_map(|k| k.name.strip_prefix("key").and_then(|n| n.parse::<u32>().ok()))
            .max()
            .unwrap_or(0);
        let key = Key { name: format!("key{}", highest + 1), secret: random_key()? };
        let mut config = self.clone();
        let providers = &mut config.resources[0].providers;
        match providers.first_mut() {
            Some(ProviderConfig::Aescbc(k)) if provider == Provider::Aescbc => k.keys.insert(0, key),
            Some(ProviderConfig::Aesgcm(k)) if provider == Provider::Aesgcm => k.keys.insert(0, key),
            Some(ProviderConfig::Secretbox(k)) if provider == Provider::Secretbox => k.keys.insert(0, key),
            _ => providers.insert(0, ProviderConfig::new(provider, vec![key])),
        }
        Ok(config)
    }

    /// Only the first key and identity: for after every Secret was rewritten with the new key
    /// (`kubectl get secrets -A -o json | kubectl replace -f -`).
    pub fn retire_old(&self) -> Config {
        let (provider, keys) = self.keyed().next().expect("a keyed provider comes first");
        let mut config = self.clone();
        config.resources[0].providers =
            vec![ProviderConfig::new(provider, vec![keys[0].clone()]), ProviderConfig::Identity(Empty {})];
        config
    }

    /// The keys of `self` that `kept` no longer has, as `key1 (aescbc)`.
    pub fn retired_keys(&self, kept: &Config) -> Vec<String> {
        let kept: Vec<&Key> = kept.keyed().flat_map(|(_, keys)| keys).collect();
        self.keyed()
            .flat_map(|(provider, keys)| keys.iter().map(move |key| (provider, key)))
            .filter(|(_, key)| !kept.contains(key))
            .map(|(provider, key)| format!("{} ({})", key.name, provider.name()))
            .collect()
    }

    /// What the context records: provider and key names with fingerprints, no key material.
    pub fn records(&self) -> Vec<EncryptionProviderRecord> {
        self.keyed()
            .map(|(provider, keys)| EncryptionProviderRecord {
                provider: provider.name().into(),
                keys: keys
                    .iter()
                    .map(|k| EncryptionKeyRecord { name: k.name.clone(), sha256: fingerprint(k) })
                    .collect(),
            })
            .collect()
    }
}

fn random_key() -> Result<String, PkiError> {
    let mut bytes = [0u8; KEY_BYTES];
    openssl::rand::rand_bytes(&mut bytes).map_err(|e| PkiError::Crypto(format!("cannot make a random key: {e}")))?;
    Ok(base64::encode_block(&bytes))
}

fn fingerprint(key: &Key) -> String {
    let bytes = base64::decode_block(&key.secret).unwrap_or_default();
    let digest = hash(MessageDigest::sha256(), &bytes).expect("SHA-256 is available");
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(config: &Config) -> Vec<(String, String)> {
        config.keyed().flat_map(|(p, keys)| keys.iter().map(move |k| (p.name().to_string(), k.name.clone()))).collect()
    }

    #[test]
    fn a_new_config_is_the_current_format_with_identity_last() {
        let config = Config::new(Provider::Aescbc).unwrap();
        let yaml = config.to_yaml();
        assert!(yaml.starts_with("kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\n"), "{yaml}");
        assert!(yaml.contains("- aescbc:") && yaml.contains("name: key1") && yaml.contains("- identity: {}"), "{yaml}");
        assert!(yaml.find("aescbc").unwrap() < yaml.find("identity").unwrap());
        assert_eq!(Config::parse(&yaml).unwrap(), config, "it round-trips");
        let ProviderConfig::Aescbc(keys) = &config.resources[0].providers[0] else { panic!() };
        assert_eq!(base64::decode_block(&keys.keys[0].secret).unwrap().len(), 32);
        assert_ne!(Config::new(Provider::Aescbc).unwrap(), config, "keys are random");
    }

    #[test]
    fn rotation_puts_a_new_key_first_and_keeps_the_old_and_retirement_drops_it() {
        let config = Config::new(Provider::Aescbc).unwrap();
        let rotated = config.rotate(Provider::Aescbc).unwrap();
        assert_eq!(secrets(&rotated), [("aescbc".into(), "key2".into()), ("aescbc".into(), "key1".into())]);
        let switched = rotated.rotate(Provider::Secretbox).unwrap();
        assert_eq!(switched.current(), Provider::Secretbox);
        assert_eq!(secrets(&switched)[0], ("secretbox".into(), "key3".into()));
        assert_eq!(secrets(&switched).len(), 3);
        let retired = switched.retire_old();
        assert_eq!(secrets(&retired), [("secretbox".into(), "key3".into())]);
        assert!(matches!(retired.resources[0].providers.last(), Some(ProviderConfig::Identity(_))));
    }

    #[test]
    fn only_a_config_groundup_would_write_parses() {
        let good = Config::new(Provider::Aesgcm).unwrap().to_yaml();
        assert!(Config::parse(&good).is_ok());
        let old_format =
            good.replace("EncryptionConfiguration", "EncryptionConfig").replace("apiserver.config.k8s.io/v1", "v1");
        assert!(Config::parse(&old_format).unwrap_err().to_string().contains("not EncryptionConfiguration"));
        let identity_first = "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n- resources: [secrets]\n  providers:\n  - identity: {}\n";
        assert!(Config::parse(identity_first).is_err());
        let short_key =
            good.replace(&good[good.find("secret: ").unwrap() + 8..].lines().next().unwrap().to_string(), "c2hvcnQ=");
        assert!(Config::parse(&short_key).unwrap_err().to_string().contains("bytes"), "{short_key}");
        assert!(Config::parse("not: [yaml").is_err());
    }

    #[test]
    fn records_name_keys_by_fingerprint_never_by_value() {
        let config = Config::new(Provider::Aescbc).unwrap().rotate(Provider::Aescbc).unwrap();
        let records = serde_json::to_string(&config.records()).unwrap();
        for (_, keys) in config.keyed() {
            for key in keys {
                assert!(!records.contains(&key.secret), "a key leaked into the record");
            }
        }
        assert!(records.contains("\"key2\"") && records.contains("sha256"));
    }
}
