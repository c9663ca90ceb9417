//! Course section "Creating the Security Groups": the cluster's security group with exactly
//! the rules of the policy table (`groundup_contracts::flows`), or the course's five with
//! `init --course-network`. The admin range adds SSH and the API port to what the cluster needs.

use std::collections::BTreeSet;
use std::process::ExitCode;

use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, SecurityGroup};
use groundup_cloud::{converge, retry_eventual, run_aws_step, Attempt, Aws, AwsResultExt, CloudError};
use groundup_cloud::{Change, Resource};
use groundup_contracts::context::need;
use groundup_contracts::kinds::Kind;
use groundup_contracts::network::{IngressRule, SgSection};
use groundup_contracts::{Ref, Section};
use groundup_runtime::harness::{NoArgs, StepInfo};

const DESCRIPTION: &str = "Kubernetes cluster security group";

fn main() -> ExitCode {
    let info = StepInfo {
        name: "sg",
        about: "Create (or find) the security group and converge it to the rules the cluster's flows need",
    };
    run_aws_step(info, |mut context, NoArgs {}, aws| async move {
        if context.params.admin_cidr.prefix_len() == 0 {
            tracing::warn!("sg: SSH and the API port are open to the whole internet (admin_cidr 0.0.0.0/0); `groundup up --admin-cidr YOUR.IP/32` restricts them (on a pipeline by hand, `groundup init --admin-cidr`)");
        }
        let wanted = WantedGroup {
            name: context.cluster.name.clone(),
            vpc_id: need(&context.vpc, Section::Vpc)?.id.clone(),
            rules: context.params.ingress_rules(),
        };
        let group = converge(&aws, &wanted, context.sg.as_ref().map(|g| &g.id)).await?;
        context.sg = Some(SgSection { id: group.id(), name: wanted.name, ingress: wanted.rules });
        Ok(context)
    })
}

struct WantedGroup {
    name: String,
    vpc_id: Ref,
    rules: Vec<IngressRule>,
}

/// The group's IPv4 CIDR rules, and whole permissions of any other kind (IPv6, group
/// references, prefix lists), which the course does not have.
struct Rules {
    cidr: BTreeSet<IngressRule>,
    foreign: Vec<IpPermission>,
}

impl Rules {
    fn of(group: &SecurityGroup) -> Rules {
        let mut rules = Rules { cidr: BTreeSet::new(), foreign: Vec::new() };
        for p in group.ip_permissions() {
            if !p.ipv6_ranges().is_empty() || !p.user_id_group_pairs().is_empty() || !p.prefix_list_ids().is_empty() {
                rules.foreign.push(p.clone());
                continue;
            }
            for range in p.ip_ranges() {
                let Some(Ok(cidr)) = range.cidr_ip().map(str::parse) else { continue };
                rules.cidr.insert(IngressRule {
                    protocol: p.ip_protocol().unwrap_or_default().to_string(),
                    from_port: p.from_port().unwrap_or(-1),
                    to_port: p.to_port().unwrap_or(-1),
                    cidr,
                });
            }
        }
        rules
    }
}

/// The rules become exactly the wanted set: the missing ones are authorized first, then the
/// others revoked, so that what stays wanted is never missing in between (a new admin range
/// must not cut the load balancer off the API, even for a moment).
#[derive(Debug, Clone)]
enum Fix {
    Revoke(Vec<IngressRule>, Vec<IpPermission>),
    Authorize(Vec<IngressRule>),
}

impl std::fmt::Display for Fix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (verb, rules, foreign) = match self {
            Fix::Revoke(rules, foreign) => ("revoke", rules, foreign.len()),
            Fix::Authorize(rules) => ("authorize", rules, 0),
        };
        let mut parts: Vec<String> = rules.iter().map(ToString::to_string).collect();
        if foreign > 0 {
            parts.push(format!("{foreign} rule(s) of kinds the course does not use"));
        }
        write!(f, "{verb} {}", parts.join(", "))
    }
}

impl Resource for WantedGroup {
    type Described = SecurityGroup;
    type Observed = ();
    type Fix = Fix;

