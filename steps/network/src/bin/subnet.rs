//! Course section "Subnet": the cluster's one subnet in the VPC.

use std::process::ExitCode;

use aws_sdk_ec2::types::{ResourceType, Subnet};
use groundup_cloud::{find_or_create, retry_eventual, run_aws_step, Attempt, Aws, AwsResultExt, CloudError, Wanted};
use groundup_contracts::context::need;
use groundup_contracts::kinds::Kind;
use groundup_contracts::network::SubnetSection;
use groundup_contracts::plan::is_planned_id;
use groundup_contracts::Section;
use groundup_runtime::harness::{NoArgs, StepInfo};

const LOGICAL: &str = "subnet";

fn main() -> ExitCode {
    let info = StepInfo { name: "subnet", about: "Create (or find) the cluster's subnet in the VPC" };
    run_aws_step(info, |mut context, NoArgs {}, aws| async move {
        let vpc_id = need(&context.vpc, Section::Vpc)?.id.clone();
        let cidr = context.params.subnet_cidr;
        let cidr_text = cidr.to_string();
        let wanted = Wanted::new(Kind::Subnet, LOGICAL).recorded(context.subnet.as_ref().map(|s| s.id.as_str()));
        let subnet =
            find_or_create(&aws, wanted, || find(&aws), |attempt| create(&aws, &vpc_id, &cidr_text, attempt)).await?;
        let id = subnet.subnet_id().unwrap_or_default().to_string();
        let matches = subnet.vpc_id() == Some(vpc_id.as_str()) && subnet.cidr_block() == Some(cidr_text.as_str());
        if !is_planned_id(&id) && !matches {
            return Err(CloudError::Conflict(format!(
                "subnet {id} is {} in {}, the context asks for {cidr} in {vpc_id}; delete it or fix params.subnet_cidr",
                subnet.cidr_block().unwrap_or("?"),
                subnet.vpc_id().unwrap_or("?")
            )));
        }
        let availability_zone = subnet.availability_zone().unwrap_or_default().to_string();
        context.subnet = Some(SubnetSection { id, cidr, availability_zone });
        Ok(context)
    })
}

async fn find(aws: &Aws) -> Result<Vec<Subnet>, CloudError> {
    let out = aws
        .ec2
        .describe_subnets()
        .set_filters(Some(aws.identity.filters(LOGICAL)))
        .send()
        .await
        .api("DescribeSubnets")?;
    Ok(out.subnets().to_vec())
}

async fn create(aws: &Aws, vpc_id: &str, cidr: &str, attempt: Attempt) -> Result<Subnet, CloudError> {
    let out = retry_eventual(|| async {
        aws.ec2
            .create_subnet()
            .dry_run(attempt.dry_run)
            .vpc_id(vpc_id)
            .cidr_block(cidr)
            .tag_specifications(aws.identity.tag_spec(ResourceType::Subnet, LOGICAL, &aws.identity.cluster))
            .send()
            .await
            .api("CreateSubnet")
    })
    .await?;
    out.subnet.ok_or_else(|| CloudError::Conflict("CreateSubnet returned no subnet".into()))
}
