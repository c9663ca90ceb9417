//! Course section "Creating the Security Groups", as kops has them: `masters.<cluster>` and
//! `nodes.<cluster>`, each with exactly the rules of the policy table
//! (`groundup_contracts::flows`) for the nodes it holds, naming the other group by id where a
//! flow comes from the control plane or the nodes; or the course's one group with its five
//! rules (`init --course-network`). The admin range adds SSH and the API port to what the
//! cluster needs.
//!
//! A cluster whose groups are not the policy's (one built with the course's group, or the other
//! way round) moves in place: the wanted groups are made, each instance of the cluster is
//! put in the group of its role (`ModifyInstanceAttribute --groups`), then the groups no longer
//! wanted are deleted. Every group is found by its tags, so a run killed at any moment
//! converges when run again, with no duplicate and no orphan.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};

use aws_sdk_ec2::types::{Filter, Instance, IpPermission, IpRange, ResourceType, SecurityGroup, UserIdGroupPair};
use futures_util::future::try_join_all;
use groundup_cloud::{
    cluster_groups, converge_obtained, converge_parts, obtain, retry_eventual, revoke_group_references, run_aws_step,
    Attempt, Aws, AwsResultExt, CloudError, Parts, RESOURCE_TAG,
};
use groundup_cloud::{AwsResource, Change, Resource};
use groundup_contracts::context::need;
use groundup_contracts::infra::Role as NodeRole;
use groundup_contracts::kinds::Kind;
use groundup_contracts::network::{GroupRole, GroupSection, IngressRule, RuleSource, SgSection};
use groundup_contracts::{Ref, Section};
use groundup_network::instance_groups;
use groundup_runtime::harness::{NoArgs, StepInfo};

fn main() -> ExitCode {
    let info = StepInfo {
        name: "sg",
        about: "Create (or find) the security groups and converge them to the rules the cluster's flows need",
    };
    run_aws_step(info, |mut context, NoArgs {}, aws| async move {
        if context.params.admin_cidr.prefix_len() == 0 {
            tracing::warn!("sg: SSH and the API port are open to the whole internet (admin_cidr 0.0.0.0/0); `groundup up --admin-cidr YOUR.IP/32` restricts them (on a pipeline by hand, `groundup init --admin-cidr`)");
        }
        let vpc_id = need(&context.vpc, Section::Vpc)?.id.clone();
        let wanted = context.params.security_groups();
        let found = our_groups(&aws).await?;
        let recorded = |role: GroupRole| -> Option<Ref> {
            let groups = context.sg.as_ref().map_or(&[][..], |s| s.groups.as_slice());
            groups.iter().find(|g| g.role == role).map(|g| g.id.clone())
        };
        // A rule names its peer by id, so every group is found or made first, all at once and
        // with no rule yet; then each gets its rules, in one call per group, all at once.
        let no_peers = BTreeMap::new();
        let groups: Vec<WantedGroup> = wanted
            .iter()
            .map(|(role, rules)| {
                let listed = found.iter().filter(|(r, _)| r == role).map(|(_, g)| g.clone()).collect();
                WantedGroup::new(&context.cluster.name, &vpc_id, *role, rules, &no_peers).listed(listed)
            })
            .collect();
        let recorded: Vec<Option<Ref>> = groups.iter().map(|group| recorded(group.role)).collect();
        let obtained =
            try_join_all(groups.iter().zip(&recorded).map(|(group, id)| obtain(&aws, group, id.as_ref()))).await?;
        let ids: BTreeMap<GroupRole, Ref> = groups.iter().zip(&obtained).map(|(g, got)| (g.role, got.id())).collect();
        let rules = groups.iter().zip(obtained).map(|(group, got)| {
            let group = WantedGroup::new(&context.cluster.name, &vpc_id, group.role, group.rules, &ids);
            let aws = &aws;
            async move { converge_obtained(aws, &group, got).await }
        });
        try_join_all(rules).await?;
        let retired: Vec<&(GroupRole, SecurityGroup)> =
            found.iter().filter(|(role, _)| !wanted.iter().any(|(w, _)| w == role)).collect();
        let ours: BTreeSet<String> = found.iter().filter_map(|(_, g)| g.group_id().map(String::from)).collect();
        // Only the instances to move are planned: one already in its groups is left unlisted.
        // With none of the cluster's groups found there is none to move: `compute` launches
        // every instance into them, and AWS deletes no group an instance is in.
        let instances = match found.is_empty() {
            true => Vec::new(),
            false => members(&aws, &ids, &ours).await?,
        };
        for member in instances.iter().filter(|m| !m.diff(&m.now).is_empty()) {
            converge_parts(&aws, member).await?;
        }
        for (role, group) in retired {
            retire(&aws, *role, group).await?;
        }
        let groups = wanted
            .into_iter()
            .map(|(role, ingress)| GroupSection {
                role,
                id: ids[&role].clone(),
                name: role.group_name(&context.cluster.name),
                ingress,
            })
            .collect();
        context.sg = Some(SgSection { groups });
        Ok(context)
    })
}

