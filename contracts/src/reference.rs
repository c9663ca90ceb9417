//! A reference to a cloud resource, as a section records it: the id AWS gave it, or, in a
//! plan, the logical name of one the plan would create. The type makes every reader of an id
//! say what a planned one means to it; the cloud core (`groundup-cloud`) is the one place that
//! does, so steps never test ids for placeholders.
//!
//! On the wire it stays the string it always was: the id, or `(new <logical>)` for a planned
//! resource. Contexts written before the type existed parse unchanged, and a plugin step of
//! contract 1 still reads and writes plain strings.

use std::borrow::Cow;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ref {
    /// The id (or ARN, or name) AWS knows the resource by.
    Known(String),
    /// A resource the plan would create, known only by its logical name. A context carries
    /// one only while it is being planned ([`crate::Context::validate`] refuses it otherwise).
    Planned(String),
}

const PLANNED_PREFIX: &str = "(new ";
const PLANNED_SUFFIX: &str = ")";

impl Ref {
    /// The id, for a resource that exists.
    pub fn known(&self) -> Option<&str> {
        match self {
            Ref::Known(id) => Some(id),
            Ref::Planned(_) => None,
        }
    }

    /// The wire form's reading: `(new <logical>)` is planned, anything else is an id.
    fn parse(text: &str) -> Ref {
        match text.strip_prefix(PLANNED_PREFIX).and_then(|rest| rest.strip_suffix(PLANNED_SUFFIX)) {
            Some(logical) => Ref::Planned(logical.to_string()),
            None => Ref::Known(text.to_string()),
        }
    }
}

/// The wire form, which is also how plans, logs and reports show it.
impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Known(id) => f.write_str(id),
            Ref::Planned(logical) => write!(f, "{PLANNED_PREFIX}{logical}{PLANNED_SUFFIX}"),
        }
    }
}

/// An existing resource's id compares equal to its reference.
impl PartialEq<str> for Ref {
    fn eq(&self, other: &str) -> bool {
        self.known() == Some(other)
    }
}

impl Serialize for Ref {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ref {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        Ok(Ref::parse(&text))
    }
}

impl JsonSchema for Ref {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Ref".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "The resource's id; in a plan, `(new <logical name>)` for one the plan would create"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_is_the_id_or_the_placeholder() {
        for (text, reference) in [
            ("vpc-0123", Ref::Known("vpc-0123".into())),
            ("(new route-table)", Ref::Planned("route-table".into())),
            ("(new x", Ref::Known("(new x".into())),
        ] {
            let json = serde_json::to_string(text).unwrap();
            assert_eq!(serde_json::from_str::<Ref>(&json).unwrap(), reference, "{text}");
            assert_eq!(serde_json::to_string(&reference).unwrap(), json);
            assert_eq!(reference.to_string(), text);
        }
        assert!(Ref::Known("vpc-1".into()) == *"vpc-1" && Ref::Planned("vpc-1".into()) != *"vpc-1");
    }

    /// The placeholder's spelling lives here alone: no shipped source elsewhere builds or tests
    /// for it, so a step can only meet a planned resource as `Ref::Planned`.
    #[test]
    fn no_shipped_source_elsewhere_spells_the_placeholder() {
        fn sources(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
                let path = entry.path();
                let name = entry.file_name();
                if path.is_dir() && name != "tests" && name != "target" {
                    sources(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    found.push(path);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut found = Vec::new();
        for dir in ["contracts/src", "steps", "runner/src"] {
            sources(&root.join(dir), &mut found);
        }
        assert!(found.len() > 50, "the workspace's sources were not found under {}", root.display());
        let spelled = format!("\"{PLANNED_PREFIX}");
        let offenders: Vec<_> = found
            .iter()
            .filter(|path| !path.ends_with("contracts/src/reference.rs"))
            .filter(|path| std::fs::read_to_string(path).unwrap().contains(&spelled))
            .collect();
        assert!(offenders.is_empty(), "placeholder strings outside the reference type: {offenders:?}");
    }
}
