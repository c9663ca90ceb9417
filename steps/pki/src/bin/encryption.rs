//! Encryption at rest (the course's next part, in today's format): the API server's
//! `EncryptionConfiguration` with a random key, made once and never changed by a re-run.
//! `--rotate` and `--retire-old` are the explicit acts that change it.

use std::process::ExitCode;

use clap::Args;
use groundup_contracts::pki::EncryptionSection;
use groundup_pki::encryption::{Config, Provider, FILE};
use groundup_runtime::files::ClusterDir;
use groundup_runtime::harness::{run_step, StepInfo};
use groundup_runtime::plan::PlanLog;
use groundup_runtime::StepError;

#[derive(Args, Debug)]
struct EncryptionArgs {
    /// The provider of a new config, or with --rotate of the new key [default: aescbc, the
    /// course's]
    #[arg(long, value_enum)]
    provider: Option<Provider>,
    /// Put a new key first and keep the old ones, which still decrypt what they wrote
    #[arg(long, conflicts_with = "retire_old")]
    rotate: bool,
    /// Keep only the first key: once every Secret has been rewritten with it
    #[arg(long)]
    retire_old: bool,
}

/// What the step does with the config: keep the file byte for byte, or write a new one.
enum Decision {
    Keep(Config),
    Write(Config, String),
}

fn main() -> ExitCode {
    let info = StepInfo { name: "encryption", about: "Create (or keep) the API server's encryption-at-rest config" };
    run_step(info, |mut context, args: EncryptionArgs| {
        let dir = &context.params.pki.dir;
        let path = std::path::Path::new(dir).join(FILE);
        let recorded = context.encryption.is_some();
        if context.planning() {
            let log = PlanLog::new("encryption");
            match decide(read(&path)?, recorded, &args)? {
                Decision::Keep(_) => log.found("encryption config", FILE, &path.display().to_string(), recorded),
                Decision::Write(_, why) if path.exists() => {
                    log.found("encryption config", FILE, &path.display().to_string(), recorded);
                    log.change(FILE, &why);
                }
                Decision::Write(..) => log.missing("encryption config", FILE),
            }
            context.add_plan(log.take());
            return Ok(context);
        }
        let files = ClusterDir::open(dir, &context.cluster.name).map_err(StepError::new)?;
        files.lock().map_err(StepError::new)?;
        if path.exists() && !files.is_ours(FILE) {
            return Err(StepError::new(format!("{} was not written by groundup; it is left as it is", path.display()))
                .with_hint("move it away if groundup should make one, or keep using it by hand"));
        }
        let config = match decide(read(&path)?, recorded, &args)? {
            Decision::Keep(config) => config,
            Decision::Write(config, why) => {
                files.write(FILE, config.to_yaml().as_bytes(), 0o600).map_err(StepError::new)?;
                tracing::info!("encryption: {why}: {}", path.display());
                config
            }
        };
        context.encryption = Some(EncryptionSection { path: path.display().to_string(), providers: config.records() });
        Ok(context)
    })
}

fn read(path: &std::path::Path) -> Result<Option<Config>, StepError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Config::parse(&text).map(Some).map_err(|e| {
            StepError::new(format!("{} is not groundup's encryption config ({e}); it is left as it is", path.display()))
                .with_hint("restore it from a backup: its key decrypts every stored Secret")
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StepError::new(format!("cannot read {}: {e}", path.display()))),
    }
}

fn decide(existing: Option<Config>, recorded: bool, args: &EncryptionArgs) -> Result<Decision, StepError> {
    let Some(config) = existing else {
        if recorded {
            return Err(StepError::new(format!("the encryption config the context records ({FILE}) is gone"))
                .with_hint("restore it from a backup (a new key cannot read the stored Secrets); if the cluster never stored any, remove the `encryption` section from the state file"));
        }
        let provider = args.provider.unwrap_or(Provider::Aescbc);
        return Ok(Decision::Write(Config::new(provider).map_err(StepError::new)?, "created".into()));
    };
    let provider = args.provider.unwrap_or(config.current());
    if args.rotate {
        let rotated = config.rotate(provider).map_err(StepError::new)?;
        return Ok(Decision::Write(rotated, "rotated: a new key first, the old ones kept".into()));
    }
    if provider != config.current() {
        return Err(StepError::new(format!(
            "the config encrypts with {}; switching to {} needs a new key",
            config.current().name(),
            provider.name()
        ))
        .with_hint("pass --rotate with --provider"));
    }
    if args.retire_old && config.retire_old() != config {
        return Ok(Decision::Write(config.retire_old(), "retired the old keys".into()));
    }
    Ok(Decision::Keep(config))
}