/// Every security group tagged as one of the cluster's groups, with its role.
async fn our_groups(aws: &Aws) -> Result<Vec<(GroupRole, SecurityGroup)>, CloudError> {
    Ok(cluster_groups(aws)
        .await?
        .into_iter()
        .filter_map(|g| {
            let role = GroupRole::from_logical(g.tags().iter().find(|t| t.key() == Some(RESOURCE_TAG))?.value()?)?;
            Some((role, g))
        })
        .collect())
}

/// A group no longer wanted (the course's, once the cluster has two; or the two, with
/// `--course-network`): deleted once no instance is in it, its rules naming groups revoked
/// first, since AWS keeps a group that another group's rule names.
async fn retire(aws: &Aws, role: GroupRole, group: &SecurityGroup) -> Result<(), CloudError> {
    let id = group.group_id().unwrap_or_default();
    let what = format!("delete {id} ({}), which no instance is in any more", group.group_name().unwrap_or_default());
    aws.delete(Kind::SecurityGroup, role.logical(), id, &what, |dry_run| async move {
        if !dry_run {
            revoke_group_references(aws, id).await?;
        }
        aws.ec2().delete_security_group().dry_run(dry_run).group_id(id).send().await.api("DeleteSecurityGroup")
    })
    .await
}

struct WantedGroup<'a> {
    role: GroupRole,
    name: String,
    vpc_id: &'a Ref,
    rules: &'a [IngressRule],
    /// The ids of the other groups its rules may name.
    peers: &'a BTreeMap<GroupRole, Ref>,
    /// The groups of its role the step listed at its start, for its first look: a second one
    /// (a killed run's create, on real AWS) asks AWS again.
    listed: Mutex<Option<Vec<SecurityGroup>>>,
}

impl<'a> WantedGroup<'a> {
    fn new(
        cluster: &str,
        vpc_id: &'a Ref,
        role: GroupRole,
        rules: &'a [IngressRule],
        peers: &'a BTreeMap<GroupRole, Ref>,
    ) -> Self {
        WantedGroup { role, name: role.group_name(cluster), vpc_id, rules, peers, listed: Mutex::default() }
    }

    fn listed(self, groups: Vec<SecurityGroup>) -> Self {
        WantedGroup { listed: Mutex::new(Some(groups)), ..self }
    }

    fn description(&self) -> &'static str {
        match self.role {
            GroupRole::Cluster => "Kubernetes cluster security group",
            GroupRole::Masters => "Kubernetes control plane (masters) security group",
            GroupRole::Nodes => "Kubernetes nodes (workers) security group",
        }
    }

    /// The id a rule of this group names for `role`: its own, or a peer's.
    fn id_of(&self, role: GroupRole, own: &str) -> Option<String> {
        match role == self.role {
            true => Some(own.to_string()),
            false => self.peers.get(&role).map(ToString::to_string),
        }
    }
}

