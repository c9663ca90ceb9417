//! The context document: its top-level shape, its version, and how it is read and written.
//!
//! Top-level keys this build does not know are kept verbatim and written back, so that a
//! third-party step plugin can add a section that survives every other step.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;

use schemars::JsonSchema;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{BadValue, ContextError};
use crate::infra::{ComputeSection, NlbSection};
use crate::network::{DhcpSection, IgwSection, RoutesSection, SgSection, SubnetSection, VpcSection};
use crate::params::Params;
use crate::pki::{BundlesSection, CaSection, CertsSection, EncryptionSection, KubeconfigSection};
use crate::plan::{JournalEntry, PlanSection, PlannedResource};
use crate::reference::Ref;
use crate::steps::{step, Makes, Section, STEPS};
use crate::teardown::TeardownSection;

pub const CONTEXT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "groundup context", description = "The JSON document that passes between groundup steps")]
pub struct Context {
    pub version: u32,
    pub cluster: Cluster,
    pub target: Target,
    pub params: Params,
    /// The steps `groundup up` runs, in order (`groundup-<name>` executables).
    pub pipeline: Vec<String>,
    /// Steps that have finished on this context, in the order they first finished.
    #[serde(default)]
    pub completed: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<VpcSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<DhcpSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<SubnetSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub igw: Option<IgwSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<RoutesSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sg: Option<SgSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nlb: Option<NlbSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<ComputeSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certs: Option<CertsSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<KubeconfigSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundles: Option<BundlesSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown: Option<TeardownSection>,
    /// Creates a step started but has not seen finish (see [`crate::plan`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<JournalEntry>,
    /// Present only in the output of `--plan`: what the steps would do. Such a context holds
    /// placeholder ids and is never applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanSection>,
    /// Sections of steps this build does not know (plugins), passed through unchanged.
    #[serde(skip)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Used in every Name tag and resource name.
    pub name: String,
    pub region: String,
}

/// Where the steps send their AWS API calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields, from = "TargetFields")]
pub enum Target {
    /// The local emulator that `groundup emulator start` runs on loopback.
    Emulator { endpoint: String },
    /// An AWS-compatible endpoint the user runs (their own moto, LocalStack, ...).
    Endpoint { endpoint: String },
    /// Real AWS, through the standard credential chain. Only `init --aws` selects it.
    Aws,
}

/// [`Target`] as read: an internally tagged unit variant ignores other fields, so `aws` is a
/// struct variant here and `{"kind":"aws","endpoint":...}` is an error, not a silent AWS.
#[derive(Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum TargetFields {
    /// The local emulator that `groundup emulator start` runs on loopback.
    Emulator { endpoint: String },
    /// An AWS-compatible endpoint the user runs (their own moto, LocalStack, ...).
    Endpoint { endpoint: String },
    /// Real AWS, through the standard credential chain; each run needs `--aws` or
    /// `GROUNDUP_ALLOW_AWS=1` as well.
    Aws {},
}

impl From<TargetFields> for Target {
    fn from(fields: TargetFields) -> Self {
        match fields {
            TargetFields::Emulator { endpoint } => Target::Emulator { endpoint },
            TargetFields::Endpoint { endpoint } => Target::Endpoint { endpoint },
            TargetFields::Aws {} => Target::Aws,
        }
    }
}

impl Target {
    pub fn endpoint(&self) -> Option<&str> {
        match self {
            Target::Emulator { endpoint } | Target::Endpoint { endpoint } => Some(endpoint),
            Target::Aws => None,
        }
    }

    pub fn is_real_aws(&self) -> bool {
        matches!(self, Target::Aws)
    }

    /// Real AWS costs money and touches real accounts, so every invocation must ask for it,
    /// whatever the context says: a context is data that anyone may have written.
    pub fn check_allowed(&self) -> Result<(), ContextError> {
        if self.is_real_aws() && !aws_allowed() {
            return Err(ContextError::AwsNotAllowed);
        }
        Ok(())
    }
}

/// Set to `1` by the user, allows real AWS for this process and the steps it runs.
pub const ALLOW_AWS_ENV: &str = "GROUNDUP_ALLOW_AWS";

/// `--aws` on this invocation. Not in the environment: the runner passes the opt-in to each
/// step it runs as an argument, so that nothing else it starts inherits it.
static ASKED_FOR_AWS: AtomicBool = AtomicBool::new(false);

