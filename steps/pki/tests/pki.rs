//! groundup-ca | groundup-certs on the example context, checked with the openssl CLI and a
//! real etcd. Runs without AWS: the context carries what the infrastructure steps found.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const EXAMPLE: &str = include_str!("../../../contracts/examples/03-infra.json");

fn run(bin: &str, args: &[&str], stdin: &str, dir: &Path) -> Output {
    use std::io::Write;
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn ca(stdin: &str, dir: &Path) -> Output {
    run(env!("CARGO_BIN_EXE_groundup-ca"), &[], stdin, dir)
}

fn certs(args: &[&str], stdin: &str, dir: &Path) -> Output {
    run(env!("CARGO_BIN_EXE_groundup-certs"), args, stdin, dir)
}

fn ok(output: &Output, what: &str) -> String {
    assert!(output.status.success(), "{what}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn failed(output: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "{what} should fail");
    assert!(output.stdout.is_empty(), "{what} wrote on stdout");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    stderr
}

/// A fresh PKI in a temporary directory: (dir, context after certs).
fn fresh() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let after_ca = ok(&ca(EXAMPLE, dir.path()), "groundup-ca");
    let after_certs = ok(&certs(&[], &after_ca, dir.path()), "groundup-certs");
    (dir, after_certs)
}

fn openssl(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("the openssl CLI is needed");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn every_certificate_verifies_against_its_ca_with_the_expected_subject_and_usages() {
    let (dir, context) = fresh();
    let doc: serde_json::Value = serde_json::from_str(&context).unwrap();
    let records = doc["certs"]["certificates"].as_array().unwrap();
    assert_eq!(records.len(), 19);
    for record in records {
        let (cert, signer) = (record["cert_path"].as_str().unwrap(), record["signer"].as_str().unwrap());
        let (verified, text) = openssl(&["verify", "-CAfile", &format!("pki/{signer}.pem"), cert], dir.path());
        assert!(verified, "{cert} against {signer}: {text}");
        let key = dir.path().join(record["key_path"].as_str().unwrap());
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600, "{}", key.display());
    }
    assert_eq!(std::fs::metadata(dir.path().join("pki")).unwrap().permissions().mode() & 0o777, 0o700);
    assert!(!context.contains("PRIVATE KEY"));

    let show = |name: &str| {
        openssl(
            &[
                "x509",
                "-noout",
                "-subject",
                "-ext",
                "subjectAltName,extendedKeyUsage",
                "-in",
                &format!("pki/{name}.pem"),
            ],
            dir.path(),
        )
        .1
    };
    let api = show("master-kubernetes");
    assert!(api.contains("CN = kubernetes") && api.contains("TLS Web Server Authentication"), "{api}");
    assert!(api.contains("DNS:kubernetes.default.svc.cluster.local") && api.contains("IP Address:10.32.0.1"), "{api}");
    assert!(api.contains("DNS:k8s-cluster-50dc6c495c0c9188.elb.us-east-2.amazonaws.com"), "{api}");
    let kubelet = show("k8s-cluster-worker-2");
    assert!(kubelet.contains("O = system:nodes") && kubelet.contains("CN = system:node:ip-172-31-0-22"), "{kubelet}");
    assert!(kubelet.contains("TLS Web Server Authentication, TLS Web Client Authentication"), "{kubelet}");
    assert!(kubelet.contains("IP Address:3.15.20.102"), "{kubelet}");
    let proxy = show("kube-proxy");
    assert!(proxy.contains("O = system:node-proxier") && proxy.contains("CN = system:kube-proxy"), "{proxy}");
    assert!(show("admin").contains("O = system:masters"));
    let (etcd_signed, _) = openssl(&["verify", "-CAfile", "pki/ca.pem", "pki/apiserver-etcd-client.pem"], dir.path());
    assert!(!etcd_signed, "the etcd client certificate must not verify against the Kubernetes CA");
}

#[test]
fn a_rerun_keeps_every_certificate_and_a_changed_context_needs_renew() {
    let (dir, context) = fresh();
    let again = ok(&certs(&[], &ok(&ca(&context, dir.path()), "ca again"), dir.path()), "certs again");
    let fingerprints = |text: &str| -> Vec<String> {
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        doc["certs"]["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["sha256"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(fingerprints(&context), fingerprints(&again));

    let moved = context
        .replace("k8s-cluster-50dc6c495c0c9188.elb.us-east-2.amazonaws.com", "api-moved.elb.us-east-2.amazonaws.com");
    let stderr = failed(&certs(&[], &moved, dir.path()), "certs after the NLB moved");
    assert!(stderr.contains("master-kubernetes") && stderr.contains("--renew"), "{stderr}");
    let renewed = ok(&certs(&["--renew"], &moved, dir.path()), "certs --renew");
    let (before, after) = (fingerprints(&context), fingerprints(&renewed));
    assert_ne!(before[0], after[0], "the API server certificate must be renewed");
    assert_eq!(before[1..], after[1..], "only the API server certificate changes");
    let (_, api) =
        openssl(&["x509", "-noout", "-ext", "subjectAltName", "-in", "pki/master-kubernetes.pem"], dir.path());
    assert!(api.contains("api-moved.elb"), "{api}");
}

#[test]
fn check_reports_a_tampered_certificate_and_fails() {
    let (dir, context) = fresh();
    ok(&certs(&["check"], &context, dir.path()), "check on a good PKI");
    std::fs::copy(dir.path().join("pki/kube-proxy.pem"), dir.path().join("pki/admin.pem")).unwrap();
    let stderr = failed(&certs(&["check"], &context, dir.path()), "check on a tampered PKI");
    assert!(stderr.contains("admin") && stderr.contains("key does not match"), "{stderr}");
}

#[test]
fn a_ca_whose_key_does_not_match_is_an_error_not_a_replacement() {
    let (dir, context) = fresh();
    std::fs::copy(dir.path().join("pki/etcd-ca-key.pem"), dir.path().join("pki/ca-key.pem")).unwrap();
    let before = std::fs::read(dir.path().join("pki/ca.pem")).unwrap();
    let stderr = failed(&ca(&context, dir.path()), "ca with a foreign key");
    assert!(stderr.contains("ca-key.pem does not match ca.pem"), "{stderr}");
    assert_eq!(std::fs::read(dir.path().join("pki/ca.pem")).unwrap(), before);
}

#[test]
fn bad_input_is_refused_with_nothing_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    assert!(failed(&ca("", dir.path()), "empty stdin").contains("empty"));
    let mut doc: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
    doc.as_object_mut().unwrap().remove("compute");
    let after_ca = ok(&ca(&doc.to_string(), dir.path()), "ca without compute");
    assert!(failed(&certs(&[], &after_ca, dir.path()), "certs without compute").contains("groundup-compute"));
    assert!(failed(&certs(&[], EXAMPLE, dir.path()), "certs without ca").contains("groundup-ca"));
}

/// etcd with the generated server certificate and client-certificate auth accepts the API
/// server's etcd client certificate and refuses one from another CA.
#[test]
fn a_real_etcd_accepts_the_etcd_client_certificate_and_refuses_another_ca() {
    assert!(
        Command::new("etcd").arg("--version").output().is_ok(),
        "etcd is not installed: apt-get install etcd-server etcd-client (.ci/run does)"
    );
    let (dir, _) = fresh();
    let port = |_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (client_port, peer_port) = (port(0), port(1));
    let client_url = format!("https://127.0.0.1:{client_port}");
    let server = "pki/etcd-server-ip-172-31-0-10";
    let etcd = Command::new("etcd")
        .args(["--name", "ip-172-31-0-10", "--data-dir", "etcd-data"])
        .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer_port}")])
        .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{peer_port}")])
        .args(["--initial-cluster", &format!("ip-172-31-0-10=http://127.0.0.1:{peer_port}")])
        .args(["--cert-file", &format!("{server}.pem"), "--key-file", &format!("{server}-key.pem")])
        .args(["--client-cert-auth", "--trusted-ca-file", "pki/etcd-ca.pem"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = KillOnDrop(etcd);
    let etcdctl = |cert: &str, args: &[&str]| {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([
                "--endpoints",
                &client_url,
                "--cacert",
                "pki/etcd-ca.pem",
                "--dial-timeout",
                "2s",
                "--command-timeout",
                "3s",
            ])
            .args(["--cert", &format!("pki/{cert}.pem"), "--key", &format!("pki/{cert}-key.pem")])
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let ready = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        etcdctl("apiserver-etcd-client", &["put", "groundup", "works"]).status.success()
    });
    assert!(ready, "etcd never accepted the API server's etcd client certificate");
    let got = etcdctl("apiserver-etcd-client", &["get", "groundup", "--print-value-only"]);
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "works");
    let refused = etcdctl("admin", &["get", "groundup"]);
    assert!(!refused.status.success(), "etcd accepted a certificate from the Kubernetes CA");
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_cfssl_request_becomes_a_certificate_that_later_runs_keep() {
    let (dir, context) = fresh();
    std::fs::write(
        dir.path().join("dashboard-csr.json"),
        r#"{"CN":"dashboard","hosts":["dashboard.internal","10.0.0.5"],"key":{"algo":"rsa","size":2048},"names":[{"C":"UK","L":"England","O":"ops","OU":"DEVOPS","ST":"London"}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("ca-config.json"),
        r#"{"signing":{"default":{"expiry":"8760h"},"profiles":{"kubernetes":{"usages":["signing","key encipherment","server auth","client auth"],"expiry":"8760h"}}}}"#,
    )
    .unwrap();
    let args = ["--csr", "dashboard-csr.json", "--config", "ca-config.json", "--profile", "kubernetes"];
    let with_custom = ok(&certs(&args, &context, dir.path()), "certs --csr");
    let (verified, text) = openssl(&["verify", "-CAfile", "pki/ca.pem", "pki/dashboard.pem"], dir.path());
    assert!(verified, "{text}");
    let (_, shown) =
        openssl(&["x509", "-noout", "-subject", "-ext", "subjectAltName", "-in", "pki/dashboard.pem"], dir.path());
    assert!(
        shown.contains("O = ops") && shown.contains("DNS:dashboard.internal") && shown.contains("IP Address:10.0.0.5"),
        "{shown}"
    );

    let again = ok(&certs(&[], &with_custom, dir.path()), "certs after --csr");
    let doc: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(doc["params"]["pki"]["custom"][0]["name"], "dashboard");
    let records = doc["certs"]["certificates"].as_array().unwrap();
    assert!(records.iter().any(|r| r["name"] == "dashboard"), "the custom certificate is listed");

    std::fs::write(dir.path().join("bad-csr.json"), r#"{"CN":"system:system:kube-scheduler"}"#).unwrap();
    let stderr = failed(&certs(&["--csr", "bad-csr.json"], &context, dir.path()), "a doubled prefix");
    assert!(stderr.contains("system:system:"), "{stderr}");
}

#[test]
fn the_kubeadm_layout_gives_each_master_its_pki_tree() {
    let dir = tempfile::tempdir().unwrap();
    let context = EXAMPLE.replace("\"layout\": \"cfssl\"", "\"layout\": \"kubeadm\"");
    assert_ne!(context, EXAMPLE, "the example context must name its layout");
    ok(&certs(&[], &ok(&ca(&context, dir.path()), "ca"), dir.path()), "certs with the kubeadm layout");
    let root = dir.path().join("pki/kubeadm/ip-172-31-0-11/etc/kubernetes/pki");
    for file in [
        "ca.crt",
        "apiserver.crt",
        "apiserver-etcd-client.crt",
        "front-proxy-client.crt",
        "etcd/ca.crt",
        "etcd/server.crt",
        "etcd/peer.crt",
        "sa.pub",
    ] {
        assert!(root.join(file).exists(), "{file} missing");
    }
    for key in ["ca.key", "apiserver.key", "etcd/server.key", "sa.key"] {
        assert_eq!(std::fs::metadata(root.join(key)).unwrap().permissions().mode() & 0o777, 0o600, "{key}");
    }
    let (verified, text) = openssl(&["verify", "-CAfile", "etcd/ca.crt", "etcd/server.crt"], &root);
    assert!(verified, "{text}");
    let (_, server) = openssl(&["x509", "-noout", "-subject", "-in", "etcd/server.crt"], &root);
    assert!(server.contains("CN = ip-172-31-0-11"), "each master gets its own etcd certificate: {server}");
}
