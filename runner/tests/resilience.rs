//! What happens when things go wrong: a run killed at random moments, an API that throttles
//! and fails, resources changed by hand. Each must converge to exactly a clean run's resources.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use groundup_contracts::kinds::Kind;
use groundup_contracts::plan::{Action, PlanSection};
use groundup_runtime::state::partial_saves;
use groundup_testkit::{
    assert_clean_failure, assert_success, endpoint, kill_up_right_after, wait_until_unlocked, FaultProxy, Rng,
    TestCluster,
};

/// What a clean `groundup up` leaves, and how long it takes.
fn clean_run() -> (BTreeMap<Kind, usize>, Duration) {
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
            kill_up_after(&cluster, &[], moment);
            kill_points += 1;
        }
        let resumed = cluster.up(&[]);
        assert_success(&resumed, &format!("resume after kills (seed {seed}, round {round})"));
        assert_eq!(cluster.inventory().counts(), expected, "seed {seed}, round {round}: duplicates or missing");
        assert_eq!(cluster.state().completed, cluster.state().pipeline, "seed {seed}, round {round}");
        assert!(cluster.state().journal.is_empty(), "seed {seed}, round {round}: interrupted creates left");
        assert_eq!(partial_saves(&cluster.state_path()), Vec::<std::path::PathBuf>::new(), "seed {seed}");
    }
    assert!(kill_points >= 20);
}

