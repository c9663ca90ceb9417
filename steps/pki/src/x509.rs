//! Issuing certificates and checking existing ones against what the plan asks for.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use foreign_types::ForeignTypeRef;
use groundup_contracts::pki::{CfsslName, KeyAlgorithm, PkiParams};
use groundup_contracts::x509::{CertTime, Subject};
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::bn::{BigNum, BigNumContext, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509KeyUsage, X509Name, X509NameRef, X509Ref, X509Req, X509};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::der::zeroize::Zeroizing;

use crate::error::PkiError;
use crate::spec::{Authority, CertSpec};

/// Tolerates clocks a few minutes behind the CA's, as kubeadm does.
const BACKDATE_SECONDS: i64 = 5 * 60;

pub struct Issued {
    pub cert: X509,
    pub key: PKey<Private>,
    pub csr: X509Req,
}

/// A new private key. RSA keys come from RustCrypto's `rsa`, several times faster than the
/// system's OpenSSL 3.0 (see docs/benchmarks.md's key-backend table), handed to openssl as
/// PKCS#1 DER (zeroed when dropped; read as [`read_private_key`] reads one); e = 65537.
pub fn new_key(algorithm: KeyAlgorithm) -> Result<PKey<Private>, PkiError> {
    groundup_runtime::timings::keygen(|| match algorithm {
        KeyAlgorithm::Rsa2048 => {
            let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048)
                .map_err(|e| crypto(format!("cannot generate an RSA-2048 key: {e}")))?;
            let der = key.to_pkcs1_der().map_err(|e| crypto(format!("cannot encode an RSA-2048 key: {e}")))?;
            Rsa::private_key_from_der(der.as_bytes())
                .and_then(PKey::from_rsa)
                .map_err(|e| crypto(format!("openssl cannot read an RSA key: {e}")))
        }
        KeyAlgorithm::EcdsaP256 => {
            let key = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)
                .and_then(|group| EcKey::generate(&group))
                .and_then(PKey::from_ec_key);
            key.map_err(|e| crypto(format!("cannot generate an ECDSA P-256 key: {e}")))
        }
    })
}

/// A private key from its PEM file. An RSA key in PKCS#8, the form groundup writes, is read by
/// OpenSSL's RSA reader (`d2i_RSAPrivateKey`) once RustCrypto's `pkcs8` has taken it out of its
/// envelope: OpenSSL 3.0's generic decoder, which `PKey::private_key_from_pem` uses, takes about
/// 0.35 ms a key and serialises threads on its global locks, and was a third of `certs`' CPU
/// (perf). Any other PEM (an ECDSA key, a PKCS#1 `RSA PRIVATE KEY`) goes to the generic decoder.
pub fn read_private_key(pem: &[u8]) -> Result<PKey<Private>, ErrorStack> {
    let rsa_in_pkcs8 = rsa::pkcs8::der::pem::decode_vec(pem)
        .ok()
        .filter(|(label, _)| *label == "PRIVATE KEY")
        .map(|(_, der)| Zeroizing::new(der))
        .and_then(|der| {
            let info = rsa::pkcs8::PrivateKeyInfoRef::try_from(der.as_slice()).ok()?;
            (info.algorithm.oid == rsa::pkcs1::ALGORITHM_OID)
                .then(|| Rsa::private_key_from_der(info.private_key.as_bytes()).and_then(PKey::from_rsa))
        });
    rsa_in_pkcs8.unwrap_or_else(|| PKey::private_key_from_pem(pem))
}

/// Whether `key` is one [`new_key`] makes for `algorithm` (RSA: 2048 bits, e = 65537,
/// n = p·q; ECDSA: on P-256), so that a key found on disk can be adopted for it. Not
/// RSA_check_key: it tests p and q for primality, 64 Miller-Rabin rounds each in OpenSSL 3.0,
/// about 30 ms a key, which made adopting the head start's keys cost more than signing; the
/// keys adopted here are the cluster's own (0600, written once), so their parts agreeing is
/// the check that matters (a truncated or spliced file).
pub fn fits(key: &PKey<Private>, algorithm: KeyAlgorithm) -> bool {
    match algorithm {
        KeyAlgorithm::Rsa2048 => key.rsa().is_ok_and(|rsa| {
            let exponent = rsa.e().to_dec_str().is_ok_and(|e| e.to_string() == "65537");
            rsa.n().num_bits() == 2048 && exponent && modulus_is_product(&rsa)
        }),
        KeyAlgorithm::EcdsaP256 => key
            .ec_key()
            .is_ok_and(|ec| ec.group().curve_name() == Some(Nid::X9_62_PRIME256V1) && ec.check_key().is_ok()),
    }
}

