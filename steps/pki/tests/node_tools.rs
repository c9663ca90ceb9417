//! The files that make a node run Kubernetes, checked by the real tools these machines have
//! (no kubelet or API server here): every static pod by `kubernetes-validate --strict` (PyPI),
//! containerd's config by Debian's `containerd`, and the masters' etcd manifests by running
//! Debian's `etcd` with exactly their flags as a 3-member cluster, each member in a network
//! namespace of its own holding its master's address, all made by the test under `unshare -rn`
//! (no route out, no other address).

use std::path::{Path, PathBuf};
use std::process::Command;

use groundup_pki::node::pods::Pod;

mod common;

/// The bundles of the example's 3+3 cluster, made by the real steps.
fn bundles() -> (tempfile::TempDir, serde_json::Value) {
    let (dir, context) = common::bundled("cfssl");
    (dir, serde_json::from_str(&context).unwrap())
}

fn nodes(context: &serde_json::Value) -> Vec<(String, String, String)> {
    let nodes = context["compute"]["nodes"].as_array().unwrap();
    let field = |n: &serde_json::Value, f: &str| n[f].as_str().unwrap().to_string();
    nodes.iter().map(|n| (field(n, "hostname"), field(n, "role"), field(n, "private_ip"))).collect()
}

fn manifests(bundle: &Path) -> Vec<PathBuf> {
    let dir = bundle.join("etc/kubernetes/manifests");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    found.sort();
    found
}

/// The tool, or a failure that says how to install it (`.ci/run` does).
fn tool(name: &str, install: &str) -> Command {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().unwrap();
    assert!(found.status.success(), "`{name}` is not installed: {install} (.ci/run does)");
    Command::new(name)
}

#[test]
fn every_static_pod_passes_kubernetes_validate_strict() {
    let (dir, context) = bundles();
    let version = context["params"]["kubernetes"]["version"].as_str().unwrap();
    // kubernetes-validate carries the schemas of each minor's first release.
    let minor = version.strip_prefix("v").unwrap().rsplit_once('.').unwrap().0;
    let mut files = Vec::new();
    for (host, ..) in nodes(&context) {
        files.extend(manifests(&dir.path().join("nodes").join(&host)));
    }
    assert_eq!(files.len(), 3 * 5 + 3, "{files:?}");
    let output = tool("kubernetes-validate", "pip install kubernetes-validate")
        .args(["--strict", "-k", &format!("{minor}.0")])
        .args(&files)
        .output()
        .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{report}");
    assert_eq!(report.matches("INFO").count(), files.len(), "{report}");
    assert!(!report.contains("WARN") && !report.contains("ERROR"), "{report}");
}

#[test]
fn containerd_reads_its_config_with_runc_on_systemd_cgroups_and_the_releases_sandbox() {
    let (dir, context) = bundles();
    for (host, ..) in nodes(&context).into_iter().step_by(3) {
        let config = dir.path().join("nodes").join(&host).join("etc/containerd/config.toml");
        let output = tool("containerd", "apt-get install containerd")
            .arg("--config")
            .arg(&config)
            .args(["config", "dump"])
            .output()
            .unwrap();
        let dumped = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{host}: {}", String::from_utf8_lossy(&output.stderr));
        assert!(dumped.contains("SystemdCgroup = true"), "{host}: {dumped}");
        assert!(dumped.contains("sandbox_image = \"registry.k8s.io/pause:3.10.1\""), "{host}: {dumped}");
        assert!(dumped.contains("runtime_type = \"io.containerd.runc.v2\""), "{host}: {dumped}");
    }
}

/// A shell word.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The flags of a master's etcd manifest, every path on the node mapped into its bundle.
fn etcd_command(bundle: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(bundle.join("etc/kubernetes/manifests/etcd.yaml")).unwrap();
    let pod: Pod = serde_yaml_ng::from_str(&text).unwrap();
    let command = &pod.spec.containers[0].command;
    assert_eq!(command[0], "etcd");
    command[1..]
        .iter()
        .map(|arg| match arg.split_once("=/") {
            Some((flag, path)) => format!("{flag}={}", bundle.join(path).display()),
            None => arg.clone(),
        })
        .collect()
}

/// A CA of its own and a client certificate it signed, with the API server's CN.
fn foreign_client(dir: &Path) -> (PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl(
        &[&["req", "-x509"][..], &ec, &["-keyout", "ca-key.pem", "-out", "ca.pem", "-subj", "/CN=other", "-days", "1"]]
            .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &["-keyout", "client-key.pem", "-out", "client.csr", "-subj", "/CN=kube-apiserver-etcd-client"],
        ]
        .concat(),
    );
    std::fs::write(dir.join("ext"), "extendedKeyUsage = clientAuth\n").unwrap();
    let sign = ["x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial"];
    openssl(&[&sign[..], &["-out", "client.pem", "-days", "1", "-extfile", "ext"]].concat());
    (dir.join("client.pem"), dir.join("client-key.pem"))
}