/// This invocation was given `--aws`: real AWS is allowed in this process.
pub fn allow_aws() {
    ASKED_FOR_AWS.store(true, Ordering::SeqCst);
}

/// Whether this process may use real AWS: given `--aws`, or run with `GROUNDUP_ALLOW_AWS=1`.
pub fn aws_allowed() -> bool {
    ASKED_FOR_AWS.load(Ordering::SeqCst) || std::env::var(ALLOW_AWS_ENV).is_ok_and(|value| value == "1")
}

/// The top-level keys of [`Context`], read off its schema so that they cannot drift.
static KNOWN_KEYS: LazyLock<BTreeSet<String>> = LazyLock::new(|| {
    let schema = schemars::schema_for!(Context);
    schema.get("properties").and_then(Value::as_object).map(|props| props.keys().cloned().collect()).unwrap_or_default()
});

impl Context {
    pub fn new(cluster: Cluster, target: Target, params: Params, pipeline: Vec<String>) -> Self {
        Context {
            version: CONTEXT_VERSION,
            cluster,
            target,
            params,
            pipeline,
            completed: Vec::new(),
            vpc: None,
            dhcp: None,
            subnet: None,
            igw: None,
            routes: None,
            sg: None,
            nlb: None,
            compute: None,
            ca: None,
            certs: None,
            kubeconfig: None,
            encryption: None,
            bundles: None,
            teardown: None,
            journal: Vec::new(),
            plan: None,
            extra: Map::new(),
        }
    }

    /// Parses and validates a context; every failure names the offending field.
    pub fn from_json(text: &str) -> Result<Self, ContextError> {
        if text.trim().is_empty() {
            return Err(ContextError::Empty);
        }
        let value = parse_without_duplicate_keys(text).map_err(|e| ContextError::Malformed(e.to_string()))?;
        let Value::Object(mut object) = value else {
            return Err(ContextError::Malformed("the top level must be a JSON object".into()));
        };
        check_version(object.get("version"))?;
        let extra: Map<String, Value> =
            object.iter().filter(|(key, _)| !KNOWN_KEYS.contains(*key)).map(|(k, v)| (k.clone(), v.clone())).collect();
        object.retain(|key, _| KNOWN_KEYS.contains(key));
        let mut context: Context = serde_path_to_error::deserialize(Value::Object(object)).map_err(|e| {
            let field = e.path().to_string();
            ContextError::field(if field == "." { "(top level)".into() } else { field }, e.into_inner())
        })?;
        context.extra = extra;
        context.validate()?;
        Ok(context)
    }

    pub fn to_json(&self) -> String {
        let mut value = serde_json::to_value(self).expect("a context always serializes");
        if let Value::Object(object) = &mut value {
            object.extend(self.extra.clone());
        }
        let mut text = serde_json::to_string_pretty(&value).expect("a JSON value always serializes");
        text.push('\n');
        text
    }

    pub fn validate(&self) -> Result<(), ContextError> {
        check_cluster_name(&self.cluster.name)?;
        if !crate::region::is_known(&self.cluster.region) {
            return Err(ContextError::field(
                "cluster.region",
                format!("`{}` is not an AWS region (e.g. us-east-2)", self.cluster.region),
            ));
        }
        check_target(&self.target)?;
        self.params.validate()?;
        self.params.pki.validate()?;
        for (i, step) in self.pipeline.iter().enumerate() {
            check_step_name(&format!("pipeline[{i}]"), step)?;
            if self.pipeline[..i].contains(step) {
                return Err(ContextError::field(
                    format!("pipeline[{i}]"),
                    format!("`{step}` is in the pipeline twice"),
                ));
            }
        }
        if !self.planning() {
            if let Some((field, planned)) = self.references().into_iter().find(|(_, r)| r.known().is_none()) {
                return Err(ContextError::field(
                    field,
                    format!("is `{planned}`, a placeholder of a plan, and this context is not a plan; use the state file `groundup up` wrote"),
                ));
            }
        }
        Ok(())
    }

