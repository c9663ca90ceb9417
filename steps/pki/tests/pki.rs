//! groundup-ca | groundup-certs on the example context, checked with the openssl CLI and a
//! real etcd. Runs without AWS: the context carries what the infrastructure steps found.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use groundup_testkit::{ok, run};

const EXAMPLE: &str = include_str!("../../../contracts/examples/03-infra.json");

fn ca(stdin: &str, dir: &Path) -> Output {
    run(env!("CARGO_BIN_EXE_groundup-ca"), &[], stdin, dir)
}

fn certs(args: &[&str], stdin: &str, dir: &Path) -> Output {
    run(env!("CARGO_BIN_EXE_groundup-certs"), args, stdin, dir)
}

fn failed(output: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "{what} should fail");
    assert!(output.stdout.is_empty(), "{what} wrote on stdout");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    stderr
}

/// A failure that asks the user to fix what they gave: exit code 2.
fn bad_input(output: &Output, what: &str) -> String {
    let stderr = failed(output, what);
    assert_eq!(output.status.code(), Some(2), "{what} is bad input: {stderr}");
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
    assert_eq!(records.len(), 22);
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
    let kubelet = show("ip-172-31-0-22");
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
fn a_rerun_keeps_every_certificate() {
    let (dir, context) = fresh();
    let again = ok(&certs(&[], &ok(&ca(&context, dir.path()), "ca again"), dir.path()), "certs again");
    assert_eq!(fingerprints(&context), fingerprints(&again));
}

/// Each certificate's name and SHA-256 fingerprint, from a context's certs section.
fn fingerprints(text: &str) -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    doc["certs"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_string(), r["sha256"].as_str().unwrap().to_string()))
        .collect()
}

/// The names whose fingerprint differs between two contexts.
fn reissued(before: &str, after: &str) -> Vec<String> {
    let after = fingerprints(after);
    fingerprints(before).into_iter().filter(|f| !after.contains(f)).map(|(name, _)| name).collect()
}

/// Every private key of the PKI, by file name.
fn keys(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut keys: Vec<_> = std::fs::read_dir(dir.join("pki"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| name.ends_with("-key.pem"))
        .map(|name| (name.clone(), read(&dir.join("pki"), &name)))
        .collect();
    keys.sort();
    keys
}

fn planned(context: &str, dir: &Path) -> Vec<serde_json::Value> {
    let out = ok(&certs(&["--plan"], context, dir), "certs --plan");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    doc["plan"]["resources"].as_array().unwrap().iter().filter(|r| r["action"] != "leave").cloned().collect()
}

#[test]
fn certificates_follow_the_infrastructure_they_name_and_keep_their_keys() {
    let (dir, context) = fresh_from(&ecdsa_example());
    let keys_before = keys(dir.path());
    let moved = with(&context, "/compute/nodes/4/public_ip", "54.1.2.3".into())
        .replace("k8s-cluster-50dc6c495c0c9188.elb.us-east-2.amazonaws.com", "api-moved.elb.us-east-2.amazonaws.com");

    let plan = planned(&moved, dir.path());
    let changes: Vec<(&str, &str, String)> = plan
        .iter()
        .map(|r| (r["resource"].as_str().unwrap(), r["action"].as_str().unwrap(), r["changes"][0].to_string()))
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!((changes[0].0, changes[0].1), ("master-kubernetes", "change"), "{changes:?}");
    assert!(
        changes[0].2.contains("+ DNS:api-moved.elb.us-east-2.amazonaws.com, - DNS:k8s-cluster-50dc"),
        "{changes:?}"
    );
    assert_eq!((changes[1].0, changes[1].1), ("ip-172-31-0-21", "change"), "{changes:?}");
    assert!(changes[1].2.contains("key kept: + IP:54.1.2.3, - IP:3.15.20.101"), "{changes:?}");

    let output = certs(&[], &moved, dir.path());
    let after = ok(&output, "certs after the worker and the NLB moved, without --renew");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("certs: ip-172-31-0-21: re-issue for the infrastructure's SANs")
            && stderr.contains("+ IP:54.1.2.3, - IP:3.15.20.101"),
        "{stderr}"
    );
    assert_eq!(reissued(&context, &after), ["master-kubernetes", "ip-172-31-0-21"]);
    assert_eq!(keys(dir.path()), keys_before, "a re-issue must keep every key");
    ok(&certs(&["check"], &after, dir.path()), "check after the re-issue");
    let (_, kubelet) =
        openssl(&["x509", "-noout", "-ext", "subjectAltName", "-in", "pki/ip-172-31-0-21.pem"], dir.path());
    assert!(kubelet.contains("54.1.2.3") && !kubelet.contains("3.15.20.101"), "{kubelet}");
    assert_eq!(reissued(&after, &ok(&certs(&[], &after, dir.path()), "certs again")), Vec::<String>::new());

    // A changed master address reaches the API server's and that master's kubelet and etcd
    // certificates.
    let master = with(&after, "/compute/nodes/0/private_ip", "172.31.0.13".into());
    let again = ok(&certs(&[], &master, dir.path()), "certs after a master's address changed");
    assert_eq!(
        reissued(&after, &again),
        ["master-kubernetes", "etcd-server-ip-172-31-0-10", "etcd-peer-ip-172-31-0-10", "ip-172-31-0-10"]
    );
    assert_eq!(keys(dir.path()), keys_before);
}

