//! `groundup init`: the starting context, with the course's values unless a flag says otherwise.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use groundup_contracts::context::check_new_cluster_name;
use groundup_contracts::flows::NetworkPolicy;
use groundup_contracts::kubernetes::{self, KubernetesParams};
use groundup_contracts::params::{
    parse_cidr, HealthCheck, ImageSelector, NodeLayout, NodeSpec, PortRange, SshKeyType, UBUNTU_OWNER,
};
use groundup_contracts::pki::{KeyAlgorithm, Layout, PkiParams};
use groundup_contracts::region::internal_domain;
use groundup_contracts::{steps, Cluster, Context, Params, Target};

use ipnet::Ipv4Net;

const DEFAULT_NAME: &str = "k8s-cluster";

#[derive(Args, Debug, Clone)]
pub struct InitArgs {
    /// Cluster name: the Name tag of every resource and the load balancer's name
    /// [default: k8s-cluster]. Given to `up` or `up --plan` with a state file, it must match it.
    #[arg(long)]
    pub name: Option<String>,
    /// AWS region
    #[arg(long, default_value = "us-east-2")]
    pub region: String,
    /// Use an AWS-compatible endpoint you run yourself (your own moto, LocalStack, ...)
    #[arg(long, value_name = "URL", conflicts_with = "aws")]
    pub endpoint: Option<String>,
    /// Use real AWS, through the standard credential chain (profiles, env, SSO). Costs money.
    #[arg(long)]
    pub aws: bool,
    /// Where the local emulator keeps its virtualenv, log and pid
    #[arg(long, value_name = "DIR", default_value = crate::emulator::DEFAULT_DIR)]
    pub emulator_dir: PathBuf,
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr, default_value = "172.31.0.0/16")]
    pub vpc_cidr: Ipv4Net,
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr, default_value = "172.31.0.0/24")]
    pub subnet_cidr: Ipv4Net,
    /// DHCP domain-name [default: ec2.internal in us-east-1, <region>.compute.internal elsewhere]
    #[arg(long, value_name = "DOMAIN")]
    pub dhcp_domain: Option<String>,
    /// Who may reach SSH and the API port, besides what the cluster itself needs (which it
    /// keeps). The course opens them to 0.0.0.0/0; the default admits only the VPC. Give your
    /// own address (x.x.x.x/32) to reach them from outside.
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    pub admin_cidr: Option<Ipv4Net>,
    /// The course's five security-group rules exactly, instead of the flows Kubernetes needs
    /// (`groundup check` names what they block)
    #[arg(long)]
    pub course_network: bool,
    #[arg(long, default_value_t = 3)]
    pub masters: u32,
    #[arg(long, default_value_t = 3)]
    pub workers: u32,
    /// Private IP of master 0; the others follow [default: subnet + 10]
    #[arg(long, value_name = "IP")]
    pub first_master_ip: Option<Ipv4Addr>,
    /// Private IP of worker 0; the others follow [default: subnet + 20]
    #[arg(long, value_name = "IP")]
    pub first_worker_ip: Option<Ipv4Addr>,
    /// Worker i gets the i-th /24 of this range as its pod range
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr, default_value = "172.20.0.0/16")]
    pub pod_cidr_base: Ipv4Net,
    #[arg(long, default_value = "t2.micro")]
    pub instance_type: String,
    /// Use exactly this AMI instead of looking one up
    #[arg(long, value_name = "AMI", conflicts_with_all = ["image_owner", "image_name_pattern"])]
    pub image_id: Option<String>,
    /// Look up the newest image of this owner [default: Canonical]
    #[arg(long, value_name = "ACCOUNT")]
    pub image_owner: Option<String>,
    /// Look up the newest image whose name matches [default: Ubuntu LTS amd64 server]
    #[arg(long, value_name = "PATTERN")]
    pub image_name_pattern: Option<String>,
    /// Kubernetes service range; its first address goes into the API server certificate
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr, default_value = "10.32.0.0/24")]
    pub service_cidr: Ipv4Net,
    /// The Kubernetes release the nodes run (v1.MINOR.PATCH); fixed once the instances exist
    #[arg(long, value_name = "VERSION", default_value = kubernetes::DEFAULT_VERSION)]
    pub kubernetes_version: String,
    /// The registry of the control plane's, kube-proxy's and the sandbox's images
    #[arg(long, value_name = "HOST", default_value = kubernetes::DEFAULT_REGISTRY)]
    pub image_registry: String,
    /// The cluster's pod range, holding every worker's /24 [default: --pod-cidr-base]
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    pub cluster_cidr: Option<Ipv4Net>,
    /// The cluster DNS service's address, in the service range [default: its tenth address]
    #[arg(long, value_name = "IP")]
    pub cluster_dns: Option<Ipv4Addr>,
    #[arg(long, value_name = "FROM-TO", default_value = "2379-2380")]
    pub etcd_ports: PortRange,
    #[arg(long, value_name = "FROM-TO", default_value = "30000-32767")]
    pub node_ports: PortRange,
    #[arg(long, default_value_t = 6443)]
    pub api_port: u16,
    #[arg(long, default_value_t = 22)]
    pub ssh_port: u16,
    /// Seconds between the load balancer's health checks of the API servers (HTTPS GET /readyz)
    #[arg(long, value_name = "SECONDS", default_value_t = HealthCheck::default().interval_seconds)]
    pub health_check_interval: u16,
    /// Health checks passed in a row before an API server takes traffic
    #[arg(long, value_name = "N", default_value_t = HealthCheck::default().healthy_threshold)]
    pub healthy_threshold: u8,
    /// Health checks failed in a row before an API server is taken out of rotation
    #[arg(long, value_name = "N", default_value_t = HealthCheck::default().unhealthy_threshold)]
    pub unhealthy_threshold: u8,
    /// Also lay the certificates out as kubeadm does, per master (`pki/kubeadm/<host>/etc/kubernetes/pki`),
    /// with kubeadm's admin, super-admin, controller-manager, scheduler and kubelet `.conf` files
    #[arg(long)]
    pub kubeadm_layout: bool,
    /// Where the PKI files go, relative to the state file's directory [default: pki, or
    /// pki-<name> when another cluster has pki]
    #[arg(long, value_name = "DIR")]
    pub pki_dir: Option<String>,
    /// Allow a --pki-dir that is `.`, absolute or leads outside with `..`
    #[arg(long)]
    pub allow_outside_dir: bool,
    /// Key type of the CAs and certificates
    #[arg(long, default_value = "rsa2048", value_parser = key_algorithm())]
    pub pki_key: KeyAlgorithm,
    /// Type of a new SSH key (ED25519, or RSA of 4096 bits); a cluster's existing key is kept
    #[arg(long, default_value = "ed25519", value_parser = ssh_key_type())]
    pub ssh_key: SshKeyType,
    /// The steps to run, in order (a plugin step `foo` is the executable `groundup-foo`)
    #[arg(long, value_name = "STEPS", value_delimiter = ',')]
    pub pipeline: Option<Vec<String>>,
}

