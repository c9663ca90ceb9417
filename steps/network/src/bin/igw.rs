//! Course section "Internet Gateway (IGW)": the gateway, attached to the VPC.

use std::process::ExitCode;

use aws_sdk_ec2::types::{InternetGateway, ResourceType};
use groundup_cloud::{converge, retry_eventual, run_aws_step, Answered, Attempt, Aws, AwsResultExt, CloudError};
use groundup_cloud::{Change, Immutable, Resource};
use groundup_contracts::context::need;
use groundup_contracts::network::IgwSection;
use groundup_contracts::{Ref, Section};
use groundup_runtime::harness::{NoArgs, StepInfo};

fn main() -> ExitCode {
    let info = StepInfo { name: "igw", about: "Create (or find) the internet gateway and attach it to the VPC" };
    run_aws_step(info, |mut context, NoArgs {}, aws| async move {
        let wanted = WantedGateway { vpc_id: need(&context.vpc, Section::Vpc)?.id.clone() };
        let gateway = converge(&aws, &wanted, context.igw.as_ref().map(|g| &g.id)).await?;
        context.igw = Some(IgwSection { id: gateway.id() });
        Ok(context)
    })
}

struct WantedGateway {
    vpc_id: Ref,
}

/// The one in-place change: attach the gateway to the cluster's VPC.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Attach(Ref);

impl std::fmt::Display for Attach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "attach to {}", self.0)
    }
}

impl Resource for WantedGateway {
    type Described = InternetGateway;
    type Observed = ();
    type Fix = Attach;

    async fn create(&self, aws: &Aws, attempt: Attempt) -> Result<InternetGateway, CloudError> {
        let tags = aws.identity().tag_spec(ResourceType::InternetGateway, self.logical(), &aws.identity().cluster);
        let out = aws
            .ec2()
            .create_internet_gateway()
            .dry_run(attempt.dry_run)
            .tag_specifications(tags)
            .send()
            .await
            .api("CreateInternetGateway")?;
        out.internet_gateway.answered(self.logical())
    }

    /// A gateway attaches to one VPC; attached to another, it is the user's to move.
    fn diff(&self, actual: Option<&InternetGateway>, _: &()) -> Vec<Change<Attach>> {
        let attached: Vec<&str> =
            actual.map_or(Vec::new(), |g| g.attachments().iter().filter_map(|a| a.vpc_id()).collect());
        match attached.as_slice() {
            [] => vec![Change::InPlace(Attach(self.vpc_id.clone()))],
            [vpc] if self.vpc_id == **vpc => Vec::new(),
            other => vec![Change::Immutable(Immutable {
                field: "attachment",
                now: other.join(", "),
                wanted: self.vpc_id.to_string(),
                way_forward: "detach it and run the step again".into(),
            })],
        }
    }

    async fn apply(&self, aws: &Aws, id: &str, Attach(vpc_id): &Attach, dry_run: bool) -> Result<(), CloudError> {
        retry_eventual(|| async {
            aws.ec2()
                .attach_internet_gateway()
                .dry_run(dry_run)
                .internet_gateway_id(id)
                .vpc_id(vpc_id.to_string())
                .send()
                .await
                .api("AttachInternetGateway")
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::InternetGatewayAttachment;
    use groundup_cloud::lines;

    #[test]
    fn a_gateway_is_attached_to_the_vpc_and_one_attached_elsewhere_is_refused() {
        let wanted = WantedGateway { vpc_id: Ref::Known("vpc-1".into()) };
        let attached_to = |vpcs: &[&str]| {
            let gateway = InternetGateway::builder().set_attachments(Some(
                vpcs.iter().map(|v| InternetGatewayAttachment::builder().vpc_id(*v).build()).collect(),
            ));
            lines(&wanted.diff(Some(&gateway.build()), &()))
        };
        assert_eq!(attached_to(&[]), ["attach to vpc-1"]);
        assert_eq!(lines(&wanted.diff(None, &())), ["attach to vpc-1"]);
        assert!(attached_to(&["vpc-1"]).is_empty());
        assert_eq!(attached_to(&["vpc-2"]), ["attachment vpc-2 -> vpc-1 cannot change"]);
    }
}
