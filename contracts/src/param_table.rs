//! The table of `init`'s flags, one row per flag: what it sets in the context, what it takes on
//! the command line, its help, whether `--help` shows the course's value as its default, and
//! the step after which what it sets cannot change in place. It is the contract between
//! `init`/`up` (the runner gives clap these rows: its only part is the command line) and the
//! steps: `init`'s context ([`plan`]), `up`'s change of a cluster's spec ([`change`]) and the
//! up-front refusals are derived from it here; nothing else names a flag. Adding a parameter
//! is one row here (see ARCHITECTURE.md).
//!
//! As in ripgrep's `flags/defs.rs`, a flag given on the command line updates a draft that
//! starts as the course's cluster (`init`) or the state file's (`up`); flags not given leave
//! it as it is. Values whose default derives from another one follow it in `Draft::finish`.

use std::path::PathBuf;

use crate::context::check_new_cluster_name;
use crate::flows::NetworkPolicy;
use crate::kubernetes;
use crate::params::{parse_cidr, ImageSelector, NodeLayout, NodeSpec, SshKeyType, UBUNTU_NAME_PATTERN, UBUNTU_OWNER};
use crate::pki::{KeyAlgorithm, Layout};
use crate::region::internal_domain;
use crate::steps::{self, Makes, Section};
use crate::{BadValue, Cluster, Context, ContextError, Params, Target};

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
    pub set: fn(&mut Draft, &str) -> Result<(), BadValue>,
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

/// Where the local emulator keeps its virtualenv, log and pid unless `--emulator-dir` says.
pub const DEFAULT_EMULATOR_DIR: &str = ".groundup";
const DEFAULT_NAME: &str = "k8s-cluster";
const DEFAULT_REGION: &str = "us-east-2";

