//! Record shapes: detected per record and normalised to the Graph `directoryAudit` shape.

use super::SkipReason;
use super::bounded;
use crate::eval::map_member;
use serde_json::{Map, Value};

/// The record shapes an export can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Detected per record from its keys.
    Auto,
    /// A. Microsoft Graph `directoryAudit`.
    Graph,
    /// B. Diagnostic-settings export (Event Hub, storage): the Graph record under `properties`.
    Diagnostic,
    /// C. Log Analytics / Sentinel `AuditLogs` row.
    LogAnalytics,
}

/// Graph keys that mark shape A.
const GRAPH_KEYS: &[&str] = &[
    "activityDisplayName",
    "activityDateTime",
    "initiatedBy",
    "targetResources",
    "loggedByService",
    "operationType",
    "additionalDetails",
];

/// Log Analytics column → Graph key. `dynamic` columns may arrive as JSON text.
const LA_COLUMNS: &[(&str, &str, bool)] = &[
    ("ActivityDisplayName", "activityDisplayName", false),
    ("InitiatedBy", "initiatedBy", true),
    ("TargetResources", "targetResources", true),
    ("AdditionalDetails", "additionalDetails", true),
    ("LoggedByService", "loggedByService", false),
    ("Category", "category", false),
    ("Result", "result", false),
    ("ResultReason", "resultReason", false),
    ("CorrelationId", "correlationId", false),
    ("Id", "id", false),
    ("AADOperationType", "operationType", false),
    ("ActivityDateTime", "activityDateTime", false),
];

/// Columns that mark shape C besides those above.
const LA_ONLY: &[&str] = &["TimeGenerated", "OperationName"];

/// Normalises one record to the Graph `directoryAudit` shape.
pub fn normalise(v: Value, shape: Shape) -> Result<Value, (SkipReason, String)> {
    let map = match v {
        Value::Object(m) => m,
        other => {
            return Err((
                SkipReason::NotObject,
                format!("a JSON {}", json_kind(&other)),
            ));
        }
    };
    let shape = match shape {
        Shape::Auto => detect(&map).ok_or_else(|| {
            // Keys are the record's text: a 40 MB key must not be kept (nor printed) whole.
            let keys: Vec<String> = map.keys().take(6).map(|k| clip(k, 40)).collect();
            (
                SkipReason::UnknownShape,
                format!(
                    "neither a Graph record, a diagnostic-settings record nor a Log Analytics row (keys: {})",
                    if keys.is_empty() {
                        "none".to_string()
                    } else {
                        keys.join(", ")
                    }
                ),
            )
        })?,
        s => s,
    };
    match shape {
        Shape::Auto | Shape::Graph => Ok(Value::Object(map)),
        Shape::Diagnostic => from_diagnostic(map),
        Shape::LogAnalytics => from_log_analytics(map),
    }
}

/// Looks keys up one by one ([`map_member`]): a Graph record lacks most of the 16 keys asked for
/// here, and hashing each with the map's SipHash was a twentieth of `simulate`'s time.
fn detect(map: &Map<String, Value>) -> Option<Shape> {
    let has = |k: &str| map_member(map, k).is_some();
    if matches!(
        map_member(map, "properties"),
        Some(Value::Object(_) | Value::String(_))
    ) {
        Some(Shape::Diagnostic)
    } else if LA_COLUMNS
        .iter()
        .map(|(c, _, _)| *c)
        .chain(LA_ONLY.iter().copied())
        .any(has)
    {
        Some(Shape::LogAnalytics)
    } else if GRAPH_KEYS.iter().any(|k| has(k)) {
        Some(Shape::Graph)
    } else {
        None
    }
}