fn network_policy(args: &InitArgs) -> NetworkPolicy {
    if args.course_network {
        NetworkPolicy::Course
    } else {
        NetworkPolicy::Kubernetes
    }
}

fn key_algorithm() -> impl clap::builder::TypedValueParser<Value = KeyAlgorithm> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(KeyAlgorithm::NAMES)
        .map(|name| KeyAlgorithm::from_name(&name).expect("one of the possible values"))
}

fn ssh_key_type() -> impl clap::builder::TypedValueParser<Value = SshKeyType> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(SshKeyType::NAMES)
        .map(|name| SshKeyType::from_name(&name).expect("one of the possible values"))
}

pub fn run(args: &InitArgs) -> Result<()> {
    let context = build(args, std::path::Path::new("."))?;
    groundup_runtime::output::print(&context.to_json())?;
    Ok(())
}

/// The starting context of a cluster living in `home`; for the local emulator this starts it
/// to learn its endpoint. A cluster gets directories no other cluster in `home` has.
pub fn build(args: &InitArgs, home: &std::path::Path) -> Result<Context> {
    let mut context = plan(args, Target::Emulator { endpoint: "http://127.0.0.1:0".into() })?;
    let (params, name) = (&mut context.params, &context.cluster.name);
    if args.pki_dir.is_none() {
        params.pki.dir = groundup_runtime::files::free_dir(home, &params.pki.dir, name);
    }
    params.ssh_dir = groundup_runtime::files::free_dir(home, &params.ssh_dir, name);
    params.kubeconfig_dir = groundup_runtime::files::free_dir(home, &params.kubeconfig_dir, name);
    params.nodes_dir = groundup_runtime::files::free_dir(home, &params.nodes_dir, name);
    context.target = match (&args.endpoint, args.aws) {
        (Some(endpoint), _) => Target::Endpoint { endpoint: endpoint.clone() },
        (None, true) => Target::Aws,
        (None, false) => Target::Emulator { endpoint: crate::emulator::ensure_running(&args.emulator_dir, None)? },
    };
    context.validate()?;
    Ok(context)
}

