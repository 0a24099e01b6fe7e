//! What the user wrote, as the YAML gives it: permissive types with a position on every value.
//! Everything downstream takes the validated `model::Rule` instead.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A position-carrying value; the schema shows only the inner type.
pub type S<T> = Spanned<T>;

/// `E` is what a test event is read into: the whole record (`serde_json::Value`) for the commands
/// that run tests, only its `EventShape` for those that do not (building the events is most of
/// the cost of reading a rule).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound(deserialize = "E: Deserialize<'de>"))]
#[schemars(
    title = "rulepack rule",
    description = "One vendor-neutral detection rule.",
    rename = "RawRule"
)]
pub struct RawRule<E = serde_json::Value> {
    /// Immutable UUID of the rule; never reuse or change it.
    #[schemars(
        with = "String",
        regex(
            pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
        )
    )]
    pub id: S<String>,
    /// Slug used for file names: lower case letters, digits and underscores.
    #[schemars(with = "String", regex(pattern = r"^[a-z][a-z0-9_]{2,59}$"))]
    pub name: S<String>,
    #[schemars(with = "String")]
    pub title: S<String>,
    #[schemars(with = "String")]
    pub description: S<String>,
    /// experimental, test or stable.
    #[schemars(with = "Status")]
    pub status: S<String>,
    /// informational, low, medium or high; justify it in the description.
    #[schemars(with = "SeverityName")]
    pub severity: S<String>,
    #[schemars(with = "String")]
    pub author: S<String>,
    /// Creation date, YYYY-MM-DD.
    #[schemars(with = "String", regex(pattern = r"^\d{4}-\d{2}-\d{2}$"))]
    pub date: S<String>,
    /// Date of the last logic change, YYYY-MM-DD.
    #[schemars(with = "Option<String>")]
    #[serde(default)]
    pub modified: Option<S<String>>,
    /// Semantic version a.b.c; bump it when the logic changes.
    #[schemars(with = "String", regex(pattern = r"^\d+\.\d+\.\d+$"))]
    pub version: S<String>,
    #[schemars(with = "Vec<String>")]
    #[serde(default)]
    pub references: Vec<S<String>>,
    pub attack: RawAttack,
    /// TRR procedure ids, e.g. TRR0021.AZR.A.
    #[schemars(with = "Vec<String>")]
    #[serde(default)]
    pub trr: Vec<S<String>>,
    /// Azure Threat Research Matrix ids, e.g. AZT502.3.
    #[schemars(with = "Vec<String>")]
    #[serde(default)]
    pub atrm: Vec<S<String>>,
    #[schemars(with = "Vec<String>")]
    #[serde(default)]
    pub falsepositives: Vec<S<String>>,
    /// Names of this rule's no_match tests that its Sigma output matches all the same (a
    /// documented approximation); the Sigma file names them, and the pySigma conversion proof
    /// accepts an over-match on exactly these tests.
    #[schemars(with = "Vec<String>")]
    #[serde(default)]
    pub sigma_over_matches: Vec<S<String>>,
    /// Warnings this rule knowingly carries: code (W100, W101, W102, W103) -> why. The build
    /// stays quiet about them and warns (W104) when one no longer happens.
    #[schemars(with = "IndexMap<String, String>")]
    #[serde(default)]
    pub expect_warnings: IndexMap<S<String>, S<String>>,
    /// Named lists a team may override per SIEM (a KQL `let`, a Splunk macro, a Sigma placeholder).
    #[schemars(with = "IndexMap<String, RawParameter>")]
    #[serde(default)]
    pub parameters: IndexMap<String, S<RawParameter>>,
    /// The neutral log source; its fields are declared in templates/logsources/<name>.yml.
    #[schemars(with = "String")]
    pub logsource: S<String>,
    /// What one record must satisfy. A rule has this or `correlation`, not both.
    #[schemars(with = "Option<RawCondition>")]
    #[serde(default)]
    pub condition: Option<S<RawCondition>>,
    /// Instead of `condition`: an order, or an absence, between other rules' matches.
    #[schemars(with = "Option<RawCorrelation>")]
    #[serde(default)]
    pub correlation: Option<S<RawCorrelation>>,
    #[serde(default)]
    #[schemars(with = "Option<RawAggregation>")]
    pub aggregation: Option<S<RawAggregation>>,
    pub schedule: RawSchedule,
    /// Output columns, in order: column name -> what it holds.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, RawOutput>")]
    pub output: IndexMap<String, S<RawOutput>>,
    #[serde(default)]
    #[schemars(with = "Vec<RawEntity>")]
    pub entities: Vec<S<RawEntity>>,
    /// Events in Microsoft Graph directoryAudit shape with the expected verdict.
    #[serde(default)]
    #[schemars(with = "Vec<RawTest>")]
    pub tests: Vec<S<RawTest<E>>>,
}

