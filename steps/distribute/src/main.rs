//! `groundup-distribute` (`groundup distribute`): copies each node's bundle (`nodes/<hostname>/`) to the node over SSH,
//! with the real OpenSSH client and the cluster's key. One SSH session per node: a shell script
//! on its stdin checks each file's hash and mode and writes only what differs, each file to a
//! temporary name beside its target and then renamed into place. Nodes are served concurrently;
//! one that fails is reported and the others still get their files.
//!
//! ssh reads no configuration but `--ssh-config FILE` (a jump host, a port, a `HostName` per
//! node address), and `--dest-dir DIR` puts the files under DIR on each node instead of `/`.
//! The tests use both to reach an sshd per node on loopback.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use groundup_contracts::infra::Node;
use groundup_contracts::{Context, Target};
use groundup_pki::{bundle, names};
use groundup_runtime::files::home_of;
use groundup_runtime::output::print_line;
use groundup_runtime::state;
use groundup_runtime::tool::{find_program, run_tool};
use groundup_runtime::RuntimeError;
use serde::Serialize;

/// At most this many SSH sessions at once.
const CONCURRENCY: usize = 16;

#[derive(Args, Debug)]
struct DistributeArgs {
    /// The state file of the cluster (its nodes, their bundles and the SSH key)
    #[arg(long, visible_alias = "context", value_name = "FILE", default_value = state::DEFAULT_STATE)]
    state: PathBuf,
    /// The user to log in as; unless it is root, files are written through `sudo -n`
    #[arg(long, default_value = "ubuntu")]
    user: String,
    /// Seconds to wait for each node's SSH connection
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    connect_timeout: u32,
    /// For scripts: per node, the files copied, the number unchanged and any error, as JSON on stdout
    #[arg(long)]
    json: bool,
    /// Allow real AWS, to confirm where the nodes are (as GROUNDUP_ALLOW_AWS=1 does)
    #[arg(long)]
    aws: bool,
    /// An OpenSSH client configuration (`ssh -F FILE`) for reaching the nodes, whose addresses
    /// it matches with `Host`: a jump host (ProxyJump), another port, a HostName. Without it
    /// ssh reads no user or system configuration
    #[arg(long, value_name = "FILE")]
    ssh_config: Option<PathBuf>,
    /// Write each node's files under DIR on the node instead of `/` (an absolute path): to
    /// stage them, or for a node whose root is mounted there
    #[arg(long, value_name = "DIR", value_parser = dest_dir)]
    dest_dir: Option<String>,
    /// Then reload systemd and restart what reads the files that changed: containerd for its
    /// config, the kubelet for its config, unit, kubeconfig, certificates, the CA or
    /// containerd's (static pods follow their manifests by themselves)
    #[arg(long)]
    restart: bool,
}

