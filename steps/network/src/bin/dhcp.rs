//! Course section "Dynamic Host Configuration Protocol – DHCP": an option set with the
//! cluster's domain name and AmazonProvidedDNS, associated with the VPC.

use std::process::ExitCode;

use aws_sdk_ec2::types::{DhcpOptions, NewDhcpConfiguration, ResourceType};
use groundup_cloud::{find_or_create, retry_eventual, run_aws_step, Attempt, Aws, AwsResultExt, CloudError, Wanted};
use groundup_contracts::context::need;
use groundup_contracts::kinds::Kind;
use groundup_contracts::network::DhcpSection;
use groundup_contracts::plan::is_planned_id;
use groundup_contracts::Section;
use groundup_runtime::harness::{NoArgs, StepInfo};

const LOGICAL: &str = "dhcp";
const NAME_SERVERS: &str = "AmazonProvidedDNS";

fn main() -> ExitCode {
    let info = StepInfo { name: "dhcp", about: "Create (or find) the DHCP option set and associate it with the VPC" };
    run_aws_step(info, |mut context, NoArgs {}, aws| async move {
        let vpc_id = need(&context.vpc, Section::Vpc)?.id.clone();
        let domain = context.params.dhcp_domain_name.clone();
        let wanted = Wanted::new(Kind::DhcpOptions, LOGICAL).recorded(context.dhcp.as_ref().map(|d| d.id.as_str()));
        let options =
            find_or_create(&aws, wanted, || find(&aws, &domain), |attempt| create(&aws, &domain, attempt)).await?;
        let id = options.dhcp_options_id().unwrap_or_default().to_string();
        if !is_planned_id(&id) {
            check_domain(&options, &id, &domain)?;
            ensure_tagged(&aws, &options, &id).await?;
        }
        associate(&aws, &id, &vpc_id).await?;
        context.dhcp = Some(DhcpSection { id, domain_name: domain });
        Ok(context)
    })
}

/// By tags; and after a run was killed while creating the set, also an untagged set with
/// exactly the cluster's options, which is the one it made (the emulator does not apply tags
/// at creation, so its sets are untagged until the step tags them).
async fn find(aws: &Aws, domain: &str) -> Result<Vec<DhcpOptions>, CloudError> {
    let out = aws
        .ec2
        .describe_dhcp_options()
        .set_filters(Some(aws.identity.filters(LOGICAL)))
        .send()
        .await
        .api("DescribeDhcpOptions")?;
    if !out.dhcp_options().is_empty() || aws.journal.pending(LOGICAL).is_none() {
        return Ok(out.dhcp_options().to_vec());
    }
    let all = aws.ec2.describe_dhcp_options().send().await.api("DescribeDhcpOptions")?;
    Ok(all.dhcp_options().iter().filter(|o| o.tags().is_empty() && configured(o) == [domain]).cloned().collect())
}

async fn create(aws: &Aws, domain: &str, attempt: Attempt) -> Result<DhcpOptions, CloudError> {
    let option = |key: &str, value: &str| NewDhcpConfiguration::builder().key(key).values(value).build();
    let out = aws
        .ec2
        .create_dhcp_options()
        .dry_run(attempt.dry_run)
        .dhcp_configurations(option("domain-name", domain))
        .dhcp_configurations(option("domain-name-servers", NAME_SERVERS))
        .tag_specifications(aws.identity.tag_spec(ResourceType::DhcpOptions, LOGICAL, &aws.identity.cluster))
        .send()
        .await
        .api("CreateDhcpOptions")?;
    out.dhcp_options.ok_or_else(|| CloudError::Conflict("CreateDhcpOptions returned nothing".into()))
}

/// The emulator ignores TagSpecifications on this call: tagging again keeps the set findable.
async fn ensure_tagged(aws: &Aws, options: &DhcpOptions, id: &str) -> Result<(), CloudError> {
    if aws.identity.matches(options.tags(), LOGICAL) {
        return Ok(());
    }
    aws.change(LOGICAL, "tag it as the cluster's", |dry_run| {
        retry_eventual(move || async move {
            aws.ec2
                .create_tags()
                .dry_run(dry_run)
                .resources(id)
                .set_tags(Some(aws.identity.ec2_tags(LOGICAL, &aws.identity.cluster)))
                .send()
                .await
                .api("CreateTags")
        })
    })
    .await?;
    Ok(())
}

/// The set's domain names, for a set whose name servers are AmazonProvidedDNS alone.
fn configured(options: &DhcpOptions) -> Vec<&str> {
    let values = |key: &str| -> Vec<&str> {
        options
            .dhcp_configurations()
            .iter()
            .filter(|c| c.key() == Some(key))
            .flat_map(|c| c.values().iter().filter_map(|v| v.value()))
            .collect()
    };
    if values("domain-name-servers") == [NAME_SERVERS] {
        values("domain-name")
    } else {
        Vec::new()
    }
}

/// Option sets are immutable: a different domain needs a new set, which is the user's call.
fn check_domain(options: &DhcpOptions, id: &str, domain: &str) -> Result<(), CloudError> {
    let current = configured(options);
    if current == [domain] {
        Ok(())
    } else {
        Err(CloudError::Conflict(format!(
            "DHCP option set {id} has domain-name {current:?} (with {NAME_SERVERS}), the context asks for `{domain}`; option sets cannot change: delete {id} or set params.dhcp_domain_name to match"
        )))
    }
}

async fn associate(aws: &Aws, id: &str, vpc_id: &str) -> Result<(), CloudError> {
    if !is_planned_id(vpc_id) {
        let vpcs = aws.ec2.describe_vpcs().vpc_ids(vpc_id).send().await.api("DescribeVpcs")?;
        if vpcs.vpcs().iter().any(|v| v.dhcp_options_id() == Some(id)) {
            return Ok(());
        }
    }
    aws.change(LOGICAL, &format!("associate with {vpc_id}"), |dry_run| {
        retry_eventual(move || async move {
            aws.ec2
                .associate_dhcp_options()
                .dry_run(dry_run)
                .dhcp_options_id(id)
                .vpc_id(vpc_id)
                .send()
                .await
                .api("AssociateDhcpOptions")
        })
    })
    .await?;
    Ok(())
}