    /// Every reference to a cloud resource the sections hold, with its field.
    fn references(&self) -> Vec<(String, &Ref)> {
        fn one(id: &Ref) -> Vec<(&'static str, &Ref)> {
            vec![("id", id)]
        }
        let sections = [
            ("vpc", self.vpc.as_ref().map(|s| one(&s.id))),
            ("dhcp", self.dhcp.as_ref().map(|s| one(&s.id))),
            ("subnet", self.subnet.as_ref().map(|s| one(&s.id))),
            ("igw", self.igw.as_ref().map(|s| one(&s.id))),
            (
                "routes",
                self.routes
                    .as_ref()
                    .map(|s| vec![("route_table_id", &s.route_table_id), ("association_id", &s.association_id)]),
            ),
            (
                "nlb",
                self.nlb.as_ref().map(|s| {
                    vec![
                        ("arn", &s.arn),
                        ("dns_name", &s.dns_name),
                        ("target_group_arn", &s.target_group_arn),
                        ("listener_arn", &s.listener_arn),
                    ]
                }),
            ),
        ];
        let mut refs: Vec<(String, &Ref)> = sections
            .into_iter()
            .flat_map(|(section, fields)| {
                fields.into_iter().flatten().map(move |(field, r)| (format!("{section}.{field}"), r))
            })
            .collect();
        if let Some(sg) = &self.sg {
            refs.extend(sg.groups.iter().enumerate().map(|(i, g)| (format!("sg.groups[{i}].id"), &g.id)));
        }
        if let Some(compute) = &self.compute {
            refs.extend(
                compute
                    .nodes
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (format!("compute.nodes[{i}].instance_id"), &n.instance_id)),
            );
        }
        refs
    }

    /// Whether this context is being passed through the steps by `--plan`.
    pub fn planning(&self) -> bool {
        self.plan.is_some()
    }

    /// Adds what a step planned to the context's plan (a no-op outside a plan).
    pub fn add_plan(&mut self, planned: Vec<PlannedResource>) {
        if let Some(plan) = self.plan.as_mut() {
            plan.resources.extend(planned);
        }
    }

    /// Records that `step` finished; re-running a step leaves the list unchanged.
    pub fn mark_completed(&mut self, step: &str) {
        if !self.completed.iter().any(|s| s == step) {
            self.completed.push(step.to_string());
        }
    }

    pub fn is_completed(&self, step: &str) -> bool {
        self.completed.iter().any(|s| s == step)
    }

    /// After a teardown: the cloud sections describe resources that no longer exist, and every
    /// cloud step must run again. Local files (PKI, SSH key) are not cloud resources, but the
    /// certificates name the instances and the load balancer, and the kubeconfigs and node
    /// bundles carry the certificates: those steps run again too, to follow the new ones.
    pub fn forget_cloud_resources(&mut self) {
        self.forget(|makes| makes == Makes::Cloud, |makes| makes != Makes::Local);
    }

    /// After the local files are purged: the steps that make them (the PKI, the kubeconfigs,
    /// the encryption config in the PKI directory, the node bundles) must run again.
    pub fn forget_pki(&mut self) {
        self.forget(|makes| makes != Makes::Cloud, |makes| makes != Makes::Cloud);
    }

    /// Removes the sections of the steps whose work `gone` says is gone, and marks the steps
    /// that `again` says must follow as not done.
    fn forget(&mut self, gone: impl Fn(Makes) -> bool, again: impl Fn(Makes) -> bool) {
        for step in STEPS.iter().filter(|step| gone(step.makes)) {
            self.forget_section(step.section);
        }
        self.completed.retain(|name| !step(name).is_some_and(|s| again(s.makes)));
    }
}

/// Returns a section the running step depends on, or says which step must run first.
pub fn need<T>(section: &Option<T>, which: Section) -> Result<&T, ContextError> {
    section.as_ref().ok_or_else(|| which.missing())
}

fn check_version(version: Option<&Value>) -> Result<(), ContextError> {
    match version {
        Some(Value::Number(n)) if n.as_u64() == Some(CONTEXT_VERSION.into()) => Ok(()),
        Some(other) => Err(ContextError::Version { found: other.to_string(), expected: CONTEXT_VERSION }),
        None => Err(ContextError::field("version", "missing; a context starts with `\"version\": 1`")),
    }
}

/// Names go into resource names: the load balancer and target group allow 32 characters of
/// letters, digits and hyphens.
pub fn check_cluster_name(name: &str) -> Result<(), ContextError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ContextError::field(
            "cluster.name",
            format!("`{name}` must be 1-32 letters, digits or inner hyphens (it names the load balancer)"),
        ))
    }
}

