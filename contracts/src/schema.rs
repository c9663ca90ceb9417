//! The JSON Schemas of the context and of `groundup status --json`, generated from the types.
//! The checked-in copies (`contracts/schema/context.schema.json`, `status.schema.json`) are what
//! plugin authors and scripts read; a test fails when they drift.

use schemars::JsonSchema;

use crate::context::Context;
use crate::status::Status;

pub fn context_schema() -> String {
    schema_of::<Context>()
}

pub fn status_schema() -> String {
    schema_of::<Status>()
}

fn schema_of<T: JsonSchema>() -> String {
    let schema = schemars::schema_for!(T);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Context;

    const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/context.schema.json");
    const STATUS_CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/status.schema.json");
    const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");

    /// `GROUNDUP_BLESS=1 cargo test --workspace --lib schema` rewrites the checked-in schemas.
    fn assert_checked_in(path: &str, generated: &str) {
        if std::env::var_os("GROUNDUP_BLESS").is_some() {
            std::fs::write(path, generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "{path} is out of date: run GROUNDUP_BLESS=1 cargo test --workspace --lib schema"
        );
    }

    #[test]
    fn checked_in_schema_matches_the_types() {
        assert_checked_in(CHECKED_IN, &context_schema());
    }

    #[test]
    fn checked_in_status_schema_matches_the_types() {
        assert_checked_in(STATUS_CHECKED_IN, &status_schema());
    }

    /// Each example parses as a context and is valid against the JSON Schema (the generated one,
    /// which the test above keeps equal to the checked-in one), as a plugin in another language
    /// would check it.
    #[test]
    fn every_example_is_a_valid_context() {
        let schema: serde_json::Value = serde_json::from_str(&context_schema()).unwrap();
        let validator = jsonschema::validator_for(&schema).expect("the checked-in schema is a JSON Schema");
        let mut sections = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(EXAMPLES).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            Context::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let example: serde_json::Value = serde_json::from_str(&text).unwrap();
            let errors: Vec<String> =
                validator.iter_errors(&example).map(|e| format!("{e} at {}", e.instance_path())).collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
            sections.extend(example.as_object().unwrap().keys().cloned());
        }
        for section in ["vpc", "compute", "ca", "certs", "kubeconfig", "encryption", "bundles", "plan"] {
            assert!(sections.contains(section), "no example shows the `{section}` section");
        }
    }

    #[test]
    fn the_schema_refuses_what_the_types_refuse() {
        let schema: serde_json::Value = serde_json::from_str(&context_schema()).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let mut example: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{EXAMPLES}/03-infra.json")).unwrap()).unwrap();
        assert!(validator.is_valid(&example));
        example["params"]["pki"]["layout"] = "flat".into();
        assert!(!validator.is_valid(&example), "an unknown layout passed the schema");
    }
}
