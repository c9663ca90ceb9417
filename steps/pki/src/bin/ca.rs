//! Course section "Self-Signed Root Certificate Authority", plus the etcd and front-proxy CAs a
//! production cluster keeps apart. An existing valid CA is reused, never silently replaced.

use std::process::ExitCode;

use clap::Args;
use groundup_contracts::pki::{CaSection, CertRecord, PkiParams};
use groundup_contracts::Context;
use groundup_pki::spec::Authority;
use groundup_pki::store::Store;
use groundup_pki::x509::{ca_problems, issue_ca, new_key};
use groundup_runtime::artifact::WritePolicy;
use groundup_runtime::harness::{enter_head_start, run_step, StepInfo};
use groundup_runtime::plan::Gate;
use groundup_runtime::StepError;
use openssl::x509::X509;
use rayon::prelude::*;

#[derive(Args, Debug)]
struct CaArgs {
    /// Also make, on every core, a private key for each certificate the spec calls for that
    /// has none, for `certs` to adopt: the PKI's head start, which `groundup up` runs in the
    /// background while the infrastructure is built. Keys depend only on the spec.
    #[arg(long)]
    prepare: bool,
}

const KIND: &str = "CA";

fn main() -> ExitCode {
    let info = StepInfo { name: "ca", about: "Create (or check and reuse) the Kubernetes, etcd and front-proxy CAs" };
    run_step(info, |mut context, args: CaArgs| {
        context.params.pki.validate()?;
        let params = context.params.pki.clone();
        if args.prepare {
            enter_head_start(&context)?;
        }
        let gate = Gate::for_context("ca", &context);
        let store = Store::through(&gate, &params.dir, &context.cluster.name)?;
        let recorded = context.ca.as_ref().map(|ca| ca.authorities.clone()).unwrap_or_default();
        let (authorities, prepared) = rayon::join(
            || {
                Authority::ALL
                    .par_iter()
                    .map(|a| ensure(&gate, &store, *a, &params, &recorded))
                    .collect::<Result<Vec<_>, _>>()
            },
            || if args.prepare { prepare(&store, &context) } else { Ok(0) },
        );
        let authorities = authorities?;
        if args.prepare {
            tracing::info!("ca: made {} key(s) ahead for certs", prepared?);
        }
        gate.finish(&mut context, Authority::ALL.map(Authority::file), |context| {
            context.ca = Some(CaSection { authorities: authorities.into_iter().flatten().collect() })
        });
        Ok(context)
    })
}

/// The CA's record; `None` in a plan that would make it.
fn ensure(
    gate: &Gate,
    store: &Store,
    authority: Authority,
    params: &PkiParams,
    recorded: &[CertRecord],
) -> Result<Option<CertRecord>, StepError> {
    let name = authority.file();
    let cert = match existing(store, authority, params)? {
        Some(cert) => {
            store.found(gate, KIND, name, Some(&cert), recorded);
            Some(cert)
        }
        None => gate.create(KIND, name, || {
            let issued =
                issue_ca(authority, params).map_err(|e| StepError::new(format!("cannot create {name}: {e}")))?;
            store.save(name, &issued, WritePolicy::WriteOnce)?;
            Ok::<_, StepError>(issued.cert)
        })?,
    };
    Ok(cert.map(|cert| store.record(name, name, &cert)))
}

/// A key for every planned certificate that has neither a certificate nor a key: what `certs`
/// would otherwise make on its turn. Returns how many it made.
fn prepare(store: &Store, context: &Context) -> Result<usize, StepError> {
    let planned = groundup_pki::prepare::planned(context)?;
    let missing: Vec<_> =
        planned.iter().filter(|s| !store.cert_path(&s.name).exists() && !store.key_path(&s.name).exists()).collect();
    missing.par_iter().try_for_each(|spec| {
        let key = new_key(spec.key.unwrap_or(context.params.pki.key))
            .map_err(|e| StepError::new(format!("cannot make a key for {}: {e}", spec.name)))?;
        store.save_key(&spec.name, &key).map_err(StepError::from)
    })?;
    Ok(missing.len())
}

/// The CA on disk if it is usable; an unusable one is an error, since replacing a CA
/// invalidates every certificate it signed. A key without its certificate that signed a
/// certificate in the directory is an error too: making a new CA would overwrite that key.
/// One that signed nothing is what a run killed between the key and the certificate leaves
/// (the key is written first), and is made again.
fn existing(store: &Store, authority: Authority, params: &PkiParams) -> Result<Option<X509>, StepError> {
    let name = authority.file();
    let never_replaced = "a CA is never replaced automatically: restore its files, or move both away to make a new \
        one (then run groundup-certs --renew: every certificate it signed must be re-issued)";
    let Some((cert, key)) = store.load(name).map_err(|e| StepError::from(e).with_hint(never_replaced))? else {
        if store.key_path(name).exists() {
            if store.key_signed_anything(name).unwrap_or(true) {
                return Err(StepError::new(format!("{name}-key.pem is in {} without {name}.pem", store.dir.display()))
                    .with_hint(never_replaced));
            }
            tracing::warn!("ca: {name}-key.pem has no certificate and signed none: a killed run's, made again");
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