/// What a node should end up with: its files' bytes and modes, and the directories to create
/// (with the bundle's modes) where missing.
struct Delivery {
    /// Where `/` is on the node: `` unless `--dest-dir`.
    root: String,
    dirs: Vec<(String, u32)>,
    files: Vec<Upload>,
    /// With `--restart`: each service, restarted if one of its files was copied.
    restarts: Vec<(&'static str, Vec<String>)>,
}

struct Upload {
    /// Where the file goes on the node, absolute.
    path: String,
    mode: u32,
    bytes: Vec<u8>,
}

#[derive(Serialize)]
struct Outcome {
    hostname: String,
    address: Option<String>,
    /// The files written, by their path on the node.
    copied: Vec<String>,
    unchanged: usize,
    /// The services restarted (`--restart`).
    restarted: Vec<String>,
    error: Option<String>,
}

/// How to reach the nodes: the OpenSSH client with the cluster's key, checking host keys.
struct Ssh {
    /// `--ssh-config`, or `none`: ssh reads no other configuration.
    config: PathBuf,
    key: PathBuf,
    known_hosts: PathBuf,
    user: String,
    connect_timeout: u32,
}

fn main() -> ExitCode {
    run_tool("distribute", |args: DistributeArgs| run(&args).map(|()| ExitCode::SUCCESS))
}

fn run(args: &DistributeArgs) -> Result<()> {
    check_owned(&args.state)?;
    let context = state::load_existing(&args.state, None)?;
    names::plain(&args.user).map_err(|e| anyhow!("--user: {e}"))?;
    if args.ssh_config.is_none() && !matches!(context.target, Target::Aws) {
        bail!(
            "the cluster of {} runs on a local emulator: its instances are not machines and their public IPs are made up, so nothing was copied; `groundup distribute` is for a cluster on AWS (or, with --ssh-config, for machines the configuration maps the nodes' addresses to)",
            args.state.display()
        );
    }
    let home = home_of(&args.state);
    let compute = context
        .compute
        .as_ref()
        .ok_or_else(|| anyhow!("the state file {} has no nodes yet; run `groundup up` first", args.state.display()))?;
    let bundles = context.bundles.as_ref().ok_or_else(|| {
        anyhow!("the state file {} has no node bundles yet; run `groundup up` first", args.state.display())
    })?;
    // The state file names every path below: each is proven to be the cluster's own first.
    compute.check_names(&context.cluster.name)?;
    compute.check_key_path(&context.params.ssh_dir)?;
    bundles.check_paths(&context.params.nodes_dir)?;
    // The cloud confirms each node's instance and public IP before any secret leaves.
    // It also reads each node's host key fingerprints from its console, to pin the first contact.
    let confirmed = confirm(&context, &args.state, args.aws)?;
    let console_keys = |node: &Node| -> Vec<String> {
        let nodes = confirmed.compute.as_ref().map(|c| c.nodes.as_slice()).unwrap_or_default();
        nodes.iter().find(|n| n.instance_id == node.instance_id).map(|n| n.host_keys.clone()).unwrap_or_default()
    };
    let key = home.join(&compute.key_pair.private_key_path);
    std::fs::File::open(&key).with_context(|| format!("cannot read the cluster's SSH key {}", key.display()))?;
    let ssh = Ssh {
        config: args.ssh_config.as_ref().map_or(Ok(PathBuf::from("none")), std::path::absolute)?,
        key: std::path::absolute(&key)?,
        known_hosts: known_hosts_file(&args.state)?,
        user: args.user.clone(),
        connect_timeout: args.connect_timeout,
    };
    // Before anything is sent: on the emulator, a node's made-up public IP must lead to this
    // machine, never to whoever has that address.
    let routes = compute
        .nodes
        .iter()
        .map(|node| {
            let route = ssh.route(node)?;
            if !matches!(context.target, Target::Aws) && !route.is_local() {
                bail!(
                    "{}: its made-up public IP leads to {} (through {}), not to loopback: on the emulator --ssh-config must map each node's address to a HostName on 127.0.0.1 without a proxy; nothing was copied",
                    node.hostname,
                    route.shown(),
                    ssh.config.display()
                );
            }
            Ok((node.hostname.clone(), route))
        })
        .collect::<Result<std::collections::HashMap<_, _>>>()?;
    let root = args.dest_dir.clone().unwrap_or_default();

    let serve = |node: &Node| -> Outcome {
        let mut outcome = Outcome {
            hostname: node.hostname.clone(),
            address: None,
            copied: Vec::new(),
            unchanged: 0,
            restarted: Vec::new(),
            error: None,
        };
        let result = (|| {
            let route = &routes[&node.hostname];
            outcome.address = Some(route.shown());
            let dir = bundles
                .nodes
                .iter()
                .find(|b| b.hostname == node.hostname)
                .map(|b| home.join(&b.dir))
                .ok_or_else(|| anyhow!("it has no bundle; run `groundup up` to lay it out"))?;
            let delivery = delivery(&context, node, &dir, &root, args.restart)?;
            let known = ssh.pin(node, route, &console_keys(node))?;
            ssh.deliver(node, known, &delivery, &mut outcome)
        })();
        outcome.error = result.err().map(|e| format!("{e:#}"));
        outcome
    };
    let outcomes = concurrently(&compute.nodes, serve)?;

    for outcome in &outcomes {
        let at = outcome.address.as_deref().map(|a| format!(" ({a})")).unwrap_or_default();
        match &outcome.error {
            None => eprintln!(
                "groundup: distribute: {}{at}: {} copied, {} unchanged{}",
                outcome.hostname,
                outcome.copied.len(),
                outcome.unchanged,
                outcome.restarted.iter().map(|unit| format!(", restarted {unit}")).collect::<String>()
            ),
            Some(error) => eprintln!("groundup: distribute: {}{at}: failed: {error}", outcome.hostname),
        }
    }
    if args.json {
        print_line(&serde_json::to_string_pretty(&serde_json::json!({ "nodes": outcomes }))?)?;
    }
    let failed: Vec<&str> = outcomes.iter().filter(|o| o.error.is_some()).map(|o| o.hostname.as_str()).collect();
    if !failed.is_empty() {
        let others = if failed.len() < outcomes.len() { "; the others did" } else { "" };
        bail!(
            "{} of {} node(s) did not get their files: {}{others}. Run `groundup distribute` again once they are reachable",
            failed.len(),
            outcomes.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// The state file says where the secrets go: like the PKI directory, it must be the user's
/// alone (owned by them, a plain file, writable by no one else).
fn check_owned(state: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(state).with_context(|| format!("cannot read {}", state.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_file() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        bail!(
            "the state file {} is not yours alone (owner {}, mode {:o}; it must be a file of user {me} that group and others cannot write): whoever can write it chooses where the cluster's secrets go, so nothing was sent; check it, then `chmod 600` it",
            state.display(),
            meta.uid(),
            meta.mode() & 0o7777
        );
    }
    Ok(())
}

/// `groundup-compute --confirm`: the cloud's view of each node (its instance, its public IP,
/// the host key fingerprints its console shows), refusing (exit code 2) a node it does not
/// confirm. It runs in the cluster's home, as the runner runs its steps.
fn confirm(context: &Context, state: &Path, aws: bool) -> Result<Context> {
    let program = find_program("compute")?;
    let args: &[&str] = if aws { &["--confirm", "--aws"] } else { &["--confirm"] };
    let output = duct::cmd(&program, args)
        .dir(home_of(state))
        .stdin_bytes(context.to_json())
        .stdout_capture()
        .unchecked()
        .run()
        .with_context(|| format!("cannot run {}", program.display()))?;
    match output.status.code() {
        Some(0) => {}
        Some(2) => return Err(RuntimeError::StepRefused { step: "compute".into() }.into()),
        _ => bail!("step `compute` failed ({})", output.status),
    }
    std::str::from_utf8(&output.stdout)
        .ok()
        .and_then(|text| Context::from_json(text).ok())
        .ok_or_else(|| anyhow!("step `compute` wrote an unusable context"))
}

/// Runs `serve` on every node, at most [`CONCURRENCY`] at a time; the outcomes in node order.
fn concurrently(nodes: &[Node], serve: impl Fn(&Node) -> Outcome + Sync) -> Result<Vec<Outcome>> {
    use rayon::prelude::*;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(CONCURRENCY).build()?;
    Ok(pool.install(|| nodes.par_iter().map(&serve).collect()))
}

/// The node's files from its bundle, at their places under `root` (`` for `/`), and the
/// directories groundup makes for them (never one the node's OS owns, see
/// `groundup_pki::bundle::ROOTS`), parents first.
fn delivery(context: &Context, node: &Node, bundle_dir: &Path, root: &str, restart: bool) -> Result<Delivery> {
    let wanted = bundle::contents(context, node);
    let mut files = Vec::new();
    for file in &wanted {
        let source = bundle_dir.join(&file.target);
        let bytes = std::fs::read(&source)
            .with_context(|| format!("cannot read {}; run `groundup up` to lay out its bundle", source.display()))?;
        files.push(Upload { path: format!("{root}/{}", file.target), mode: file.mode, bytes });
    }
    let dirs =
        bundle::directories(&wanted).into_iter().map(|dir| (format!("{root}/{dir}"), bundle::DIR_MODE)).collect();
    let restarts = match restart {
        true => restarts(node)
            .into_iter()
            .map(|(unit, paths)| (unit, paths.iter().map(|p| format!("{root}/{p}")).collect()))
            .collect(),
        false => Vec::new(),
    };
    Ok(Delivery { root: root.to_string(), dirs, files, restarts })
}

/// The services `--restart` restarts and the files (relative to `/`) whose change each needs.
fn restarts(node: &Node) -> Vec<(&'static str, Vec<String>)> {
    use groundup_pki::node::paths;
    let containerd = vec![paths::CONTAINERD_CONFIG.to_string()];
    let mut kubelet: Vec<String> =
        [paths::KUBELET_CONFIG, paths::KUBELET_KUBECONFIG, paths::KUBELET_UNIT, paths::CA, paths::CONTAINERD_CONFIG]
            .map(String::from)
            .to_vec();
    kubelet.extend([paths::kubelet_cert(&node.hostname), paths::kubelet_key(&node.hostname)]);
    vec![("containerd", containerd), ("kubelet", kubelet)]
}

/// Why ssh could not be started at all (as opposed to ssh failing on a node).
fn ssh_not_run(e: std::io::Error) -> anyhow::Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => anyhow!("the OpenSSH client `ssh` is not installed"),
        _ => anyhow!("cannot run ssh: {e}"),
    }
}

impl Ssh {
    /// One SSH session: the script (data on its stdin, never on a command line) writes what
    /// differs and reports each file as `copied PATH` or `unchanged PATH`.
    /// `known`: its host key is recorded, so the first contact is over and no new key is taken.
    fn deliver(&self, node: &Node, known: bool, delivery: &Delivery, outcome: &mut Outcome) -> Result<()> {
        let output = duct::cmd("ssh", self.command_line(node, known)?)
            .stdin_bytes(script(delivery))
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .map_err(ssh_not_run)?;
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            if let Some(path) = line.strip_prefix("copied ") {
                outcome.copied.push(path.strip_prefix(&delivery.root).unwrap_or(path).to_string());
            } else if line.starts_with("unchanged ") {
                outcome.unchanged += 1;
            } else if let Some(unit) = line.strip_prefix("restarted ") {
                outcome.restarted.push(unit.to_string());
            }
        }
        if !output.status.success() {
            bail!("{}", self.failure(node, &String::from_utf8_lossy(&output.stderr)));
        }
        Ok(())
    }

    /// Pins the first contact to the fingerprints the node's console showed (`console`): of the
    /// keys it offers (`ssh-keyscan`), those the console lists are recorded for its instance,
    /// and none listed is an error. A node already recorded is left to ssh's own check; one
    /// whose console shows none is left to accept-new, which is said. Whether its key is now
    /// recorded.
    fn pin(&self, node: &Node, route: &Route, console: &[String]) -> Result<bool> {
        let instance_id = node.instance_id.to_string();
        names::plain(&instance_id).map_err(|e| anyhow!("its instance id: {e}"))?;
        let recorded = std::fs::read_to_string(&self.known_hosts)
            .with_context(|| format!("cannot read {}", self.known_hosts.display()))?
            .lines()
            .any(|line| line.split_whitespace().next() == Some(instance_id.as_str()));
        if recorded {
            return Ok(true);
        }
        if console.is_empty() {
            eprintln!(
                "groundup: distribute: {}: its console shows no host key fingerprints, so its key is accepted at first contact (accept-new) and recorded",
                node.hostname
            );
            return Ok(false);
        }
        if route.proxied {
            bail!(
                "its host key cannot be pinned to its console's fingerprints through the proxy {} configures (ssh-keyscan connects directly); record its key in {} under the alias {} first, nothing was sent",
                self.config.display(),
                self.known_hosts.display(),
                node.instance_id
            );
        }
        let timeout = self.connect_timeout.to_string();
        let port = route.port.to_string();
        let scan = duct::cmd("ssh-keyscan", ["-T", &timeout, "-p", &port, "--", &route.host])
            .stdout_capture()
            .stderr_null()
            .unchecked()
            .run()
            .map_err(|e| anyhow!("cannot run ssh-keyscan: {e}"))?;
        let pinned: String = String::from_utf8_lossy(&scan.stdout)
            .lines()
            .filter_map(|line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [_, kind, blob] => Some((kind.to_string(), blob.to_string())),
                _ => None,
            })
            .filter(|(_, blob)| fingerprint(blob).is_some_and(|f| console.contains(&f)))
            .map(|(kind, blob)| format!("{} {kind} {blob}\n", node.instance_id))
            .collect();
        if pinned.is_empty() {
            bail!(
                "none of the host keys it offers is one its console showed at boot ({}): someone may be intercepting the connection; nothing was sent",
                console.join(", ")
            );
        }
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&self.known_hosts)
            .and_then(|mut file| file.write_all(pinned.as_bytes()))
            .with_context(|| format!("cannot record its host key in {}", self.known_hosts.display()))?;
        Ok(true)
    }

