//! `groundup-down`: lists everything tagged as the cluster's and, with `--yes`, deletes it.
//! The list goes into the context's `teardown` section; a table goes to stderr.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use groundup_cloud::{run_aws_step, CloudError};
use groundup_contracts::teardown::{OwnedResource, TeardownSection};
use groundup_runtime::harness::StepInfo;
use groundup_teardown::{delete_all, discover, Discovery};

#[derive(Args, Debug)]
struct DownArgs {
    /// Delete; without it, only list what would be deleted
    #[arg(long)]
    yes: bool,
    /// Give up after this many seconds without progress (load balancer interfaces can take minutes)
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    patience: u64,
}

fn main() -> ExitCode {
    let info = StepInfo { name: "down", about: "List (and with --yes delete) every resource tagged as the cluster's" };
    run_aws_step(info, |mut context, args: DownArgs, aws| async move {
        if context.planning() {
            return Err(groundup_contracts::ContextError::field(
                "--plan",
                "groundup-down has no plan; without --yes it changes nothing and lists what it would delete (as does `groundup down`)",
            )
            .into());
        }
        let deleting = args.yes;
        let Discovery { resources, mut unlisted } = discover(&aws).await?;
        print_table(&resources, deleting);
        if deleting {
            unlisted.extend(delete_all(&aws, resources.clone(), Duration::from_secs(args.patience)).await?);
        }
        if !unlisted.is_empty() {
            return Err(CloudError::TeardownIncomplete { failures: unlisted, deleting });
        }
        if deleting {
            context.forget_cloud_resources();
            aws.forget_creates_in_flight();
        }
        context.teardown = Some(TeardownSection { resources, torn_down: deleting });
        Ok(context)
    })
}

fn print_table(resources: &[OwnedResource], deleting: bool) {
    let verb = if deleting { "deleting" } else { "would delete (pass --yes to delete)" };
    eprintln!("down: {verb} {} resource(s)", resources.len());
    for r in resources {
        eprintln!("  {:<17} {:<28} {}", r.kind.label(), r.name, r.id);
    }
}
