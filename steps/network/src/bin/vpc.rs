//! Course section "Virtual Private Cloud (VPC)" and "Domain Name System – DNS": the cluster's
//! VPC, tagged with its name, with DNS support and DNS hostnames turned on.

use std::process::ExitCode;

use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, Vpc, VpcAttributeName};
use groundup_cloud::{find_or_create, retry_eventual, run_aws_step, Attempt, Aws, AwsResultExt, CloudError, Wanted};
use groundup_contracts::kinds::Kind;
use groundup_contracts::network::VpcSection;
use groundup_contracts::plan::is_planned_id;
use groundup_runtime::harness::{NoArgs, StepInfo};

const LOGICAL: &str = "vpc";

fn main() -> ExitCode {
    let info = StepInfo { name: "vpc", about: "Create (or find) the cluster's VPC with DNS support and hostnames" };
    run_aws_step(info, |mut context, NoArgs {}, aws| async move {
        let cidr = context.params.vpc_cidr;
        let cidr_text = cidr.to_string();
        let wanted = Wanted::new(Kind::Vpc, LOGICAL).recorded(context.vpc.as_ref().map(|v| v.id.as_str()));
        let vpc = find_or_create(&aws, wanted, || find(&aws), |attempt| create(&aws, &cidr_text, attempt)).await?;
        let id = vpc.vpc_id().unwrap_or_default().to_string();
        if !is_planned_id(&id) && vpc.cidr_block() != Some(cidr_text.as_str()) {
            return Err(CloudError::Conflict(format!(
                "VPC {id} has CIDR {}, the context asks for {cidr}; a VPC's range cannot change: delete it or set params.vpc_cidr to match",
                vpc.cidr_block().unwrap_or("?")
            )));
        }
        enable_dns(&aws, &id).await?;
        context.vpc = Some(VpcSection { id, cidr });
        Ok(context)
    })
}

async fn find(aws: &Aws) -> Result<Vec<Vpc>, CloudError> {
    let out =
        aws.ec2.describe_vpcs().set_filters(Some(aws.identity.filters(LOGICAL))).send().await.api("DescribeVpcs")?;
    Ok(out.vpcs().to_vec())
}

async fn create(aws: &Aws, cidr: &str, attempt: Attempt) -> Result<Vpc, CloudError> {
    let out = aws
        .ec2
        .create_vpc()
        .cidr_block(cidr)
        .dry_run(attempt.dry_run)
        .tag_specifications(aws.identity.tag_spec(ResourceType::Vpc, LOGICAL, &aws.identity.cluster))
        .send()
        .await
        .api("CreateVpc")?;
    out.vpc.ok_or_else(|| CloudError::Conflict("CreateVpc returned no VPC".into()))
}

/// AWS takes one attribute per call; each is read first so that a plan shows only what is off.
async fn enable_dns(aws: &Aws, id: &str) -> Result<(), CloudError> {
    for (attribute, what) in [
        (VpcAttributeName::EnableDnsSupport, "enable DNS support"),
        (VpcAttributeName::EnableDnsHostnames, "enable DNS hostnames"),
    ] {
        if is_enabled(aws, id, &attribute).await? {
            continue;
        }
        aws.change_without_dry_run(LOGICAL, what, || {
            retry_eventual(move || {
                let on = AttributeBooleanValue::builder().value(true).build();
                let request = aws.ec2.modify_vpc_attribute().vpc_id(id);
                let request = match attribute {
                    VpcAttributeName::EnableDnsSupport => request.enable_dns_support(on),
                    _ => request.enable_dns_hostnames(on),
                };
                async move { request.send().await.api("ModifyVpcAttribute") }
            })
        })
        .await?;
    }
    Ok(())
}

async fn is_enabled(aws: &Aws, id: &str, attribute: &VpcAttributeName) -> Result<bool, CloudError> {
    if is_planned_id(id) {
        return Ok(false);
    }
    let out = retry_eventual(|| async {
        aws.ec2
            .describe_vpc_attribute()
            .vpc_id(id)
            .attribute(attribute.clone())
            .send()
            .await
            .api("DescribeVpcAttribute")
    })
    .await?;
    let value = match attribute {
        VpcAttributeName::EnableDnsSupport => out.enable_dns_support(),
        _ => out.enable_dns_hostnames(),
    };
    Ok(value.and_then(|v| v.value()) == Some(true))
}
