//! The JSON Schema of the context, generated from the types. The checked-in copy
//! (`contracts/schema/context.schema.json`) is what plugin authors read; a test fails when the
//! two drift.

use crate::context::Context;

pub fn context_schema() -> String {
    let schema = schemars::schema_for!(Context);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Context;

    const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/context.schema.json");
    const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");

    /// `GROUNDUP_BLESS=1 cargo test -p groundup-contracts` rewrites the checked-in schema.
    #[test]
    fn checked_in_schema_matches_the_types() {
        let generated = context_schema();
        if std::env::var_os("GROUNDUP_BLESS").is_some() {
            std::fs::write(CHECKED_IN, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
        assert!(
            checked_in == generated,
            "contracts/schema/context.schema.json is out of date: run GROUNDUP_BLESS=1 cargo test -p groundup-contracts"
        );
    }

    #[test]
    fn every_example_is_a_valid_context() {
        let mut count = 0;
        for entry in std::fs::read_dir(EXAMPLES).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            Context::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            count += 1;
        }
        assert!(count >= 2, "expected example contexts in {EXAMPLES}");
    }
}