/// Replaces a kubelet certificate with one for the same key and SANs, signed by `ca` with
/// `subject`: wrong for a reason other than the infrastructure.
fn forge_kubelet(dir: &Path, ca: &str, subject: &str) {
    let name = "pki/ip-172-31-0-21";
    let sans = "DNS:ip-172-31-0-21,DNS:ip-172-31-0-21.us-east-2.compute.internal,IP:172.31.0.21,IP:3.15.20.101";
    write(dir, "ext.cnf", &format!("subjectAltName={sans}\nextendedKeyUsage=serverAuth,clientAuth\n"));
    let (made, text) =
        openssl(&["req", "-new", "-key", &format!("{name}-key.pem"), "-subj", subject, "-out", "forged.csr"], dir);
    assert!(made, "{text}");
    let ca_args = [format!("pki/{ca}.pem"), format!("pki/{ca}-key.pem"), format!("{name}.pem")];
    let args = ["x509", "-req", "-in", "forged.csr", "-CA", &ca_args[0], "-CAkey", &ca_args[1], "-set_serial", "7"];
    let (signed, text) =
        openssl(&[&args[..], &["-days", "365", "-extfile", "ext.cnf", "-out", &ca_args[2]]].concat(), dir);
    assert!(signed, "{text}");
}

#[test]
fn a_certificate_wrong_for_another_reason_still_needs_renew_even_when_the_infrastructure_moved() {
    let (dir, context) = fresh_from(&ecdsa_example());
    let moved = with(&context, "/compute/nodes/4/public_ip", "54.1.2.3".into());
    let subject = "/C=UK/ST=London/L=England/OU=DEVOPS/CN=system:node:ip-172-31-0-21";
    for (ca, subject, problem) in [
        ("ca", format!("{subject}/O=system:masters"), "O is"),
        ("etcd-ca", subject.replace("OU=DEVOPS", "O=system:nodes/OU=DEVOPS"), "not signed by the ca CA"),
    ] {
        forge_kubelet(dir.path(), ca, &subject);
        let forged = read(dir.path(), "pki/ip-172-31-0-21.pem");
        let stderr = failed(&certs(&[], &moved, dir.path()), "certs on a forged kubelet certificate");
        assert!(
            stderr.contains("ip-172-31-0-21") && stderr.contains(problem) && stderr.contains("--renew"),
            "{stderr}"
        );
        assert_eq!(read(dir.path(), "pki/ip-172-31-0-21.pem"), forged, "changed without --renew");
        let plan = planned(&moved, dir.path());
        assert!(plan[0]["changes"][0].as_str().unwrap().contains("run with --renew"), "{plan:?}");
    }
    let renewed = ok(&certs(&["--renew"], &moved, dir.path()), "certs --renew");
    ok(&certs(&["check"], &renewed, dir.path()), "check after --renew");
}

