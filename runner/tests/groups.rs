//! The two security groups on the emulator: each node in the group of its role, a cluster with
//! the course's single group moved in place (and converging from a kill at any moment of the
//! move), and `down` leaving no group.

use std::collections::BTreeMap;

use groundup_contracts::flows::NetworkPolicy;
use groundup_contracts::kinds::Kind;
use groundup_contracts::network::GroupRole;
use groundup_contracts::plan::{Action, PlanSection};
use groundup_testkit::{
    assert_success, endpoint, kill_up_right_after, retarget, wanted_rules, FaultProxy, TestCluster,
};

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

/// Each live instance of the cluster's security groups (its own list, which the emulator keeps
/// as AWS does), by the instance's logical name.
fn instance_groups(cluster: &TestCluster) -> BTreeMap<String, Vec<String>> {
    block_on(async {
        let ec2 = groundup_testkit::client(endpoint()).await;
        let ours = aws_sdk_ec2::types::Filter::builder().name("tag:groundup:cluster").values(&cluster.name).build();
        let live = aws_sdk_ec2::types::Filter::builder().name("instance-state-name").values("running").build();
        let out = ec2.describe_instances().filters(ours).filters(live).send().await.unwrap();
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| {
                let logical = i.tags().iter().find(|t| t.key() == Some("groundup:resource")).unwrap().value().unwrap();
                (logical.to_string(), groundup_network_groups(i))
            })
            .collect()
    })
}

/// As `groundup check` reads them: the instance's own list, or its interface's where the
/// emulator leaves its own empty.
fn groundup_network_groups(instance: &aws_sdk_ec2::types::Instance) -> Vec<String> {
    let own: Vec<String> = instance.security_groups().iter().filter_map(|g| g.group_id().map(String::from)).collect();
    if !own.is_empty() {
        return own;
    }
    let interface = instance.network_interfaces().first().unwrap();
    interface.groups().iter().filter_map(|g| g.group_id().map(String::from)).collect()
}

/// Every group in the cluster's VPC, tagged or not: the default one and the cluster's.
fn groups_in_vpc(vpc: &str) -> usize {
    block_on(async {
        let ec2 = groundup_testkit::client(endpoint()).await;
        let in_vpc = aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(vpc).build();
        ec2.describe_security_groups().filters(in_vpc).send().await.unwrap().security_groups().len()
    })
}

/// The cluster is as the policy wants it: two groups with exactly its rules, each master in
/// the masters' group alone and each worker in the nodes' group alone, and `check` passes.
fn assert_two_groups(cluster: &TestCluster, what: &str) {
    let state = cluster.state();
    let groups = state.sg.clone().unwrap().groups;
    assert_eq!(groups.iter().map(|g| g.role).collect::<Vec<_>>(), [GroupRole::Masters, GroupRole::Nodes], "{what}");
    assert_eq!(cluster.inventory().count(Kind::SecurityGroup), 2, "{what}: duplicate or orphaned groups");
    assert_eq!(groups_in_vpc(&state.vpc.unwrap().id.to_string()), 3, "{what}: the default group and the two");
    assert_eq!(cluster.group_rules(), wanted_rules(&state.params), "{what}");
    let (masters, nodes) = (groups[0].id.to_string(), groups[1].id.to_string());
    let placed = instance_groups(cluster);
    assert_eq!(placed.len(), 6, "{what}: {placed:?}");
    for (logical, groups) in &placed {
        let wanted = if logical.starts_with("master-") { &masters } else { &nodes };
        assert_eq!(groups, std::slice::from_ref(wanted), "{what}: {logical}");
    }
    let check = cluster.groundup(&["check"]);
    assert_success(&check, &format!("check: {what}"));
}

#[test]
fn a_new_cluster_has_a_group_per_role() {
    let cluster = TestCluster::new("groups");
    assert_success(&cluster.up(&["--to", "compute"]), "up");
    assert_two_groups(&cluster, "a new cluster");
}

/// A new cluster's groups take five calls: one listing of the cluster's groups, the two
/// groups made at once, then each one's rules (those naming the other group included) in one
/// call; no second pass, no describe of what was just made, no instance to look for. And a
/// run killed once a group is made (with or without the other) converges to exactly the two.
#[test]
fn a_new_cluster_s_groups_take_five_calls_and_a_kill_between_them_converges() {
    let cluster = TestCluster::new("groupcalls");
    assert_success(&cluster.up(&["--to", "routes"]), "up --to routes");
    let proxy = FaultProxy::start(endpoint(), 0.0, 0);
    cluster.edit_state(|state| retarget(state, &proxy.endpoint));
    assert_success(&cluster.groundup(&["up", "--to", "sg"]), "up --to sg");
    let mut actions = proxy.actions();
    actions.sort();
    assert_eq!(
        actions,
        [
            "AuthorizeSecurityGroupIngress",
            "AuthorizeSecurityGroupIngress",
            "CreateSecurityGroup",
            "CreateSecurityGroup",
            "DescribeSecurityGroups"
        ],
        "sg's calls on a new cluster"
    );
    cluster.edit_state(|state| retarget(state, endpoint()));
    assert_success(&cluster.up(&["--to", "compute"]), "up --to compute");
    assert_two_groups(&cluster, "a new cluster, through the proxy");

    let killed = TestCluster::new("groupkill");
    assert_success(&killed.up(&["--to", "routes"]), "up --to routes");
    kill_up_right_after(&killed, "CreateSecurityGroup", &["--to", "compute"]);
    let made = killed.inventory().count(Kind::SecurityGroup);
    assert!((1..=2).contains(&made), "one or both groups made before the kill: {made}");
    assert_success(&killed.up(&["--to", "compute"]), "up after the kill");
    assert_two_groups(&killed, "after a kill between the two groups");
}