fn modulus_is_product(rsa: &Rsa<Private>) -> bool {
    let (Some(p), Some(q)) = (rsa.p(), rsa.q()) else { return false };
    let product = BigNumContext::new().and_then(|mut context| {
        let mut product = BigNum::new()?;
        product.checked_mul(p, q, &mut context)?;
        Ok(product)
    });
    product.is_ok_and(|product| *product == *rsa.n())
}

/// The subject: C, ST, L, O, OU, CN as in cfssl. `names` is a cfssl request's own (only the
/// fields it gives); without it, the course's from `params.pki.subject`.
fn subject(
    params: &PkiParams,
    names: Option<&CfsslName>,
    common_name: &str,
    organization: Option<&str>,
) -> Result<X509Name, ErrorStack> {
    let course = &params.subject;
    let pick = |own: Option<&Option<String>>, default: &str| match own {
        Some(own) => own.clone(),
        None => Some(default.to_string()),
    };
    let mut name = X509Name::builder()?;
    let fields = [
        (Nid::COUNTRYNAME, pick(names.map(|n| &n.country), &course.country)),
        (Nid::STATEORPROVINCENAME, pick(names.map(|n| &n.state), &course.state)),
        (Nid::LOCALITYNAME, pick(names.map(|n| &n.locality), &course.locality)),
        (Nid::ORGANIZATIONNAME, organization.map(String::from)),
        (Nid::ORGANIZATIONALUNITNAME, pick(names.map(|n| &n.organizational_unit), &course.organizational_unit)),
        (Nid::COMMONNAME, Some(common_name.to_string())),
    ];
    for (nid, value) in fields {
        if let Some(value) = value {
            name.append_entry_by_nid(nid, &value)?;
        }
    }
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
/// Validity ends after `hours`, or at `limit` (the CA's own end) if that comes first.
fn builder(
    name: &X509NameRef,
    key: &PKey<Private>,
    hours: u32,
    limit: Option<&Asn1TimeRef>,
) -> Result<openssl::x509::X509Builder, ErrorStack> {
    let mut cert = X509::builder()?;
    cert.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    cert.set_serial_number(&serial)?;
    cert.set_subject_name(name)?;
    cert.set_pubkey(key)?;
    let not_before = Asn1Time::from_unix(now() - BACKDATE_SECONDS)?;
    let not_after = Asn1Time::from_unix(now() + i64::from(hours) * 3600)?;
    cert.set_not_before(&not_before)?;
    match limit {
        Some(limit) if *limit < not_after => {
            tracing::warn!("{}: validity capped at the CA's own expiry, {limit}", name_text(name));
            cert.set_not_after(limit)?;
        }
        _ => cert.set_not_after(&not_after)?,
    }
    Ok(cert)
}

pub fn issue_ca(authority: Authority, params: &PkiParams) -> Result<Issued, PkiError> {
    self_sign(authority, new_key(params.key)?, params).map_err(|e| crypto(e.to_string()))
}

fn crypto(message: String) -> PkiError {
    PkiError::Crypto(message)
}

fn self_sign(authority: Authority, key: PKey<Private>, params: &PkiParams) -> Result<Issued, ErrorStack> {
    let organization = (authority == Authority::Kubernetes).then_some(params.subject.organization.as_str());
    let name = subject(params, None, authority.common_name(), organization)?;
    let mut cert = builder(&name, &key, params.ca_days.saturating_mul(24), None)?;
    cert.set_issuer_name(&name)?;
    cert.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    cert.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().digital_signature().build()?)?;
    cert.append_extension(SubjectKeyIdentifier::new().build(&cert.x509v3_context(None, None))?)?;
    cert.sign(&key, MessageDigest::sha256())?;
    Ok(Issued { csr: request(&key, &name)?, cert: cert.build(), key })
}

pub fn issue_leaf(spec: &CertSpec, ca: &X509, ca_key: &PKey<Private>, params: &PkiParams) -> Result<Issued, PkiError> {
    let key = new_key(spec.key.unwrap_or(params.key))?;
    sign_leaf(spec, key, ca, ca_key, params).map_err(|e| crypto(e.to_string()))
}

