//! Course section "Creating the Security Groups": the cluster's security group with exactly
//! the course's five ingress rules. SSH and the API port admit `params.admin_cidr`.

use std::collections::BTreeSet;
use std::process::ExitCode;

use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, SecurityGroup};
use groundup_cloud::{find_or_create, retry_eventual, run_aws_step, Attempt, Aws, AwsResultExt, CloudError, Wanted};
use groundup_contracts::context::need;
use groundup_contracts::kinds::Kind;
use groundup_contracts::network::{IngressRule, SgSection};
use groundup_contracts::Section;
use groundup_runtime::harness::{NoArgs, StepInfo};

const LOGICAL: &str = "sg";
const DESCRIPTION: &str = "Kubernetes cluster security group";

fn main() -> ExitCode {
    let info = StepInfo {
        name: "sg",
        about: "Create (or find) the security group and converge it to the course's five ingress rules",
    };
    run_aws_step(info, |mut context, NoArgs {}, aws| async move {
        let vpc_id = need(&context.vpc, Section::Vpc)?.id.clone();
        if context.params.admin_cidr.prefix_len() == 0 {
            tracing::warn!("{LOGICAL}: SSH and the API port are open to the whole internet (admin_cidr 0.0.0.0/0); pass --admin-cidr YOUR.IP/32 to `groundup init` to restrict them");
        }
        let name = context.cluster.name.clone();
        let wanted = Wanted::new(Kind::SecurityGroup, LOGICAL).recorded(context.sg.as_ref().map(|g| g.id.as_str()));
        let group =
            find_or_create(&aws, wanted, || find(&aws), |attempt| create(&aws, &name, &vpc_id, attempt)).await?;
        let id = group.group_id().unwrap_or_default().to_string();
        let wanted = context.params.ingress_rules();
        converge_rules(&aws, &group, &id, &wanted).await?;
        context.sg = Some(SgSection { id, name, ingress: wanted });
        Ok(context)
    })
}

async fn find(aws: &Aws) -> Result<Vec<SecurityGroup>, CloudError> {
    let out = aws
        .ec2
        .describe_security_groups()
        .set_filters(Some(aws.identity.filters(LOGICAL)))
        .send()
        .await
        .api("DescribeSecurityGroups")?;
    Ok(out.security_groups().to_vec())
}

async fn create(aws: &Aws, name: &str, vpc_id: &str, attempt: Attempt) -> Result<SecurityGroup, CloudError> {
    let out = retry_eventual(|| async {
        aws.ec2
            .create_security_group()
            .dry_run(attempt.dry_run)
            .group_name(name)
            .description(DESCRIPTION)
            .vpc_id(vpc_id)
            .tag_specifications(aws.identity.tag_spec(ResourceType::SecurityGroup, LOGICAL, &aws.identity.cluster))
            .send()
            .await
            .api("CreateSecurityGroup")
    })
    .await
    .map_err(|e| match e.code() {
        Some("InvalidGroup.Duplicate") => CloudError::Conflict(format!(
            "a security group named `{name}` already exists in {vpc_id} but is not tagged as this cluster's; delete or rename it"
        )),
        _ => e,
    })?;
    let id = out.group_id().unwrap_or_default().to_string();
    let groups = retry_eventual(|| async {
        aws.ec2.describe_security_groups().group_ids(&id).send().await.api("DescribeSecurityGroups")
    })
    .await?;
    groups
        .security_groups()
        .first()
        .cloned()
        .ok_or_else(|| CloudError::Conflict(format!("{id} vanished after creation")))
}

/// Authorizes the missing rules and revokes every other one.
async fn converge_rules(aws: &Aws, group: &SecurityGroup, id: &str, wanted: &[IngressRule]) -> Result<(), CloudError> {
    let (present, foreign) = current_rules(group);
    let wanted_set: BTreeSet<&IngressRule> = wanted.iter().collect();
    let missing: Vec<&IngressRule> = wanted.iter().filter(|r| !present.contains(r)).collect();
    let extra: Vec<&IngressRule> = present.iter().filter(|r| !wanted_set.contains(r)).collect();
    let mut revoke: Vec<IpPermission> = extra.iter().copied().map(permission).collect();
    revoke.extend(foreign.iter().cloned());
    if !revoke.is_empty() {
        let what = format!("revoke {}", describe(&extra, foreign.len()));
        aws.change(LOGICAL, &what, |dry_run| async move {
            aws.ec2
                .revoke_security_group_ingress()
                .dry_run(dry_run)
                .group_id(id)
                .set_ip_permissions(Some(revoke))
                .send()
                .await
                .api("RevokeSecurityGroupIngress")
        })
        .await?;
    }
    if !missing.is_empty() {
        let authorize: Vec<IpPermission> = missing.iter().copied().map(permission).collect();
        let what = format!("authorize {}", describe(&missing, 0));
        aws.change(LOGICAL, &what, |dry_run| {
            retry_eventual(move || {
                let request = aws
                    .ec2
                    .authorize_security_group_ingress()
                    .dry_run(dry_run)
                    .group_id(id)
                    .set_ip_permissions(Some(authorize.clone()));
                async move { request.send().await.api("AuthorizeSecurityGroupIngress") }
            })
        })
        .await?;
    }
    Ok(())
}

/// "tcp 22 from 172.31.0.0/16, icmp from 0.0.0.0/0", for logs and plans.
fn describe(rules: &[&IngressRule], foreign: usize) -> String {
    let mut parts: Vec<String> = rules.iter().map(ToString::to_string).collect();
    if foreign > 0 {
        parts.push(format!("{foreign} rule(s) of kinds the course does not use"));
    }
    parts.join(", ")
}

/// The group's IPv4 CIDR rules, and whole permissions of any other kind (IPv6, group
/// references, prefix lists), which the course does not have.
fn current_rules(group: &SecurityGroup) -> (BTreeSet<IngressRule>, Vec<IpPermission>) {
    let mut rules = BTreeSet::new();
    let mut foreign = Vec::new();
    for p in group.ip_permissions() {
        if !p.ipv6_ranges().is_empty() || !p.user_id_group_pairs().is_empty() || !p.prefix_list_ids().is_empty() {
            foreign.push(p.clone());
            continue;
        }
        for range in p.ip_ranges() {
            let Some(Ok(cidr)) = range.cidr_ip().map(str::parse) else { continue };
            rules.insert(IngressRule {
                protocol: p.ip_protocol().unwrap_or_default().to_string(),
                from_port: p.from_port().unwrap_or(-1),
                to_port: p.to_port().unwrap_or(-1),
                cidr,
            });
        }
    }
    (rules, foreign)
}

fn permission(rule: &IngressRule) -> IpPermission {
    IpPermission::builder()
        .ip_protocol(&rule.protocol)
        .from_port(rule.from_port)
        .to_port(rule.to_port)
        .ip_ranges(IpRange::builder().cidr_ip(rule.cidr.to_string()).build())
        .build()
}
