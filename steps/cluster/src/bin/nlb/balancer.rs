//! The load balancer and its listener on the API port.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, IpAddressType, Listener, LoadBalancer, LoadBalancerSchemeEnum, LoadBalancerTypeEnum,
    ProtocolEnum,
};
use groundup_cloud::{
    owned_by_name, retry_eventual, Answered, Attempt, Aws, AwsResultExt, Change, CloudError, Immutable,
};
use groundup_cloud::{NoFix, Resource};
use groundup_contracts::Ref;

pub(super) struct WantedBalancer {
    pub name: String,
    pub subnet_id: Ref,
}

/// ELBv2 names are the cluster's name; the scheme and type are fixed at creation.
impl Resource for WantedBalancer {
    type Described = LoadBalancer;
    type Observed = ();
    type Fix = NoFix;

    async fn find(&self, aws: &Aws) -> Result<Vec<LoadBalancer>, CloudError> {
        let found =
            match aws.elb().describe_load_balancers().names(&self.name).send().await.api("DescribeLoadBalancers") {
                Ok(out) => out.load_balancers().to_vec(),
                Err(e) if e.code() == Some("LoadBalancerNotFound") => Vec::new(),
                Err(e) => return Err(e),
            };
        owned_by_name(aws, &self.name, self.logical(), found).await
    }

    /// ELBv2 has no client tokens: the name makes the call idempotent on AWS.
    async fn create(&self, aws: &Aws, _: Attempt) -> Result<LoadBalancer, CloudError> {
        let out = aws
            .elb()
            .create_load_balancer()
            .name(&self.name)
            .subnets(self.subnet_id.to_string())
            .scheme(LoadBalancerSchemeEnum::InternetFacing)
            .r#type(LoadBalancerTypeEnum::Network)
            .ip_address_type(IpAddressType::Ipv4)
            .set_tags(Some(aws.identity().elb_tags(self.logical(), &self.name)))
            .send()
            .await
            .api("CreateLoadBalancer")?;
        out.load_balancers().first().cloned().answered(self.logical())
    }

    fn diff(&self, actual: Option<&LoadBalancer>, _: &()) -> Vec<Change<NoFix>> {
        let Some(balancer) = actual else { return Vec::new() };
        let fixed = |field, now: Option<&str>, wanted: &str| {
            let now = now.unwrap_or("?");
            (now != wanted).then(|| {
                Change::Immutable(Immutable {
                    field,
                    now: now.to_string(),
                    wanted: wanted.to_string(),
                    way_forward: "delete it (`groundup down --yes`, then `groundup up`)".into(),
                })
            })
        };
        let scheme =
            fixed("scheme", balancer.scheme().map(|s| s.as_str()), LoadBalancerSchemeEnum::InternetFacing.as_str());
        let kind = fixed("type", balancer.r#type().map(|t| t.as_str()), LoadBalancerTypeEnum::Network.as_str());
        scheme.into_iter().chain(kind).collect()
    }

    async fn apply(&self, _: &Aws, _: &str, fix: &NoFix, _: bool) -> Result<(), CloudError> {
        match *fix {}
    }
}

pub(super) struct WantedListener {
    pub balancer_arn: Ref,
    pub group_arn: Ref,
    pub port: i32,
}

/// A listener found on the API port must forward to the cluster's target group and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Forward(Ref);

impl std::fmt::Display for Forward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "forward to {}", self.0)
    }
}

impl Resource for WantedListener {
    const FIXES_TAKE_DRY_RUN: bool = false;
    type Described = Listener;
    type Observed = ();
    type Fix = Forward;

    /// A listener is found by its load balancer and port.
    async fn find(&self, aws: &Aws) -> Result<Vec<Listener>, CloudError> {
        let listeners = aws
            .read_existing(&self.balancer_arn, |balancer_arn| {
                retry_eventual(move || async move {
                    let request = aws.elb().describe_listeners().load_balancer_arn(balancer_arn);
                    let out = request.send().await.api("DescribeListeners")?;
                    Ok(out.listeners().to_vec())
                })
            })
            .await?;
        Ok(listeners.unwrap_or_default().into_iter().filter(|l| l.port() == Some(self.port)).collect())
    }

    async fn create(&self, aws: &Aws, _: Attempt) -> Result<Listener, CloudError> {
        let out = aws
            .elb()
            .create_listener()
            .load_balancer_arn(self.balancer_arn.to_string())
            .protocol(ProtocolEnum::Tcp)
            .port(self.port)
            .default_actions(forward(&self.group_arn))
            .set_tags(Some(aws.identity().elb_tags(self.logical(), &aws.identity().cluster)))
            .send()
            .await
            .api("CreateListener")?;
        out.listeners().first().cloned().answered(self.logical())
    }

    fn diff(&self, actual: Option<&Listener>, _: &()) -> Vec<Change<Forward>> {
        let Some(listener) = actual else { return Vec::new() };
        match listener.default_actions().iter().filter_map(|a| a.target_group_arn()).collect::<Vec<_>>()[..] {
            [only] if self.group_arn == *only => Vec::new(),
            _ => vec![Change::InPlace(Forward(self.group_arn.clone()))],
        }
    }

    async fn apply(&self, aws: &Aws, id: &str, Forward(group_arn): &Forward, _: bool) -> Result<(), CloudError> {
        let request = aws.elb().modify_listener().listener_arn(id).default_actions(forward(group_arn));
        request.send().await.api("ModifyListener")?;
        Ok(())
    }
}

fn forward(group_arn: &Ref) -> Action {
    Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(group_arn.to_string()).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundup_cloud::lines;

    #[test]
    fn a_balancer_of_another_scheme_or_type_is_refused() {
        let wanted = WantedBalancer { name: "k8s".into(), subnet_id: Ref::Known("subnet-1".into()) };
        let diff =
            |scheme, kind| lines(&wanted.diff(Some(&LoadBalancer::builder().scheme(scheme).r#type(kind).build()), &()));
        assert!(diff(LoadBalancerSchemeEnum::InternetFacing, LoadBalancerTypeEnum::Network).is_empty());
        assert_eq!(
            diff(LoadBalancerSchemeEnum::Internal, LoadBalancerTypeEnum::Network),
            ["scheme internal -> internet-facing cannot change"]
        );
        assert_eq!(
            diff(LoadBalancerSchemeEnum::InternetFacing, LoadBalancerTypeEnum::Application),
            ["type application -> network cannot change"]
        );
    }

    #[test]
    fn a_listener_forwards_to_the_target_group_alone() {
        let known = |arn: &str| Ref::Known(arn.into());
        let wanted = WantedListener { balancer_arn: known("lb"), group_arn: known("tg-1"), port: 6443 };
        let forwarding = |groups: &[&str]| {
            let actions = groups.iter().map(|g| forward(&known(g))).collect();
            lines(&wanted.diff(Some(&Listener::builder().set_default_actions(Some(actions)).build()), &()))
        };
        assert!(forwarding(&["tg-1"]).is_empty());
        assert_eq!(forwarding(&["tg-2"]), ["forward to tg-1"]);
        assert_eq!(forwarding(&["tg-1", "tg-2"]), ["forward to tg-1"]);
        assert!(lines(&wanted.diff(None, &())).is_empty(), "a new listener is created forwarding");
    }
}
