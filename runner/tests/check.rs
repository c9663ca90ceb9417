//! `groundup check` on the emulator: a cluster `up` built passes; each way of breaking its
//! network (a revoked rule, an opening to the internet, a deleted pod route) is named; `up`
//! repairs them all.

use aws_sdk_ec2::types::{IpPermission, IpRange, UserIdGroupPair};
use groundup_testkit::{assert_success, endpoint, TestCluster};
use serde_json::Value;

/// `groundup check --json`: its exit code and report.
fn check(cluster: &TestCluster) -> (Option<i32>, Value) {
    let output = cluster.groundup(&["check", "--json"]);
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no report on stdout ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code(), report)
}

/// Each blocked flow as "flow from -> to: at: why".
fn blocked(report: &Value) -> Vec<String> {
    report["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["answer"] == "blocked")
        .map(|v| format!("{} {} -> {}: {}: {}", v["flow"], v["from"], v["to"], v["at"], v["why"]).replace('"', ""))
        .collect()
}

fn assert_passes(cluster: &TestCluster, what: &str) {
    let (code, report) = check(cluster);
    let blocked = blocked(&report);
    assert!(blocked.is_empty(), "{what}: {} blocked, first {:#?}", blocked.len(), &blocked[..blocked.len().min(5)]);
    let none = Value::Array(vec![]);
    assert_eq!((code, &report["openings"], &report["load_balancer"]), (Some(0), &none, &none), "{what}");
}

fn permission(port: i32, cidr: &str) -> IpPermission {
    IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port)
        .ip_ranges(IpRange::builder().cidr_ip(cidr).build())
        .build()
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

#[test]
fn a_fresh_cluster_passes_each_break_is_named_and_up_repairs_them() {
    let cluster = TestCluster::new("check");
    assert_success(&cluster.up(&["--to", "compute"]), "up");
    assert_passes(&cluster, "a fresh cluster");
    let table = cluster.groundup(&["check"]);
    assert_success(&table, "check");
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.starts_with("FLOW") && table.contains("kubelet") && table.contains("allowed"), "{table}");

    let state = cluster.state();
    // The workers' group admits the kubelet port from the masters' group.
    let groups = state.sg.unwrap().groups;
    let (masters, group) = (groups[0].id.to_string(), groups[1].id.to_string());
    let table_id = state.routes.unwrap().route_table_id.to_string();
    block_on(async {
        let ec2 = groundup_testkit::client(endpoint()).await;
        let from_masters = UserIdGroupPair::builder().group_id(&masters).build();
        let revoke = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(10250)
            .to_port(10250)
            .user_id_group_pairs(from_masters);
        ec2.revoke_security_group_ingress().group_id(&group).ip_permissions(revoke.build()).send().await.unwrap();
        ec2.authorize_security_group_ingress()
            .group_id(&group)
            .ip_permissions(permission(2379, "0.0.0.0/0"))
            .send()
            .await
            .unwrap();
        ec2.delete_route().route_table_id(&table_id).destination_cidr_block("172.20.1.0/24").send().await.unwrap();
    });

    let (code, report) = check(&cluster);
    assert_eq!(code, Some(1), "a broken network must fail the check");
    let blocked = blocked(&report);
    assert!(
        blocked
            .iter()
            .any(|b| b.starts_with("kubelet master-0 172.31.0.10 -> worker-0") && b.contains("security_group")),
        "{blocked:#?}"
    );
    let pods: Vec<&String> = blocked.iter().filter(|b| b.starts_with("pods pods of worker-1")).collect();
    assert!(
        !pods.is_empty() && pods.iter().all(|b| b.contains(": route: no route of 172.20.1.0/24 to worker-1")),
        "{blocked:#?}"
    );
    assert!(blocked.iter().all(|b| b.starts_with("kubelet") || b.starts_with("pods pods of worker-1")), "{blocked:#?}");
    assert_eq!(report["openings"], serde_json::json!([{"group": group, "rule": "tcp 2379 from 0.0.0.0/0"}]));

    assert_success(&cluster.up(&["--to", "compute"]), "up repairs");
    assert_passes(&cluster, "after up repaired it");
    assert_success(&cluster.up(&["--to", "compute", "--admin-cidr", "203.0.113.0/24"]), "up --admin-cidr");
    assert_passes(&cluster, "with an admin range outside the VPC");
}

/// The pod routes follow the workers: more, then fewer, and the check passes each time.
#[test]
fn scaled_clusters_pass_and_keep_one_pod_route_per_worker() {
    let cluster = TestCluster::new("check-scale");
    assert_success(&cluster.up(&["--to", "compute", "--workers", "5"]), "up 3+5");
    assert_passes(&cluster, "3+5");
    assert_success(&cluster.up(&["--to", "compute", "--workers", "2"]), "up 3+2");
    assert_passes(&cluster, "3+2");
    let table_id = cluster.state().routes.unwrap().route_table_id.to_string();
    let pod_routes: Vec<String> = block_on(async {
        let ec2 = groundup_testkit::client(endpoint()).await;
        let out = ec2.describe_route_tables().route_table_ids(&table_id).send().await.unwrap();
        let routes = out.route_tables()[0].routes();
        routes
            .iter()
            .filter(|r| r.instance_id().is_some())
            .map(|r| r.destination_cidr_block().unwrap().to_string())
            .collect()
    });
    assert_eq!(pod_routes, ["172.20.0.0/24", "172.20.1.0/24"]);
}

/// The course's rules leave the kubelet and pod traffic blocked, and the check says so.
#[test]
fn the_course_network_fails_naming_what_it_blocks() {
    let cluster = TestCluster::new("check-course");
    assert_success(&cluster.up(&["--to", "compute", "--course-network"]), "up --course-network");
    let (code, report) = check(&cluster);
    assert_eq!(code, Some(1));
    let mut flows: Vec<String> = blocked(&report).iter().map(|b| b.split(' ').next().unwrap().to_string()).collect();
    flows.dedup();
    assert_eq!(flows, ["kubelet", "kube-proxy-health", "pods"]);
}
