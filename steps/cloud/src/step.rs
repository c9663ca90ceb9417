use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use groundup_contracts::Context;
use groundup_runtime::events::{self, Event};
use groundup_runtime::harness::{run_step, StepInfo};
use groundup_runtime::StepError;

use crate::client::Aws;
use crate::error::CloudError;

/// The entry point of a cloud step: the harness's discipline, an async runtime, and clients
/// for the context's target (see [`with_aws`]).
pub fn run_aws_step<A, F, Fut>(info: StepInfo, body: F) -> ExitCode
where
    A: Args,
    F: FnOnce(Context, A, Arc<Aws>) -> Fut,
    Fut: Future<Output = Result<Context, CloudError>>,
{
    let step = info.name;
    run_step(info, |context, args: A| with_aws(step, context, |context, aws| body(context, args, aws)))
}

/// A cloud step's work, for a step whose arguments can also ask for work without AWS (a head
/// start): `body` gets clients for the context's target and returns the context with its
/// section added; what the clients journaled and planned goes into it too (the journal
/// replaces the context's). A failure because a resource is gone ([`CloudError::is_gone`]) is
/// told to the runner first, which makes it again ([`Event::Gone`]).
pub fn with_aws<F, Fut>(step: &'static str, context: Context, body: F) -> Result<Context, StepError>
where
    F: FnOnce(Context, Arc<Aws>) -> Fut,
    Fut: Future<Output = Result<Context, CloudError>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| StepError::new(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let aws = Arc::new(Aws::connect(&context, step).await?);
        let mut context = body(context, Arc::clone(&aws)).await.map_err(|e| {
            if e.is_gone() {
                if let Err(why) = events::send(&Event::Gone { what: e.to_string() }) {
                    tracing::warn!("{why}");
                }
            }
            e.into_step_error(&aws.target)
        })?;
        context.journal = aws.journal.entries();
        // A run's gate recorded nothing, and a context that is not a plan takes no entries.
        context.add_plan(aws.gate.take());
        Ok(context)
    })
}
