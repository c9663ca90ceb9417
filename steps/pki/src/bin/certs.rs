//! Course section "Generating TLS Certificates For Client and Server", and what kubeadm adds:
//! every component's certificate, checked on each re-run. `check` reports without changing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use groundup_contracts::context::need;
use groundup_contracts::pki::{CertRecord, CertsSection, Layout, PkiParams};
use groundup_contracts::x509::CertTime;
use groundup_contracts::{Context, Section};
use groundup_pki::catalogue::{add_custom, certificates, lint};
use groundup_pki::certificate::{Authorities, CertDiff, Certificate, Renewal};
use groundup_pki::cfssl::{grants_system_masters, read_request};
use groundup_pki::check::check;
use groundup_pki::names;
use groundup_pki::spec::{Authority, CertSpec};
use groundup_pki::store::{disk_writers, Store, RETIRED};
use groundup_pki::x509::ca_problems;
use groundup_runtime::artifact::{converge_file, Found};
use groundup_runtime::harness::{run_step_or_report, StepInfo};
use groundup_runtime::plan::Gate;
use groundup_runtime::StepError;
use rayon::prelude::*;

#[derive(Args, Debug)]
struct CertsArgs {
    /// Regenerate, with new keys, certificates that no longer match the context (or are about
    /// to expire, or unreadable); never a CA. Not needed when only the SANs the infrastructure
    /// decides changed: those are re-issued anyway, for their keys. The certificates NAMEd
    /// are re-issued even if they match, each for its own key unless --new-key
    #[arg(long, value_name = "NAME", num_args = 0..)]
    renew: Option<Vec<String>>,
    /// With --renew NAME: new keys for the certificates named, the old ones retired with their
    /// certificates
    #[arg(long, requires = "renew")]
    new_key: bool,
    /// Add a custom certificate from a cfssl CSR JSON (`<name>-csr.json`); it is kept in the
    /// context and checked on every run like the others
    #[arg(long, value_name = "FILE")]
    csr: Option<PathBuf>,
    /// cfssl's ca-config.json, for the custom certificate's usages and expiry
    #[arg(long, value_name = "FILE", requires = "csr")]
    config: Option<PathBuf>,
    /// The profile of the config to use [default: its `default` section]
    #[arg(long, value_name = "NAME", requires = "config")]
    profile: Option<String>,
    /// Let the custom certificate ask for O=system:masters, the group that bypasses every
    /// authorization check
    #[arg(long, requires = "csr")]
    allow_system_masters: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print every CA and certificate with its expiry and problems as a table on stderr, and
    /// nothing on stdout; fail if any has a problem. Writes nothing.
    Check,
}

