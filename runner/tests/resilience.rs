//! What happens when things go wrong: a run killed at random moments, an API that throttles
//! and fails, resources changed by hand. Each must converge to exactly a clean run's resources.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use groundup_testkit::{assert_success, endpoint, FaultProxy, Rng, TestCluster};

/// What a clean `groundup up` leaves, and how long it takes.
fn clean_run() -> (BTreeMap<&'static str, usize>, Duration) {
    let cluster = TestCluster::new("clean");
    let started = Instant::now();
    assert_success(&cluster.up(&[]), "clean up");
    (cluster.inventory().counts(), started.elapsed())
}

#[test]
fn runs_killed_at_random_moments_converge_with_no_duplicates() {
    let (expected, duration) = clean_run();
    let seed = std::env::var("GROUNDUP_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261122);
    let mut rng = Rng::new(seed);
    let mut kill_points = 0;
    for round in 0..7 {
        let cluster = TestCluster::new("kill");
        for _ in 0..3 {
            let moment = Duration::from_micros(rng.below(duration.as_micros() as u64 + 1));
            kill_up_after(&cluster, moment);
            kill_points += 1;
        }
        let resumed = cluster.up(&[]);
        assert_success(&resumed, &format!("resume after kills (seed {seed}, round {round})"));
        assert_eq!(cluster.inventory().counts(), expected, "seed {seed}, round {round}: duplicates or missing");
        assert_eq!(cluster.state().completed, cluster.state().pipeline, "seed {seed}, round {round}");
    }
    assert!(kill_points >= 20);
}

/// Starts `groundup up` in its own process group and SIGKILLs the whole group (the runner and
/// the step it is running) after `moment`.
fn kill_up_after(cluster: &TestCluster, moment: Duration) {
    let mut child = Command::new(groundup_testkit::bin("groundup"))
        .args(["up", "--name", &cluster.name, "--endpoint", endpoint()])
        .current_dir(cluster.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    std::thread::sleep(moment);
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
    let _ = child.wait();
}

#[test]
fn up_converges_through_a_20_percent_fault_rate() {
    let (expected, _) = clean_run();
    let proxy = FaultProxy::start(endpoint(), 0.2, 7);
    let cluster = TestCluster::new("faults");
    let output = cluster.groundup(&["up", "--name", &cluster.name, "--endpoint", &proxy.endpoint]);
    assert_success(&output, "up through the fault proxy");
    assert_eq!(cluster.inventory().counts(), expected);
    assert!(proxy.faulted() > 0, "the proxy injected no fault; the test proves nothing");
    eprintln!("fault proxy: {} faulted, {} forwarded", proxy.faulted(), proxy.forwarded());

    let again = cluster.groundup(&["up"]);
    assert_success(&again, "second up through the fault proxy");
    assert_eq!(cluster.inventory().counts(), expected, "a faulty second run created something");
}

#[test]
fn up_repairs_a_deleted_route_and_changed_security_group_rules() {
    let cluster = TestCluster::new("drift");
    assert_success(&cluster.up(&[]), "up");
    let state = cluster.state();
    let (table, group) = (state.routes.unwrap().route_table_id, state.sg.unwrap().id);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let ec2 = groundup_testkit::client(endpoint()).await;
        ec2.delete_route().route_table_id(&table).destination_cidr_block("0.0.0.0/0").send().await.unwrap();
        ec2.revoke_security_group_ingress()
            .group_id(&group)
            .ip_permissions(permission("tcp", 22, 22, "172.31.0.0/16"))
            .send()
            .await
            .unwrap();
        ec2.authorize_security_group_ingress()
            .group_id(&group)
            .ip_permissions(permission("tcp", 3389, 3389, "0.0.0.0/0"))
            .send()
            .await
            .unwrap();
    });

    assert_success(&cluster.up(&[]), "up after drift");
    runtime.block_on(async {
        let ec2 = groundup_testkit::client(endpoint()).await;
        let tables = ec2.describe_route_tables().route_table_ids(&table).send().await.unwrap();
        let routes = tables.route_tables()[0].routes();
        assert!(routes.iter().any(|r| r.destination_cidr_block() == Some("0.0.0.0/0") && r.gateway_id().is_some()));
        let groups = ec2.describe_security_groups().group_ids(&group).send().await.unwrap();
        let mut rules: Vec<String> = groups.security_groups()[0]
            .ip_permissions()
            .iter()
            .flat_map(|p| {
                p.ip_ranges()
                    .iter()
                    .map(move |r| format!("{} {:?} {}", p.ip_protocol().unwrap(), p.from_port(), r.cidr_ip().unwrap()))
            })
            .collect();
        rules.sort();
        assert_eq!(
            rules,
            [
                "icmp Some(-1) 0.0.0.0/0",
                "tcp Some(22) 172.31.0.0/16",
                "tcp Some(2379) 172.31.0.0/24",
                "tcp Some(30000) 172.31.0.0/24",
                "tcp Some(6443) 172.31.0.0/16",
            ]
        );
    });
}

fn permission(protocol: &str, from: i32, to: i32, cidr: &str) -> aws_sdk_ec2::types::IpPermission {
    aws_sdk_ec2::types::IpPermission::builder()
        .ip_protocol(protocol)
        .from_port(from)
        .to_port(to)
        .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip(cidr).build())
        .build()
}
