//! Resources the state file records that no longer exist: an emulator restarted empty while a
//! run was under way, a resource deleted by hand. `groundup up` makes them again, once each,
//! and everything made from them follows in the same run: ids, routes, the certificates of
//! the addresses that changed. Then `up --plan` has nothing left to do.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use groundup_contracts::infra::Role;
use groundup_contracts::kinds::Kind;
use groundup_contracts::Context;
use groundup_testkit::{assert_success, endpoint, TestCluster};

const SMALL: [&str; 4] = ["--masters", "1", "--workers", "1"];

fn emulator(cluster: &TestCluster, dir: &Path, args: &[&str]) -> Output {
    let mut command = vec!["emulator"];
    command.extend_from_slice(args);
    command.extend_from_slice(&["--emulator-dir", dir.to_str().unwrap()]);
    cluster.groundup(&command)
}

/// Stops the test's own emulator however the test ends.
struct Stopper<'a>(&'a TestCluster, &'a Path);

impl Drop for Stopper<'_> {
    fn drop(&mut self) {
        let _ = emulator(self.0, self.1, &["stop"]);
    }
}

/// The worker's public IP, as the state file records it.
fn worker_ip(state: &Context) -> Ipv4Addr {
    let nodes = &state.compute.as_ref().expect("compute is done").nodes;
    nodes.iter().find(|n| n.role == Role::Worker).and_then(|n| n.public_ip).expect("the worker has a public IP")
}

/// The IP addresses among the SANs of the certificate file the state file records under `name`.
fn certificate_ips(cluster: &TestCluster, name: &str) -> Vec<String> {
    let certs = cluster.state().certs.expect("certs is done").certificates;
    let record = certs.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no certificate {name}"));
    let pem = std::fs::read(cluster.dir.path().join(&record.cert_path)).unwrap();
    let cert = openssl::x509::X509::from_pem(&pem).unwrap();
    let sans = cert.subject_alt_names().into_iter().flatten();
    sans.filter_map(|san| san.ipaddress().map(|ip| ip.iter().map(u8::to_string).collect::<Vec<_>>().join(".")))
        .collect()
}

/// The worker's certificate, named as the certs step names a node's: after its host.
fn worker_certificate(cluster: &TestCluster) -> String {
    let nodes = cluster.state().compute.expect("compute is done").nodes;
    nodes.into_iter().find(|n| n.role == Role::Worker).expect("a worker").hostname
}

/// The emulator stopped while `up` was at `compute` (the state file says the network and the
/// load balancer are done) and was started again, empty, on its port. The next `up` finds the
/// subnet gone when `compute` needs it, runs the steps before it again (each makes its
/// resources anew) and goes on: one of everything, the worker's certificate re-issued for its
/// new address, and nothing left to plan.
#[test]
fn an_emulator_restarted_empty_mid_run_is_built_again_in_the_same_up() {
    let cluster = TestCluster::new("restart");
    let dir = cluster.dir.path().join("emulator");
    let _stop = Stopper(&cluster, &dir);
    let dir_flag = dir.to_str().unwrap();
    let up = |extra: &[&str]| {
        let mut args = vec!["up", "--name", &cluster.name, "--emulator-dir", dir_flag];
        args.extend_from_slice(extra);
        cluster.groundup(&args)
    };
    assert_success(&up(&SMALL), "first up");
    let before = cluster.state();
    let endpoint = before.target.endpoint().unwrap().to_string();
    let everything = groundup_testkit::Inventory::of(&cluster.name, &endpoint).counts();

    assert_success(&emulator(&cluster, &dir, &["stop"]), "stop");
    let port = endpoint.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    wait_until_free(port);
    assert_success(&emulator(&cluster, &dir, &["start", "--port", &port.to_string()]), "start again, empty");
    cluster.edit_state(|state| {
        let position = state.pipeline.iter().position(|s| s == "compute").unwrap();
        state.completed = state.pipeline[..position].to_vec();
    });

    let resumed = up(&[]);
    assert_success(&resumed, "up after the emulator restarted empty");
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(stderr.contains("`compute` needs a resource that is gone; the steps before it run again"), "{stderr}");
    assert!(stderr.contains("[1/13] vpc"), "the run went back to the first step: {stderr}");
    let after = cluster.state();
    assert_eq!(after.completed, after.pipeline, "every step is done");
    assert_ne!(after.subnet.as_ref().unwrap().id, before.subnet.as_ref().unwrap().id, "the subnet was made anew");
    assert_eq!(groundup_testkit::Inventory::of(&cluster.name, &endpoint).counts(), everything, "one of everything");
    let (old_ip, new_ip) = (worker_ip(&before), worker_ip(&after));
    assert_ne!(old_ip, new_ip, "the new instance has a new public IP");
    let ips = certificate_ips(&cluster, &worker_certificate(&cluster));
    assert!(ips.contains(&new_ip.to_string()) && !ips.contains(&old_ip.to_string()), "{ips:?}");

    let planned = up(&["--plan"]);
    assert_success(&planned, "up --plan after the recovery");
    let plan: groundup_contracts::plan::PlanSection = serde_json::from_slice(&planned.stdout).unwrap();
    let pending: Vec<_> =
        plan.resources.iter().filter(|r| r.action != groundup_contracts::plan::Action::Leave).collect();
    assert!(pending.is_empty(), "up left work to do: {pending:#?}");
}

