//! groundup-kubeconfig after groundup-ca | groundup-certs on the example context, checked with
//! a real kubectl against a TLS endpoint on 127.0.0.1 that serves the cluster's API server
//! certificate and requires client certificates from the cluster CA.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslVerifyMode};
use openssl::x509::X509;

use groundup_testkit::{ok, run};

const EXAMPLE: &str = include_str!("../../../contracts/examples/03-infra.json");

fn step(name: &str, args: &[&str], stdin: &str, dir: &Path) -> Output {
    let bin = match name {
        "ca" => env!("CARGO_BIN_EXE_groundup-ca"),
        "certs" => env!("CARGO_BIN_EXE_groundup-certs"),
        _ => env!("CARGO_BIN_EXE_groundup-kubeconfig"),
    };
    run(bin, args, stdin, dir)
}

/// ca | certs | kubeconfig, with ECDSA keys to keep it quick: (dir, context).
fn cluster() -> (tempfile::TempDir, String) {
    cluster_with_layout("cfssl")
}

fn cluster_with_layout(layout: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut context: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
    context["params"]["pki"]["key"] = "ecdsa-p256".into();
    context["params"]["pki"]["layout"] = layout.into();
    let context = ok(&step("ca", &[], &context.to_string(), dir.path()), "ca");
    let context = ok(&step("certs", &[], &context, dir.path()), "certs");
    let context = ok(&step("kubeconfig", &[], &context, dir.path()), "kubeconfig");
    (dir, context)
}

/// A TLS endpoint on 127.0.0.1 with the API server's certificate that requires a client
/// certificate from `ca.pem` and answers `/version`; it notes each client's subject.
fn api_server(pki: &Path) -> (u16, Arc<Mutex<Vec<String>>>) {
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    acceptor.set_certificate_chain_file(pki.join("master-kubernetes.pem")).unwrap();
    acceptor.set_private_key_file(pki.join("master-kubernetes-key.pem"), SslFiletype::PEM).unwrap();
    acceptor.set_ca_file(pki.join("ca.pem")).unwrap();
    acceptor.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    let acceptor = acceptor.build();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let noted = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let Ok(mut tls) = acceptor.accept(stream) else { continue };
            if let Some(peer) = tls.ssl().peer_certificate() {
                noted.lock().unwrap().push(subject(&peer));
            }
            let mut request = [0u8; 4096];
            let _ = tls.read(&mut request);
            let body = r#"{"major":"1","minor":"32","gitVersion":"v1.32.0-groundup-test"}"#;
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(response.as_bytes());
            let _ = tls.shutdown();
        }
    });
    (port, seen)
}

