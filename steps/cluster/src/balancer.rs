//! Waiting for the API load balancer: `groundup-nlb --wait` does it at once; `groundup-compute
//! --wait` (what `groundup up --wait` runs) does it while its instances start, so that the
//! load balancer's minutes of provisioning and the instances' start overlap.

use std::time::Duration;

use groundup_cloud::{wait_until, Aws, AwsResultExt, CloudError, Polled};

/// Until the load balancer is active (minutes on AWS); `failed` never comes right.
pub async fn wait_active(aws: &Aws, step: &str, balancer_arn: &str) -> Result<(), CloudError> {
    let resource = vec![balancer_arn.to_string()];
    wait_until(step, "the load balancer to become active", resource, Duration::from_secs(600), |_| async move {
        let out = aws.elb.describe_load_balancers().load_balancer_arns(balancer_arn).send().await;
        let out = out.api("DescribeLoadBalancers")?;
        let state = out.load_balancers().first().and_then(|b| b.state()?.code().cloned());
        let state = state.map_or("provisioning".to_string(), |s| s.as_str().to_string());
        if state == "failed" {
            return Err(CloudError::Conflict(format!("the load balancer {balancer_arn} failed to provision")));
        }
        Ok(vec![Polled { resource: balancer_arn.to_string(), done: state == "active", state }])
    })
    .await?;
    tracing::info!("{step}: {balancer_arn} is active");
    Ok(())
}
