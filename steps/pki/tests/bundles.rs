//! groundup-bundles after the PKI, kubeconfig and encryption steps on the example context:
//! every node gets exactly what it needs, and a worker never a CA key, another node's key or
//! the admin's credentials.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use groundup_testkit::{ok, run};

mod common;

fn step(bin: &str, stdin: &str, dir: &Path) -> String {
    ok(&run(bin, &[], stdin, dir), bin)
}

fn every_file(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                found.push(entry.path().strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// Whether a bundle's file is one of kubeadm's (below `/etc/kubernetes`, where every node's
/// static pods also are).
fn kubeadms(file: &str) -> bool {
    file.starts_with("etc/kubernetes/") && !file.starts_with("etc/kubernetes/manifests/")
}

/// kubeadm's files on a master, relative to `/`.
const KUBEADM_FILES: [&str; 6] = [
    "etc/kubernetes/admin.conf",
    "etc/kubernetes/super-admin.conf",
    "etc/kubernetes/controller-manager.conf",
    "etc/kubernetes/scheduler.conf",
    "etc/kubernetes/kubelet.conf",
    "etc/kubernetes/pki/ca.crt",
];

#[test]
fn each_node_gets_its_own_files_and_a_worker_no_ca_key_foreign_key_or_admin() {
    let (dir, context) = bundles("cfssl");
    for node in nodes(&context) {
        let files = every_file(&dir.path().join("nodes").join(node["hostname"].as_str().unwrap()));
        assert!(!files.iter().any(|f| kubeadms(f)), "kubeadm's files without its layout");
    }

    let hostname = nodes(&context)[0]["hostname"].as_str().unwrap().to_string();
    let archive = dir.path().join(format!("nodes/{hostname}.tar.gz"));
    let before = std::fs::metadata(&archive).unwrap().modified().unwrap();
    step(env!("CARGO_BIN_EXE_groundup-bundles"), &context, dir.path());
    assert_eq!(std::fs::metadata(&archive).unwrap().modified().unwrap(), before, "an unchanged bundle was rewritten");
}

/// A worker's kubeconfig and bundle hold the certificate and key named after its host: a state
/// file edited to give a worker the hostname of another certificate's files (the admin's key,
/// the service-account signing key, a CA) is refused by both steps, exit 2 naming the field,
/// and nothing is written for it.
#[test]
fn a_hostname_that_names_another_certificates_files_gets_no_kubeconfig_or_bundle() {
    let (dir, context) = bundles("cfssl");
    let before = every_file(dir.path());
    for taken in ["admin-key", "service-account", "ca"] {
        let mut edited: serde_json::Value = serde_json::from_str(&context).unwrap();
        edited["compute"]["nodes"][3]["hostname"] = taken.into();
        for bin in [env!("CARGO_BIN_EXE_groundup-kubeconfig"), env!("CARGO_BIN_EXE_groundup-bundles")] {
            let output = run(bin, &[], &edited.to_string(), dir.path());
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{bin} {taken}: {stderr}");
            assert!(
                output.stdout.is_empty() && stderr.contains("compute.nodes[3].hostname"),
                "{bin} {taken}: {stderr}"
            );
        }
    }
    assert_eq!(every_file(dir.path()), before, "a file was written or removed");
}

#[test]
fn with_the_kubeadm_layout_a_master_gets_etc_kubernetes_and_a_worker_none_of_it() {
    let (dir, context) = bundles("kubeadm");
    let kubeconfigs = dir.path().join("kubeconfig/kubeadm");
    for node in nodes(&context) {
        let host = node["hostname"].as_str().unwrap();
        let root = dir.path().join("nodes").join(host);
        let files = every_file(&root);
        if node["role"] == "master" {
            for wanted in KUBEADM_FILES {
                assert!(files.contains(&wanted.to_string()), "{host}: {wanted} missing: {files:?}");
            }
            let own = std::fs::read(kubeconfigs.join(host).join("kubelet.conf")).unwrap();
            assert_eq!(std::fs::read(root.join("etc/kubernetes/kubelet.conf")).unwrap(), own, "{host}'s own kubelet");
            let ca = std::fs::read(dir.path().join("pki/ca.pem")).unwrap();
            assert_eq!(std::fs::read(root.join("etc/kubernetes/pki/ca.crt")).unwrap(), ca);
        } else {
            assert!(!files.iter().any(|f| kubeadms(f)), "{host}: {files:?}");
            // Not a byte of any master's kubeadm kubeconfig either, wherever it might have gone.
            for master in std::fs::read_dir(&kubeconfigs).unwrap().flatten() {
                for conf in std::fs::read_dir(master.path()).unwrap().flatten() {
                    let conf = std::fs::read(conf.path()).unwrap();
                    assert!(files.iter().all(|f| std::fs::read(root.join(f)).unwrap() != conf), "{host}");
                }
            }
        }
    }
}

/// Each file under `root` with what a rewrite changes: (path, inode, modification time).
fn identities(root: &Path) -> Vec<(String, u64, i64, i64)> {
    every_file(root)
        .into_iter()
        .map(|file| {
            let meta = std::fs::symlink_metadata(root.join(&file)).unwrap();
            (file, meta.ino(), meta.mtime(), meta.mtime_nsec())
        })
        .collect()
}

/// Nothing changed, nothing written: the steps run again on what they made leave every file
/// of the cluster as it was, in both layouts (kubeadm's trees are copies, and a copy rewritten
/// gave each master's archive new times, so new bytes, on every run).
#[test]
fn running_the_pki_steps_again_rewrites_no_file_in_either_layout() {
    for layout in ["cfssl", "kubeadm"] {
        let (dir, context) = common::bundled(layout);
        let before = identities(dir.path());
        assert!(before.iter().any(|(f, ..)| f.ends_with(".tar.gz")), "{layout}: {before:?}");
        common::through_the_steps(context, dir.path());
        let after = identities(dir.path());
        let changed: Vec<_> = after.iter().filter(|file| !before.contains(file)).map(|(f, ..)| f).collect();
        assert!(changed.is_empty(), "{layout}: rewritten: {changed:?}");
    }
}

#[test]
fn switching_to_the_kubeadm_layout_shows_in_a_plan_and_a_run_without_its_files_says_what_to_run() {
    let (dir, context) = bundles("cfssl");
    let mut kubeadm: serde_json::Value = serde_json::from_str(&context).unwrap();
    kubeadm["params"]["pki"]["layout"] = "kubeadm".into();
    let mut planned = kubeadm.clone();
    planned["plan"] = serde_json::json!({"resources": []});
    let bin = env!("CARGO_BIN_EXE_groundup-bundles");
    let plan: serde_json::Value =
        serde_json::from_str(&ok(&run(bin, &["--plan"], &planned.to_string(), dir.path()), "--plan")).unwrap();
    for node in nodes(&context) {
        let host = node["hostname"].as_str().unwrap();
        let entry = plan["plan"]["resources"].as_array().unwrap().iter().find(|r| r["resource"] == host).unwrap();
        if node["role"] == "master" {
            assert_eq!(entry["action"], "change", "{entry}");
            assert!(
                entry["changes"].as_array().unwrap().iter().any(|c| c == "~ /etc/kubernetes/admin.conf"),
                "{entry}"
            );
        } else {
            assert_eq!(entry["action"], "leave", "{entry}");
        }
    }

    // Without the kubeconfig step's .conf files, a run fails instead of leaving them out.
    let output = run(bin, &[], &kubeadm.to_string(), dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && output.stdout.is_empty(), "{stderr}");
    assert!(stderr.contains("cannot read") && stderr.contains("run the ca, certs, kubeconfig"), "{stderr}");
}

/// `tar tzf` of a node's archive, sorted: its files and directories (these end in `/`).
fn archived(dir: &Path, host: &str) -> Vec<String> {
    let output = Command::new("tar").arg("tzf").arg(dir.join(format!("nodes/{host}.tar.gz"))).output().unwrap();
    assert!(output.status.success(), "tar tzf: {}", String::from_utf8_lossy(&output.stderr));
    let mut listed: Vec<String> = String::from_utf8_lossy(&output.stdout).lines().map(String::from).collect();
    listed.sort();
    listed
}

/// What the archive of a bundle whose directory holds `files` must list: those files and the
/// directories groundup makes for them, below `etc/containerd`, `etc/etcd`, `etc/kubernetes`
/// and `var/lib/kube*`, never `etc`, `var`, `var/lib` or a drop-in directory (`etc/sysctl.d`).
fn exactly(files: &[String]) -> Vec<String> {
    let roots = groundup_pki::bundle::ROOTS;
    let mut listed: Vec<String> = files.to_vec();
    for file in files {
        let mut parent = Path::new(file).parent();
        while let Some(dir) = parent.filter(|dir| roots.iter().any(|root| dir.starts_with(root))) {
            listed.push(format!("{}/", dir.display()));
            parent = dir.parent();
        }
    }
    listed.sort();
    listed.dedup();
    listed
}

#[test]
fn extracting_a_bundle_into_a_root_with_gnu_tar_changes_no_directory_that_was_there() {
    let (dir, context) = bundles("kubeadm");
    for node in nodes(&context) {
        let host = node["hostname"].as_str().unwrap();
        let root = tempfile::tempdir().unwrap();
        let system = [
            "",
            "etc",
            "etc/systemd",
            "etc/systemd/system",
            "etc/sysctl.d",
            "etc/modules-load.d",
            "etc/kubernetes",
            "usr",
            "var",
            "var/lib",
            "var/lib/kubelet",
        ];
        for existing in system {
            std::fs::create_dir_all(root.path().join(existing)).unwrap();
            std::fs::set_permissions(root.path().join(existing), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let before = |existing: &str| {
            let metadata = std::fs::metadata(root.path().join(existing)).unwrap();
            (existing.to_string(), metadata.mode() & 0o7777, metadata.uid(), metadata.gid())
        };
        let was: Vec<_> = system.iter().map(|existing| before(existing)).collect();
        let archive = dir.path().join(format!("nodes/{host}.tar.gz"));
        let extracted = Command::new("tar").arg("xzf").arg(&archive).arg("-C").arg(root.path()).output().unwrap();
        assert!(extracted.status.success(), "{host}: {}", String::from_utf8_lossy(&extracted.stderr));
        let now: Vec<_> = system.iter().map(|existing| before(existing)).collect();
        assert_eq!(now, was, "{host}: extracting its bundle changed a directory that was there");
        let listed = archived(dir.path(), host);
        for os in ["./", "etc/", "var/", "var/lib/", "etc/systemd/", "etc/systemd/system/", "etc/sysctl.d/"] {
            assert!(!listed.iter().any(|entry| entry == os), "{host}: the archive names {os}: {listed:?}");
        }
        let files = every_file(&dir.path().join("nodes").join(host));
        assert_eq!(every_file(root.path()), files, "{host}: not every file of the bundle was extracted");
        assert_eq!(listed, exactly(&files), "{host}");
    }
}

/// What a bundle no longer lists goes, from its directory and its archive, and the plan says
/// so first: kubeadm's files once the layout is back to cfssl, a file left there by other
/// hands is never shipped, and a rotated encryption key reaches the archive.
#[test]
fn leaving_kubeadms_layout_removes_its_files_and_the_archive_holds_exactly_the_list() {
    let (dir, context) = bundles("kubeadm");
    let master = nodes(&context).into_iter().find(|n| n["role"] == "master").unwrap();
    let host = master["hostname"].as_str().unwrap().to_string();
    let bundle = dir.path().join("nodes").join(&host);
    std::fs::write(bundle.join("etc/etcd/notes.txt"), "someone's").unwrap();
    let mut cfssl: serde_json::Value = serde_json::from_str(&context).unwrap();
    cfssl["params"]["pki"]["layout"] = "cfssl".into();
    let mut planned = cfssl.clone();
    planned["plan"] = serde_json::json!({"resources": []});
    let bundles_bin = env!("CARGO_BIN_EXE_groundup-bundles");
    let plan = ok(&run(bundles_bin, &["--plan"], &planned.to_string(), dir.path()), "--plan");
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let entry = plan["plan"]["resources"].as_array().unwrap().iter().find(|r| r["resource"] == host.as_str()).unwrap();
    assert_eq!(entry["action"], "change", "{entry}");
    for goes in ["- /etc/kubernetes/admin.conf", "- /etc/kubernetes/pki/ca.key"] {
        assert!(entry["changes"].as_array().unwrap().iter().any(|c| c.as_str().unwrap().starts_with(goes)), "{entry}");
    }

    let mut context = cfssl.to_string();
    for bin in [env!("CARGO_BIN_EXE_groundup-certs"), env!("CARGO_BIN_EXE_groundup-kubeconfig"), bundles_bin] {
        context = step(bin, &context, dir.path());
    }
    let files = every_file(&bundle);
    assert!(!files.iter().any(|f| kubeadms(f)), "kubeadm's files stayed: {files:?}");
    assert!(!bundle.join("etc/kubernetes/pki").exists(), "an emptied directory stayed");
    assert!(files.contains(&"etc/etcd/notes.txt".to_string()), "a file groundup did not write was removed");
    let shipped: Vec<String> = files.into_iter().filter(|f| f != "etc/etcd/notes.txt").collect();
    assert_eq!(archived(dir.path(), &host), exactly(&shipped), "{host}");
    assert!(!dir.path().join("kubeconfig/kubeadm").join(&host).join("admin.conf").exists(), "kubeadm's .conf stayed");
    assert!(!dir.path().join("pki/kubeadm").exists(), "kubeadm's trees (copies of the CA keys) stayed");

    let rotated = ok(&run(env!("CARGO_BIN_EXE_groundup-encryption"), &["--rotate"], &context, dir.path()), "--rotate");
    step(bundles_bin, &rotated, dir.path());
    let output = Command::new("tar")
        .args(["xzOf"])
        .arg(dir.path().join(format!("nodes/{host}.tar.gz")))
        .arg("var/lib/kubernetes/encryption-config.yaml")
        .output()
        .unwrap();
    assert_eq!(output.stdout, std::fs::read(dir.path().join("pki/encryption-config.yaml")).unwrap(), "the old key");
}

/// No file of a cluster ever shows in `git status` of a repository it sits in: each of its
/// directories holds a `.gitignore` of `*`.
#[test]
fn git_never_sees_a_clusters_files() {
    let (dir, _) = bundles("cfssl");
    let git = |args: &[&str]| Command::new("git").args(args).current_dir(dir.path()).output().unwrap();
    assert!(git(&["init", "-q"]).status.success());
    let status = git(&["status", "--porcelain", "--untracked-files=all", "--ignored=no"]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert_eq!(String::from_utf8_lossy(&status.stdout), "", "git would commit these");
    for owned in ["pki", "kubeconfig", "nodes"] {
        assert_eq!(std::fs::read_to_string(dir.path().join(owned).join(".gitignore")).unwrap(), "*\n", "{owned}");
    }
}

/// The repository's own `.gitignore` covers every file a cluster in its root (the default
/// home of `scripts/up.sh`) writes, even without the directories' own.
#[test]
fn the_repositorys_gitignore_covers_the_default_homes_files() {
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| Command::new("git").args(args).current_dir(repo.path()).output().unwrap();
    assert!(git(&["init", "-q"]).status.success());
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.gitignore"), repo.path().join(".gitignore"))
        .unwrap();
    let files = [
        "groundup.json",
        "groundup.json.lock",
        ".groundup/emulator.json",
        "pki/ca-key.pem",
        "pki-b/ca-key.pem",
        "ssh/k8s-cluster.id_rsa",
        "ssh-b/b.id_rsa",
        "kubeconfig/admin.kubeconfig",
        "kubeconfig-b/admin.kubeconfig",
        "nodes/ip-172-31-0-10/var/lib/kubernetes/ca-key.pem",
        "nodes/ip-172-31-0-10.tar.gz",
        "nodes-b/ip-172-31-0-10.tar.gz",
    ];
    for file in files {
        let path = repo.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "secret").unwrap();
    }
    let status = git(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert_eq!(String::from_utf8_lossy(&status.stdout), "?? .gitignore\n", "git would commit these");
}

fn nodes(context: &str) -> Vec<serde_json::Value> {
    let state: serde_json::Value = serde_json::from_str(context).unwrap();
    state["compute"]["nodes"].as_array().unwrap().clone()
}

/// ca | certs | kubeconfig | encryption | bundles on the example with this layout (ECDSA keys,
/// to be quick), checked for what every node must and must not get: (dir, context).
fn bundles(layout: &str) -> (tempfile::TempDir, String) {
    let (dir, context) = common::bundled(layout);
    let state: serde_json::Value = serde_json::from_str(&context).unwrap();
    let pki = dir.path().join("pki");
    let key_bytes: Vec<(String, Vec<u8>)> = std::fs::read_dir(&pki)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("-key.pem"))
        .map(|e| (e.file_name().to_string_lossy().to_string(), std::fs::read(e.path()).unwrap()))
        .collect();
    // The admins' credentials: the course's, and kubeadm's admin and super-admin with its layout.
    let mut admin: Vec<Vec<u8>> = std::fs::read_dir(&pki)
        .unwrap()
        .flatten()
        .filter(|e| {
            ["admin", "kubernetes-admin", "kubernetes-super-admin"].iter().any(|a| {
                let file = e.file_name().to_string_lossy().to_string();
                file == format!("{a}.pem") || file == format!("{a}-key.pem")
            })
        })
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    assert_eq!(admin.len(), if layout == "kubeadm" { 6 } else { 2 });
    admin.push(std::fs::read(dir.path().join("kubeconfig/admin.kubeconfig")).unwrap());
    let nodes = state["compute"]["nodes"].as_array().unwrap();
    for node in nodes {
        let (host, role) = (node["hostname"].as_str().unwrap(), node["role"].as_str().unwrap());
        let root = dir.path().join("nodes").join(host);
        let files = every_file(&root);
        let archive =
            Command::new("tar").arg("-tvzf").arg(dir.path().join(format!("nodes/{host}.tar.gz"))).output().unwrap();
        // `-rw------- 0/0 1704 2026-11-26 05:30 var/lib/kubelet/key.pem`: the regular files,
        // with their modes and owner.
        let mut listed: Vec<(String, String, String)> = String::from_utf8_lossy(&archive.stdout)
            .lines()
            .filter(|l| l.starts_with('-'))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .map(|f| (f[f.len() - 1].trim_start_matches("./").to_string(), f[0].to_string(), f[1].to_string()))
            .collect();
        listed.sort();
        assert_eq!(listed.iter().map(|l| &l.0).collect::<Vec<_>>(), files.iter().collect::<Vec<_>>(), "{host}");
        assert!(listed.iter().all(|l| l.2 == "0/0"), "{host}: not owned by root: {listed:?}");
        for (file, (_, archived_mode, _)) in files.iter().zip(&listed) {
            let bytes = std::fs::read(root.join(file)).unwrap();
            let mode = std::fs::metadata(root.join(file)).unwrap().permissions().mode() & 0o777;
            // Keys, kubeconfigs (kubeadm's `.conf` too) and the encryption key; not the
            // node's configs and units (`/etc/sysctl.d/*.conf`, `kubelet/config.yaml`).
            let secrets = ["-key.pem", ".key", "kubeconfig", "encryption-config.yaml"];
            let kubeadm_conf = file.starts_with("etc/kubernetes/") && file.ends_with(".conf");
            if kubeadm_conf || secrets.iter().any(|suffix| file.ends_with(suffix)) {
                assert_eq!(mode, 0o600, "{host}: {file}");
                assert_eq!(archived_mode, "-rw-------", "{host}: {file} in the archive");
            }
            for (key_name, key) in &key_bytes {
                if bytes == *key && role == "worker" {
                    assert_eq!(key_name, &format!("{host}-key.pem"), "{host} holds {key_name}");
                }
            }
            if role == "worker" {
                assert!(!admin.contains(&bytes), "{host}: {file} holds the admin's credentials");
            }
        }
        if role == "worker" {
            assert!(files.contains(&format!("var/lib/kubelet/{host}-key.pem")), "{host}: {files:?}");
            assert!(!files.iter().any(|f| f.contains("ca-key")), "{host}: {files:?}");
        } else {
            assert!(files.contains(&"var/lib/kubernetes/encryption-config.yaml".to_string()), "{host}: {files:?}");
            assert!(files.contains(&"var/lib/kubernetes/kubernetes.pem".to_string()), "{host}: {files:?}");
            assert_eq!(
                std::fs::read(root.join("etc/etcd/peer.pem")).unwrap(),
                std::fs::read(pki.join(format!("etcd-peer-{host}.pem"))).unwrap()
            );
        }
    }
    (dir, context)
}
