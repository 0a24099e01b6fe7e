//! `rulepack schema`: the rule format as a JSON Schema (draft-07, which editors' YAML plugins
//! support), generated from the same types the loader reads, so the two cannot drift.

use crate::load::raw::RawRule;

pub fn rule_schema() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<RawRule>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