#[derive(Debug, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum Status {
    Experimental,
    Test,
    Stable,
    Deprecated,
}

#[derive(Debug, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum SeverityName {
    Informational,
    Low,
    Medium,
    High,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAttack {
    /// ATT&CK tactic ids (TA0003) or names (persistence).
    #[schemars(with = "Vec<String>")]
    pub tactics: Vec<S<String>>,
    /// ATT&CK technique ids, T#### or T####.###.
    #[schemars(with = "Vec<String>")]
    pub techniques: Vec<S<String>>,
}

/// A condition node: exactly one of all / any / not / some+where / field+operator.
#[derive(Debug, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    /// Every sub-condition holds.
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawCondition>>")]
    pub all: Option<S<Vec<S<RawCondition>>>>,
    /// At least one sub-condition holds.
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawCondition>>")]
    pub any: Option<S<Vec<S<RawCondition>>>>,
    /// The sub-condition does not hold.
    #[serde(default)]
    #[schemars(with = "Option<Box<RawCondition>>")]
    pub not: Option<Box<S<RawCondition>>>,
    /// Some element of this array (target, modified, detail) satisfies `where`.
    #[schemars(with = "Option<String>")]
    #[serde(default)]
    pub some: Option<S<String>>,
    #[serde(default, rename = "where")]
    #[schemars(with = "Option<Box<RawCondition>>")]
    pub where_: Option<Box<S<RawCondition>>>,
    /// A neutral field name from the log source taxonomy.
    #[schemars(with = "Option<String>")]
    #[serde(default)]
    pub field: Option<S<String>>,
    /// Decode the field's JSON text and follow this path: keys (strings) and indices (numbers).
    #[schemars(with = "Option<Vec<serde_json::Value>>")]
    #[serde(default)]
    pub json: Option<S<Vec<S<serde_json::Value>>>>,
    #[schemars(with = "Option<String>")]
    #[serde(default)]
    pub equals: Option<S<String>>,
    #[schemars(with = "Option<Vec<String>>")]
    #[serde(default)]
    pub one_of: Option<S<Vec<S<String>>>>,
    /// Equals one of the values of the named rule parameter.
    #[schemars(with = "Option<String>")]
    #[serde(default)]
    pub in_parameter: Option<S<String>>,
    #[schemars(with = "Option<String>")]
    #[serde(default)]
    pub contains: Option<S<String>>,
    #[schemars(with = "Option<String>")]
    #[serde(default)]
    pub starts_with: Option<S<String>>,
    #[schemars(with = "Option<String>")]
    #[serde(default)]
    pub ends_with: Option<S<String>>,
    /// A regular expression (RE2 / PCRE common subset), unanchored.
    #[schemars(with = "Option<String>")]
    #[serde(default)]
    pub regex: Option<S<String>>,
    /// true: the value is present and not empty; false: absent, null or empty.
    #[schemars(with = "Option<bool>")]
    #[serde(default)]
    pub exists: Option<S<bool>>,
    /// On a `.new` json_text field with a `json:` path to an array: `true` (some element is in
    /// the new array and not in the old one), or a value or list of values such an element equals.
    #[schemars(with = "Option<serde_json::Value>")]
    #[serde(default)]
    pub added: Option<S<serde_json::Value>>,
    /// As `added`, the other way: some element of the old array is not in the new one.
    #[schemars(with = "Option<serde_json::Value>")]
    #[serde(default)]
    pub removed: Option<S<serde_json::Value>>,
    #[schemars(with = "Option<f64>")]
    #[serde(default)]
    pub gt: Option<S<f64>>,
    #[schemars(with = "Option<f64>")]
    #[serde(default)]
    pub gte: Option<S<f64>>,
    #[schemars(with = "Option<f64>")]
    #[serde(default)]
    pub lt: Option<S<f64>>,
    #[schemars(with = "Option<f64>")]
    #[serde(default)]
    pub lte: Option<S<f64>>,
    /// String comparisons are case-insensitive unless this is true.
    #[schemars(with = "Option<bool>")]
    #[serde(default)]
    pub case_sensitive: Option<S<bool>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawParameter {
    /// What the list holds and why a team would change it.
    #[schemars(with = "String")]
    pub description: S<String>,
    #[schemars(with = "Vec<String>")]
    pub values: S<Vec<S<String>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAggregation {
    /// count (events) or distinct_count (distinct values of `field`).
    #[schemars(with = "String")]
    pub function: S<String>,
    #[schemars(with = "Option<String>")]
    #[serde(default)]
    pub field: Option<S<String>>,
    /// Output columns to group by.
    #[schemars(with = "Vec<String>")]
    #[serde(default)]
    pub group_by: Vec<S<String>>,
    /// Window such as 10m, 1h, 1d.
    #[schemars(with = "String")]
    pub window: S<String>,
    /// The alert fires when the aggregate is at least this value.
    #[schemars(with = "u32")]
    pub threshold: S<u32>,
}

/// Two stages of other rules in this pack, joined on one value within a time window.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCorrelation {
    /// sequence: a `then` match follows a `first` match; absence: a `first` match is not
    /// followed by a `then` match.
    #[schemars(with = "String")]
    #[serde(rename = "type")]
    pub kind: S<String>,
    /// Names of the rules whose matches open the window (one for absence).
    #[schemars(with = "Vec<String>")]
    pub first: S<Vec<S<String>>>,
    /// Name of the rule whose match closes it.
    #[schemars(with = "String")]
    pub then: S<String>,
    /// The value both records must share: a top-level field, or an array field with `where`.
    #[schemars(with = "RawOutput")]
    pub by: S<RawOutput>,
    /// How long after the first match the second may come, e.g. 1h or 7d.
    #[schemars(with = "String")]
    pub within: S<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// How often the query runs: 5m .. 14d.
    #[schemars(with = "String")]
    pub frequency: S<String>,
    /// Deprecated and ignored: each run's query period is derived from the frequency, the
    /// pack's tolerated ingestion delay and the rule's window (docs/semantics.md). Remove it.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub lookback: Option<S<String>>,
}

