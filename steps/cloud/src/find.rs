use std::future::Future;

use crate::error::CloudError;

/// An AWS resource as a describe call returns it.
pub trait HasId {
    fn id(&self) -> String;
}

macro_rules! has_id {
    ($($ty:ty => $getter:ident),* $(,)?) => {
        $(impl HasId for $ty {
            fn id(&self) -> String {
                self.$getter().unwrap_or_default().to_string()
            }
        })*
    };
}

has_id! {
    aws_sdk_ec2::types::Vpc => vpc_id,
    aws_sdk_ec2::types::DhcpOptions => dhcp_options_id,
    aws_sdk_ec2::types::Subnet => subnet_id,
    aws_sdk_ec2::types::InternetGateway => internet_gateway_id,
    aws_sdk_ec2::types::RouteTable => route_table_id,
    aws_sdk_ec2::types::SecurityGroup => group_id,
    aws_sdk_ec2::types::Instance => instance_id,
    aws_sdk_elasticloadbalancingv2::types::LoadBalancer => load_balancer_arn,
    aws_sdk_elasticloadbalancingv2::types::TargetGroup => target_group_arn,
    aws_sdk_elasticloadbalancingv2::types::Listener => listener_arn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Found,
    Created,
}

/// The one way a step gets its resource: look it up by the cluster's identity tags, adopt it
/// if there is exactly one, create it (tagged at creation) if there is none, and refuse to
/// guess if there are several.
pub async fn find_or_create<T, Find, FindFut, Create, CreateFut>(
    kind: &str,
    logical: &str,
    find: Find,
    create: Create,
) -> Result<(T, Outcome), CloudError>
where
    T: HasId,
    Find: FnOnce() -> FindFut,
    FindFut: Future<Output = Result<Vec<T>, CloudError>>,
    Create: FnOnce() -> CreateFut,
    CreateFut: Future<Output = Result<T, CloudError>>,
{
    let mut found = find().await?;
    match found.len() {
        0 => {
            let created = create().await?;
            tracing::info!("{logical}: created {kind} {}", created.id());
            Ok((created, Outcome::Created))
        }
        1 => {
            let existing = found.remove(0);
            tracing::info!("{logical}: found {kind} {}", existing.id());
            Ok((existing, Outcome::Found))
        }
        _ => Err(CloudError::Ambiguous {
            kind: kind.into(),
            logical: logical.into(),
            ids: found.iter().map(HasId::id).collect(),
        }),
    }
}
