//! Changing a cluster through `groundup up <init flags>`: what can change in place is applied
//! by the steps, what cannot is refused before anything changes.

use groundup_contracts::kinds::Kind;
use groundup_contracts::pki::Layout;
use groundup_contracts::plan::{Action, PlanSection};
use groundup_testkit::{assert_clean_failure, assert_success, endpoint, wanted_rules, TestCluster};

fn state_bytes(cluster: &TestCluster) -> Vec<u8> {
    std::fs::read(cluster.state_path()).unwrap()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

#[test]
fn what_cannot_change_in_place_is_refused_and_nothing_changes() {
    let cluster = TestCluster::new("change-refused");
    assert_success(&cluster.up(&["--to", "sg"]), "up --to sg");
    let (before, inventory) = (state_bytes(&cluster), cluster.inventory());

    for (flags, field, now, asked) in [
        (["--vpc-cidr", "10.0.0.0/16"], "params.vpc_cidr", "172.31.0.0/16", "10.0.0.0/16"),
        (["--subnet-cidr", "172.31.1.0/24"], "params.subnet_cidr", "172.31.0.0/24", "172.31.1.0/24"),
        (["--region", "eu-west-1"], "cluster.region", "us-east-2", "eu-west-1"),
    ] {
        let output = cluster.up(&flags);
        let stderr = assert_clean_failure(&output, &format!("up {flags:?}"));
        assert_eq!(output.status.code(), Some(2), "refused input exits with 2: {stderr}");
        assert!(stderr.contains(&format!("`{field}` cannot change in place")), "{stderr}");
        assert!(stderr.contains(now) && stderr.contains(asked), "{stderr}");
        assert!(stderr.contains("groundup down --yes"), "no way forward: {stderr}");
        assert_eq!(state_bytes(&cluster), before, "a refused change wrote the state file");
        assert_eq!(cluster.inventory(), inventory, "a refused change touched the cloud");
        assert!(!cluster.dir.path().join("groundup.json.lock").exists(), "the lock file was left behind");
    }
    // The same, only planned.
    let output = cluster.groundup(&["up", "--plan", "--vpc-cidr", "10.0.0.0/16"]);
    assert_clean_failure(&output, "up --plan --vpc-cidr");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_plan_with_more_workers_lists_their_instances_and_writes_nothing() {
    let cluster = TestCluster::new("change-plan");
    assert_success(&cluster.up(&["--pki-key", "ecdsa-p256"]), "up");
    let (before, inventory) = (state_bytes(&cluster), cluster.inventory());

    let output = cluster.groundup(&["up", "--plan", "--workers", "5"]);
    assert_success(&output, "up --plan --workers 5");
    let plan: PlanSection = serde_json::from_slice(&output.stdout).expect("the plan as JSON on stdout");
    let created: Vec<(&str, &str)> = plan
        .resources
        .iter()
        .filter(|r| r.action == Action::Create)
        .map(|r| (r.kind.as_str(), r.resource.as_str()))
        .collect();
    // The new workers get the next addresses (.23, .24) and what every later step makes per node,
    // each named after its host.
    assert_eq!(
        created,
        [
            ("instance", "worker-3"),
            ("instance", "worker-4"),
            ("certificate", "ip-172-31-0-23"),
            ("certificate", "ip-172-31-0-24"),
            ("kubeconfig", "ip-172-31-0-23.kubeconfig"),
            ("kubeconfig", "ip-172-31-0-24.kubeconfig"),
            ("node bundle", "ip-172-31-0-23"),
            ("node bundle", "ip-172-31-0-24"),
        ],
        "{plan:?}"
    );
    assert_eq!(state_bytes(&cluster), before, "a plan wrote the state file");
    assert_eq!(cluster.inventory(), inventory, "a plan changed the cloud");

    let output = cluster.groundup(&["up", "--plan", "--masters", "4"]);
    assert_success(&output, "up --plan --masters 4");
    assert!(stderr(&output).contains("warning: 4 masters"), "no etcd quorum warning: {}", stderr(&output));
    let output = cluster.groundup(&["init", "--endpoint", endpoint(), "--masters", "2"]);
    assert_success(&output, "init --masters 2");
    assert!(stderr(&output).contains("warning: 2 masters"), "no etcd quorum warning: {}", stderr(&output));
}

/// A new admin range adds the admin's access; the load balancer's subnet keeps the API port.
#[test]
fn a_new_admin_range_runs_every_step_again_and_only_adds_to_what_the_cluster_needs() {
    let cluster = TestCluster::new("change-admin");
    assert_success(&cluster.up(&["--to", "igw"]), "up --to igw");
    assert_success(&cluster.up(&["--to", "sg"]), "up --to sg");

    let planned = cluster.groundup(&["up", "--plan", "--to", "sg", "--admin-cidr", "203.0.113.0/24"]);
    assert_success(&planned, "up --plan --admin-cidr");
    let planned: PlanSection = serde_json::from_slice(&planned.stdout).unwrap();
    let changes = |logical: &str| &planned.resources.iter().find(|r| r.resource == logical).unwrap().changes;
    assert_eq!(
        changes("sg-masters"),
        &[
            "authorize tcp 6443 from 203.0.113.0/24, tcp 6443 from 172.31.0.0/24, tcp 22 from 203.0.113.0/24",
            "revoke tcp 22 from 172.31.0.0/16, tcp 6443 from 172.31.0.0/16",
        ],
        "the plan may revoke only what the old admin range gave the admin"
    );
    assert_eq!(changes("sg-nodes"), &["authorize tcp 22 from 203.0.113.0/24", "revoke tcp 22 from 172.31.0.0/16"]);

    let output = cluster.up(&["--to", "sg", "--admin-cidr", "203.0.113.0/24"]);
    assert_success(&output, "up --admin-cidr");
    // Not only the pending `routes` and `sg`: the done steps too converge to the new spec.
    assert!(stderr(&output).contains("[1/6] vpc"), "{}", stderr(&output));
    let state = cluster.state();
    assert_eq!(state.params.admin_cidr.to_string(), "203.0.113.0/24");
    let wanted = wanted_rules(&state.params);
    assert_eq!(cluster.group_rules(), wanted);
    for rule in [
        "sg-masters: tcp 6443 172.31.0.0/24",
        "sg-masters: tcp 6443 203.0.113.0/24",
        "sg-masters: tcp 6443 sg-nodes",
        "sg-nodes: tcp 22 203.0.113.0/24",
        "sg-nodes: tcp 10250 sg-masters",
    ] {
        assert!(wanted.iter().any(|r| r == rule), "{rule} missing from {wanted:?}");
    }
    let inventory = cluster.inventory().counts();
    assert_success(&cluster.up(&["--to", "sg"]), "up again");
    assert_eq!(cluster.inventory().counts(), inventory, "the second run created something");
}

/// An admin range with host bits is refused as a VPC range with host bits is: exit code 2,
/// the field named, and the range it probably meant.
#[test]
fn an_admin_range_with_host_bits_is_refused_like_a_vpc_range() {
    let cluster = TestCluster::new("change-hostbits");
    for (flag, value, field, meant) in [
        ("--admin-cidr", "1.2.3.4/24", "params.admin_cidr", "1.2.3.0/24"),
        ("--vpc-cidr", "10.0.0.1/16", "params.vpc_cidr", "10.0.0.0/16"),
    ] {
        let output = cluster.groundup(&["init", "--endpoint", endpoint(), flag, value]);
        let stderr = assert_clean_failure(&output, &format!("init {flag} {value}"));
        assert_eq!(output.status.code(), Some(2), "bad input exits with 2: {stderr}");
        assert!(stderr.contains(field) && stderr.contains(&format!("did you mean {meant}?")), "{stderr}");
    }
}

/// Only `compute` here: the load balancer's address reservations follow the nodes in `nlb`.
#[test]
fn more_workers_keep_the_existing_instances_and_add_theirs() {
    let cluster = TestCluster::new("change-scale");
    assert_success(&cluster.up(&["--pki-key", "ecdsa-p256"]), "up");
    let ids = |c: &TestCluster| -> Vec<(String, String, String)> {
        let nodes = c.state().compute.unwrap().nodes;
        nodes.into_iter().map(|n| (n.name, n.private_ip.to_string(), n.instance_id.to_string())).collect()
    };
    let before = ids(&cluster);

    assert_success(&cluster.up(&["--only", "compute", "--workers", "5"]), "up --workers 5");
    let after = ids(&cluster);
    assert_eq!(after[..6], before[..], "the existing nodes changed");
    let added: Vec<(&str, &str)> = after[6..].iter().map(|(name, ip, _)| (name.as_str(), ip.as_str())).collect();
    let (worker3, worker4) = (format!("{}-worker-3", cluster.name), format!("{}-worker-4", cluster.name));
    assert_eq!(added, [(worker3.as_str(), "172.31.0.23"), (worker4.as_str(), "172.31.0.24")]);
    assert_eq!(cluster.state().params.workers.len(), 5);
    assert_eq!(cluster.inventory().count(Kind::Instance), 8);
}

/// 3+3, then `up --workers 5`, `--workers 2`, `--masters 5` through the runner: after each,
/// the emulator holds exactly the planned instances, the load balancer targets exactly the
/// masters, `certs check` is clean, removed workers' certificates are retired, and the plan
/// made before the change listed its creates and deletions.
#[test]
fn scaling_through_up_converges_and_the_certificates_follow() {
    let cluster = TestCluster::new("scale-up");
    assert_success(&cluster.up(&["--pki-key", "ecdsa-p256"]), "up 3+3");
    let steps: [(&[&str], usize, usize); 3] =
        [(&["--workers", "5"], 3, 5), (&["--workers", "2"], 3, 2), (&["--masters", "5"], 5, 2)];
    for (flags, masters, workers) in steps {
        let planned = cluster.groundup(&[&["up", "--plan"][..], flags].concat());
        assert_success(&planned, "up --plan");
        let plan: PlanSection = serde_json::from_slice(&planned.stdout).unwrap();
        let instances = |action: Action| {
            plan.resources.iter().filter(|r| r.kind == Kind::Instance.label() && r.action == action).count()
        };
        let before = cluster.state().compute.unwrap().nodes.len();
        let after = masters + workers;
        assert_eq!(instances(Action::Create), after.saturating_sub(before), "{flags:?}: {plan:?}");
        assert_eq!(instances(Action::Delete), before.saturating_sub(after), "{flags:?}: {plan:?}");

        let applied = cluster.groundup(&[&["up"][..], flags].concat());
        assert_success(&applied, &format!("up {flags:?}"));
        let state = cluster.state();
        let compute = state.compute.as_ref().unwrap();
        assert_eq!((compute.masters().count(), compute.workers().count()), (masters, workers), "{flags:?}");
        assert_eq!(cluster.inventory().count(Kind::Instance), after, "{flags:?}: orphaned or missing instances");
        let mut targets = state.nlb.as_ref().unwrap().targets.clone();
        targets.sort();
        let mut master_ips: Vec<_> = compute.masters().map(|m| m.private_ip).collect();
        master_ips.sort();
        assert_eq!(targets, master_ips, "{flags:?}: the load balancer must target exactly the masters");
        let check = cluster.run_step("certs", &["check", "--context", "groundup.json"], "");
        assert_success(&check, &format!("certs check after {flags:?}"));
        local_files_follow_the_nodes(&cluster, &plan, before);
        let again = cluster.groundup(&["up"]);
        assert_success(&again, "the next up");
        let pending = cluster.pending_work();
        assert!(pending.is_empty(), "after {flags:?} and another up, a plan still finds work: {pending:?}");
    }
    let retired = cluster.dir.path().join("pki/retired");
    for i in 2..5 {
        assert!(
            retired.join(format!("ip-172-31-0-2{i}.pem")).exists()
                && retired.join(format!("ip-172-31-0-2{i}-key.pem")).exists(),
            "worker-{i}'s certificate and key were not retired"
        );
    }
    let api = cluster.state().certs.unwrap().certificates.into_iter().find(|c| c.name == "master-kubernetes").unwrap();
    assert!(
        api.sans.iter().any(|s| s == "IP:172.31.0.14"),
        "the API server certificate does not name master-4: {:?}",
        api.sans
    );
}

/// `tar tzf` of a node's archive, sorted (directories end in `/`).
fn archived(cluster: &TestCluster, host: &str) -> Vec<String> {
    let archive = cluster.dir.path().join(format!("nodes/{host}.tar.gz"));
    let output = std::process::Command::new("tar").arg("tzf").arg(&archive).output().unwrap();
    assert!(output.status.success(), "tar tzf {}: {}", archive.display(), stderr(&output));
    let mut listed: Vec<String> = String::from_utf8_lossy(&output.stdout).lines().map(String::from).collect();
    listed.sort();
    listed
}

/// Every file below `root`, relative to it, sorted.
fn files_below(root: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            match entry.file_type().unwrap().is_dir() {
                true => stack.push(entry.path()),
                false => found.push(entry.path().strip_prefix(root).unwrap().display().to_string()),
            }
        }
    }
    found.sort();
    found
}

