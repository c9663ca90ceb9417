//! `groundup down` on the emulator: finds by tags, deletes in order, touches nothing else.

use groundup_contracts::kinds::Kind;
use groundup_testkit::{assert_clean_failure, assert_success, FaultProxy, TestCluster};

fn nothing_left(cluster: &TestCluster) -> bool {
    cluster.inventory().counts().values().all(|n| *n == 0)
}

#[test]
fn up_then_down_leaves_nothing_and_a_second_down_is_a_no_op() {
    let cluster = TestCluster::new("down");
    assert_success(&cluster.up(&[]), "up");
    assert!(!nothing_left(&cluster));

    let plan = cluster.groundup(&["down"]);
    assert_success(&plan, "down (plan)");
    let listed: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let mut kinds: Vec<&str> = listed.as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    kinds.dedup();
    assert_eq!(kinds, Kind::ALL.map(Kind::slug), "one of each kind, in deletion order");
    assert_eq!(listed.as_array().unwrap().len(), 17, "6 instances, 2 security groups and one of everything else");
    assert!(!nothing_left(&cluster), "a plan must delete nothing");

    assert_success(&cluster.groundup(&["down", "--yes", "--purge"]), "down --yes --purge");
    assert!(nothing_left(&cluster), "left behind: {:?}", cluster.inventory());
    assert!(
        !cluster.dir.path().join("ssh").join(format!("{}.id_ed25519", cluster.name)).exists(),
        "--purge left the key"
    );
    assert!(!cluster.dir.path().join("pki").exists(), "--purge left the PKI");
    assert!(!cluster.dir.path().join("kubeconfig").exists(), "--purge left the kubeconfigs");
    let state = cluster.state();
    assert!(state.teardown.unwrap().torn_down);
    assert!(state.completed.is_empty() && state.vpc.is_none());

    let again = cluster.groundup(&["down", "--yes"]);
    assert_success(&again, "second down");
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), "[]");

    assert_success(&cluster.up(&[]), "up after down");
    assert_eq!(cluster.inventory().count(Kind::Vpc), 1);
    assert!(cluster.state().teardown.is_none());
}

#[test]
fn down_after_a_half_finished_up() {
    let cluster = TestCluster::new("halfdown");
    assert_success(&cluster.up(&["--to", "igw"]), "up --to igw");
    assert_success(&cluster.groundup(&["down", "--yes"]), "down --yes");
    assert!(nothing_left(&cluster), "left behind: {:?}", cluster.inventory());
}

#[test]
fn down_after_a_crash_mid_create_deletes_it_and_clears_the_journal() {
    let cluster = TestCluster::new("crashdown");
    groundup_testkit::kill_up_right_after(&cluster, "CreateInternetGateway", &["--to", "igw"]);
    assert_eq!(cluster.state().journal.len(), 1, "the gateway's create was not journaled");
    assert_eq!(cluster.inventory().count(Kind::InternetGateway), 1);

    assert_success(&cluster.groundup(&["down", "--yes"]), "down --yes");
    assert!(nothing_left(&cluster), "left behind: {:?}", cluster.inventory());
    assert!(cluster.state().journal.is_empty(), "a token of a deleted resource stayed journaled");
}

#[test]
fn down_finds_what_the_state_file_never_recorded() {
    let cluster = TestCluster::new("lost");
    assert_success(&cluster.up(&[]), "up");
    // A lost state file: a fresh one from init knows nothing but the cluster's name.
    std::fs::write(cluster.state_path(), cluster.init(&[])).unwrap();
    assert_success(&cluster.groundup(&["down", "--yes"]), "down --yes");
    assert!(nothing_left(&cluster), "left behind: {:?}", cluster.inventory());
}

#[test]
fn another_clusters_and_untagged_resources_are_never_touched() {
    let ours = TestCluster::new("mine");
    let theirs = TestCluster::new("theirs");
    assert_success(&ours.up(&[]), "our up");
    assert_success(&theirs.up(&[]), "their up");
    let untagged = untagged_vpc();
    let before = theirs.inventory();

    assert_success(&ours.groundup(&["down", "--yes"]), "down --yes");
    assert!(nothing_left(&ours));
    assert_eq!(theirs.inventory(), before);
    assert!(vpc_exists(&untagged), "an untagged VPC was deleted");
}

/// LocalStack's free edition has no ELBv2: `down` must still delete every EC2 resource, then
/// name what it could not list and fail.
#[test]
fn an_endpoint_without_load_balancing_still_loses_its_ec2_resources() {
    let cluster = TestCluster::new("noelb");
    assert_success(&cluster.up(&["--to", "compute"]), "up --to compute");
    let proxy = FaultProxy::without_elbv2(groundup_testkit::endpoint());
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cluster.state_path()).unwrap()).unwrap();
    state["target"]["endpoint"] = proxy.endpoint.clone().into();
    std::fs::write(cluster.state_path(), state.to_string()).unwrap();

    let stderr = assert_clean_failure(&cluster.groundup(&["down", "--yes"]), "down --yes without ELBv2");
    assert!(stderr.contains("load balancers, listeners and target groups"), "{stderr}");
    assert!(stderr.contains("InternalFailure"), "the endpoint's own error is not shown: {stderr}");
    let left = cluster.inventory();
    for kind in [Kind::Instance, Kind::KeyPair, Kind::SecurityGroup, Kind::RouteTable, Kind::InternetGateway] {
        assert_eq!(left.count(kind), 0, "{kind:?} was not deleted: {left:?}");
    }
    assert!(proxy.actions().iter().any(|a| a == "DeleteVpc"), "down stopped before the VPC");
}