/// The group's rules: IPv4 ranges and the cluster's groups, and whole permissions of any
/// other kind (IPv6, prefix lists, a group not the cluster's), which the policy never has.
struct Rules {
    known: BTreeSet<IngressRule>,
    foreign: Vec<IpPermission>,
}

impl Rules {
    fn of(group: &SecurityGroup, role_of: impl Fn(&str) -> Option<GroupRole>) -> Rules {
        let mut rules = Rules { known: BTreeSet::new(), foreign: Vec::new() };
        for p in group.ip_permissions() {
            let (protocol, from_port, to_port) = (
                p.ip_protocol().unwrap_or_default().to_string(),
                p.from_port().unwrap_or(-1),
                p.to_port().unwrap_or(-1),
            );
            let bare = || IpPermission::builder().ip_protocol(&protocol).from_port(from_port).to_port(to_port);
            let mut known = |source| {
                rules.known.insert(IngressRule { protocol: protocol.clone(), from_port, to_port, source });
            };
            for range in p.ip_ranges() {
                if let Some(Ok(cidr)) = range.cidr_ip().map(str::parse) {
                    known(RuleSource::Cidr(cidr));
                }
            }
            let mut strangers = Vec::new();
            for pair in p.user_id_group_pairs() {
                match pair.group_id().and_then(&role_of) {
                    Some(role) => known(RuleSource::Group(role)),
                    None => strangers.push(pair.clone()),
                }
            }
            if !strangers.is_empty() {
                rules.foreign.push(bare().set_user_id_group_pairs(Some(strangers)).build());
            }
            if !p.ipv6_ranges().is_empty() {
                rules.foreign.push(bare().set_ipv6_ranges(Some(p.ipv6_ranges().to_vec())).build());
            }
            if !p.prefix_list_ids().is_empty() {
                rules.foreign.push(bare().set_prefix_list_ids(Some(p.prefix_list_ids().to_vec())).build());
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
            parts.push(format!("{foreign} rule(s) of kinds the policy does not use"));
        }
        write!(f, "{verb} {}", parts.join(", "))
    }
}

impl Resource for WantedGroup<'_> {
    type Described = SecurityGroup;
    type Observed = ();
    type Fix = Fix;

    fn logical(&self) -> &str {
        self.role.logical()
    }

