//! Course section "Internet Gateway (IGW)": the gateway, attached to the VPC.

use std::process::ExitCode;

use aws_sdk_ec2::types::{InternetGateway, ResourceType};
use groundup_cloud::{find_or_create, retry_eventual, run_aws_step, Attempt, Aws, AwsResultExt, CloudError, Wanted};
use groundup_contracts::context::need;
use groundup_contracts::kinds::Kind;
use groundup_contracts::network::IgwSection;
use groundup_contracts::Section;
use groundup_runtime::harness::{NoArgs, StepInfo};

const LOGICAL: &str = "igw";

fn main() -> ExitCode {
    let info = StepInfo { name: "igw", about: "Create (or find) the internet gateway and attach it to the VPC" };
    run_aws_step(info, |mut context, NoArgs {}, aws| async move {
        let vpc_id = need(&context.vpc, Section::Vpc)?.id.clone();
        let wanted = Wanted::new(Kind::InternetGateway, LOGICAL).recorded(context.igw.as_ref().map(|g| g.id.as_str()));
        let gateway = find_or_create(&aws, wanted, || find(&aws), |attempt| create(&aws, attempt)).await?;
        let id = gateway.internet_gateway_id().unwrap_or_default().to_string();
        attach(&aws, &gateway, &id, &vpc_id).await?;
        context.igw = Some(IgwSection { id });
        Ok(context)
    })
}

async fn find(aws: &Aws) -> Result<Vec<InternetGateway>, CloudError> {
    let out = aws
        .ec2
        .describe_internet_gateways()
        .set_filters(Some(aws.identity.filters(LOGICAL)))
        .send()
        .await
        .api("DescribeInternetGateways")?;
    Ok(out.internet_gateways().to_vec())
}

async fn create(aws: &Aws, attempt: Attempt) -> Result<InternetGateway, CloudError> {
    let out = aws
        .ec2
        .create_internet_gateway()
        .dry_run(attempt.dry_run)
        .tag_specifications(aws.identity.tag_spec(ResourceType::InternetGateway, LOGICAL, &aws.identity.cluster))
        .send()
        .await
        .api("CreateInternetGateway")?;
    out.internet_gateway.ok_or_else(|| CloudError::Conflict("CreateInternetGateway returned nothing".into()))
}

async fn attach(aws: &Aws, gateway: &InternetGateway, id: &str, vpc_id: &str) -> Result<(), CloudError> {
    let attached: Vec<&str> = gateway.attachments().iter().filter_map(|a| a.vpc_id()).collect();
    match attached.as_slice() {
        [] => {
            aws.change(LOGICAL, &format!("attach to {vpc_id}"), |dry_run| {
                retry_eventual(move || async move {
                    aws.ec2
                        .attach_internet_gateway()
                        .dry_run(dry_run)
                        .internet_gateway_id(id)
                        .vpc_id(vpc_id)
                        .send()
                        .await
                        .api("AttachInternetGateway")
                })
            })
            .await?;
            Ok(())
        }
        [vpc] if *vpc == vpc_id => Ok(()),
        other => Err(CloudError::Conflict(format!(
            "internet gateway {id} is attached to {}, not to the cluster's VPC {vpc_id}; detach it and run the step again",
            other.join(", ")
        ))),
    }
}
