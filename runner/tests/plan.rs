//! `groundup up --plan` and `--plan` on a step: reports by reading, changes nothing, and is
//! never mistaken for a real run.

use groundup_contracts::plan::{Action, PlanSection};
use groundup_contracts::Target;
use groundup_testkit::{assert_clean_failure, assert_success, endpoint, FaultProxy, TestCluster};

/// 7 network resources (two security groups), 4 of the load balancer, a key pair and 6 instances, 3 CAs, 22
/// certificates (a kubelet's per node), 4 + 6 kubeconfigs, the encryption config, 6 node
/// bundles, the pod routes.
const RESOURCES: usize = 7 + 4 + 7 + 3 + 22 + 10 + 1 + 6 + 1;

fn plan(cluster: &TestCluster, extra: &[&str]) -> PlanSection {
    cluster.plan(extra)
}

fn actions(plan: &PlanSection) -> Vec<Action> {
    let mut actions: Vec<Action> = plan.resources.iter().map(|r| r.action).collect();
    actions.dedup();
    actions
}

fn entry<'a>(plan: &'a PlanSection, resource: &str) -> &'a groundup_contracts::plan::PlannedResource {
    plan.resources.iter().find(|r| r.resource == resource).unwrap_or_else(|| panic!("no `{resource}` in {plan:?}"))
}

fn nothing_exists(cluster: &TestCluster) -> bool {
    cluster.inventory().counts().values().all(|n| *n == 0)
}

/// Points the state file at a proxy that records every API call.
fn through_proxy(cluster: &TestCluster) -> FaultProxy {
    let proxy = FaultProxy::start(endpoint(), 0.0, 1);
    cluster.edit_state(|state| state.target = Target::Endpoint { endpoint: proxy.endpoint.clone() });
    proxy
}

/// A plan only reads: every call it sent must be a Describe or a Get.
fn assert_only_reads(proxy: &FaultProxy) {
    let actions = proxy.actions();
    assert!(actions.len() > 10, "the plan sent almost nothing: {actions:?}");
    let writes: Vec<&String> =
        actions.iter().filter(|a| !(a.starts_with("Describe") || a.starts_with("Get"))).collect();
    assert!(writes.is_empty(), "a plan sent {writes:?}");
}

#[test]
fn a_plan_for_a_new_cluster_lists_every_create_and_changes_nothing() {
    let cluster = TestCluster::new("plan-new");
    std::fs::write(cluster.state_path(), cluster.init(&[])).unwrap();
    let proxy = through_proxy(&cluster);
    let before = std::fs::read_to_string(cluster.state_path()).unwrap();

    let output = cluster.groundup(&["up", "--plan"]);
    assert_success(&output, "up --plan");
    let planned: PlanSection = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(planned.resources.len(), RESOURCES, "{planned:?}");
    assert_eq!(actions(&planned), [Action::Create]);
    let routes = entry(&planned, "route-table");
    assert!(routes.changes.iter().any(|c| c == "route 0.0.0.0/0 to (new igw)"), "{routes:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("+ create VPC"), "no summary on stderr: {stderr}");
    assert!(stderr.contains(&format!("{RESOURCES} to create")), "{stderr}");

    assert_only_reads(&proxy);
    assert!(nothing_exists(&cluster), "a plan created {:?}", cluster.inventory());
    assert_eq!(std::fs::read_to_string(cluster.state_path()).unwrap(), before, "a plan wrote the state file");
    assert!(!cluster.dir.path().join("pki").exists(), "a plan made the PKI directory");
    assert!(!cluster.dir.path().join("ssh").exists(), "a plan made an SSH key");
}

#[test]
fn after_up_a_plan_leaves_everything_and_adopts_what_the_state_forgot() {
    let cluster = TestCluster::new("plan-done");
    assert_success(&cluster.up(&[]), "up");
    let after_up = cluster.inventory();

    let proxy = through_proxy(&cluster);
    let planned = plan(&cluster, &[]);
    assert_eq!(planned.resources.len(), RESOURCES);
    assert_eq!(actions(&planned), [Action::Leave], "{planned:?}");
    assert_only_reads(&proxy);

    // As after a crash between the create call and the state write.
    let vpc_id = cluster.edit_state(|state| {
        state.certs.as_mut().unwrap().certificates.retain(|c| c.name != "admin");
        state.vpc.take().unwrap().id
    });
    let planned = plan(&cluster, &[]);
    assert_eq!(entry(&planned, "vpc").action, Action::Adopt);
    assert_eq!(entry(&planned, "vpc").id.as_deref(), vpc_id.known());
    assert_eq!(entry(&planned, "admin").action, Action::Adopt);
    assert_eq!(planned.resources.iter().filter(|r| r.action == Action::Leave).count(), RESOURCES - 2);
    assert_eq!(cluster.inventory(), after_up, "a plan changed the cloud");
}

#[test]
fn a_plan_on_a_step_goes_into_the_context_and_is_never_applied() {
    let cluster = TestCluster::new("plan-step");
    let init = cluster.init(&[]);
    let output = cluster.run_step("vpc", &["--plan"], &init);
    assert_success(&output, "groundup-vpc --plan");
    let planned = groundup_contracts::Context::from_json(&String::from_utf8(output.stdout).unwrap()).unwrap();
    assert_eq!(entry(planned.plan.as_ref().unwrap(), "vpc").action, Action::Create);
    assert!(planned.completed.is_empty(), "a plan marked the step done");

    let applied = cluster.step("dhcp", &planned.to_json());
    let stderr = assert_clean_failure(&applied, "a real step on a planned context");
    assert!(stderr.contains("--plan"), "{stderr}");
    assert_eq!(applied.status.code(), Some(2), "bad input exits with 2");
    assert!(nothing_exists(&cluster));
}

#[test]
fn bad_input_to_plan_changes_nothing() {
    let cluster = TestCluster::new("plan-bad");
    std::fs::write(cluster.state_path(), cluster.init(&[])).unwrap();
    let stderr =
        assert_clean_failure(&cluster.groundup(&["up", "--plan", "--name", "someone-else"]), "another cluster's state");
    assert!(stderr.contains("not `someone-else`"), "{stderr}");

    let corrupt = "{\"version\": 1, \"cluster\": ";
    std::fs::write(cluster.state_path(), corrupt).unwrap();
    let stderr = assert_clean_failure(&cluster.groundup(&["up", "--plan"]), "a corrupt state file");
    assert!(stderr.contains("state file"), "{stderr}");
    assert_eq!(std::fs::read_to_string(cluster.state_path()).unwrap(), corrupt);
    assert!(nothing_exists(&cluster));
}