/// For a cluster about to be made, beyond [`check_cluster_name`]: AWS refuses a load balancer
/// name that begins with `internal-` (the emulator does not), and the load balancer takes the
/// cluster's name. An existing cluster is not checked again, so its state file still loads
/// and `down` still reaches it.
pub fn check_new_cluster_name(name: &str) -> Result<(), ContextError> {
    check_cluster_name(name)?;
    if name.to_ascii_lowercase().starts_with("internal-") {
        return Err(ContextError::field(
            "cluster.name",
            format!("`{name}` begins with `internal-`, which AWS refuses in a load balancer's name (it names the load balancer); choose another --name"),
        ));
    }
    Ok(())
}

fn check_step_name(field: &str, step: &str) -> Result<(), ContextError> {
    let ok = !step.is_empty() && step.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ContextError::field(field, format!("`{step}` is not a step name (lowercase letters, digits, hyphens)")))
    }
}

/// The emulator must be on loopback: the default run never sends traffic anywhere else.
fn check_target(target: &Target) -> Result<(), ContextError> {
    let field = |message: String| ContextError::field("target.endpoint", message);
    let bad_url = |reason: BadValue| ContextError::field("target.endpoint", reason);
    match target {
        Target::Emulator { endpoint } if !is_loopback_url(endpoint) => Err(field(format!(
            "the emulator endpoint `{endpoint}` is not http:// on loopback; use --endpoint for other addresses"
        ))),
        Target::Endpoint { endpoint } => parse_url(endpoint).map(drop).map_err(bad_url),
        _ => Ok(()),
    }
}

/// The parts of an http(s) URL that say where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub struct UrlHost {
    pub https: bool,
    /// A name, an IPv4 address, or an IPv6 address without its brackets.
    pub host: String,
    pub port: Option<u16>,
}

/// Parses `http(s)://host[:port][/path]` strictly: user information (`user@`), which makes
/// `http://127.0.0.1:5999@10.1.2.3/` go to 10.1.2.3, and any character an HTTP client might
/// read differently (`\`, `%`, spaces) are refused rather than interpreted.
pub fn parse_url(url: &str) -> Result<UrlHost, BadValue> {
    let (https, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(rest), _) => (false, rest),
        (None, Some(rest)) => (true, rest),
        (None, None) => return Err(BadValue::NotHttp(url.into())),
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.contains('@') {
        return Err(BadValue::UserInformation(url.into()));
    }
    if !authority.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)) {
        return Err(BadValue::NotPlainHost { url: url.into(), authority: authority.into() });
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (address, after) = bracketed.split_once(']').ok_or_else(|| BadValue::UnclosedBracket(url.into()))?;
            address.parse::<Ipv6Addr>().map_err(|_| BadValue::NotIpv6 { url: url.into(), address: address.into() })?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| BadValue::AfterAddress { url: url.into(), after: after.into() })?,
                ),
            };
            (address, port)
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() || (!authority.starts_with('[') && host.contains(['[', ']'])) {
        return Err(BadValue::NoHost(url.into()));
    }
    let port = port
        .map(|p| p.parse::<u16>().map_err(|_| BadValue::NotPort { url: url.into(), port: p.into() }))
        .transpose()?;
    Ok(UrlHost { https, host: host.to_string(), port })
}

/// An http:// URL whose host is this machine (localhost, 127.0.0.0/8, ::1).
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(UrlHost { https: false, host, .. }) = parse_url(url) else { return false };
    host == "localhost"
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        || host.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Parses JSON like `serde_json::from_str`, but a key given twice in one object is an error
/// naming its path: serde_json keeps the last one, so `{"kind": "emulator", ..., "kind":
/// "aws"}` would otherwise quietly mean something else than the first reading suggests.
fn parse_without_duplicate_keys(text: &str) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = UniqueKeys { path: String::new() }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

