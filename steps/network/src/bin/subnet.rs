//! Course section "Subnet": the cluster's one subnet in the VPC.

use std::process::ExitCode;

use aws_sdk_ec2::types::{ResourceType, Subnet};
use groundup_cloud::{converge, retry_eventual, run_aws_step, Answered, Attempt, Aws, AwsResultExt, CloudError};
use groundup_cloud::{Change, Immutable, NoFix, Resource};
use groundup_contracts::context::need;
use groundup_contracts::network::SubnetSection;
use groundup_contracts::{Ref, Section};
use groundup_runtime::harness::{NoArgs, StepInfo};
use ipnet::Ipv4Net;

fn main() -> ExitCode {
    let info = StepInfo { name: "subnet", about: "Create (or find) the cluster's subnet in the VPC" };
    run_aws_step(info, |mut context, NoArgs {}, aws| async move {
        let wanted =
            WantedSubnet { vpc_id: need(&context.vpc, Section::Vpc)?.id.clone(), cidr: context.params.subnet_cidr };
        let subnet = converge(&aws, &wanted, context.subnet.as_ref().map(|s| &s.id)).await?;
        context.subnet = Some(SubnetSection {
            id: subnet.id(),
            cidr: wanted.cidr,
            // AWS picks the zone of a subnet it creates; a plan does not know it yet.
            availability_zone: subnet.existing().and_then(|s| s.availability_zone()).unwrap_or_default().to_string(),
        });
        Ok(context)
    })
}

struct WantedSubnet {
    vpc_id: Ref,
    cidr: Ipv4Net,
}

/// A subnet has nothing to change in place: its range and its VPC are fixed at creation.
impl Resource for WantedSubnet {
    type Described = Subnet;
    type Observed = ();
    type Fix = NoFix;

    async fn create(&self, aws: &Aws, attempt: Attempt) -> Result<Subnet, CloudError> {
        let out = retry_eventual(|| async {
            aws.ec2()
                .create_subnet()
                .dry_run(attempt.dry_run)
                .vpc_id(self.vpc_id.to_string())
                .cidr_block(self.cidr.to_string())
                .tag_specifications(aws.identity().tag_spec(
                    ResourceType::Subnet,
                    self.logical(),
                    &aws.identity().cluster,
                ))
                .send()
                .await
                .api("CreateSubnet")
        })
        .await?;
        out.subnet.answered(self.logical())
    }

    fn diff(&self, actual: Option<&Subnet>, _: &()) -> Vec<Change<NoFix>> {
        let Some(subnet) = actual else { return Vec::new() };
        let mut changes = Vec::new();
        let cidr = subnet.cidr_block().unwrap_or("?");
        if cidr != self.cidr.to_string() {
            changes.push(Change::Immutable(Immutable::param("cidr", cidr, self.cidr, "params.subnet_cidr")));
        }
        let vpc = subnet.vpc_id().unwrap_or("?");
        if self.vpc_id != *vpc {
            changes.push(Change::Immutable(Immutable::param("vpc", vpc, &self.vpc_id, "params.vpc_cidr")));
        }
        changes
    }

    async fn apply(&self, _: &Aws, _: &str, fix: &NoFix, _: bool) -> Result<(), CloudError> {
        match *fix {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundup_cloud::lines;

    #[test]
    fn a_subnet_with_another_range_or_vpc_is_refused_and_a_matching_one_left() {
        let wanted = WantedSubnet { vpc_id: Ref::Known("vpc-1".into()), cidr: "10.0.1.0/24".parse().unwrap() };
        let diff = |cidr: &str, vpc: &str| {
            lines(&wanted.diff(Some(&Subnet::builder().cidr_block(cidr).vpc_id(vpc).build()), &()))
        };
        assert!(diff("10.0.1.0/24", "vpc-1").is_empty());
        assert!(wanted.diff(None, &()).is_empty());
        assert_eq!(diff("10.0.2.0/24", "vpc-1"), ["cidr 10.0.2.0/24 -> 10.0.1.0/24 cannot change"]);
        assert_eq!(diff("10.0.1.0/24", "vpc-2"), ["vpc vpc-2 -> vpc-1 cannot change"]);
    }
}