/// Everything but the target's endpoint: pure, so that bad flags fail before anything starts.
fn plan(args: &InitArgs, target: Target) -> Result<Context> {
    let subnet_base = u32::from(args.subnet_cidr.network());
    let layout = NodeLayout {
        masters: args.masters,
        workers: args.workers,
        first_master_ip: args.first_master_ip.unwrap_or(Ipv4Addr::from(subnet_base + 10)),
        first_worker_ip: args.first_worker_ip.unwrap_or(Ipv4Addr::from(subnet_base + 20)),
        pod_cidr_base: args.pod_cidr_base,
        subnet: args.subnet_cidr,
    };
    let (masters, workers) = layout.expand()?;
    warn_if_even(args.masters);
    let defaults = Params::course_defaults(&args.region);
    let image = image(args);
    let params = Params {
        vpc_cidr: args.vpc_cidr,
        subnet_cidr: args.subnet_cidr,
        dhcp_domain_name: args.dhcp_domain.clone().unwrap_or(defaults.dhcp_domain_name),
        admin_cidr: args.admin_cidr.unwrap_or(args.vpc_cidr),
        network: network_policy(args),
        ports: groundup_contracts::params::Ports {
            etcd: args.etcd_ports,
            node_ports: args.node_ports,
            api: args.api_port,
            ssh: args.ssh_port,
        },
        health_check: HealthCheck {
            interval_seconds: args.health_check_interval,
            healthy_threshold: args.healthy_threshold,
            unhealthy_threshold: args.unhealthy_threshold,
        },
        masters,
        workers,
        instance_type: args.instance_type.clone(),
        image,
        service_cidr: args.service_cidr,
        kubernetes: KubernetesParams {
            version: args.kubernetes_version.clone(),
            image_registry: args.image_registry.clone(),
            cluster_cidr: args.cluster_cidr.unwrap_or(args.pod_cidr_base),
            cluster_dns: cluster_dns(args.cluster_dns, args.service_cidr)?,
        },
        ssh_dir: defaults.ssh_dir,
        ssh_key: args.ssh_key,
        kubeconfig_dir: defaults.kubeconfig_dir,
        nodes_dir: defaults.nodes_dir,
        pki: PkiParams {
            dir: args.pki_dir.clone().unwrap_or(defaults.pki.dir),
            allow_outside_dir: args.allow_outside_dir,
            key: args.pki_key,
            layout: if args.kubeadm_layout { Layout::Kubeadm } else { Layout::Cfssl },
            ..PkiParams::default()
        },
    };
    let pipeline = match &args.pipeline {
        Some(steps) if steps.is_empty() => bail!("--pipeline needs at least one step"),
        Some(steps) => steps.clone(),
        None => steps::pipeline().map(String::from).collect(),
    };
    let name = cluster_name(args);
    check_new_cluster_name(&name)?;
    let context = Context::new(Cluster { name, region: args.region.clone() }, target, params, pipeline);
    context.validate()?;
    Ok(context)
}

/// The DNS address asked for, or the service range's tenth.
fn cluster_dns(asked: Option<Ipv4Addr>, service_cidr: Ipv4Net) -> Result<Ipv4Addr> {
    match asked.or_else(|| kubernetes::dns_address(service_cidr)) {
        Some(ip) => Ok(ip),
        None => bail!("--service-cidr {service_cidr} is too small to hold the cluster DNS address; give --cluster-dns"),
    }
}

fn image(args: &InitArgs) -> ImageSelector {
    match (&args.image_id, &args.image_owner, &args.image_name_pattern) {
        (Some(id), _, _) => ImageSelector::Id { id: id.clone() },
        (None, None, None) => ImageSelector::default(),
        (None, owner, pattern) => ImageSelector::Newest {
            owner: owner.clone().unwrap_or_else(|| UBUNTU_OWNER.into()),
            name_pattern: pattern.clone().unwrap_or_else(|| groundup_contracts::params::UBUNTU_NAME_PATTERN.into()),
        },
    }
}

/// etcd runs on every master and needs a majority: 4 masters survive one failure, as 3 do.
fn warn_if_even(masters: u32) {
    if masters > 0 && masters.is_multiple_of(2) {
        eprintln!(
            "groundup: warning: {masters} masters: etcd needs a majority of them, so {masters} survive no more failures than {} do; an odd number is better",
            masters - 1
        );
    }
}

/// The ids of the flags given on the command line, not defaulted: only these change an
/// existing cluster's spec.
pub fn given_flags(matches: &clap::ArgMatches) -> Vec<String> {
    matches
        .ids()
        .filter(|id| matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine))
        .map(|id| id.to_string())
        .collect()
}

