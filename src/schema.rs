//! `rulepack schema`: the rule format as a JSON Schema (draft-07, which editors' YAML plugins
//! support), generated from the same types the loader reads and the same log sources the
//! validator checks against, so neither can drift from the compiler.
//!
//! On top of what the types give, it states what an editor should flag as the user types:
//! `field:` and `some:` take the log source's names only, a predicate holds exactly one operator
//! and a node exactly one kind (said with `dependencies` whose subschemas mark the clashing keys
//! `false`, so an editor underlines the key itself, not the whole node), and a rule has a
//! `condition` or a `correlation`. Strict validators must accept it: ajv in strict mode compiles it
//! (tests/schema.rs).

use crate::diag::Code;
use crate::load::raw::RawRule;
use crate::taxonomy::LogSource;
use crate::validate::OPERATORS;
use schemars::Schema;
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use serde_json::{Map, Value, json};

/// The keys that make a condition node one kind of node; a node holds exactly one of them.
const NODE_KINDS: &[&str] = &["all", "any", "not", "some", "field"];

/// Keys that only modify a predicate (`field:` plus one operator).
const MODIFIERS: &[&str] = &["json", "case_sensitive"];

/// The rule schema, with `field:` and `some:` limited to the names `logsources` declare (their
/// union, when there are several).
pub fn rule_schema(logsources: &[LogSource]) -> String {
    let generator = SchemaSettings::draft07()
        .with_transform(RecursiveTransform(drop_format))
        .with_transform(RecursiveTransform(drop_null_branch))
        .into_generator();
    let mut schema = generator.into_root_schema_for::<RawRule>().to_value();
    restrict_names(&mut schema, logsources);
    one_kind_per_node(&mut schema);
    condition_or_correlation(&mut schema);
    expectable_codes(&mut schema);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// schemars writes Rust number formats (`double`, `uint32`). They are not JSON Schema formats,
/// and strict validators refuse unknown formats; the range they imply stays as `minimum`.
fn drop_format(schema: &mut Schema) {
    schema.remove("format");
}

/// schemars writes an optional value as `anyOf: [T, {type: null}]`. The loader reads an explicit
/// null as an absent key, which no rule needs; without the null branch a mistake deep in a
/// condition is reported once, where it is, and not again as "must be null" on every node
/// around it. `allOf` keeps a description beside the `$ref` (draft-07 ignores `$ref` siblings).
fn drop_null_branch(schema: &mut Schema) {
    let Some(Value::Array(branches)) = schema.get("anyOf") else {
        return;
    };
    let null = json!({ "type": "null" });
    let [a, b] = branches.as_slice() else {
        return;
    };
    let kept = match (*a == null, *b == null) {
        (false, true) => a.clone(),
        (true, false) => b.clone(),
        _ => return,
    };
    schema.remove("anyOf");
    schema.insert("allOf".into(), json!([kept]));
}

fn restrict_names(schema: &mut Value, logsources: &[LogSource]) {
    let mut fields: Vec<&str> = Vec::new();
    let mut arrays: Vec<&str> = Vec::new();
    for ls in logsources {
        fields.extend(ls.fields.keys().map(String::as_str));
        arrays.extend(ls.arrays.keys().map(String::as_str));
    }
    dedup_in_order(&mut fields);
    dedup_in_order(&mut arrays);
    let names: Vec<&str> = logsources.iter().map(|l| l.name.as_str()).collect();
    let field_help = "A field of the log source (templates/logsources/<logsource>.yml).";
    for at in [
        "/definitions/RawCondition/properties/field",
        "/definitions/RawAggregation/properties/field",
        "/definitions/RawOutput/properties/field",
    ] {
        set_enum(schema, at, field_help, &fields);
    }
    set_enum(
        schema,
        "/definitions/RawCondition/properties/some",
        "Some element of this array of the log source satisfies `where`.",
        &arrays,
    );
    set_enum(
        schema,
        "/properties/logsource",
        "The neutral log source; its fields are declared in templates/logsources/<name>.yml.",
        &names,
    );
}

/// `expect_warnings` names only the codes a rule may expect, each with a reason that says
/// something (not blank), so the editor flags `W110` or an empty reason as `check` does.
fn expectable_codes(schema: &mut Value) {
    let Some(slot) = schema
        .pointer_mut("/properties/expect_warnings")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let codes: Vec<&str> = Code::EXPECTABLE.iter().map(|c| c.as_str()).collect();
    slot.insert(
        "propertyNames".into(),
        json!({ "type": "string", "enum": codes }),
    );
    slot.insert(
        "additionalProperties".into(),
        json!({ "type": "string", "pattern": "\\S" }),
    );
}

fn dedup_in_order(names: &mut Vec<&str>) {
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(*n));
}