/// A new certificate for `key` (a fresh one, or the existing one kept, as `kubeadm certs
/// renew` keeps it).
pub fn sign_leaf(
    spec: &CertSpec,
    key: PKey<Private>,
    ca: &X509,
    ca_key: &PKey<Private>,
    params: &PkiParams,
) -> Result<Issued, ErrorStack> {
    let name = subject(params, spec.names.as_ref(), &spec.common_name, spec.organization.as_deref())?;
    let hours = spec.hours.unwrap_or(params.leaf_days.saturating_mul(24));
    let mut cert = builder(&name, &key, hours, Some(ca.not_after()))?;
    cert.set_issuer_name(ca.subject_name())?;
    cert.append_extension(BasicConstraints::new().critical().build()?)?;
    let mut usage = KeyUsage::new();
    usage.critical().digital_signature();
    if key.rsa().is_ok() {
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
    subject_of(name).to_string()
}

/// The name's attributes in order, by their short names (`C`, `O`, `CN`, ...).
pub fn subject_of(name: &X509NameRef) -> Subject {
    let attributes = name
        .entries()
        .map(|e| {
            let field = e.object().nid().short_name().unwrap_or("?").to_string();
            (field, e.data().to_string().map(|v| v.to_string()).unwrap_or_default())
        })
        .collect();
    Subject { attributes }
}

/// When the certificate ends, to the second.
pub fn not_after(cert: &X509Ref) -> CertTime {
    let since_epoch = Asn1Time::from_unix(0).and_then(|epoch| epoch.diff(cert.not_after()));
    CertTime::from_unix(since_epoch.map_or(0, |d| i64::from(d.days) * 86_400 + i64::from(d.secs)))
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

/// CA:TRUE in the basic constraints and keyCertSign in the key usage.
fn is_ca(cert: &X509Ref) -> bool {
    // SAFETY: X509_get_extension_flags only reads the certificate, which `cert` keeps alive.
    let flags = unsafe { openssl_sys::X509_get_extension_flags(cert.as_ptr()) };
    let signs_certificates = cert.key_usage().is_some_and(|u| u.contains(X509KeyUsage::KEY_CERT_SIGN));
    flags & openssl_sys::EXFLAG_CA != 0 && signs_certificates
}

/// Everything that makes a certificate on disk unfit to be `authority`'s CA: a leaf, another
/// CA, a foreign key, a CA about to expire.
pub fn ca_problems(authority: Authority, cert: &X509, key: &PKey<Private>, params: &PkiParams) -> Vec<String> {
    let name = authority.file();
    let mut problems = Vec::new();
    if !key_matches(cert, key) {
        problems.push(format!("{name}-key.pem does not match {name}.pem"));
    }
    if !is_ca(cert) {
        problems.push(format!("{name}.pem is not a CA certificate (CA:TRUE with keyCertSign)"));
    }
    let want_organization = (authority == Authority::Kubernetes).then(|| params.subject.organization.clone());
    let subject = cert.subject_name();
    let (common_name, organization) = (entry(subject, Nid::COMMONNAME), entry(subject, Nid::ORGANIZATIONNAME));
    if common_name.as_deref() != Some(authority.common_name()) || organization != want_organization {
        problems.push(format!(
            "{name}.pem has CN {common_name:?}, O {organization:?}; wants {:?}, {want_organization:?}",
            authority.common_name()
        ));
    }
    if !chains_to(cert, cert) {
        problems.push(format!("{name}.pem is not self-signed"));
    }
    if expires_within(cert, params.renew_within_days) {
        problems.push(format!("expires {} (within {} days)", cert.not_after(), params.renew_within_days));
    }
    problems
}

/// How an existing certificate's SANs differ from the planned ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SanDiff {
    /// Planned, not in the certificate.
    pub added: Vec<String>,
    /// In the certificate, no longer planned.
    pub removed: Vec<String>,
}

impl SanDiff {
    /// `None` when the sets are equal.
    pub fn between(have: &[String], want: &[String]) -> Option<SanDiff> {
        let added: Vec<String> = want.iter().filter(|s| !have.contains(s)).cloned().collect();
        let removed: Vec<String> = have.iter().filter(|s| !want.contains(s)).cloned().collect();
        (!added.is_empty() || !removed.is_empty()).then_some(SanDiff { added, removed })
    }

    /// Whether only what the infrastructure decides changed: every SAN it adds is one of
    /// `infrastructure`. What it removes is always the infrastructure's (a fixed SAN the
    /// plan changed is one it adds too).
    pub fn only_in(&self, infrastructure: &[String]) -> bool {
        !infrastructure.is_empty() && self.added.iter().all(|s| infrastructure.contains(s))
    }
}

/// `+ IP:54.1.2.3, - IP:54.9.9.9`.
impl std::fmt::Display for SanDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let added = self.added.iter().map(|s| format!("+ {s}"));
        let removed = self.removed.iter().map(|s| format!("- {s}"));
        f.write_str(&added.chain(removed).collect::<Vec<_>>().join(", "))
    }
}

