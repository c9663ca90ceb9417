use std::future::Future;
use std::time::Duration;

use groundup_contracts::kinds::{Kind, TagApi};
use groundup_contracts::Ref;

use aws_sdk_ec2::types as ec2;
use aws_sdk_elasticloadbalancingv2::types as elb;

use crate::client::Aws;
use crate::error::{AwsResultExt, CloudError};

/// An AWS resource type, as a describe call returns it: the row of the kinds table it is, its
/// id, and how the cluster's ones are found.
pub trait AwsResource: Sized + Clone {
    const KIND: Kind;
    fn id(&self) -> String;
    /// The cluster's resources of this type named `logical` in their tags, found by those tags
    /// (EC2 describe calls filter by them). A kind found another way (through what it hangs
    /// off, or listed once for many) declares its own `Resource::find` instead, so this is
    /// reached only by a kind that declares neither: a mistake its step's first run shows.
    fn find_tagged(_: &Aws, _: &str) -> impl Future<Output = Result<Vec<Self>, CloudError>> {
        async { unimplemented!("{}s have no describe call by tags: their Resource declares find", Self::KIND.label()) }
    }
}

/// One row per SDK type: its kind, the getter of its id, and for types an
/// EC2 describe call finds by tags, that call, its list and its action name.
macro_rules! aws_resources {
    ($($ty:ty => $kind:ident, $getter:ident $(, $describe:ident -> $list:ident $action:literal)?;)*) => {
        $(impl AwsResource for $ty {
            const KIND: Kind = Kind::$kind;
            fn id(&self) -> String {
                self.$getter().unwrap_or_default().to_string()
            }
            $(async fn find_tagged(aws: &Aws, logical: &str) -> Result<Vec<Self>, CloudError> {
                let filters = Some(aws.identity.filters(logical));
                let out = aws.ec2.$describe().set_filters(filters).send().await.api($action)?;
                Ok(out.$list().to_vec())
            })?
        })*
    };
}

aws_resources! {
    ec2::Vpc => Vpc, vpc_id, describe_vpcs -> vpcs "DescribeVpcs";
    ec2::DhcpOptions => DhcpOptions, dhcp_options_id,
        describe_dhcp_options -> dhcp_options "DescribeDhcpOptions";
    ec2::Subnet => Subnet, subnet_id, describe_subnets -> subnets "DescribeSubnets";
    ec2::InternetGateway => InternetGateway, internet_gateway_id,
        describe_internet_gateways -> internet_gateways "DescribeInternetGateways";
    ec2::RouteTable => RouteTable, route_table_id,
        describe_route_tables -> route_tables "DescribeRouteTables";
    ec2::SecurityGroup => SecurityGroup, group_id,
        describe_security_groups -> security_groups "DescribeSecurityGroups";
    ec2::KeyPairInfo => KeyPair, key_name, describe_key_pairs -> key_pairs "DescribeKeyPairs";
    ec2::Instance => Instance, instance_id;
    elb::LoadBalancer => LoadBalancer, load_balancer_arn;
    elb::TargetGroup => TargetGroup, target_group_arn;
    elb::Listener => Listener, listener_arn;
}

/// What find-or-create and [`crate::converge`] give back: the resource AWS describes, or, in a
/// plan, one the plan would create, which has no description yet, only a reference.
#[derive(Debug, Clone)]
pub enum Converged<T> {
    Existing(T),
    /// An existing resource with changes a plan records but does not make: what they would
    /// change is not in its description yet.
    Changing(T),
    /// The logical name of a resource the plan would create.
    Planned(String),
}

impl<T: AwsResource> Converged<T> {
    /// The reference a section records.
    pub fn id(&self) -> Ref {
        match self {
            Converged::Existing(found) | Converged::Changing(found) => Ref::Known(found.id()),
            Converged::Planned(logical) => Ref::Planned(logical.clone()),
        }
    }

    /// The description, of a resource that exists.
    pub fn existing(&self) -> Option<&T> {
        match self {
            Converged::Existing(found) | Converged::Changing(found) => Some(found),
            Converged::Planned(_) => None,
        }
    }

    /// A value the resource has once the plan is applied (a DNS name, an association a change
    /// makes): planned under `logical` while the plan only records what would give it one; an
    /// error if AWS described a resource without it.
    pub fn value(
        &self,
        logical: &str,
        what: &'static str,
        get: impl FnOnce(&T) -> Option<&str>,
    ) -> Result<Ref, CloudError> {
        match (self.existing().and_then(get), self) {
            (Some(value), _) => Ok(Ref::Known(value.to_string())),
            (None, Converged::Existing(_)) => Err(CloudError::Incomplete { logical: logical.to_string(), what }),
            (None, Converged::Changing(_) | Converged::Planned(_)) => Ok(Ref::Planned(logical.to_string())),
        }
    }
}

