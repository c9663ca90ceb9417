//! Where `up`'s time goes: `--timings` reports every step's calls and keys, and `--wait`
//! overlaps the load balancer's provisioning with the instances' start. No test asserts a time.

use std::time::Duration;

use groundup_testkit::{assert_success, endpoint, FaultProxy, Slow, TestCluster};
use serde_json::Value;

const CLOUD_STEPS: &[&str] = &["vpc", "dhcp", "subnet", "igw", "routes", "sg", "nlb", "compute"];

/// Every step is reported, with calls for the cloud steps and none for the PKI steps, and
/// the calls add up to exactly what reached the endpoint (a proxy that faults nothing counts).
#[test]
fn timings_json_reports_every_step_and_every_call() {
    let proxy = FaultProxy::start(endpoint(), 0.0, 0);
    let cluster = TestCluster::new("timings");
    let output = cluster.groundup(&[
        "up",
        "--name",
        &cluster.name,
        "--endpoint",
        &proxy.endpoint,
        "--pki-key",
        "ecdsa-p256",
        "--timings=json",
    ]);
    assert_success(&output, "up --timings=json");
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    let steps = report["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(names, cluster.state().pipeline);
    for step in steps {
        let (name, calls) = (step["step"].as_str().unwrap(), step["api_calls"].as_u64().unwrap());
        if CLOUD_STEPS.contains(&name) {
            assert!(calls > 0, "{name} reported no API call: {step}");
        } else {
            assert_eq!(calls, 0, "{name} is a PKI step: {step}");
        }
        assert!(step["wall_seconds"].as_f64().unwrap() > 0.0, "{step}");
    }
    let keys = |name: &str| steps.iter().find(|s| s["step"] == name).unwrap()["keys"].as_u64().unwrap();
    assert_eq!(keys("compute"), 1, "the SSH key: {report}");
    // The head start (`groundup-ca --prepare`, counted with `ca`) makes the CAs' and the
    // certificates' keys while the cloud steps run; `certs` makes those it did not: each once.
    // 22 certificates: the course's 19 and a kubelet pair for each of the 3 masters.
    assert_eq!(keys("ca") + keys("certs"), 3 + 22, "three CAs and 22 certificates: {report}");
    let total: u64 = steps.iter().map(|s| s["api_calls"].as_u64().unwrap()).sum();
    let sent = proxy.actions().iter().filter(|a| !a.is_empty()).count() as u64;
    assert_eq!(total, sent, "the steps reported {total} calls, the endpoint got {sent}");

    let table = cluster.groundup(&["up", "--only", "vpc", "--timings"]);
    assert_success(&table, "up --timings");
    assert!(table.stdout.is_empty(), "the table goes to stderr");
    let stderr = String::from_utf8_lossy(&table.stderr);
    assert!(stderr.lines().any(|l| l.starts_with("vpc ") && l.split_whitespace().nth(2) != Some("0")), "{stderr}");
}

/// Under a proxy that keeps the load balancer provisioning and instances pending for a
/// while, `up --wait` returns with both ready, and the instances are launched while the
/// load balancer still provisions (the waits overlap instead of adding up).
#[test]
fn up_wait_launches_instances_while_the_balancer_provisions() {
    let slow = Slow { latency: Duration::ZERO, provisioning: Duration::from_secs(10), pending: Duration::from_secs(2) };
    let proxy = FaultProxy::slow(endpoint(), slow);
    let cluster = TestCluster::new("wait");
    let output =
        cluster.groundup(&["up", "--name", &cluster.name, "--endpoint", &proxy.endpoint, "--to", "compute", "--wait"]);
    assert_success(&output, "up --wait");
    let answers = proxy.answers();
    let position = |wanted: &str| answers.iter().position(|a| a == wanted);
    let last = |action: &str| answers.iter().rev().find(|a| a.starts_with(action)).cloned();
    let launched = position("RunInstances").expect("instances launched");
    let last_provisioning = answers.iter().rposition(|a| a == "DescribeLoadBalancers (held)");
    assert!(
        last_provisioning.is_some_and(|p| p > launched),
        "no wait for the load balancer after the launch: {answers:?}"
    );
    assert!(position("DescribeInstances (held)").is_some(), "no wait for the instances: {answers:?}");
    assert_eq!(last("DescribeLoadBalancers").as_deref(), Some("DescribeLoadBalancers"), "ended before active");
    assert_eq!(last("DescribeInstances").as_deref(), Some("DescribeInstances"), "ended before running");
}
