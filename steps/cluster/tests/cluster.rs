//! nlb and compute end to end on the emulator, through `groundup up`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use aws_sdk_ec2::types::{InstanceAttributeName, ResourceType};
use groundup_cloud::Identity;
use groundup_contracts::kinds::Kind;
use groundup_testkit::{assert_clean_failure, assert_success, endpoint, TestCluster};

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

fn course_counts(instances: usize) -> BTreeMap<Kind, usize> {
    let count = |kind: Kind| match kind {
        Kind::Instance => instances,
        // The masters' and the nodes'.
        Kind::SecurityGroup => 2,
        _ => 1,
    };
    Kind::ALL.into_iter().map(|kind| (kind, count(kind))).collect()
}

#[test]
fn up_creates_exactly_the_course_infrastructure_and_a_second_up_nothing() {
    let cluster = TestCluster::new("course");
    let first = cluster.up(&[]);
    assert_success(&first, "up");
    assert_eq!(cluster.inventory().counts(), course_counts(6));
    let state = cluster.state();
    let compute = state.compute.clone().unwrap();
    let ips: Vec<String> = compute.nodes.iter().map(|n| n.private_ip.to_string()).collect();
    assert_eq!(ips, ["172.31.0.10", "172.31.0.11", "172.31.0.12", "172.31.0.20", "172.31.0.21", "172.31.0.22"]);
    assert_eq!(compute.nodes[3].name, format!("{}-worker-0", cluster.name));
    assert_eq!(compute.nodes[3].hostname, "ip-172-31-0-20");
    assert!(compute.nodes.iter().all(|n| n.public_ip.is_some()));
    let nlb = state.nlb.clone().unwrap();
    assert_eq!(
        nlb.targets.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["172.31.0.10", "172.31.0.11", "172.31.0.12"]
    );
    assert!(nlb.dns_name.to_string().contains(&cluster.name));
    check_instances(&cluster.name, &compute.nodes, &state.params.kubernetes);
    check_reservations(&state.subnet.clone().unwrap().id.to_string());
    check_certificates(&cluster, &state);

    let key = cluster.dir.path().join(&compute.key_pair.private_key_path);
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o400);
    assert_eq!(std::fs::metadata(key.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    let saved = std::fs::read_to_string(cluster.state_path()).unwrap();
    assert!(!saved.contains("PRIVATE KEY") && !String::from_utf8_lossy(&first.stderr).contains("PRIVATE KEY"));

    let second = cluster.up(&[]);
    assert_success(&second, "second up");
    assert!(
        !String::from_utf8_lossy(&second.stderr).contains("created"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(cluster.inventory().counts(), course_counts(6));
    assert_eq!(cluster.state().compute.unwrap().nodes, compute.nodes);
}

/// Name tags, user data (the cluster's release's cloud-config) and source/dest check, as AWS
/// reports them.
fn check_instances(
    cluster: &str,
    nodes: &[groundup_contracts::infra::Node],
    kubernetes: &groundup_contracts::kubernetes::KubernetesParams,
) {
    block_on(async {
        let ec2 = groundup_testkit::client(endpoint()).await;
        for node in nodes {
            let out = ec2.describe_instances().instance_ids(node.instance_id.to_string()).send().await.unwrap();
            let instance = &out.reservations()[0].instances()[0];
            let name = instance.tags().iter().find(|t| t.key() == Some("Name")).and_then(|t| t.value());
            assert_eq!(name, Some(node.name.as_str()));
            let check = ec2
                .describe_instance_attribute()
                .instance_id(node.instance_id.to_string())
                .attribute(InstanceAttributeName::SourceDestCheck)
                .send()
                .await
                .unwrap();
            assert_eq!(check.source_dest_check().and_then(|v| v.value()), Some(false), "{}", node.name);
            let data = ec2
                .describe_instance_attribute()
                .instance_id(node.instance_id.to_string())
                .attribute(InstanceAttributeName::UserData)
                .send()
                .await
                .unwrap();
            let encoded = data.user_data().and_then(|v| v.value()).unwrap_or_default();
            let decoded = String::from_utf8(openssl::base64::decode_block(encoded).unwrap()).unwrap();
            let logical = groundup_contracts::infra::node_logical_name(node.role, node.index);
            let expected = groundup_cluster::user_data::cloud_config(&logical, kubernetes);
            assert_eq!(decoded, expected, "{cluster}: {}", node.name);
        }
    });
}

/// The node addresses are reserved, so no interface AWS places itself (the NLB's) can take one.
fn check_reservations(subnet: &str) {
    let mut reserved: Vec<String> = block_on(async {
        let ec2 = groundup_testkit::client(endpoint()).await;
        let out = ec2.get_subnet_cidr_reservations().subnet_id(subnet).send().await.unwrap();
        out.subnet_ipv4_cidr_reservations().iter().filter_map(|r| r.cidr().map(String::from)).collect()
    });
    reserved.sort();
    assert_eq!(reserved, ["172.31.0.10/31", "172.31.0.12/32", "172.31.0.20/31", "172.31.0.22/32"]);
}

/// After `up`, the PKI steps have run on what the infrastructure steps found.
fn check_certificates(cluster: &TestCluster, state: &groundup_contracts::Context) {
    let certs = &state.certs.as_ref().expect("certs ran").certificates;
    assert_eq!(certs.len(), 22);
    for record in certs {
        let out = std::process::Command::new("openssl")
            .args(["verify", "-CAfile", &format!("pki/{}.pem", record.signer), &record.cert_path])
            .current_dir(cluster.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", record.name, String::from_utf8_lossy(&out.stderr));
    }
    let api = certs.iter().find(|c| c.name == "master-kubernetes").unwrap();
    assert!(api.sans.contains(&format!("DNS:{}", state.nlb.as_ref().unwrap().dns_name)));
}

#[test]
fn a_target_group_changed_by_hand_is_brought_back_in_line() {
    let cluster = TestCluster::new("tgdrift");
    assert_success(&cluster.up(&["--to", "nlb"]), "up --to nlb");
    let group = cluster.state().nlb.unwrap().target_group_arn.to_string();
    let target =
        |ip: &str| aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder().id(ip).port(6443).build();
    block_on(async {
        let elb = elb_client().await;
        elb.deregister_targets().target_group_arn(&group).targets(target("172.31.0.11")).send().await.unwrap();
        elb.register_targets().target_group_arn(&group).targets(target("172.31.0.99")).send().await.unwrap();
    });
    let planned = cluster.groundup(&["up", "--plan", "--only", "nlb"]);
    assert_success(&planned, "up --plan --only nlb");
    let planned: serde_json::Value = serde_json::from_slice(&planned.stdout).unwrap();
    let changed: Vec<&serde_json::Value> =
        planned["resources"].as_array().unwrap().iter().filter(|r| r["action"] != "leave").collect();
    assert_eq!(changed.len(), 1, "{planned}");
    assert_eq!(changed[0]["resource"], "target-group");
    assert_eq!(changed[0]["changes"], serde_json::json!(["deregister 172.31.0.99", "register 172.31.0.11"]));

    let repaired = cluster.up(&["--only", "nlb"]);
    assert_success(&repaired, "up --only nlb");
    let stderr = String::from_utf8_lossy(&repaired.stderr);
    let logged = |line: &str| stderr.contains(&format!("target-group: {line}"));
    assert!(logged("deregister 172.31.0.99") && logged("register 172.31.0.11"), "{stderr}");
    let registered = block_on(async {
        let out = elb_client().await.describe_target_health().target_group_arn(&group).send().await.unwrap();
        let mut ids: Vec<String> =
            out.target_health_descriptions().iter().filter_map(|d| d.target()?.id().map(String::from)).collect();
        ids.sort();
        ids
    });
    assert_eq!(registered, ["172.31.0.10", "172.31.0.11", "172.31.0.12"]);
}

/// The target group asks the API server whether it is ready; new params change it in place.
#[test]
fn the_health_check_asks_readyz_and_changes_in_place() {
    use aws_sdk_elasticloadbalancingv2::types::ProtocolEnum;
    let cluster = TestCluster::new("healthcheck");
    assert_success(&cluster.up(&["--to", "nlb"]), "up --to nlb");
    let group = cluster.state().nlb.unwrap().target_group_arn.to_string();
    let health = || {
        block_on(async {
            let out = elb_client().await.describe_target_groups().target_group_arns(&group).send().await.unwrap();
            let g = out.target_groups()[0].clone();
            (
                g.health_check_protocol().cloned(),
                g.health_check_path().map(String::from),
                g.health_check_interval_seconds(),
                g.healthy_threshold_count(),
                g.unhealthy_threshold_count(),
            )
        })
    };
    assert_eq!(health(), (Some(ProtocolEnum::Https), Some("/readyz".into()), Some(10), Some(3), Some(3)));

    let planned = cluster.groundup(&[
        "up",
        "--plan",
        "--only",
        "nlb",
        "--health-check-interval",
        "30",
        "--unhealthy-threshold",
        "2",
    ]);
    assert_success(&planned, "up --plan with a new health check");
    let planned: serde_json::Value = serde_json::from_slice(&planned.stdout).unwrap();
    let changed: Vec<&serde_json::Value> =
        planned["resources"].as_array().unwrap().iter().filter(|r| r["action"] != "leave").collect();
    assert_eq!(changed.len(), 1, "{planned}");
    assert_eq!(
        changed[0]["changes"],
        serde_json::json!(["health check HTTPS GET /readyz every 30 s, healthy after 3, unhealthy after 2"])
    );
    assert_success(
        &cluster.up(&["--to", "nlb", "--health-check-interval", "30", "--unhealthy-threshold", "2"]),
        "up with a new health check",
    );
    assert_eq!(cluster.state().nlb.unwrap().target_group_arn, *group, "the target group was replaced");
    assert_eq!(health(), (Some(ProtocolEnum::Https), Some("/readyz".into()), Some(30), Some(3), Some(2)));
}

#[test]
fn nlb_wait_returns_once_the_load_balancer_is_active() {
    let cluster = TestCluster::new("nlbwait");
    assert_success(&cluster.up(&["--to", "nlb"]), "up --to nlb");
    let state = std::fs::read_to_string(cluster.state_path()).unwrap();
    let waited = cluster.run_step("nlb", &["--wait"], &state);
    assert_success(&waited, "groundup-nlb --wait");
    let arn = cluster.state().nlb.unwrap().arn;
    assert!(String::from_utf8_lossy(&waited.stderr).contains(&format!("nlb: {arn} is active")));
}

#[test]
fn a_listener_pointed_elsewhere_by_hand_forwards_to_the_cluster_again() {
    use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum};
    let cluster = TestCluster::new("lsdrift");
    assert_success(&cluster.up(&["--to", "nlb"]), "up --to nlb");
    let nlb = cluster.state().nlb.unwrap();
    let forwards_to = |listener: String| {
        block_on(async move {
            let out = elb_client().await.describe_listeners().listener_arns(listener).send().await.unwrap();
            out.listeners()[0]
                .default_actions()
                .iter()
                .filter_map(|a| a.target_group_arn().map(String::from))
                .collect::<Vec<_>>()
        })
    };
    let elsewhere = block_on(async {
        let elb = elb_client().await;
        let vpc = cluster.state().vpc.unwrap().id.to_string();
        let name = format!("{}-x", &cluster.name[..cluster.name.len().min(29)]);
        let other = elb
            .create_target_group()
            .name(name)
            .protocol(ProtocolEnum::Tcp)
            .port(6443)
            .vpc_id(vpc)
            .send()
            .await
            .unwrap();
        let other = other.target_groups()[0].target_group_arn().unwrap().to_string();
        let action = Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&other).build();
        elb.modify_listener().listener_arn(nlb.listener_arn.to_string()).default_actions(action).send().await.unwrap();
        other
    });
    assert_eq!(forwards_to(nlb.listener_arn.to_string()), [elsewhere]);

    let planned = cluster.groundup(&["up", "--plan", "--only", "nlb"]);
    assert_success(&planned, "up --plan --only nlb");
    let planned: serde_json::Value = serde_json::from_slice(&planned.stdout).unwrap();
    let listener = planned["resources"].as_array().unwrap().iter().find(|r| r["resource"] == "listener").unwrap();
    assert_eq!(listener["action"], "change", "{planned}");
    assert_eq!(listener["changes"], serde_json::json!([format!("forward to {}", nlb.target_group_arn)]));

    assert_success(&cluster.up(&["--only", "nlb"]), "up --only nlb");
    assert_eq!(forwards_to(nlb.listener_arn.to_string()), [nlb.target_group_arn.to_string()]);
}

async fn elb_client() -> aws_sdk_elasticloadbalancingv2::Client {
    let context = groundup_contracts::Context::from_json(&TestCluster::new("elb").init(&[])).unwrap();
    groundup_cloud::Aws::connect(&context, "test").await.expect("an emulator target").elb().clone()
}

#[test]
fn a_key_pair_whose_fingerprint_does_not_match_is_an_error() {
    let cluster = TestCluster::new("keymismatch");
    assert_success(&cluster.up(&[]), "up");
    let path = cluster.dir.path().join(cluster.state().compute.unwrap().key_pair.private_key_path);
    std::fs::remove_file(&path).unwrap();
    let ssh = groundup_runtime::files::ClusterDir::open(path.parent().unwrap(), &cluster.name).unwrap();
    let file = path.file_name().unwrap().to_str().unwrap();
    let another = groundup_cluster::keys::SshKey::generate(groundup_contracts::params::SshKeyType::Ed25519).unwrap();
    groundup_cluster::keys::write_private(&ssh, file, another).unwrap();
    let stderr = assert_clean_failure(&cluster.up(&["--only", "compute"]), "compute with another key");
    assert!(stderr.contains("fingerprint"), "{stderr}");
    assert_eq!(cluster.inventory().count(Kind::KeyPair), 1);
}

/// compute's head start (`--prepare`, which `up` runs in the background) makes the SSH key
/// with no AWS call (its endpoint is a closed port), once; `compute` imports that key; a plan
/// refuses the head start; and a cluster that records a key pair gets no key from it.
#[test]
fn the_ssh_key_made_ahead_is_the_one_compute_imports() {
    let cluster = TestCluster::new("sshahead");
    let offline = cluster.init(&[]).replace(endpoint(), "http://127.0.0.1:9");
    assert_success(&cluster.run_step("compute", &["--prepare"], &offline), "compute --prepare without an emulator");
    let key = cluster.dir.path().join("ssh").join(format!("{}.id_ed25519", cluster.name));
    let made = std::fs::read(&key).unwrap();
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o400);
    assert_success(&cluster.run_step("compute", &["--prepare"], &offline), "a second head start");
    assert_eq!(std::fs::read(&key).unwrap(), made, "a second head start replaced the key");
    assert_clean_failure(&cluster.run_step("compute", &["--prepare", "--plan"], &offline), "a planned head start");

    assert_success(&cluster.up(&[]), "up");
    assert_eq!(std::fs::read(&key).unwrap(), made, "up replaced the key made ahead");
    let imported = cluster.state().compute.unwrap().key_pair.fingerprint;
    assert_eq!(imported, groundup_cluster::keys::read_private(&key).unwrap().fingerprint());

    std::fs::remove_file(&key).unwrap();
    let recorded = std::fs::read_to_string(cluster.state_path()).unwrap();
    assert_success(
        &cluster.run_step("compute", &["--prepare"], &recorded),
        "a head start for a cluster with a key pair",
    );
    assert!(!key.exists(), "the head start made a key for a cluster whose key pair AWS holds");
}

#[test]
fn an_instance_launched_before_a_crash_is_adopted_not_duplicated() {
    let cluster = TestCluster::new("crashrun");
    assert_success(&cluster.up(&["--to", "nlb"]), "up --to nlb");
    let state = cluster.state();
    // What a run killed right after RunInstances leaves: a tagged instance the state never saw.
    let orphan = block_on(async {
        let ec2 = groundup_testkit::client(endpoint()).await;
        let identity = Identity::new(&cluster.name);
        let interface = aws_sdk_ec2::types::InstanceNetworkInterfaceSpecification::builder()
            .device_index(0)
            .subnet_id(state.subnet.as_ref().unwrap().id.to_string())
            .private_ip_address("172.31.0.10")
            .groups(state.sg.as_ref().unwrap().groups[0].id.to_string())
            .build();
        let out = ec2
            .run_instances()
            .image_id("ami-785db401")
            .instance_type(aws_sdk_ec2::types::InstanceType::from(state.params.instance_type.as_str()))
            .min_count(1)
            .max_count(1)
            .network_interfaces(interface)
            .tag_specifications(identity.tag_spec(
                ResourceType::Instance,
                "master-0",
                &format!("{}-master-0", cluster.name),
            ))
            .send()
            .await
            .unwrap();
        out.instances()[0].instance_id().unwrap().to_string()
    });
    let resumed = cluster.up(&[]);
    assert_success(&resumed, "resume");
    // One log style for cloud and local changes: `<step>: <name>: <what>`.
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(stderr.contains(&format!("compute: master-0: found instance {orphan}")), "{stderr}");
    assert_eq!(cluster.inventory().count(Kind::Instance), 6);
    assert_eq!(cluster.state().compute.unwrap().nodes[0].instance_id, *orphan);
}

#[test]
fn bad_node_plans_are_rejected_before_any_aws_call() {
    let cluster = TestCluster::new("badnodes");
    assert_success(&cluster.up(&["--to", "sg"]), "up --to sg");
    let good: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cluster.state_path()).unwrap()).unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut doc = good.clone();
        f(&mut doc);
        doc.to_string()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "outside the subnet",
            edit(&|d| d["params"]["masters"][0]["private_ip"] = "172.31.1.10".into()),
            "params.masters[0].private_ip",
        ),
        (
            "duplicated",
            edit(&|d| d["params"]["workers"][1]["private_ip"] = "172.31.0.10".into()),
            "params.workers[1].private_ip",
        ),
        (
            "AWS-reserved .1",
            edit(&|d| d["params"]["masters"][1]["private_ip"] = "172.31.0.1".into()),
            "params.masters[1].private_ip",
        ),
        (
            "AWS-reserved .255",
            edit(&|d| d["params"]["workers"][0]["private_ip"] = "172.31.0.255".into()),
            "params.workers[0].private_ip",
        ),
        (
            "unknown instance type",
            edit(&|d| d["params"]["instance_type"] = "t2.enormous".into()),
            "params.instance_type",
        ),
        (
            "more nodes than addresses",
            edit(&|d| {
                let workers: Vec<serde_json::Value> = (0..12)
                    .map(|i| serde_json::json!({"private_ip": format!("172.31.0.{}", 4 + i), "pod_cidr": format!("172.20.{i}.0/24")}))
                    .collect();
                d["params"]["subnet_cidr"] = "172.31.0.0/28".into();
                d["params"]["masters"] = serde_json::json!([{"private_ip": "172.31.0.14"}]);
                d["params"]["workers"] = workers.into();
            }),
            "params.workers",
        ),
        (
            "an unknown image id",
            edit(&|d| d["params"]["image"] = serde_json::json!({"by": "id", "id": "ami-0123456789abcdef0"})),
            "ami-0123456789abcdef0 does not exist in us-east-2",
        ),
        (
            "an image lookup that finds nothing",
            edit(&|d| {
                d["params"]["image"] =
                    serde_json::json!({"by": "newest", "owner": "099720109477", "name_pattern": "no-such-image-*"})
            }),
            "no image of owner 099720109477 named like `no-such-image-*` (x86_64, EBS) in us-east-2",
        ),
    ];
    for (what, input, field) in cases {
        let stderr = assert_clean_failure(&cluster.step("compute", &input), what);
        assert!(stderr.contains(field), "{what}: expected {field} in {stderr}");
    }
    assert_eq!(cluster.inventory().count(Kind::Instance), 0);
    assert_eq!(cluster.inventory().count(Kind::KeyPair), 0);
}

