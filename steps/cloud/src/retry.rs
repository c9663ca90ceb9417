use std::future::Future;
use std::time::Duration;

use crate::error::CloudError;

/// Errors AWS answers for a moment after a create, until the new resource is visible
/// everywhere (the list kops and the Terraform provider retry on).
const EVENTUAL_CONSISTENCY: &[&str] = &[
    "InvalidVpcID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidRouteTableID.NotFound",
    "InvalidInternetGatewayID.NotFound",
    "InvalidDhcpOptionsID.NotFound",
    "InvalidDhcpOptionID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidGroupId.NotFound",
    "InvalidInstanceID.NotFound",
    "InvalidNetworkInterfaceID.NotFound",
    "InvalidKeyPair.NotFound",
    "InvalidAllocationID.NotFound",
    "InvalidGatewayID.NotFound",
    "TargetGroupNotFound",
    "LoadBalancerNotFound",
];

const ATTEMPTS: u32 = 8;

/// Runs `call` again while it fails with an eventual-consistency error, with bounded
/// exponential backoff (0.2 s doubling to 3.2 s: at most ~13 s in all).
pub async fn retry_eventual<T, F, Fut>(mut call: F) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    let mut delay = Duration::from_millis(200);
    for attempt in 1.. {
        match call().await {
            Err(e) if attempt < ATTEMPTS && e.code().is_some_and(|c| EVENTUAL_CONSISTENCY.contains(&c)) => {
                tracing::debug!("{e}; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(3200));
            }
            other => return other,
        }
    }
    unreachable!("the loop returns on the last attempt")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn not_found() -> CloudError {
        CloudError::Api { action: "DescribeVpcs".into(), code: "InvalidVpcID.NotFound".into(), message: "gone".into() }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_not_found_until_it_clears() {
        let calls = AtomicU32::new(0);
        let result = retry_eventual(|| async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(not_found())
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_a_bounded_number_of_attempts() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry_eventual(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(not_found())
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS);
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry_eventual(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(CloudError::Vanished { kind: "VPC", id: "vpc-1".into() })
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