    async fn create(&self, aws: &Aws, attempt: Attempt) -> Result<SecurityGroup, CloudError> {
        let out = retry_eventual(|| async {
            aws.ec2()
                .create_security_group()
                .dry_run(attempt.dry_run)
                .group_name(&self.name)
                .description(self.description())
                .vpc_id(self.vpc_id.to_string())
                .tag_specifications(aws.identity().tag_spec(ResourceType::SecurityGroup, self.logical(), &self.name))
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
        let id = out
            .group_id()
            .ok_or_else(|| CloudError::Incomplete { logical: self.logical().into(), what: "group id" })?;
        // A new group has no ingress rule, and its id is all the compare reads of it: it is
        // not described again (real AWS may not list it yet anyway).
        Ok(SecurityGroup::builder()
            .group_id(id)
            .group_name(&self.name)
            .description(self.description())
            .vpc_id(self.vpc_id.to_string())
            .set_tags(Some(aws.identity().ec2_tags(self.logical(), &self.name)))
            .build())
    }

    /// The groups of its role listed at the step's start, on the first look.
    async fn find(&self, aws: &Aws) -> Result<Vec<SecurityGroup>, CloudError> {
        let listed = self.listed.lock().unwrap_or_else(PoisonError::into_inner).take();
        match listed {
            Some(groups) => Ok(groups),
            None => SecurityGroup::find_tagged(aws, self.logical()).await,
        }
    }

    /// A rule naming a group whose id is not known (none, once every group is found or made
    /// first) is left out.
    fn diff(&self, found: Option<&SecurityGroup>, _: &()) -> Vec<Change<Fix>> {
        let own = found.and_then(SecurityGroup::group_id).map(String::from);
        let own_ref = own.clone().map_or_else(|| Ref::Planned(self.logical().into()), Ref::Known);
        let role_of = |id: &str| {
            (own.as_deref() == Some(id))
                .then_some(self.role)
                .or_else(|| self.peers.iter().find(|(_, peer)| peer.known() == Some(id)).map(|(role, _)| *role))
        };
        let actual = found.map_or(Rules { known: BTreeSet::new(), foreign: Vec::new() }, |g| Rules::of(g, role_of));
        let wanted: BTreeSet<&IngressRule> = self.rules.iter().collect();
        let extra: Vec<IngressRule> = actual.known.iter().filter(|r| !wanted.contains(r)).cloned().collect();
        let missing: Vec<IngressRule> = self
            .rules
            .iter()
            .filter(|r| !actual.known.contains(r))
            .filter(|r| match r.source {
                RuleSource::Group(role) => self.id_of(role, &own_ref.to_string()).is_some(),
                RuleSource::Cidr(_) => true,
            })
            .cloned()
            .collect();
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
        let permissions = |rules: &[IngressRule]| -> Vec<IpPermission> {
            rules.iter().filter_map(|rule| permission(rule, |role| self.id_of(role, id))).collect()
        };
        match fix {
            Fix::Revoke(rules, foreign) => {
                let mut permissions = permissions(rules);
                permissions.extend(foreign.iter().cloned());
                let request = aws.ec2().revoke_security_group_ingress().dry_run(dry_run).group_id(id);
                request.set_ip_permissions(Some(permissions)).send().await.api("RevokeSecurityGroupIngress")?;
            }
            Fix::Authorize(rules) => {
                let permissions = permissions(rules);
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

/// The permission of one rule; `None` for a group whose id is not known.
fn permission(rule: &IngressRule, id_of: impl Fn(GroupRole) -> Option<String>) -> Option<IpPermission> {
    let permission =
        IpPermission::builder().ip_protocol(&rule.protocol).from_port(rule.from_port).to_port(rule.to_port);
    Some(match rule.source {
        RuleSource::Cidr(cidr) => permission.ip_ranges(IpRange::builder().cidr_ip(cidr.to_string()).build()).build(),
        RuleSource::Group(role) => {
            permission.user_id_group_pairs(UserIdGroupPair::builder().group_id(id_of(role)?).build()).build()
        }
    })
}

/// The cluster's live instances, each with the groups it should be in: the group of its role
/// instead of any of the cluster's groups it is in, and every other group it is in kept (a
/// group someone else put it in is not groundup's to remove).
async fn members(
    aws: &Aws,
    ids: &BTreeMap<GroupRole, Ref>,
    ours: &BTreeSet<String>,
) -> Result<Vec<Member>, CloudError> {
    let cluster = aws.identity().cluster_filter();
    let live = Filter::builder()
        .name("instance-state-name")
        .set_values(Some(["pending", "running", "stopping", "stopped"].map(String::from).to_vec()))
        .build();
    let mut pages = aws.ec2().describe_instances().filters(cluster).filters(live).into_paginator().send();
    let mut members = Vec::new();
    while let Some(page) = pages.next().await {
        for instance in page.api("DescribeInstances")?.reservations().iter().flat_map(|r| r.instances()) {
            let Some(member) = Member::of(instance, ids, ours) else { continue };
            members.push(member);
        }
    }
    // In the nodes' order (master-0, ..., worker-0, ...), as plans list them.
    members.sort_by_key(|m| m.order);
    Ok(members)
}

/// One instance's security groups, as parts of it.
struct Member {
    logical: String,
    /// Masters first, then workers, each by index.
    order: (bool, u32),
    instance_id: Ref,
    now: Vec<String>,
    wanted: Vec<String>,
}

impl Member {
    fn of(instance: &Instance, ids: &BTreeMap<GroupRole, Ref>, ours: &BTreeSet<String>) -> Option<Member> {
        let logical = instance.tags().iter().find(|t| t.key() == Some(RESOURCE_TAG))?.value()?;
        let (role, index) = logical.split_once('-')?;
        let node_role = match role {
            "master" => NodeRole::Master,
            "worker" => NodeRole::Worker,
            _ => return None,
        };
        let group = ids.iter().find(|(role, _)| role.holds(node_role))?.1.to_string();
        let now = instance_groups(instance);
        let mut wanted: Vec<String> = now.iter().filter(|g| !ours.contains(*g) && **g != group).cloned().collect();
        wanted.insert(0, group);
        Some(Member {
            logical: logical.to_string(),
            order: (node_role == NodeRole::Worker, index.parse().ok()?),
            instance_id: Ref::Known(instance.instance_id()?.to_string()),
            now,
            wanted,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MoveTo(Vec<String>);

impl std::fmt::Display for MoveTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "security groups become {}", self.0.join(", "))
    }
}

impl Parts for Member {
    const LABEL: &'static str = "instance's security groups";
    const LOGICAL: &'static str = "instance-groups";
    type Found = String;
    type Fix = MoveTo;

    fn logical(&self) -> &str {
        &self.logical
    }

    fn parent(&self) -> &Ref {
        &self.instance_id
    }

    async fn find(&self, _: &Aws, _: &str) -> Result<Vec<String>, CloudError> {
        Ok(self.now.clone())
    }

    fn ours(_: &String) -> bool {
        true
    }

    fn diff(&self, found: &[String]) -> Vec<MoveTo> {
        let now: BTreeSet<&String> = found.iter().collect();
        match now == self.wanted.iter().collect() {
            true => Vec::new(),
            false => vec![MoveTo(self.wanted.clone())],
        }
    }

    async fn apply(&self, aws: &Aws, instance_id: &str, fix: &MoveTo, dry_run: bool) -> Result<(), CloudError> {
        let request = aws.ec2().modify_instance_attribute().dry_run(dry_run).instance_id(instance_id);
        request.set_groups(Some(fix.0.clone())).send().await.api("ModifyInstanceAttribute")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::Ipv6Range;
    use groundup_cloud::lines;

    fn rule(protocol: &str, port: i32, cidr: &str) -> IngressRule {
        IngressRule {
            protocol: protocol.into(),
            from_port: port,
            to_port: port,
            source: RuleSource::Cidr(cidr.parse().unwrap()),
        }
    }

    fn from_group(port: i32, role: GroupRole) -> IngressRule {
        IngressRule { protocol: "tcp".into(), from_port: port, to_port: port, source: RuleSource::Group(role) }
    }

    #[test]
    fn the_rules_become_exactly_the_wanted_set() {
        let vpc = Ref::Known("vpc-1".into());
        let peers = BTreeMap::new();
        let rules = [rule("tcp", 22, "203.0.113.7/32"), rule("tcp", 6443, "203.0.113.7/32")];
        let wanted = WantedGroup::new("k8s", &vpc, GroupRole::Cluster, &rules, &peers);
        // A group with these rules, as AWS describes them, and some of kinds the policy has not.
        let diff = |present: &[IngressRule], foreign: usize| {
            let ipv6 =
                IpPermission::builder().ip_protocol("-1").ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build());
            let mut permissions: Vec<IpPermission> = present.iter().filter_map(|r| permission(r, |_| None)).collect();
            permissions.extend(vec![ipv6.build(); foreign]);
            lines(&wanted.diff(Some(&SecurityGroup::builder().set_ip_permissions(Some(permissions)).build()), &()))
        };
        assert!(diff(&rules, 0).is_empty());
        assert_eq!(
            diff(&[rule("tcp", 22, "0.0.0.0/0"), rule("tcp", 6443, "203.0.113.7/32")], 0),
            ["authorize tcp 22 from 203.0.113.7/32", "revoke tcp 22 from 0.0.0.0/0"]
        );
        assert_eq!(diff(&rules, 2), ["revoke 2 rule(s) of kinds the policy does not use"]);
        assert_eq!(
            lines(&wanted.diff(None, &())),
            ["authorize tcp 22 from 203.0.113.7/32, tcp 6443 from 203.0.113.7/32"]
        );
    }

    /// A rule names a group by id: its own, or its peer's; a group not the cluster's is
    /// revoked, and a rule naming a group of unknown id is left out.
    #[test]
    fn rules_name_the_groups_by_id() {
        let vpc = Ref::Known("vpc-1".into());
        let rules = [from_group(2379, GroupRole::Masters), from_group(6443, GroupRole::Nodes)];
        let pair = |port: i32, id: &str| {
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(port)
                .to_port(port)
                .user_id_group_pairs(UserIdGroupPair::builder().group_id(id).build())
                .build()
        };
        let group = |permissions: Vec<IpPermission>| {
            SecurityGroup::builder().group_id("sg-m").set_ip_permissions(Some(permissions)).build()
        };
        let peers = BTreeMap::from([(GroupRole::Nodes, Ref::Known("sg-n".into()))]);
        let masters = WantedGroup::new("k8s", &vpc, GroupRole::Masters, &rules, &peers);
        assert!(lines(&masters.diff(Some(&group(vec![pair(2379, "sg-m"), pair(6443, "sg-n")])), &())).is_empty());
        assert_eq!(
            lines(&masters.diff(Some(&group(vec![pair(2379, "sg-n"), pair(6443, "sg-old")])), &())),
            [
                "authorize tcp 2379 from the masters' group, tcp 6443 from the nodes' group",
                "revoke tcp 2379 from the nodes' group, 1 rule(s) of kinds the policy does not use"
            ]
        );
        assert_eq!(
            permission(&rules[1], |role| masters.id_of(role, "sg-m")).unwrap().user_id_group_pairs()[0].group_id(),
            Some("sg-n")
        );
        // A rule naming a group whose id is not known is left out, never sent without its source.
        let alone = BTreeMap::new();
        let first = WantedGroup::new("k8s", &vpc, GroupRole::Masters, &rules, &alone);
        assert_eq!(lines(&first.diff(Some(&group(vec![])), &())), ["authorize tcp 2379 from the masters' group"]);
    }

    /// An instance goes into the group of its role instead of any of the cluster's, and keeps
    /// a group that is not the cluster's.
    #[test]
    fn an_instance_moves_to_the_group_of_its_role() {
        let ids = BTreeMap::from([
            (GroupRole::Masters, Ref::Known("sg-m".into())),
            (GroupRole::Nodes, Ref::Known("sg-n".into())),
        ]);
        let ours = BTreeSet::from(["sg-old".to_string(), "sg-m".to_string(), "sg-n".to_string()]);
        let instance = |logical: &str, groups: &[&str]| {
            let tag = aws_sdk_ec2::types::Tag::builder().key(RESOURCE_TAG).value(logical).build();
            let groups = groups.iter().map(|g| aws_sdk_ec2::types::GroupIdentifier::builder().group_id(*g).build());
            Instance::builder().instance_id("i-1").tags(tag).set_security_groups(Some(groups.collect())).build()
        };
        let moved = |logical: &str, groups: &[&str]| {
            let member = Member::of(&instance(logical, groups), &ids, &ours).unwrap();
            member.diff(&member.now).iter().map(ToString::to_string).collect::<Vec<_>>()
        };
        assert_eq!(moved("master-0", &["sg-old"]), ["security groups become sg-m"]);
        assert_eq!(moved("worker-2", &["sg-old", "sg-mine"]), ["security groups become sg-n, sg-mine"]);
        assert_eq!(moved("worker-2", &["sg-m"]), ["security groups become sg-n"]);
        assert!(moved("master-1", &["sg-m"]).is_empty());
        assert!(Member::of(&instance("bastion", &["sg-old"]), &ids, &ours).is_none());
    }
}
