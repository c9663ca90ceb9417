//! The contract layer's one error type, [`ContextError`]: a context, or a flag that makes one,
//! that cannot be used. It renders as one line on stderr that says what is wrong and what to
//! do; every variant is bad input (exit code 2). [`BadValue`] is why a single value does not
//! parse, the reason a `ContextError` gives beside the field or flag that held it.

/// The context document is unusable: it is empty, malformed, of another version, or holds a
/// value that does not pass validation. `field` names the JSON path of the culprit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error("the context is empty: pipe the output of `groundup init` (or of the previous step) into this step, or pass --state FILE")]
    Empty,
    #[error("the context is not valid JSON ({0}); it must be the output of `groundup init` or of a groundup step")]
    Malformed(String),
    #[error("the context has version {found}, this build understands version {expected}; re-create it with this build's `groundup init`")]
    Version { found: String, expected: u32 },
    #[error("context field `{field}`: {message}")]
    Field { field: String, message: String },
    #[error("the context has no `{section}` section: run `groundup-{step}` first (or `groundup up --from {step}`)")]
    MissingSection { section: &'static str, step: &'static str },
    #[error("the context's target is real AWS, which every run must ask for: pass --aws (or set GROUNDUP_ALLOW_AWS=1); nothing was sent")]
    AwsNotAllowed,
    #[error("cannot read the context from {path}: {message}")]
    Io { path: String, message: String },
    /// A flag's value that its row of the parameter table does not accept.
    #[error("--{flag}: {reason}")]
    Flag { flag: &'static str, reason: BadValue },
    /// A field of the spec that a step has built on, asked to change: it is `now`, `asked`
    /// was asked for, and `way` is the way forward.
    #[error(
        "`{field}` cannot change in place (`{step}` has built on it): it is {now}, asked for {asked}; \
         {way}; or make another cluster with another --name and --state; nothing was changed"
    )]
    CannotChange { field: String, step: &'static str, now: String, asked: String, way: String },
}

impl ContextError {
    pub fn field(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        ContextError::Field { field: field.into(), message: message.to_string() }
    }
}

/// Why one value, as a command line or a context spells it, does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadValue {
    #[error("`{0}` is an address, not a range; did you mean {0}/32?")]
    AddressNotRange(String),
    #[error("`{0}` is not a CIDR range (like 172.31.0.0/16)")]
    NotRange(String),
    #[error("`{0}` is not a port or FROM-TO port range")]
    NotPortRange(String),
    #[error("`{0}` is not a Kubernetes release like {latest} (v1.MINOR.PATCH)", latest = crate::kubernetes::DEFAULT_VERSION)]
    NotRelease(String),
    #[error("{0} is older than v1.30, the oldest release groundup sets up")]
    OldRelease(String),
    #[error("`{0}` is not an http:// or https:// URL")]
    NotHttp(String),
    #[error("`{0}` holds user information (`...@`), which hides where it goes; give host and port only")]
    UserInformation(String),
    #[error("`{url}`: `{authority}` is not a plain host[:port]")]
    NotPlainHost { url: String, authority: String },
    #[error("`{0}`: unclosed `[`")]
    UnclosedBracket(String),
    #[error("`{url}`: `{address}` is not an IPv6 address")]
    NotIpv6 { url: String, address: String },
    #[error("`{url}`: `{after}` after the address")]
    AfterAddress { url: String, after: String },
    #[error("`{0}` has no valid host")]
    NoHost(String),
    #[error("`{url}`: `{port}` is not a port")]
    NotPort { url: String, port: String },
    /// Not reached from the command line, where clap offers only the table's names.
    #[error("`{0}` is not one of the names this flag takes")]
    UnknownName(String),
    #[error("it needs at least one step")]
    NoSteps,
    /// A number or an address that does not parse, with the parser's reason.
    #[error("`{text}`: {reason}")]
    Unparsed { text: String, reason: String },
}