/// The three masters' etcd, run with their manifests' flags, form one cluster: `etcdctl`
/// with the API server's etcd client certificate writes and reads through every member, and a
/// client certificate of another CA is refused.
#[test]
fn the_masters_etcd_manifests_form_a_cluster_that_admits_only_the_etcd_cas_clients() {
    let (dir, context) = bundles();
    let prefix = context["params"]["subnet_cidr"].as_str().unwrap().split_once('/').unwrap().1.to_string();
    let masters: Vec<(String, String)> =
        nodes(&context).into_iter().filter(|(_, role, _)| role == "master").map(|(h, _, ip)| (h, ip)).collect();
    assert_eq!(masters.len(), 3);
    let foreign = tempfile::tempdir().unwrap();
    let (foreign_cert, foreign_key) = foreign_client(foreign.path());

    let mut script = String::from(
        "set -u\npids=''\ntrap 'kill $pids 2>/dev/null; wait' EXIT\n\
         ip link set lo up && ip link add br0 type bridge && ip link set br0 up || exit 1\n",
    );
    for (i, (host, ip)) in masters.iter().enumerate() {
        let bundle = dir.path().join("nodes").join(host);
        let flags: Vec<String> = etcd_command(&bundle).iter().map(|f| quote(f)).collect();
        script.push_str(&format!(
            "unshare -n sleep 600 & ns{i}=$!; pids=\"$pids $!\"\n\
             while [ \"$(readlink /proc/$ns{i}/ns/net)\" = \"$(readlink /proc/self/ns/net)\" ]; do sleep 0.05; done\n\
             ip link add v{i} type veth peer name e{i} netns $ns{i} && ip link set v{i} master br0 up || exit 1\n\
             nsenter -t $ns{i} -n sh -c 'ip link set lo up && ip addr add {ip}/{prefix} dev e{i} && ip link set e{i} up' || exit 1\n\
             nsenter -t $ns{i} -n etcd {flags} > {log} 2>&1 & pids=\"$pids $!\"\n",
            flags = flags.join(" "),
            log = quote(&dir.path().join(format!("etcd-{host}.log")).display().to_string()),
        ));
    }
    let kubernetes = dir.path().join("nodes").join(&masters[0].0).join("var/lib/kubernetes");
    let endpoints: Vec<String> = masters.iter().map(|(_, ip)| format!("https://{ip}:2379")).collect();
    let path = |p: PathBuf| quote(&p.display().to_string());
    script.push_str(&format!(
        "ctl() {{ cert=$1 key=$2; shift 2; nsenter -t $ns0 -n env ETCDCTL_API=3 etcdctl --endpoints={endpoints} \
         --cacert={ca} --cert=\"$cert\" --key=\"$key\" --dial-timeout=2s --command-timeout=5s \"$@\"; }}\n\
         own() {{ ctl {cert} {key} \"$@\"; }}\n\
         for _ in $(seq 60); do own endpoint health --cluster >/dev/null 2>&1 && break; sleep 0.5; done\n\
         echo members: $(own member list | wc -l)\n\
         own endpoint health --cluster 2>&1 | sed 's/^/health: /'\n\
         own put groundup from-the-api-servers-cert && echo written\n\
         for e in {each}; do echo read: $(nsenter -t $ns0 -n env ETCDCTL_API=3 etcdctl --endpoints=$e --cacert={ca} \
         --cert={cert} --key={key} get groundup --print-value-only); done\n\
         if ctl {foreign_cert} {foreign_key} get groundup >/dev/null 2>&1; then echo foreign: accepted; else echo foreign: refused; fi\n",
        endpoints = endpoints.join(","),
        each = endpoints.join(" "),
        ca = path(kubernetes.join("etcd-ca.pem")),
        cert = path(kubernetes.join("apiserver-etcd-client.pem")),
        key = path(kubernetes.join("apiserver-etcd-client-key.pem")),
        foreign_cert = path(foreign_cert),
        foreign_key = path(foreign_key),
    ));
    tool("etcd", "apt-get install etcd-server");
    tool("etcdctl", "apt-get install etcd-client");
    let output = Command::new("timeout").args(["120", "unshare", "-rn", "sh", "-c", &script]).output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout).to_string();
    let logs: String = masters
        .iter()
        .map(|(host, _)| std::fs::read_to_string(dir.path().join(format!("etcd-{host}.log"))).unwrap_or_default())
        .map(|log| log.lines().rev().take(5).collect::<Vec<_>>().join("\n"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    let explain = format!("{report}\n{}\n{logs}", String::from_utf8_lossy(&output.stderr));
    assert!(report.contains("members: 3"), "{explain}");
    assert_eq!(report.matches("is healthy").count(), 3, "{explain}");
    assert!(report.contains("written"), "{explain}");
    assert_eq!(report.matches("read: from-the-api-servers-cert").count(), 3, "{explain}");
    assert!(report.contains("foreign: refused"), "{explain}");
}
