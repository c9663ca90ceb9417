//! Course section "Dynamic Host Configuration Protocol – DHCP": an option set with the
//! cluster's domain name and AmazonProvidedDNS, associated with the VPC.

use std::process::ExitCode;

use aws_sdk_ec2::types::{DhcpOptions, NewDhcpConfiguration, ResourceType};
use groundup_cloud::{converge, retry_eventual, run_aws_step, Answered, Attempt, Aws, AwsResultExt, CloudError};
use groundup_cloud::{AwsResource, Change, Immutable, Resource};
use groundup_contracts::context::need;
use groundup_contracts::network::DhcpSection;
use groundup_contracts::{Ref, Section};
use groundup_runtime::harness::{NoArgs, StepInfo};

const NAME_SERVERS: &str = "AmazonProvidedDNS";

fn main() -> ExitCode {
    let info = StepInfo { name: "dhcp", about: "Create (or find) the DHCP option set and associate it with the VPC" };
    run_aws_step(info, |mut context, NoArgs {}, aws| async move {
        let wanted = WantedOptions {
            vpc_id: need(&context.vpc, Section::Vpc)?.id.clone(),
            domain: context.params.dhcp_domain_name.clone(),
        };
        let options = converge(&aws, &wanted, context.dhcp.as_ref().map(|d| &d.id)).await?;
        context.dhcp = Some(DhcpSection { id: options.id(), domain_name: wanted.domain });
        Ok(context)
    })
}

struct WantedOptions {
    vpc_id: Ref,
    domain: String,
}

/// Whether the set carries the cluster's tags and is the VPC's.
#[derive(Default)]
struct Observed {
    tagged: bool,
    associated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fix {
    /// The emulator ignores TagSpecifications on CreateDhcpOptions: tagging again keeps the
    /// set findable.
    Tag,
    Associate(Ref),
}

impl std::fmt::Display for Fix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fix::Tag => f.write_str("tag it as the cluster's"),
            Fix::Associate(vpc) => write!(f, "associate with {vpc}"),
        }
    }
}

impl Resource for WantedOptions {
    type Described = DhcpOptions;
    type Observed = Observed;
    type Fix = Fix;

    /// By tags; and after a run was killed while creating the set, also an untagged set with
    /// exactly the cluster's options, which is the one it made (the emulator does not apply
    /// tags at creation, so its sets are untagged until the step tags them).
    async fn find(&self, aws: &Aws) -> Result<Vec<DhcpOptions>, CloudError> {
        let tagged = DhcpOptions::find_tagged(aws, self.logical()).await?;
        if !tagged.is_empty() || !aws.create_pending(self.logical()) {
            return Ok(tagged);
        }
        let all = aws.ec2().describe_dhcp_options().send().await.api("DescribeDhcpOptions")?;
        let made_here = |o: &&DhcpOptions| o.tags().is_empty() && configured(o) == [&self.domain];
        Ok(all.dhcp_options().iter().filter(made_here).cloned().collect())
    }

    async fn create(&self, aws: &Aws, attempt: Attempt) -> Result<DhcpOptions, CloudError> {
        let option = |key: &str, value: &str| NewDhcpConfiguration::builder().key(key).values(value).build();
        let out = aws
            .ec2()
            .create_dhcp_options()
            .dry_run(attempt.dry_run)
            .dhcp_configurations(option("domain-name", &self.domain))
            .dhcp_configurations(option("domain-name-servers", NAME_SERVERS))
            .tag_specifications(aws.identity().tag_spec(
                ResourceType::DhcpOptions,
                self.logical(),
                &aws.identity().cluster,
            ))
            .send()
            .await
            .api("CreateDhcpOptions")?;
        out.dhcp_options.answered(self.logical())
    }

    async fn observe(&self, aws: &Aws, found: &DhcpOptions) -> Result<Observed, CloudError> {
        let id = found.dhcp_options_id();
        let associated = aws
            .read_existing(&self.vpc_id, |vpc_id| async move {
                let vpcs = aws.ec2().describe_vpcs().vpc_ids(vpc_id).send().await.api("DescribeVpcs")?;
                Ok(vpcs.vpcs().iter().any(|v| v.dhcp_options_id() == id))
            })
            .await?;
        Ok(Observed {
            tagged: aws.identity().matches(found.tags(), self.logical()),
            associated: associated.unwrap_or(false),
        })
    }

    /// Option sets are immutable: a different domain needs a new set, which is the user's call.
    fn diff(&self, found: Option<&DhcpOptions>, observed: &Observed) -> Vec<Change<Fix>> {
        let mut changes = Vec::new();
        if let Some(options) = found {
            let domains = configured(options);
            if domains != [self.domain.as_str()] {
                let now = format!("{domains:?} (with {NAME_SERVERS})");
                let param = "params.dhcp_domain_name";
                return vec![Change::Immutable(Immutable::param("domain-name", now, &self.domain, param))];
            }
            if !observed.tagged {
                changes.push(Change::InPlace(Fix::Tag));
            }
        }
        if !observed.associated {
            changes.push(Change::InPlace(Fix::Associate(self.vpc_id.clone())));
        }
        changes
    }

    async fn apply(&self, aws: &Aws, id: &str, fix: &Fix, dry_run: bool) -> Result<(), CloudError> {
        match fix {
            Fix::Tag => {
                let tags = aws.identity().ec2_tags(self.logical(), &aws.identity().cluster);
                retry_eventual(|| async {
                    let request = aws.ec2().create_tags().dry_run(dry_run).resources(id).set_tags(Some(tags.clone()));
                    request.send().await.api("CreateTags")
                })
                .await?;
            }
            Fix::Associate(vpc_id) => {
                retry_eventual(|| async {
                    let request = aws
                        .ec2()
                        .associate_dhcp_options()
                        .dry_run(dry_run)
                        .dhcp_options_id(id)
                        .vpc_id(vpc_id.to_string());
                    request.send().await.api("AssociateDhcpOptions")
                })
                .await?;
            }
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{AttributeValue, DhcpConfiguration};
    use groundup_cloud::lines;

    #[test]
    fn a_set_is_tagged_and_associated_and_another_domain_is_refused() {
        let wanted = WantedOptions { vpc_id: Ref::Known("vpc-1".into()), domain: "ec2.internal".into() };
        let diff = |domain: &str, tagged, associated| {
            let option = |key: &str, value: &str| {
                let value = AttributeValue::builder().value(value).build();
                DhcpConfiguration::builder().key(key).values(value).build()
            };
            let set = DhcpOptions::builder()
                .dhcp_configurations(option("domain-name", domain))
                .dhcp_configurations(option("domain-name-servers", NAME_SERVERS))
                .build();
            lines(&wanted.diff(Some(&set), &Observed { tagged, associated }))
        };
        assert!(diff("ec2.internal", true, true).is_empty());
        assert_eq!(diff("ec2.internal", false, false), ["tag it as the cluster's", "associate with vpc-1"]);
        assert_eq!(diff("ec2.internal", true, false), ["associate with vpc-1"]);
        assert_eq!(
            diff("corp.example", true, true),
            [r#"domain-name ["corp.example"] (with AmazonProvidedDNS) -> ec2.internal cannot change"#]
        );
        assert_eq!(lines(&wanted.diff(None, &Observed::default())), ["associate with vpc-1"]);
    }
}
