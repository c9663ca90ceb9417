use std::fmt::Display;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use groundup_contracts::context::parse_url;
use groundup_contracts::Target;
use groundup_runtime::{RuntimeError, StepError};

/// What can go wrong talking to AWS, with enough detail to act on.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("{action} failed: {code}: {message}")]
    Api { action: String, code: String, message: String },
    /// `detail` is the root cause, without the SDK's wrappers ("dispatch failure: io error").
    #[error("{action} could not reach the AWS API: {} (cause: {detail})", unreachable_reason(detail))]
    Unreachable { action: String, detail: String },
    #[error("found {} {kind}s tagged as this cluster's `{logical}`: {}", ids.len(), ids.join(", "))]
    Ambiguous { kind: String, logical: String, ids: Vec<String> },
    #[error("{kind} {id}: {} is {}, the context asks for {}; it cannot change in place: {}", refused.field, refused.now, refused.wanted, refused.way_forward)]
    Immutable { kind: &'static str, id: String, refused: Box<Immutable> },
    #[error("a {kind} named `{name}` exists but is not tagged as this cluster's `{logical}`; delete or rename it")]
    Foreign { kind: &'static str, name: String, logical: String },
    #[error("{kind} {id} vanished while the step ran")]
    Vanished { kind: &'static str, id: String },
    #[error("AWS answered without the {what} of `{logical}`")]
    Incomplete { logical: String, what: &'static str },
    /// A parameter asks for what the cloud does not have (an image that does not exist): the
    /// user fixes `field` (exit 2).
    #[error("{message}; check {field}")]
    BadParam { field: &'static str, message: String },
    /// A resource waited for reached a state it never leaves for the one wanted.
    #[error("{kind} {id} is {state} and will not become {wanted}")]
    NeverReady { kind: &'static str, id: String, state: String, wanted: &'static str },
    /// A wait ran out of patience.
    #[error("gave up waiting for {what} after {seconds}s; still pending: {}", left.join(", "))]
    TimedOut { what: String, seconds: u64, left: Vec<String> },
    /// What the state file records of the nodes is not what the cloud has.
    #[error("the cloud does not confirm where the nodes are, so nothing was sent: {}", mismatches.join("; "))]
    Unconfirmed { mismatches: Vec<String> },
    /// The cluster's key pair is in the cloud but its private key is not on disk.
    #[error("key pair {name} exists but its private key {path} is gone")]
    KeyLost { name: String, path: String },
    /// A local failure of the runtime's while a cloud step works: a create the journal could
    /// not record first (so it was not sent), a file or directory of the cluster's (the SSH
    /// key's directory). Its exit code is the runtime's (`RuntimeError::is_bad_input`).
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The cluster's SSH key could not be made, read or written: a
    /// `groundup_cluster::keys::KeyError`, boxed because that crate sits above this one (it
    /// converts with `?`). A failure while working (exit 1).
    #[error("{0}")]
    SshKey(Box<dyn std::error::Error + Send + Sync>),
    /// Resources a teardown could not list or delete; the rest went.
    #[error("teardown incomplete, {} could not be listed or deleted ({}): {}", failures.len(), if *deleting { "everything else was deleted" } else { "the rest is listed above" }, failures.join("; "))]
    TeardownIncomplete { failures: Vec<String>, deleting: bool },
    #[error(transparent)]
    Context(#[from] groundup_contracts::ContextError),
}

impl CloudError {
    pub fn code(&self) -> Option<&str> {
        match self {
            CloudError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the cloud answered that a resource the call names does not exist
    /// (`InvalidSubnetID.NotFound`, `TargetGroupNotFound`, ...). What a step works with comes
    /// from the context, so for a step one that has gone is a resource the context records
    /// (deleted by hand, or gone with an emulator that restarted empty); for a teardown it is
    /// one already deleted.
    pub fn is_gone(&self) -> bool {
        self.code().is_some_and(|code| code.ends_with("NotFound"))
    }

    /// Turns the error into the step's error, with a hint that fits the case.
    pub fn into_step_error(self, target: &Target) -> StepError {
        if let CloudError::Context(e) = self {
            return e.into();
        }
        match self {
            // The way forward is in the message; the context asks for what cannot be.
            CloudError::Immutable { .. } => {
                return StepError { message: format!("{self}; nothing was changed"), hint: None, bad_input: true }
            }
            CloudError::BadParam { .. } => return StepError { message: self.to_string(), hint: None, bad_input: true },
            CloudError::Runtime(e) if e.is_bad_input() => return e.into(),
            _ => {}
        }
        let hint = match &self {
            CloudError::Unreachable { .. } => unreachable_hint(target),
            CloudError::Vanished { .. } => {
                "something else is changing the cluster's resources; run the step again".into()
            }
            CloudError::Ambiguous { .. } => {
                "delete the extra ones (or remove their groundup:* tags) and run the step again".to_string()
            }
            CloudError::Api { code, .. } if code.contains("UnauthorizedOperation") || code.contains("AuthFailure") => {
                "the credentials in use lack this permission; check the AWS profile".to_string()
            }
            CloudError::Unconfirmed { .. } => "start the instances or run `groundup up` to record them again".into(),
            CloudError::KeyLost { .. } => {
                "delete the key pair (`groundup down --yes`, or aws ec2 delete-key-pair) to make a new one".into()
            }
            _ if self.is_gone() => "a resource the context records no longer exists (deleted by hand, or gone with an \
                emulator that restarted empty): `groundup up` runs the steps before this one again, which make it \
                anew, then this one"
                .into(),
            _ => "nothing was lost: fix the cause and run the step again; it resumes from what exists".to_string(),
        };
        StepError::new(self.to_string()).with_hint(hint)
    }
}

/// A field that differs and cannot change in place, with the way forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Immutable {
    pub field: &'static str,
    pub now: String,
    pub wanted: String,
    /// What the user can do, e.g. "delete it (`groundup down --yes`) or set params.vpc_cidr to match".
    pub way_forward: String,
}

impl Immutable {
    /// The usual case: the field comes from a parameter, so the way forward is to delete the
    /// resource or to ask for what it has.
    pub fn param(field: &'static str, now: impl Display, wanted: impl Display, param: &str) -> Self {
        Immutable {
            field,
            now: now.to_string(),
            wanted: wanted.to_string(),
            way_forward: format!("delete it (`groundup down --yes`, then `groundup up`) or set {param} to match"),
        }
    }
}

/// `.api("CreateVpc")` on an SDK call's result turns its error into a [`CloudError`].
pub trait AwsResultExt<T> {
    fn api(self, action: &str) -> Result<T, CloudError>;
}

impl<T, E, R> AwsResultExt<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    fn api(self, action: &str) -> Result<T, CloudError> {
        self.map_err(|e| match &e {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
                CloudError::Unreachable { action: action.into(), detail: root_cause(&e) }
            }
            _ => CloudError::Api {
                action: action.into(),
                code: e.code().unwrap_or("Unknown").to_string(),
                message: e.message().map(str::to_string).unwrap_or_else(|| error_chain(&e)),
            },
        })
    }
}

/// `.answered(logical)` on what a create call returns (the created resource, optional in the
/// SDK's types): the resource, or the error that AWS answered without it.
pub trait Answered<T> {
    fn answered(self, logical: &str) -> Result<T, CloudError>;
}

impl<T> Answered<T> for Option<T> {
    fn answered(self, logical: &str) -> Result<T, CloudError> {
        self.ok_or_else(|| CloudError::Incomplete { logical: logical.into(), what: "description" })
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Why a connection failed, in words.
fn unreachable_reason(cause: &str) -> &'static str {
    let cause = cause.to_lowercase();
    if cause.contains("refused") {
        "nothing answers at that address (connection refused)"
    } else if cause.contains("timed out") || cause.contains("timeout") {
        "it did not answer in time"
    } else if cause.contains("dns") || cause.contains("lookup") || cause.contains("resolve") {
        "its host name does not resolve"
    } else if cause.contains("certificate") || cause.contains("tls") {
        "the TLS handshake failed"
    } else {
        "the connection failed"
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The endpoint stays the context's: a new emulator must listen on the recorded port, or the
/// step would fail the same way again.
fn unreachable_hint(target: &Target) -> String {
    match target {
        Target::Emulator { endpoint } => {
            let port =
                parse_url(endpoint).ok().and_then(|url| url.port).map_or(String::new(), |p| format!(" --port {p}"));
            format!(
                "is the emulator at {endpoint} running? If it stopped, its resources went with it: `groundup emulator start{port}` \
                 (with --dir DIR if it was not started from .groundup) starts one on the same port; then run the step again"
            )
        }
        Target::Endpoint { endpoint } => {
            format!("is the endpoint {endpoint} running? Start it, then run the step again")
        }
        Target::Aws => "check the network connection and the region, then run the step again".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_emulator_gets_a_hint_for_its_own_port() {
        let error = CloudError::Unreachable { action: "DescribeVpcs".into(), detail: "refused".into() };
        let target = Target::Emulator { endpoint: "http://127.0.0.1:5999".into() };
        let message = error.into_step_error(&target).to_string();
        assert!(message.contains("`groundup emulator start --port 5999`"), "{message}");
    }

    /// What asks the user to fix an input exits 2, naming the field; what happened in the
    /// cloud exits 1 with a way forward.
    #[test]
    fn a_parameter_the_cloud_lacks_is_bad_input_and_a_cloud_failure_is_not() {
        let target = Target::Emulator { endpoint: "http://127.0.0.1:5999".into() };
        let missing = CloudError::BadParam { field: "params.image.id", message: "image ami-1 does not exist".into() };
        let error = missing.into_step_error(&target);
        assert!(error.bad_input && error.to_string().contains("check params.image.id"), "{error}");
        let immutable = Immutable::param("cidr", "10.0.0.0/16", "10.1.0.0/16", "params.vpc_cidr");
        let refused = CloudError::Immutable { kind: "VPC", id: "vpc-1".into(), refused: Box::new(immutable) };
        assert!(refused.into_step_error(&target).bad_input);
        for failure in [
            CloudError::TimedOut { what: "instances to run".into(), seconds: 600, left: vec!["i-1".into()] },
            CloudError::NeverReady { kind: "instance", id: "i-1".into(), state: "stopped".into(), wanted: "running" },
            CloudError::KeyLost { name: "k8s".into(), path: "ssh/k8s.id_ed25519".into() },
        ] {
            let error = failure.into_step_error(&target);
            assert!(!error.bad_input && error.hint.is_some(), "{error}");
        }
    }

    /// A resource the cloud does not know, whichever API says so, is gone and `up` makes it
    /// again; another failure of a call is not.
    #[test]
    fn a_resource_the_cloud_does_not_know_is_gone_and_up_makes_it_again() {
        let target = Target::Emulator { endpoint: "http://127.0.0.1:5999".into() };
        let api = |code: &str| CloudError::Api { action: "Call".into(), code: code.into(), message: "m".into() };
        for code in ["InvalidSubnetID.NotFound", "InvalidRouteTableID.NotFound", "TargetGroupNotFound"] {
            assert!(api(code).is_gone(), "{code}");
            let error = api(code).into_step_error(&target);
            assert!(!error.bad_input && error.to_string().contains("`groundup up` runs the steps before"), "{error}");
        }
        let local = CloudError::Runtime(RuntimeError::NotSaved("disk full".into()));
        for other in [api("InvalidParameterValue"), api("DependencyViolation"), local] {
            assert!(!other.is_gone(), "{other}");
        }
    }

    /// A connection error reads as what failed and why, the cause after, no SDK wrappers.
    #[test]
    fn an_unreachable_api_is_explained_in_words() {
        let error = CloudError::Unreachable {
            action: "DescribeVpcs".into(),
            detail: "Connection refused (os error 111)".into(),
        };
        assert_eq!(
            error.to_string(),
            "DescribeVpcs could not reach the AWS API: nothing answers at that address (connection refused) (cause: Connection refused (os error 111))"
        );
        assert_eq!(unreachable_reason("operation timed out"), "it did not answer in time");
    }
}