/// The repro: a 1+1 cluster torn down and built again with the roles of its IPs
/// swapped. 172.31.0.10, a master before, is a worker now: its bundle and its archive hold
/// exactly a worker's files (no CA key, no API server or etcd files), and the plan said which
/// files go.
#[test]
fn a_node_whose_role_changed_gets_exactly_its_new_bundle_and_the_plan_lists_what_goes() {
    let cluster = TestCluster::new("role-swap");
    assert_success(&cluster.up(&["--masters", "1", "--workers", "1", "--pki-key", "ecdsa-p256"]), "up 1+1");
    assert!(archived(&cluster, "ip-172-31-0-10").contains(&"var/lib/kubernetes/ca-key.pem".to_string()));
    assert_success(&cluster.groundup(&["down", "--yes"]), "down --yes");
    let swap = ["--first-master-ip", "172.31.0.30", "--first-worker-ip", "172.31.0.10"];
    let plan = cluster.plan(&swap);
    let bundle = plan.resources.iter().find(|r| r.step == "bundles" && r.resource == "ip-172-31-0-10");
    let changes = bundle.map(|b| b.changes.clone()).unwrap_or_default();
    for goes in ["- /var/lib/kubernetes/ca-key.pem", "- /etc/etcd/peer-key.pem"] {
        assert!(changes.iter().any(|c| c.starts_with(goes)), "the plan does not say {goes}: {bundle:?}");
    }
    // A kubelet's certificate is named after its host: the worker now at .10 takes that host's
    // certificate, re-issued for its addresses with its key; the master at .30 gets its own. No
    // certificate names another node, so nothing needs --renew.
    let swapped = cluster.up(&swap);
    assert_success(&swapped, "up with the roles swapped");
    assert!(!stderr(&swapped).contains("--renew"), "{}", stderr(&swapped));

    let host = "ip-172-31-0-10";
    let worker = files_below(&cluster.dir.path().join("nodes").join(host));
    for master_only in ["var/lib/kubernetes/ca-key.pem", "etc/etcd/peer-key.pem", "etc/kubernetes/manifests/etcd.yaml"]
    {
        assert!(!worker.iter().any(|f| f == master_only), "a worker's bundle holds {master_only}: {worker:?}");
    }
    for own in [format!("var/lib/kubelet/{host}-key.pem"), "etc/kubernetes/manifests/kube-proxy.yaml".into()] {
        assert!(worker.contains(&own), "{own} missing: {worker:?}");
    }
    let listed = archived(&cluster, host);
    let (dirs, files): (Vec<&String>, Vec<&String>) = listed.iter().partition(|entry| entry.ends_with('/'));
    assert_eq!(files, worker.iter().collect::<Vec<_>>(), "the archive of a worker that was a master");
    for os in ["etc/", "var/", "var/lib/", "etc/systemd/system/", "etc/sysctl.d/"] {
        assert!(!dirs.iter().any(|d| *d == os), "the archive names {os}: {dirs:?}");
    }
    let master = archived(&cluster, "ip-172-31-0-30");
    assert!(master.contains(&"var/lib/kubernetes/ca-key.pem".to_string()), "{master:?}");
    assert!(cluster.pending_work().is_empty(), "a plan after the change still finds work");
}

