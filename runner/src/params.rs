//! The table of `init`'s flags, one row per flag: what it sets in the context, what it takes on
//! the command line, its help, whether `--help` shows the course's value as its default, and
//! the step after which what it sets cannot change in place. `init`, `up`'s change of a
//! cluster's spec, the plan and the up-front refusals all read it (see `init.rs`); nothing
//! else names a flag. Adding a parameter is one row here (see ARCHITECTURE.md).
//!
//! As in ripgrep's `flags/defs.rs`, a flag given on the command line updates a draft that
//! starts as the course's cluster (`init`) or the state file's (`up`); flags not given leave
//! it as it is. Values whose default derives from another one follow it in `Draft::finish`.

use std::path::PathBuf;

use groundup_contracts::flows::NetworkPolicy;
use groundup_contracts::kubernetes;
use groundup_contracts::params::{
    parse_cidr, ImageSelector, NodeLayout, SshKeyType, UBUNTU_NAME_PATTERN, UBUNTU_OWNER,
};
use groundup_contracts::pki::{KeyAlgorithm, Layout};
use groundup_contracts::region::internal_domain;
use groundup_contracts::steps::{self, Section};
use groundup_contracts::{Cluster, Context, ContextError, Params, Target};

/// One flag of `init`, which `up` also takes to change an existing cluster's spec.
#[derive(Debug)]
pub struct Param {
    /// The long flag, without `--`.
    pub flag: &'static str,
    pub value: Value,
    pub help: &'static str,
    /// What the flag sets, as errors and the docs name it; `[]` stands for each node.
    pub field: &'static str,
    /// `--help` shows the course's value (`now` of the course's cluster) as the default; the
    /// other rows describe their default in `help`, or have none.
    pub shows_default: bool,
    /// Once this step has recorded its section, what the flag sets cannot change in place:
    /// `up` refuses the change before anything runs.
    pub fixed_after: Option<Section>,
    /// What to do instead, where rebuilding is not the way forward once it is fixed (another
    /// release is an upgrade, not a rebuild): replaces the refusal's rebuild advice.
    pub instead: Option<&'static str>,
    /// The other flags this one excludes.
    pub conflicts_with: &'static [&'static str],
    /// What the flag sets, as it spells it.
    pub now: fn(&Draft) -> String,
    /// What is fixed after `fixed_after`, where it is not `now`: each node's address or pod
    /// range, which the layout flags set.
    pub fixed: Option<fn(&Draft) -> Vec<String>>,
    /// Sets it from the flag's value.
    pub set: fn(&mut Draft, &str) -> Result<(), String>,
}