#[test]
fn bad_input_to_down_changes_nothing() {
    let cluster = TestCluster::new("downbad");
    let stderr = assert_clean_failure(&cluster.groundup(&["down", "--yes"]), "down without a state file");
    assert!(stderr.contains("no state file"), "{stderr}");

    assert_success(&cluster.up(&["--to", "vpc"]), "up --to vpc");
    let stderr = assert_clean_failure(&cluster.groundup(&["down", "--yes", "--name", "someone-else"]), "wrong cluster");
    assert!(stderr.contains("not `someone-else`"), "{stderr}");
    assert_eq!(cluster.inventory().count(Kind::Vpc), 1);

    let saved = std::fs::read_to_string(cluster.state_path()).unwrap();
    let corrupt = &saved[..saved.len() / 2];
    std::fs::write(cluster.state_path(), corrupt).unwrap();
    let stderr = assert_clean_failure(&cluster.groundup(&["down", "--yes"]), "corrupt state");
    assert!(stderr.contains("state file"), "{stderr}");
    assert_eq!(std::fs::read_to_string(cluster.state_path()).unwrap(), corrupt);
    assert_eq!(cluster.inventory().count(Kind::Vpc), 1);
}

fn untagged_vpc() -> String {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let ec2 = groundup_testkit::client(groundup_testkit::endpoint()).await;
        ec2.create_vpc().cidr_block("10.99.0.0/16").send().await.unwrap().vpc.unwrap().vpc_id.unwrap()
    })
}

fn vpc_exists(id: &str) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let ec2 = groundup_testkit::client(groundup_testkit::endpoint()).await;
        ec2.describe_vpcs().vpc_ids(id).send().await.is_ok_and(|out| !out.vpcs().is_empty())
    })
}

/// The public addresses of the cluster's workers, from its state file.
fn worker_ips(cluster: &TestCluster) -> Vec<String> {
    let compute = cluster.state().compute.expect("a compute section");
    compute.nodes.iter().filter(|n| n.name.contains("-worker-")).map(|n| format!("{:?}", n.public_ip)).collect()
}

fn worker_hostname(cluster: &TestCluster) -> String {
    let state = cluster.state();
    state.compute.unwrap().workers().next().unwrap().hostname.clone()
}

#[test]
fn up_down_up_needs_no_flag_its_certificates_follow_the_new_instances_and_purge_makes_a_new_pki() {
    let cluster = TestCluster::new("redo");
    assert_success(&cluster.up(&[]), "up");
    let pki = cluster.dir.path().join("pki");
    let kubelet = "ip-172-31-0-20";
    let read = |file: &str| std::fs::read(pki.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let (key, ca, cert) = (read(&format!("{kubelet}-key.pem")), read("ca.pem"), read(&format!("{kubelet}.pem")));
    let ips = worker_ips(&cluster);
    let check = || cluster.run_step("certs", &["check", "--context", "groundup.json"], "");

    assert_success(&cluster.groundup(&["down", "--yes"]), "down --yes");
    let again = cluster.groundup(&["up"]);
    assert_success(&again, "up after down, without --renew");
    assert_ne!(worker_ips(&cluster), ips, "the emulator gave the new workers the same public addresses");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains(&format!("certs: {kubelet}: re-issue for the infrastructure's SANs")), "{stderr}");
    assert_ne!(read(&format!("{kubelet}.pem")), cert, "the kubelet certificate still names the old instance");
    assert_eq!(read(&format!("{kubelet}-key.pem")), key, "a re-issue must keep the key");
    assert_eq!(read("ca.pem"), ca, "a CA is never replaced");
    let bundled = cluster.dir.path().join(format!(
        "nodes/{}/var/lib/kubelet/{}.pem",
        worker_hostname(&cluster),
        worker_hostname(&cluster)
    ));
    assert_eq!(
        std::fs::read(bundled).unwrap(),
        read(&format!("{kubelet}.pem")),
        "the node bundle kept the old certificate"
    );
    assert_success(&check(), "groundup-certs check after up, down, up");
    assert_success(&cluster.groundup(&["up"]), "the next up");

    assert_success(&cluster.groundup(&["down", "--yes", "--purge"]), "down --yes --purge");
    assert_success(&cluster.groundup(&["up"]), "up after a purge");
    assert_ne!(read("ca.pem"), ca, "up after --purge must make a new PKI");
    assert_ne!(read(&format!("{kubelet}-key.pem")), key);
    assert_success(&check(), "groundup-certs check after a purge and up");
}