fn main() -> ExitCode {
    let info = StepInfo { name: "certs", about: "Create (or check and keep) every certificate of the cluster" };
    run_step_or_report(info, |mut context, args: CertsArgs| {
        context.params.pki.validate()?;
        let checking = matches!(args.command, Some(Command::Check));
        if checking && (args.renew.is_some() || args.csr.is_some()) {
            return Err(StepError::bad_input("check changes nothing: it takes neither --renew nor --csr"));
        }
        if let Some(csr) = &args.csr {
            add_request(&mut context, csr, &args)?;
        }
        let params = context.params.pki.clone();
        let plan = certificates(&context)?;
        for spec in &plan {
            if let Some(problem) = lint(spec).first() {
                return Err(StepError::bad_input(format!("{}: {problem}", spec.name)));
            }
        }
        let named = args.renew.as_deref().unwrap_or_default();
        refuse_unknown(named, &plan)?;
        if checking {
            check(&context, &plan)?;
            return Ok(None);
        }
        let gate = Gate::for_context("certs", &context);
        if let Err(missing) = need(&context.ca, Section::Ca) {
            gate.source_missing(|| StepError::from(missing))?;
        }
        let store = Store::through(&gate, &params.dir, &context.cluster.name)?;
        let authorities = load_authorities(&store, &params, &gate)?;
        let recorded = context.certs.as_ref().map(|c| c.certificates.clone()).unwrap_or_default();
        let found = disk_writers(plan.len())?.install(|| {
            plan.par_iter()
                .map(|spec| {
                    let certificate = Certificate {
                        spec,
                        store: &store,
                        authorities: &authorities,
                        params: &params,
                        recorded: &recorded,
                        renew: renewal(spec, &args),
                    };
                    converge_file(&gate, &certificate).map(|found| (spec, found))
                })
                .collect::<Result<Vec<_>, _>>()
        })?;
        let renewed_any = found.iter().any(|(_, found)| renews(found));
        // A run refuses stale certificates before it retires anything.
        let certificates = gate.in_run(|| settle(&store, found))?;
        if let Some(certificates) =
            certificates.as_ref().filter(|_| args.renew.as_ref().is_some_and(Vec::is_empty) && !renewed_any)
        {
            let days = i64::from(params.renew_within_days) * 86_400;
            let first_due = certificates.iter().map(|c| c.not_after.unix() - days).min();
            match first_due {
                Some(due) => tracing::info!("certs: --renew: nothing due before {}", CertTime::from_unix(due)),
                None => tracing::info!("certs: --renew: nothing due"),
            }
        }
        for name in retiring(&store, &plan) {
            let what = format!("retire to {}/{RETIRED}/: no longer in the context", params.dir);
            gate.found("certificate", &name, &store.cert_path(&name).display().to_string(), true);
            gate.change(&name, &what, || store.retire(&name))?;
        }
        let masters: Vec<&str> = match (params.layout, &context.compute) {
            (Layout::Kubeadm, Some(compute)) => compute.masters().map(|m| m.hostname.as_str()).collect(),
            _ => Vec::new(),
        };
        for (host, files) in groundup_pki::kubeadm::unwanted_trees(&store, &masters) {
            let tree = format!("kubeadm/{host}");
            let what: Vec<String> = files.iter().map(|file| format!("- {}", store.dir.join(file).display())).collect();
            let remove = || files.iter().try_for_each(|file| store.remove_copy(file));
            gate.delete("kubeadm tree", &tree, &store.dir.join(&tree).display().to_string(), &what, remove)?;
        }
        if params.layout == Layout::Kubeadm {
            gate.in_run(|| {
                let masters = need(&context.compute, Section::Compute)?.masters();
                for root in groundup_pki::kubeadm::export(&store, masters)? {
                    gate.log("kubeadm", format_args!("layout in {}", root.display()));
                }
                Ok::<_, StepError>(())
            })?;
        }
        let order = plan.iter().map(|spec| spec.name.as_str());
        gate.finish(&mut context, order, |context| {
            context.certs = certificates.map(|certificates| CertsSection { certificates })
        });
        Ok(Some(context))
    })
}

/// What `--renew` asks of the certificate of `spec`.
fn renewal(spec: &CertSpec, args: &CertsArgs) -> Renewal {
    match &args.renew {
        None => Renewal::No,
        Some(named) if named.contains(&spec.name) => Renewal::Named { new_key: args.new_key },
        Some(_) => Renewal::Due,
    }
}

/// Whether a certificate is renewed because it is due (not merely issued, followed or asked).
fn renews(found: &Found<CertDiff>) -> bool {
    matches!(found, Found::Present { diffs, .. } if diffs.iter().any(|d| matches!(d, CertDiff::Renew { asked: true, .. })))
}

/// `--renew NAME`: each name must be a certificate of the plan; a CA is never renewed.
fn refuse_unknown(named: &[String], plan: &[CertSpec]) -> Result<(), StepError> {
    let Some(unknown) = named.iter().find(|name| !plan.iter().any(|spec| &spec.name == *name)) else {
        return Ok(());
    };
    if Authority::ALL.iter().any(|ca| ca.file() == unknown.as_str()) {
        return Err(StepError::bad_input(format!("--renew {unknown}: a CA is never renewed"))
            .with_hint("groundup-ca says how to replace one"));
    }
    let known: Vec<&str> = plan.iter().map(|spec| spec.name.as_str()).collect();
    Err(StepError::bad_input(format!(
        "--renew {unknown}: no such certificate; the certificates are {}",
        known.join(", ")
    )))
}