    async fn create(&self, aws: &Aws, attempt: Attempt) -> Result<SecurityGroup, CloudError> {
        let out = retry_eventual(|| async {
            aws.ec2()
                .create_security_group()
                .dry_run(attempt.dry_run)
                .group_name(&self.name)
                .description(DESCRIPTION)
                .vpc_id(self.vpc_id.to_string())
                .tag_specifications(aws.identity().tag_spec(
                    ResourceType::SecurityGroup,
                    self.logical(),
                    &aws.identity().cluster,
                ))
                .send()
                .await
                .api("CreateSecurityGroup")
        })
        .await
        .map_err(|e| match e.code() {
            Some("InvalidGroup.Duplicate") => CloudError::Foreign {
                kind: Kind::SecurityGroup.label(),
                name: self.name.clone(),
                logical: self.logical().into(),
            },
            _ => e,
        })?;
        let id = out.group_id().unwrap_or_default();
        let groups = retry_eventual(|| async {
            aws.ec2().describe_security_groups().group_ids(id).send().await.api("DescribeSecurityGroups")
        })
        .await?;
        groups
            .security_groups()
            .first()
            .cloned()
            .ok_or_else(|| CloudError::Vanished { kind: Kind::SecurityGroup.label(), id: id.into() })
    }

    fn diff(&self, found: Option<&SecurityGroup>, _: &()) -> Vec<Change<Fix>> {
        let actual = found.map_or(Rules { cidr: BTreeSet::new(), foreign: Vec::new() }, Rules::of);
        let wanted: BTreeSet<&IngressRule> = self.rules.iter().collect();
        let extra: Vec<IngressRule> = actual.cidr.iter().filter(|r| !wanted.contains(r)).cloned().collect();
        let missing: Vec<IngressRule> = self.rules.iter().filter(|r| !actual.cidr.contains(r)).cloned().collect();
        let mut changes = Vec::new();
        if !missing.is_empty() {
            changes.push(Change::InPlace(Fix::Authorize(missing)));
        }
        if !extra.is_empty() || !actual.foreign.is_empty() {
            changes.push(Change::InPlace(Fix::Revoke(extra, actual.foreign)));
        }
        changes
    }

    async fn apply(&self, aws: &Aws, id: &str, fix: &Fix, dry_run: bool) -> Result<(), CloudError> {
        match fix {
            Fix::Revoke(rules, foreign) => {
                let mut permissions: Vec<IpPermission> = rules.iter().map(permission).collect();
                permissions.extend(foreign.iter().cloned());
                let request = aws.ec2().revoke_security_group_ingress().dry_run(dry_run).group_id(id);
                request.set_ip_permissions(Some(permissions)).send().await.api("RevokeSecurityGroupIngress")?;
            }
            Fix::Authorize(rules) => {
                let permissions: Vec<IpPermission> = rules.iter().map(permission).collect();
                retry_eventual(|| {
                    let request = aws.ec2().authorize_security_group_ingress().dry_run(dry_run).group_id(id);
                    let request = request.set_ip_permissions(Some(permissions.clone()));
                    async move { request.send().await.api("AuthorizeSecurityGroupIngress") }
                })
                .await?;
            }
        }
        Ok(())
    }
}

fn permission(rule: &IngressRule) -> IpPermission {
    IpPermission::builder()
        .ip_protocol(&rule.protocol)
        .from_port(rule.from_port)
        .to_port(rule.to_port)
        .ip_ranges(IpRange::builder().cidr_ip(rule.cidr.to_string()).build())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::Ipv6Range;
    use groundup_cloud::lines;

    fn rule(protocol: &str, port: i32, cidr: &str) -> IngressRule {
        IngressRule { protocol: protocol.into(), from_port: port, to_port: port, cidr: cidr.parse().unwrap() }
    }

    #[test]
    fn the_rules_become_exactly_the_wanted_set() {
        let wanted = WantedGroup {
            name: "k8s".into(),
            vpc_id: Ref::Known("vpc-1".into()),
            rules: vec![rule("tcp", 22, "203.0.113.7/32"), rule("tcp", 6443, "203.0.113.7/32")],
        };
        // A group with these rules, as AWS describes them, and some of kinds the course has not.
        let diff = |present: &[IngressRule], foreign: usize| {
            let ipv6 =
                IpPermission::builder().ip_protocol("-1").ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build());
            let mut permissions: Vec<IpPermission> = present.iter().map(permission).collect();
            permissions.extend(vec![ipv6.build(); foreign]);
            lines(&wanted.diff(Some(&SecurityGroup::builder().set_ip_permissions(Some(permissions)).build()), &()))
        };
        assert!(diff(&wanted.rules, 0).is_empty());
        assert_eq!(
            diff(&[rule("tcp", 22, "0.0.0.0/0"), rule("tcp", 6443, "203.0.113.7/32")], 0),
            ["authorize tcp 22 from 203.0.113.7/32", "revoke tcp 22 from 0.0.0.0/0"]
        );
        assert_eq!(diff(&wanted.rules, 2), ["revoke 2 rule(s) of kinds the course does not use"]);
        assert_eq!(
            lines(&wanted.diff(None, &())),
            ["authorize tcp 22 from 203.0.113.7/32, tcp 6443 from 203.0.113.7/32"]
        );
    }
}