/// Bad input, refused before anything changes (exit code 2): a change the cloud cannot make
/// in place, or a step that refused its input.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The spec of an existing cluster with the init flags given on the command line (`given`:
/// their ids) applied, checked by `init`'s own rules. Flags not given keep the cluster's
/// values. Node counts keep the existing nodes and number new ones as `init` would (the last
/// ones go when a count drops). What the cloud cannot change in place is [`Refused`] once the
/// step that built it is done.
pub fn change(current: &Context, args: &InitArgs, given: &[String]) -> Result<Context> {
    let given = |id: &str| given.iter().any(|g| g == id);
    let mut desired = current.clone();
    if given("region") {
        if !given("dhcp_domain") && current.params.dhcp_domain_name == internal_domain(&current.cluster.region) {
            desired.params.dhcp_domain_name = internal_domain(&args.region);
        }
        desired.cluster.region = args.region.clone();
    }
    let params = &mut desired.params;
    if given("vpc_cidr") {
        params.vpc_cidr = args.vpc_cidr;
    }
    if given("subnet_cidr") {
        params.subnet_cidr = args.subnet_cidr;
    }
    if let Some(domain) = args.dhcp_domain.as_ref().filter(|_| given("dhcp_domain")) {
        params.dhcp_domain_name = domain.clone();
    }
    if let Some(admin) = args.admin_cidr.filter(|_| given("admin_cidr")) {
        params.admin_cidr = admin;
    }
    if given("course_network") {
        params.network = network_policy(args);
    }
    if given("instance_type") {
        params.instance_type = args.instance_type.clone();
    }
    if ["image_id", "image_owner", "image_name_pattern"].iter().any(|id| given(id)) {
        params.image = image(args);
    }
    if given("service_cidr") {
        params.service_cidr = args.service_cidr;
    }
    if given("kubernetes_version") {
        params.kubernetes.version = args.kubernetes_version.clone();
    }
    if given("image_registry") {
        params.kubernetes.image_registry = args.image_registry.clone();
    }
    // The pod range and the DNS address follow the ranges they default from unless given.
    if given("cluster_cidr") || given("pod_cidr_base") {
        params.kubernetes.cluster_cidr =
            args.cluster_cidr.filter(|_| given("cluster_cidr")).unwrap_or(args.pod_cidr_base);
    }
    if given("cluster_dns") || given("service_cidr") {
        params.kubernetes.cluster_dns =
            cluster_dns(args.cluster_dns.filter(|_| given("cluster_dns")), params.service_cidr)?;
    }
    let ports = &mut params.ports;
    if given("etcd_ports") {
        ports.etcd = args.etcd_ports;
    }
    if given("node_ports") {
        ports.node_ports = args.node_ports;
    }
    if given("api_port") {
        ports.api = args.api_port;
    }
    if given("ssh_port") {
        ports.ssh = args.ssh_port;
    }
    let health = &mut params.health_check;
    if given("health_check_interval") {
        health.interval_seconds = args.health_check_interval;
    }
    if given("healthy_threshold") {
        health.healthy_threshold = args.healthy_threshold;
    }
    if given("unhealthy_threshold") {
        health.unhealthy_threshold = args.unhealthy_threshold;
    }
    if given("kubeadm_layout") {
        params.pki.layout = Layout::Kubeadm;
    }
    if let Some(dir) = args.pki_dir.as_ref().filter(|_| given("pki_dir")) {
        params.pki.dir = dir.clone();
    }
    if given("allow_outside_dir") {
        params.pki.allow_outside_dir = true;
    }
    if given("ssh_key") {
        params.ssh_key = args.ssh_key;
    }
    if given("pki_key") {
        params.pki.key = args.pki_key;
    }
    if let Some(pipeline) = args.pipeline.as_ref().filter(|_| given("pipeline")) {
        if pipeline.is_empty() {
            bail!("--pipeline needs at least one step");
        }
        desired.pipeline = pipeline.clone();
    }
    // In a new subnet (allowed only before it is built) the nodes follow it, as with `init`.
    let new_subnet = desired.params.subnet_cidr != current.params.subnet_cidr;
    let masters_moved = new_subnet || given("first_master_ip");
    let workers_moved = new_subnet || given("first_worker_ip") || given("pod_cidr_base");
    if masters_moved || workers_moved || given("masters") || given("workers") {
        let params = &mut desired.params;
        let mut layout = NodeLayout::of(&current.params.masters, &current.params.workers, params.subnet_cidr);
        if new_subnet {
            let fresh = NodeLayout::of(&[], &[], params.subnet_cidr);
            (layout.first_master_ip, layout.first_worker_ip) = (fresh.first_master_ip, fresh.first_worker_ip);
        }
        if given("masters") {
            layout.masters = args.masters;
        }
        if given("workers") {
            layout.workers = args.workers;
        }
        if let Some(ip) = args.first_master_ip.filter(|_| given("first_master_ip")) {
            layout.first_master_ip = ip;
        }
        if let Some(ip) = args.first_worker_ip.filter(|_| given("first_worker_ip")) {
            layout.first_worker_ip = ip;
        }
        if given("pod_cidr_base") {
            layout.pod_cidr_base = args.pod_cidr_base;
        }
        let (masters, workers) = layout.expand()?;
        params.masters = resized(&current.params.masters, masters, masters_moved);
        params.workers = resized(&current.params.workers, workers, workers_moved);
    }
    refuse_what_cannot_change(current, &desired)?;
    if desired.params.masters.len() != current.params.masters.len() {
        warn_if_even(desired.params.masters.len() as u32);
    }
    desired.validate()?;
    Ok(desired)
}