/// A cluster built with the course's one group (as every cluster was before there were two)
/// moves in place: the plan shows the move, and a run killed after the first group is made,
/// then one killed after the first instance is moved, converge to exactly two groups.
#[test]
fn a_cluster_with_one_group_moves_to_two_and_a_killed_move_converges() {
    let cluster = TestCluster::new("groupmove");
    assert_success(&cluster.up(&["--to", "compute", "--course-network"]), "up --course-network");
    let old = cluster.state().sg.unwrap().groups[0].id.to_string();
    let groups = instance_groups(&cluster);
    assert!(groups.values().all(|g| g == std::slice::from_ref(&old)), "{groups:?}");
    cluster.edit_state(|state| state.params.network = NetworkPolicy::Kubernetes);

    let planned = cluster.groundup(&["up", "--plan", "--to", "compute"]);
    assert_success(&planned, "up --plan");
    let planned: PlanSection = serde_json::from_slice(&planned.stdout).unwrap();
    let moving: Vec<(&str, Action)> = planned
        .resources
        .iter()
        .filter(|r| r.action != Action::Leave)
        .map(|r| (r.resource.as_str(), r.action))
        .collect();
    assert_eq!(
        moving,
        [
            ("sg-masters", Action::Create),
            ("sg-nodes", Action::Create),
            ("master-0", Action::Change),
            ("master-1", Action::Change),
            ("master-2", Action::Change),
            ("worker-0", Action::Change),
            ("worker-1", Action::Change),
            ("worker-2", Action::Change),
            ("sg", Action::Delete),
        ],
        "{planned:#?}"
    );
    let master = planned.resources.iter().find(|r| r.resource == "master-0").unwrap();
    assert_eq!(master.changes, ["security groups become (new sg-masters)"]);
    assert_eq!(
        instance_groups(&cluster).values().next().unwrap(),
        std::slice::from_ref(&old),
        "the plan changed something"
    );

    // Killed with a new group made (the two are made at once: maybe both), nothing moved.
    kill_up_right_after(&cluster, "CreateSecurityGroup", &["--to", "compute"]);
    let made = cluster.inventory().count(Kind::SecurityGroup);
    assert!((2..=3).contains(&made), "the old group and one or both new ones: {made}");
    let groups = instance_groups(&cluster);
    assert!(groups.values().all(|g| g == std::slice::from_ref(&old)), "moved before the kill: {groups:?}");
    // Killed with the first instance moved, the old group still there.
    kill_up_right_after(&cluster, "ModifyInstanceAttribute", &["--to", "compute"]);
    let groups = instance_groups(&cluster);
    assert!(groups.values().any(|g| g != std::slice::from_ref(&old)), "nothing moved: {groups:?}");
    assert_eq!(cluster.inventory().count(Kind::SecurityGroup), 3, "the old group and the two");

    assert_success(&cluster.up(&["--to", "compute"]), "up after the kills");
    assert_two_groups(&cluster, "after the move");
    let planned = cluster.plan(&["--to", "compute"]);
    assert!(planned.resources.iter().all(|r| r.action == Action::Leave), "work left: {planned:?}");
}

/// The two groups name each other, which AWS refuses to delete: `down` revokes those rules
/// before it deletes a group, and leaves nothing (the emulator deletes a named group anyway,
/// so the order is read from the calls).
#[test]
fn down_revokes_the_rules_naming_groups_then_deletes_both() {
    let cluster = TestCluster::new("groupdown");
    assert_success(&cluster.up(&["--to", "compute"]), "up");
    let proxy = FaultProxy::start(endpoint(), 0.0, 0);
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cluster.state_path()).unwrap()).unwrap();
    state["target"]["endpoint"] = proxy.endpoint.clone().into();
    std::fs::write(cluster.state_path(), state.to_string()).unwrap();

    assert_success(&cluster.groundup(&["down", "--yes"]), "down --yes");
    let left = cluster.inventory();
    assert!(left.counts().values().all(|n| *n == 0), "left behind: {left:?}");
    let actions = proxy.actions();
    let position = |action: &str| actions.iter().position(|a| a == action);
    let (revoked, deleted) = (position("RevokeSecurityGroupIngress"), position("DeleteSecurityGroup"));
    assert!(revoked.is_some() && revoked < deleted, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| *a == "DeleteSecurityGroup").count(), 2, "{actions:?}");
}