/// Nothing of a node outlives it: the bundles (directory and archive) on disk are exactly
/// the nodes', the kubelets' kubeconfigs exactly the nodes', `status` counts what is on disk,
/// and the plan listed each file of a removed node that goes (its key is retired by certs).
fn local_files_follow_the_nodes(cluster: &TestCluster, plan: &PlanSection, nodes_before: usize) {
    let state = cluster.state();
    let compute = state.compute.as_ref().unwrap();
    let mut hosts: Vec<String> = compute.nodes.iter().map(|n| n.hostname.clone()).collect();
    hosts.sort();
    let mut kubelets: Vec<String> = compute.nodes.iter().map(|n| format!("{}.kubeconfig", n.hostname)).collect();
    kubelets.sort();
    let listing = |dir: &str, keep: &dyn Fn(&str, bool) -> Option<String>| {
        let mut found: Vec<String> = std::fs::read_dir(cluster.dir.path().join(dir))
            .unwrap()
            .flatten()
            .filter_map(|e| keep(&e.file_name().to_string_lossy(), e.file_type().unwrap().is_dir()))
            .collect();
        found.sort();
        found
    };
    let archives = listing("nodes", &|name, _| name.strip_suffix(".tar.gz").map(String::from));
    let dirs = listing("nodes", &|name, dir| dir.then(|| name.to_string()));
    assert_eq!((&archives, &dirs), (&hosts, &hosts), "bundles on disk are not the nodes'");
    let kubeconfigs = listing("kubeconfig", &|name, _| name.starts_with("ip-").then(|| name.to_string()));
    assert_eq!(kubeconfigs, kubelets, "the kubelets' kubeconfigs on disk are not the nodes'");

    let status = cluster.groundup(&["status"]);
    let table = String::from_utf8_lossy(&status.stdout);
    let bundles = table.lines().find(|l| l.split_whitespace().nth(1) == Some("bundles")).unwrap();
    assert!(bundles.ends_with(&format!(" {} nodes", archives.len())), "status: {bundles}");

    let removed = nodes_before.saturating_sub(hosts.len());
    let deleted = |step: &str| -> Vec<&groundup_contracts::plan::PlannedResource> {
        plan.resources.iter().filter(|r| r.step == step && r.action == Action::Delete).collect()
    };
    assert_eq!(deleted("bundles").len(), removed, "{:?}", plan.resources);
    assert_eq!(deleted("kubeconfig").len(), removed, "{:?}", plan.resources);
    for bundle in deleted("bundles") {
        let host = &bundle.resource;
        for goes in [format!("nodes/{host}.tar.gz"), format!("nodes/{host}/var/lib/kubelet/{host}-key.pem")] {
            assert!(bundle.changes.iter().any(|c| c == &format!("- {goes}")), "{goes} not listed: {bundle:?}");
        }
    }
}

