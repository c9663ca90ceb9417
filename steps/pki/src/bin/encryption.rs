//! Encryption at rest (the course's next part, in today's format): the API server's
//! `EncryptionConfiguration` with a random key, made once and never changed by a re-run.
//! `--rotate` and `--retire-old` are the explicit acts that change it.

use std::process::ExitCode;

use clap::Args;
use groundup_contracts::pki::EncryptionSection;
use groundup_contracts::x509::CertTime;
use groundup_pki::encryption::{Config, Provider, FILE};
use groundup_runtime::artifact::WritePolicy::{Replace, WriteOnce};
use groundup_runtime::artifact::{converge_file, Contents, Files, LocalDir, LocalFile};
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

/// What the step does with the config: keep the file byte for byte, write a new one, or
/// retire the old keys, keeping a copy of the config that still holds them.
enum Decision {
    /// The config as it is on disk, and its text.
    Keep(Config, String),
    /// With why, for one that exists.
    Write(Config, String),
    Retire {
        kept: Config,
        old: Config,
    },
}

fn main() -> ExitCode {
    let info = StepInfo { name: "encryption", about: "Create (or keep) the API server's encryption-at-rest config" };
    run_step(info, |mut context, args: EncryptionArgs| {
        let path = std::path::Path::new(&context.params.pki.dir).join(FILE);
        let recorded = context.encryption.is_some();
        let gate = Gate::for_context("encryption", &context);
        let dir = LocalDir::open(&context.params.pki.dir, &context.cluster.name, &gate)?;
        if let Some(files) = dir.files() {
            files.lock()?;
            if path.exists() && !files.is_ours(FILE) {
                return Err(StepError::new(format!(
                    "{} was not written by groundup; it is left as it is",
                    path.display()
                ))
                .with_hint("move it away if groundup should make one, or keep using it by hand"));
            }
        }
        let secret = |config: &Config| Ok(Contents { bytes: config.to_yaml().into_bytes(), mode: 0o600 });
        let (config, files, retired) = match decide(read(&path)?, recorded, &args)? {
            Decision::Keep(config, text) => {
                let file = LocalFile::new(FILE, Ok(Contents { bytes: text.into_bytes(), mode: 0o600 }), Replace);
                (config, vec![file.shown("restore its mode")], None)
            }
            Decision::Write(config, why) => {
                let file = LocalFile::new(FILE, secret(&config), Replace).shown(why);
                (config, vec![file], None)
            }
            Decision::Retire { kept, old } => {
                let retired = old.retired_keys(&kept).join(", ");
                let (copy, text) = retired_copy(&old, &retired, std::time::SystemTime::now());
                let copy_path = dir.path().join(&copy).display().to_string();
                let bytes = Contents { bytes: text.into_bytes(), mode: 0o600 };
                // The copy that keeps the old keys goes first: a crash never loses them.
                let files = vec![
                    LocalFile::new(copy, Ok(bytes), WriteOnce)
                        .shown(format!("keep a copy of the config holding {retired} in {copy_path}")),
                    LocalFile::new(FILE, secret(&kept), Replace).shown(format!("retire {retired}")),
                ];
                (kept, files, Some((retired, copy_path)))
            }
        };
        converge_file(&gate, &Files::new(&dir, KIND, FILE, recorded, files))?;
        gate.finish(&mut context, [], |context| {
            if let Some((retired, copy)) = retired {
                tracing::warn!(
                    "retired {retired} from {}; it is kept in {copy} (0600): remove that copy only once no stored Secret needs it",
                    path.display()
                );
            }
            context.encryption =
                Some(EncryptionSection { path: path.display().to_string(), providers: config.records() });
        });
        Ok(context)
    })
}

/// The config on disk and its text.
fn read(path: &std::path::Path) -> Result<Option<(Config, String)>, StepError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Config::parse(&text).map(|config| Some((config, text))).map_err(|e| {
            StepError::new(format!("{} is not groundup's encryption config ({e}); it is left as it is", path.display()))
                .with_hint("restore it from a backup: its key decrypts every stored Secret")
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StepError::new(format!("cannot read {}: {e}", path.display()))),
    }
}

fn decide(existing: Option<(Config, String)>, recorded: bool, args: &EncryptionArgs) -> Result<Decision, StepError> {
    let Some((config, text)) = existing else {
        if recorded {
            return Err(StepError::new(format!("the encryption config the context records ({FILE}) is gone"))
                .with_hint("restore it from a backup (a new key cannot read the stored Secrets); if the cluster never stored any, remove the `encryption` section from the state file"));
        }
        let provider = args.provider.unwrap_or(Provider::Aescbc);
        return Ok(Decision::Write(Config::new(provider)?, String::new()));
    };
    let provider = args.provider.unwrap_or(config.current());
    if args.rotate {
        let rotated = config.rotate(provider)?;
        return Ok(Decision::Write(rotated, "rotated: a new key first, the old ones kept".into()));
    }
    if provider != config.current() {
        return Err(StepError::bad_input(format!(
            "the config encrypts with {}; switching to {} needs a new key",
            config.current().name(),
            provider.name()
        ))
        .with_hint("pass --rotate with --provider"));
    }
    if args.retire_old && config.retire_old() != config {
        return Ok(Decision::Retire { kept: config.retire_old(), old: config });
    }
    Ok(Decision::Keep(config, text))
}

/// The copy of a config whose keys are retired: `retired/encryption-config-<UTC time>.yaml`
/// in the PKI directory, headed by when and which keys, and otherwise the config as it was
/// (an API server given it still reads what those keys wrote).
fn retired_copy(old: &Config, retired: &str, now: std::time::SystemTime) -> (String, String) {
    let seconds = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // The contracts' one calendar: `2026-12-07T13:50:09Z`.
    let moment = CertTime::from_unix(i64::try_from(seconds).unwrap_or(i64::MAX)).to_string();
    let stamp: String = moment.chars().filter(|c| !matches!(c, '-' | ':')).collect();
    let when = format!("{} UTC", moment.trim_end_matches('Z').replace('T', " "));
    let header = format!("# Retired {when} by groundup-encryption --retire-old: {retired}.\n");
    (format!("retired/encryption-config-{stamp}.yaml"), header + &old.to_yaml())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retired_copy_is_named_and_headed_by_its_utc_time_and_keys() {
        let config = Config::new(Provider::Aescbc).unwrap();
        // 2026-12-07 13:50:09 UTC.
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_651_409);
        let (name, text) = retired_copy(&config, "key1 (aescbc)", when);
        assert_eq!(name, "retired/encryption-config-20261207T135009Z.yaml");
        assert!(
            text.starts_with("# Retired 2026-12-07 13:50:09 UTC by groundup-encryption --retire-old: key1 (aescbc).\n"),
            "{text}"
        );
        let (_, leap) = retired_copy(&config, "k", std::time::UNIX_EPOCH + std::time::Duration::from_secs(951_782_400));
        assert!(leap.starts_with("# Retired 2000-02-29 00:00:00 UTC"), "{leap}");
        assert_eq!(Config::parse(text.split_once('\n').unwrap().1).unwrap(), config);
    }
}