/// A scale change killed at random moments: 3+3 grows to 3+5 (new instances, pod ranges,
/// certificates, targets unchanged), then shrinks to 3+2 (terminations, retired certificates).
/// Each change resumed after its kills converges to exactly the new shape, with nothing left
/// in flight and nothing left for the next run to do.
#[test]
fn scale_changes_killed_at_random_moments_converge() {
    let seed = std::env::var("GROUNDUP_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261126);
    let mut rng = Rng::new(seed);
    let cluster = TestCluster::new("killscale");
    let started = Instant::now();
    assert_success(&cluster.up(&["--pki-key", "ecdsa-p256"]), "up 3+3");
    let duration = started.elapsed();
    for workers in [5, 2] {
        let flags = ["--workers".to_string(), workers.to_string()];
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        for _ in 0..3 {
            kill_up_after(&cluster, &flags, Duration::from_micros(rng.below(duration.as_micros() as u64 + 1)));
        }
        let resumed = cluster.groundup(&[&["up"][..], &flags].concat());
        assert_success(&resumed, &format!("resume the change to {workers} workers (seed {seed})"));
        let state = cluster.state();
        let counts = cluster.inventory().counts();
        let expected: BTreeMap<Kind, usize> = Kind::ALL
            .into_iter()
            .map(|k| {
                (
                    k,
                    match k {
                        Kind::Instance => 3 + workers,
                        // The masters' and the nodes'.
                        Kind::SecurityGroup => 2,
                        _ => 1,
                    },
                )
            })
            .collect();
        assert_eq!(counts, expected, "seed {seed}, {workers} workers: duplicates, orphans or missing");
        assert!(state.journal.is_empty(), "seed {seed}: interrupted creates left");
        assert_eq!(state.completed, state.pipeline, "seed {seed}");
        // A kubelet's certificate is named after its host.
        let hosts: Vec<&str> = state.compute.as_ref().unwrap().workers().map(|w| w.hostname.as_str()).collect();
        let kubelets = state.certs.as_ref().unwrap().certificates.iter().filter(|c| hosts.contains(&c.name.as_str()));
        assert_eq!(kubelets.count(), workers, "seed {seed}: worker certificates");
        let pending = cluster.pending_work();
        assert!(pending.is_empty(), "seed {seed}: after {workers} workers, a plan still finds work: {pending:?}");
    }
    for i in 2..5 {
        // Worker i is at 172.31.0.2i, its certificate named after its host.
        let retired = cluster.dir.path().join(format!("pki/retired/ip-172-31-0-2{i}.pem"));
        assert!(retired.exists(), "seed {seed}: worker-{i}'s certificate was not retired");
    }
}

/// Starts `groundup up` (with `flags`) in its own process group and SIGKILLs the whole group
/// (the runner and the step it is running) after `moment`.
fn kill_up_after(cluster: &TestCluster, flags: &[&str], moment: Duration) {
    let mut args = vec!["up", "--name", &cluster.name, "--endpoint", endpoint()];
    args.extend_from_slice(flags);
    let mut child = cluster.spawn_in_own_group(&args);
    std::thread::sleep(moment);
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
    let _ = child.wait();
    wait_until_unlocked(cluster);
}

/// Every create call of the pipeline, and the resource its step journals before sending it.
const CREATES: &[(&str, &str)] = &[
    ("CreateVpc", "vpc"),
    ("CreateDhcpOptions", "dhcp"),
    ("CreateSubnet", "subnet"),
    ("CreateInternetGateway", "igw"),
    ("CreateRouteTable", "route-table"),
    ("CreateSecurityGroup", "sg-masters"),
    ("CreateLoadBalancer", "nlb"),
    ("CreateTargetGroup", "target-group"),
    ("CreateListener", "listener"),
    ("ImportKeyPair", "key-pair"),
    ("RunInstances", "master-0"),
];

/// The worst moment to die: the create call succeeded and nothing recorded its result. The
/// journal entry written before the call must be in the state file, and the next run must
/// adopt the resource, not make a second one. (The emulator creates DHCP option sets
/// untagged, so that case also proves the journal's second look.)
#[test]
fn a_crash_right_after_each_create_call_is_adopted_on_resume() {
    let (expected, _) = clean_run();
    std::thread::scope(|scope| {
        for (action, resource) in CREATES {
            let expected = &expected;
            scope.spawn(move || {
                let cluster = TestCluster::new("crash");
                let domain = format!("{}.example", cluster.name);
                let flags = ["--to", "compute", "--dhcp-domain", domain.as_str()];
                kill_up_right_after(&cluster, action, &flags);
                let journal = cluster.state().journal;
                assert!(journal.iter().any(|e| e.resource == *resource), "{action}: not journaled: {journal:?}");

                assert_success(&cluster.up(&flags), &format!("resume after a crash after {action}"));
                assert_eq!(&cluster.inventory().counts(), expected, "{action}: duplicates or missing");
                assert!(cluster.state().journal.is_empty(), "{action}: the journal kept {:?}", cluster.state().journal);
                assert_eq!(dhcp_sets_with_domain(&domain), 1, "{action}: an orphaned DHCP option set");
            });
        }
    });
}

/// Tagged or not: an untagged orphan is what a crash would leave.
fn dhcp_sets_with_domain(domain: &str) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let ec2 = groundup_testkit::client(endpoint()).await;
        let all = ec2.describe_dhcp_options().send().await.unwrap();
        all.dhcp_options()
            .iter()
            .filter(|o| o.dhcp_configurations().iter().any(|c| c.values().iter().any(|v| v.value() == Some(domain))))
            .count()
    })
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
    // The masters' group.
    let (table, group) = (state.routes.unwrap().route_table_id.to_string(), state.sg.unwrap().groups[0].id.to_string());
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

    let planned = cluster.groundup(&["up", "--plan"]);
    assert_success(&planned, "up --plan after drift");
    let planned: PlanSection = serde_json::from_slice(&planned.stdout).unwrap();
    let changed: Vec<(&str, &[String])> = planned
        .resources
        .iter()
        .filter(|r| r.action != Action::Leave)
        .map(|r| (r.resource.as_str(), r.changes.as_slice()))
        .collect();
    let igw = state.igw.unwrap().id;
    assert_eq!(
        changed,
        [
            ("route-table", &[format!("route 0.0.0.0/0 to {igw}")][..]),
            (
                "sg-masters",
                &["authorize tcp 22 from 172.31.0.0/16".to_string(), "revoke tcp 3389 from 0.0.0.0/0".to_string()][..]
            ),
        ],
        "the plan must show exactly the drift"
    );
    assert_success(&cluster.up(&[]), "up after drift");
    runtime.block_on(async {
        let ec2 = groundup_testkit::client(endpoint()).await;
        let tables = ec2.describe_route_tables().route_table_ids(&table).send().await.unwrap();
        let routes = tables.route_tables()[0].routes();
        assert!(routes.iter().any(|r| r.destination_cidr_block() == Some("0.0.0.0/0") && r.gateway_id().is_some()));
    });
    assert_eq!(cluster.group_rules(), groundup_testkit::wanted_rules(&state.params));
}

fn permission(protocol: &str, from: i32, to: i32, cidr: &str) -> aws_sdk_ec2::types::IpPermission {
    aws_sdk_ec2::types::IpPermission::builder()
        .ip_protocol(protocol)
        .from_port(from)
        .to_port(to)
        .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip(cidr).build())
        .build()
}

