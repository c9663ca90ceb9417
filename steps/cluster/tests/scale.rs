//! Changing a running cluster's shape on the emulator: the params in the state file change as
//! `groundup init --masters M --workers W` would lay them out, then nlb and compute run again.
//! After each change the instances, their IPs, the NLB targets and the subnet's reservations
//! are those of a fresh cluster of that shape, and nothing is left over.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use aws_sdk_ec2::types::Filter;
use groundup_cloud::{CLUSTER_TAG, RESOURCE_TAG};
use groundup_contracts::kinds::Kind;
use groundup_contracts::params::NodeLayout;
use groundup_contracts::plan::{Action, PlanSection};
use groundup_testkit::{assert_success, endpoint, TestCluster};

const CHANGE: &[&str] = &["--only", "nlb,compute"];

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

/// Rewrites the state file's node params for `masters` + `workers`, as the runner will.
fn reshape(cluster: &TestCluster, masters: u32, workers: u32) {
    let layout = NodeLayout { masters, workers, ..NodeLayout::course_default() };
    cluster.edit_state(|state| (state.params.masters, state.params.workers) = layout.expand().unwrap());
}

/// logical name -> private IP, as a fresh cluster of this shape has them.
fn expected_nodes(masters: u32, workers: u32) -> BTreeMap<String, Ipv4Addr> {
    let layout = NodeLayout { masters, workers, ..NodeLayout::course_default() };
    let (m, w) = layout.expand().unwrap();
    let named = |role: &str, specs: Vec<groundup_contracts::params::NodeSpec>| {
        specs.into_iter().enumerate().map(move |(i, s)| (format!("{role}-{i}"), s.private_ip)).collect::<Vec<_>>()
    };
    named("master", m).into_iter().chain(named("worker", w)).collect()
}

/// What the emulator holds for the cluster: live instances by logical name with their IPs,
/// the NLB's targets and the subnet's reservations.
struct Actual {
    instances: BTreeMap<String, Ipv4Addr>,
    targets: BTreeSet<String>,
    reservations: BTreeSet<String>,
}

fn actual(cluster: &TestCluster) -> Actual {
    let state = cluster.state();
    block_on(async {
        let ec2 = groundup_testkit::client(endpoint()).await;
        let ours = Filter::builder().name(format!("tag:{CLUSTER_TAG}")).values(&cluster.name).build();
        let live = Filter::builder().name("instance-state-name").values("pending").values("running").build();
        let out = ec2.describe_instances().filters(ours).filters(live).send().await.unwrap();
        let mut instances = BTreeMap::new();
        for instance in out.reservations().iter().flat_map(|r| r.instances()) {
            let logical = instance.tags().iter().find(|t| t.key() == Some(RESOURCE_TAG)).unwrap().value().unwrap();
            let ip = instance.private_ip_address().unwrap().parse().unwrap();
            assert!(instances.insert(logical.to_string(), ip).is_none(), "two live instances for {logical}");
        }
        let subnet = state.subnet.as_ref().unwrap().id.to_string();
        let out = ec2.get_subnet_cidr_reservations().subnet_id(subnet).send().await.unwrap();
        let reservations = out.subnet_ipv4_cidr_reservations().iter().map(|r| r.cidr().unwrap().to_string()).collect();
        let context = groundup_contracts::Context::from_json(&TestCluster::new("elb").init(&[])).unwrap();
        let aws = groundup_cloud::Aws::connect(&context, "test").await.unwrap();
        let group = state.nlb.as_ref().unwrap().target_group_arn.to_string();
        let health = aws.elb().describe_target_health().target_group_arn(group).send().await.unwrap();
        let targets =
            health.target_health_descriptions().iter().map(|d| d.target().unwrap().id().unwrap().to_string()).collect();
        Actual { instances, targets, reservations }
    })
}