/// An output column: a neutral field, optionally taken from the array element matching `where`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    #[schemars(with = "String")]
    pub field: S<String>,
    #[serde(default, rename = "where")]
    #[schemars(with = "Option<RawCondition>")]
    pub where_: Option<S<RawCondition>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEntity {
    /// account, ip or cloud_application.
    #[schemars(with = "String")]
    #[serde(rename = "type")]
    pub kind: S<String>,
    /// Identifier -> output column, e.g. upn: Initiator.
    #[schemars(with = "IndexMap<String, String>")]
    pub identifiers: IndexMap<String, S<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound(deserialize = "E: Deserialize<'de>"))]
#[schemars(rename = "RawTest")]
pub struct RawTest<E = serde_json::Value> {
    #[schemars(with = "String")]
    pub name: S<String>,
    /// match or no_match.
    #[schemars(with = "String")]
    pub expect: S<String>,
    /// Why the verdict is expected, e.g. the detail that makes a near miss benign.
    #[schemars(with = "Option<String>")]
    #[serde(default)]
    pub note: Option<S<String>>,
    /// One Microsoft Graph directoryAudit record.
    // The schema's default is written out: schemars drops it for a field of generic type.
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>", extend("default" = null))]
    #[serde(default)]
    pub event: Option<S<E>>,
    /// Several records, in time order, for aggregations and multi-event rules.
    #[schemars(with = "Option<Vec<serde_json::Map<String, serde_json::Value>>>", extend("default" = null))]
    #[serde(default)]
    pub events: Option<S<Vec<S<E>>>>,
}

/// What validation needs of a test event: whether it is a mapping.
pub trait TestEvent {
    fn is_object(&self) -> bool;
    /// The record, when it was read.
    fn record(&self) -> Option<serde_json::Value>;
}