#[test]
fn up_kubeadm_layout_on_a_built_cluster_adds_kubeadms_files_which_the_plan_shows_first() {
    let cluster = TestCluster::new("change-kubeadm");
    assert_success(&cluster.up(&["--pki-key", "ecdsa-p256"]), "up");
    let output = cluster.groundup(&["up", "--plan", "--kubeadm-layout"]);
    assert_success(&output, "up --plan --kubeadm-layout");
    let planned: PlanSection = serde_json::from_slice(&output.stdout).unwrap();
    let with = |action: Action| -> Vec<&str> {
        planned.resources.iter().filter(|r| r.action == action).map(|r| r.resource.as_str()).collect()
    };
    let created = with(Action::Create);
    // The masters have their kubelets' certificates in every layout already.
    assert_eq!(created.len(), 2 + 5 * 3, "2 admins' certificates, 5 .conf per master: {created:?}");
    assert!(created.contains(&"kubernetes-super-admin") && created.contains(&"kubeadm/ip-172-31-0-12/kubelet.conf"));
    assert_eq!(with(Action::Change), ["ip-172-31-0-10", "ip-172-31-0-11", "ip-172-31-0-12"], "the masters' bundles");
    let bundle = planned.resources.iter().find(|r| r.step == "bundles" && r.resource == "ip-172-31-0-10").unwrap();
    assert!(bundle.changes.iter().any(|c| c == "~ /etc/kubernetes/super-admin.conf"), "{bundle:?}");
    assert_eq!(cluster.state().params.pki.layout, Layout::Cfssl, "a plan changed the spec");

    assert_success(&cluster.up(&["--kubeadm-layout"]), "up --kubeadm-layout");
    assert_eq!(cluster.state().params.pki.layout, Layout::Kubeadm);
    let master = cluster.dir.path().join("nodes/ip-172-31-0-10/etc/kubernetes");
    assert!(master.join("kubelet.conf").exists() && master.join("pki/ca.crt").exists());
    let worker = cluster.dir.path().join("nodes/ip-172-31-0-20/etc/kubernetes");
    assert!(!worker.join("kubelet.conf").exists() && !worker.join("pki").exists(), "a worker got kubeadm's files");
    let output = cluster.groundup(&["up", "--plan"]);
    let planned: PlanSection = serde_json::from_slice(&output.stdout).unwrap();
    assert!(planned.resources.iter().all(|r| r.action == Action::Leave), "{planned:?}");
}

