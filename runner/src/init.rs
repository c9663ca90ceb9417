//! `groundup init`: the starting context, with the course's values unless a flag says otherwise.
//! The flags are the rows of [`crate::params::PARAMS`]; `up` takes the same ones to change an
//! existing cluster's spec ([`change`]).

use std::path::Path;

use anyhow::Result;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use groundup_contracts::context::check_new_cluster_name;
use groundup_contracts::steps::{self, Makes};
use groundup_contracts::{Context, Target};

use crate::params::{Draft, Param, Place, Value, PARAMS};

/// The init flags given on the command line, each with its value: only these change a spec.
#[derive(Debug, Clone, Default)]
pub struct InitArgs {
    given: Vec<(&'static Param, String)>,
}

impl InitArgs {
    fn set_on(&self, draft: &mut Draft) -> Result<()> {
        for (param, value) in &self.given {
            (param.set)(draft, value).map_err(|e| anyhow::anyhow!("--{}: {e}", param.flag))?;
        }
        Ok(())
    }

    /// The given flags set, in the table's order, on a draft of `start`, finished.
    fn draft(&self, start: &Context) -> Result<Draft> {
        let mut draft = Draft::of(start);
        self.set_on(&mut draft)?;
        Ok(draft.finish(start)?)
    }

    /// Which cluster and where: the name, target and emulator directory the flags give.
    pub fn place(&self) -> Place {
        let mut draft = Draft::course();
        self.set_on(&mut draft).expect("clap accepted each value with the same `set`");
        draft.place
    }
}

impl Param {
    fn id(&self) -> String {
        self.flag.replace('-', "_")
    }

    fn arg(&self) -> Arg {
        let mut arg = Arg::new(self.id()).long(self.flag);
        if !self.help.is_empty() {
            arg = arg.help(self.help);
        }
        let set = self.set;
        // A value is valid when it can be set: one parser for the command line and the spec.
        let checked = move |value: &str| set(&mut Draft::course(), value).map(|()| value.to_owned());
        arg = match self.value {
            Value::Switch => arg.action(ArgAction::SetTrue),
            Value::One(name) => arg.value_name(name).value_parser(checked),
            Value::Path(name) => arg.value_name(name).value_parser(checked).value_hint(clap::ValueHint::AnyPath),
            Value::OneOf(name, names) => {
                arg.value_name(name).value_parser(clap::builder::PossibleValuesParser::new(names))
            }
            Value::List(name) => {
                arg.value_name(name).action(ArgAction::Append).value_delimiter(',').value_parser(checked)
            }
        };
        if self.shows_default {
            arg = arg.default_value((self.now)(&Draft::course()));
        }
        arg.conflicts_with_all(self.conflicts_with)
    }

