//! Course section "Virtual Private Cloud (VPC)" and "Domain Name System – DNS": the cluster's
//! VPC, tagged with its name, with DNS support and DNS hostnames turned on.

use std::process::ExitCode;

use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, Vpc, VpcAttributeName};
use groundup_cloud::{converge, retry_eventual, run_aws_step, Answered, Attempt, Aws, AwsResultExt, CloudError};
use groundup_cloud::{Change, Immutable, Resource};
use groundup_contracts::network::VpcSection;
use groundup_runtime::harness::{NoArgs, StepInfo};
use ipnet::Ipv4Net;

fn main() -> ExitCode {
    let info = StepInfo { name: "vpc", about: "Create (or find) the cluster's VPC with DNS support and hostnames" };
    run_aws_step(info, |mut context, NoArgs {}, aws| async move {
        let wanted = WantedVpc { cidr: context.params.vpc_cidr };
        let vpc = converge(&aws, &wanted, context.vpc.as_ref().map(|v| &v.id)).await?;
        context.vpc = Some(VpcSection { id: vpc.id(), cidr: wanted.cidr });
        Ok(context)
    })
}

struct WantedVpc {
    cidr: Ipv4Net,
}

/// The two DNS attributes, which AWS reads one per call (a new VPC: both off, to be sure).
#[derive(Default)]
struct DnsState {
    support: bool,
    hostnames: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dns {
    Support,
    Hostnames,
}

impl std::fmt::Display for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dns::Support => "enable DNS support",
            Dns::Hostnames => "enable DNS hostnames",
        })
    }
}

impl Dns {
    fn attribute(self) -> VpcAttributeName {
        match self {
            Dns::Support => VpcAttributeName::EnableDnsSupport,
            Dns::Hostnames => VpcAttributeName::EnableDnsHostnames,
        }
    }
}

impl Resource for WantedVpc {
    const FIXES_TAKE_DRY_RUN: bool = false;
    type Described = Vpc;
    type Observed = DnsState;
    type Fix = Dns;

    async fn create(&self, aws: &Aws, attempt: Attempt) -> Result<Vpc, CloudError> {
        let out = aws
            .ec2()
            .create_vpc()
            .cidr_block(self.cidr.to_string())
            .dry_run(attempt.dry_run)
            .tag_specifications(aws.identity().tag_spec(ResourceType::Vpc, self.logical(), &aws.identity().cluster))
            .send()
            .await
            .api("CreateVpc")?;
        out.vpc.answered(self.logical())
    }

    async fn observe(&self, aws: &Aws, found: &Vpc) -> Result<DnsState, CloudError> {
        let id = found.vpc_id().unwrap_or_default();
        Ok(DnsState {
            support: is_enabled(aws, id, Dns::Support).await?,
            hostnames: is_enabled(aws, id, Dns::Hostnames).await?,
        })
    }

    fn diff(&self, found: Option<&Vpc>, dns: &DnsState) -> Vec<Change<Dns>> {
        let mut changes = Vec::new();
        let cidr = found.map(|vpc| vpc.cidr_block().unwrap_or("?"));
        if let Some(cidr) = cidr.filter(|cidr| *cidr != self.cidr.to_string()) {
            changes.push(Change::Immutable(Immutable::param("cidr", cidr, self.cidr, "params.vpc_cidr")));
        }
        if !dns.support {
            changes.push(Change::InPlace(Dns::Support));
        }
        if !dns.hostnames {
            changes.push(Change::InPlace(Dns::Hostnames));
        }
        changes
    }

    async fn apply(&self, aws: &Aws, id: &str, fix: &Dns, _: bool) -> Result<(), CloudError> {
        retry_eventual(|| {
            let on = AttributeBooleanValue::builder().value(true).build();
            let request = aws.ec2().modify_vpc_attribute().vpc_id(id);
            let request = match fix {
                Dns::Support => request.enable_dns_support(on),
                Dns::Hostnames => request.enable_dns_hostnames(on),
            };
            async move { request.send().await.api("ModifyVpcAttribute") }
        })
        .await?;
        Ok(())
    }
}

async fn is_enabled(aws: &Aws, id: &str, dns: Dns) -> Result<bool, CloudError> {
    let out = retry_eventual(|| async {
        aws.ec2()
            .describe_vpc_attribute()
            .vpc_id(id)
            .attribute(dns.attribute())
            .send()
            .await
            .api("DescribeVpcAttribute")
    })
    .await?;
    let value = match dns {
        Dns::Support => out.enable_dns_support(),
        Dns::Hostnames => out.enable_dns_hostnames(),
    };
    Ok(value.and_then(|v| v.value()) == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundup_cloud::lines;

    #[test]
    fn the_range_cannot_change_and_each_dns_attribute_is_turned_on_alone() {
        let wanted = WantedVpc { cidr: "10.0.0.0/16".parse().unwrap() };
        let diff = |cidr: &str, support, hostnames| {
            lines(&wanted.diff(Some(&Vpc::builder().cidr_block(cidr).build()), &DnsState { support, hostnames }))
        };
        assert!(diff("10.0.0.0/16", true, true).is_empty());
        assert_eq!(diff("10.0.0.0/16", true, false), ["enable DNS hostnames"]);
        assert_eq!(diff("10.0.0.0/16", false, true), ["enable DNS support"]);
        assert_eq!(diff("10.1.0.0/16", true, true), ["cidr 10.1.0.0/16 -> 10.0.0.0/16 cannot change"]);
        assert_eq!(lines(&wanted.diff(None, &DnsState::default())), ["enable DNS support", "enable DNS hostnames"]);
    }
}