    /// ssh's arguments: no configuration but `--ssh-config` (nothing else decides where it
    /// connects), the cluster's key only, no prompts, and the remote shell, through `sudo -n`
    /// unless the user is root (the files are root's).
    fn command_line(&self, node: &Node, known: bool) -> Result<Vec<String>> {
        let option = |name: &str, value: &str| ["-o".to_string(), format!("{name}={value}")];
        let mut args = vec!["-F".into(), self.config.display().to_string(), "-T".into()];
        args.extend(["-i".into(), self.key.display().to_string(), "-l".into(), self.user.clone()]);
        for (name, value) in [
            ("BatchMode", "yes"),
            ("IdentitiesOnly", "yes"),
            ("ConnectTimeout", &self.connect_timeout.to_string()),
            ("ServerAliveInterval", "15"),
            ("ServerAliveCountMax", "3"),
            ("StrictHostKeyChecking", if known { "yes" } else { "accept-new" }),
            ("UserKnownHostsFile", &self.known_hosts.display().to_string()),
            ("GlobalKnownHostsFile", "/dev/null"),
            // Host keys are recorded per instance: a node rebuilt at the same address is a
            // first contact, a changed key on the same instance is an attack or a mistake.
            ("HostKeyAlias", &node.instance_id.to_string()),
            ("LogLevel", "ERROR"),
        ] {
            args.extend(option(name, value));
        }
        let shell = if self.user == "root" { "sh -s" } else { "sudo -n sh -s" };
        args.extend(["--".into(), public_ip(node)?.to_string(), shell.into()]);
        Ok(args)
    }