#[test]
fn certificates_of_removed_nodes_are_retired_never_deleted_and_a_purge_still_removes_them() {
    let (dir, context) = fresh_from(&ecdsa_example());
    let pki = dir.path().join("pki");
    let worker_key = read(&pki, "ip-172-31-0-22-key.pem");
    let mut doc: serde_json::Value = serde_json::from_str(&context).unwrap();
    let nodes = doc.pointer_mut("/compute/nodes").unwrap().as_array_mut().unwrap();
    nodes.remove(5);
    nodes.remove(2);
    let smaller = doc.to_string();
    let gone = ["etcd-peer-ip-172-31-0-12", "etcd-server-ip-172-31-0-12", "ip-172-31-0-12", "ip-172-31-0-22"];

    let mut plan: Vec<(String, String)> = planned(&smaller, dir.path())
        .iter()
        .map(|r| (r["resource"].as_str().unwrap().to_string(), r["changes"][0].as_str().unwrap().to_string()))
        .filter(|(name, _)| name != "master-kubernetes")
        .collect();
    plan.sort();
    assert_eq!(plan.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), gone, "{plan:?}");
    assert!(plan.iter().all(|(_, change)| change.contains("retire to pki/retired/")), "{plan:?}");

    let output = certs(&[], &smaller, dir.path());
    let after = ok(&output, "certs after a scale-down");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let listed: Vec<String> = fingerprints(&after).into_iter().map(|(name, _)| name).collect();
    assert_eq!(listed.len(), 22 - 4);
    for name in gone {
        assert!(stderr.contains(&format!("certs: {name}: retire to pki/retired/")), "{stderr}");
        assert!(!listed.contains(&name.to_string()), "the certs section still lists {name}");
        for file in [format!("{name}.pem"), format!("{name}-key.pem"), format!("{name}.csr")] {
            assert!(!pki.join(&file).exists() && pki.join("retired").join(&file).exists(), "{file}");
        }
    }
    assert_eq!(read(&pki, "retired/ip-172-31-0-22-key.pem"), worker_key);
    ok(&certs(&["check"], &after, dir.path()), "check after a scale-down");

    // Back and away again: the second retirement keeps the first.
    ok(&certs(&[], &context, dir.path()), "certs after scaling back up");
    ok(&certs(&[], &smaller, dir.path()), "certs after the second scale-down");
    assert_eq!(read(&pki, "retired/ip-172-31-0-22-key.pem"), worker_key);
    assert!(pki.join("retired/ip-172-31-0-22-2.pem").exists());

    std::fs::write(pki.join("retired/mine.txt"), "the user's").unwrap();
    groundup_runtime::files::purge(dir.path(), "pki", "k8s-cluster").unwrap();
    let left: Vec<_> = walk(&pki);
    assert_eq!(left, [pki.join("retired/mine.txt")], "a purge must remove exactly what groundup wrote");
}

