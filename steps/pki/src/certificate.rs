//! A certificate as a local artifact (see `groundup_runtime::artifact`): its compare is a
//! verdict on what the certificate says ([`decide`]), not on its bytes, and its key rule
//! depends on the verdict: a certificate that only follows the infrastructure keeps its key, a
//! renewed one retires it first. `certs` converges each through the gate; `certs check` reports
//! the same verdicts.

use std::collections::HashMap;
use std::fmt;

use groundup_contracts::pki::{CertRecord, PkiParams};
use groundup_runtime::artifact::{Act, Artifact, Difference, Found, WritePolicy};
use groundup_runtime::StepError;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use crate::error::PkiError;
use crate::spec::{Authority, CertSpec};
use crate::store::{fingerprint, Store, RETIRED};
use crate::x509::{fits, issue_leaf, sign_leaf, verdict};

/// The CAs that sign, each proven usable.
pub type Authorities = HashMap<Authority, (X509, PKey<Private>)>;

/// What the one compare finds of a certificate.
enum Decision {
    /// It matches the context: the certificate and its key.
    Keep(X509, PKey<Private>),
    /// Missing: issued (see [`Certificate::create`] for which key).
    Issue,
    /// The infrastructure it names changed: re-issued for its own key.
    Follow(X509, PKey<Private>, String),
    /// Wrong for any other reason: renewed with a new key under `--renew`, refused without.
    /// The certificate, unless its files are unreadable.
    Renew(Option<X509>, Vec<String>),
}

/// The one compare of a certificate with what the context asks for, which the plan, the run
/// and `check` all act on. `ca` is `None` where the CA is missing.
fn decide(store: &Store, spec: &CertSpec, ca: Option<&X509>, params: &PkiParams) -> Decision {
    let (cert, key) = match store.load(&spec.name) {
        Ok(Some(pair)) => pair,
        Ok(None) => return Decision::Issue,
        Err(e) => return Decision::Renew(None, unreadable(e)),
    };
    let Some(ca) = ca else {
        let missing = format!("its CA `{}` is missing (groundup-ca would make a new one)", spec.signer.file());
        return Decision::Renew(Some(cert), vec![missing]);
    };
    let found = verdict(spec, &cert, &key, ca, params);
    if found.is_clean() {
        return Decision::Keep(cert, key);
    }
    match found.follows_infrastructure(spec) {
        Some(diff) => Decision::Follow(cert, key, diff.to_string()),
        None => Decision::Renew(Some(cert), found.problems()),
    }
}

/// An unreadable file is reported, not fatal: it is what `--renew` (or deleting it) mends.
fn unreadable(error: PkiError) -> Vec<String> {
    vec![format!("{error} (delete it and its key, or run groundup-certs --renew)")]
}

/// How a certificate on disk differs from the one the context asks for.
pub enum CertDiff {
    /// Re-issued for the infrastructure's SANs: `sans` says what changed; the key is kept.
    Follow { key: PKey<Private>, sans: String },
    /// Renewed with a new key, the old one retired with its certificate, when `asked`
    /// (`--renew`); without it a plan shows what it would take and a run refuses it.
    Renew { problems: Vec<String>, asked: bool, dir: String },
    /// One that matches, re-issued because `--renew NAME` names it: for its own key (`key`),
    /// or with `--new-key` for a new one, the old one retired with its certificate.
    Asked { key: Option<PKey<Private>>, dir: String },
}

/// What `--renew` asks of one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Nothing: one that no longer matches is refused.
    No,
    /// `--renew`: one that no longer matches (expires soon, ...) is renewed with a new key.
    Due,
    /// `--renew NAME`: also re-issued if it matches, for its own key unless `new_key`.
    Named { new_key: bool },
}

impl fmt::Display for CertDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertDiff::Follow { sans, .. } => write!(f, "re-issue for the infrastructure's SANs, key kept: {sans}"),
            CertDiff::Renew { problems, asked, dir } => {
                let how = if *asked { "renew" } else { "renew (run with --renew)" };
                write!(f, "{how}, the old key retired to {dir}/{RETIRED}/: {}", problems.join("; "))
            }
            CertDiff::Asked { key: Some(_), .. } => write!(f, "re-issue as --renew asks, key kept"),
            CertDiff::Asked { key: None, dir } => {
                write!(f, "re-issue as --renew asks, with a new key, the old one retired to {dir}/{RETIRED}/")
            }
        }
    }
}

impl Difference for CertDiff {
    fn act(&self) -> Act {
        match self {
            CertDiff::Renew { asked: false, .. } => Act::Ask,
            _ => Act::Mend,
        }
    }
}