/// The resource a step wants, as find-or-create needs to know it.
#[derive(Debug, Clone)]
pub struct Wanted<'a> {
    kind: &'a str,
    logical: &'a str,
    recorded: Option<&'a Ref>,
    client_token: String,
    dry_run: bool,
}

impl<'a> Wanted<'a> {
    /// A resource of `kind` (named in plans and logs by its label), known to the cluster by
    /// the `logical` name in its tags. EC2 creates honour DryRun; ELBv2 has none.
    pub fn new(kind: Kind, logical: &'a str) -> Self {
        let dry_run = kind.tag_api() == TagApi::Ec2;
        Wanted { kind: kind.label(), logical, recorded: None, client_token: String::new(), dry_run }
    }

    /// The id the context already records for it, which tells adopting from leaving.
    pub fn recorded(mut self, id: Option<&'a Ref>) -> Self {
        self.recorded = id;
        self
    }

    /// The idempotency token of a create call that takes one.
    pub fn client_token(mut self, token: String) -> Self {
        self.client_token = token;
        self
    }
}

/// How one create call is to be sent.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Only ask whether the call would be permitted (a plan against real AWS).
    pub dry_run: bool,
    /// The journaled idempotency token (empty for calls that take none).
    pub client_token: String,
}

/// The one way a step gets its resource: look it up by the cluster's identity tags, adopt it
/// if there is exactly one, create it (tagged at creation, journaled first) if there is none,
/// and refuse to guess if there are several. In a plan nothing is created: the would-be
/// resource is recorded and returned as planned.
pub async fn find_or_create<T, Find, FindFut, Create, CreateFut>(
    aws: &Aws,
    wanted: Wanted<'_>,
    find: Find,
    create: Create,
) -> Result<Converged<T>, CloudError>
where
    T: AwsResource,
    Find: Fn() -> FindFut,
    FindFut: Future<Output = Result<Vec<T>, CloudError>>,
    Create: FnOnce(Attempt) -> CreateFut,
    CreateFut: Future<Output = Result<T, CloudError>>,
{
    let Wanted { kind, logical, .. } = wanted;
    let pending = aws.journal.pending(logical);
    let mut found = find().await?;
    if found.is_empty() && pending.is_some() {
        tracing::warn!("{logical}: a killed run was creating this {kind}; looking for it again before creating it");
        found = look_again(aws, &find).await?;
    }
    match found.len() {
        0 => {
            let client_token = pending.map(|e| e.client_token).unwrap_or(wanted.client_token);
            create_one(aws, kind, logical, wanted.dry_run, client_token, create).await
        }
        1 => {
            let existing = found.remove(0);
            let id = existing.id();
            aws.journal.settle(logical);
            match aws.gate.plan() {
                Some(plan) => plan.found(kind, logical, &id, wanted.recorded.is_some_and(|r| *r == *id)),
                None => aws.gate.log(logical, format_args!("found {kind} {id}")),
            }
            Ok(Converged::Existing(existing))
        }
        _ => Err(CloudError::Ambiguous {
            kind: kind.into(),
            logical: logical.into(),
            ids: found.iter().map(AwsResource::id).collect(),
        }),
    }
}

async fn create_one<T, Create, CreateFut>(
    aws: &Aws,
    kind: &str,
    logical: &str,
    dry_run: bool,
    client_token: String,
    create: Create,
) -> Result<Converged<T>, CloudError>
where
    T: AwsResource,
    Create: FnOnce(Attempt) -> CreateFut,
    CreateFut: Future<Output = Result<T, CloudError>>,
{
    if let Some(plan) = aws.gate.plan() {
        plan.missing(kind, logical);
        if dry_run && aws.target.is_real_aws() {
            aws.check_dry_run(logical, create(Attempt { dry_run: true, client_token }).await);
        }
        return Ok(Converged::Planned(logical.to_string()));
    }
    aws.journal.begin(kind, logical, &client_token)?;
    let created = create(Attempt { dry_run: false, client_token }).await?;
    aws.journal.settle(logical);
    aws.gate.log(logical, format_args!("created {kind} {}", created.id()));
    Ok(Converged::Existing(created))
}

/// Real AWS may take seconds to list what it just created; the emulator answers at once, so
/// there a second look would only see the same.
async fn look_again<T, Find, FindFut>(aws: &Aws, find: &Find) -> Result<Vec<T>, CloudError>
where
    Find: Fn() -> FindFut,
    FindFut: Future<Output = Result<Vec<T>, CloudError>>,
{
    if !aws.target.is_real_aws() {
        return Ok(Vec::new());
    }
    for seconds in [1, 2, 4] {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let found = find().await?;
        if !found.is_empty() {
            return Ok(found);
        }
    }
    Ok(Vec::new())
}