fn subject(cert: &X509) -> String {
    cert.subject_name()
        .entries()
        .map(|e| {
            format!("{}={}", e.object().nid().short_name().unwrap_or("?"), e.data().to_string().unwrap_or_default())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn kubectl(home: &Path, args: &[&str]) -> Output {
    Command::new("kubectl").args(args).env("HOME", home).env_remove("KUBECONFIG").output().expect("kubectl is needed")
}

#[test]
fn every_kubeconfig_reaches_the_api_endpoint_as_its_user_and_a_foreign_ca_is_refused() {
    let (dir, context) = cluster();
    let state: serde_json::Value = serde_json::from_str(&context).unwrap();
    let files = state["kubeconfig"]["files"].as_array().unwrap();
    assert_eq!(
        files.len(),
        4 + 3 + 3,
        "admin, controller manager, scheduler, kube-proxy and a kubelet on each of 3 masters and 3 workers"
    );
    assert!(!context.contains("client-key-data") && !context.contains("PRIVATE KEY"), "key material in the context");
    let kubeconfig_dir = dir.path().join("kubeconfig");
    assert_eq!(std::fs::metadata(&kubeconfig_dir).unwrap().permissions().mode() & 0o777, 0o700);

    let (port, seen) = api_server(&dir.path().join("pki"));
    let local = format!("https://127.0.0.1:{port}");
    for record in files {
        let path = dir.path().join(record["path"].as_str().unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let path = path.to_str().unwrap();
        let server = kubectl(
            dir.path(),
            &["--kubeconfig", path, "config", "view", "-o", "jsonpath={.clusters[0].cluster.server}"],
        );
        assert_eq!(String::from_utf8_lossy(&server.stdout), record["server"].as_str().unwrap());
        let version = kubectl(dir.path(), &["--kubeconfig", path, "--server", &local, "get", "--raw", "/version"]);
        assert!(
            version.status.success() && String::from_utf8_lossy(&version.stdout).contains("groundup-test"),
            "{path}: {}",
            String::from_utf8_lossy(&version.stderr)
        );
        let user = record["user"].as_str().unwrap();
        assert!(
            seen.lock().unwrap().last().unwrap().ends_with(&format!("CN={user}")),
            "{user}: {:?}",
            seen.lock().unwrap()
        );
    }
    assert!(seen.lock().unwrap().iter().any(|s| s.contains("O=system:masters, OU=DEVOPS, CN=admin")));
    assert!(seen.lock().unwrap().iter().any(|s| s.contains("O=system:nodes")));

    // A client certificate from the etcd CA must not get in.
    let pki = dir.path().join("pki");
    let spec = groundup_pki::kubeconfig::KubeconfigSpec {
        file: "foreign.kubeconfig".into(),
        certificate: "apiserver-etcd-client".into(),
        user: "foreign".into(),
        server: local.clone(),
    };
    let read = |name: &str| std::fs::read(pki.join(name)).unwrap();
    let foreign = groundup_pki::kubeconfig::render(
        &spec,
        "k8s-cluster",
        &read("ca.pem"),
        &read("apiserver-etcd-client.pem"),
        &read("apiserver-etcd-client-key.pem"),
    );
    let foreign_path = dir.path().join("foreign.kubeconfig");
    std::fs::write(&foreign_path, foreign).unwrap();
    let refused = kubectl(dir.path(), &["--kubeconfig", foreign_path.to_str().unwrap(), "get", "--raw", "/version"]);
    assert!(!refused.status.success(), "a client certificate of another CA got in");
}

#[test]
fn a_re_run_keeps_the_files_and_restores_a_hand_edit_which_a_plan_shows() {
    let (dir, context) = cluster();
    let admin = dir.path().join("kubeconfig/admin.kubeconfig");
    let written = std::fs::read(&admin).unwrap();
    let modified = std::fs::metadata(&admin).unwrap().modified().unwrap();
    ok(&step("kubeconfig", &[], &context, dir.path()), "second run");
    assert_eq!(std::fs::metadata(&admin).unwrap().modified().unwrap(), modified, "an unchanged file was rewritten");

    std::fs::write(&admin, "apiVersion: v1\nkind: Config\n").unwrap();
    let mut planned: serde_json::Value = serde_json::from_str(&context).unwrap();
    planned["plan"] = serde_json::json!({"resources": []});
    let plan = ok(&step("kubeconfig", &["--plan"], &planned.to_string(), dir.path()), "--plan");
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let entry =
        plan["plan"]["resources"].as_array().unwrap().iter().find(|r| r["resource"] == "admin.kubeconfig").unwrap();
    assert_eq!(entry["action"], "change", "{entry}");
    assert_eq!(std::fs::read_to_string(&admin).unwrap(), "apiVersion: v1\nkind: Config\n", "a plan wrote");

    ok(&step("kubeconfig", &[], &context, dir.path()), "restoring run");
    assert_eq!(std::fs::read(&admin).unwrap(), written);
}

#[test]
fn certs_check_covers_the_certificates_embedded_in_the_kubeconfigs() {
    let (dir, context) = cluster();
    let check = |context: &str| step("certs", &["check"], context, dir.path());
    let clean = check(&context);
    assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stderr));
    assert!(String::from_utf8_lossy(&clean.stderr).contains("kubeconfig/admin.kubeconfig"), "no kubeconfig rows");

    // The admin's kubeconfig carrying kube-proxy's credentials: the wrong identity.
    let kubeconfigs = dir.path().join("kubeconfig");
    std::fs::copy(kubeconfigs.join("kube-proxy.kubeconfig"), kubeconfigs.join("admin.kubeconfig")).unwrap();
    let swapped = check(&context);
    let stderr = String::from_utf8_lossy(&swapped.stderr);
    assert!(!swapped.status.success() && swapped.stdout.is_empty(), "{stderr}");
    let row = stderr.lines().find(|l| l.starts_with("kubeconfig/admin.kubeconfig")).unwrap();
    assert!(row.contains("not admin's"), "{row}");
    assert!(stderr.lines().find(|l| l.starts_with("kubeconfig/kube-proxy.kubeconfig")).unwrap().ends_with(" -"));

    std::fs::write(kubeconfigs.join("admin.kubeconfig"), "garbage: [").unwrap();
    let broken = check(&context);
    assert!(String::from_utf8_lossy(&broken.stderr).contains("not a kubeconfig"));
}

#[test]
fn with_the_kubeadm_layout_each_master_gets_kubeadms_conf_files_with_their_servers_and_users() {
    let (dir, context) = cluster_with_layout("kubeadm");
    let state: serde_json::Value = serde_json::from_str(&context).unwrap();
    let records = state["kubeconfig"]["files"].as_array().unwrap();
    assert!(!context.contains("PRIVATE KEY"), "key material in the context");
    let endpoint = format!("https://{}:6443", state["nlb"]["dns_name"].as_str().unwrap());
    let (port, seen) = api_server(&dir.path().join("pki"));
    let masters = state["compute"]["nodes"].as_array().unwrap().iter().filter(|n| n["role"] == "master");
    let mut checked = 0;
    for master in masters {
        let host = master["hostname"].as_str().unwrap();
        let own = format!("https://{}:6443", master["private_ip"].as_str().unwrap());
        let kubelet = format!("system:node:{host}");
        for (file, user, organization, server) in [
            ("admin.conf", "kubernetes-admin", "kubeadm:cluster-admins", &endpoint),
            ("super-admin.conf", "kubernetes-super-admin", "system:masters", &endpoint),
            ("controller-manager.conf", "system:kube-controller-manager", "system:kube-controller-manager", &own),
            ("scheduler.conf", "system:kube-scheduler", "system:kube-scheduler", &own),
            ("kubelet.conf", &kubelet, "system:nodes", &endpoint),
        ] {
            let relative = format!("kubeconfig/kubeadm/{host}/{file}");
            let record =
                records.iter().find(|r| r["path"] == relative.as_str()).unwrap_or_else(|| panic!("{relative}"));
            assert_eq!((record["user"].as_str().unwrap(), record["server"].as_str().unwrap()), (user, server.as_str()));
            let path = dir.path().join(&relative);
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "{relative}");
            let path = path.to_str().unwrap();
            let view = |jsonpath: &str| {
                let out = kubectl(dir.path(), &["--kubeconfig", path, "config", "view", "--raw", "-o", jsonpath]);
                assert!(out.status.success(), "{relative}: {}", String::from_utf8_lossy(&out.stderr));
                String::from_utf8(out.stdout).unwrap()
            };
            assert_eq!(view("jsonpath={.clusters[0].cluster.server}"), *server, "{relative}");
            assert_eq!(view("jsonpath={.contexts[0].context.user}"), user, "{relative}");
            assert_eq!(view("jsonpath={.users[0].name}"), user, "{relative}");

            let embedded = openssl::base64::decode_block(&view("jsonpath={.users[0].user.client-certificate-data}"));
            let subject = openssl_subject(&embedded.unwrap());
            assert!(subject.contains(&format!("O = {organization}")), "{relative}: {subject}");
            assert!(subject.trim_end().ends_with(&format!("CN = {user}")), "{relative}: {subject}");

            let local = format!("https://127.0.0.1:{port}");
            let version = kubectl(dir.path(), &["--kubeconfig", path, "--server", &local, "get", "--raw", "/version"]);
            assert!(version.status.success(), "{relative}: {}", String::from_utf8_lossy(&version.stderr));
            assert!(seen.lock().unwrap().last().unwrap().ends_with(&format!("CN={user}")), "{relative}");
            checked += 1;
        }
    }
    assert_eq!(checked, 5 * 3);
    assert_eq!(records.len(), 4 + 3 + 3 + 5 * 3, "the course's kubeconfigs are still there");

    // certs check covers the .conf files: admin.conf carrying the super-admin's credentials is caught.
    let check = |context: &str| step("certs", &["check"], context, dir.path());
    let clean = check(&context);
    assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stderr));
    let confs = dir.path().join("kubeconfig/kubeadm/ip-172-31-0-11");
    std::fs::copy(confs.join("super-admin.conf"), confs.join("admin.conf")).unwrap();
    let swapped = check(&context);
    let stderr = String::from_utf8_lossy(&swapped.stderr);
    assert!(!swapped.status.success(), "{stderr}");
    let row = stderr.lines().find(|l| l.starts_with("kubeconfig/kubeadm/ip-172-31-0-11/admin.conf")).unwrap();
    assert!(row.contains("not kubernetes-admin's"), "{row}");
}

/// The subject of a PEM certificate as the openssl CLI prints it (`subject=O = ..., CN = ...`).
fn openssl_subject(pem: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-subject"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the openssl CLI is needed");
    child.stdin.take().unwrap().write_all(pem).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl x509 could not read the embedded certificate");
    String::from_utf8(out.stdout).unwrap()
}