/// `emulator stop` signals the emulator and returns; its port is free once the process ends.
fn wait_until_free(port: u16) {
    let started = Instant::now();
    while TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "port {port} is still taken");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The worker's instance terminated and the route table deleted by hand: `up` launches a new
/// instance and makes a new table, once each, routes the worker's pod range to the new
/// instance in the new table, and re-issues the worker's certificate for its new address.
#[test]
fn resources_deleted_by_hand_are_made_again_with_no_duplicates() {
    let cluster = TestCluster::new("deleted");
    assert_success(&cluster.up(&SMALL), "up");
    let everything = cluster.inventory().counts();
    let before = cluster.state();
    let table = before.routes.as_ref().unwrap().route_table_id.to_string();
    let association = before.routes.as_ref().unwrap().association_id.to_string();
    let worker = before.compute.as_ref().unwrap().nodes.iter().find(|n| n.role == Role::Worker).unwrap().clone();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let ec2 = groundup_testkit::client(endpoint()).await;
        ec2.terminate_instances().instance_ids(worker.instance_id.to_string()).send().await.unwrap();
        ec2.disassociate_route_table().association_id(&association).send().await.unwrap();
        ec2.delete_route_table().route_table_id(&table).send().await.unwrap();
    });
    assert_eq!(cluster.inventory().count(Kind::RouteTable), 0, "the table was deleted");

    assert_success(&cluster.up(&[]), "up after the deletions");
    assert_eq!(cluster.inventory().counts(), everything, "one of everything, no duplicates");
    let after = cluster.state();
    let new_table = after.routes.as_ref().unwrap().route_table_id.to_string();
    let new_worker = after.compute.as_ref().unwrap().nodes.iter().find(|n| n.role == Role::Worker).unwrap().clone();
    assert_ne!(new_table, table);
    assert_ne!(new_worker.instance_id, worker.instance_id);
    runtime.block_on(async {
        let ec2 = groundup_testkit::client(endpoint()).await;
        let tables = ec2.describe_route_tables().route_table_ids(&new_table).send().await.unwrap();
        let routes = tables.route_tables()[0].routes();
        let pod_range = new_worker.pod_cidr.unwrap().to_string();
        let to_worker = routes.iter().find(|r| r.destination_cidr_block() == Some(pod_range.as_str()));
        assert_eq!(to_worker.and_then(|r| r.instance_id()), Some(new_worker.instance_id.to_string().as_str()));
        assert!(routes.iter().any(|r| r.destination_cidr_block() == Some("0.0.0.0/0") && r.gateway_id().is_some()));
    });
    let ips = certificate_ips(&cluster, &worker_certificate(&cluster));
    assert!(ips.contains(&worker_ip(&after).to_string()) && !ips.contains(&worker_ip(&before).to_string()), "{ips:?}");
    assert!(cluster.pending_work().is_empty(), "up left work to do: {:#?}", cluster.pending_work());
}
