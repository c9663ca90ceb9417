//! Issuing certificates and checking existing ones against what the plan asks for.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use groundup_contracts::pki::{KeyAlgorithm, PkiParams};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509Name, X509NameRef, X509Req, X509};

use crate::plan::{Authority, CertSpec};

/// Tolerates clocks a few minutes behind the CA's, as kubeadm does.
const BACKDATE_SECONDS: i64 = 5 * 60;

pub struct Issued {
    pub cert: X509,
    pub key: PKey<Private>,
    pub csr: X509Req,
}

pub fn new_key(algorithm: KeyAlgorithm) -> Result<PKey<Private>, ErrorStack> {
    match algorithm {
        KeyAlgorithm::Rsa2048 => PKey::from_rsa(Rsa::generate(2048)?),
        KeyAlgorithm::EcdsaP256 => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            PKey::from_ec_key(EcKey::generate(&group)?)
        }
    }
}

/// The course's `names` (C, ST, L, OU) with this certificate's O and CN.
fn subject(params: &PkiParams, common_name: &str, organization: Option<&str>) -> Result<X509Name, ErrorStack> {
    let names = &params.subject;
    let mut name = X509Name::builder()?;
    name.append_entry_by_nid(Nid::COUNTRYNAME, &names.country)?;
    name.append_entry_by_nid(Nid::STATEORPROVINCENAME, &names.state)?;
    name.append_entry_by_nid(Nid::LOCALITYNAME, &names.locality)?;
    if let Some(organization) = organization {
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, organization)?;
    }
    name.append_entry_by_nid(Nid::ORGANIZATIONALUNITNAME, &names.organizational_unit)?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    Ok(name.build())
}

fn request(key: &PKey<Private>, name: &X509NameRef) -> Result<X509Req, ErrorStack> {
    let mut csr = X509Req::builder()?;
    csr.set_subject_name(name)?;
    csr.set_pubkey(key)?;
    csr.sign(key, MessageDigest::sha256())?;
    Ok(csr.build())
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Fills what every certificate shares: version, random serial, subject, key, validity.
fn builder(name: &X509NameRef, key: &PKey<Private>, days: u32) -> Result<openssl::x509::X509Builder, ErrorStack> {
    let mut cert = X509::builder()?;
    cert.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    cert.set_serial_number(&serial)?;
    cert.set_subject_name(name)?;
    cert.set_pubkey(key)?;
    let (not_before, not_after) =
        (Asn1Time::from_unix(now() - BACKDATE_SECONDS)?, Asn1Time::from_unix(now() + i64::from(days) * 86_400)?);
    cert.set_not_before(&not_before)?;
    cert.set_not_after(&not_after)?;
    Ok(cert)
}

pub fn issue_ca(authority: Authority, params: &PkiParams) -> Result<Issued, ErrorStack> {
    let key = new_key(params.key)?;
    let organization = (authority == Authority::Kubernetes).then_some(params.subject.organization.as_str());
    let name = subject(params, authority.common_name(), organization)?;
    let mut cert = builder(&name, &key, params.ca_days)?;
    cert.set_issuer_name(&name)?;
    cert.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    cert.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().digital_signature().build()?)?;
    cert.append_extension(SubjectKeyIdentifier::new().build(&cert.x509v3_context(None, None))?)?;
    cert.sign(&key, MessageDigest::sha256())?;
    Ok(Issued { csr: request(&key, &name)?, cert: cert.build(), key })
}

pub fn issue_leaf(
    spec: &CertSpec,
    ca: &X509,
    ca_key: &PKey<Private>,
    params: &PkiParams,
) -> Result<Issued, ErrorStack> {
    let algorithm = spec.key.unwrap_or(params.key);
    let key = new_key(algorithm)?;
    let name = subject(params, &spec.common_name, spec.organization.as_deref())?;
    let mut cert = builder(&name, &key, spec.days.unwrap_or(params.leaf_days))?;
    cert.set_issuer_name(ca.subject_name())?;
    cert.append_extension(BasicConstraints::new().critical().build()?)?;
    let mut usage = KeyUsage::new();
    usage.critical().digital_signature();
    if algorithm == KeyAlgorithm::Rsa2048 {
        usage.key_encipherment();
    }
    cert.append_extension(usage.build()?)?;
    let mut extended = ExtendedKeyUsage::new();
    if spec.usage.server {
        extended.server_auth();
    }
    if spec.usage.client {
        extended.client_auth();
    }
    cert.append_extension(extended.build()?)?;
    if !spec.dns.is_empty() || !spec.ips.is_empty() {
        let mut sans = SubjectAlternativeName::new();
        for dns in &spec.dns {
            sans.dns(dns);
        }
        for ip in &spec.ips {
            sans.ip(&ip.to_string());
        }
        cert.append_extension(sans.build(&cert.x509v3_context(Some(ca), None))?)?;
    }
    cert.append_extension(SubjectKeyIdentifier::new().build(&cert.x509v3_context(Some(ca), None))?)?;
    cert.append_extension(AuthorityKeyIdentifier::new().keyid(true).build(&cert.x509v3_context(Some(ca), None))?)?;
    cert.sign(ca_key, MessageDigest::sha256())?;
    Ok(Issued { csr: request(&key, &name)?, cert: cert.build(), key })
}

