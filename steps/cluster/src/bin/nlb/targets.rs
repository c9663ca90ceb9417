//! The target group: TCP on the API port, with exactly the masters' IPs as targets, checked
//! by HTTPS `GET /readyz` so that an API server that accepts connections but is not ready is
//! taken out of rotation.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetDescription, TargetGroup, TargetTypeEnum};
use groundup_cloud::Resource;
use groundup_cloud::{
    owned_by_name, retry_eventual, Answered, Attempt, Aws, AwsResultExt, Change, CloudError, Immutable,
};
use groundup_contracts::params::{HealthCheck, HEALTH_CHECK_PATH};
use groundup_contracts::Ref;

pub(super) struct WantedGroup {
    pub name: String,
    pub vpc_id: Ref,
    pub port: i32,
    pub masters: Vec<Ipv4Addr>,
    pub health_check: HealthCheck,
}

/// The IPs the group's targets have.
#[derive(Default)]
pub(super) struct Targets(BTreeSet<String>);

/// The targets become exactly the masters: the others are deregistered, the missing
/// registered; the health check becomes the wanted one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fix {
    Deregister(Vec<String>),
    Register(Vec<String>),
    HealthCheck(HealthCheck),
}

impl std::fmt::Display for Fix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fix::Deregister(ips) => write!(f, "deregister {}", ips.join(", ")),
            Fix::Register(ips) => write!(f, "register {}", ips.join(", ")),
            Fix::HealthCheck(h) => write!(
                f,
                "health check HTTPS GET {HEALTH_CHECK_PATH} every {} s, healthy after {}, unhealthy after {}",
                h.interval_seconds, h.healthy_threshold, h.unhealthy_threshold
            ),
        }
    }
}

/// Whether the group checks its targets as wanted.
fn checks_as(group: &TargetGroup, wanted: &HealthCheck) -> bool {
    group.health_check_protocol() == Some(&ProtocolEnum::Https)
        && group.health_check_path() == Some(HEALTH_CHECK_PATH)
        && group.health_check_interval_seconds() == Some(i32::from(wanted.interval_seconds))
        && group.healthy_threshold_count() == Some(i32::from(wanted.healthy_threshold))
        && group.unhealthy_threshold_count() == Some(i32::from(wanted.unhealthy_threshold))
}

impl Resource for WantedGroup {
    const FIXES_TAKE_DRY_RUN: bool = false;
    type Described = TargetGroup;
    type Observed = Targets;
    type Fix = Fix;

    async fn find(&self, aws: &Aws) -> Result<Vec<TargetGroup>, CloudError> {
        let found = match aws.elb().describe_target_groups().names(&self.name).send().await.api("DescribeTargetGroups")
        {
            Ok(out) => out.target_groups().to_vec(),
            Err(e) if e.code() == Some("TargetGroupNotFound") => Vec::new(),
            Err(e) => return Err(e),
        };
        owned_by_name(aws, &self.name, self.logical(), found).await
    }

    async fn create(&self, aws: &Aws, _: Attempt) -> Result<TargetGroup, CloudError> {
        let out = aws
            .elb()
            .create_target_group()
            .name(&self.name)
            .protocol(ProtocolEnum::Tcp)
            .port(self.port)
            .vpc_id(self.vpc_id.to_string())
            .target_type(TargetTypeEnum::Ip)
            .health_check_protocol(ProtocolEnum::Https)
            .health_check_path(HEALTH_CHECK_PATH)
            .health_check_interval_seconds(i32::from(self.health_check.interval_seconds))
            .healthy_threshold_count(i32::from(self.health_check.healthy_threshold))
            .unhealthy_threshold_count(i32::from(self.health_check.unhealthy_threshold))
            .set_tags(Some(aws.identity().elb_tags(self.logical(), &self.name)))
            .send()
            .await
            .api("CreateTargetGroup")?;
        out.target_groups().first().cloned().answered(self.logical())
    }

    async fn observe(&self, aws: &Aws, group: &TargetGroup) -> Result<Targets, CloudError> {
        let arn = group.target_group_arn().unwrap_or_default();
        let health = retry_eventual(|| async {
            aws.elb().describe_target_health().target_group_arn(arn).send().await.api("DescribeTargetHealth")
        })
        .await?;
        let targets = health.target_health_descriptions().iter().filter_map(|d| d.target()?.id().map(String::from));
        Ok(Targets(targets.collect()))
    }