/// The emulator and the state file agree with a fresh cluster of this shape, and nothing
/// else of the cluster's is there.
fn assert_shape(cluster: &TestCluster, masters: u32, workers: u32) {
    let shape = format!("{masters}+{workers}");
    let expected = expected_nodes(masters, workers);
    let ips: Vec<Ipv4Addr> = expected.values().copied().collect();
    let master_ips: BTreeSet<String> =
        expected.iter().filter(|(n, _)| n.starts_with("master")).map(|(_, ip)| ip.to_string()).collect();
    let blocks: BTreeSet<String> = groundup_cluster::reservation_blocks(&ips).iter().map(ToString::to_string).collect();

    let actual = actual(cluster);
    assert_eq!(actual.instances, expected, "{shape}: instances");
    assert_eq!(actual.targets, master_ips, "{shape}: NLB targets");
    assert_eq!(actual.reservations, blocks, "{shape}: reservations");

    let inventory = cluster.inventory();
    let counts = inventory.counts();
    assert_eq!(counts[&Kind::Instance], expected.len(), "{shape}: {counts:?}");
    assert_eq!(counts[&Kind::SecurityGroup], 2, "{shape}: the masters' and the nodes' groups: {counts:?}");
    let others = counts.iter().filter(|(kind, _)| ![Kind::Instance, Kind::SecurityGroup].contains(*kind));
    assert!(others.clone().all(|(_, n)| *n == 1), "{shape}: orphans or duplicates: {counts:?}");

    let state = cluster.state();
    let nlb = state.nlb.unwrap();
    assert_eq!(nlb.targets.iter().map(ToString::to_string).collect::<BTreeSet<_>>(), master_ips, "{shape}");
    assert_eq!(nlb.reservations.iter().map(ToString::to_string).collect::<BTreeSet<_>>(), blocks, "{shape}");
    let nodes = state.compute.unwrap().nodes;
    let recorded: BTreeMap<String, Ipv4Addr> = nodes
        .iter()
        .map(|n| (n.name.trim_start_matches(&format!("{}-", cluster.name)).to_string(), n.private_ip))
        .collect();
    assert_eq!(recorded, expected, "{shape}: the compute section");
    for node in &nodes {
        assert!(
            inventory.resources[&Kind::Instance].contains(&node.instance_id.to_string()),
            "{shape}: {} is not live",
            node.name
        );
        assert_eq!(node.hostname, format!("ip-{}", node.private_ip.to_string().replace('.', "-")));
        assert!(node.public_ip.is_some(), "{shape}: {}", node.name);
        let pod = state.params.workers.get(node.index as usize).and_then(|w| w.pod_cidr);
        assert_eq!(node.pod_cidr, if node.name.contains("-worker-") { pod } else { None }, "{}", node.name);
    }
}

/// `up --plan` on the changed state file: which resources each action touches.
fn plan(cluster: &TestCluster) -> BTreeMap<String, Action> {
    let before = cluster.inventory();
    let planned = cluster.groundup(&["up", "--plan", "--only", "nlb,compute"]);
    assert_success(&planned, "up --plan");
    let planned: PlanSection = serde_json::from_slice(&planned.stdout).unwrap();
    assert_eq!(cluster.inventory(), before, "a plan changed the cluster");
    planned.resources.into_iter().filter(|r| r.action != Action::Leave).map(|r| (r.resource, r.action)).collect()
}

fn actions(list: &[(&str, Action)]) -> BTreeMap<String, Action> {
    list.iter().map(|(r, a)| (r.to_string(), *a)).collect()
}

#[test]
fn workers_scale_up_then_down_like_a_fresh_cluster() {
    let cluster = TestCluster::new("scalew");
    assert_success(&cluster.up(&["--to", "compute"]), "up");
    assert_shape(&cluster, 3, 3);

    reshape(&cluster, 3, 5);
    assert_eq!(
        plan(&cluster),
        actions(&[
            ("node-addresses", Action::Change),
            ("pod-routes", Action::Change),
            ("worker-3", Action::Create),
            ("worker-4", Action::Create)
        ])
    );
    assert_success(&cluster.up(CHANGE), "3+5");
    assert_shape(&cluster, 3, 5);

    reshape(&cluster, 3, 2);
    assert_eq!(
        plan(&cluster),
        actions(&[
            ("node-addresses", Action::Change),
            ("pod-routes", Action::Change),
            ("worker-2", Action::Delete),
            ("worker-3", Action::Delete),
            ("worker-4", Action::Delete)
        ])
    );
    assert_success(&cluster.up(CHANGE), "3+2");
    assert_shape(&cluster, 3, 2);

    assert_success(&cluster.up(CHANGE), "3+2 again");
    assert!(plan(&cluster).is_empty(), "a converged cluster plans no change");

    // Back up: the terminated workers' names and IPs get new instances, not the dead ones.
    reshape(&cluster, 3, 4);
    assert_success(&cluster.up(CHANGE), "3+4");
    assert_shape(&cluster, 3, 4);
}