/// One certificate the spec calls for, with what it is signed and checked with.
pub struct Certificate<'a> {
    pub spec: &'a CertSpec,
    pub store: &'a Store,
    pub authorities: &'a Authorities,
    pub params: &'a PkiParams,
    /// What the context records, to tell a certificate it holds from one adopted.
    pub recorded: &'a [CertRecord],
    /// What `--renew` asks of it.
    pub renew: Renewal,
}

impl Certificate<'_> {
    /// The one way a certificate is made: signed for `key` (a new one if `None`) and saved
    /// under `key_rule`.
    fn make(&self, key: Option<PKey<Private>>, key_rule: WritePolicy) -> Result<(), StepError> {
        let Certificate { spec, store, authorities, params, .. } = self;
        let name = spec.name.as_str();
        let cannot = |e: &dyn fmt::Display| StepError::new(format!("cannot issue {name}: {e}"));
        let (ca, ca_key) = authorities
            .get(&spec.signer)
            .ok_or_else(|| cannot(&format!("its CA `{}` is missing", spec.signer.file())))?;
        let issued = match key {
            Some(key) => sign_leaf(spec, key, ca, ca_key, params).map_err(|e| cannot(&e))?,
            None => issue_leaf(spec, ca, ca_key, params).map_err(|e| cannot(&e))?,
        };
        Ok(store.save(name, &issued, key_rule)?)
    }

    fn recorded(&self, cert: Option<&X509>) -> bool {
        cert.is_some_and(|c| self.recorded.iter().any(|r| r.name == self.spec.name && r.sha256 == fingerprint(c)))
    }
}

impl Artifact for Certificate<'_> {
    type Diff = CertDiff;

    fn kind(&self) -> &str {
        "certificate"
    }

    fn name(&self) -> &str {
        &self.spec.name
    }

    fn location(&self) -> String {
        self.store.cert_path(&self.spec.name).display().to_string()
    }

    fn diff(&self) -> Result<Found<CertDiff>, StepError> {
        let ca = self.authorities.get(&self.spec.signer).map(|(ca, _)| ca);
        let (cert, diff) = match decide(self.store, self.spec, ca, self.params) {
            Decision::Issue => return Ok(Found::Missing),
            Decision::Keep(cert, key) => match self.renew {
                Renewal::Named { new_key } => {
                    let key = (!new_key).then_some(key);
                    (Some(cert), Some(CertDiff::Asked { key, dir: self.params.dir.clone() }))
                }
                Renewal::No | Renewal::Due => (Some(cert), None),
            },
            // `--new-key` asks for more than following the infrastructure: a renewal.
            Decision::Follow(cert, _, sans) if self.renew == Renewal::Named { new_key: true } => {
                let problems = vec![format!("new key asked; {sans}")];
                (Some(cert), Some(CertDiff::Renew { problems, asked: true, dir: self.params.dir.clone() }))
            }
            Decision::Follow(cert, key, sans) => (Some(cert), Some(CertDiff::Follow { key, sans })),
            Decision::Renew(cert, problems) => {
                let asked = self.renew != Renewal::No;
                (cert, Some(CertDiff::Renew { problems, asked, dir: self.params.dir.clone() }))
            }
        };
        Ok(Found::Present { recorded: self.recorded(cert.as_ref()), diffs: diff.into_iter().collect() })
    }

    /// For the key the head start made (`groundup-ca --prepare`) or one a run killed before
    /// its certificate left (it never signed anything, so it is as good as new), if it fits;
    /// else for a new key.
    fn create(&self) -> Result<(), StepError> {
        let wanted = self.spec.key.unwrap_or(self.params.key);
        match self.store.load_key(&self.spec.name).filter(|key| fits(key, wanted)) {
            Some(prepared) => self.make(Some(prepared), WritePolicy::KeepKey),
            None => self.make(None, WritePolicy::Replace),
        }
    }

    fn fix(&self, diff: &CertDiff) -> Result<(), StepError> {
        match diff {
            CertDiff::Follow { key, .. } | CertDiff::Asked { key: Some(key), .. } => {
                self.make(Some(key.clone()), WritePolicy::KeepKey)
            }
            // A replaced key is retired with its certificate, never dropped; a run killed
            // after the move issues the certificate anew.
            CertDiff::Renew { asked: true, .. } | CertDiff::Asked { key: None, .. } => {
                self.store.retire(&self.spec.name)?;
                self.make(None, WritePolicy::Replace)
            }
            // Not asked for: the gate only proposes it, and never sends it here.
            CertDiff::Renew { asked: false, .. } => Ok(()),
        }
    }
}
