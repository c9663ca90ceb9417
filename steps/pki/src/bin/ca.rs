//! Course section "Self-Signed Root Certificate Authority", plus the etcd and front-proxy CAs a
//! production cluster keeps apart. An existing valid CA is reused, never silently replaced.

use std::process::ExitCode;

use groundup_contracts::pki::{CaSection, CertRecord, PkiParams};
use groundup_pki::plan::Authority;
use groundup_pki::store::Store;
use groundup_pki::x509::{ca_problems, issue_ca};
use groundup_runtime::harness::{run_step, NoArgs, StepInfo};
use groundup_runtime::plan::PlanLog;
use groundup_runtime::StepError;
use openssl::x509::X509;
use rayon::prelude::*;

const KIND: &str = "CA";

fn main() -> ExitCode {
    let info = StepInfo { name: "ca", about: "Create (or check and reuse) the Kubernetes, etcd and front-proxy CAs" };
    run_step(info, |mut context, NoArgs {}| {
        context.params.pki.validate()?;
        let params = context.params.pki.clone();
        if context.planning() {
            let recorded = context.ca.as_ref().map(|ca| ca.authorities.clone()).unwrap_or_default();
            let log = PlanLog::new("ca");
            let store = Store::at(&params.dir);
            for authority in Authority::ALL {
                plan(&store, authority, &params, &recorded, &log)?;
            }
            context.add_plan(log.take());
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
/// invalidates every certificate it signed. A key without its certificate is an error too:
/// making a new CA would overwrite that key.
fn existing(store: &Store, authority: Authority, params: &PkiParams) -> Result<Option<X509>, StepError> {
    let name = authority.file();
    let never_replaced = "a CA is never replaced automatically: restore its files, or move both away to make a new \
        one (then run groundup-certs --renew: every certificate it signed must be re-issued)";
    let Some((cert, key)) = store.load(name).map_err(|e| StepError::new(e).with_hint(never_replaced))? else {
        if store.key_path(name).exists() {
            return Err(StepError::new(format!("{name}-key.pem is in {} without {name}.pem", store.dir.display()))
                .with_hint(never_replaced));
        }
        return Ok(None);
    };
    let problems = ca_problems(authority, &cert, &key, params);
    if !problems.is_empty() {
        return Err(
            StepError::new(format!("the {name} CA is unusable: {}", problems.join("; "))).with_hint(never_replaced)
        );
    }
    Ok(Some(cert))
}