#[test]
fn masters_scale_up_then_down_and_the_targets_follow() {
    let cluster = TestCluster::new("scalem");
    assert_success(&cluster.up(&["--to", "compute"]), "up");

    reshape(&cluster, 5, 3);
    let planned = plan(&cluster);
    assert_eq!(planned.get("master-4"), Some(&Action::Create), "{planned:?}");
    assert_eq!(planned.get("target-group"), Some(&Action::Change), "{planned:?}");
    assert_success(&cluster.up(CHANGE), "5+3");
    assert_shape(&cluster, 5, 3);

    reshape(&cluster, 3, 3);
    let planned = plan(&cluster);
    assert_eq!(planned.get("master-3"), Some(&Action::Delete), "{planned:?}");
    assert_eq!(planned.get("master-4"), Some(&Action::Delete), "{planned:?}");
    assert_success(&cluster.up(CHANGE), "3+3");
    assert_shape(&cluster, 3, 3);
}

/// A run killed right after it terminated the first node resumes: the rest are terminated,
/// the terminated one is skipped, and the cluster ends as a fresh one of the new shape.
#[test]
fn a_crash_during_a_scale_down_converges_on_resume() {
    let cluster = TestCluster::new("scalecrash");
    assert_success(&cluster.up(&["--to", "compute"]), "up");
    reshape(&cluster, 3, 1);
    groundup_testkit::kill_up_right_after(&cluster, "TerminateInstances", CHANGE);
    assert_eq!(cluster.inventory().count(Kind::Instance), 5, "one node terminated before the crash");

    assert_success(&cluster.up(CHANGE), "resume");
    assert_shape(&cluster, 3, 1);
}

/// A run killed right after it reserved a block for the new node set: the emulator keeps no
/// description, and the context does not record the block yet, so only the journal says it is
/// ours. The resumed run adopts it, and the next change removes it instead of colliding with it.
#[test]
fn a_reservation_made_before_a_crash_is_adopted_and_later_replaced() {
    let cluster = TestCluster::new("scaleresv");
    assert_success(&cluster.up(&["--to", "compute"]), "up");
    reshape(&cluster, 3, 5);
    groundup_testkit::kill_up_right_after(&cluster, "CreateSubnetCidrReservation", CHANGE);
    assert!(!cluster.state().journal.is_empty(), "the reservation was not journaled before its call");

    assert_success(&cluster.up(CHANGE), "resume 3+5");
    assert_shape(&cluster, 3, 5);
    assert!(cluster.state().journal.is_empty(), "a settled reservation stayed in the journal");
    reshape(&cluster, 3, 2);
    assert_success(&cluster.up(CHANGE), "3+2 after the crash");
    assert_shape(&cluster, 3, 2);
}

/// A new admin range: the security group's rules become exactly the new set.
#[test]
fn a_changed_admin_range_replaces_the_rules() {
    let cluster = TestCluster::new("scaleadmin");
    assert_success(&cluster.up(&["--to", "sg"]), "up");
    cluster.edit_state(|state| state.params.admin_cidr = "203.0.113.0/24".parse().unwrap());
    assert_success(&cluster.up(&["--only", "sg"]), "sg with a new admin range");

    let wanted = groundup_testkit::wanted_rules(&cluster.state().params);
    assert!(wanted.iter().any(|r| r.contains("203.0.113.0/24")), "{wanted:?}");
    assert_eq!(cluster.group_rules(), wanted);
}