/// A second `up` or `down --yes` on a state file in use must not race the first; a plan only
/// reads and may run. The lock also makes it safe to sweep what killed saves left behind.
#[test]
fn a_second_run_on_the_same_state_file_refuses_to_start() {
    let cluster = TestCluster::new("locked");
    assert_success(&cluster.up(&["--to", "vpc"]), "up --to vpc");
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(cluster.dir.path().join("groundup.json.lock"))
        .unwrap();
    lock.try_lock().expect("up released its lock when it ended");

    let stderr = assert_clean_failure(&cluster.up(&[]), "up while another run holds the lock");
    assert!(stderr.contains("another groundup"), "{stderr}");
    let stderr = assert_clean_failure(&cluster.groundup(&["down", "--yes"]), "down while locked");
    assert!(stderr.contains("another groundup"), "{stderr}");
    assert_success(&cluster.groundup(&["up", "--plan"]), "a plan while locked");
    assert_eq!((cluster.inventory().count(Kind::Vpc), cluster.inventory().count(Kind::DhcpOptions)), (1, 0));

    let leftover = cluster.dir.path().join(".groundup.json.x1y2z3.partial");
    std::fs::write(&leftover, "{\"version\": 1, \"clu").unwrap();
    drop(lock);
    assert_success(&cluster.up(&["--to", "dhcp"]), "up once the lock is free");
    assert_eq!(cluster.inventory().count(Kind::DhcpOptions), 1);
    assert!(!leftover.exists(), "a killed save's partial file was left behind");
}

/// The head starts (`groundup-ca --prepare` and `groundup-compute --prepare`, in the
/// background from the start of `up`) killed mid-way with the runner: no key file is half written (each one there reads as a
/// key, 0600), nothing of the run is left running, and the next `up` converges, adopting the
/// keys and signing a certificate that `certs check` accepts for each.
#[test]
fn a_run_killed_while_the_head_start_makes_keys_converges() {
    let cluster = TestCluster::new("headstart");
    let pki = cluster.dir.path().join("pki");
    let keys = || -> Vec<std::path::PathBuf> {
        let Ok(entries) = std::fs::read_dir(&pki) else { return Vec::new() };
        entries.flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with("-key.pem")).collect()
    };
    let mut child = cluster.spawn_in_own_group(&["up", "--name", &cluster.name, "--endpoint", endpoint()]);
    while keys().is_empty() && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
    let _ = child.wait();
    wait_until_unlocked(&cluster);
    let made = keys();
    assert!(!made.is_empty(), "the head start made no key before the kill");
    for key in &made {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(key).unwrap().permissions().mode() & 0o777, 0o600, "{}", key.display());
        let pem = std::fs::read(key).unwrap();
        assert!(openssl::pkey::PKey::private_key_from_pem(&pem).is_ok(), "{} is not a whole key", key.display());
    }
    // A CA key the kill left without its certificate signed nothing: it is made again, with
    // its certificate. Every other key must be adopted as it is.
    let half_made_ca = |key: &std::path::PathBuf| {
        let name = key.file_name().unwrap().to_string_lossy().trim_end_matches("-key.pem").to_string();
        ["ca", "etcd-ca", "front-proxy-ca"].contains(&name.as_str()) && !pki.join(format!("{name}.pem")).exists()
    };
    let before: Vec<(std::path::PathBuf, Vec<u8>)> =
        made.iter().filter(|k| !half_made_ca(k)).map(|k| (k.clone(), std::fs::read(k).unwrap())).collect();

    // compute's head start (the SSH key) was killed too: its key is whole or absent.
    let ssh_key = cluster.dir.path().join("ssh").join(format!("{}.id_ed25519", cluster.name));
    if ssh_key.exists() {
        let read = std::process::Command::new("ssh-keygen").arg("-y").arg("-f").arg(&ssh_key).output().unwrap();
        assert!(read.status.success(), "the SSH key is not whole: {}", String::from_utf8_lossy(&read.stderr));
    }

    assert_success(&cluster.up(&[]), "up after the head start was killed");
    assert_eq!(cluster.state().completed, cluster.state().pipeline);
    for (key, pem) in before {
        assert_eq!(std::fs::read(&key).unwrap(), pem, "{} was replaced, not adopted", key.display());
    }
    let check = cluster.run_step("certs", &["check", "--context", "groundup.json"], "");
    assert_success(&check, "certs check after the killed head start");
}
