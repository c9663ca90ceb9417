//! cfssl compatibility: a CSR JSON and a `ca-config.json` profile describe a custom
//! certificate, which then lives in the context like the built-in ones.

use std::net::IpAddr;
use std::path::Path;

use groundup_contracts::pki::{CfsslCsr, CustomCert, KeyAlgorithm};
use serde_json::Value;

use crate::plan::{Authority, CertSpec, Usage};

/// The course's `kubernetes` profile, for a CSR given without a config.
const DEFAULT_USAGES: [&str; 4] = ["signing", "key encipherment", "server auth", "client auth"];

/// Reads `<name>-csr.json` and, if given, the profile's usages and expiry from the config.
pub fn read_request(csr: &Path, config: Option<&Path>, profile: Option<&str>) -> Result<CustomCert, String> {
    let text = std::fs::read_to_string(csr).map_err(|e| format!("cannot read {}: {e}", csr.display()))?;
    let request: CfsslCsr =
        serde_json::from_str(&text).map_err(|e| format!("{} is not a cfssl CSR JSON: {e}", csr.display()))?;
    let file = csr.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let name = file.strip_suffix(".json").unwrap_or(file).trim_end_matches("-csr").to_string();
    let (usages, expiry_hours) = match config {
        Some(config) => read_profile(config, profile)?,
        None => (DEFAULT_USAGES.map(String::from).to_vec(), None),
    };
    Ok(CustomCert { name, csr: request, usages, expiry_hours })
}

/// `signing.profiles.<profile>` (or `signing.default`): usages and an expiry like "8760h".
fn read_profile(config: &Path, profile: Option<&str>) -> Result<(Vec<String>, Option<u32>), String> {
    let text = std::fs::read_to_string(config).map_err(|e| format!("cannot read {}: {e}", config.display()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", config.display()))?;
    let signing = &doc["signing"];
    let chosen = match profile {
        Some(name) => {
            signing["profiles"].get(name).ok_or_else(|| format!("{} has no profile `{name}`", config.display()))?
        }
        None => &signing["default"],
    };
    let usages = chosen["usages"]
        .as_array()
        .or_else(|| signing["default"]["usages"].as_array())
        .map(|list| list.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_else(|| DEFAULT_USAGES.map(String::from).to_vec());
    let expiry = chosen["expiry"].as_str().or_else(|| signing["default"]["expiry"].as_str());
    let hours = expiry
        .map(|e| {
            e.strip_suffix('h').and_then(|h| h.parse().ok()).ok_or_else(|| format!("expiry `{e}` is not like 8760h"))
        })
        .transpose()?;
    Ok((usages, hours))
}

/// What the request asks for, as the plan's terms; signed by the Kubernetes CA.
pub fn spec(custom: &CustomCert) -> Result<CertSpec, String> {
    let key = match custom.csr.key.as_ref().map(|k| (k.algo.as_str(), k.size)) {
        None | Some(("rsa", 2048)) => KeyAlgorithm::Rsa2048,
        Some(("ecdsa", 256)) => KeyAlgorithm::EcdsaP256,
        Some((algo, size)) => {
            return Err(format!("{}: key {algo} {size} is not supported (rsa 2048, ecdsa 256)", custom.name))
        }
    };
    let has = |usage: &str| custom.usages.iter().any(|u| u == usage);
    let (ips, dns): (Vec<&String>, Vec<&String>) = custom.csr.hosts.iter().partition(|h| h.parse::<IpAddr>().is_ok());
    Ok(CertSpec {
        name: custom.name.clone(),
        signer: Authority::Kubernetes,
        common_name: custom.csr.common_name.clone(),
        organization: custom.csr.names.first().and_then(|n| n.organization.clone()),
        usage: Usage { server: has("server auth"), client: has("client auth") },
        dns: dns.into_iter().cloned().collect(),
        ips: ips.into_iter().filter_map(|ip| ip.parse().ok()).collect(),
        key: Some(key),
        days: custom.expiry_hours.map(|h| h.div_ceil(24)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cfssl_request_and_profile_become_a_spec() {
        let dir = std::env::temp_dir().join(format!("groundup-cfssl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csr = dir.join("my-app-csr.json");
        std::fs::write(&csr, r#"{"CN":"my-app","hosts":["my-app.internal","10.0.0.5"],"key":{"algo":"ecdsa","size":256},"names":[{"C":"UK","O":"my-team"}]}"#).unwrap();
        let config = dir.join("ca-config.json");
        std::fs::write(&config, r#"{"signing":{"default":{"expiry":"8760h"},"profiles":{"web":{"usages":["signing","key encipherment","server auth"],"expiry":"720h"}}}}"#).unwrap();
        let custom = read_request(&csr, Some(&config), Some("web")).unwrap();
        assert_eq!(custom.name, "my-app");
        assert_eq!(custom.expiry_hours, Some(720));
        let spec = spec(&custom).unwrap();
        assert_eq!(spec.organization.as_deref(), Some("my-team"));
        assert_eq!(spec.usage, Usage { server: true, client: false });
        assert_eq!(spec.sans(), ["DNS:my-app.internal", "IP:10.0.0.5"]);
        assert_eq!((spec.key, spec.days), (Some(KeyAlgorithm::EcdsaP256), Some(30)));
        assert!(read_request(&csr, Some(&config), Some("nope")).unwrap_err().contains("no profile `nope`"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
