//! Encryption at rest (the course's next part, in today's format): the API server's
//! `EncryptionConfiguration` with a random key, made once and never changed by a re-run.
//! `--rotate` and `--retire-old` are the explicit acts that change it.

use std::process::ExitCode;

use clap::Args;
use groundup_contracts::pki::EncryptionSection;
use groundup_pki::encryption::{Config, Provider, FILE};
use groundup_runtime::files::ClusterDir;
use groundup_runtime::harness::{run_step, StepInfo};
use groundup_runtime::plan::Gate;
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

const KIND: &str = "encryption config";

/// What the step does with the config: keep the file byte for byte, or write a new one.
enum Decision {
    Keep(Config),
    /// With why, for one that exists.
    Write(Config, String),
}

fn main() -> ExitCode {
    let info = StepInfo { name: "encryption", about: "Create (or keep) the API server's encryption-at-rest config" };
    run_step(info, |mut context, args: EncryptionArgs| {
        let dir = &context.params.pki.dir;
        let path = std::path::Path::new(dir).join(FILE);
        let recorded = context.encryption.is_some();
        let gate = Gate::new("encryption", context.planning());
        let files = match gate.planning() {
            true => None,
            false => {
                let files = ClusterDir::open(dir, &context.cluster.name).map_err(StepError::new)?;
                files.lock().map_err(StepError::new)?;
                if path.exists() && !files.is_ours(FILE) {
                    return Err(StepError::new(format!(
                        "{} was not written by groundup; it is left as it is",
                        path.display()
                    ))
                    .with_hint("move it away if groundup should make one, or keep using it by hand"));
                }
                Some(files)
            }
        };
        let write = |config: &Config| match &files {
            Some(files) => files.write(FILE, config.to_yaml().as_bytes(), 0o600).map(|_| ()).map_err(StepError::new),
            None => Ok(()),
        };
        let id = path.display().to_string();
        let config = match decide(read(&path)?, recorded, &args)? {
            Decision::Keep(config) => {
                gate.found(KIND, FILE, &id, recorded);
                config
            }
            Decision::Write(config, why) if path.exists() => {
                gate.found(KIND, FILE, &id, recorded);
                gate.change(FILE, &why, || write(&config))?;
                config
            }
            Decision::Write(config, _) => {
                gate.create(KIND, FILE, || write(&config))?;
                config
            }
        };
        if gate.planning() {
            context.add_plan(gate.take());
            return Ok(context);
        }
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
        return Ok(Decision::Write(Config::new(provider).map_err(StepError::new)?, String::new()));
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
