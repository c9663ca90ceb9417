//! Course section "Virtual Private Cloud (VPC)" and "Domain Name System – DNS": the cluster's
//! VPC, tagged with its name, with DNS support and DNS hostnames turned on.

use std::process::ExitCode;

use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, Vpc};
use groundup_cloud::{find_or_create, retry_eventual, run_aws_step, Aws, AwsResultExt, CloudError};
use groundup_contracts::harness::{NoArgs, StepInfo};
use groundup_contracts::network::VpcSection;

const LOGICAL: &str = "vpc";

fn main() -> ExitCode {
    let info = StepInfo { name: "vpc", about: "Create (or find) the cluster's VPC with DNS support and hostnames" };
    run_aws_step(info, |mut context, NoArgs {}, aws| async move {
        let cidr = context.params.vpc_cidr;
        let cidr_text = cidr.to_string();
        let (vpc, _) = find_or_create("VPC", LOGICAL, || find(&aws), || create(&aws, &cidr_text)).await?;
        let id = vpc.vpc_id().unwrap_or_default().to_string();
        if vpc.cidr_block() != Some(cidr.to_string().as_str()) {
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

async fn create(aws: &Aws, cidr: &str) -> Result<Vpc, CloudError> {
    let out = aws
        .ec2
        .create_vpc()
        .cidr_block(cidr)
        .tag_specifications(aws.identity.tag_spec(ResourceType::Vpc, LOGICAL, &aws.identity.cluster))
        .send()
        .await
        .api("CreateVpc")?;
    out.vpc.ok_or_else(|| CloudError::Conflict("CreateVpc returned no VPC".into()))
}

/// AWS takes one attribute per call.
async fn enable_dns(aws: &Aws, id: &str) -> Result<(), CloudError> {
    let on = || AttributeBooleanValue::builder().value(true).build();
    retry_eventual(|| async {
        aws.ec2.modify_vpc_attribute().vpc_id(id).enable_dns_support(on()).send().await.api("ModifyVpcAttribute")
    })
    .await?;
    retry_eventual(|| async {
        aws.ec2.modify_vpc_attribute().vpc_id(id).enable_dns_hostnames(on()).send().await.api("ModifyVpcAttribute")
    })
    .await?;
    Ok(())
}
