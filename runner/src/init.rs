//! `groundup init`: the starting context, with the course's values unless a flag says otherwise.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use groundup_contracts::params::{parse_cidr, ImageSelector, NodeLayout, PortRange, UBUNTU_OWNER};
use groundup_contracts::pki::{KeyAlgorithm, Layout, PkiParams};
use groundup_contracts::{Cluster, Context, Params, Target, DEFAULT_PIPELINE};

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
    /// Who may reach SSH and the API port. The course opens them to 0.0.0.0/0; the default
    /// admits only the VPC. Give your own address (x.x.x.x/32) to reach them from outside.
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    pub admin_cidr: Option<Ipv4Net>,
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
    #[arg(long, value_name = "FROM-TO", default_value = "2379-2380")]
    pub etcd_ports: PortRange,
    #[arg(long, value_name = "FROM-TO", default_value = "30000-32767")]
    pub node_ports: PortRange,
    #[arg(long, default_value_t = 6443)]
    pub api_port: u16,
    #[arg(long, default_value_t = 22)]
    pub ssh_port: u16,
    /// Also lay the certificates out as kubeadm does, per master (`pki/kubeadm/<host>/etc/kubernetes/pki`)
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
    #[arg(long, value_enum, default_value = "rsa2048")]
    pub pki_key: KeyAlgorithm,
    /// The steps to run, in order (a plugin step `foo` is the executable `groundup-foo`)
    #[arg(long, value_name = "STEPS", value_delimiter = ',')]
    pub pipeline: Option<Vec<String>>,
}

pub fn run(args: &InitArgs) -> Result<()> {
    let context = build(args, std::path::Path::new("."))?;
    print!("{}", context.to_json());
    Ok(())
}

/// The starting context of a cluster living in `home`; for the local emulator this starts it
/// to learn its endpoint. A cluster gets directories no other cluster in `home` has.
pub fn build(args: &InitArgs, home: &std::path::Path) -> Result<Context> {
    let mut context = plan(args, Target::Emulator { endpoint: "http://127.0.0.1:0".into() })?;
    let (params, name) = (&mut context.params, &context.cluster.name);
    if args.pki_dir.is_none() {
        params.pki.dir = groundup_contracts::files::free_dir(home, &params.pki.dir, name);
    }
    params.ssh_dir = groundup_contracts::files::free_dir(home, &params.ssh_dir, name);
    params.kubeconfig_dir = groundup_contracts::files::free_dir(home, &params.kubeconfig_dir, name);
    params.nodes_dir = groundup_contracts::files::free_dir(home, &params.nodes_dir, name);
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
    let defaults = Params::course_defaults(&args.region);
    let image = match (&args.image_id, &args.image_owner, &args.image_name_pattern) {
        (Some(id), _, _) => ImageSelector::Id { id: id.clone() },
        (None, None, None) => ImageSelector::default(),
        (None, owner, pattern) => ImageSelector::Newest {
            owner: owner.clone().unwrap_or_else(|| UBUNTU_OWNER.into()),
            name_pattern: pattern.clone().unwrap_or_else(|| groundup_contracts::params::UBUNTU_NAME_PATTERN.into()),
        },
    };
    let params = Params {
        vpc_cidr: args.vpc_cidr,
        subnet_cidr: args.subnet_cidr,
        dhcp_domain_name: args.dhcp_domain.clone().unwrap_or(defaults.dhcp_domain_name),
        admin_cidr: args.admin_cidr.unwrap_or(args.vpc_cidr),
        ports: groundup_contracts::params::Ports {
            etcd: args.etcd_ports,
            node_ports: args.node_ports,
            api: args.api_port,
            ssh: args.ssh_port,
        },
        masters,
        workers,
        instance_type: args.instance_type.clone(),
        image,
        service_cidr: args.service_cidr,
        ssh_dir: defaults.ssh_dir,
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
        None => DEFAULT_PIPELINE.iter().map(|s| s.to_string()).collect(),
    };
    let context =
        Context::new(Cluster { name: cluster_name(args), region: args.region.clone() }, target, params, pipeline);
    context.validate()?;
    Ok(context)
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
        assert!(error(&["--masters", "4000000000"]).contains("do not fit in the subnet 172.31.0.0/24"));
        assert!(error(&["--workers", "300"]).contains("do not fit in the subnet"));
        assert!(error(&["--pipeline", "vpc,dhcp,vpc"]).contains("`vpc` is in the pipeline twice"));
        assert!(error(&["--admin-cidr", "1.2.3.4"]).contains("did you mean 1.2.3.4/32?"));
    }
}
