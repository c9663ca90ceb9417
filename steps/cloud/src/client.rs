use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use groundup_contracts::{Context, ContextError, Target};
use groundup_runtime::journal::Journal;
use groundup_runtime::plan::Gate;

use crate::calls::CountCalls;
use crate::identity::Identity;

/// Attempts per API call for throttling and 5xx answers (the SDK's adaptive retry).
const MAX_ATTEMPTS: u32 = 6;

/// The clients of one step run, pointed at the context's target. Its fields are the core's:
/// a step reads the clients and the tag scheme, and changes the cloud only through
/// [`crate::converge`], [`crate::converge_parts`] and [`Aws::delete`], which decide whether a
/// change is made (a run) or recorded (a plan) and keep the journal.
pub struct Aws {
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) elb: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) identity: Identity,
    pub(crate) target: Target,
    /// The one gate of changes, local and cloud: in a plan they are recorded, not made.
    pub(crate) gate: Gate,
    pub(crate) journal: Journal,
}

impl Aws {
    /// Builds the clients for `step`; nothing is sent until the first call. A non-AWS target
    /// gets fixed dummy credentials so that real credentials are never sent to an emulator.
    /// Real AWS is refused unless this run opted in: every AWS call goes through here.
    pub async fn connect(context: &Context, step: &str) -> Result<Aws, ContextError> {
        context.target.check_allowed()?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(context.cluster.region.clone()))
            .http_client(
                aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https(),
            )
            .retry_config(
                RetryConfig::adaptive()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(250))
                    .with_max_backoff(Duration::from_secs(8)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(20))
                    .operation_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(endpoint) = context.target.endpoint() {
            loader = loader
                .endpoint_url(endpoint)
                .credentials_provider(Credentials::from_keys("groundup", "groundup", None));
        }
        let config = loader.load().await;
        let ec2 = aws_sdk_ec2::config::Builder::from(&config).interceptor(CountCalls).build();
        let elb = aws_sdk_elasticloadbalancingv2::config::Builder::from(&config).interceptor(CountCalls).build();
        Ok(Aws {
            ec2: aws_sdk_ec2::Client::from_conf(ec2),
            elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(elb),
            identity: Identity::new(&context.cluster.name),
            target: context.target.clone(),
            gate: Gate::for_context(step, context),
            journal: Journal::new(context, step),
        })
    }

    pub fn ec2(&self) -> &aws_sdk_ec2::Client {
        &self.ec2
    }

    pub fn elb(&self) -> &aws_sdk_elasticloadbalancingv2::Client {
        &self.elb
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Whether a killed run was creating the resource named `logical` (its journal entry is
    /// still there), for a kind that finds what such a run made another way.
    pub fn create_pending(&self, logical: &str) -> bool {
        self.journal.pending(logical).is_some()
    }

    /// After a teardown nothing the journal names can exist any more.
    pub fn forget_creates_in_flight(&self) {
        self.journal.clear();
    }
}