/// The nodes of the new layout, where the existing ones keep their addresses and pod ranges
/// (a user may have edited single ones) unless a flag asked to move them (`moved`).
fn resized(existing: &[NodeSpec], laid_out: Vec<NodeSpec>, moved: bool) -> Vec<NodeSpec> {
    if moved {
        return laid_out;
    }
    let kept = existing.iter().take(laid_out.len()).cloned();
    let added = laid_out.iter().skip(existing.len()).cloned();
    kept.chain(added).collect()
}

/// One line per refused field: what it is, what was asked, and the way forward. A field is
/// fixed once the step that builds on it has recorded its section (after `down --yes` the
/// cloud's are free again; the PKI's stay fixed until `--purge`).
fn refuse_what_cannot_change(current: &Context, desired: &Context) -> Result<(), Refused> {
    let (now, new) = (&current.params, &desired.params);
    let (running, asked) = (&now.kubernetes.version, &new.kubernetes.version);
    if current.compute.is_some() && running != asked {
        return Err(Refused(format!(
            "`params.kubernetes.version` cannot change in place: the nodes run {running}, and going to {asked} \
             is an upgrade (control plane first, one minor at a time, then each node drained), which groundup \
             does not do; keep --kubernetes-version {running}, or make another cluster with another --name and \
             --state; nothing was changed"
        )));
    }
    let (vpc, subnet, dhcp) = (current.vpc.is_some(), current.subnet.is_some(), current.dhcp.is_some());
    let (compute, ca, certs) = (current.compute.is_some(), current.ca.is_some(), current.certs.is_some());
    let mut fixed: Vec<FixedField> = vec![
        FixedField::new((vpc, "vpc"), "cluster.region", &current.cluster.region, &desired.cluster.region),
        FixedField::new((vpc, "vpc"), "params.vpc_cidr", now.vpc_cidr, new.vpc_cidr),
        FixedField::new((subnet, "subnet"), "params.subnet_cidr", now.subnet_cidr, new.subnet_cidr),
        FixedField::new((dhcp, "dhcp"), "params.dhcp_domain_name", &now.dhcp_domain_name, &new.dhcp_domain_name),
        FixedField::new((certs, "certs"), "params.service_cidr", now.service_cidr, new.service_cidr),
        FixedField::new((ca, "ca"), "params.pki.key", shown(&now.pki.key), shown(&new.pki.key)),
        FixedField::new((ca, "ca"), "params.pki.dir", &now.pki.dir, &new.pki.dir),
        FixedField::new((compute, "compute"), "params.instance_type", &now.instance_type, &new.instance_type),
        FixedField::new((compute, "compute"), "params.image", shown(&now.image), shown(&new.image)),
    ];
    for (role, before, after) in [("masters", &now.masters, &new.masters), ("workers", &now.workers, &new.workers)] {
        for (i, (node, moved)) in before.iter().zip(after).enumerate() {
            let field = |what: &str| format!("params.{role}[{i}].{what}");
            let pods = |n: &NodeSpec| n.pod_cidr.map_or("none".into(), |c| c.to_string());
            fixed.push(FixedField::new((compute, "compute"), field("private_ip"), node.private_ip, moved.private_ip));
            fixed.push(FixedField::new((compute, "compute"), field("pod_cidr"), pods(node), pods(moved)));
        }
    }
    match fixed.into_iter().find(|f| f.built && f.now != f.asked) {
        None => Ok(()),
        Some(FixedField { step, field, now, asked, .. }) => {
            // `down --yes` forgets the cloud's resources; the files a local step made (the
            // PKI) go only with `--purge`.
            let rebuild = match steps::step(step).is_some_and(|s| s.makes != steps::Makes::Cloud) {
                true => "`groundup down --yes --purge` (it also deletes the files groundup wrote: PKI, keys, kubeconfigs, bundles)",
                false => "`groundup down --yes`",
            };
            Err(Refused(format!(
                "`{field}` cannot change in place (`{step}` has built on it): it is {now}, asked for {asked}; \
                 to rebuild with it, {rebuild}, then `groundup up` with the same flags; or make another \
                 cluster with another --name and --state; nothing was changed"
            )))
        }
    }
}

