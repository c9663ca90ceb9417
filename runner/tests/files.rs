//! A cluster's local files: where they live, who owns them, what `down --purge` removes. Every
//! test works in temporary directories holding only sacrificial files, so a regression that
//! deletes too much deletes nothing of value.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use groundup_testkit::{assert_clean_failure, assert_success, bin, endpoint, TestCluster};

const FAST_KEYS: &[&str] = &["--pki-key", "ecdsa-p256"];

fn sacrificial(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, "not groundup's").unwrap();
}

fn up_as(cluster: &TestCluster, name: &str, state: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["up", "--state", state, "--name", name, "--endpoint", endpoint()];
    args.extend_from_slice(extra);
    args.extend_from_slice(FAST_KEYS);
    cluster.groundup(&args)
}

#[test]
fn a_pki_dir_that_is_dot_absolute_or_climbs_out_is_refused_without_the_flag() {
    let cluster = TestCluster::new("pkidir");
    let elsewhere = tempfile::tempdir().unwrap();
    for dir in [".", "../pki", elsewhere.path().to_str().unwrap()] {
        let stderr = assert_clean_failure(&cluster.groundup(&["init", "--pki-dir", dir]), dir);
        assert!(stderr.contains("params.pki.dir"), "{dir}: {stderr}");
    }
}

#[test]
fn purge_with_the_pki_in_dot_or_elsewhere_removes_only_what_groundup_wrote() {
    let cluster = TestCluster::new("purgedot");
    let home = cluster.dir.path();
    sacrificial(&home.join("notes.txt"));
    let up =
        up_as(&cluster, &cluster.name, "groundup.json", &["--pki-dir", ".", "--allow-outside-dir", "--only", "ca"]);
    assert_success(&up, "up --only ca with the PKI in .");
    assert!(home.join("ca-key.pem").exists());
    assert_success(&cluster.groundup(&["down", "--yes", "--purge"]), "down --yes --purge");
    assert!(home.join("notes.txt").exists() && home.join("groundup.json").exists(), "purge removed files in .");
    assert!(!home.join("ca-key.pem").exists() && !home.join("ca.pem").exists(), "purge left the CA");

    let other = TestCluster::new("purgeabs");
    let elsewhere = tempfile::tempdir().unwrap();
    let pki = elsewhere.path().join("pki");
    sacrificial(&pki.join("theirs.pem"));
    let up = up_as(
        &other,
        &other.name,
        "groundup.json",
        &["--pki-dir", pki.to_str().unwrap(), "--allow-outside-dir", "--only", "ca"],
    );
    assert_success(&up, "up --only ca with an absolute PKI directory");
    assert!(pki.join("ca-key.pem").exists());
    assert_success(&other.groundup(&["down", "--yes", "--purge"]), "down --yes --purge");
    assert!(pki.join("theirs.pem").exists(), "purge removed a file groundup did not write");
    assert!(!pki.join("ca-key.pem").exists(), "purge left the CA");
}

#[test]
fn files_live_beside_the_state_file_and_purge_after_down_removes_them_with_the_ssh_key() {
    let cluster = TestCluster::new("subdir");
    let home = cluster.dir.path();
    sacrificial(&home.join("pki/unrelated.pem"));
    std::fs::create_dir(home.join("sub")).unwrap();
    assert_success(&up_as(&cluster, &cluster.name, "sub/g.json", &[]), "up --state sub/g.json");
    let key = home.join("sub/ssh").join(format!("{}.id_ed25519", cluster.name));
    assert!(key.exists() && home.join("sub/pki/ca.pem").exists(), "the files are not beside the state file");

    assert_success(&cluster.groundup(&["down", "--yes", "--state", "sub/g.json"]), "down --yes");
    assert!(key.exists(), "down without --purge removed the key");
    assert_success(&cluster.groundup(&["down", "--yes", "--purge", "--state", "sub/g.json"]), "down --yes --purge");
    assert!(!key.exists(), "--purge after down left the SSH key");
    assert!(!home.join("sub/pki").exists() && !home.join("sub/ssh").exists(), "--purge left the directories");
    assert!(home.join("pki/unrelated.pem").exists(), "--purge touched a pki/ of no cluster of this state file");
    assert!(home.join("sub/g.json").exists());
}