#[test]
fn five_masters_and_fifty_workers() {
    let cluster = TestCluster::new("scale");
    assert_success(&cluster.up(&["--masters", "5", "--workers", "50"]), "up 5+50");
    assert_eq!(cluster.inventory().count(Kind::Instance), 55);
    let state = cluster.state();
    assert_eq!(state.nlb.unwrap().targets.len(), 5);
    let nodes = state.compute.unwrap().nodes;
    assert_eq!(nodes.last().unwrap().private_ip.to_string(), "172.31.0.69");
    assert_eq!(nodes.last().unwrap().pod_cidr.unwrap().to_string(), "172.20.49.0/24");
}

/// An image id the region does not have is the user's to fix: exit 2, naming the parameter,
/// before anything is launched.
#[test]
fn an_image_id_the_region_lacks_is_bad_input() {
    let cluster = TestCluster::new("noimage");
    let context = cluster.pipe(&cluster.init(&["--image-id", "ami-0123456789abcdef0"]), &["vpc", "subnet", "sg"]);
    let compute = cluster.step("compute", &context);
    let stderr = assert_clean_failure(&compute, "compute with an image the region lacks");
    assert_eq!(compute.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ami-0123456789abcdef0") && stderr.contains("params.image.id"), "{stderr}");
    assert_eq!(cluster.inventory().count(Kind::Instance), 0);
}

/// An instance whose user data is not what the spec gives now (another groundup release, a
/// hand edit) is never replaced: the plan lists it as running older user data, a run keeps it
/// and warns, and the other instances are not listed.
#[test]
fn an_instance_with_older_user_data_is_listed_never_replaced() {
    let cluster = TestCluster::new("old-user-data");
    assert_success(&cluster.up(&["--masters", "1", "--workers", "1", "--to", "compute"]), "up 1+1 to compute");
    let nodes = cluster.state().compute.unwrap().nodes;
    let (old, current) = (&nodes[0], &nodes[1]);
    block_on(async {
        let ec2 = groundup_testkit::client(endpoint()).await;
        let older = aws_sdk_ec2::types::SecureBlobAttributeValue::builder()
            .value(aws_smithy_types::Blob::new(openssl::base64::encode_block(b"name=master-0")))
            .build();
        ec2.modify_instance_attribute().instance_id(old.instance_id.to_string()).user_data(older).send().await.unwrap();
    });
    let plan = cluster.plan(&["--to", "compute"]);
    let listed: Vec<&str> = plan
        .resources
        .iter()
        .filter(|r| r.changes.iter().any(|c| c.starts_with("runs older user data")))
        .map(|r| r.resource.as_str())
        .collect();
    assert_eq!(listed, ["master-0"], "{:?}", plan.resources);
    let rerun = cluster.up(&["--from", "compute", "--to", "compute"]);
    assert_success(&rerun, "up again");
    // The run warns in the gate's one style, naming the instance to terminate.
    let warned = format!("compute: master-0: runs older user data (kept: terminate {}", old.instance_id);
    assert!(String::from_utf8_lossy(&rerun.stderr).contains(&warned), "{}", String::from_utf8_lossy(&rerun.stderr));
    let after = cluster.state().compute.unwrap().nodes;
    assert_eq!(
        (&after[0].instance_id, &after[1].instance_id),
        (&old.instance_id, &current.instance_id),
        "an instance was replaced"
    );
}