#[test]
fn a_reissue_or_a_retirement_cut_short_by_a_kill_resumes_and_converges() {
    let (dir, context) = fresh_from(&ecdsa_example());
    let pki = dir.path().join("pki");
    let files = groundup_runtime::files::ClusterDir::open(&pki, "k8s-cluster").unwrap();
    let keys_before = keys(dir.path());

    // Killed mid re-issue: the new request written, the certificate not yet (a temporary file
    // left), the key untouched.
    let moved = with(&context, "/compute/nodes/4/public_ip", "54.1.2.3".into());
    std::fs::copy(pki.join("admin.csr"), pki.join("ip-172-31-0-21.csr")).unwrap();
    write(&pki, ".ip-172-31-0-21.pem.1.0.partial", "half a certificate");
    let after = ok(&certs(&[], &moved, dir.path()), "certs after a killed re-issue");
    assert_eq!(reissued(&context, &after), ["ip-172-31-0-21"]);
    assert_eq!(keys(dir.path()), keys_before);
    ok(&certs(&["check"], &after, dir.path()), "check after the resumed re-issue");

    // Killed mid retirement: the certificate moved, its key and request not yet.
    let mut doc: serde_json::Value = serde_json::from_str(&after).unwrap();
    doc.pointer_mut("/compute/nodes").unwrap().as_array_mut().unwrap().remove(5);
    let smaller = doc.to_string();
    files.move_file("ip-172-31-0-22.pem", "retired/ip-172-31-0-22.pem").unwrap();
    drop(files);
    let resumed = ok(&certs(&[], &smaller, dir.path()), "certs after a killed retirement");
    for file in ["ip-172-31-0-22.pem", "ip-172-31-0-22-key.pem", "ip-172-31-0-22.csr"] {
        assert!(!pki.join(file).exists() && pki.join("retired").join(file).exists(), "{file}");
    }
    ok(&certs(&["check"], &resumed, dir.path()), "check after the resumed retirement");
    groundup_runtime::files::purge(dir.path(), "pki", "k8s-cluster").unwrap();
    assert!(!pki.exists(), "a purge left {:?}", walk(&pki));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
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

/// The example context with ECDSA keys, so that a test's PKI takes milliseconds.
fn ecdsa_example() -> String {
    let context = EXAMPLE.replace("\"key\": \"rsa2048\"", "\"key\": \"ecdsa-p256\"");
    assert_ne!(context, EXAMPLE, "the example context must name its key algorithm");
    context
}

fn fresh_from(context: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let after_ca = ok(&ca(context, dir.path()), "groundup-ca");
    let after_certs = ok(&certs(&[], &after_ca, dir.path()), "groundup-certs");
    (dir, after_certs)
}

/// The context with one JSON value set, e.g. `/compute/nodes/3/name`.
fn with(context: &str, pointer: &str, value: serde_json::Value) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(context).unwrap();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    match doc.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent}")) {
        serde_json::Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
        object => _ = object.as_object_mut().unwrap().insert(key.into(), value),
    }
    doc.to_string()
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).unwrap();
}