impl TestEvent for serde_json::Value {
    fn is_object(&self) -> bool {
        serde_json::Value::is_object(self)
    }
    fn record(&self) -> Option<serde_json::Value> {
        Some(self.clone())
    }
}

/// A test event read without keeping it. It makes the YAML reader take the same steps as reading
/// a `serde_json::Value` (the same calls, types and expectations), so every error the full read
/// reports (wrong key types, numbers out of range, alias budgets) is reported here too.
#[derive(Debug, Clone, Copy)]
pub struct EventShape {
    object: bool,
}

impl TestEvent for EventShape {
    fn is_object(&self) -> bool {
        self.object
    }
    fn record(&self) -> Option<serde_json::Value> {
        None
    }
}

impl<'de> serde::Deserialize<'de> for EventShape {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShapeVisitor)
    }
}

const OTHER: EventShape = EventShape { object: false };

/// Mirrors serde_json's `ValueVisitor`: the same methods accept, the rest keep serde's defaults.
struct ShapeVisitor;

impl<'de> serde::de::Visitor<'de> for ShapeVisitor {
    type Value = EventShape;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<Er>(self, _: bool) -> Result<EventShape, Er> {
        Ok(OTHER)
    }
    fn visit_i64<Er>(self, _: i64) -> Result<EventShape, Er> {
        Ok(OTHER)
    }
    fn visit_i128<Er: serde::de::Error>(self, v: i128) -> Result<EventShape, Er> {
        serde_json::Number::deserialize(serde::de::value::I128Deserializer::new(v)).map(|_| OTHER)
    }
    fn visit_u64<Er>(self, _: u64) -> Result<EventShape, Er> {
        Ok(OTHER)
    }
    fn visit_u128<Er: serde::de::Error>(self, v: u128) -> Result<EventShape, Er> {
        serde_json::Number::deserialize(serde::de::value::U128Deserializer::new(v)).map(|_| OTHER)
    }
    fn visit_f64<Er>(self, _: f64) -> Result<EventShape, Er> {
        Ok(OTHER)
    }
    fn visit_str<Er>(self, _: &str) -> Result<EventShape, Er> {
        Ok(OTHER)
    }
    fn visit_string<Er>(self, _: String) -> Result<EventShape, Er> {
        Ok(OTHER)
    }
    fn visit_none<Er>(self) -> Result<EventShape, Er> {
        Ok(OTHER)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<EventShape, D::Error> {
        EventShape::deserialize(d)
    }
    fn visit_unit<Er>(self) -> Result<EventShape, Er> {
        Ok(OTHER)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<EventShape, A::Error> {
        while seq.next_element::<EventShape>()?.is_some() {}
        Ok(OTHER)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<EventShape, A::Error> {
        // serde_json reads the first key with `deserialize_str` and the others as `String`s.
        if map.next_key_seed(FirstKey)?.is_some() {
            map.next_value::<EventShape>()?;
            while map
                .next_entry_seed(Key, std::marker::PhantomData::<EventShape>)?
                .is_some()
            {}
        }
        Ok(EventShape { object: true })
    }
}

/// serde_json's `KeyClassifier`: a key read with `deserialize_str`, accepting strings only.
struct FirstKey;

impl<'de> serde::de::DeserializeSeed<'de> for FirstKey {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for FirstKey {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<Er>(self, _: &str) -> Result<(), Er> {
        Ok(())
    }
    fn visit_string<Er>(self, _: String) -> Result<(), Er> {
        Ok(())
    }
}

/// A later key, read as serde reads a `String` (`deserialize_string`; UTF-8 bytes accepted).
struct Key;

impl<'de> serde::de::DeserializeSeed<'de> for Key {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_string(self)
    }
}

impl serde::de::Visitor<'_> for Key {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<Er>(self, _: &str) -> Result<(), Er> {
        Ok(())
    }
    fn visit_string<Er>(self, _: String) -> Result<(), Er> {
        Ok(())
    }
    fn visit_bytes<Er: serde::de::Error>(self, v: &[u8]) -> Result<(), Er> {
        std::str::from_utf8(v)
            .map(|_| ())
            .map_err(|_| Er::invalid_value(serde::de::Unexpected::Bytes(v), &self))
    }
    fn visit_byte_buf<Er: serde::de::Error>(self, v: Vec<u8>) -> Result<(), Er> {
        self.visit_bytes(&v)
    }
}