/// `C=UK, ST=London, ..., CN=admin`.
pub fn name_text(name: &X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let field = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{field}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn entry(name: &X509NameRef, nid: Nid) -> Option<String> {
    name.entries_by_nid(nid).next().and_then(|e| e.data().to_string().ok())
}

/// The certificate's SANs as `DNS:name` / `IP:address`, sorted.
pub fn sans(cert: &X509) -> Vec<String> {
    let mut sans: Vec<String> = cert
        .subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| {
                    if let Some(dns) = n.dnsname() {
                        return Some(format!("DNS:{dns}"));
                    }
                    let bytes = n.ipaddress()?;
                    let ip: IpAddr = match bytes.len() {
                        4 => <[u8; 4]>::try_from(bytes).ok()?.into(),
                        16 => <[u8; 16]>::try_from(bytes).ok()?.into(),
                        _ => return None,
                    };
                    Some(format!("IP:{ip}"))
                })
                .collect()
        })
        .unwrap_or_default();
    sans.sort();
    sans
}

/// Whether `cert` was signed by `ca` (issuer name and signature).
pub fn chains_to(cert: &X509, ca: &X509) -> bool {
    let issuer_matches = name_text(cert.issuer_name()) == name_text(ca.subject_name());
    issuer_matches && ca.public_key().and_then(|k| cert.verify(&k)).unwrap_or(false)
}

pub fn key_matches(cert: &X509, key: &PKey<Private>) -> bool {
    cert.public_key().is_ok_and(|public| public.public_eq(key))
}

pub fn expires_within(cert: &X509, days: u32) -> bool {
    Asn1Time::days_from_now(days).map_or(true, |limit| cert.not_after() < limit)
}

/// Everything that differs between an existing certificate and what the plan asks for.
pub fn problems(spec: &CertSpec, cert: &X509, key: &PKey<Private>, ca: &X509, params: &PkiParams) -> Vec<String> {
    let mut problems = Vec::new();
    if !chains_to(cert, ca) {
        problems.push(format!("not signed by the {} CA", spec.signer.file()));
    }
    if !key_matches(cert, key) {
        problems.push("the key does not match the certificate".into());
    }
    let subject = cert.subject_name();
    if entry(subject, Nid::COMMONNAME).as_deref() != Some(spec.common_name.as_str()) {
        problems.push(format!("CN is {:?}, wants {}", entry(subject, Nid::COMMONNAME), spec.common_name));
    }
    if entry(subject, Nid::ORGANIZATIONNAME) != spec.organization {
        problems.push(format!("O is {:?}, wants {:?}", entry(subject, Nid::ORGANIZATIONNAME), spec.organization));
    }
    let text = cert.to_text().map(|t| String::from_utf8_lossy(&t).to_string()).unwrap_or_default();
    let has_server = text.contains("TLS Web Server Authentication");
    let has_client = text.contains("TLS Web Client Authentication");
    if (has_server, has_client) != (spec.usage.server, spec.usage.client) {
        problems.push(format!("usages server={has_server} client={has_client}, wants {:?}", spec.usage));
    }
    let (have, want) = (sans(cert), spec.sans());
    if have != want {
        let missing: Vec<&String> = want.iter().filter(|s| !have.contains(s)).collect();
        let extra: Vec<&String> = have.iter().filter(|s| !want.contains(s)).collect();
        let list = |sans: Vec<&String>| sans.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        problems.push(match (missing.is_empty(), extra.is_empty()) {
            (false, true) => format!("SANs lack {}", list(missing)),
            (true, false) => format!("SANs have unwanted {}", list(extra)),
            _ => format!("SANs lack {}; have unwanted {}", list(missing), list(extra)),
        });
    }
    if expires_within(cert, params.renew_within_days) {
        problems.push(format!("expires {} (within {} days)", cert.not_after(), params.renew_within_days));
    }
    problems
}