    /// Where ssh takes `node`'s public IP through the configuration (`ssh -G`).
    fn route(&self, node: &Node) -> Result<Route> {
        let ip = public_ip(node).map_err(|e| anyhow!("{}: {e}", node.hostname))?;
        let output = duct::cmd!("ssh", "-F", &self.config, "-G", "--", ip.to_string())
            .stdin_null()
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .map_err(ssh_not_run)?;
        if !output.status.success() {
            bail!("ssh cannot read {}: {}", self.config.display(), String::from_utf8_lossy(&output.stderr).trim());
        }
        Route::parse(&String::from_utf8_lossy(&output.stdout))
            .ok_or_else(|| anyhow!("`ssh -G` named no host or port for {}", node.hostname))
    }

    /// What went wrong, from ssh's or the script's stderr.
    fn failure(&self, node: &Node, stderr: &str) -> String {
        if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            return format!(
                "its host key is not the one recorded for {} in {}: someone may be intercepting the connection; if the instance was really reinstalled, remove the old key with `ssh-keygen -R {} -f {}`",
                node.instance_id,
                self.known_hosts.display(),
                node.instance_id,
                self.known_hosts.display()
            );
        }
        let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        match lines.as_slice() {
            [] => "ssh failed without a message".into(),
            lines => lines[lines.len().saturating_sub(3)..].join("; "),
        }
    }
}