struct UniqueKeys {
    path: String,
}

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(UniqueKeys { path: format!("{}[{}]", self.path, items.len()) })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() { key.clone() } else { format!("{}.{key}", self.path) };
            if object.contains_key(&key) {
                return Err(A::Error::custom(format!("the key `{path}` appears twice")));
            }
            let value = map.next_value_seed(UniqueKeys { path })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Context {
        Context::new(
            Cluster { name: "k8s-cluster".into(), region: "us-east-2".into() },
            Target::Emulator { endpoint: "http://127.0.0.1:5000".into() },
            Params::course_defaults("us-east-2"),
            vec!["vpc".into()],
        )
    }

    fn error_of(text: &str) -> String {
        Context::from_json(text).unwrap_err().to_string()
    }

    #[test]
    fn round_trips_and_keeps_unknown_sections() {
        let mut value: Value = serde_json::from_str(&sample().to_json()).unwrap();
        value["my-plugin"] = serde_json::json!({"answer": 42});
        let context = Context::from_json(&value.to_string()).unwrap();
        let again: Value = serde_json::from_str(&context.to_json()).unwrap();
        assert_eq!(again, value);
    }

    /// A plan's placeholders parse as planned references, and only a plan may hold them: an
    /// applied context with one names the field (exit 2).
    #[test]
    fn a_planned_reference_is_refused_outside_a_plan() {
        let plan = include_str!("../examples/04-network-plan.json");
        let context = Context::from_json(plan).unwrap();
        assert_eq!(context.igw.as_ref().unwrap().id, Ref::Planned("igw".into()));
        assert_eq!(context.to_json(), Context::from_json(&context.to_json()).unwrap().to_json());
        let mut value: Value = serde_json::from_str(plan).unwrap();
        value.as_object_mut().unwrap().remove("plan");
        let error = Context::from_json(&value.to_string()).unwrap_err();
        assert!(matches!(error, ContextError::Field { .. }), "a field error exits 2: {error}");
        let placeholder = Ref::Planned("dhcp".into()).to_string();
        assert!(error.to_string().contains("dhcp.id") && error.to_string().contains(&placeholder), "{error}");
    }

    #[test]
    fn after_a_teardown_the_cloud_steps_and_certs_run_again_and_the_pki_is_kept() {
        let mut context = sample();
        context.completed = crate::steps::pipeline().map(String::from).collect();
        context.forget_cloud_resources();
        assert!(context.is_completed("ca"), "the PKI is kept");
        assert!(!context.is_completed("certs"), "certs must follow the new instances");
        assert!(!context.is_completed("kubeconfig") && !context.is_completed("bundles"), "they carry the certificates");
        assert!(context.is_completed("encryption"), "the encryption key stays");
        assert!(!context.is_completed("compute") && !context.is_completed("vpc"));
    }

    #[test]
    fn bad_documents_get_one_clear_line() {
        assert!(error_of("").contains("empty"));
        assert!(error_of("{").contains("not valid JSON"));
        assert!(error_of("[]").contains("JSON object"));
        let mut value: Value = serde_json::from_str(&sample().to_json()).unwrap();
        value["version"] = 7.into();
        assert!(error_of(&value.to_string()).contains("version 7"));
    }

    #[test]
    fn field_errors_name_the_field() {
        let mut value: Value = serde_json::from_str(&sample().to_json()).unwrap();
        value["params"]["vpc_cidr"] = "172.31.0.0/99".into();
        assert!(error_of(&value.to_string()).contains("`params.vpc_cidr`"), "{}", error_of(&value.to_string()));
        let mut value: Value = serde_json::from_str(&sample().to_json()).unwrap();
        value["vpc"] = "vpc-123".into();
        assert!(error_of(&value.to_string()).contains("`vpc`"));
        let mut value: Value = serde_json::from_str(&sample().to_json()).unwrap();
        value["cluster"]["region"] = "mars-1".into();
        assert!(error_of(&value.to_string()).contains("`cluster.region`"));
    }

    #[test]
    fn the_emulator_must_be_on_loopback() {
        assert!(is_loopback_url("http://127.0.0.1:5000"));
        assert!(is_loopback_url("http://localhost:5000/"));
        assert!(!is_loopback_url("http://10.0.0.1:5000"));
        assert!(!is_loopback_url("https://ec2.us-east-2.amazonaws.com"));
        let mut value: Value = serde_json::from_str(&sample().to_json()).unwrap();
        value["target"]["endpoint"] = "http://192.168.1.1:5000".into();
        assert!(error_of(&value.to_string()).contains("`target.endpoint`"));
    }

    #[test]
    fn userinfo_cannot_hide_the_host() {
        assert!(!is_loopback_url("http://127.0.0.1:5999@10.1.2.3/"));
        assert!(!is_loopback_url("http://localhost@10.1.2.3:5000"));
        assert!(!is_loopback_url("http://127.0.0.1\\@10.1.2.3/"));
        assert!(!is_loopback_url("http://127.0.0.1%40evil/"));
        assert!(is_loopback_url("http://[::1]:5000/"));
        assert!(is_loopback_url("http://127.0.0.2:5000"));
        assert!(!is_loopback_url("http://[::1]x:5000/"));
        assert!(!is_loopback_url("http://127.0.0.1.evil.com:5000/"));
        assert!(!is_loopback_url("http://:5000/"));
        assert!(!is_loopback_url("http://127.0.0.1:99999/"));
        let mut value: Value = serde_json::from_str(&sample().to_json()).unwrap();
        value["target"]["endpoint"] = "http://127.0.0.1:5999@10.1.2.3/".into();
        assert!(error_of(&value.to_string()).contains("`target.endpoint`"));
        value["target"] = serde_json::json!({"kind": "endpoint", "endpoint": "https://user:pw@example.com"});
        assert!(error_of(&value.to_string()).contains("user information"), "{}", error_of(&value.to_string()));
    }

    #[test]
    fn urls_are_parsed_into_host_and_port() {
        let parsed = parse_url("https://[::1]:4566/path?q").unwrap();
        assert_eq!(parsed, UrlHost { https: true, host: "::1".into(), port: Some(4566) });
        let parsed = parse_url("http://localstack/").unwrap();
        assert_eq!(parsed, UrlHost { https: false, host: "localstack".into(), port: None });
        assert!(parse_url("ftp://x").is_err());
        assert!(parse_url("http://a:1:2").is_err());
    }

    #[test]
    fn an_aws_target_has_no_other_fields() {
        let mut value: Value = serde_json::from_str(&sample().to_json()).unwrap();
        value["target"] = serde_json::json!({"kind": "aws", "endpoint": "http://127.0.0.1:5000"});
        let error = error_of(&value.to_string());
        assert!(error.contains("`target`") && error.contains("endpoint"), "{error}");
        value["target"] = serde_json::json!({"kind": "emulator", "endpoint": "http://127.0.0.1:5000", "port": 1});
        assert!(error_of(&value.to_string()).contains("unknown field `port`"));
        value["target"] = serde_json::json!({"kind": "aws"});
        assert_eq!(Context::from_json(&value.to_string()).unwrap().target, Target::Aws);
    }

    #[test]
    fn a_key_given_twice_is_an_error_with_its_path() {
        let text = sample().to_json();
        let twice = text.replacen("\"kind\": \"emulator\"", "\"kind\": \"emulator\", \"kind\": \"aws\"", 1);
        assert_ne!(twice, text);
        let error = error_of(&twice);
        assert!(error.contains("`target.kind` appears twice"), "{error}");
        let nested = text.replacen("\"masters\": [\n", "\"masters\": [\n{\"a\": 1, \"a\": 2},\n", 1);
        assert!(error_of(&nested).contains("`params.masters[0].a` appears twice"), "{}", error_of(&nested));
        let top = format!("{{\"version\": 1, {}", &text[1..]);
        assert!(error_of(&top).contains("`version` appears twice"), "{}", error_of(&top));
    }

    #[test]
    fn real_aws_needs_the_opt_in_of_this_run() {
        // The variable is read, never set, here: tests of one process share the environment.
        assert!(!aws_allowed(), "run the tests without {ALLOW_AWS_ENV}");
        assert!(matches!(Target::Aws.check_allowed(), Err(ContextError::AwsNotAllowed)));
        assert!(Target::Emulator { endpoint: "http://127.0.0.1:1".into() }.check_allowed().is_ok());
    }

    #[test]
    fn pki_validity_is_checked_with_the_rest_of_the_context() {
        let mut value: Value = serde_json::from_str(&sample().to_json()).unwrap();
        value["params"]["pki"]["leaf_days"] = 0.into();
        assert!(error_of(&value.to_string()).contains("`params.pki.leaf_days`"));
    }

    #[test]
    fn completion_is_recorded_once() {
        let mut context = sample();
        context.mark_completed("vpc");
        context.mark_completed("vpc");
        assert_eq!(context.completed, ["vpc"]);
    }
}
