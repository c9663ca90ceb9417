//! Waiting for the API load balancer: `groundup-nlb --wait` does it at once; `groundup-compute
//! --wait` (what `groundup up --wait` runs) does it while its instances start, so that the
//! load balancer's minutes of provisioning and the instances' start overlap.

use std::time::Duration;

use groundup_cloud::{Aws, AwsResultExt, CloudError, Polled};
use groundup_contracts::kinds::Kind;
use groundup_contracts::Ref;

/// Until the load balancer is active (minutes on AWS); `failed` never comes right.
pub async fn wait_active(aws: &Aws, step: &str, balancer: &Ref) -> Result<(), CloudError> {
    let what = "the load balancer to become active";
    aws.wait_for(step, what, std::slice::from_ref(balancer), Duration::from_secs(600), |pending| async move {
        let mut polled = Vec::new();
        for arn in pending {
            let out = aws.elb().describe_load_balancers().load_balancer_arns(&arn).send().await;
            let out = out.api("DescribeLoadBalancers")?;
            let state = out.load_balancers().first().and_then(|b| b.state()?.code().cloned());
            let state = state.map_or("provisioning".to_string(), |s| s.as_str().to_string());
            if state == "failed" {
                let kind = Kind::LoadBalancer.label();
                return Err(CloudError::NeverReady { kind, id: arn, state, wanted: "active" });
            }
            let done = state == "active";
            if done {
                tracing::info!("{step}: {arn} is active");
            }
            polled.push(Polled { resource: arn, done, state });
        }
        Ok(polled)
    })
    .await
}