#[test]
fn no_custom_certificate_or_node_takes_a_ca_name_and_renew_never_replaces_a_ca_key() {
    let (dir, context) = fresh_from(&ecdsa_example());
    let (ca_pem, ca_key) = (read(dir.path(), "pki/ca.pem"), read(dir.path(), "pki/ca-key.pem"));
    write(dir.path(), "ca-csr.json", r#"{"CN":"Kubernetes","hosts":["evil.example.com"]}"#);
    write(dir.path(), "ca-key-csr.json", r#"{"CN":"evil"}"#);
    write(dir.path(), "admin-csr.json", r#"{"CN":"admin"}"#);
    for (csr, clash) in [("ca-csr.json", "ca CA"), ("ca-key-csr.json", "ca CA"), ("admin-csr.json", "`admin`")] {
        for renew in [false, true] {
            let args = if renew { vec!["--csr", csr, "--renew"] } else { vec!["--csr", csr] };
            let stderr = failed(&certs(&args, &context, dir.path()), csr);
            assert!(stderr.contains(csr) && stderr.contains(clash), "{stderr}");
        }
    }
    let worker_named_ca = with(&context, "/compute/nodes/3/name", "etcd-ca".into());
    let stderr = failed(&certs(&["--renew"], &worker_named_ca, dir.path()), "a worker named etcd-ca");
    assert!(stderr.contains("compute.nodes[3].name") && stderr.contains("k8s-cluster-worker-0"), "{stderr}");
    // A kubelet's certificate is named after its host: a host named as a CA is refused too.
    for host in ["etcd-ca", "ca-key"] {
        let host_named_ca = with(&context, "/compute/nodes/3/hostname", host.into());
        let stderr = bad_input(&certs(&["--renew"], &host_named_ca, dir.path()), host);
        assert!(stderr.contains("compute.nodes[3].hostname") && stderr.contains("CA's files"), "{stderr}");
    }
    assert_eq!(read(dir.path(), "pki/ca.pem"), ca_pem);
    assert_eq!(read(dir.path(), "pki/ca-key.pem"), ca_key);
    ok(&ca(&context, dir.path()), "the CA is still the CA");
}

#[test]
fn ca_refuses_a_leaf_or_another_ca_in_its_place_and_never_overwrites_its_key() {
    let (dir, context) = fresh_from(&ecdsa_example());
    let pki = dir.path().join("pki");
    let swap = |from: &str| {
        std::fs::copy(pki.join(format!("{from}.pem")), pki.join("ca.pem")).unwrap();
        std::fs::copy(pki.join(format!("{from}-key.pem")), pki.join("ca-key.pem")).unwrap();
    };
    swap("admin");
    let stderr = failed(&ca(&context, dir.path()), "a leaf as the CA");
    assert!(stderr.contains("not a CA certificate"), "{stderr}");
    let stderr = failed(&certs(&[], &context, dir.path()), "certs with a leaf as the CA");
    assert!(stderr.contains("not a CA certificate"), "{stderr}");
    swap("etcd-ca");
    let stderr = failed(&ca(&context, dir.path()), "the etcd CA as the Kubernetes CA");
    assert!(stderr.contains("wants \"Kubernetes\""), "{stderr}");

    std::fs::remove_file(pki.join("ca.pem")).unwrap();
    let key = read(&pki, "ca-key.pem");
    let stderr = failed(&ca(&context, dir.path()), "a CA key without its certificate");
    assert!(stderr.contains("ca-key.pem is in") && stderr.contains("never replaced"), "{stderr}");
    assert_eq!(read(&pki, "ca-key.pem"), key);
    assert!(!pki.join("ca.pem").exists());
}

/// What a run killed between a CA's key and its certificate leaves: a key that signed
/// nothing. The next run makes the CA again instead of refusing.
#[test]
fn a_ca_key_that_signed_nothing_and_lost_its_certificate_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let context = ok(&ca(&ecdsa_example(), dir.path()), "groundup-ca");
    let pki = dir.path().join("pki");
    std::fs::remove_file(pki.join("etcd-ca.pem")).unwrap();
    let key = read(&pki, "etcd-ca-key.pem");
    ok(&ca(&context, dir.path()), "groundup-ca after a kill between etcd-ca's key and certificate");
    assert!(pki.join("etcd-ca.pem").exists());
    assert_ne!(read(&pki, "etcd-ca-key.pem"), key, "the leftover key is made again with its certificate");
}

#[test]
fn names_from_the_context_never_leave_the_pki_directory() {
    let dir = tempfile::tempdir().unwrap();
    let after_ca = ok(&ca(&ecdsa_example(), dir.path()), "groundup-ca");
    let custom = serde_json::json!([{"name": "../evil", "csr": {"CN": "evil"}, "usages": ["client auth"]}]);
    for (pointer, value, field) in [
        ("/compute/nodes/3/name", "../evil".into(), "compute.nodes[3].name"),
        ("/compute/nodes/0/hostname", "../evil".into(), "compute.nodes[0].hostname"),
        ("/params/pki/custom", custom, "params.pki.custom[0]"),
    ] {
        let stderr = failed(&certs(&[], &with(&after_ca, pointer, value), dir.path()), field);
        assert!(stderr.contains(field) && stderr.contains("../evil"), "{stderr}");
    }
    let outside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(outside, ["pki"], "only pki/ may be written");
}

#[test]
fn validity_is_bounded_and_never_outlasts_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let forever = with(&ecdsa_example(), "/params/pki/ca_days", 4294967295u32.into());
    assert!(failed(&ca(&forever, dir.path()), "ca_days 4294967295").contains("params.pki.ca_days"));
    let no_time = with(&ecdsa_example(), "/params/pki/leaf_days", 0.into());
    assert!(failed(&ca(&no_time, dir.path()), "leaf_days 0").contains("params.pki.leaf_days"));

    let (dir, context) = fresh_from(&with(&ecdsa_example(), "/params/pki/leaf_days", 36500.into()));
    let load = |file: &str| openssl::x509::X509::from_pem(&read(dir.path(), file)).unwrap();
    let (admin, ca) = (load("pki/admin.pem"), load("pki/ca.pem"));
    assert!(admin.not_after() <= ca.not_after(), "a certificate outlasts its CA");
    write(dir.path(), "app-csr.json", r#"{"CN":"app"}"#);
    write(dir.path(), "ca-config.json", r#"{"signing":{"default":{"expiry":"0h"}}}"#);
    let stderr =
        bad_input(&certs(&["--csr", "app-csr.json", "--config", "ca-config.json"], &context, dir.path()), "0h");
    assert!(stderr.contains("expiry 0h"), "{stderr}");
    assert!(!dir.path().join("pki/app.pem").exists());
}

#[test]
fn a_custom_request_is_checked_where_it_is_written() {
    let (dir, context) = fresh_from(&ecdsa_example());
    write(
        dir.path(),
        "ca-config.json",
        r#"{"signing":{"profiles":{"signing-only":{"usages":["signing","key encipherment"],"expiry":"8760h"}}}}"#,
    );
    write(dir.path(), "app-csr.json", r#"{"CN":"app"}"#);
    let args = ["--csr", "app-csr.json", "--config", "ca-config.json", "--profile", "signing-only"];
    let stderr = bad_input(&certs(&args, &context, dir.path()), "no TLS usage");
    assert!(stderr.contains("neither `server auth` nor `client auth`"), "{stderr}");

    for (request, what) in [
        (r#"{"CN":"app","hosts":["*"]}"#, "not a DNS name"),
        (r#"{"CN":"app","hosts":["a.example.com\nDNS:b"]}"#, "not a DNS name"),
        (r#"{"CN":"app\u0000admin"}"#, "control characters"),
        (r#"{"CN":"app","key":{"algo":"rsa","size":4096}}"#, "not supported"),
    ] {
        write(dir.path(), "app-csr.json", request);
        let stderr = bad_input(&certs(&["--csr", "app-csr.json"], &context, dir.path()), request);
        assert!(stderr.contains("app-csr.json: ") && stderr.contains(what), "{request}: {stderr}");
        assert!(!stderr.contains("context field"), "a CSR error is the file's, not the context's: {stderr}");
    }

    write(dir.path(), "root-csr.json", r#"{"CN":"root","names":[{"O":"system:masters"}]}"#);
    let stderr = bad_input(&certs(&["--csr", "root-csr.json"], &context, dir.path()), "system:masters");
    assert!(stderr.contains("--allow-system-masters"), "{stderr}");
    assert!(!dir.path().join("pki/root.pem").exists());
    let stderr =
        bad_input(&certs(&["--csr", "missing-csr.json"], &context, dir.path()), "a CSR file that is not there");
    assert!(stderr.contains("missing-csr.json"), "{stderr}");
    // (`--renew check` names a certificate "check": --renew takes the names that follow it.)
    let stderr = bad_input(&certs(&["--csr", "app-csr.json", "check"], &context, dir.path()), "check with --csr");
    assert!(stderr.contains("check changes nothing"), "{stderr}");
    ok(&certs(&["--csr", "root-csr.json", "--allow-system-masters"], &context, dir.path()), "with the flag");
    let (_, subject) = openssl(&["x509", "-noout", "-subject", "-in", "pki/root.pem"], dir.path());
    assert_eq!(subject.trim(), "subject=O = system:masters, CN = root", "only the request's own names");
}

#[test]
fn check_reads_only_covers_the_cas_survives_a_bad_file_and_prints_no_context() {
    let context = ecdsa_example().replace("\"layout\": \"cfssl\"", "\"layout\": \"kubeadm\"");
    let (dir, context) = fresh_from(&context);
    let pki = dir.path().join("pki");
    std::fs::remove_dir_all(pki.join("kubeadm")).unwrap();
    let state = dir.path().join("groundup.json");
    std::fs::write(&state, &context).unwrap();
    let good = certs(&["check", "--context", state.to_str().unwrap()], "", dir.path());
    assert_eq!(ok(&good, "check --context on a good PKI"), "", "check prints its table on stderr only");
    assert!(String::from_utf8_lossy(&good.stderr).contains("front-proxy-ca"), "the CAs are in the table");
    assert!(!pki.join("kubeadm").exists(), "check wrote the kubeadm tree");

    std::fs::copy(pki.join("etcd-ca-key.pem"), pki.join("ca-key.pem")).unwrap();
    std::fs::copy(pki.join("kube-proxy.pem"), pki.join("admin.pem")).unwrap();
    write(&pki, "kube-scheduler.pem", "not a certificate");
    let before: Vec<_> = std::fs::read_dir(&pki).unwrap().map(|e| e.unwrap().path()).collect();
    let stderr = failed(&certs(&["check"], &context, dir.path()), "check on a damaged PKI");
    let row = |name: &str| {
        let prefix = format!("{name} ");
        stderr.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no row for {name}: {stderr}"))
    };
    assert!(row("ca").contains("ca-key.pem does not match ca.pem"), "{stderr}");
    assert!(row("kube-scheduler").contains("delete it"), "{stderr}");
    assert!(row("admin").contains("key does not match") && row("admin").contains("GMT"), "{stderr}");
    assert!(row("front-proxy-client").contains(" -"), "every other row is still there: {stderr}");
    let after: Vec<_> = std::fs::read_dir(&pki).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(before, after);
}

/// The head start: `groundup-ca --prepare` on the spec alone (no compute or nlb section yet)
/// makes the CAs and a 0600 key for each of the 22 certificates and no certificate; `ca` and
/// `certs` on the full context then adopt every one of them, key files untouched, and the
/// certificates verify. A foreign file under a key's name is not adopted.
#[test]
fn certs_adopt_the_keys_the_head_start_made_from_the_spec_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec_only: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
    let fields = spec_only.as_object_mut().unwrap();
    fields.remove("compute");
    fields.remove("nlb");
    ok(&run(env!("CARGO_BIN_EXE_groundup-ca"), &["--prepare"], &spec_only.to_string(), dir.path()), "ca --prepare");
    let pki = dir.path().join("pki");
    let files = |suffix: &str| {
        let mut names: Vec<String> = std::fs::read_dir(&pki)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(suffix))
            .collect();
        names.sort();
        names
    };
    assert_eq!(files("-key.pem").len(), 3 + 22, "{:?}", files("-key.pem"));
    assert_eq!(files(".pem").len() - files("-key.pem").len(), 3, "only the CAs' certificates");
    std::fs::write(pki.join("admin-key.pem"), "not a key").unwrap();
    let prepared: Vec<(String, Vec<u8>)> =
        files("-key.pem").into_iter().map(|n| (n.clone(), std::fs::read(pki.join(&n)).unwrap())).collect();

    let after_ca = ok(&ca(EXAMPLE, dir.path()), "groundup-ca");
    let context = ok(&certs(&[], &after_ca, dir.path()), "groundup-certs");
    for (name, bytes) in &prepared {
        let now = std::fs::read(pki.join(name)).unwrap();
        assert_eq!(&now == bytes, name != "admin-key.pem", "{name}: adopted unless it was not a key");
        assert_eq!(std::fs::metadata(pki.join(name)).unwrap().permissions().mode() & 0o777, 0o600, "{name}");
    }
    let doc: serde_json::Value = serde_json::from_str(&context).unwrap();
    for record in doc["certs"]["certificates"].as_array().unwrap() {
        let (cert, signer) = (record["cert_path"].as_str().unwrap(), record["signer"].as_str().unwrap());
        let (verified, text) = openssl(&["verify", "-CAfile", &format!("pki/{signer}.pem"), cert], dir.path());
        assert!(verified, "{cert} against {signer}: {text}");
    }
    ok(&certs(&["check"], &context, dir.path()), "certs check");
}

/// A kubelet's certificate is named after its host: a new hostname is a new certificate (no
/// `--renew` needed), and the old host's certificate is retired with its key, never dropped.
#[test]
fn a_hostname_change_issues_the_new_hosts_certificate_and_retires_the_old_hosts() {
    let (dir, context) = fresh_from(&ecdsa_example());
    let old_key = read(dir.path(), "pki/ip-172-31-0-21-key.pem");
    let old_cert = read(dir.path(), "pki/ip-172-31-0-21.pem");
    let renamed = with(&context, "/compute/nodes/4/hostname", "ip-172-31-0-99".into());
    let after = ok(&certs(&[], &renamed, dir.path()), "certs after a hostname change");
    ok(&certs(&["check"], &after, dir.path()), "check after a hostname change");
    let (_, subject) = openssl(&["x509", "-noout", "-subject", "-in", "pki/ip-172-31-0-99.pem"], dir.path());
    assert!(subject.contains("CN = system:node:ip-172-31-0-99"), "{subject}");
    assert_ne!(read(dir.path(), "pki/ip-172-31-0-99-key.pem"), old_key, "the new host has the old host's key");
    assert!(!dir.path().join("pki/ip-172-31-0-21.pem").exists(), "the old host's certificate is still in use");
    assert_eq!(read(dir.path(), "pki/retired/ip-172-31-0-21-key.pem"), old_key, "the old key was dropped");
    assert_eq!(read(dir.path(), "pki/retired/ip-172-31-0-21.pem"), old_cert);
}

/// `--renew` on a certificate wrong for a reason the infrastructure does not explain (here a
/// forged subject) replaces its key, and the replaced key is retired with its certificate.
#[test]
fn a_renewal_retires_the_replaced_key() {
    let (dir, context) = fresh_from(&ecdsa_example());
    let old_key = read(dir.path(), "pki/ip-172-31-0-21-key.pem");
    forge_kubelet(dir.path(), "ca", "/C=UK/ST=London/L=England/O=system:masters/CN=system:node:ip-172-31-0-21");
    let forged = read(dir.path(), "pki/ip-172-31-0-21.pem");
    failed(&certs(&[], &context, dir.path()), "certs on a forged certificate, without --renew");
    let output = certs(&["--renew"], &context, dir.path());
    let renewed = ok(&output, "certs --renew on a forged certificate");
    ok(&certs(&["check"], &renewed, dir.path()), "check after --renew");
    assert_ne!(read(dir.path(), "pki/ip-172-31-0-21-key.pem"), old_key, "the renewal kept the key");
    assert_eq!(read(dir.path(), "pki/retired/ip-172-31-0-21-key.pem"), old_key, "the replaced key was dropped");
    assert_eq!(read(dir.path(), "pki/retired/ip-172-31-0-21.pem"), forged);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the old key retired to pki/retired/"), "{stderr}");
}