/// What a flag takes on the command line.
#[derive(Debug)]
pub enum Value {
    /// Nothing: given, it is on.
    Switch,
    /// One value, `<NAME>` in the help.
    One(&'static str),
    /// A path, which shells complete as one.
    Path(&'static str),
    /// One of these names.
    OneOf(&'static str, &'static [&'static str]),
    /// Values separated by commas.
    List(&'static str),
}

/// A cluster's context as the flags change it, with the node layout they set before it is
/// laid out into nodes, and where the cluster runs.
#[derive(Debug, Clone)]
pub struct Draft {
    pub context: Context,
    pub layout: NodeLayout,
    pub place: Place,
}

/// Where the cluster is and which it is: not part of its spec.
#[derive(Debug, Clone, Default)]
pub struct Place {
    pub name: Option<String>,
    pub endpoint: Option<String>,
    pub aws: bool,
    pub emulator_dir: PathBuf,
}

const DEFAULT_NAME: &str = "k8s-cluster";
const DEFAULT_REGION: &str = "us-east-2";

impl Draft {
    /// `context` before any flag: its nodes' layout is the one they follow.
    pub fn of(context: &Context) -> Draft {
        let params = &context.params;
        Draft {
            context: context.clone(),
            layout: NodeLayout::of(&params.masters, &params.workers, params.subnet_cidr),
            place: Place { emulator_dir: crate::emulator::DEFAULT_DIR.into(), ..Place::default() },
        }
    }

    /// The course's cluster, which `init` starts from; its target is settled by `init::build`.
    pub fn course() -> Draft {
        let cluster = Cluster { name: DEFAULT_NAME.into(), region: DEFAULT_REGION.into() };
        let target = Target::Emulator { endpoint: "http://127.0.0.1:0".into() };
        let pipeline = steps::pipeline().map(String::from).collect();
        Draft::of(&Context::new(cluster, target, Params::course_defaults(DEFAULT_REGION), pipeline))
    }

    /// After the flags given were set on a draft of `start`: the name, values whose default
    /// derives from another that changed (unless set apart from it), and the nodes laid out
    /// again if their layout changed. Existing nodes keep their addresses and pod ranges (a
    /// user may have edited single ones) unless a flag or a new subnet moved them; more nodes
    /// are numbered after them as `init` would, fewer drop the last ones.
    pub fn finish(mut self, start: &Context) -> Result<Draft, ContextError> {
        if let Some(name) = &self.place.name {
            self.context.cluster.name = name.clone();
        }
        let (was, params) = (&start.params, &mut self.context.params);
        let old_region = &start.cluster.region;
        if self.context.cluster.region != *old_region
            && params.dhcp_domain_name == was.dhcp_domain_name
            && was.dhcp_domain_name == internal_domain(old_region)
        {
            params.dhcp_domain_name = internal_domain(&self.context.cluster.region);
        }
        if params.vpc_cidr != was.vpc_cidr && params.admin_cidr == was.admin_cidr && was.admin_cidr == was.vpc_cidr {
            params.admin_cidr = params.vpc_cidr;
        }
        // The pod range and the DNS address follow the ranges they default from unless set apart.
        let (k8s, was_k8s) = (&mut params.kubernetes, &was.kubernetes);
        let was_pods = NodeLayout::of(&was.masters, &was.workers, was.subnet_cidr).pod_cidr_base;
        if self.layout.pod_cidr_base != was_pods
            && k8s.cluster_cidr == was_k8s.cluster_cidr
            && was_k8s.cluster_cidr == was_pods
        {
            k8s.cluster_cidr = self.layout.pod_cidr_base;
        }
        if params.service_cidr != was.service_cidr
            && k8s.cluster_dns == was_k8s.cluster_dns
            && Some(was_k8s.cluster_dns) == kubernetes::dns_address(was.service_cidr)
        {
            k8s.cluster_dns = kubernetes::dns_address(params.service_cidr).ok_or_else(|| {
                ContextError::field(
                    "params.kubernetes.cluster_dns",
                    format!(
                        "the service range {} is too small to hold the cluster DNS address; give --cluster-dns",
                        params.service_cidr
                    ),
                )
            })?;
        }
        let before = NodeLayout::of(&was.masters, &was.workers, was.subnet_cidr);
        let layout = &mut self.layout;
        let new_subnet = params.subnet_cidr != was.subnet_cidr;
        if new_subnet {
            // In a new subnet (allowed only before it is built) the nodes follow it.
            let fresh = NodeLayout::of(&[], &[], params.subnet_cidr);
            if layout.first_master_ip == before.first_master_ip {
                layout.first_master_ip = fresh.first_master_ip;
            }
            if layout.first_worker_ip == before.first_worker_ip {
                layout.first_worker_ip = fresh.first_worker_ip;
            }
            layout.subnet = params.subnet_cidr;
        }
        if *layout != before {
            let masters_moved = layout.first_master_ip != before.first_master_ip;
            let workers_moved =
                layout.first_worker_ip != before.first_worker_ip || layout.pod_cidr_base != before.pod_cidr_base;
            let (masters, workers) = layout.expand()?;
            params.masters = resized(&was.masters, masters, masters_moved);
            params.workers = resized(&was.workers, workers, workers_moved);
        }
        Ok(self)
    }
}

/// The nodes of the new layout: the existing ones as they are unless `moved`, then the new ones.
fn resized(
    existing: &[groundup_contracts::params::NodeSpec],
    laid_out: Vec<groundup_contracts::params::NodeSpec>,
    moved: bool,
) -> Vec<groundup_contracts::params::NodeSpec> {
    if moved {
        return laid_out;
    }
    let kept = existing.iter().take(laid_out.len()).cloned();
    let added = laid_out.iter().skip(existing.len()).cloned();
    kept.chain(added).collect()
}

/// The defaults of a row: no default shown, fixed never, conflicting with nothing, no value.
const ROW: Param = Param {
    flag: "",
    value: Value::Switch,
    help: "",
    field: "",
    shows_default: false,
    fixed_after: None,
    instead: None,
    conflicts_with: &[],
    now: |_| String::new(),
    fixed: None,
    set: |_, _| Ok(()),
};

/// Every flag of `init`, in the order `--help` lists them.
pub const PARAMS: &[Param] = {
    use Section::*;
    use Value::*;
    &[
        Param {
            flag: "name",
            value: One("NAME"),
            help: "Cluster name: the Name tag of every resource and the load balancer's name [default: k8s-cluster]. Given to `up` or `up --plan` with a state file, it must match it",
            field: "cluster.name",
            now: |d| d.context.cluster.name.to_string(),
            set: |d, v| assign(&mut d.place.name, Some(v.into())),
            ..ROW
        },
        Param {
            flag: "region",
            value: One("REGION"),
            help: "AWS region",
            field: "cluster.region",
            shows_default: true,
            fixed_after: Some(Vpc),
            now: |d| d.context.cluster.region.to_string(),
            set: |d, v| assign(&mut d.context.cluster.region, v.into()),
            ..ROW
        },
        Param {
            flag: "endpoint",
            value: One("URL"),
            help: "Use an AWS-compatible endpoint you run yourself (your own moto, LocalStack, ...)",
            field: "target",
            conflicts_with: &["aws"],
            set: |d, v| assign(&mut d.place.endpoint, Some(v.into())),
            ..ROW
        },
        Param {
            flag: "aws",
            help: "Use real AWS, through the standard credential chain (profiles, env, SSO). Costs money",
            field: "target",
            set: |d, _| assign(&mut d.place.aws, true),
            ..ROW
        },
        Param {
            flag: "emulator-dir",
            value: Path("DIR"),
            help: "Where the local emulator keeps its virtualenv, log and pid",
            field: "(the emulator's, not the cluster's)",
            shows_default: true,
            now: |d| d.place.emulator_dir.display().to_string(),
            set: |d, v| assign(&mut d.place.emulator_dir, v.into()),
            ..ROW
        },
        Param {
            flag: "vpc-cidr",
            value: One("CIDR"),
            field: "params.vpc_cidr",
            shows_default: true,
            fixed_after: Some(Vpc),
            now: |d| d.context.params.vpc_cidr.to_string(),
            set: |d, v| put(&mut d.context.params.vpc_cidr, parse_cidr(v)),
            ..ROW
        },
        Param {
            flag: "subnet-cidr",
            value: One("CIDR"),
            field: "params.subnet_cidr",
            shows_default: true,
            fixed_after: Some(Subnet),
            now: |d| d.context.params.subnet_cidr.to_string(),
            set: |d, v| put(&mut d.context.params.subnet_cidr, parse_cidr(v)),
            ..ROW
        },
        Param {
            flag: "dhcp-domain",
            value: One("DOMAIN"),
            help: "DHCP domain-name [default: ec2.internal in us-east-1, <region>.compute.internal elsewhere]",
            field: "params.dhcp_domain_name",
            fixed_after: Some(Dhcp),
            now: |d| d.context.params.dhcp_domain_name.to_string(),
            set: |d, v| assign(&mut d.context.params.dhcp_domain_name, v.into()),
            ..ROW
        },
        Param {
            flag: "admin-cidr",
            value: One("CIDR"),
            help: "Who may reach SSH and the API port, besides what the cluster itself needs (which it keeps). The course opens them to 0.0.0.0/0; the default admits only the VPC. Give your own address (x.x.x.x/32) to reach them from outside",
            field: "params.admin_cidr",
            set: |d, v| put(&mut d.context.params.admin_cidr, parse_cidr(v)),
            ..ROW
        },
        Param {
            flag: "course-network",
            help: "The course's five security-group rules exactly, instead of the flows Kubernetes needs (`groundup check` names what they block)",
            field: "params.network",
            set: |d, _| assign(&mut d.context.params.network, NetworkPolicy::Course),
            ..ROW
        },
        Param {
            flag: "masters",
            value: One("MASTERS"),
            field: "params.masters",
            shows_default: true,
            now: |d| d.layout.masters.to_string(),
            set: |d, v| put(&mut d.layout.masters, parsed(v)),
            ..ROW
        },
        Param {
            flag: "workers",
            value: One("WORKERS"),
            field: "params.workers",
            shows_default: true,
            now: |d| d.layout.workers.to_string(),
            set: |d, v| put(&mut d.layout.workers, parsed(v)),
            ..ROW
        },
        Param {
            flag: "first-master-ip",
            value: One("IP"),
            help: "Private IP of master 0; the others follow [default: subnet + 10]",
            field: "params.masters[].private_ip",
            fixed_after: Some(Compute),
            now: |d| d.layout.first_master_ip.to_string(),
            fixed: Some(|d| d.context.params.masters.iter().map(|n| n.private_ip.to_string()).collect()),
            set: |d, v| put(&mut d.layout.first_master_ip, parsed(v)),
            ..ROW
        },
        Param {
            flag: "first-worker-ip",
            value: One("IP"),
            help: "Private IP of worker 0; the others follow [default: subnet + 20]",
            field: "params.workers[].private_ip",
            fixed_after: Some(Compute),
            now: |d| d.layout.first_worker_ip.to_string(),
            fixed: Some(|d| d.context.params.workers.iter().map(|n| n.private_ip.to_string()).collect()),
            set: |d, v| put(&mut d.layout.first_worker_ip, parsed(v)),
            ..ROW
        },
        Param {
            flag: "pod-cidr-base",
            value: One("CIDR"),
            help: "Worker i gets the i-th /24 of this range as its pod range",
            field: "params.workers[].pod_cidr",
            shows_default: true,
            fixed_after: Some(Compute),
            now: |d| d.layout.pod_cidr_base.to_string(),
            fixed: Some(|d| d.context.params.workers.iter().map(|n| n.pod_cidr.map_or("none".into(), |c| c.to_string())).collect()),
            set: |d, v| put(&mut d.layout.pod_cidr_base, parse_cidr(v)),
            ..ROW
        },
        Param {
            flag: "instance-type",
            value: One("INSTANCE_TYPE"),
            field: "params.instance_type",
            shows_default: true,
            fixed_after: Some(Compute),
            now: |d| d.context.params.instance_type.to_string(),
            set: |d, v| assign(&mut d.context.params.instance_type, v.into()),
            ..ROW
        },
        Param {
            flag: "image-id",
            value: One("AMI"),
            help: "Use exactly this AMI instead of looking one up",
            field: "params.image",
            fixed_after: Some(Compute),
            conflicts_with: &["image_owner", "image_name_pattern"],
            now: |d| match &d.context.params.image {
                ImageSelector::Id { id } => id.clone(),
                ImageSelector::Newest { .. } => String::new(),
            },
            fixed: Some(image),
            set: |d, v| assign(&mut d.context.params.image, ImageSelector::Id { id: v.into() }),
            ..ROW
        },
        Param {
            flag: "image-owner",
            value: One("ACCOUNT"),
            help: "Look up the newest image of this owner [default: Canonical]",
            field: "params.image",
            fixed_after: Some(Compute),
            now: |d| match &d.context.params.image {
                ImageSelector::Newest { owner, .. } => owner.clone(),
                ImageSelector::Id { .. } => String::new(),
            },
            fixed: Some(image),
            set: |d, v| {
                let name_pattern = match &d.context.params.image {
                    ImageSelector::Newest { name_pattern, .. } => name_pattern.clone(),
                    ImageSelector::Id { .. } => UBUNTU_NAME_PATTERN.into(),
                };
                assign(&mut d.context.params.image, ImageSelector::Newest { owner: v.into(), name_pattern })
            },
            ..ROW
        },
        Param {
            flag: "image-name-pattern",
            value: One("PATTERN"),
            help: "Look up the newest image whose name matches [default: Ubuntu LTS amd64 server]",
            field: "params.image",
            fixed_after: Some(Compute),
            now: |d| match &d.context.params.image {
                ImageSelector::Newest { name_pattern, .. } => name_pattern.clone(),
                ImageSelector::Id { .. } => String::new(),
            },
            fixed: Some(image),
            set: |d, v| {
                let owner = match &d.context.params.image {
                    ImageSelector::Newest { owner, .. } => owner.clone(),
                    ImageSelector::Id { .. } => UBUNTU_OWNER.into(),
                };
                assign(&mut d.context.params.image, ImageSelector::Newest { owner, name_pattern: v.into() })
            },
            ..ROW
        },
        Param {
            flag: "service-cidr",
            value: One("CIDR"),
            help: "Kubernetes service range; its first address goes into the API server certificate",
            field: "params.service_cidr",
            shows_default: true,
            fixed_after: Some(Certs),
            now: |d| d.context.params.service_cidr.to_string(),
            set: |d, v| put(&mut d.context.params.service_cidr, parse_cidr(v)),
            ..ROW
        },
        Param {
            flag: "kubernetes-version",
            value: One("VERSION"),
            help: "The Kubernetes release the nodes run (v1.MINOR.PATCH); fixed once the instances exist",
            field: "params.kubernetes.version",
            shows_default: true,
            fixed_after: Some(Compute),
            instead: Some("another release on running nodes is an upgrade (control plane first, one minor at a time, then each node drained), which groundup does not do: keep --kubernetes-version as it is"),
            now: |d| d.context.params.kubernetes.version.clone(),
            set: |d, v| assign(&mut d.context.params.kubernetes.version, v.into()),
            ..ROW
        },
        Param {
            flag: "image-registry",
            value: One("HOST"),
            help: "The registry of the control plane's, kube-proxy's and the sandbox's images",
            field: "params.kubernetes.image_registry",
            shows_default: true,
            now: |d| d.context.params.kubernetes.image_registry.clone(),
            set: |d, v| assign(&mut d.context.params.kubernetes.image_registry, v.into()),
            ..ROW
        },
        Param {
            flag: "cluster-cidr",
            value: One("CIDR"),
            help: "The cluster's pod range, holding every worker's /24 [default: --pod-cidr-base]",
            field: "params.kubernetes.cluster_cidr",
            now: |d| d.context.params.kubernetes.cluster_cidr.to_string(),
            set: |d, v| put(&mut d.context.params.kubernetes.cluster_cidr, parse_cidr(v)),
            ..ROW
        },
        Param {
            flag: "cluster-dns",
            value: One("IP"),
            help: "The cluster DNS service's address, in the service range [default: its tenth address]",
            field: "params.kubernetes.cluster_dns",
            now: |d| d.context.params.kubernetes.cluster_dns.to_string(),
            set: |d, v| put(&mut d.context.params.kubernetes.cluster_dns, parsed(v)),
            ..ROW
        },
        Param {
            flag: "etcd-ports",
            value: One("FROM-TO"),
            field: "params.ports.etcd",
            shows_default: true,
            now: |d| d.context.params.ports.etcd.to_string(),
            set: |d, v| put(&mut d.context.params.ports.etcd, v.parse()),
            ..ROW
        },
        Param {
            flag: "node-ports",
            value: One("FROM-TO"),
            field: "params.ports.node_ports",
            shows_default: true,
            now: |d| d.context.params.ports.node_ports.to_string(),
            set: |d, v| put(&mut d.context.params.ports.node_ports, v.parse()),
            ..ROW
        },
        Param {
            flag: "api-port",
            value: One("API_PORT"),
            field: "params.ports.api",
            shows_default: true,
            now: |d| d.context.params.ports.api.to_string(),
            set: |d, v| put(&mut d.context.params.ports.api, parsed(v)),
            ..ROW
        },
        Param {
            flag: "ssh-port",
            value: One("SSH_PORT"),
            field: "params.ports.ssh",
            shows_default: true,
            now: |d| d.context.params.ports.ssh.to_string(),
            set: |d, v| put(&mut d.context.params.ports.ssh, parsed(v)),
            ..ROW
        },
        Param {
            flag: "health-check-interval",
            value: One("SECONDS"),
            help: "Seconds between the load balancer's health checks of the API servers (HTTPS GET /readyz)",
            field: "params.health_check.interval_seconds",
            shows_default: true,
            now: |d| d.context.params.health_check.interval_seconds.to_string(),
            set: |d, v| put(&mut d.context.params.health_check.interval_seconds, parsed(v)),
            ..ROW
        },
        Param {
            flag: "healthy-threshold",
            value: One("N"),
            help: "Health checks passed in a row before an API server takes traffic",
            field: "params.health_check.healthy_threshold",
            shows_default: true,
            now: |d| d.context.params.health_check.healthy_threshold.to_string(),
            set: |d, v| put(&mut d.context.params.health_check.healthy_threshold, parsed(v)),
            ..ROW
        },
        Param {
            flag: "unhealthy-threshold",
            value: One("N"),
            help: "Health checks failed in a row before an API server is taken out of rotation",
            field: "params.health_check.unhealthy_threshold",
            shows_default: true,
            now: |d| d.context.params.health_check.unhealthy_threshold.to_string(),
            set: |d, v| put(&mut d.context.params.health_check.unhealthy_threshold, parsed(v)),
            ..ROW
        },
        Param {
            flag: "kubeadm-layout",
            help: "Also lay the certificates out as kubeadm does, per master (`pki/kubeadm/<host>/etc/kubernetes/pki`), with kubeadm's admin, super-admin, controller-manager, scheduler and kubelet `.conf` files",
            field: "params.pki.layout",
            set: |d, _| assign(&mut d.context.params.pki.layout, Layout::Kubeadm),
            ..ROW
        },
        Param {
            flag: "pki-dir",
            value: One("DIR"),
            help: "Where the PKI files go, relative to the state file's directory [default: pki, or pki-<name> when another cluster has pki]",
            field: "params.pki.dir",
            fixed_after: Some(Ca),
            now: |d| d.context.params.pki.dir.to_string(),
            set: |d, v| assign(&mut d.context.params.pki.dir, v.into()),
            ..ROW
        },
        Param {
            flag: "allow-outside-dir",
            help: "Allow a --pki-dir that is `.`, absolute or leads outside with `..`",
            field: "params.pki.allow_outside_dir",
            set: |d, _| assign(&mut d.context.params.pki.allow_outside_dir, true),
            ..ROW
        },
        Param {
            flag: "pki-key",
            value: OneOf("PKI_KEY", &KeyAlgorithm::NAMES),
            help: "Key type of the CAs and certificates",
            field: "params.pki.key",
            shows_default: true,
            fixed_after: Some(Ca),
            now: |d| spelled(&d.context.params.pki.key),
            set: |d, v| put(&mut d.context.params.pki.key, KeyAlgorithm::from_name(v).ok_or_else(|| unknown(v))),
            ..ROW
        },
        Param {
            flag: "ssh-key",
            value: OneOf("SSH_KEY", &SshKeyType::NAMES),
            help: "Type of a new SSH key (ED25519, or RSA of 4096 bits); a cluster's existing key is kept",
            field: "params.ssh_key",
            shows_default: true,
            now: |d| spelled(&d.context.params.ssh_key),
            set: |d, v| put(&mut d.context.params.ssh_key, SshKeyType::from_name(v).ok_or_else(|| unknown(v))),
            ..ROW
        },
        Param {
            flag: "pipeline",
            value: List("STEPS"),
            help: "The steps to run, in order (a plugin step `foo` is the executable `groundup-foo`)",
            field: "pipeline",
            set: |d, v| match v {
                "" => Err("--pipeline needs at least one step".into()),
                steps => assign(&mut d.context.pipeline, steps.split(',').map(String::from).collect()),
            },
            ..ROW
        },
    ]
};

/// The image selector as the context spells it: what cannot change once `compute` is done.
fn image(draft: &Draft) -> Vec<String> {
    vec![spelled(&draft.context.params.image)]
}

/// Sets `slot` to a parsed value, or passes on why the value does not parse.
fn put<T, E: ToString>(slot: &mut T, value: Result<T, E>) -> Result<(), String> {
    *slot = value.map_err(|e| e.to_string())?;
    Ok(())
}

fn assign<T>(slot: &mut T, value: T) -> Result<(), String> {
    *slot = value;
    Ok(())
}

fn parsed<T: std::str::FromStr<Err: ToString>>(text: &str) -> Result<T, String> {
    text.parse().map_err(|e: T::Err| e.to_string())
}

/// A value as the context spells it: a name bare, anything else as its JSON.
fn spelled(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// Not reached from the command line, where clap offers only the table's names.
fn unknown(name: &str) -> String {
    format!("`{name}` is not one of the names this flag takes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Params' fields that no flag sets: `init` chooses the directories beside the state file
    /// (`pki-<name>` when another cluster has `pki`), and the PKI's lifetimes, subject and
    /// extra certificates are edited in the context (`groundup-certs --csr` adds the latter).
    const NOT_FLAGS: &[&str] = &[
        "params.ssh_dir",
        "params.kubeconfig_dir",
        "params.nodes_dir",
        "params.pki.ca_days",
        "params.pki.leaf_days",
        "params.pki.renew_within_days",
        "params.pki.subject",
        "params.pki.custom",
    ];

    /// The fields of `value` under `path`, down to the ones a row or `NOT_FLAGS` names.
    fn fields(path: &str, value: &serde_json::Value, named: &[String], out: &mut Vec<String>) {
        match value.as_object() {
            Some(object) if !named.iter().any(|n| n == path) => {
                object.iter().for_each(|(key, value)| fields(&format!("{path}.{key}"), value, named, out))
            }
            _ => out.push(path.to_string()),
        }
    }

    /// A field added to `Params` needs a row here, or a place in `NOT_FLAGS` saying why not;
    /// and every row names a field that exists.
    #[test]
    fn every_field_of_the_params_has_a_row() {
        let mut named: Vec<String> =
            PARAMS.iter().map(|p| p.field.split('[').next().unwrap_or_default().into()).collect();
        named.extend(NOT_FLAGS.iter().map(|f| f.to_string()));
        let mut course = Draft::course().context.params;
        course.pki.allow_outside_dir = true;
        let mut found = Vec::new();
        fields("params", &serde_json::to_value(&course).unwrap(), &named, &mut found);
        let missing: Vec<&String> = found.iter().filter(|f| !named.contains(f)).collect();
        assert!(missing.is_empty(), "fields without a row in PARAMS (or a reason in NOT_FLAGS): {missing:?}");
        let stale: Vec<&String> =
            named[..PARAMS.len()].iter().filter(|n| n.starts_with("params.") && !found.contains(n)).collect();
        assert!(stale.is_empty(), "rows naming no field of Params: {stale:?}");
    }

    /// `now` reads what `set` writes: the refusals and the defaults `--help` shows rely on it.
    #[test]
    fn each_row_sets_what_it_reads() {
        for param in PARAMS.iter().filter(|p| !matches!(p.value, Value::Switch)) {
            let course = Draft::course();
            let now = (param.now)(&course);
            if now.is_empty() {
                continue;
            }
            let mut draft = course.clone();
            (param.set)(&mut draft, &now).unwrap_or_else(|e| panic!("--{} {now}: {e}", param.flag));
            let after = draft.finish(&course.context).unwrap();
            assert_eq!(after.context, course.context, "--{} {now} changed the course's cluster", param.flag);
            assert_eq!((param.now)(&after), now, "--{}", param.flag);
        }
    }

    /// A value is checked by the row's own `set` when clap reads it, with the row's message.
    #[test]
    fn bad_values_are_refused_by_their_row() {
        for (flag, value, message) in [
            ("vpc-cidr", "172.31.0.0/33", "is not a CIDR range"),
            ("masters", "three", "invalid digit"),
            ("first-worker-ip", "172.31.0", "invalid IPv4 address"),
            ("etcd-ports", "22-x", "is not a port"),
            ("pipeline", "", "needs at least one step"),
        ] {
            let param = PARAMS.iter().find(|p| p.flag == flag).unwrap();
            let error = (param.set)(&mut Draft::course(), value).unwrap_err();
            assert!(error.contains(message), "--{flag} {value}: {error}");
        }
    }
}