impl Draft {
    /// `context` before any flag: its nodes' layout is the one they follow.
    pub fn of(context: &Context) -> Draft {
        let params = &context.params;
        Draft {
            context: context.clone(),
            layout: NodeLayout::of(&params.masters, &params.workers, params.subnet_cidr),
            place: Place { emulator_dir: DEFAULT_EMULATOR_DIR.into(), ..Place::default() },
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
fn resized(existing: &[NodeSpec], laid_out: Vec<NodeSpec>, moved: bool) -> Vec<NodeSpec> {
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
            set: |d, v| put(&mut d.context.params.pki.key, KeyAlgorithm::from_name(v).ok_or_else(|| BadValue::UnknownName(v.into()))),
            ..ROW
        },
        Param {
            flag: "ssh-key",
            value: OneOf("SSH_KEY", &SshKeyType::NAMES),
            help: "Type of a new SSH key (ED25519, or RSA of 4096 bits); a cluster's existing key is kept",
            field: "params.ssh_key",
            shows_default: true,
            now: |d| spelled(&d.context.params.ssh_key),
            set: |d, v| put(&mut d.context.params.ssh_key, SshKeyType::from_name(v).ok_or_else(|| BadValue::UnknownName(v.into()))),
            ..ROW
        },
        Param {
            flag: "pipeline",
            value: List("STEPS"),
            help: "The steps to run, in order (a plugin step `foo` is the executable `groundup-foo`)",
            field: "pipeline",
            set: |d, v| match v {
                "" => Err(BadValue::NoSteps),
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
fn put<T>(slot: &mut T, value: Result<T, BadValue>) -> Result<(), BadValue> {
    *slot = value?;
    Ok(())
}

fn assign<T>(slot: &mut T, value: T) -> Result<(), BadValue> {
    *slot = value;
    Ok(())
}

fn parsed<T: std::str::FromStr<Err: ToString>>(text: &str) -> Result<T, BadValue> {
    text.parse().map_err(|e: T::Err| BadValue::Unparsed { text: text.into(), reason: e.to_string() })
}

/// A value as the context spells it: a name bare, anything else as its JSON.
fn spelled(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// The flags given on the command line, each with its value, in the table's order: only these
/// change a spec. The runner finds them in clap's matches, which checked each value with its
/// row's `set`.
#[derive(Debug, Clone, Default)]
pub struct Given(pub Vec<(&'static Param, String)>);

impl Given {
    fn set_on(&self, draft: &mut Draft) -> Result<(), ContextError> {
        for (param, value) in &self.0 {
            (param.set)(draft, value).map_err(|reason| ContextError::Flag { flag: param.flag, reason })?;
        }
        Ok(())
    }

    /// The given flags set on a draft of `start`, finished.
    fn draft(&self, start: &Context) -> Result<Draft, ContextError> {
        let mut draft = Draft::of(start);
        self.set_on(&mut draft)?;
        draft.finish(start)
    }

    /// Which cluster and where: the name, target and emulator directory the flags give.
    pub fn place(&self) -> Place {
        let mut draft = Draft::course();
        self.set_on(&mut draft).expect("clap accepted each value with the same `set`");
        draft.place
    }

    fn has(&self, param: &Param) -> bool {
        self.0.iter().any(|(given, _)| given.flag == param.flag)
    }
}

/// The course's cluster with the flags given, checked: `init`'s context before its target and
/// its directories are settled (the runner does that, beside the state file).
pub fn plan(given: &Given) -> Result<Context, ContextError> {
    let context = given.draft(&Draft::course().context)?.context;
    check_new_cluster_name(&context.cluster.name)?;
    context.validate()?;
    Ok(context)
}

/// The spec of an existing cluster with the flags given applied, checked by `init`'s own
/// rules; flags not given keep the cluster's values. What cannot change in place is refused
/// ([`ContextError::CannotChange`]) once the step the table names has built on it.
pub fn change(current: &Context, given: &Given) -> Result<Context, ContextError> {
    let desired = given.draft(current)?;
    refuse_what_cannot_change(current, &desired, given)?;
    desired.context.validate()?;
    Ok(desired.context)
}

/// The first field a row fixes that `desired` changes, once the row's step has recorded its
/// section (after `down --yes` the cloud's are free again; the PKI's stay fixed until
/// `--purge`): its value now, the value asked for, and the way forward. The rows of the flags
/// given come first: a flag that moves nodes may move more than its field.
fn refuse_what_cannot_change(current: &Context, desired: &Draft, given: &Given) -> Result<(), ContextError> {
    let before = Draft::of(current);
    for param in PARAMS.iter().filter(|p| given.has(p)).chain(PARAMS.iter().filter(|p| !given.has(p))) {
        let Some(section) = param.fixed_after.filter(|section| current.has_section(*section)) else { continue };
        let fixed = |draft: &Draft| param.fixed.map_or_else(|| vec![(param.now)(draft)], |nodes| nodes(draft));
        let Some((i, (now, asked))) =
            fixed(&before).into_iter().zip(fixed(desired)).enumerate().find(|(_, (a, b))| a != b)
        else {
            continue;
        };
        let step = section.step();
        // `down --yes` forgets the cloud's resources; the files a local step made (the PKI)
        // go only with `--purge`.
        let way = match (param.instead, steps::step(step).is_some_and(|s| s.makes != Makes::Cloud)) {
            (Some(instead), _) => instead.to_string(),
            (None, local) => {
                let rebuild = match local {
                    true => "`groundup down --yes --purge` (it also deletes the files groundup wrote: PKI, keys, kubeconfigs, bundles)",
                    false => "`groundup down --yes`",
                };
                format!("to rebuild with it, {rebuild}, then `groundup up` with the same flags")
            }
        };
        let field = param.field.replace("[]", &format!("[{i}]"));
        return Err(ContextError::CannotChange { field, step, now, asked, way });
    }
    Ok(())
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
            let error = (param.set)(&mut Draft::course(), value).unwrap_err().to_string();
            assert!(error.contains(message), "--{flag} {value}: {error}");
        }
    }

    /// The flags as a command line gives them (`--flag value`, `--switch`), in the table's
    /// order as the runner collects them.
    fn given(flags: &[&str]) -> Given {
        let mut pairs: Vec<(&'static Param, String)> = Vec::new();
        let mut words = flags.iter();
        while let Some(word) = words.next() {
            let param = PARAMS.iter().find(|p| Some(p.flag) == word.strip_prefix("--")).expect(word);
            let value = match param.value {
                Value::Switch => String::new(),
                _ => words.next().expect("a value").to_string(),
            };
            pairs.push((param, value));
        }
        pairs.sort_by_key(|(param, _)| PARAMS.iter().position(|p| p.flag == param.flag));
        Given(pairs)
    }

    fn planned(flags: &[&str]) -> Result<Context, ContextError> {
        plan(&given(flags))
    }

    fn error(flags: &[&str]) -> String {
        planned(flags).unwrap_err().to_string()
    }

    /// `up <flags>` on `current`.
    fn changed(current: &Context, flags: &[&str]) -> Result<Context, ContextError> {
        change(current, &given(flags))
    }

    /// The course's cluster, built (the example context after `compute`, and a PKI), its
    /// worker 1 moved by hand to .30.
    fn built() -> Context {
        let infra = include_str!("../examples/03-infra.json");
        let mut context = Context::from_json(infra).unwrap();
        context.params.workers[1].private_ip = "172.31.0.30".parse().unwrap();
        context.ca = Some(crate::pki::CaSection { authorities: Vec::new() });
        context.certs = Some(crate::pki::CertsSection { certificates: Vec::new() });
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
            assert!(matches!(error, ContextError::CannotChange { .. }), "{flags:?}: not refused: {error}");
            let message = error.to_string();
            assert!(message.starts_with(&format!("`{field}` cannot change in place")), "{flags:?}: {message}");
            assert!(message.contains(now) && message.contains(asked), "{flags:?}: {message}");
            let purge = matches!(field, "params.pki.key" | "params.pki.dir" | "params.service_cidr");
            let rebuild = if purge { "`groundup down --yes --purge`" } else { "`groundup down --yes`" };
            assert!(message.contains(rebuild) && !message.contains('\n'), "{message}");
        }
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
        assert!(matches!(error, ContextError::CannotChange { .. }), "the PKI outlives `down`: {error}");
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
            let change_error = changed(&current, flags).unwrap_err().to_string();
            assert_eq!(change_error, init_error, "{flags:?}");
        }
    }

    /// `up --workers 300` blamed `params.masters`. The error names the count asked for, and
    /// fewer nodes, as it advises, fit.
    #[test]
    fn too_many_workers_name_the_workers_and_fewer_fit() {
        let current = built();
        let error = changed(&current, &["--workers", "300"]).unwrap_err().to_string();
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

    /// A new release on running nodes is an upgrade, which is refused with its own advice;
    /// before the instances exist the version is free, a bad one names its field, and the pod
    /// range and DNS address follow the ranges they default from.
    #[test]
    fn a_version_change_on_built_nodes_is_refused_as_an_upgrade() {
        let current = built();
        let refusal = changed(&current, &["--kubernetes-version", "v1.35.0"]).unwrap_err();
        assert!(matches!(refusal, ContextError::CannotChange { .. }), "{refusal}");
        let message = refusal.to_string();
        assert!(message.starts_with("`params.kubernetes.version` cannot change in place"), "{message}");
        assert!(message.contains("v1.34.2") && message.contains("v1.35.0") && message.contains("upgrade"), "{message}");
        assert!(!message.contains("down --yes"), "a rebuild is not the way to another release: {message}");
        let same = changed(&current, &["--kubernetes-version", crate::kubernetes::DEFAULT_VERSION]).unwrap();
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
}
