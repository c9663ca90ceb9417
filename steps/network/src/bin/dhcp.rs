//! Course section "Dynamic Host Configuration Protocol – DHCP": an option set with the
//! cluster's domain name and AmazonProvidedDNS, associated with the VPC.

use std::process::ExitCode;

use aws_sdk_ec2::types::{DhcpOptions, NewDhcpConfiguration, ResourceType};
use groundup_cloud::{find_or_create, retry_eventual, run_aws_step, Aws, AwsResultExt, CloudError};
use groundup_contracts::context::need;
use groundup_contracts::harness::{NoArgs, StepInfo};
use groundup_contracts::network::DhcpSection;
use groundup_contracts::Section;

const LOGICAL: &str = "dhcp";

fn main() -> ExitCode {
    let info = StepInfo { name: "dhcp", about: "Create (or find) the DHCP option set and associate it with the VPC" };
    run_aws_step(info, |mut context, NoArgs {}, aws| async move {
        let vpc_id = need(&context.vpc, Section::Vpc)?.id.clone();
        let domain = context.params.dhcp_domain_name.clone();
        let (options, _) = find_or_create("DHCP option set", LOGICAL, || find(&aws), || create(&aws, &domain)).await?;
        let id = options.dhcp_options_id().unwrap_or_default().to_string();
        check_domain(&options, &id, &domain)?;
        associate(&aws, &id, &vpc_id).await?;
        context.dhcp = Some(DhcpSection { id, domain_name: domain });
        Ok(context)
    })
}

async fn find(aws: &Aws) -> Result<Vec<DhcpOptions>, CloudError> {
    let out = aws
        .ec2
        .describe_dhcp_options()
        .set_filters(Some(aws.identity.filters(LOGICAL)))
        .send()
        .await
        .api("DescribeDhcpOptions")?;
    Ok(out.dhcp_options().to_vec())
}

async fn create(aws: &Aws, domain: &str) -> Result<DhcpOptions, CloudError> {
    let option = |key: &str, value: &str| NewDhcpConfiguration::builder().key(key).values(value).build();
    let out = aws
        .ec2
        .create_dhcp_options()
        .dhcp_configurations(option("domain-name", domain))
        .dhcp_configurations(option("domain-name-servers", "AmazonProvidedDNS"))
        .tag_specifications(aws.identity.tag_spec(ResourceType::DhcpOptions, LOGICAL, &aws.identity.cluster))
        .send()
        .await
        .api("CreateDhcpOptions")?;
    let options = out.dhcp_options.ok_or_else(|| CloudError::Conflict("CreateDhcpOptions returned nothing".into()))?;
    // The emulator ignores TagSpecifications here; tagging again keeps the set findable.
    if !aws.identity.matches(options.tags(), LOGICAL) {
        let id = options.dhcp_options_id().unwrap_or_default();
        retry_eventual(|| async {
            aws.ec2
                .create_tags()
                .resources(id)
                .set_tags(Some(aws.identity.ec2_tags(LOGICAL, &aws.identity.cluster)))
                .send()
                .await
                .api("CreateTags")
        })
        .await?;
    }
    Ok(options)
}

/// Option sets are immutable: a different domain needs a new set, which is the user's call.
fn check_domain(options: &DhcpOptions, id: &str, domain: &str) -> Result<(), CloudError> {
    let current: Vec<&str> = options
        .dhcp_configurations()
        .iter()
        .filter(|c| c.key() == Some("domain-name"))
        .flat_map(|c| c.values().iter().filter_map(|v| v.value()))
        .collect();
    if current == [domain] {
        Ok(())
    } else {
        Err(CloudError::Conflict(format!(
            "DHCP option set {id} has domain-name {current:?}, the context asks for `{domain}`; option sets cannot change: delete {id} or set params.dhcp_domain_name to match"
        )))
    }
}

async fn associate(aws: &Aws, id: &str, vpc_id: &str) -> Result<(), CloudError> {
    let vpcs = aws.ec2.describe_vpcs().vpc_ids(vpc_id).send().await.api("DescribeVpcs")?;
    if vpcs.vpcs().iter().any(|v| v.dhcp_options_id() == Some(id)) {
        return Ok(());
    }
    retry_eventual(|| async {
        aws.ec2.associate_dhcp_options().dhcp_options_id(id).vpc_id(vpc_id).send().await.api("AssociateDhcpOptions")
    })
    .await?;
    tracing::info!("{LOGICAL}: associated {id} with {vpc_id}");
    Ok(())
}