fn from_diagnostic(mut map: Map<String, Value>) -> Result<Value, (SkipReason, String)> {
    let mut props = match map.remove("properties") {
        Some(Value::Object(p)) => p,
        Some(Value::String(s)) => match bounded::parse(s.as_bytes()) {
            Ok(Value::Object(p)) => p,
            _ => {
                return Err((
                    SkipReason::UnknownShape,
                    "diagnostic-settings record whose `properties` text is not a JSON object"
                        .into(),
                ));
            }
        },
        _ => {
            return Err((
                SkipReason::UnknownShape,
                "not a diagnostic-settings record: no `properties` object".into(),
            ));
        }
    };
    for (graph, envelope) in [
        ("activityDateTime", "time"),
        ("activityDisplayName", "operationName"),
    ] {
        if props.get(graph).is_none_or(Value::is_null)
            && let Some(v) = map.remove(envelope)
        {
            props.insert(graph.to_string(), v);
        }
    }
    Ok(Value::Object(props))
}

fn from_log_analytics(mut map: Map<String, Value>) -> Result<Value, (SkipReason, String)> {
    let mut out = Map::new();
    for (column, key, dynamic) in LA_COLUMNS {
        if let Some(mut v) = map.remove(*column) {
            if *dynamic
                && let Value::String(s) = &v
                && let Ok(decoded @ (Value::Object(_) | Value::Array(_))) =
                    bounded::parse(s.as_bytes())
            {
                v = decoded;
            }
            out.insert(key.to_string(), v);
        }
    }
    for (graph, column) in [
        ("activityDateTime", "TimeGenerated"),
        ("activityDisplayName", "OperationName"),
    ] {
        if out.get(graph).is_none_or(Value::is_null)
            && let Some(v) = map.remove(column)
        {
            out.insert(graph.to_string(), v);
        }
    }
    if out.is_empty() {
        return Err((
            SkipReason::UnknownShape,
            "not a Log Analytics AuditLogs row: none of its columns".into(),
        ));
    }
    Ok(Value::Object(out))
}

/// `s` cut to at most `max` characters (on a character boundary), marked with `…` when cut.
pub(super) fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The records of an envelope (`{"records": [...]}`, `{"value": [...], "@odata.context": …}`),
/// or `None` when the object is not one.
pub(super) fn envelope(v: &mut Value) -> Option<(&'static str, Vec<Value>)> {
    let Value::Object(map) = v else { return None };
    let key = ["records", "value"]
        .into_iter()
        .find(|k| matches!(map.get(*k), Some(Value::Array(_))))?;
    let only_envelope = map
        .keys()
        .all(|k| k == key || (key == "value" && k.starts_with("@odata.")));
    if !only_envelope {
        return None;
    }
    match map.remove(key) {
        Some(Value::Array(items)) => Some((key, items)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_detected_and_normalised() {
        let graph = serde_json::json!({"activityDisplayName": "A", "activityDateTime": "2023-01-01T00:00:00Z"});
        assert_eq!(normalise(graph.clone(), Shape::Auto), Ok(graph.clone()));
        let diag = serde_json::json!({"time": "2023-01-01T00:00:00Z", "operationName": "A", "properties": {"activityDisplayName": "A"}});
        assert_eq!(normalise(diag, Shape::Auto), Ok(graph.clone()));
        let la = serde_json::json!({"TimeGenerated": "2023-01-01T00:00:00Z", "ActivityDisplayName": "A", "InitiatedBy": "{\"user\":{\"id\":\"u\"}}", "Type": "AuditLogs"});
        let mut want = graph.clone();
        want["initiatedBy"] = serde_json::json!({"user": {"id": "u"}});
        let got = normalise(la, Shape::Auto).unwrap();
        assert_eq!(got["initiatedBy"], want["initiatedBy"]);
        assert_eq!(got["activityDateTime"], want["activityDateTime"]);
        assert_eq!(
            normalise(serde_json::json!({"foo": 1}), Shape::Auto)
                .unwrap_err()
                .0,
            SkipReason::UnknownShape
        );
        assert_eq!(
            normalise(serde_json::json!([1]), Shape::Auto)
                .unwrap_err()
                .0,
            SkipReason::NotObject
        );
        assert_eq!(
            normalise(
                serde_json::json!({"activityDisplayName": "A"}),
                Shape::Diagnostic
            )
            .unwrap_err()
            .0,
            SkipReason::UnknownShape
        );
    }
}
