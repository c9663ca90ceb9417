use std::future::Future;

use crate::client::Aws;
use crate::error::CloudError;

/// Every change to a resource goes through these gates: applied and logged in a run,
/// recorded (and on real AWS tried with DryRun where the API has it) in a plan.
impl Aws {
    pub fn planning(&self) -> bool {
        self.plan.is_some()
    }

    /// A change whose API call takes DryRun (most of EC2); `call` gets whether to send one.
    pub async fn change<T, F, Fut>(&self, logical: &str, what: &str, call: F) -> Result<Option<T>, CloudError>
    where
        F: FnOnce(bool) -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        self.gate(logical, what, true, call).await
    }

    /// A change whose API call has no DryRun (ELBv2, ModifyVpcAttribute).
    pub async fn change_without_dry_run<T, F, Fut>(
        &self,
        logical: &str,
        what: &str,
        call: F,
    ) -> Result<Option<T>, CloudError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        self.gate(logical, what, false, |_| call()).await
    }

    async fn gate<T, F, Fut>(&self, logical: &str, what: &str, dry_run: bool, call: F) -> Result<Option<T>, CloudError>
    where
        F: FnOnce(bool) -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        let Some(plan) = &self.plan else {
            let out = call(false).await?;
            tracing::info!("{logical}: {what}");
            return Ok(Some(out));
        };
        plan.change(logical, what);
        // The emulator ignores DryRun and would make the change: only real AWS gets one.
        if dry_run && self.target.is_real_aws() {
            self.check_dry_run(logical, call(true).await);
        }
        Ok(None)
    }

    /// A permitted DryRun answers `DryRunOperation`; a refused one `UnauthorizedOperation`,
    /// which the plan lists. Other answers (a placeholder id, say) say nothing of permissions.
    pub(crate) fn check_dry_run<T>(&self, logical: &str, result: Result<T, CloudError>) {
        let Some(plan) = &self.plan else { return };
        match result {
            Err(CloudError::Api { action, code, .. }) if code == "UnauthorizedOperation" => {
                plan.denied(logical, &action)
            }
            Err(e) if e.code() == Some("DryRunOperation") => {}
            Err(e) => tracing::debug!("{logical}: DryRun inconclusive: {e}"),
            Ok(_) => tracing::warn!("{logical}: a DryRun call was carried out; the target does not honour DryRun"),
        }
    }
}
