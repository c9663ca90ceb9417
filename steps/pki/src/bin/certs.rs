//! Course section "Generating TLS Certificates For Client and Server", and what kubeadm adds:
//! every component's certificate, checked on each re-run. `check` reports without changing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use groundup_contracts::context::need;
use groundup_contracts::harness::{run_step, StepInfo};
use groundup_contracts::pki::{CertRecord, CertsSection, Layout, PkiParams};
use groundup_contracts::plan::PlanLog;
use groundup_contracts::{Section, StepError};
use groundup_pki::plan::{certificates, lint, Authority, CertSpec};
use groundup_pki::store::Store;
use groundup_pki::x509::{issue_leaf, problems};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use rayon::prelude::*;

#[derive(Args, Debug)]
struct CertsArgs {
    /// Regenerate certificates that no longer match the context (or are about to expire)
    #[arg(long)]
    renew: bool,
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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print every certificate with its expiry and problems (stderr); fail if any has one
    Check,
}

const KIND: &str = "certificate";

/// What became of one certificate.
enum Outcome {
    Kept(CertRecord),
    Issued(CertRecord),
    Stale(String, Vec<String>),
}

fn main() -> ExitCode {
    let info = StepInfo { name: "certs", about: "Create (or check and keep) every certificate of the cluster" };
    run_step(info, |mut context, args: CertsArgs| {
        if let Some(csr) = &args.csr {
            let custom = groundup_pki::cfssl::read_request(csr, args.config.as_deref(), args.profile.as_deref())
                .map_err(StepError::new)?;
            let customs = &mut context.params.pki.custom;
            customs.retain(|c| c.name != custom.name);
            customs.push(custom);
        }
        let params = context.params.pki.clone();
        let plan = certificates(&context)?;
        for spec in &plan {
            if let Some(problem) = lint(spec).first() {
                return Err(StepError::new(format!("{}: {problem}", spec.name)));
            }
        }
        if context.planning() {
            let recorded = context.certs.as_ref().map(|c| c.certificates.clone()).unwrap_or_default();
            let log = PlanLog::new("certs");
            let store = Store::at(&params.dir);
            for spec in &plan {
                plan_one(&store, spec, &params, &recorded, args.renew, &log)?;
            }
            context.add_plan(&log);
            return Ok(context);
        }
        need(&context.ca, Section::Ca)?;
        let store = Store::open(&params.dir, &context.cluster.name).map_err(StepError::new)?;
        let authorities = load_authorities(&store)?;
        let checking = matches!(args.command, Some(Command::Check));
        let renew = args.renew && !checking;
        let outcomes = plan
            .par_iter()
            .map(|spec| ensure(&store, spec, &authorities, &params, renew, checking))
            .collect::<Result<Vec<_>, _>>()?;
        if checking {
            report(&outcomes)?;
        }
        context.certs = Some(CertsSection { certificates: settle(outcomes)? });
        if params.layout == Layout::Kubeadm {
            let masters = need(&context.compute, Section::Compute)?.masters();
            for root in groundup_pki::kubeadm::export(&store, masters).map_err(StepError::new)? {
                tracing::info!("certs: kubeadm layout in {}", root.display());
            }
        }
        Ok(context)
    })
}

type Authorities = HashMap<Authority, (X509, PKey<Private>)>;

fn load_authorities(store: &Store) -> Result<Authorities, StepError> {
    Authority::ALL
        .into_iter()
        .map(|authority| {
            let pair = store.load(authority.file()).map_err(StepError::new)?.ok_or_else(|| {
                StepError::new(format!("the {} CA is missing from {}", authority.file(), store.dir.display()))
                    .with_hint("run groundup-ca first")
            })?;
            Ok((authority, pair))
        })
        .collect()
}

fn ensure(
    store: &Store,
    spec: &CertSpec,
    authorities: &Authorities,
    params: &PkiParams,
    renew: bool,
    checking: bool,
) -> Result<Outcome, StepError> {
    let (ca, ca_key) = &authorities[&spec.signer];
    let signer = spec.signer.file();
    if let Some((cert, key)) = store.load(&spec.name).map_err(StepError::new)? {
        let found = problems(spec, &cert, &key, ca, params);
        if found.is_empty() {
            return Ok(Outcome::Kept(store.record(&spec.name, signer, &cert)));
        }
        if !renew {
            return Ok(Outcome::Stale(spec.name.clone(), found));
        }
        tracing::warn!("certs: renewing {}: {}", spec.name, found.join("; "));
    } else if checking {
        return Ok(Outcome::Stale(spec.name.clone(), vec!["missing".into()]));
    }
    let issued =
        issue_leaf(spec, ca, ca_key, params).map_err(|e| StepError::new(format!("cannot issue {}: {e}", spec.name)))?;
    store.save(&spec.name, &issued).map_err(StepError::new)?;
    Ok(Outcome::Issued(store.record(&spec.name, signer, &issued.cert)))
}

/// What `ensure` would do, without doing it. A missing CA means `groundup-ca` would make a
/// new one, so every certificate it signed would need re-issuing.
fn plan_one(
    store: &Store,
    spec: &CertSpec,
    params: &PkiParams,
    recorded: &[CertRecord],
    renew: bool,
    log: &PlanLog,
) -> Result<(), StepError> {
    let Some((cert, key)) = store.load(&spec.name).map_err(StepError::new)? else {
        log.missing(KIND, &spec.name);
        return Ok(());
    };
    store.plan_found(log, KIND, &spec.name, &cert, recorded);
    let found = match store.load(spec.signer.file()).map_err(StepError::new)? {
        Some((ca, _)) => problems(spec, &cert, &key, &ca, params),
        None => vec![format!("its CA `{}` would be new", spec.signer.file())],
    };
    if !found.is_empty() {
        let how = if renew { "renew" } else { "renew (run with --renew)" };
        log.change(&spec.name, &format!("{how}: {}", found.join("; ")));
    }
    Ok(())
}

fn report(outcomes: &[Outcome]) -> Result<(), StepError> {
    eprintln!("{:<34} {:<26} problems", "certificate", "expires");
    for outcome in outcomes {
        match outcome {
            Outcome::Kept(r) | Outcome::Issued(r) => eprintln!("{:<34} {:<26} -", r.name, r.not_after),
            Outcome::Stale(name, found) => eprintln!("{name:<34} {:<26} {}", "", found.join("; ")),
        }
    }
    Ok(())
}

/// All good: the records. Anything stale: one error naming each certificate and its problems.
fn settle(outcomes: Vec<Outcome>) -> Result<Vec<CertRecord>, StepError> {
    let mut records = Vec::new();
    let mut stale = Vec::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Kept(record) => records.push(record),
            Outcome::Issued(record) => {
                tracing::info!("certs: issued {} ({})", record.name, record.subject);
                records.push(record);
            }
            Outcome::Stale(name, found) => stale.push(format!("{name} ({})", found.join("; "))),
        }
    }
    if stale.is_empty() {
        Ok(records)
    } else {
        Err(StepError::new(format!("{} certificate(s) do not match the context: {}", stale.len(), stale.join(", ")))
            .with_hint("pass --renew to regenerate them"))
    }
}
