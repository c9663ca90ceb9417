use std::future::Future;

use crate::client::Aws;
use crate::error::CloudError;

/// Every change to a resource goes through the one gate (`groundup_runtime::plan::Gate`, as
/// local files do): applied and logged in a run, recorded (and on real AWS tried with DryRun
/// where the API has it) in a plan.
impl Aws {
    /// What a run leaves as it is but must tell (an instance with older user data): a note
    /// in a plan, a warning in a run.
    pub fn note(&self, logical: &str, what: &str) {
        self.gate.note(logical, what);
    }

    /// What only a run does with a step's local files (opening the SSH key's directory): a
    /// plan writes none. `None` in a plan.
    pub fn in_run<T, E>(&self, act: impl FnOnce() -> Result<T, E>) -> Result<Option<T>, E> {
        self.gate.in_run(act)
    }

    pub(crate) async fn gate<T, F, Fut>(
        &self,
        logical: &str,
        what: &str,
        dry_run: bool,
        call: F,
    ) -> Result<Option<T>, CloudError>
    where
        F: FnOnce(bool) -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        let Some(plan) = self.gate.plan() else {
            let out = call(false).await?;
            self.gate.log(logical, what);
            return Ok(Some(out));
        };
        plan.change(logical, what);
        // The emulator ignores DryRun and would make the change: only real AWS gets one.
        if dry_run && self.target.is_real_aws() {
            self.check_dry_run(logical, call(true).await);
        }
        Ok(None)
    }

    /// A refused DryRun goes into the plan as a permission to grant.
    pub(crate) fn check_dry_run<T>(&self, logical: &str, result: Result<T, CloudError>) {
        let Some(plan) = self.gate.plan() else { return };
        match verdict(result) {
            DryRun::Permitted => {}
            DryRun::Denied(action) => plan.denied(logical, &action),
            DryRun::Inconclusive(e) => tracing::debug!("{logical}: DryRun inconclusive: {e}"),
            DryRun::CarriedOut => {
                tracing::warn!("{logical}: a DryRun call was carried out; the target does not honour DryRun")
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum DryRun {
    Permitted,
    Denied(String),
    /// Any other answer (a placeholder id, say) says nothing about permissions.
    Inconclusive(String),
    CarriedOut,
}

/// A permitted DryRun answers `DryRunOperation`, a refused one `UnauthorizedOperation`.
fn verdict<T>(result: Result<T, CloudError>) -> DryRun {
    match result {
        Err(CloudError::Api { action, code, .. }) if code == "UnauthorizedOperation" => DryRun::Denied(action),
        Err(e) if e.code() == Some("DryRunOperation") => DryRun::Permitted,
        Err(e) => DryRun::Inconclusive(e.to_string()),
        Ok(_) => DryRun::CarriedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: &str) -> Result<(), CloudError> {
        Err(CloudError::Api { action: "CreateVpc".into(), code: code.into(), message: "m".into() })
    }

    #[test]
    fn dry_run_answers_tell_permitted_from_denied() {
        assert_eq!(verdict(answer("DryRunOperation")), DryRun::Permitted);
        assert_eq!(verdict(answer("UnauthorizedOperation")), DryRun::Denied("CreateVpc".into()));
        assert!(matches!(verdict(answer("InvalidVpcID.Malformed")), DryRun::Inconclusive(_)));
        assert_eq!(verdict(Ok(())), DryRun::CarriedOut);
    }
}
