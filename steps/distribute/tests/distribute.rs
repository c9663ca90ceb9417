//! `groundup distribute` against real OpenSSH servers, one per node. The servers and every
//! `distribute` run live in a network namespace of the test's own that has only a loopback
//! interface, so even a regression that ignored `--ssh-config` could reach nothing but that
//! namespace's 127.0.0.1 (the emulator's nodes have made-up public IPs of real networks). Each
//! server runs in a mount namespace of its own where the `--dest-dir` is its node's directory,
//! so each node's files land apart, as on separate machines.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use groundup_contracts::infra::Node;
use groundup_pki::bundle;
use groundup_testkit::{assert_clean_failure, assert_success, TestCluster};
use serde_json::Value;

/// The node of index `i` is served at 127.0.0.1:(FIRST_PORT + i).
const FIRST_PORT: u16 = 2222;

/// A network namespace with only `lo`, up; held by a process of the test's own.
struct Offline {
    holder: Child,
}

impl Offline {
    fn new() -> Offline {
        let mut holder = Command::new("unshare")
            .args(["-n", "--", "sh", "-c", "ip link set lo up && echo ready && exec sleep 100000"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare (util-linux) makes the test's network namespace");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the network namespace could not be set up (the test needs root)");
        let offline = Offline { holder };
        offline.bridge_emulator();
        offline
    }

    /// Makes the test emulator (on the test's own loopback) answer inside the namespace at the
    /// same address, for `distribute`'s DescribeInstances: a thread that entered the namespace
    /// listens there, and each connection is relayed through a socket made in the test's own
    /// namespace to the emulator. Nothing else is reachable from inside.
    fn bridge_emulator(&self) {
        use std::net::{SocketAddr, TcpListener, TcpStream};
        use std::os::fd::AsRawFd;
        let endpoint = groundup_testkit::endpoint();
        let address: SocketAddr = endpoint.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
        assert!(address.ip().is_loopback(), "{endpoint}");
        let namespace = std::fs::File::open(format!("/proc/{}/ns/net", self.holder.id())).unwrap();
        let (connections, accepted) = std::sync::mpsc::channel::<TcpStream>();
        // In the test's namespace: every upstream connection is made here.
        std::thread::spawn(move || {
            for inside in accepted {
                let upstream = TcpStream::connect(address).unwrap();
                for (mut from, mut to) in
                    [(inside.try_clone().unwrap(), upstream.try_clone().unwrap()), (upstream, inside)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        let (ready, listening) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // SAFETY: moves only this thread into the namespace, by a descriptor held open.
            assert_eq!(unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns");
            let listener = TcpListener::bind(address).unwrap();
            ready.send(()).unwrap();
            for inside in listener.incoming().map_while(Result::ok) {
                if connections.send(inside).is_err() {
                    break;
                }
            }
        });
        listening.recv().unwrap();
    }

    /// `program` inside the namespace.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("nsenter");
        command.arg(format!("--net=/proc/{}/ns/net", self.holder.id())).arg("--").arg(program);
        command
    }
}

impl Drop for Offline {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Debian's sshd on 127.0.0.1:`port` in the namespace, with a host key of its own, accepting
/// root with `authorized_key`, in a mount namespace where `dest` is `root` (made if missing);
/// killed when dropped (a failed assertion included).
struct Sshd {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Sshd {
    fn start(offline: &Offline, authorized_key: &str, port: u16, root: &Path, dest: &Path) -> Sshd {
        // Privilege separation needs it; the package makes it at boot, a container may lack it.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let keygen =
            Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f", &path("host_key")]).output();
        assert_success(&keygen.expect("ssh-keygen (openssh-client) is installed"), "ssh-keygen");
        std::fs::write(path("authorized_keys"), authorized_key).unwrap();
        let config = format!(
            "ListenAddress 127.0.0.1:{port}\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n",
            path("host_key"),
            path("authorized_keys"),
            path("sshd.pid")
        );
        std::fs::write(path("sshd_config"), config).unwrap();
        std::fs::create_dir_all(root).unwrap();
        let mut child = offline
            .command("unshare")
            .args(["-m", "--propagation", "private", "--", "sh", "-c"])
            .arg(r#"mount --bind "$0" "$1" && exec /usr/sbin/sshd -D -e -f "$2""#)
            .args([root, dest, Path::new(&path("sshd_config"))])
            .stderr(Stdio::piped())
            .spawn()
            .expect("sshd (openssh-server) is installed");
        // Ready once it says so; its log is drained from then on, so it never blocks on it.
        let (ready, listening) = std::sync::mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            let mut log = Vec::new();
            for line in stderr.lines().map_while(Result::ok) {
                if line.contains("Server listening") {
                    let _ = ready.send(Ok(()));
                }
                log.push(line);
            }
            let _ = ready.send(Err(log.join("\n")));
        });
        let sshd = Sshd { child, _dir: dir };
        if let Err(log) = listening.recv().unwrap() {
            panic!("sshd did not start: {log}");
        }
        sshd
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A cluster on the emulator with its bundles (ECDSA keys: quick), and the public half of its
/// SSH key.
fn cluster_with_bundles(label: &str) -> (TestCluster, String) {
    let cluster = TestCluster::new(label);
    assert_success(&cluster.up(&["--pki-key", "ecdsa-p256"]), "up");
    let key = cluster.dir.path().join(&cluster.state().compute.unwrap().key_pair.private_key_path);
    let public = Command::new("ssh-keygen").arg("-y").arg("-f").arg(&key).output().unwrap();
    assert_success(&public, "ssh-keygen -y");
    (cluster, String::from_utf8(public.stdout).unwrap())
}

/// Where the test's machines are: each node's sshd, its files' directory, and the SSH
/// configuration that maps each node's public IP to its sshd.
struct Machines {
    nodes: Vec<Node>,
    authorized_key: String,
    /// `<hostname>/` per node: what the node's `/` holds of groundup's.
    remote: tempfile::TempDir,
    /// The `--dest-dir`: each node's sshd sees its own directory of `remote` there.
    dest: tempfile::TempDir,
    config: PathBuf,
}

impl Machines {
    fn new(cluster: &TestCluster, authorized_key: &str) -> Machines {
        let nodes = cluster.state().compute.unwrap().nodes;
        let config = cluster.dir.path().join("ssh_config");
        let hosts: String = nodes
            .iter()
            .zip(FIRST_PORT..)
            .map(|(node, port)| format!("Host {}\n  HostName 127.0.0.1\n  Port {port}\n", node.public_ip.unwrap()))
            .collect();
        std::fs::write(&config, hosts).unwrap();
        let (remote, dest) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        Machines { nodes, authorized_key: authorized_key.into(), remote, dest, config }
    }

    fn port(&self, hostname: &str) -> u16 {
        FIRST_PORT + self.nodes.iter().position(|n| n.hostname == hostname).unwrap() as u16
    }

    /// The directory that is `/` for the node's files.
    fn root(&self, hostname: &str) -> PathBuf {
        self.remote.path().join(hostname)
    }

    /// Starts the node's sshd on a root that holds the directories its OS makes (0755, which
    /// distribute must not change): `etc`, `var/lib`, and those the drop-ins go in.
    fn start(&self, offline: &Offline, hostname: &str) -> Sshd {
        let drop_in_dirs = bundle::DROP_INS.map(|file| Path::new(file).parent().unwrap());
        for system in [Path::new("etc"), Path::new("var/lib")].into_iter().chain(drop_in_dirs) {
            let dir = self.root(hostname).join(system);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Sshd::start(offline, &self.authorized_key, self.port(hostname), &self.root(hostname), self.dest.path())
    }

    /// An sshd for every node but `except`.
    fn start_all(&self, offline: &Offline, except: Option<&str>) -> Vec<Sshd> {
        let started = self.nodes.iter().filter(|n| Some(n.hostname.as_str()) != except);
        started.map(|n| self.start(offline, &n.hostname)).collect()
    }

    /// `groundup distribute --user root --json` in the namespace, through the test's SSH
    /// configuration and into the `--dest-dir`.
    fn distribute(&self, offline: &Offline, cluster: &TestCluster) -> Output {
        self.distribute_with(offline, cluster, &self.config)
    }

    fn distribute_with(&self, offline: &Offline, cluster: &TestCluster, config: &Path) -> Output {
        offline
            .command(groundup_testkit::bin("groundup"))
            .args(["distribute", "--user", "root", "--json", "--ssh-config"])
            .arg(config)
            .arg("--dest-dir")
            .arg(self.dest.path())
            .current_dir(cluster.dir.path())
            .output()
            .unwrap()
    }

    /// Whether anything reached a node.
    fn nothing_sent(&self) -> bool {
        std::fs::read_dir(self.remote.path()).unwrap().count() == 0
            && std::fs::read_dir(self.dest.path()).unwrap().count() == 0
    }
}

/// The summary per hostname.
fn summary(output: &Output) -> BTreeMap<String, Value> {
    let document: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("stdout is not the JSON summary ({e}): {}", String::from_utf8_lossy(&output.stdout))
    });
    document["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["hostname"].as_str().unwrap().to_string(), n.clone()))
        .collect()
}

/// Every file and directory under `dir`: its mode and, for a file, its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (u32, Option<Vec<u8>>)> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let bytes = meta.is_file().then(|| std::fs::read(&path).unwrap());
            if meta.is_dir() {
                pending.push(path.clone());
            }
            found.insert(path.strip_prefix(dir).unwrap().to_path_buf(), (meta.permissions().mode() & 0o7777, bytes));
        }
    }
    found
}

/// The files under `dir` (directories aside: a node's are its own), with their modes and bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, (u32, Option<Vec<u8>>)> {
    tree(dir).into_iter().filter(|(_, (_, bytes))| bytes.is_some()).collect()
}

fn file_count(node: &Value) -> usize {
    node["copied"].as_array().unwrap().len() + node["unchanged"].as_u64().unwrap() as usize
}

#[test]
fn bundles_land_with_their_modes_once_and_an_unreachable_node_does_not_stop_the_others() {
    let (cluster, public_key) = cluster_with_bundles("distribute");
    let offline = Offline::new();
    let machines = Machines::new(&cluster, &public_key);
    let nodes = machines.nodes.clone();
    let bundle = |hostname: &str| cluster.dir.path().join("nodes").join(hostname);
    let unreachable = &nodes.iter().find(|n| n.name.contains("worker")).unwrap().hostname;
    let _sshds = machines.start_all(&offline, Some(unreachable));

    // Without --ssh-config, a cluster on the emulator is refused: its IPs are made up.
    let refused =
        offline.command(groundup_testkit::bin("groundup")).arg("distribute").current_dir(cluster.dir.path()).output();
    let stderr = assert_clean_failure(&refused.unwrap(), "distribute on the emulator");
    assert!(stderr.contains("emulator"), "{stderr}");

    let first = machines.distribute(&offline, &cluster);
    let stderr = String::from_utf8_lossy(&first.stderr).to_string();
    assert!(!first.status.success(), "a node was unreachable, yet distribute succeeded: {stderr}");
    let closed = machines.port(unreachable);
    assert!(stderr.contains(&format!("{unreachable} (127.0.0.1:{closed}): failed")), "{stderr}");
    let outcomes = summary(&first);
    assert_eq!(outcomes.len(), nodes.len());
    assert!(outcomes[unreachable]["error"].as_str().unwrap().contains("refused"), "{:?}", outcomes[unreachable]);
    assert!(!machines.root(unreachable).exists(), "files went to the unreachable node's root");
    assert_eq!(std::fs::read_dir(machines.dest.path()).unwrap().count(), 0, "files went around the mounts");
    for node in nodes.iter().filter(|n| &n.hostname != unreachable) {
        let outcome = &outcomes[&node.hostname];
        assert!(outcome["error"].is_null(), "{outcome}");
        assert_eq!(outcome["unchanged"], 0, "{outcome}");
        let root = machines.root(&node.hostname);
        assert_eq!(files(&root), files(&bundle(&node.hostname)), "{}", node.hostname);
        // The node's own directories keep their modes; groundup's get 0755 (keys are 0600).
        let mode = |dir: &str| std::fs::metadata(root.join(dir)).unwrap().permissions().mode() & 0o7777;
        assert_eq!((mode("etc"), mode("var/lib")), (0o755, 0o755), "{}: a system directory changed", node.hostname);
        assert_eq!(mode("var/lib/kubernetes"), 0o755, "{}", node.hostname);
    }
    // Keys stay private on the node: the bundle's modes were checked above, and here is one.
    let master = nodes.iter().find(|n| n.name.contains("master")).unwrap();
    let ca_key = machines.root(&master.hostname).join("var/lib/kubernetes/ca-key.pem");
    assert_eq!(ca_key.metadata().unwrap().permissions().mode() & 0o777, 0o600);

    // First contact recorded each reached instance's host key beside the state file.
    let known_hosts = std::fs::read_to_string(cluster.dir.path().join("groundup.json.known_hosts")).unwrap();
    for node in &nodes {
        let recorded = known_hosts.lines().any(|l| l.starts_with(&format!("{} ", node.instance_id)));
        assert_eq!(recorded, &node.hostname != unreachable, "{}: {known_hosts}", node.hostname);
    }

    // Reachable again: only that node gets files.
    let _late = machines.start(&offline, unreachable);
    let second = machines.distribute(&offline, &cluster);
    assert_success(&second, "distribute to every node");
    for (hostname, outcome) in summary(&second) {
        let copied = outcome["copied"].as_array().unwrap().len();
        assert_eq!(copied, if &hostname == unreachable { file_count(&outcome) } else { 0 }, "{outcome}");
        assert_eq!(files(&machines.root(&hostname)), files(&bundle(&hostname)), "{hostname}");
    }

    // Nothing differs: nothing is copied.
    let third = machines.distribute(&offline, &cluster);
    assert_success(&third, "distribute again");
    for (hostname, outcome) in summary(&third) {
        assert_eq!(outcome["copied"], serde_json::json!([]), "{hostname} copied again: {outcome}");
    }

    // A changed file and a loosened key mode are put right, and only they.
    let node_root = machines.root(&master.hostname);
    std::fs::write(node_root.join("etc/etcd/ca.pem"), "tampered").unwrap();
    std::fs::set_permissions(&ca_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let repair = machines.distribute(&offline, &cluster);
    assert_success(&repair, "distribute after tampering");
    let outcomes = summary(&repair);
    let copied = &outcomes[&master.hostname]["copied"];
    assert_eq!(copied, &serde_json::json!(["/var/lib/kubernetes/ca-key.pem", "/etc/etcd/ca.pem"]), "{copied}");
    assert_eq!(files(&node_root), files(&bundle(&master.hostname)));
    assert!(outcomes
        .values()
        .filter(|o| o["hostname"] != master.hostname.as_str())
        .all(|o| o["copied"] == serde_json::json!([])));
}

#[test]
fn a_changed_host_key_is_an_error_naming_the_node() {
    let (cluster, public_key) = cluster_with_bundles("hostkey");
    let offline = Offline::new();
    let machines = Machines::new(&cluster, &public_key);
    {
        let _sshds = machines.start_all(&offline, None);
        let first = machines.distribute(&offline, &cluster);
        assert_success(&first, "distribute");
        // The emulator's consoles show no host key fingerprints: the first contact says so.
        let stderr = String::from_utf8_lossy(&first.stderr);
        assert!(
            stderr.contains("its console shows no host key fingerprints") && stderr.contains("accept-new"),
            "{stderr}"
        );
    }
    let before = tree(machines.remote.path());
    // The same addresses answer with other host keys.
    let _impostors = machines.start_all(&offline, None);
    let output = machines.distribute(&offline, &cluster);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "{stderr}");
    for node in cluster.state().compute.unwrap().nodes {
        let outcome = &summary(&output)[&node.hostname];
        let error = outcome["error"].as_str().unwrap_or_else(|| panic!("{} was served: {outcome}", node.hostname));
        assert!(error.contains("host key") && error.contains(&node.instance_id.to_string()), "{error}");
        let port = machines.port(&node.hostname);
        assert!(stderr.contains(&format!("{} (127.0.0.1:{port}): failed", node.hostname)), "{stderr}");
    }
    assert_eq!(tree(machines.remote.path()), before, "files changed through an unverified host");
}

#[test]
fn a_bundle_dir_or_ssh_key_outside_the_clusters_own_is_refused_naming_the_field() {
    let cluster = TestCluster::new("distpaths");
    assert_success(&cluster.up(&["--masters", "1", "--workers", "1", "--pki-key", "ecdsa-p256"]), "up");
    let offline = Offline::new();
    let machines = Machines::new(&cluster, "");
    let good = std::fs::read(cluster.state_path()).unwrap();
    // A directory holding what a bundle holds, for a bundle's `dir` to point at.
    let elsewhere = tempfile::tempdir().unwrap();
    let foreign = elsewhere.path().display().to_string();
    type Edit<'a> = &'a dyn Fn(&mut groundup_contracts::Context);
    let cases: [(&str, Edit); 4] = [
        ("bundles.nodes[0].dir", &|c| c.bundles.as_mut().unwrap().nodes[0].dir = foreign.clone()),
        ("bundles.nodes[1].dir", &|c| c.bundles.as_mut().unwrap().nodes[1].dir = "pki".into()),
        ("compute.key_pair.private_key_path", &|c| {
            c.compute.as_mut().unwrap().key_pair.private_key_path = "pki/ca-key.pem".into()
        }),
        ("compute.key_pair.private_key_path", &|c| {
            c.compute.as_mut().unwrap().key_pair.private_key_path = "/etc/ssh/ssh_host_ed25519_key".into()
        }),
    ];
    for (field, edit) in cases {
        std::fs::write(cluster.state_path(), &good).unwrap();
        cluster.edit_state(edit);
        let output = machines.distribute(&offline, &cluster);
        let stderr = assert_clean_failure(&output, field);
        assert_eq!(output.status.code(), Some(2), "{field}: bad input is exit code 2: {stderr}");
        assert!(stderr.contains(field), "{field}: {stderr}");
        assert!(machines.nothing_sent(), "{field}: something was sent");
    }
}

#[test]
fn distribute_sends_nothing_unless_the_state_file_is_yours_alone_and_the_cloud_confirms_each_node() {
    let cluster = TestCluster::new("distconfirm");
    assert_success(&cluster.up(&["--masters", "1", "--workers", "1", "--pki-key", "ecdsa-p256"]), "up");
    let offline = Offline::new();
    let machines = Machines::new(&cluster, "");
    let state = cluster.state_path();
    let nothing_sent = |what: &str| assert!(machines.nothing_sent(), "{what}");
    let distribute = || machines.distribute(&offline, &cluster);

    // On the emulator, a configuration that leaves a made-up public IP as it is: refused.
    let empty = cluster.dir.path().join("empty_ssh_config");
    std::fs::write(&empty, "").unwrap();
    let stderr = assert_clean_failure(&machines.distribute_with(&offline, &cluster, &empty), "an unmapped node");
    let first = &machines.nodes[0];
    assert!(
        stderr.contains(&format!("{}: its made-up public IP leads to {}:22", first.hostname, first.public_ip.unwrap())),
        "{stderr}"
    );
    nothing_sent("an unmapped node");

    for mode in [0o664, 0o646] {
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(mode)).unwrap();
        let stderr = assert_clean_failure(&distribute(), "a writable state file");
        assert!(stderr.contains("not yours alone") && stderr.contains(&format!("mode {mode:o}")), "{stderr}");
        nothing_sent("a writable state file");
    }
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&state, Some(4321), None).unwrap();
    let stderr = assert_clean_failure(&distribute(), "another user's state file");
    assert!(stderr.contains("owner 4321"), "{stderr}");
    nothing_sent("another user's state file");
    std::os::unix::fs::chown(&state, Some(0), None).unwrap();
    // SAFETY: geteuid has no preconditions.
    std::os::unix::fs::chown(&state, Some(unsafe { libc::geteuid() }), None).unwrap();

    // A public IP the cloud does not give that instance, as after a hand edit or a stop and start.
    let worker = cluster.edit_state(|context| {
        let worker = context.compute.as_mut().unwrap().nodes.iter_mut().find(|n| n.name.contains("worker")).unwrap();
        worker.public_ip = Some("203.0.113.9".parse().unwrap());
        (worker.hostname.clone(), worker.instance_id.clone())
    });
    let stderr = assert_clean_failure(&distribute(), "a public IP that moved");
    assert!(stderr.contains(&format!("{}: instance {} has the public IP", worker.0, worker.1)), "{stderr}");
    assert!(stderr.contains("the state file says 203.0.113.9"), "{stderr}");
    nothing_sent("a public IP that moved");

    // Another instance id: not this cluster's node.
    cluster.edit_state(|context| {
        let node = &mut context.compute.as_mut().unwrap().nodes[0];
        node.instance_id = groundup_contracts::Ref::Known("i-0123456789abcdef0".into());
    });
    let stderr = assert_clean_failure(&distribute(), "an unknown instance");
    assert!(stderr.contains("no instance i-0123456789abcdef0 of this cluster"), "{stderr}");
    nothing_sent("an unknown instance");
}
