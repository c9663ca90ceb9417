//! `groundup init`: the starting context, with the course's values unless a flag says otherwise.
//! The flags are the rows of the parameter table ([`groundup_contracts::param_table`]), which
//! also derives the context and `up`'s change of an existing cluster's spec; this module is
//! its command line: each row as a clap argument, and the flags given found in the matches.

use std::path::Path;

use anyhow::Result;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use groundup_contracts::param_table::{self, Draft, Given, Param, Place, Value, PARAMS};
use groundup_contracts::{Context, Target};

/// The init flags given on the command line, each with its value: only these change a spec.
#[derive(Debug, Clone, Default)]
pub struct InitArgs {
    given: Given,
}

impl InitArgs {
    /// Which cluster and where: the name, target and emulator directory the flags give.
    pub fn place(&self) -> Place {
        self.given.place()
    }
}

/// The row as clap's argument: a value is valid when the row's `set` accepts it, so the
/// command line and the spec have one parser.
fn arg(param: &'static Param) -> Arg {
    let mut arg = Arg::new(id(param)).long(param.flag);
    if !param.help.is_empty() {
        arg = arg.help(param.help);
    }
    let set = param.set;
    let checked = move |value: &str| set(&mut Draft::course(), value).map(|()| value.to_owned());
    arg = match param.value {
        Value::Switch => arg.action(ArgAction::SetTrue),
        Value::One(name) => arg.value_name(name).value_parser(checked),
        Value::Path(name) => arg.value_name(name).value_parser(checked).value_hint(clap::ValueHint::AnyPath),
        Value::OneOf(name, names) => arg.value_name(name).value_parser(clap::builder::PossibleValuesParser::new(names)),
        Value::List(name) => arg.value_name(name).action(ArgAction::Append).value_delimiter(',').value_parser(checked),
    };
    if param.shows_default {
        arg = arg.default_value((param.now)(&Draft::course()));
    }
    arg.conflicts_with_all(param.conflicts_with)
}

fn id(param: &Param) -> String {
    param.flag.replace('-', "_")
}

/// The value given on the command line, if the flag was given.
fn given(param: &Param, matches: &ArgMatches) -> Option<String> {
    let id = id(param);
    if matches.value_source(&id) != Some(ValueSource::CommandLine) {
        return None;
    }
    Some(match param.value {
        Value::Switch => String::new(),
        Value::One(_) | Value::Path(_) | Value::OneOf(..) => matches.get_one::<String>(&id)?.clone(),
        Value::List(_) => matches.get_many::<String>(&id)?.cloned().collect::<Vec<_>>().join(","),
    })
}

impl clap::Args for InitArgs {
    fn augment_args(command: Command) -> Command {
        command.args(PARAMS.iter().map(arg))
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl clap::FromArgMatches for InitArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let given = PARAMS.iter().filter_map(|param| Some((param, given(param, matches)?))).collect();
        Ok(InitArgs { given: Given(given) })
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
    Ok(param_table::plan(&args.given)?)
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

/// Bad input, refused before anything changes (exit code 2): a step that refused its input,
/// a selection of steps or a flag the state file does not allow, or a state file that is not there.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The spec of an existing cluster with the init flags given on the command line applied (see
/// [`param_table::change`]): what cannot change in place is refused, exit code 2.
pub fn change(current: &Context, args: &InitArgs) -> Result<Context> {
    let desired = param_table::change(current, &args.given)?;
    warn_if_even(current, &desired);
    Ok(desired)
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

    /// clap checks a value with its row's `set`, and finds only the flags given, with their values.
    #[test]
    fn a_value_is_checked_by_its_row_and_only_given_flags_count() {
        let bad = Wrapper::try_parse_from(["init", "--vpc-cidr", "172.31.0.0/33"]).err().expect("refused");
        assert_eq!(bad.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(bad.to_string().contains("is not a CIDR range"), "{bad}");
        let args = Wrapper::try_parse_from(["up", "--workers", "4", "--pipeline", "vpc,dhcp", "--aws"]).unwrap().init;
        let given: Vec<(&str, &str)> = args.given.0.iter().map(|(p, v)| (p.flag, v.as_str())).collect();
        assert_eq!(given, [("aws", ""), ("workers", "4"), ("pipeline", "vpc,dhcp")]);
        assert!(args.place().aws);
    }
}