/// Replaces the schema at `at` (a JSON pointer) by a string from `names`.
fn set_enum(schema: &mut Value, at: &str, description: &str, names: &[&str]) {
    if let Some(slot) = schema.pointer_mut(at) {
        *slot = json!({ "description": description, "type": "string", "enum": names });
    }
}

/// A condition node holds one kind (`all`, `any`, `not`, `some` + `where`, or `field` + one
/// operator). Each key present lists, in `dependencies`, the keys it excludes as `false`
/// properties: a validator then reports the excluded key at its own path, and an editor marks
/// that key ("Property contains is not allowed"). A misspelt key is already refused by
/// `additionalProperties: false`.
fn one_kind_per_node(schema: &mut Value) {
    let Some(node) = schema
        .pointer_mut("/definitions/RawCondition")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let predicate: Vec<&str> = OPERATORS.iter().chain(MODIFIERS).copied().collect();
    let structural = ["all", "any", "not", "some", "where"];
    let mut deps = Map::new();
    for kind in ["all", "any", "not"] {
        let others = NODE_KINDS
            .iter()
            .chain(&["where"])
            .chain(&predicate)
            .filter(|k| **k != kind);
        deps.insert(kind.into(), excluding(others, &[]));
    }
    let others = NODE_KINDS
        .iter()
        .chain(&predicate)
        .filter(|k| **k != "some");
    deps.insert("some".into(), excluding(others, &["where"]));
    deps.insert("where".into(), json!({ "required": ["some"] }));
    let mut field = excluding(structural.iter(), &[]);
    let one_of_them: Vec<Value> = OPERATORS
        .iter()
        .map(|op| json!({ "required": [op] }))
        .collect();
    field["anyOf"] = Value::Array(one_of_them);
    deps.insert("field".into(), field);
    for op in OPERATORS {
        let others = OPERATORS.iter().filter(|o| *o != op).chain(&structural);
        deps.insert((*op).into(), excluding(others, &["field"]));
    }
    for m in MODIFIERS {
        deps.insert((*m).into(), json!({ "required": ["field"] }));
    }
    node.insert("minProperties".into(), json!(1));
    node.insert("dependencies".into(), Value::Object(deps));
}

/// A `dependencies` subschema: `required` keys, and every key of `others` marked `false`.
fn excluding<'a>(others: impl Iterator<Item = &'a &'a str>, required: &[&str]) -> Value {
    let props: Map<String, Value> = others.map(|k| ((*k).to_string(), json!(false))).collect();
    let mut sub = json!({ "properties": props });
    if !required.is_empty() {
        sub["required"] = json!(required);
    }
    sub
}

/// A rule has a `condition` or a `correlation` (which takes no `aggregation`), never both.
fn condition_or_correlation(schema: &mut Value) {
    let Some(root) = schema.as_object_mut() else {
        return;
    };
    root.insert(
        "dependencies".into(),
        json!({
            "condition": { "properties": { "correlation": false } },
            "correlation": { "properties": { "condition": false, "aggregation": false } },
        }),
    );
    // Each branch names its key under `properties` too: ajv's strictRequired looks for a
    // required key's definition in the same schema object, and `anyOf` is checked before the
    // root's `properties` are seen.
    root.insert(
        "anyOf".into(),
        json!([
            { "required": ["condition"], "properties": { "condition": true } },
            { "required": ["correlation"], "properties": { "correlation": true } },
        ]),
    );
}