/// A public key's (base64, as in known_hosts) fingerprint as `ssh-keygen -l` prints it:
/// `SHA256:` and the unpadded base64 of the SHA-256 of the key blob.
fn fingerprint(blob: &str) -> Option<String> {
    let bytes = openssl::base64::decode_block(blob).ok()?;
    let digest = openssl::base64::encode_block(&openssl::sha::sha256(&bytes));
    Some(format!("SHA256:{}", digest.trim_end_matches('=')))
}

/// The remote side: POSIX sh with GNU coreutils (`stat -c`, `sha256sum`, `base64`, `mktemp`,
/// `mv -T`), as on Ubuntu. Directories are created only where missing, with the bundle's mode;
/// an existing one is left as it is. A file whose hash and mode match is left alone.
fn script(delivery: &Delivery) -> String {
    let mut script = String::from(
        r#"umask 077
fail() { echo "groundup: $*" >&2; exit 1; }
dir() { [ -d "$1" ] || mkdir -p -m "$2" -- "$1" || fail "cannot create the directory $1"; }
put() {
  if [ -f "$1" ] && [ ! -h "$1" ] && [ "$(stat -c %a -- "$1")" = "$2" ] && [ "$(sha256sum < "$1")" = "$3  -" ]; then
    cat > /dev/null
    echo "unchanged $1"
    return
  fi
  tmp=$(mktemp -- "${1%/*}/.${1##*/}.groundup-XXXXXX") || fail "cannot create a temporary file beside $1"
  base64 -d > "$tmp" && chmod "$2" -- "$tmp" && mv -fT -- "$tmp" "$1" || { rm -f -- "$tmp"; fail "cannot write $1"; }
  echo "copied $1"
  changed="$changed|$1|"
}
changed=''
restart() {
  unit=$1; shift
  for file in "$@"; do
    case "$changed" in *"|$file|"*)
      systemctl daemon-reload && systemctl restart "$unit" || fail "cannot restart $unit"
      echo "restarted $unit"
      return;;
    esac
  done
}
"#,
    );
    for (dir, mode) in &delivery.dirs {
        script.push_str(&format!("dir {} {mode:o}\n", quote(dir)));
    }
    for file in &delivery.files {
        let hash: String = openssl::sha::sha256(&file.bytes).iter().map(|b| format!("{b:02x}")).collect();
        script.push_str(&format!("put {} {:o} {hash} <<'GROUNDUP_DATA'\n", quote(&file.path), file.mode));
        let encoded = openssl::base64::encode_block(&file.bytes);
        for chunk in encoded.as_bytes().chunks(76) {
            script.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            script.push('\n');
        }
        script.push_str("GROUNDUP_DATA\n");
    }
    for (unit, paths) in &delivery.restarts {
        let paths: Vec<String> = paths.iter().map(|p| quote(p)).collect();
        script.push_str(&format!("restart {unit} {}\n", paths.join(" ")));
    }
    script
}