/// A field of the spec that cannot change once `step` has built on it.
struct FixedField {
    built: bool,
    step: &'static str,
    field: String,
    now: String,
    asked: String,
}

impl FixedField {
    fn new(
        (built, step): (bool, &'static str),
        field: impl Into<String>,
        now: impl ToString,
        asked: impl ToString,
    ) -> Self {
        FixedField { built, step, field: field.into(), now: now.to_string(), asked: asked.to_string() }
    }
}

/// A value as the context spells it.
fn shown(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn cluster_name(args: &InitArgs) -> String {
    args.name.clone().unwrap_or_else(|| DEFAULT_NAME.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        init: InitArgs,
    }

    fn planned(flags: &[&str]) -> Result<Context> {
        let args = Wrapper::try_parse_from(std::iter::once("init").chain(flags.iter().copied()))?.init;
        plan(&args, Target::Aws)
    }

    fn error(flags: &[&str]) -> String {
        format!("{:#}", planned(flags).unwrap_err())
    }

    /// `up <flags>` on `current`: the flags given on the command line, as `main` finds them.
    fn changed(current: &Context, flags: &[&str]) -> Result<Context> {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Wrapper::command().try_get_matches_from(std::iter::once("up").chain(flags.iter().copied()))?;
        let args = Wrapper::from_arg_matches(&matches)?.init;
        change(current, &args, &given_flags(&matches))
    }

    /// The course's cluster, built (the example context after `compute`, and a PKI), its
    /// worker 1 moved by hand to .30.
    fn built() -> Context {
        let infra = include_str!("../../contracts/examples/03-infra.json");
        let mut context = Context::from_json(infra).unwrap();
        context.params.workers[1].private_ip = "172.31.0.30".parse().unwrap();
        context.ca = Some(groundup_contracts::pki::CaSection { authorities: Vec::new() });
        context.certs = Some(groundup_contracts::pki::CertsSection { certificates: Vec::new() });
        context.pipeline.clone().iter().for_each(|s| context.mark_completed(s));
        context
    }

    fn ips(nodes: &[NodeSpec]) -> Vec<String> {
        nodes.iter().map(|n| n.private_ip.to_string()).collect()
    }

    #[test]
    fn scaling_up_keeps_the_nodes_and_numbers_new_ones_as_init_would() {
        let current = built();
        let bigger = changed(&current, &["--workers", "5", "--masters", "5"]).unwrap();
        assert_eq!(bigger.params.workers[..3], current.params.workers[..]);
        assert_eq!(
            ips(&bigger.params.workers),
            ["172.31.0.20", "172.31.0.30", "172.31.0.22", "172.31.0.23", "172.31.0.24"]
        );
        let pods: Vec<String> = bigger.params.workers.iter().map(|w| w.pod_cidr.unwrap().to_string()).collect();
        assert_eq!(pods[3..], ["172.20.3.0/24", "172.20.4.0/24"]);
        assert_eq!(ips(&bigger.params.masters)[3..], ["172.31.0.13", "172.31.0.14"]);
        assert_eq!((bigger.cluster, bigger.params.admin_cidr), (current.cluster, current.params.admin_cidr));
    }

    #[test]
    fn scaling_down_drops_the_last_nodes() {
        let current = built();
        let smaller = changed(&current, &["--workers", "2", "--masters", "1"]).unwrap();
        assert_eq!(smaller.params.workers[..], current.params.workers[..2]);
        assert_eq!(smaller.params.masters[..], current.params.masters[..1]);
        assert!(changed(&current, &["--workers", "0"]).unwrap().params.workers.is_empty());
    }

    /// Flags left at their defaults change nothing: only what the command line gives counts.
    #[test]
    fn flags_not_given_keep_the_clusters_values() {
        let mut current = built();
        current.params.admin_cidr = "198.51.100.0/24".parse().unwrap();
        current.params.workers.pop();
        assert_eq!(changed(&current, &[]).unwrap(), current);
        let admin = changed(&current, &["--admin-cidr", "203.0.113.0/24", "--api-port", "7443"]).unwrap();
        assert_eq!(admin.params.admin_cidr.to_string(), "203.0.113.0/24");
        assert_eq!(admin.params.ports.api, 7443);
        assert_eq!(admin.params.workers, current.params.workers);
    }

    #[test]
    fn what_cannot_change_in_place_is_refused_naming_the_field() {
        let current = built();
        for (flags, field, now, asked) in [
            (&["--vpc-cidr", "10.0.0.0/16"][..], "params.vpc_cidr", "172.31.0.0/16", "10.0.0.0/16"),
            (&["--subnet-cidr", "172.31.1.0/24"], "params.subnet_cidr", "172.31.0.0/24", "172.31.1.0/24"),
            (&["--region", "eu-west-1"], "cluster.region", "us-east-2", "eu-west-1"),
            (
                &["--dhcp-domain", "corp.example"],
                "params.dhcp_domain_name",
                "us-east-2.compute.internal",
                "corp.example",
            ),
            (&["--service-cidr", "10.96.0.0/24"], "params.service_cidr", "10.32.0.0/24", "10.96.0.0/24"),
            (&["--pki-key", "ecdsa-p256"], "params.pki.key", "rsa2048", "ecdsa-p256"),
            (&["--pki-dir", "certs"], "params.pki.dir", "pki", "certs"),
            (&["--instance-type", "m5.large"], "params.instance_type", "t2.micro", "m5.large"),
            (&["--image-id", "ami-123"], "params.image", "newest", "ami-123"),
            (&["--first-worker-ip", "172.31.0.50"], "params.workers[0].private_ip", "172.31.0.20", "172.31.0.50"),
            (
                &["--first-master-ip", "172.31.0.5", "--masters", "4"],
                "params.masters[0].private_ip",
                "172.31.0.10",
                "172.31.0.5",
            ),
            (&["--pod-cidr-base", "10.200.0.0/16"], "params.workers[0].pod_cidr", "172.20.0.0/24", "10.200.0.0/24"),
        ] {
            let error = changed(&current, flags).unwrap_err();
            let refused =
                error.downcast_ref::<Refused>().unwrap_or_else(|| panic!("{flags:?}: not refused: {error:#}"));
            let message = refused.to_string();
            assert!(message.starts_with(&format!("`{field}` cannot change in place")), "{flags:?}: {message}");
            assert!(message.contains(now) && message.contains(asked), "{flags:?}: {message}");
            let purge = matches!(field, "params.pki.key" | "params.pki.dir" | "params.service_cidr");
            let rebuild = if purge { "`groundup down --yes --purge`" } else { "`groundup down --yes`" };
            assert!(message.contains(rebuild) && !message.contains('\n'), "{message}");
        }
    }

    /// A new release on running nodes is an upgrade, which is refused whatever was rebuilt;
    /// before the instances exist the version is free, and a bad one names its field.
    #[test]
    fn a_version_change_on_built_nodes_is_refused_as_an_upgrade() {
        let current = built();
        let refusal = changed(&current, &["--kubernetes-version", "v1.35.0"]).unwrap_err();
        let message = refusal.downcast_ref::<Refused>().expect("refused").to_string();
        assert!(message.starts_with("`params.kubernetes.version` cannot change in place"), "{message}");
        assert!(message.contains("v1.34.2") && message.contains("v1.35.0") && message.contains("upgrade"), "{message}");
        let same = changed(&current, &["--kubernetes-version", kubernetes::DEFAULT_VERSION]).unwrap();
        assert_eq!(same.params.kubernetes, current.params.kubernetes);
        let mut fresh = built();
        fresh.forget_cloud_resources();
        let newer = changed(&fresh, &["--kubernetes-version", "v1.35.0", "--cluster-dns", "10.32.0.53"]).unwrap();
        assert_eq!(
            (newer.params.kubernetes.version.as_str(), newer.params.kubernetes.cluster_dns.to_string()),
            ("v1.35.0", "10.32.0.53".into())
        );
        assert!(error(&["--kubernetes-version", "1.34"]).contains("params.kubernetes.version"));
        assert!(error(&["--cluster-dns", "10.33.0.10"]).contains("params.kubernetes.cluster_dns"));
        assert!(error(&["--cluster-cidr", "172.20.0.0/23"]).contains("params.workers[2].pod_cidr"));
        let custom = planned(&["--pod-cidr-base", "10.200.16.0/20", "--service-cidr", "10.96.0.0/12"]).unwrap();
        assert_eq!(custom.params.kubernetes.cluster_cidr.to_string(), "10.200.16.0/20");
        assert_eq!(custom.params.kubernetes.cluster_dns.to_string(), "10.96.0.10");
    }

    /// Before its step has built on it (a new state file, or after `down --yes`) a field is free.
    #[test]
    fn what_is_not_built_yet_may_change() {
        let mut current = built();
        current.forget_cloud_resources();
        let moved = changed(&current, &["--vpc-cidr", "10.0.0.0/16", "--subnet-cidr", "10.0.1.0/24"]).unwrap();
        assert_eq!(ips(&moved.params.masters)[0], "10.0.1.10");
        assert_eq!(ips(&moved.params.workers), ["10.0.1.20", "10.0.1.21", "10.0.1.22"]);
        let error = changed(&current, &["--pki-key", "ecdsa-p256"]).unwrap_err();
        assert!(error.downcast_ref::<Refused>().is_some(), "the PKI outlives `down`: {error:#}");
    }

    /// The new spec passes `init`'s checks, with `init`'s errors.
    #[test]
    fn a_change_is_validated_as_init_validates() {
        let current = built();
        for flags in [
            &["--workers", "300"][..],
            &["--admin-cidr", "1.2.3.4"],
            &["--admin-cidr", "1.2.3.4/24"],
            &["--etcd-ports", "2380-2379"],
        ] {
            let init_error = error(flags);
            let change_error = format!("{:#}", changed(&current, flags).unwrap_err());
            assert_eq!(change_error, init_error, "{flags:?}");
        }
    }

    /// `up --workers 300` blamed `params.masters`. The error names the count asked for, and
    /// fewer nodes, as it advises, fit.
    #[test]
    fn too_many_workers_name_the_workers_and_fewer_fit() {
        let current = built();
        let error = format!("{:#}", changed(&current, &["--workers", "300"]).unwrap_err());
        assert!(error.contains("params.workers") && error.contains("fewer nodes"), "{error}");
        assert_eq!(changed(&current, &["--workers", "8"]).unwrap().params.workers.len(), 8);
    }

    #[test]
    fn defaults_are_the_course() {
        let context = planned(&[]).unwrap();
        assert_eq!(context.cluster.name, "k8s-cluster");
        assert_eq!(context.params, {
            let mut p = Params::course_defaults("us-east-2");
            p.admin_cidr = "172.31.0.0/16".parse().unwrap();
            p
        });
    }

    #[test]
    fn region_picks_the_dhcp_domain() {
        assert_eq!(planned(&["--region", "us-east-1"]).unwrap().params.dhcp_domain_name, "ec2.internal");
        assert_eq!(planned(&["--region", "eu-west-1"]).unwrap().params.dhcp_domain_name, "eu-west-1.compute.internal");
    }

    #[test]
    fn node_addresses_follow_the_subnet() {
        let context = planned(&["--vpc-cidr", "10.0.0.0/16", "--subnet-cidr", "10.0.1.0/24"]).unwrap();
        assert_eq!(context.params.masters[0].private_ip.to_string(), "10.0.1.10");
        assert_eq!(context.params.workers[2].private_ip.to_string(), "10.0.1.22");
    }

    #[test]
    fn bad_flags_name_the_field() {
        assert!(error(&["--vpc-cidr", "172.31.0.0/33"]).contains("--vpc-cidr"));
        assert!(error(&["--subnet-cidr", "10.9.0.0/24"]).contains("params.subnet_cidr"));
        assert!(error(&["--region", "us-middle-1"]).contains("cluster.region"));
        assert!(error(&["--masters", "200", "--workers", "100"]).contains("params.masters"));
        assert!(error(&["--pod-cidr-base", "172.31.0.0/16"]).contains("pod_cidr"));
        assert!(error(&["--instance-type", "huge"]).contains("params.instance_type"));
        assert!(error(&["--name", "my cluster"]).contains("cluster.name"));
        for name in ["internal-k8s", "Internal-k8s"] {
            let refused = error(&["--name", name]);
            assert!(refused.contains("cluster.name") && refused.contains("begins with `internal-`"), "{refused}");
        }
        assert!(planned(&["--name", "k8s-internal-1"]).is_ok(), "only the beginning is AWS's rule");
        assert!(error(&["--masters", "4000000000"]).contains("do not fit in the subnet 172.31.0.0/24"));
        assert!(error(&["--workers", "300"]).contains("do not fit in the subnet"));
        assert!(error(&["--pipeline", "vpc,dhcp,vpc"]).contains("`vpc` is in the pipeline twice"));
        assert!(error(&["--admin-cidr", "1.2.3.4"]).contains("did you mean 1.2.3.4/32?"));
        assert!(error(&["--admin-cidr", "1.2.3.4/24"])
            .contains("params.admin_cidr`: 1.2.3.4/24 has host bits set; did you mean 1.2.3.0/24?"));
    }
}
