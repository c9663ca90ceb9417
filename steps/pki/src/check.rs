//! `groundup-certs check`: what a run of `certs` would find, as a table on stderr, and nothing
//! on stdout. It reads the same diffs a run acts on ([`Certificate`]), the CAs' own checks and
//! the certificates the kubeconfigs embed, and writes nothing.

use std::path::Path;

use groundup_contracts::context::need;
use groundup_contracts::pki::PkiParams;
use groundup_contracts::{Context, Section};
use groundup_runtime::artifact::{Artifact, Found};
use groundup_runtime::StepError;
use openssl::x509::X509;
use rayon::prelude::*;

use crate::certificate::{Authorities, CertDiff, Certificate, Renewal};
use crate::kubeconfig::{embedded, kubeconfigs, Embedded};
use crate::spec::{Authority, CertSpec};
use crate::store::Store;
use crate::x509::{ca_problems, expires_within};

/// One row of `check`'s table: what, when it expires, what is wrong with it.
type Row = (String, String, Vec<String>);

/// The certificates embedded in the kubeconfigs the context records: each must be the one in
/// the PKI directory (so it chains to the cluster CA, and its key matches) and not expiring.
fn embedded_rows(context: &Context, store: &Store, params: &PkiParams) -> Result<Vec<Row>, StepError> {
    let (Some(_), Some(_), Some(_)) = (&context.compute, &context.nlb, &context.kubeconfig) else {
        return Ok(Vec::new());
    };
    let specs = kubeconfigs(context)?;
    let home_file = |path: &Path| std::fs::read(path).ok();
    let ca = home_file(&store.cert_path(Authority::Kubernetes.file()));
    Ok(specs
        .iter()
        .map(|spec| {
            let path = Path::new(&context.params.kubeconfig_dir).join(&spec.file);
            let mut found = Vec::new();
            let mut expires = String::new();
            match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| embedded(&t).map_err(|e| e.to_string()))
            {
                Err(e) => found.push(format!("{e} (run groundup-kubeconfig to write it again)")),
                Ok(Embedded { ca: embedded_ca, cert, key }) => {
                    if ca.as_ref() != Some(&embedded_ca) {
                        found.push("its CA is not the cluster's".into());
                    }
                    if home_file(&store.cert_path(&spec.certificate)).as_ref() != Some(&cert)
                        || home_file(&store.key_path(&spec.certificate)).as_ref() != Some(&key)
                    {
                        found.push(format!(
                            "its certificate or key is not {}'s (run groundup-kubeconfig)",
                            spec.certificate
                        ));
                    }
                    match X509::from_pem(&cert) {
                        Ok(cert) => {
                            expires = cert.not_after().to_string();
                            if expires_within(&cert, params.renew_within_days) {
                                found.push(format!("expires within {} days", params.renew_within_days));
                            }
                        }
                        Err(_) => found.push("its client certificate is not a certificate".into()),
                    }
                }
            }
            (path.display().to_string(), expires, found)
        })
        .collect())
}

/// `certs check`: the CAs, every certificate `plan` lists and the certificates embedded in
/// the kubeconfigs, as a table on stderr; an error if any has a problem. Reads only.
pub fn check(context: &Context, plan: &[CertSpec]) -> Result<(), StepError> {
    need(&context.ca, Section::Ca)?;
    let params = &context.params.pki;
    let store = Store::at(&params.dir);
    let mut rows: Vec<Row> = Vec::new();
    let mut authorities = Authorities::new();
    for authority in Authority::ALL {
        let name = authority.file().to_string();
        match store.load(&name) {
            Ok(Some((cert, key))) => {
                rows.push((name, cert.not_after().to_string(), ca_problems(authority, &cert, &key, params)));
                authorities.insert(authority, (cert, key));
            }
            Ok(None) => rows.push((name, String::new(), vec!["missing (run groundup-ca)".into()])),
            Err(e) => rows.push((name, String::new(), vec![e.to_string()])),
        }
    }
    let recorded = context.certs.as_ref().map(|c| c.certificates.clone()).unwrap_or_default();
    let certificate = |spec| Certificate {
        spec,
        store: &store,
        authorities: &authorities,
        params,
        recorded: &recorded,
        renew: Renewal::No,
    };
    let rows_of_certificates: Result<Vec<Row>, StepError> =
        plan.par_iter().map(|spec| Ok(row(spec, &store, certificate(spec).diff()?))).collect();
    rows.extend(rows_of_certificates?);
    rows.extend(embedded_rows(context, &store, params)?);
    // As wide as the longest name (a kubeadm kubeconfig's path), so the columns line up.
    let width = rows.iter().map(|(name, _, _)| name.len()).max().unwrap_or_default().max(34);
    eprintln!("{:<width$} {:<26} problems", "certificate", "expires");
    for (name, expires, found) in &rows {
        let found = if found.is_empty() { "-".to_string() } else { found.join("; ") };
        eprintln!("{name:<width$} {expires:<26} {found}");
    }
    match rows.iter().filter(|(_, _, found)| !found.is_empty()).count() {
        0 => Ok(()),
        failing => Err(StepError::new(format!("{failing} of {} certificates have problems (table above)", rows.len()))
            .with_hint("groundup-certs --renew re-issues certificates; a CA is never replaced automatically")),
    }
}

/// A certificate's row, from the same diff a run acts on.
fn row(spec: &CertSpec, store: &Store, found: Found<CertDiff>) -> Row {
    let expires = store.load_cert(&spec.name).ok().flatten().map(|cert| cert.not_after().to_string());
    let problems = match found {
        Found::Missing => vec!["missing".to_string()],
        Found::Present { diffs, .. } => diffs
            .into_iter()
            .flat_map(|diff| match diff {
                CertDiff::Follow { sans, .. } => vec![format!("SANs differ: {sans}")],
                CertDiff::Renew { problems, .. } => problems,
                // `check` asks for no renewal.
                CertDiff::Asked { .. } => Vec::new(),
            })
            .collect(),
    };
    (spec.name.clone(), expires.unwrap_or_default(), problems)
}