/// `--course-network` keeps the course's single group with exactly its five rules.
#[test]
fn the_course_network_has_exactly_the_course_rules() {
    let cluster = TestCluster::new("change-course-net");
    assert_success(
        &cluster.up(&["--to", "sg", "--course-network", "--admin-cidr", "0.0.0.0/0"]),
        "up --course-network",
    );
    assert_eq!(
        cluster.group_rules(),
        [
            "sg: icmp -1 0.0.0.0/0",
            "sg: tcp 22 0.0.0.0/0",
            "sg: tcp 2379 172.31.0.0/24",
            "sg: tcp 30000 172.31.0.0/24",
            "sg: tcp 6443 0.0.0.0/0"
        ]
    );
}

/// A message that asks the user to fix the command line is bad input, exit code 2: a step the
/// pipeline lacks, a range that runs backwards, a state file that is not there; nothing is written.
#[test]
fn a_selection_or_a_state_file_to_fix_is_bad_input() {
    let cluster = TestCluster::new("change-selection");
    for (args, said) in [
        (&["up", "--only", "nosuch"][..], "`nosuch` is not a step of this pipeline"),
        (&["up", "--plan", "--from", "nosuch"], "`nosuch` is not a step of this pipeline"),
        (&["up", "--from", "routes", "--to", "vpc"], "--from routes comes after --to vpc"),
        (&["status"], "no state file at"),
    ] {
        let output = cluster.groundup(args);
        let stderr = assert_clean_failure(&output, &args.join(" "));
        assert_eq!(output.status.code(), Some(2), "{args:?}: bad input exits with 2: {stderr}");
        assert!(stderr.contains(said), "{args:?}: {stderr}");
        assert!(!cluster.state_path().exists(), "{args:?} wrote a state file");
    }
}