/// A shell word: single-quoted, with `'` as `'\''`.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Beside the state file: `<state file>.known_hosts`, created 0600 and never through a symbolic
/// link. ssh reads it as a config value (splitting at spaces, expanding `%`), so a path with
/// such characters is refused.
fn known_hosts_file(state: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = std::path::absolute(state::beside(state, ".known_hosts"))?;
    let text = path.display().to_string();
    if text.chars().any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '%' | '#')) {
        bail!("the known_hosts file {text} would be misread by ssh (a space, quote, `\\`, `%` or `#` in its path); move the state file");
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => {
                anyhow!("the known_hosts file {text} is a symbolic link; remove it, nothing was copied")
            }
            _ => anyhow!("cannot open the known_hosts file {text}: {e}"),
        })?;
    Ok(path)
}

fn public_ip(node: &Node) -> Result<IpAddr> {
    node.public_ip.map(IpAddr::V4).ok_or_else(|| anyhow!("it has no public IP"))
}

/// `--dest-dir`: absolute and without `..`, so the files stay below it.
fn dest_dir(text: &str) -> std::result::Result<String, String> {
    if !text.starts_with('/') || text.split('/').any(|part| part == "..") {
        return Err(format!("{text:?} is not an absolute path without `..`"));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// Where ssh connects for a node, after its configuration (`ssh -G`): the host and port, and
/// whether a proxy (ProxyJump, ProxyCommand) is in between.
#[derive(Debug, PartialEq)]
struct Route {
    host: String,
    port: u16,
    proxied: bool,
}

impl Route {
    /// From `ssh -G`'s output: one `keyword value` a line, keywords in lower case.
    fn parse(effective: &str) -> Option<Route> {
        let value = |key: &str| {
            effective.lines().find_map(|line| line.strip_prefix(key).and_then(|rest| rest.strip_prefix(' ')))
        };
        let set = |key: &str| value(key).is_some_and(|v| v != "none");
        Some(Route {
            host: value("hostname")?.to_string(),
            port: value("port")?.parse().ok()?,
            proxied: set("proxyjump") || set("proxycommand"),
        })
    }

    /// `127.0.0.1:2222`, as the logs and the JSON show it.
    fn shown(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, self.port).to_string(),
            Err(_) => format!("{}:{}", self.host, self.port),
        }
    }

    /// A loopback address of this machine, reached directly.
    fn is_local(&self) -> bool {
        !self.proxied && self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_fingerprint_is_the_one_ssh_keygen_prints() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("host_key");
        let made = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "root@ip-172-31-0-20", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen (openssh-client) is installed");
        assert!(made.success());
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let listed =
            std::process::Command::new("ssh-keygen").arg("-l").arg("-f").arg(key.with_extension("pub")).output();
        let listed = String::from_utf8(listed.unwrap().stdout).unwrap();
        let blob = public.split_whitespace().nth(1).unwrap();
        assert_eq!(fingerprint(blob).as_deref(), listed.split_whitespace().nth(1), "{listed}");
        assert_eq!(fingerprint("not base64!"), None);
    }

    #[test]
    fn a_route_is_what_ssh_g_says_and_local_only_on_loopback_without_a_proxy() {
        let effective = "user root\nhostname 127.0.0.1\nport 2222\nproxyusefdpass no\n";
        let route = Route::parse(effective).unwrap();
        assert_eq!(route, Route { host: "127.0.0.1".into(), port: 2222, proxied: false });
        assert!(route.is_local());
        assert_eq!(route.shown(), "127.0.0.1:2222");
        let jumped = Route::parse(&format!("{effective}proxyjump bastion\n")).unwrap();
        assert!(jumped.proxied && !jumped.is_local());
        assert!(!Route::parse("hostname 3.15.20.101\nport 22\nproxycommand none\n").unwrap().is_local());
        assert_eq!(Route::parse("port 22\n"), None);
    }

    #[test]
    fn the_dest_dir_is_absolute_and_stays_below_itself() {
        assert_eq!(dest_dir("/srv/stage/").unwrap(), "/srv/stage");
        assert!(dest_dir("stage").is_err());
        assert!(dest_dir("/srv/../etc").is_err());
    }

    #[test]
    fn the_script_quotes_paths_and_carries_data_only_in_here_documents() {
        let delivery = Delivery {
            root: "/tmp/it's".into(),
            dirs: vec![("/tmp/it's".into(), 0o700)],
            files: vec![Upload { path: "/tmp/it's/key.pem".into(), mode: 0o600, bytes: vec![0xff; 100] }],
            restarts: Vec::new(),
        };
        let script = script(&delivery);
        assert!(script.contains(r"dir '/tmp/it'\''s' 700"), "{script}");
        let hash: String = openssl::sha::sha256(&[0xff; 100]).iter().map(|b| format!("{b:02x}")).collect();
        assert!(script.contains(&format!(r"put '/tmp/it'\''s/key.pem' 600 {hash} <<'GROUNDUP_DATA'")), "{script}");
        assert!(script.lines().all(|line| line.len() <= 200), "a line of data is too long");
        assert!(!script.lines().any(|line| line.starts_with("restart ")), "restarts without --restart");
    }

    /// `--restart` restarts the kubelet when its own files, the CA or containerd's config
    /// changed, and containerd for its config; a manifest alone restarts nothing.
    #[test]
    fn restart_names_each_services_files_and_only_those() {
        let context = Context::from_json(include_str!("../../../contracts/examples/03-infra.json")).unwrap();
        let worker = context.compute.as_ref().unwrap().workers().next().unwrap();
        let restarts = restarts(worker);
        let kubelet = &restarts.iter().find(|(unit, _)| *unit == "kubelet").unwrap().1;
        for file in ["var/lib/kubelet/config.yaml", "etc/systemd/system/kubelet.service", "var/lib/kubernetes/ca.pem"] {
            assert!(kubelet.iter().any(|p| p == file), "{file}: {kubelet:?}");
        }
        assert!(kubelet.contains(&format!("var/lib/kubelet/{}-key.pem", worker.hostname)));
        assert!(!restarts.iter().flat_map(|(_, paths)| paths).any(|p| p.contains("manifests")));
        let on_node = restarts.iter().map(|(unit, paths)| (*unit, paths.iter().map(|p| format!("/{p}")).collect()));
        let delivery =
            Delivery { root: String::new(), dirs: Vec::new(), files: Vec::new(), restarts: on_node.collect() };
        let script = script(&delivery);
        assert!(script.contains("restart containerd '/etc/containerd/config.toml'\n"), "{script}");
    }
}
