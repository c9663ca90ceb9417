//! cfssl compatibility: a CSR JSON and a `ca-config.json` profile describe a custom
//! certificate, which then lives in the context like the built-in ones.

use std::net::IpAddr;
use std::path::Path;

use groundup_contracts::pki::{CfsslCsr, CfsslName, CustomCert, KeyAlgorithm, MAX_VALIDITY_DAYS};
use serde_json::Value;

use crate::error::PkiError;
use crate::names;
use crate::spec::{Authority, CertSpec, Usage};

/// The course's `kubernetes` profile, for a CSR given without a config.
const DEFAULT_USAGES: [&str; 4] = ["signing", "key encipherment", "server auth", "client auth"];

/// Reads `<name>-csr.json` and, if given, the profile's usages and expiry from the config.
pub fn read_request(csr: &Path, config: Option<&Path>, profile: Option<&str>) -> Result<CustomCert, PkiError> {
    let text = std::fs::read_to_string(csr).map_err(|e| input(format!("cannot read {}: {e}", csr.display())))?;
    let request: CfsslCsr =
        serde_json::from_str(&text).map_err(|e| input(format!("{} is not a cfssl CSR JSON: {e}", csr.display())))?;
    let file = csr.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let name = file.strip_suffix(".json").unwrap_or(file).trim_end_matches("-csr").to_string();
    let (usages, expiry_hours) = match config {
        Some(config) => read_profile(config, profile)?,
        None => (DEFAULT_USAGES.map(String::from).to_vec(), None),
    };
    Ok(CustomCert { name, csr: request, usages, expiry_hours })
}

/// `signing.profiles.<profile>` (or `signing.default`): usages and an expiry like "8760h".
fn read_profile(config: &Path, profile: Option<&str>) -> Result<(Vec<String>, Option<u32>), PkiError> {
    let text = std::fs::read_to_string(config).map_err(|e| input(format!("cannot read {}: {e}", config.display())))?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| input(format!("{} is not JSON: {e}", config.display())))?;
    let signing = &doc["signing"];
    let chosen = match profile {
        Some(name) => signing["profiles"]
            .get(name)
            .ok_or_else(|| input(format!("{} has no profile `{name}`", config.display())))?,
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
            e.strip_suffix('h')
                .and_then(|h| h.parse().ok())
                .ok_or_else(|| input(format!("{}: expiry `{e}` is not like 8760h", config.display())))
        })
        .transpose()?;
    Ok((usages, hours))
}

/// The longest validity of a custom certificate, in hours.
const MAX_HOURS: u32 = MAX_VALIDITY_DAYS * 24;

/// What the request asks for, as the plan's terms; signed by the Kubernetes CA. Everything
/// that becomes a file name, a SAN or a subject field is checked here, whether the request
/// comes from a CSR file or from the context.
pub fn spec(custom: &CustomCert) -> Result<CertSpec, PkiError> {
    names::plain(&custom.name)?;
    let key = match custom.csr.key.as_ref().map(|k| (k.algo.as_str(), k.size)) {
        None | Some(("rsa", 2048)) => KeyAlgorithm::Rsa2048,
        Some(("ecdsa", 256)) => KeyAlgorithm::EcdsaP256,
        Some((algo, size)) => return Err(input(format!("key {algo} {size} is not supported (rsa 2048, ecdsa 256)"))),
    };
    names::subject_field("CN", &custom.csr.common_name)?;
    let subject = match custom.csr.names.as_slice() {
        [] => CfsslName::default(),
        [one] => one.clone(),
        _ => return Err(input("groundup takes one `names` entry, this request has several")),
    };
    for (field, value) in [
        ("C", &subject.country),
        ("ST", &subject.state),
        ("L", &subject.locality),
        ("O", &subject.organization),
        ("OU", &subject.organizational_unit),
    ] {
        value.as_deref().map_or(Ok(()), |v| names::subject_field(field, v))?;
    }
    let has = |usage: &str| custom.usages.iter().any(|u| u == usage);
    let usage = Usage { server: has("server auth"), client: has("client auth") };
    if !usage.server && !usage.client {
        return Err(input(format!("usages {:?} have neither `server auth` nor `client auth`", custom.usages)));
    }
    if let Some(hours) = custom.expiry_hours.filter(|h| !(1..=MAX_HOURS).contains(h)) {
        return Err(input(format!("expiry {hours}h is not between 1h and {MAX_HOURS}h")));
    }
    let (ips, dns): (Vec<&String>, Vec<&String>) = custom.csr.hosts.iter().partition(|h| h.parse::<IpAddr>().is_ok());
    for host in &dns {
        names::dns(host).map_err(|e| input(format!("host {e}")))?;
    }
    Ok(CertSpec {
        name: custom.name.clone(),
        signer: Authority::Kubernetes,
        common_name: custom.csr.common_name.clone(),
        organization: subject.organization.clone(),
        usage,
        dns: dns.into_iter().cloned().collect(),
        ips: ips.into_iter().filter_map(|ip| ip.parse().ok()).collect(),
        key: Some(key),
        hours: custom.expiry_hours,
        names: Some(subject),
        infrastructure_sans: Vec::new(),
    })
}

/// What is wrong with the request, which the user wrote.
fn input(message: impl Into<String>) -> PkiError {
    PkiError::Input(message.into())
}

/// Whether the request asks for the group that bypasses every authorization check.
pub fn grants_system_masters(custom: &CustomCert) -> bool {
    custom.csr.names.iter().any(|n| n.organization.as_deref() == Some("system:masters"))
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
        assert_eq!((spec.key, spec.hours), (Some(KeyAlgorithm::EcdsaP256), Some(720)));
        assert!(read_request(&csr, Some(&config), Some("nope")).unwrap_err().to_string().contains("no profile `nope`"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_request_is_checked_before_it_becomes_a_spec() {
        let request = |csr: &str, usages: &[&str], expiry_hours: Option<u32>| CustomCert {
            name: "app".into(),
            csr: serde_json::from_str(csr).unwrap(),
            usages: usages.iter().map(|u| u.to_string()).collect(),
            expiry_hours,
        };
        let tls = ["client auth"];
        assert!(spec(&request(r#"{"CN":"app","hosts":["app.internal"]}"#, &tls, Some(1))).is_ok());
        for (custom, why) in [
            (request(r#"{"CN":"app"}"#, &["signing", "key encipherment"], None), "neither `server auth`"),
            (request(r#"{"CN":"app"}"#, &tls, Some(0)), "expiry 0h"),
            (request(r#"{"CN":"app"}"#, &tls, Some(u32::MAX)), "expiry 4294967295h"),
            (request(r#"{"CN":"app","hosts":["*"]}"#, &tls, None), "not a DNS name"),
            (request(r#"{"CN":"app","hosts":["a\nb"]}"#, &tls, None), "not a DNS name"),
            (request(r#"{"CN":"a\u0000b"}"#, &tls, None), "control characters"),
            (request(r#"{"CN":"app","names":[{"O":"a"},{"O":"b"}]}"#, &tls, None), "one `names` entry"),
        ] {
            assert!(spec(&custom).unwrap_err().to_string().contains(why), "{custom:?}");
        }
        let mut named = request(r#"{"CN":"app"}"#, &tls, None);
        named.name = "../x".into();
        assert!(spec(&named).unwrap_err().to_string().contains("not a plain file name"));
        assert!(grants_system_masters(&request(r#"{"CN":"x","names":[{"O":"system:masters"}]}"#, &tls, None)));
        assert!(!grants_system_masters(&request(r#"{"CN":"x","names":[{"O":"ops"}]}"#, &tls, None)));
    }
}