/// An existing certificate against what the plan asks for.
#[derive(Debug, Default)]
pub struct Verdict {
    pub sans: Option<SanDiff>,
    /// Everything else: signer, key, subject, usages, expiry.
    pub others: Vec<String>,
}

impl Verdict {
    pub fn is_clean(&self) -> bool {
        self.sans.is_none() && self.others.is_empty()
    }

    /// The SAN difference, when it is all that is wrong and all of it the infrastructure's:
    /// the certificate follows the infrastructure by itself, keeping its key.
    pub fn follows_infrastructure(&self, spec: &CertSpec) -> Option<&SanDiff> {
        self.sans.as_ref().filter(|diff| self.others.is_empty() && diff.only_in(&spec.infrastructure_sans))
    }

    pub fn problems(&self) -> Vec<String> {
        let sans = self.sans.iter().map(|diff| format!("SANs differ: {diff}"));
        sans.chain(self.others.iter().cloned()).collect()
    }
}

/// Everything that differs between an existing certificate and what the plan asks for.
pub fn verdict(spec: &CertSpec, cert: &X509, key: &PKey<Private>, ca: &X509, params: &PkiParams) -> Verdict {
    let mut others = Vec::new();
    if !chains_to(cert, ca) {
        others.push(format!("not signed by the {} CA", spec.signer.file()));
    }
    if !key_matches(cert, key) {
        others.push("the key does not match the certificate".into());
    }
    let subject = cert.subject_name();
    if entry(subject, Nid::COMMONNAME).as_deref() != Some(spec.common_name.as_str()) {
        others.push(format!("CN is {:?}, wants {}", entry(subject, Nid::COMMONNAME), spec.common_name));
    }
    if entry(subject, Nid::ORGANIZATIONNAME) != spec.organization {
        others.push(format!("O is {:?}, wants {:?}", entry(subject, Nid::ORGANIZATIONNAME), spec.organization));
    }
    let text = cert.to_text().map(|t| String::from_utf8_lossy(&t).to_string()).unwrap_or_default();
    let has_server = text.contains("TLS Web Server Authentication");
    let has_client = text.contains("TLS Web Client Authentication");
    if (has_server, has_client) != (spec.usage.server, spec.usage.client) {
        others.push(format!("usages server={has_server} client={has_client}, wants {:?}", spec.usage));
    }
    if expires_within(cert, params.renew_within_days) {
        others.push(format!("expires {} (within {} days)", cert.not_after(), params.renew_within_days));
    }
    Verdict { sans: SanDiff::between(&sans(cert), &spec.sans()), others }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Usage;

    fn params(ca_days: u32, leaf_days: u32) -> PkiParams {
        PkiParams { key: KeyAlgorithm::EcdsaP256, ca_days, leaf_days, ..PkiParams::default() }
    }

    fn leaf(name: &str) -> CertSpec {
        CertSpec::new(name, Authority::Kubernetes, name, None, Usage { server: false, client: true })
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_san_diff_reads_as_added_and_removed_and_follows_only_the_infrastructure() {
        let have = strings(&["DNS:node", "IP:10.0.0.1", "IP:54.9.9.9"]);
        let want = strings(&["DNS:node", "IP:10.0.0.1", "IP:54.1.2.3"]);
        assert_eq!(SanDiff::between(&have, &have), None);
        let diff = SanDiff::between(&have, &want).unwrap();
        assert_eq!(diff.to_string(), "+ IP:54.1.2.3, - IP:54.9.9.9");
        assert!(diff.only_in(&want));
        assert!(!diff.only_in(&[]), "a certificate without infrastructure SANs never follows");
        let fixed_added = SanDiff::between(&have, &strings(&["DNS:node", "IP:10.32.0.1"])).unwrap();
        assert!(!fixed_added.only_in(&strings(&["DNS:node"])));

        let mut spec = leaf("node");
        spec.infrastructure_sans = want.clone();
        let moved = Verdict { sans: Some(diff.clone()), others: Vec::new() };
        assert_eq!(moved.follows_infrastructure(&spec), Some(&diff));
        assert_eq!(moved.problems(), ["SANs differ: + IP:54.1.2.3, - IP:54.9.9.9"]);
        let also_wrong = Verdict { sans: Some(diff), others: vec!["O is None".into()] };
        assert_eq!(also_wrong.follows_infrastructure(&spec), None);
        assert!(Verdict::default().is_clean() && !also_wrong.is_clean());
    }

    /// The RSA backend: a 2048-bit key with e = 65537 that openssl reads, signs and verifies
    /// with, as a CA and as a leaf.
    #[test]
    fn an_rsa_key_has_2048_bits_e_65537_and_a_ca_and_leaf_verify_with_it() {
        let params = PkiParams { key: KeyAlgorithm::Rsa2048, ..params(3650, 365) };
        let key = new_key(KeyAlgorithm::Rsa2048).unwrap();
        let rsa = key.rsa().unwrap();
        assert_eq!(rsa.n().num_bits(), 2048);
        assert_eq!(rsa.e().to_dec_str().unwrap().to_string(), "65537");
        assert!(rsa.check_key().unwrap() && fits(&key, KeyAlgorithm::Rsa2048));
        assert!(!fits(&key, KeyAlgorithm::EcdsaP256) && !fits(&new_key(KeyAlgorithm::EcdsaP256).unwrap(), params.key));
        let other = new_key(KeyAlgorithm::Rsa2048).unwrap().rsa().unwrap();
        let spliced = Rsa::from_private_components(
            rsa.n().to_owned().unwrap(),
            rsa.e().to_owned().unwrap(),
            rsa.d().to_owned().unwrap(),
            other.p().unwrap().to_owned().unwrap(),
            rsa.q().unwrap().to_owned().unwrap(),
            rsa.dmp1().unwrap().to_owned().unwrap(),
            rsa.dmq1().unwrap().to_owned().unwrap(),
            rsa.iqmp().unwrap().to_owned().unwrap(),
        );
        let spliced = PKey::from_rsa(spliced.unwrap()).unwrap();
        assert!(!fits(&spliced, KeyAlgorithm::Rsa2048), "a key whose factors are not its modulus's");
        let again = PKey::private_key_from_pem(&key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        assert!(again.public_eq(&key) && !new_key(KeyAlgorithm::Rsa2048).unwrap().public_eq(&key));

        let ca = issue_ca(Authority::Kubernetes, &params).unwrap();
        assert!(ca.key.rsa().is_ok());
        assert_eq!(ca_problems(Authority::Kubernetes, &ca.cert, &ca.key, &params), Vec::<String>::new());
        let issued = sign_leaf(&leaf("admin"), key, &ca.cert, &ca.key, &params).unwrap();
        assert!(chains_to(&issued.cert, &ca.cert) && key_matches(&issued.cert, &again));
        assert!(issued.csr.verify(&issued.csr.public_key().unwrap()).unwrap());
        assert!(verdict(&leaf("admin"), &issued.cert, &issued.key, &ca.cert, &params).is_clean());
    }

    /// Every PEM private key reads as OpenSSL's own decoder reads it: the PKCS#8 RSA keys
    /// groundup writes (through RSA's reader), an ECDSA key and a PKCS#1 RSA key (through the
    /// generic decoder); what is no key is an error.
    #[test]
    fn a_private_key_reads_as_openssl_reads_it_whatever_its_form() {
        let rsa = new_key(KeyAlgorithm::Rsa2048).unwrap();
        let ec = new_key(KeyAlgorithm::EcdsaP256).unwrap();
        let pkcs1 = rsa.rsa().unwrap().private_key_to_pem().unwrap();
        assert!(String::from_utf8_lossy(&pkcs1).starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        for pem in [rsa.private_key_to_pem_pkcs8().unwrap(), ec.private_key_to_pem_pkcs8().unwrap(), pkcs1] {
            let read = read_private_key(&pem).unwrap();
            let openssl = PKey::private_key_from_pem(&pem).unwrap();
            assert!(read.public_eq(&openssl) && read.id() == openssl.id());
            assert_eq!(read.private_key_to_pem_pkcs8().unwrap(), openssl.private_key_to_pem_pkcs8().unwrap());
        }
        assert!(read_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err());
        assert!(read_private_key(b"not a key").is_err());
    }

    #[test]
    fn a_reissue_for_the_same_key_keeps_the_key() {
        let params = params(3650, 365);
        let ca = issue_ca(Authority::Kubernetes, &params).unwrap();
        let first = issue_leaf(&leaf("admin"), &ca.cert, &ca.key, &params).unwrap();
        let again = sign_leaf(&leaf("admin"), first.key.clone(), &ca.cert, &ca.key, &params).unwrap();
        assert!(key_matches(&again.cert, &first.key) && chains_to(&again.cert, &ca.cert));
        assert_ne!(again.cert.to_der().unwrap(), first.cert.to_der().unwrap());
    }

    #[test]
    fn only_the_expected_ca_passes_as_a_ca() {
        let params = params(3650, 365);
        let ca = issue_ca(Authority::Kubernetes, &params).unwrap();
        assert_eq!(ca_problems(Authority::Kubernetes, &ca.cert, &ca.key, &params), Vec::<String>::new());
        let issued = issue_leaf(&leaf("admin"), &ca.cert, &ca.key, &params).unwrap();
        let found = ca_problems(Authority::Kubernetes, &issued.cert, &issued.key, &params).join("; ");
        assert!(found.contains("not a CA certificate") && found.contains("not self-signed"), "{found}");
        let etcd = issue_ca(Authority::Etcd, &params).unwrap();
        let found = ca_problems(Authority::Kubernetes, &etcd.cert, &etcd.key, &params).join("; ");
        assert!(found.contains("CN Some(\"etcd-ca\")"), "{found}");
    }

    #[test]
    fn a_certificate_ends_with_its_ca_at_the_latest() {
        let params = params(40, 36500);
        let ca = issue_ca(Authority::Kubernetes, &params).unwrap();
        let issued = issue_leaf(&leaf("admin"), &ca.cert, &ca.key, &params).unwrap();
        assert!(issued.cert.not_after() <= ca.cert.not_after());
        let mut short = leaf("short");
        short.hours = Some(1);
        let issued = issue_leaf(&short, &ca.cert, &ca.key, &params).unwrap();
        assert!(issued.cert.not_after() > Asn1Time::days_from_now(0).unwrap());
        assert!(issued.cert.not_after() < Asn1Time::days_from_now(1).unwrap());
    }

    /// What the context records is the certificate's own subject and expiry, as values.
    #[test]
    fn a_record_holds_the_certificates_subject_and_expiry_as_values() {
        let params = params(3650, 365);
        let ca = issue_ca(Authority::Kubernetes, &params).unwrap();
        let issued = issue_leaf(&leaf("admin"), &ca.cert, &ca.key, &params).unwrap();
        for cert in [&ca.cert, &issued.cert] {
            let expiry = not_after(cert);
            assert_eq!(CertTime::parse(&cert.not_after().to_string()), Some(expiry), "{}", cert.not_after());
            let subject = subject_of(cert.subject_name());
            assert_eq!(subject.get("CN"), entry(cert.subject_name(), Nid::COMMONNAME).as_deref());
            assert_eq!(subject.get("C"), Some("UK"));
        }
    }

    #[test]
    fn a_custom_request_gets_only_its_own_names() {
        let params = params(3650, 365);
        let ca = issue_ca(Authority::Kubernetes, &params).unwrap();
        let course = issue_leaf(&leaf("admin"), &ca.cert, &ca.key, &params).unwrap();
        assert_eq!(name_text(course.cert.subject_name()), "C=UK, ST=London, L=England, OU=DEVOPS, CN=admin");
        let mut custom = leaf("app");
        custom.organization = Some("ops".into());
        custom.names = Some(CfsslName { country: Some("DE".into()), ..CfsslName::default() });
        let issued = issue_leaf(&custom, &ca.cert, &ca.key, &params).unwrap();
        assert_eq!(name_text(issued.cert.subject_name()), "C=DE, O=ops, CN=app");
    }
}
