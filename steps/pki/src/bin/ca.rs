//! Course section "Self-Signed Root Certificate Authority", plus the etcd and front-proxy CAs a
//! production cluster keeps apart. An existing valid CA is reused, never silently replaced.

use std::process::ExitCode;

use groundup_contracts::harness::{run_step, NoArgs, StepInfo};
use groundup_contracts::pki::{CaSection, CertRecord, PkiParams};
use groundup_contracts::plan::PlanLog;
use groundup_contracts::StepError;
use groundup_pki::plan::Authority;
use groundup_pki::store::Store;
use groundup_pki::x509::{expires_within, issue_ca, key_matches};
use openssl::x509::X509;
use rayon::prelude::*;

const KIND: &str = "CA";

fn main() -> ExitCode {
    let info = StepInfo { name: "ca", about: "Create (or check and reuse) the Kubernetes, etcd and front-proxy CAs" };
    run_step(info, |mut context, NoArgs {}| {
        let params = context.params.pki.clone();
        if context.planning() {
            let recorded = context.ca.as_ref().map(|ca| ca.authorities.clone()).unwrap_or_default();
            let log = PlanLog::new("ca");
            let store = Store::at(&params.dir);
            for authority in Authority::ALL {
                plan(&store, authority, &params, &recorded, &log)?;
            }
            context.add_plan(&log);
            return Ok(context);
        }
        let store = Store::open(&params.dir, &context.cluster.name).map_err(StepError::new)?;
        let authorities = Authority::ALL
            .par_iter()
            .map(|authority| ensure(&store, *authority, &params))
            .collect::<Result<Vec<_>, _>>()?;
        context.ca = Some(CaSection { authorities });
        Ok(context)
    })
}

fn ensure(store: &Store, authority: Authority, params: &PkiParams) -> Result<CertRecord, StepError> {
    let name = authority.file();
    let cert = match existing(store, authority, params)? {
        Some(cert) => {
            tracing::info!("ca: found {name} (valid until {})", cert.not_after());
            cert
        }
        None => {
            let issued =
                issue_ca(authority, params).map_err(|e| StepError::new(format!("cannot create {name}: {e}")))?;
            store.save_ca(name, &issued).map_err(StepError::new)?;
            tracing::info!("ca: created {name} ({})", authority.common_name());
            issued.cert
        }
    };
    Ok(store.record(name, name, &cert))
}

fn plan(
    store: &Store,
    authority: Authority,
    params: &PkiParams,
    recorded: &[CertRecord],
    log: &PlanLog,
) -> Result<(), StepError> {
    let name = authority.file();
    match existing(store, authority, params)? {
        Some(cert) => store.plan_found(log, KIND, name, &cert, recorded),
        None => log.missing(KIND, name),
    }
    Ok(())
}

/// The CA on disk if it is usable; an unusable one is an error, since replacing a CA
/// invalidates every certificate it signed.
fn existing(store: &Store, authority: Authority, params: &PkiParams) -> Result<Option<X509>, StepError> {
    let name = authority.file();
    let Some((cert, key)) = store.load(name).map_err(StepError::new)? else { return Ok(None) };
    if !key_matches(&cert, &key) {
        return Err(StepError::new(format!("{name}-key.pem does not match {name}.pem")).with_hint(
            "restore the CA's key, or move both files away to make a new CA (every certificate must then be renewed)",
        ));
    }
    if expires_within(&cert, params.renew_within_days) {
        return Err(StepError::new(format!("the {name} CA expires {}", cert.not_after())).with_hint(
            "replacing a CA is never automatic: move its files away, run groundup-ca, then groundup-certs --renew",
        ));
    }
    Ok(Some(cert))
}