    /// The value given on the command line, if the flag was given.
    fn given(&self, matches: &ArgMatches) -> Option<String> {
        let id = self.id();
        if matches.value_source(&id) != Some(ValueSource::CommandLine) {
            return None;
        }
        Some(match self.value {
            Value::Switch => String::new(),
            Value::One(_) | Value::Path(_) | Value::OneOf(..) => matches.get_one::<String>(&id)?.clone(),
            Value::List(_) => matches.get_many::<String>(&id)?.cloned().collect::<Vec<_>>().join(","),
        })
    }
}

impl clap::Args for InitArgs {
    fn augment_args(command: Command) -> Command {
        command.args(PARAMS.iter().map(Param::arg))
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl clap::FromArgMatches for InitArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let given = PARAMS.iter().filter_map(|param| Some((param, param.given(matches)?))).collect();
        Ok(InitArgs { given })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

pub fn run(args: &InitArgs) -> Result<()> {
    let context = build(args, Path::new("."))?;
    groundup_runtime::output::print(&context.to_json())?;
    Ok(())
}

/// The starting context of a cluster living in `home`; for the local emulator this starts it
/// to learn its endpoint. A cluster gets directories no other cluster in `home` has.
pub fn build(args: &InitArgs, home: &Path) -> Result<Context> {
    let mut context = plan(args)?;
    warn_if_even(&Draft::course().context, &context);
    let (params, name) = (&mut context.params, &context.cluster.name);
    let course = Draft::course().context.params;
    for (dir, default) in [
        (&mut params.pki.dir, &course.pki.dir),
        (&mut params.ssh_dir, &course.ssh_dir),
        (&mut params.kubeconfig_dir, &course.kubeconfig_dir),
        (&mut params.nodes_dir, &course.nodes_dir),
    ] {
        if dir == default {
            *dir = groundup_runtime::files::free_dir(home, dir, name);
        }
    }
    let place = args.place();
    context.target = match (place.endpoint, place.aws) {
        (Some(endpoint), _) => Target::Endpoint { endpoint },
        (None, true) => Target::Aws,
        (None, false) => Target::Emulator { endpoint: crate::emulator::ensure_running(&place.emulator_dir, None)? },
    };
    context.validate()?;
    Ok(context)
}

/// The course's cluster with the flags given: pure, so that bad flags fail before anything
/// starts. Its target is settled by [`build`].
pub fn plan(args: &InitArgs) -> Result<Context> {
    let context = args.draft(&Draft::course().context)?.context;
    check_new_cluster_name(&context.cluster.name)?;
    context.validate()?;
    Ok(context)
}

/// etcd runs on every master and needs a majority: 4 masters survive one failure, as 3 do.
fn warn_if_even(before: &Context, after: &Context) {
    let masters = after.params.masters.len();
    if masters != before.params.masters.len() && masters > 0 && masters.is_multiple_of(2) {
        eprintln!(
            "groundup: warning: {masters} masters: etcd needs a majority of them, so {masters} survive no more failures than {} do; an odd number is better",
            masters - 1
        );
    }
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

/// The spec of an existing cluster with the init flags given on the command line applied,
/// checked by `init`'s own rules; flags not given keep the cluster's values. What cannot
/// change in place is [`Refused`] once the step the table names has built on it.
pub fn change(current: &Context, args: &InitArgs) -> Result<Context> {
    let desired = args.draft(current)?;
    refuse_what_cannot_change(current, &desired, args)?;
    warn_if_even(current, &desired.context);
    desired.context.validate()?;
    Ok(desired.context)
}

/// The first field a row fixes that `desired` changes, once the row's step has recorded its
/// section (after `down --yes` the cloud's are free again; the PKI's stay fixed until
/// `--purge`): one line naming it, its value now and the value asked for, and the way forward.
/// The rows of the flags given come first: a flag that moves nodes may move more than its field.
fn refuse_what_cannot_change(current: &Context, desired: &Draft, args: &InitArgs) -> Result<(), Refused> {
    let before = Draft::of(current);
    let given = |param: &Param| args.given.iter().any(|(g, _)| g.flag == param.flag);
    for param in PARAMS.iter().filter(|p| given(p)).chain(PARAMS.iter().filter(|p| !given(p))) {
        let Some(section) = param.fixed_after.filter(|section| current.has_section(*section)) else { continue };
        let fixed = |draft: &Draft| param.fixed.map_or_else(|| vec![(param.now)(draft)], |nodes| nodes(draft));
        let Some((i, (now, asked))) =
            fixed(&before).into_iter().zip(fixed(desired)).enumerate().find(|(_, (a, b))| a != b)
        else {
            continue;
        };
        let field = param.field.replace("[]", &format!("[{i}]"));
        let step = section.step();
        if let Some(instead) = param.instead {
            return Err(Refused(format!(
                "`{field}` cannot change in place (`{step}` has built on it): it is {now}, asked for {asked}; \
                 {instead}; or make another cluster with another --name and --state; nothing was changed"
            )));
        }
        // `down --yes` forgets the cloud's resources; the files a local step made (the PKI)
        // go only with `--purge`.
        let rebuild = match steps::step(step).is_some_and(|s| s.makes != Makes::Cloud) {
            true => "`groundup down --yes --purge` (it also deletes the files groundup wrote: PKI, keys, kubeconfigs, bundles)",
            false => "`groundup down --yes`",
        };
        return Err(Refused(format!(
            "`{field}` cannot change in place (`{step}` has built on it): it is {now}, asked for {asked}; \
             to rebuild with it, {rebuild}, then `groundup up` with the same flags; or make another \
             cluster with another --name and --state; nothing was changed"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use groundup_contracts::params::NodeSpec;
    use groundup_contracts::Params;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        init: InitArgs,
    }

    fn planned(flags: &[&str]) -> Result<Context> {
        let args = Wrapper::try_parse_from(std::iter::once("init").chain(flags.iter().copied()))?.init;
        plan(&args)
    }

    fn error(flags: &[&str]) -> String {
        format!("{:#}", planned(flags).unwrap_err())
    }

    /// `up <flags>` on `current`: the flags given on the command line, as `main` finds them.
    fn changed(current: &Context, flags: &[&str]) -> Result<Context> {
        let args = Wrapper::try_parse_from(std::iter::once("up").chain(flags.iter().copied()))?.init;
        change(current, &args)
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

    /// Every row is a flag of `init` and of `up`, with its help.
    #[test]
    fn every_row_is_a_flag_of_init_and_up() {
        use clap::CommandFactory;
        let init = Wrapper::command().render_long_help().to_string();
        let up = crate::Cli::command().find_subcommand_mut("up").unwrap().render_long_help().to_string();
        for param in PARAMS {
            for help in [&init, &up] {
                assert!(help.contains(&format!("--{} ", param.flag)) || help.contains(&format!("--{}\n", param.flag)));
                assert!(help.contains(param.help), "--{}", param.flag);
            }
        }
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
        let message = refusal.downcast_ref::<Refused>().expect("refused").to_string();
        assert!(message.starts_with("`params.kubernetes.version` cannot change in place"), "{message}");
        assert!(message.contains("v1.34.2") && message.contains("v1.35.0") && message.contains("upgrade"), "{message}");
        assert!(!message.contains("down --yes"), "a rebuild is not the way to another release: {message}");
        let same =
            changed(&current, &["--kubernetes-version", groundup_contracts::kubernetes::DEFAULT_VERSION]).unwrap();
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