    fn diff(&self, found: Option<&TargetGroup>, Targets(targets): &Targets) -> Vec<Change<Fix>> {
        if let Some(port) = found.map(|g| g.port()).filter(|port| *port != Some(self.port)) {
            let now = port.map_or("?".to_string(), |p| p.to_string());
            return vec![Change::Immutable(Immutable::param("port", now, self.port, "params.ports.api"))];
        }
        let wanted: BTreeSet<String> = self.masters.iter().map(ToString::to_string).collect();
        let extra: Vec<String> = targets.difference(&wanted).cloned().collect();
        let missing: Vec<String> = wanted.difference(targets).cloned().collect();
        let mut changes = Vec::new();
        if found.is_some_and(|group| !checks_as(group, &self.health_check)) {
            changes.push(Change::InPlace(Fix::HealthCheck(self.health_check)));
        }
        if !extra.is_empty() {
            changes.push(Change::InPlace(Fix::Deregister(extra)));
        }
        if !missing.is_empty() {
            changes.push(Change::InPlace(Fix::Register(missing)));
        }
        changes
    }

    async fn apply(&self, aws: &Aws, arn: &str, fix: &Fix, _: bool) -> Result<(), CloudError> {
        let targets =
            |ips: &[String]| ips.iter().map(|ip| TargetDescription::builder().id(ip).port(self.port).build()).collect();
        match fix {
            Fix::Deregister(ips) => {
                let request = aws.elb().deregister_targets().target_group_arn(arn).set_targets(Some(targets(ips)));
                request.send().await.api("DeregisterTargets")?;
            }
            Fix::Register(ips) => {
                let request = aws.elb().register_targets().target_group_arn(arn).set_targets(Some(targets(ips)));
                request.send().await.api("RegisterTargets")?;
            }
            Fix::HealthCheck(health) => {
                let request = aws
                    .elb()
                    .modify_target_group()
                    .target_group_arn(arn)
                    .health_check_protocol(ProtocolEnum::Https)
                    .health_check_path(HEALTH_CHECK_PATH)
                    .health_check_interval_seconds(i32::from(health.interval_seconds))
                    .healthy_threshold_count(i32::from(health.healthy_threshold))
                    .unhealthy_threshold_count(i32::from(health.unhealthy_threshold));
                request.send().await.api("ModifyTargetGroup")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundup_cloud::lines;

    #[test]
    fn the_targets_become_exactly_the_masters_on_a_fixed_port() {
        let masters = ["10.240.0.10", "10.240.0.11"].map(|ip| ip.parse().unwrap()).to_vec();
        let health_check = HealthCheck::default();
        let wanted =
            WantedGroup { name: "k8s".into(), vpc_id: Ref::Known("vpc-1".into()), port: 6443, masters, health_check };
        let checked = |group: aws_sdk_elasticloadbalancingv2::types::builders::TargetGroupBuilder| {
            group
                .health_check_protocol(ProtocolEnum::Https)
                .health_check_path("/readyz")
                .health_check_interval_seconds(10)
                .healthy_threshold_count(3)
                .unhealthy_threshold_count(3)
        };
        let diff = |port, targets: &[&str]| {
            let targets = targets.iter().map(|t| t.to_string()).collect();
            lines(&wanted.diff(Some(&checked(TargetGroup::builder().port(port)).build()), &Targets(targets)))
        };
        assert!(diff(6443, &["10.240.0.10", "10.240.0.11"]).is_empty());
        assert_eq!(diff(6443, &["10.240.0.10", "10.240.0.12"]), ["deregister 10.240.0.12", "register 10.240.0.11"]);
        assert_eq!(diff(443, &["10.240.0.10", "10.240.0.11"]), ["port 443 -> 6443 cannot change"]);
        assert_eq!(lines(&wanted.diff(None, &Targets::default())), ["register 10.240.0.10, 10.240.0.11"]);
    }

    /// A TCP health check (the old default), or other thresholds, change in place.
    #[test]
    fn the_health_check_asks_readyz_over_https_as_params_say() {
        let masters = vec!["10.240.0.10".parse().unwrap()];
        let health_check = HealthCheck { interval_seconds: 30, healthy_threshold: 2, unhealthy_threshold: 4 };
        let wanted =
            WantedGroup { name: "k8s".into(), vpc_id: Ref::Known("vpc-1".into()), port: 6443, masters, health_check };
        let targets = Targets(["10.240.0.10".to_string()].into());
        let group = |protocol: ProtocolEnum, path: &str, interval: i32| {
            TargetGroup::builder()
                .port(6443)
                .health_check_protocol(protocol)
                .health_check_path(path)
                .health_check_interval_seconds(interval)
                .healthy_threshold_count(2)
                .unhealthy_threshold_count(4)
                .build()
        };
        assert!(wanted.diff(Some(&group(ProtocolEnum::Https, "/readyz", 30)), &targets).is_empty());
        let fix = ["health check HTTPS GET /readyz every 30 s, healthy after 2, unhealthy after 4"];
        assert_eq!(lines(&wanted.diff(Some(&group(ProtocolEnum::Tcp, "/", 30)), &targets)), fix);
        assert_eq!(lines(&wanted.diff(Some(&group(ProtocolEnum::Https, "/readyz", 10)), &targets)), fix);
    }
}