#[test]
fn a_second_cluster_in_the_directory_gets_its_own_files_and_never_touches_the_firsts() {
    let a = TestCluster::new("firsta");
    let b_name = TestCluster::new("secondb").name;
    let home = a.dir.path();
    assert_success(&up_as(&a, &a.name, "groundup.json", &[]), "a's up");
    let a_ca_key = std::fs::read(home.join("pki/ca-key.pem")).unwrap();
    assert_success(&up_as(&a, &b_name, "b.json", &[]), "b's up beside a");

    let b = groundup_contracts::Context::from_json(&std::fs::read_to_string(home.join("b.json")).unwrap()).unwrap();
    assert_eq!(
        (b.params.pki.dir.as_str(), b.params.ssh_dir.as_str()),
        (&*format!("pki-{b_name}"), &*format!("ssh-{b_name}"))
    );
    assert!(b.is_completed("certs"));
    assert_ne!(
        std::fs::read(home.join(format!("pki-{b_name}/ca.pem"))).unwrap(),
        std::fs::read(home.join("pki/ca.pem")).unwrap()
    );
    assert!(home.join(format!("ssh-{b_name}/{b_name}.id_ed25519")).exists());

    // b's context pointed at a's directory: refused, a's files unchanged.
    let mut stolen = b.clone();
    stolen.params.pki.dir = "pki".into();
    stolen.forget_pki();
    let stderr = assert_clean_failure(&a.step("ca", &stolen.to_json()), "ca in another cluster's directory");
    assert!(stderr.contains(&format!("belongs to cluster `{}`", a.name)), "{stderr}");

    assert_success(&a.groundup(&["down", "--state", "b.json", "--yes", "--purge"]), "b's down --purge");
    assert_eq!(std::fs::read(home.join("pki/ca-key.pem")).unwrap(), a_ca_key, "b's purge touched a's CA");
    assert!(home.join(format!("ssh/{}.id_ed25519", a.name)).exists(), "b's purge touched a's SSH key");
    assert!(!home.join(format!("pki-{b_name}")).exists() && !home.join(format!("ssh-{b_name}")).exists());
    assert_success(&a.groundup(&["down", "--yes", "--purge"]), "a's down --purge");
    assert!(!home.join("pki").exists() && !home.join("ssh").exists());
}

/// Two `groundup-ca` at once on a fresh directory (RSA keys: a wide window) must leave each CA's
/// certificate with its own key.
#[test]
fn concurrent_ca_runs_leave_every_ca_with_its_own_key() {
    let cluster = TestCluster::new("caconc");
    let context = cluster.init(&[]);
    for round in 0..6 {
        let dir = cluster.dir.path().join(format!("round-{round}"));
        std::fs::create_dir(&dir).unwrap();
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let mut child = Command::new(bin("groundup-ca"))
                    .current_dir(&dir)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                std::io::Write::write_all(&mut child.stdin.take().unwrap(), context.as_bytes()).unwrap();
                child
            })
            .collect();
        for run in runs {
            let output = run.wait_with_output().unwrap();
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        }
        for ca in ["ca", "etcd-ca", "front-proxy-ca"] {
            let public = |args: &[&str]| Command::new("openssl").args(args).current_dir(&dir).output().unwrap().stdout;
            let from_cert = public(&["x509", "-noout", "-pubkey", "-in", &format!("pki/{ca}.pem")]);
            let from_key = public(&["pkey", "-pubout", "-in", &format!("pki/{ca}-key.pem")]);
            assert!(!from_cert.is_empty() && from_cert == from_key, "round {round}: {ca}.pem and {ca}-key.pem differ");
        }
    }
}

#[test]
fn a_symlinked_foreign_or_world_writable_pki_is_refused_and_left_alone() {
    let cluster = TestCluster::new("pkitrust");
    let context = cluster.init(FAST_KEYS);
    let home = cluster.dir.path();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    let target = tempfile::tempdir().unwrap();
    std::fs::set_permissions(target.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(target.path(), home.join("pki")).unwrap();
    let stderr = assert_clean_failure(&cluster.step("ca", &context), "ca with a symlinked pki");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert_eq!(mode(target.path()), 0o755, "the link's target was changed");
    assert!(std::fs::read_dir(target.path()).unwrap().next().is_none(), "files were written through the link");
    std::fs::remove_file(home.join("pki")).unwrap();

    std::fs::create_dir(home.join("pki")).unwrap();
    std::fs::set_permissions(home.join("pki"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let stderr = assert_clean_failure(&cluster.step("ca", &context), "ca with a world-writable pki");
    assert!(stderr.contains("writable by group or others"), "{stderr}");

    std::fs::set_permissions(home.join("pki"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(home.join("pki"), Some(4321), Some(4321)).unwrap();
    let stderr = assert_clean_failure(&cluster.step("ca", &context), "ca with another user's pki");
    assert!(stderr.contains("belongs to user 4321"), "{stderr}");
    assert!(std::fs::read_dir(home.join("pki")).unwrap().next().is_none(), "a CA went into another user's directory");
}