/// `--csr`: the request joins `params.pki.custom` (replacing one of its name). What is wrong
/// with it is reported against the file, which is where the user can fix it.
fn add_request(context: &mut Context, csr: &Path, args: &CertsArgs) -> Result<(), StepError> {
    let custom = read_request(csr, args.config.as_deref(), args.profile.as_deref())?;
    let in_file = |e: &dyn std::fmt::Display| StepError::bad_input(format!("{}: {e}", csr.display()));
    if grants_system_masters(&custom) && !args.allow_system_masters {
        return Err(in_file(&"asks for O=system:masters, the group that bypasses every authorization check")
            .with_hint("pass --allow-system-masters if that is what you mean"));
    }
    context.params.pki.custom.retain(|c| c.name != custom.name);
    add_custom(&mut certificates(context)?, &custom).map_err(|e| in_file(&e))?;
    context.params.pki.custom.push(custom);
    Ok(())
}

/// The three CAs, each proven a usable CA: certificates are never signed with anything else.
/// A plan takes those there are: a missing one is one `groundup-ca` would make.
fn load_authorities(store: &Store, params: &PkiParams, gate: &Gate) -> Result<Authorities, StepError> {
    let mut authorities = Authorities::new();
    for authority in Authority::ALL {
        let Some((cert, key)) = store.load(authority.file())? else {
            gate.source_missing(|| {
                StepError::new(format!("the {} CA is missing from {}", authority.file(), store.dir.display()))
                    .with_hint("run groundup-ca first")
            })?;
            continue;
        };
        let found = ca_problems(authority, &cert, &key, params);
        if !found.is_empty() {
            return Err(StepError::new(format!("the {} CA is unusable: {}", authority.file(), found.join("; ")))
                .with_hint("groundup-ca says what to do"));
        }
        authorities.insert(authority, (cert, key));
    }
    Ok(authorities)
}

/// The certificates groundup wrote that are no longer planned (a node scaled away, a custom
/// request dropped): each a plain name that is no CA's and no planned certificate's.
/// Certificates groundup wrote that the spec no longer names and that are still in place (the
/// record keeps a retired one's name; it is gone from here once moved).
fn retiring(store: &Store, plan: &[CertSpec]) -> Vec<String> {
    store
        .written()
        .into_iter()
        .filter(|name| names::plain(name).is_ok())
        .filter(|name| store.cert_path(name).exists() || store.key_path(name).exists())
        .filter(|name| !Authority::ALL.iter().any(|a| names::collide(name, a.file())))
        .filter(|name| !plan.iter().any(|spec| names::collide(name, &spec.name)))
        .collect()
}

/// All good: the records of the certificates now on disk. Anything stale: one error naming
/// each certificate and its problems.
fn settle(store: &Store, found: Vec<(&CertSpec, Found<CertDiff>)>) -> Result<Vec<CertRecord>, StepError> {
    let mut records = Vec::new();
    let mut stale = Vec::new();
    for (spec, found) in found {
        if let Found::Present { diffs, .. } = found {
            if let Some(CertDiff::Renew { problems, asked: false, .. }) = diffs.first() {
                stale.push(format!("{} ({})", spec.name, problems.join("; ")));
                continue;
            }
        }
        let cert = store
            .load_cert(&spec.name)?
            .ok_or_else(|| StepError::new(format!("{} is gone from {}", spec.name, store.dir.display())))?;
        records.push(store.record(&spec.name, spec.signer.file(), &cert));
    }
    if stale.is_empty() {
        Ok(records)
    } else {
        Err(StepError::new(format!("{} certificate(s) do not match the context: {}", stale.len(), stale.join(", ")))
            .with_hint("pass --renew to regenerate them"))
    }
}
