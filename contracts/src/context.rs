//! The context document: its top-level shape, its version, and how it is read and written.
//!
//! Top-level keys this build does not know are kept verbatim and written back, so that a
//! third-party step plugin can add a section that survives every other step.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::LazyLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ContextError;
use crate::infra::{ComputeSection, NlbSection};
use crate::network::{DhcpSection, IgwSection, RoutesSection, SgSection, SubnetSection, VpcSection};
use crate::params::Params;
use crate::pki::{CaSection, CertsSection};
use crate::plan::{JournalEntry, PlanLog, PlanSection};
use crate::teardown::TeardownSection;

pub const CONTEXT_VERSION: u32 = 1;

/// The course's sections in the course's order: what `groundup up` runs unless told otherwise.
pub const DEFAULT_PIPELINE: &[&str] =
    &["vpc", "dhcp", "subnet", "igw", "routes", "sg", "nlb", "compute", "ca", "certs"];

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
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// The local emulator that `groundup emulator start` runs on loopback.
    Emulator { endpoint: String },
    /// An AWS-compatible endpoint the user runs (their own moto, LocalStack, ...).
    Endpoint { endpoint: String },
    /// Real AWS, through the standard credential chain. Only `init --aws` selects it.
    Aws,
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
}

/// The sections a step can depend on, and the step that produces each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Vpc,
    Dhcp,
    Subnet,
    Igw,
    Routes,
    Sg,
    Nlb,
    Compute,
    Ca,
}

impl Section {
    pub fn key(self) -> &'static str {
        match self {
            Section::Vpc => "vpc",
            Section::Dhcp => "dhcp",
            Section::Subnet => "subnet",
            Section::Igw => "igw",
            Section::Routes => "routes",
            Section::Sg => "sg",
            Section::Nlb => "nlb",
            Section::Compute => "compute",
            Section::Ca => "ca",
        }
    }

    /// Each section is named after the step that writes it.
    pub fn step(self) -> &'static str {
        self.key()
    }

    pub fn missing(self) -> ContextError {
        ContextError::MissingSection { section: self.key(), step: self.step() }
    }
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
        let value: Value = serde_json::from_str(text).map_err(|e| ContextError::Malformed(e.to_string()))?;
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
        for (i, step) in self.pipeline.iter().enumerate() {
            check_step_name(&format!("pipeline[{i}]"), step)?;
            if self.pipeline[..i].contains(step) {
                return Err(ContextError::field(
                    format!("pipeline[{i}]"),
                    format!("`{step}` is in the pipeline twice"),
                ));
            }
        }
        Ok(())
    }

    /// Writes the context to a temporary file beside `path` and renames it over, so that a
    /// crash leaves either the old document or the new one, never half of one. A crash in the
    /// middle leaves a `.<name>.*.partial` file, which [`partial_saves`] finds.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let (dir, prefix) = partial_prefix(path);
        let mut file = tempfile::Builder::new().prefix(&prefix).suffix(PARTIAL).tempfile_in(dir)?;
        file.write_all(self.to_json().as_bytes())?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Whether this context is being passed through the steps by `--plan`.
    pub fn planning(&self) -> bool {
        self.plan.is_some()
    }

    /// Adds what a step planned to the context's plan (a no-op outside a plan).
    pub fn add_plan(&mut self, log: &PlanLog) {
        if let Some(plan) = self.plan.as_mut() {
            plan.resources.extend(log.take());
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
    /// cloud step must run again. Local files (PKI, SSH key) are not cloud resources.
    pub fn forget_cloud_resources(&mut self) {
        const CLOUD_STEPS: &[&str] = &["vpc", "dhcp", "subnet", "igw", "routes", "sg", "nlb", "compute"];
        (self.vpc, self.dhcp, self.subnet, self.igw, self.routes, self.sg, self.nlb) =
            (None, None, None, None, None, None, None);
        self.compute = None;
        self.completed.retain(|step| !CLOUD_STEPS.contains(&step.as_str()));
    }

    /// After the PKI directory is deleted: the ca and certs steps must run again.
    pub fn forget_pki(&mut self) {
        (self.ca, self.certs) = (None, None);
        self.completed.retain(|step| step != "ca" && step != "certs");
    }
}

const PARTIAL: &str = ".partial";

fn partial_prefix(path: &Path) -> (&Path, String) {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    (dir, format!(".{name}."))
}

/// What saves of `path` that were killed midway left behind.
pub fn partial_saves(path: &Path) -> Vec<std::path::PathBuf> {
    let (dir, prefix) = partial_prefix(path);
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            name.starts_with(&prefix) && name.ends_with(PARTIAL)
        })
        .collect()
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
    match target {
        Target::Emulator { endpoint } if !is_loopback_url(endpoint) => Err(ContextError::field(
            "target.endpoint",
            format!("the emulator endpoint `{endpoint}` is not on loopback; use --endpoint for other addresses"),
        )),
        Target::Endpoint { endpoint } if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) => {
            Err(ContextError::field("target.endpoint", format!("`{endpoint}` is not an http:// or https:// URL")))
        }
        _ => Ok(()),
    }
}

pub fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let host = rest.split('/').next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(host, "localhost" | "[::1]") || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
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
    fn completion_is_recorded_once() {
        let mut context = sample();
        context.mark_completed("vpc");
        context.mark_completed("vpc");
        assert_eq!(context.completed, ["vpc"]);
    }
}
