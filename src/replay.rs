//! `rulepack replay`: streams exported Entra ID audit records through every rule of the pack with
//! the reference evaluator ([`crate::eval`]), aggregation windows included, and reports one hit per
//! firing as a JSON line.
//!
//! **Input.** Each file (`-`: standard input) is a stream of JSON values: JSON Lines (several
//! values on a line are several records), pretty-printed values one after another, or JSON arrays,
//! which are entered: each element is a record. A byte scanner that tracks only strings and
//! nesting cuts the stream into records (a line that starts with `{` and ends with `}` is taken
//! whole), so a 1 GB array is never one value in memory; a value cut short ends at the next line
//! that starts with `{`, so one truncated line never swallows the records after it. Envelopes are
//! opened: an object whose only keys are `records` (Event Hub / storage export) or `value` and
//! `@odata.*` (a Graph list page) yields each element as a record.
//!
//! **Shapes** ([`Shape`], detected per record or forced): A, a Graph `directoryAudit` (camelCase
//! keys); B, a diagnostic-settings export (the Graph record under `properties`; its
//! `activityDateTime` falls back to the envelope's `time`, `activityDisplayName` to
//! `operationName`); C, a Log Analytics `AuditLogs` row (PascalCase columns mapped back to the Graph
//! names, `dynamic` columns given as JSON text decoded). Every record is normalised to shape A,
//! the shape the rules are written against.
//!
//! **Records and positions.** Every value read is one record with a 0-based index in its file:
//! skipped values (malformed JSON, not an object, unknown shape, over [`MAX_RECORD`] bytes) count
//! too, so an index always names the same place in the file. Skips are never fatal and never
//! silent: the summary counts them by reason and lists them with their position.
//!
//! **Pipeline.** One reader thread cuts the files into ~1 MiB batches of whole records; worker
//! threads parse, normalise and evaluate every rule on every record of a batch; the calling thread
//! puts the batches back in input order, feeds the stateful stages in that order and writes the
//! hits. Channels are bounded, so memory does not grow with the input: at most a few batches are in
//! flight, plus the open aggregation windows.
//!
//! **Aggregation.** Per rule, per (group key, window) a counter (or a set of distinct values), with
//! fixed windows aligned to the Unix epoch as in [`crate::eval`]; a hit is emitted by the record
//! that brings a group to the threshold, once per group and window. Records are assumed to be
//! roughly in time order: a window stays open until a record at least one window length past its
//! end has been seen (the watermark is the latest record time so far); a record for a window that
//! has closed is counted as *late* in the summary and not counted. Records without a readable time
//! cannot be placed in a window and are counted as *untimed*, as the evaluator ignores them.
//!
//! **Output.** One JSON line per hit, in input order: `rule_id`, `rule`, `severity`, `file`,
//! `record` (0-based index in that file), `time` (the record's `activityDateTime` as written),
//! `entities` (the rule's entity columns, each output evaluated on the record; for an aggregation,
//! the group-by columns and `count`) and, for an aggregation, `window` (start of the window, UTC).
//!
//! **Multi-event correlation** (not in the IR yet) fits the same split: workers already compute
//! per record and per rule whether it matched and the values a stateful stage needs
//! ([`MatchKind`]). A correlation rule (e.g. "rule A then rule B for the same initiator within
//! 10m") would be a third [`Stage`] variant fed, in record order, by the matches of the rules it
//! names (rules referenced only by correlations would be evaluated but emit no hits of their own),
//! keeping per-(group, window) sequence state and evicting it with the same watermark.

use crate::eval::{Evaluator, OutCol, Stages, parse_time};
use crate::ir::Cond;
use crate::lower::lower;
use crate::model::{AggFunction, CorrelationKind, Rule, RuleName, Severity};
use crate::taxonomy::LogSource;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

/// Records (a line, or an array element) longer than this are skipped without being held in
/// memory.
pub const MAX_RECORD: usize = 64 << 20;

/// Bytes read per batch.
const BLOCK: usize = 1 << 20;

/// Skips listed one by one in the summary; all are counted.
const LISTED_SKIPS: usize = 1000;

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

/// Why a record was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    Malformed,
    NotObject,
    UnknownShape,
    TooLarge,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Malformed => "malformed JSON",
            SkipReason::NotObject => "not an object",
            SkipReason::UnknownShape => "unknown shape",
            SkipReason::TooLarge => "too large",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Normalisation

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
            let keys: Vec<&str> = map.keys().take(6).map(String::as_str).collect();
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

fn detect(map: &Map<String, Value>) -> Option<Shape> {
    if matches!(
        map.get("properties"),
        Some(Value::Object(_) | Value::String(_))
    ) {
        Some(Shape::Diagnostic)
    } else if LA_COLUMNS
        .iter()
        .map(|(c, _, _)| *c)
        .chain(LA_ONLY.iter().copied())
        .any(|c| map.contains_key(c))
    {
        Some(Shape::LogAnalytics)
    } else if GRAPH_KEYS.iter().any(|k| map.contains_key(*k)) {
        Some(Shape::Graph)
    } else {
        None
    }
}

fn from_diagnostic(mut map: Map<String, Value>) -> Result<Value, (SkipReason, String)> {
    let mut props = match map.remove("properties") {
        Some(Value::Object(p)) => p,
        Some(Value::String(s)) => match serde_json::from_str(&s) {
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
                    serde_json::from_str::<Value>(s)
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
fn envelope(v: &mut Value) -> Option<(&'static str, Vec<Value>)> {
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

// ---------------------------------------------------------------------------------------------
// The pack

/// What a rule does with its matching records, in record order.
enum Stage {
    /// Every matching record is a hit.
    Each,
    /// Counted per group and window (see the module docs).
    Aggregation(AggState),
    /// Matches of other rules paired by key (see the module docs).
    Correlation(CorrState),
}

struct PackRule<'a> {
    rule: &'a Rule,
    eval: Evaluator<'a>,
    /// Single-record rules: the lowered condition. Correlations evaluate nothing themselves:
    /// they read the matches of the rules they name (`links`).
    cond: Option<Cond>,
    /// For correlations: the pack indices of the `first` rules, then of the `then` rule.
    links: Option<(Vec<usize>, usize)>,
    entities: Vec<OutCol>,
    /// Group-by fields (top-level), for aggregations.
    group: Vec<(String, String)>,
    /// For correlations: the stages; `cond` is then any stage's condition.
    stages: Option<Stages>,
}

/// Every rule of a pack, lowered once, with its evaluator.
pub struct Pack<'a> {
    rules: Vec<PackRule<'a>>,
    /// Some rule needs the time of every record (an absence).
    clocked: bool,
}

impl<'a> Pack<'a> {
    pub fn new(rules: &'a [Rule], logsources: &'a [LogSource]) -> Pack<'a> {
        let all = rules;
        let rules = rules
            .iter()
            .filter_map(|rule| {
                let ls = logsources.iter().find(|l| l.name == rule.logsource)?;
                let mut columns: Vec<&str> = Vec::new();
                for e in &rule.entities {
                    for (_, c) in &e.identifiers {
                        if !columns.contains(&c.0.as_str()) {
                            columns.push(&c.0);
                        }
                    }
                }
                let entities = columns
                    .iter()
                    .filter_map(|c| rule.outputs.iter().find(|o| o.column.0 == *c))
                    .map(|o| OutCol::new(ls, o))
                    .collect();
                let group = rule
                    .aggregation()
                    .into_iter()
                    .flat_map(|a| &a.group_by)
                    .filter_map(|c| rule.outputs.iter().find(|o| o.column == *c))
                    .map(|o| (o.column.0.clone(), o.field.0.clone()))
                    .collect();
                let stages = match rule.correlation() {
                    Some(c) => Some(Stages::new(c, all, ls)?),
                    None => None,
                };
                Some(PackRule {
                    rule,
                    eval: Evaluator::new(ls),
                    cond: rule.condition().map(|c| lower(c, ls)),
                    links: None,
                    entities,
                    group,
                    stages,
                })
            })
            .collect::<Vec<PackRule>>();
        let index =
            |name: &RuleName, rules: &[PackRule]| rules.iter().position(|r| r.rule.name == *name);
        let links: Vec<Option<(Vec<usize>, usize)>> = rules
            .iter()
            .map(|r| {
                let c = r.rule.correlation()?;
                let first = c
                    .first
                    .iter()
                    .map(|s| index(&s.rule, &rules))
                    .collect::<Option<Vec<_>>>()?;
                Some((first, index(&c.then.rule, &rules)?))
            })
            .collect();
        // A correlation whose stages are not all in the pack (validation rules that out) keeps
        // no links and never matches.
        let rules: Vec<PackRule> = rules
            .into_iter()
            .zip(links)
            .map(|(mut r, l)| {
                r.links = l;
                r
            })
            .collect();
        let clocked = rules.iter().any(|r| {
            r.stages
                .as_ref()
                .is_some_and(|s| s.kind == CorrelationKind::Absence)
        });
        Pack { rules, clocked }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn stages(&self) -> Vec<Stage> {
        self.rules
            .iter()
            .map(|r| match (r.rule.aggregation(), &r.stages) {
                (_, Some(s)) => Stage::Correlation(CorrState::new(s.kind, s.within)),
                (None, None) => Stage::Each,
                (Some(a), None) => Stage::Aggregation(AggState {
                    window: (a.window.minutes as i64 * 60).max(1),
                    threshold: a.threshold,
                    distinct: a.function == AggFunction::DistinctCount,
                    groups: HashMap::new(),
                    watermark: None,
                    evicted_to: i64::MIN,
                    late: 0,
                    untimed: 0,
                }),
            })
            .collect()
    }

    /// Evaluates every rule on one normalised record.
    fn evaluate(&self, record: &mut Value) -> RecordOut {
        let hit: Vec<bool> = self
            .rules
            .iter()
            .map(|r| r.cond.as_ref().is_some_and(|c| r.eval.matches(c, record)))
            .collect();
        // (rule, first stage matched, then stage matched): a correlation takes part when one of
        // the rules it names matched.
        let matched: Vec<(usize, Option<usize>, bool)> = self
            .rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match &r.links {
                None => hit[i].then_some((i, None, false)),
                Some((first, then)) => {
                    let f = first.iter().position(|&j| hit[j]);
                    (f.is_some() || hit[*then]).then_some((i, f, hit[*then]))
                }
            })
            .collect();
        let mut out = RecordOut {
            time: None,
            matches: Vec::with_capacity(matched.len()),
        };
        let Some(any) = self.rules.first() else {
            return out;
        };
        // Absence windows close as time passes, so they need every record's time.
        if matched.is_empty() && !self.clocked {
            return out;
        }
        out.time = any.eval.field_text(record, "time");
        for (i, first, then) in matched {
            let r = &self.rules[i];
            let kind = match (r.rule.aggregation(), &r.stages) {
                (_, Some(s)) => MatchKind::Correlation {
                    t: out.time.as_deref().and_then(parse_time),
                    key: match &s.key {
                        Some(k) => r.eval.output(record, k).filter(|k| !k.is_empty()),
                        None => Some(String::new()),
                    },
                    first,
                    then,
                    entities: r
                        .entities
                        .iter()
                        .map(|c| r.eval.output(record, c))
                        .collect(),
                },
                (None, None) => MatchKind::Each(
                    r.entities
                        .iter()
                        .map(|c| r.eval.output(record, c))
                        .collect(),
                ),
                (Some(a), None) => MatchKind::Aggregation {
                    t: out.time.as_deref().and_then(parse_time),
                    key: r
                        .group
                        .iter()
                        .map(|(_, f)| r.eval.field_text(record, f).unwrap_or_default())
                        .collect(),
                    distinct: a
                        .field
                        .as_ref()
                        .and_then(|f| r.eval.field_text(record, &f.0)),
                },
            };
            out.matches.push(Match { rule: i, kind });
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Per-record results (computed by the workers)

/// A record's matches and what the stages need from it.
struct RecordOut {
    /// The record's `time` field as written.
    time: Option<String>,
    matches: Vec<Match>,
}

struct Match {
    rule: usize,
    kind: MatchKind,
}

/// The facts a rule's stage needs from a matching record.
enum MatchKind {
    /// Entity column values, in the rule's entity order.
    Each(Vec<Option<String>>),
    Aggregation {
        /// Seconds since the epoch.
        t: Option<i64>,
        key: Vec<String>,
        distinct: Option<String>,
    },
    Correlation {
        /// Seconds since the epoch.
        t: Option<i64>,
        key: Option<String>,
        /// The index of the first `first` stage it matches.
        first: Option<usize>,
        then: bool,
        entities: Vec<Option<String>>,
    },
}

// ---------------------------------------------------------------------------------------------
// Aggregation

struct AggState {
    window: i64,
    threshold: u32,
    distinct: bool,
    groups: HashMap<(Vec<String>, i64), Group>,
    /// The latest record time seen.
    watermark: Option<i64>,
    /// Windows below this index are closed.
    evicted_to: i64,
    late: u64,
    untimed: u64,
}

#[derive(Default)]
struct Group {
    count: u32,
    values: HashSet<String>,
    fired: bool,
}

impl AggState {
    /// Counts a matching record; returns (aggregate, window start) when its group reaches the
    /// threshold with this record.
    fn feed(
        &mut self,
        t: Option<i64>,
        key: Vec<String>,
        distinct: Option<String>,
    ) -> Option<(u32, i64)> {
        let Some(t) = t else {
            self.untimed += 1;
            return None;
        };
        let w = t.div_euclid(self.window);
        if w < self.evicted_to {
            self.late += 1;
            return None;
        }
        let wm = self.watermark.map_or(t, |m| m.max(t));
        self.watermark = Some(wm);
        // A window closes once the watermark is a whole window past its end.
        let open_from = (wm - self.window).div_euclid(self.window);
        if open_from > self.evicted_to {
            self.evicted_to = open_from;
            self.groups.retain(|(_, gw), _| *gw >= open_from);
            if w < open_from {
                self.late += 1;
                return None;
            }
        }
        let g = self.groups.entry((key, w)).or_default();
        g.count = g.count.saturating_add(1);
        let n = if self.distinct {
            if let Some(v) = distinct {
                g.values.insert(v);
            }
            g.values.len() as u32
        } else {
            g.count
        };
        if !g.fired && n >= self.threshold {
            g.fired = true;
            return Some((n, w * self.window));
        }
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Correlation

struct CorrState {
    kind: CorrelationKind,
    /// Seconds.
    within: i64,
    /// Sequence: per key, the latest `first` match (time, stage index).
    latest: HashMap<String, (i64, usize)>,
    /// Absence: windows in arrival order, so (records being in time order) in order of their
    /// end; a window a `then` match closed stays, dead, until it reaches the front.
    windows: VecDeque<Window>,
    /// The arrival number of `windows[0]`.
    base: u64,
    /// (key hash, arrival number) of the windows still open.
    open_by_key: BTreeSet<(u64, u64)>,
    /// Absence: the hit lines of open windows. A week of invitations can be many; only their
    /// place in this file stays in memory.
    spill: Option<File>,
    spill_len: u64,
    /// The latest record time seen (every record, not only matches).
    watermark: Option<i64>,
    /// Sequence: the watermark at the last eviction of expired keys.
    swept_at: i64,
    untimed: u64,
}

/// An absence window: when it ends, its key, and where its hit line is spilled.
struct Window {
    end: i64,
    key: u64,
    at: u64,
    len: u32,
    open: bool,
}

/// Keys are kept as 64-bit hashes: two keys colliding (about 1 in 10^9 for 10^5 open windows)
/// could let one key's `then` close the other's window.
fn key_hash(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

impl CorrState {
    fn new(kind: CorrelationKind, within: i64) -> CorrState {
        CorrState {
            kind,
            within,
            latest: HashMap::new(),
            windows: VecDeque::new(),
            base: 0,
            open_by_key: BTreeSet::new(),
            spill: None,
            spill_len: 0,
            watermark: None,
            swept_at: i64::MIN,
            untimed: 0,
        }
    }

    /// Moves the clock to `t`; returns the hit lines of the absence windows that closed.
    fn advance(&mut self, t: i64) -> io::Result<Vec<Vec<u8>>> {
        let wm = self.watermark.map_or(t, |m| m.max(t));
        self.watermark = Some(wm);
        let mut closed = Vec::new();
        match self.kind {
            CorrelationKind::Sequence => {
                // Keys whose latest first match is a whole window old can pair no more.
                if wm.saturating_sub(self.swept_at) > self.within {
                    let within = self.within;
                    self.latest
                        .retain(|_, (ft, _)| ft.saturating_add(within) >= wm);
                    self.swept_at = wm;
                }
            }
            CorrelationKind::Absence => {
                while let Some(w) = self.windows.front() {
                    if w.open && w.end > wm {
                        break;
                    }
                    if w.open {
                        self.open_by_key.remove(&(w.key, self.base));
                        let mut line = vec![0; w.len as usize];
                        if let Some(f) = self.spill.as_mut() {
                            f.seek(SeekFrom::Start(w.at))?;
                            f.read_exact(&mut line)?;
                        }
                        closed.push(line);
                    }
                    self.windows.pop_front();
                    self.base += 1;
                }
            }
        }
        Ok(closed)
    }

    /// Absence windows still open.
    fn open_windows(&self) -> u64 {
        self.open_by_key.len() as u64
    }

    /// Sequence: the time of the first match this `then` match at `t` pairs with.
    fn remember_and_pair(
        &mut self,
        key: &str,
        t: i64,
        first: Option<usize>,
        then: bool,
    ) -> Option<(i64, usize)> {
        if let Some(i) = first {
            let e = self.latest.entry(key.to_string()).or_insert((t, i));
            if t >= e.0 {
                *e = (t, i);
            }
        }
        if !then {
            return None;
        }
        self.latest
            .get(key)
            .copied()
            .filter(|(ft, _)| *ft <= t && t <= ft.saturating_add(self.within))
    }

    /// Absence: a `then` match closes every open window of its key that it falls in.
    fn resolve(&mut self, key: &str, t: i64) {
        let k = key_hash(key);
        let seqs: Vec<u64> = self
            .open_by_key
            .range((k, 0)..=(k, u64::MAX))
            .map(|(_, seq)| *seq)
            .collect();
        for seq in seqs {
            let Some(w) = self.windows.get_mut((seq - self.base) as usize) else {
                continue;
            };
            if w.end.saturating_sub(self.within) <= t && t <= w.end {
                w.open = false;
                self.open_by_key.remove(&(k, seq));
            }
        }
    }

    /// Absence: opens the window of a `first` match at `t`, whose hit line is `line`.
    fn open(&mut self, t: i64, key: &str, line: &[u8]) -> io::Result<()> {
        let spill = match &mut self.spill {
            Some(f) => f,
            None => self.spill.insert(tempfile::tempfile()?),
        };
        spill.seek(SeekFrom::Start(self.spill_len))?;
        spill.write_all(line)?;
        let w = Window {
            end: t.saturating_add(self.within),
            key: key_hash(key),
            at: self.spill_len,
            len: u32::try_from(line.len()).map_err(|_| io::Error::other("hit line over 4 GiB"))?,
            open: true,
        };
        self.spill_len += line.len() as u64;
        self.open_by_key
            .insert((w.key, self.base + self.windows.len() as u64));
        self.windows.push_back(w);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

struct Unit {
    range: Range<usize>,
    /// 1-based line where the record starts.
    line: u64,
    /// 0-based element index, for elements of a top-level array.
    element: Option<u64>,
    /// Set when the reader already knows the record is skipped.
    skip: Option<(SkipReason, String)>,
    /// A whole line that may hold several values.
    multi: bool,
}

struct Batch {
    seq: u64,
    file: usize,
    data: Vec<u8>,
    units: Vec<Unit>,
}

struct Done {
    seq: u64,
    file: usize,
    outs: Vec<Outcome>,
}

enum Outcome {
    Record(RecordOut),
    Skip {
        position: String,
        reason: SkipReason,
        detail: String,
    },
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_ws(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_ws(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

struct Reader<'s> {
    tx: &'s SyncSender<Batch>,
    seq: u64,
    progress: Option<&'s indicatif::ProgressBar>,
}

impl Reader<'_> {
    /// Reads one file into batches of whole records. `Ok(false)`: the consumer has gone.
    fn file(&mut self, file: usize, path: &Path) -> io::Result<bool> {
        let mut r: Box<dyn Read> = if path == Path::new("-") {
            Box::new(io::stdin().lock())
        } else {
            Box::new(File::open(path)?)
        };
        let mut scan = Scan::default();
        let mut block = Vec::with_capacity(BLOCK);
        let mut first = true;
        loop {
            block.clear();
            let n = (&mut r).take(BLOCK as u64).read_to_end(&mut block)?;
            if let Some(p) = self.progress {
                p.inc(n as u64);
            }
            let mut start = 0;
            if first && block.starts_with(&[0xEF, 0xBB, 0xBF]) {
                start = 3;
            }
            first = false;
            let mut data = Vec::with_capacity(n + 64);
            let mut units = Vec::new();
            scan.scan(&block[start..], &mut data, &mut units);
            if n == 0 {
                scan.finish(&mut data, &mut units);
            }
            if !units.is_empty() {
                let seq = self.seq;
                self.seq += 1;
                let batch = Batch {
                    seq,
                    file,
                    data,
                    units,
                };
                if self.tx.send(batch).is_err() {
                    return Ok(false);
                }
            }
            if n == 0 {
                return Ok(true);
            }
        }
    }
}

/// Where a top-level array stands between two elements.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Between {
    /// Just after `[`.
    #[default]
    First,
    /// Just after a `,`.
    Comma,
}

/// Cuts a byte stream into JSON values without parsing them: tracks strings and nesting only.
/// A top-level array is entered and each of its elements is one value; anything else at the top
/// level (objects, strings, bare words) is one value. A `{` at the start of a line while a value
/// is still open means that value was cut short (a truncated line): it is closed there, so one
/// broken record never swallows the next.
struct Scan {
    in_array: bool,
    /// Brackets open, the top-level array's included.
    depth: u32,
    in_str: bool,
    /// The previous block ended on a backslash inside a string.
    esc: bool,
    /// Inside a bare top-level token (number, literal, garbage): ends at white space.
    bare: bool,
    /// A value (or array element) is open.
    open: bool,
    between: Between,
    /// Bytes of the open value from earlier blocks.
    cur: Vec<u8>,
    /// The open value grew past MAX_RECORD: its bytes are dropped.
    discarding: bool,
    newlines: u64,
    /// The previous byte was a newline (or the stream just started).
    bol: bool,
    start_line: u64,
    elements: u64,
    /// The open value is a whole line taken by the JSON Lines shortcut.
    line_value: bool,
}

impl Default for Scan {
    fn default() -> Self {
        Scan {
            in_array: false,
            depth: 0,
            in_str: false,
            esc: false,
            bare: false,
            open: false,
            between: Between::First,
            cur: Vec::new(),
            discarding: false,
            newlines: 0,
            bol: true,
            start_line: 1,
            elements: 0,
            line_value: false,
        }
    }
}

impl Scan {
    fn scan(&mut self, block: &[u8], batch: &mut Vec<u8>, units: &mut Vec<Unit>) {
        let n = block.len();
        let mut seg = 0;
        let mut i = 0;
        if self.esc && n > 0 {
            self.esc = false;
            if block[0] == b'\n' {
                self.newlines += 1;
            }
            i = 1;
        }
        while i < n {
            let b = block[i];
            if self.in_str {
                if self.bol && b == b'{' {
                    // A line starting with `{` inside a string: the record before was cut short.
                    self.emit(&block[seg..i], batch, units);
                    self.reset_after_cut();
                } else {
                    self.bol = false;
                    let Some(k) = memchr::memchr3(b'"', b'\\', b'\n', &block[i..]) else {
                        break;
                    };
                    i += k;
                    match block[i] {
                        b'"' => {
                            self.in_str = false;
                            i += 1;
                            if self.open && !self.in_array && self.depth == 0 {
                                self.emit(&block[seg..i], batch, units);
                            }
                        }
                        b'\\' if i + 1 < n => {
                            if block[i + 1] == b'\n' {
                                self.newlines += 1;
                            }
                            i += 2;
                        }
                        b'\\' => {
                            self.esc = true;
                            i = n;
                        }
                        _ => {
                            self.newlines += 1;
                            self.bol = true;
                            i += 1;
                        }
                    }
                    continue;
                }
            }
            let bol = std::mem::replace(&mut self.bol, false);
            if is_ws(b) {
                if b == b'\n' {
                    self.newlines += 1;
                    self.bol = true;
                }
                if self.bare {
                    self.emit(&block[seg..i], batch, units);
                }
                i += 1;
                continue;
            }
            if self.bare {
                i += 1;
                continue;
            }
            if bol && b == b'{' && !self.open && !self.in_array {
                // JSON Lines shortcut: a line that starts with `{` and ends with `}` is taken as
                // one record without tracking its strings and brackets (the parse checks it, and
                // several values on the line are each a record). Pretty-printed values never end
                // their first line with `}`, so they take the general path.
                if let Some(k) = memchr::memchr(b'\n', &block[i..]) {
                    let line = &block[i..i + k];
                    if trim(line).ends_with(b"}") {
                        self.open = true;
                        self.line_value = true;
                        self.start_line = self.newlines + 1;
                        self.emit(line, batch, units);
                        i += k;
                        continue;
                    }
                }
            }
            let base = u32::from(self.in_array);
            if bol && b == b'{' && self.open && self.depth > base {
                self.emit(&block[seg..i], batch, units);
                self.reset_after_cut();
            }
            if !self.open {
                if self.in_array {
                    match b {
                        b',' => {
                            self.empty_element(units);
                            self.between = Between::Comma;
                            i += 1;
                            continue;
                        }
                        b']' => {
                            if self.between == Between::Comma {
                                self.empty_element(units);
                            }
                            self.in_array = false;
                            self.depth = 0;
                            i += 1;
                            continue;
                        }
                        _ => {}
                    }
                } else if b == b'[' {
                    self.in_array = true;
                    self.depth = 1;
                    self.between = Between::First;
                    i += 1;
                    continue;
                }
                self.open = true;
                self.start_line = self.newlines + 1;
                seg = i;
                if !self.in_array && b != b'{' && b != b'"' {
                    self.bare = true;
                    i += 1;
                    continue;
                }
            }
            match b {
                b'"' => self.in_str = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' | b',' if self.in_array && self.depth == 1 => {
                    self.emit(&block[seg..i], batch, units);
                    if b == b',' {
                        self.between = Between::Comma;
                    } else {
                        self.in_array = false;
                        self.depth = 0;
                    }
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if !self.in_array && self.depth == 0 {
                        self.emit(&block[seg..=i], batch, units);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        if self.open && !self.discarding {
            self.cur.extend_from_slice(&block[seg.min(n)..]);
            if self.cur.len() > MAX_RECORD {
                self.discarding = true;
                self.cur = Vec::new();
            }
        }
    }

    /// After a value was cut short by a `{` at the start of a line.
    fn reset_after_cut(&mut self) {
        self.in_str = false;
        self.depth = u32::from(self.in_array);
    }

    fn empty_element(&mut self, units: &mut Vec<Unit>) {
        units.push(Unit {
            range: 0..0,
            line: self.newlines + 1,
            element: Some(self.elements),
            skip: Some((
                SkipReason::Malformed,
                "empty array element (extra comma)".into(),
            )),
            multi: false,
        });
        self.elements += 1;
    }

    /// Closes the open value, whose bytes are `cur` followed by `tail`.
    fn emit(&mut self, tail: &[u8], batch: &mut Vec<u8>, units: &mut Vec<Unit>) {
        let element = self.in_array.then_some(self.elements);
        if self.in_array {
            self.elements += 1;
        }
        let line = self.start_line;
        self.open = false;
        self.bare = false;
        if std::mem::take(&mut self.discarding) {
            self.line_value = false;
            self.cur.clear();
            units.push(Unit {
                range: 0..0,
                line,
                element,
                skip: Some((
                    SkipReason::TooLarge,
                    format!("a record larger than {} MiB", MAX_RECORD >> 20),
                )),
                multi: false,
            });
            return;
        }
        let start = batch.len();
        batch.extend_from_slice(&self.cur);
        batch.extend_from_slice(tail);
        self.cur.clear();
        units.push(Unit {
            range: start..batch.len(),
            line,
            element,
            skip: None,
            multi: std::mem::take(&mut self.line_value),
        });
    }

    /// End of input: a value still open is handed on as it is (its parse reports the
    /// truncation).
    fn finish(&mut self, batch: &mut Vec<u8>, units: &mut Vec<Unit>) {
        if self.open {
            self.emit(&[], batch, units);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Working

/// Where a record is in its file, formatted only for skips.
#[derive(Clone, Copy)]
struct Pos {
    line: u64,
    element: Option<u64>,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.element {
            Some(e) => write!(f, "line {}, array element {e}", self.line),
            None => write!(f, "line {}", self.line),
        }
    }
}

fn work(pack: &Pack, shape: Shape, batch: Batch) -> Done {
    let mut outs = Vec::with_capacity(batch.units.len());
    for u in &batch.units {
        let pos = Pos {
            line: u.line,
            element: u.element,
        };
        if let Some((reason, detail)) = &u.skip {
            outs.push(Outcome::Skip {
                position: pos.to_string(),
                reason: *reason,
                detail: detail.clone(),
            });
            continue;
        }
        let bytes = &batch.data[u.range.clone()];
        let bad = |e: serde_json::Error| Outcome::Skip {
            position: pos.to_string(),
            reason: SkipReason::Malformed,
            detail: malformed(&e, u.line),
        };
        if u.multi {
            for v in serde_json::Deserializer::from_slice(bytes).into_iter::<Value>() {
                match v {
                    Ok(v) => record(pack, shape, v, pos, &mut outs),
                    Err(e) => {
                        outs.push(bad(e));
                        break;
                    }
                }
            }
            continue;
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(v) => record(pack, shape, v, pos, &mut outs),
            Err(e) => outs.push(bad(e)),
        }
    }
    Done {
        seq: batch.seq,
        file: batch.file,
        outs,
    }
}

/// serde_json's message with the position in the file instead of in the record.
fn malformed(e: &serde_json::Error, start_line: u64) -> String {
    let msg = e.to_string();
    let msg = msg
        .rsplit_once(" at line ")
        .map_or(msg.as_str(), |(m, _)| m)
        .to_string();
    if e.line() == 0 {
        return msg;
    }
    let line = start_line + e.line() as u64 - 1;
    if e.line() == 1 {
        format!("{msg} (line {line})")
    } else {
        format!("{msg} (line {line}, column {})", e.column())
    }
}

fn record(pack: &Pack, shape: Shape, mut v: Value, pos: Pos, outs: &mut Vec<Outcome>) {
    if let Some((key, items)) = envelope(&mut v) {
        for (i, item) in items.into_iter().enumerate() {
            one(pack, shape, item, || format!("{pos}, {key}[{i}]"), outs);
        }
    } else {
        one(pack, shape, v, || pos.to_string(), outs);
    }
}

fn one(
    pack: &Pack,
    shape: Shape,
    v: Value,
    position: impl FnOnce() -> String,
    outs: &mut Vec<Outcome>,
) {
    match normalise(v, shape) {
        Ok(mut r) => outs.push(Outcome::Record(pack.evaluate(&mut r))),
        Err((reason, detail)) => outs.push(Outcome::Skip {
            position: position(),
            reason,
            detail,
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Running

/// How to run a replay.
pub struct Options {
    pub shape: Shape,
    /// Worker threads (at least one).
    pub workers: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            shape: Shape::Auto,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            progress: false,
        }
    }
}

/// A skipped record.
#[derive(Clone, Debug)]
pub struct Skipped {
    pub file: String,
    pub record: u64,
    pub position: String,
    pub reason: SkipReason,
    pub detail: String,
}

/// What a replay read, skipped and found.
#[derive(Debug, Default)]
pub struct Summary {
    /// (file, records read from it).
    pub files: Vec<(String, u64)>,
    pub records: u64,
    pub evaluated: u64,
    pub skipped_by_reason: BTreeMap<SkipReason, u64>,
    /// The first skips, in input order (all are counted in `skipped_by_reason`).
    pub skipped: Vec<Skipped>,
    /// (rule name, severity, hits), in pack order.
    pub hits: Vec<(String, Severity, u64)>,
    /// (rule name, late records, untimed records) for aggregation rules.
    pub aggregation: Vec<(String, u64, u64)>,
    /// (rule name, absence windows still open at the end, untimed matches) for correlations.
    pub correlation: Vec<(String, u64, u64)>,
    /// stdout was closed before the end (e.g. `| head`): the replay stopped there.
    pub stopped_early: bool,
}

impl Summary {
    pub fn skipped_total(&self) -> u64 {
        self.skipped_by_reason.values().sum()
    }

    pub fn hits_total(&self) -> u64 {
        self.hits.iter().map(|h| h.2).sum()
    }

    /// The summary as printed on stderr.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let files = self.files.len();
        s.push_str(&format!(
            "replay: {} records read from {files} file{}, {} evaluated, {} skipped\n",
            self.records,
            if files == 1 { "" } else { "s" },
            self.evaluated,
            self.skipped_total()
        ));
        if self.stopped_early {
            s.push_str("replay: stopped early: the output was closed\n");
        }
        for (reason, n) in &self.skipped_by_reason {
            s.push_str(&format!("skipped: {n} {}\n", reason.as_str()));
        }
        for k in &self.skipped {
            s.push_str(&format!(
                "skipped: {}: record {} ({}): {}: {}\n",
                k.file,
                k.record,
                k.position,
                k.reason.as_str(),
                k.detail
            ));
        }
        let total = self.skipped_total();
        if total > self.skipped.len() as u64 {
            s.push_str(&format!(
                "skipped: … and {} more not listed\n",
                total - self.skipped.len() as u64
            ));
        }
        let by_sev: Vec<(&str, u64)> = [
            (Severity::High, "high"),
            (Severity::Medium, "medium"),
            (Severity::Low, "low"),
            (Severity::Informational, "informational"),
        ]
        .iter()
        .map(|(sev, name)| {
            (
                *name,
                self.hits
                    .iter()
                    .filter(|h| h.1 == *sev)
                    .map(|h| h.2)
                    .sum::<u64>(),
            )
        })
        .collect();
        let sev: Vec<String> = by_sev.iter().map(|(n, c)| format!("{n} {c}")).collect();
        s.push_str(&format!(
            "hits: {} ({})\n",
            self.hits_total(),
            sev.join(", ")
        ));
        let width = self.hits.iter().map(|h| h.0.len()).max().unwrap_or(0);
        for (name, sev, n) in &self.hits {
            s.push_str(&format!(
                "  {name:<width$}  {:<13}  {n}\n",
                severity_str(*sev)
            ));
        }
        for (name, late, untimed) in &self.aggregation {
            if *late > 0 || *untimed > 0 {
                s.push_str(&format!(
                    "aggregation: {name}: {late} late records not counted (window already closed), {untimed} without a readable time\n"
                ));
            }
        }
        for (name, open, untimed) in &self.correlation {
            if *open > 0 || *untimed > 0 {
                s.push_str(&format!(
                    "correlation: {name}: {open} windows still open at the end of the input (not reported), {untimed} matches without a readable time\n"
                ));
            }
        }
        s
    }
}

fn severity_str(s: Severity) -> &'static str {
    match s {
        Severity::Informational => "informational",
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
    }
}

/// What stopped the ordered stage: the output, or the file that holds open absence windows.
enum Failed {
    Write(io::Error),
    Spill(io::Error),
}

/// A failure that ends the replay (records never do).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot keep the open absence windows in a temporary file: {0}")]
    Spill(io::Error),
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("cannot write the hits: {0}")]
    Write(io::Error),
}

#[derive(Serialize)]
struct HitLine<'a> {
    rule_id: &'a str,
    rule: &'a str,
    severity: Severity,
    file: &'a str,
    record: u64,
    time: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<String>,
    entities: Map<String, Value>,
}

/// Replays the files, in order, through the pack; hits go to `out` as JSON lines.
pub fn run(
    pack: &Pack,
    files: &[PathBuf],
    opts: &Options,
    out: &mut dyn Write,
) -> Result<Summary, ReplayError> {
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    for (p, name) in files
        .iter()
        .zip(&names)
        .filter(|(p, _)| *p != Path::new("-"))
    {
        File::open(p).map_err(|source| ReplayError::Read {
            path: name.clone(),
            source,
        })?;
    }
    let progress = opts.progress.then(|| {
        let total: u64 = files
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let pb = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] [{wide_bar}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let workers = opts.workers.max(1);
    let (batch_tx, batch_rx) = sync_channel::<Batch>(workers * 2);
    let (done_tx, done_rx) = sync_channel::<Done>(workers * 2);
    let batch_rx = Arc::new(Mutex::new(batch_rx));
    let mut summary = Summary {
        files: names.iter().map(|n| (n.clone(), 0)).collect(),
        ..Summary::default()
    };
    let names_ref = &names;
    let progress_ref = progress.as_ref();
    let result = std::thread::scope(|scope| {
        // The reader owns the batch sender, so the workers see the end of the input when it is
        // done; the workers own the receiver, so the reader stops when they are gone.
        let reader = scope.spawn(move || -> Result<(), ReplayError> {
            let tx = batch_tx;
            let names = names_ref;
            let mut r = Reader {
                tx: &tx,
                seq: 0,
                progress: progress_ref,
            };
            for (i, (p, name)) in files.iter().zip(names).enumerate() {
                match r.file(i, p) {
                    Ok(true) => {}
                    Ok(false) => return Ok(()),
                    Err(source) => {
                        return Err(ReplayError::Read {
                            path: name.clone(),
                            source,
                        });
                    }
                }
            }
            Ok(())
        });
        for _ in 0..workers {
            let rx = Arc::clone(&batch_rx);
            let tx = done_tx.clone();
            scope.spawn(move || {
                loop {
                    let batch = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    let Ok(batch) = batch else { return };
                    if tx.send(work(pack, opts.shape, batch)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        drop(batch_rx);
        let written = collect(pack, names_ref, done_rx, out, &mut summary);
        // The receiver is gone now: the workers stop at their next send, then the reader.
        let read = reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        written.and(read)
    });
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    result.map(|()| summary)
}

/// The ordered stage: puts the workers' batches back in input order, numbers the records, runs
/// the stages and writes the hits.
fn collect(
    pack: &Pack,
    names: &[String],
    rx: Receiver<Done>,
    out: &mut dyn Write,
    summary: &mut Summary,
) -> Result<(), ReplayError> {
    let mut stages = pack.stages();
    let mut hits = vec![0u64; pack.rules.len()];
    let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next = 0u64;
    let mut w = io::BufWriter::with_capacity(1 << 16, out);
    let mut line = Vec::with_capacity(512);
    let result = 'run: {
        for done in rx.iter() {
            pending.insert(done.seq, done);
            while let Some(done) = pending.remove(&next) {
                next += 1;
                let file = done.file;
                for o in done.outs {
                    let index = summary.files[file].1;
                    summary.files[file].1 += 1;
                    summary.records += 1;
                    let r = match o {
                        Outcome::Skip {
                            position,
                            reason,
                            detail,
                        } => {
                            *summary.skipped_by_reason.entry(reason).or_default() += 1;
                            if summary.skipped.len() < LISTED_SKIPS {
                                summary.skipped.push(Skipped {
                                    file: names[file].clone(),
                                    record: index,
                                    position,
                                    reason,
                                    detail,
                                });
                            }
                            continue;
                        }
                        Outcome::Record(r) => r,
                    };
                    summary.evaluated += 1;
                    if let Some(t) = r.time.as_deref().and_then(parse_time) {
                        for (i, st) in stages.iter_mut().enumerate() {
                            let Stage::Correlation(c) = st else { continue };
                            let closed = match c.advance(t) {
                                Ok(c) => c,
                                Err(e) => break 'run Err(Failed::Spill(e)),
                            };
                            for line in closed {
                                hits[i] += 1;
                                if let Err(e) = w.write_all(&line) {
                                    break 'run Err(Failed::Write(e));
                                }
                            }
                        }
                    }
                    for m in r.matches {
                        let pr = &pack.rules[m.rule];
                        let (window, entities) = match (m.kind, &mut stages[m.rule]) {
                            (MatchKind::Each(values), _) => (None, entity_map(pr, values)),
                            (
                                MatchKind::Aggregation { t, key, distinct },
                                Stage::Aggregation(agg),
                            ) => {
                                let Some((n, start)) = agg.feed(t, key.clone(), distinct) else {
                                    continue;
                                };
                                let mut e: Map<String, Value> = pr
                                    .group
                                    .iter()
                                    .zip(key)
                                    .map(|((c, _), v)| (c.clone(), Value::String(v)))
                                    .collect();
                                e.insert("count".into(), Value::from(n));
                                (Some(iso_time(start)), e)
                            }
                            (
                                MatchKind::Correlation {
                                    t,
                                    key,
                                    first,
                                    then,
                                    entities,
                                },
                                Stage::Correlation(c),
                            ) => {
                                let (Some(t), Some(key)) = (t, key) else {
                                    c.untimed += u64::from(t.is_none());
                                    continue;
                                };
                                let entities = entity_map(pr, entities);
                                match c.kind {
                                    CorrelationKind::Sequence => {
                                        if c.remember_and_pair(&key, t, first, then).is_none() {
                                            continue;
                                        }
                                        (None, entities)
                                    }
                                    CorrelationKind::Absence => {
                                        if then {
                                            c.resolve(&key, t);
                                        }
                                        if first.is_some() {
                                            let at = (names[file].as_str(), index);
                                            hit_line(
                                                &mut line,
                                                pr,
                                                at,
                                                r.time.as_deref(),
                                                None,
                                                entities,
                                            );
                                            if let Err(e) = c.open(t, &key, &line) {
                                                break 'run Err(Failed::Spill(e));
                                            }
                                        }
                                        continue;
                                    }
                                }
                            }
                            _ => continue,
                        };
                        hits[m.rule] += 1;
                        let at = (names[file].as_str(), index);
                        hit_line(&mut line, pr, at, r.time.as_deref(), window, entities);
                        if let Err(e) = w.write_all(&line) {
                            break 'run Err(Failed::Write(e));
                        }
                    }
                }
            }
        }
        w.flush().map_err(Failed::Write)
    };
    summary.hits = pack
        .rules
        .iter()
        .zip(&hits)
        .map(|(r, n)| (r.rule.name.0.clone(), r.rule.severity, *n))
        .collect();
    summary.aggregation = pack
        .rules
        .iter()
        .zip(&stages)
        .filter_map(|(r, s)| match s {
            Stage::Aggregation(a) => Some((r.rule.name.0.clone(), a.late, a.untimed)),
            Stage::Each | Stage::Correlation(_) => None,
        })
        .collect();
    summary.correlation = pack
        .rules
        .iter()
        .zip(&stages)
        .filter_map(|(r, s)| match s {
            Stage::Correlation(c) => Some((r.rule.name.0.clone(), c.open_windows(), c.untimed)),
            _ => None,
        })
        .collect();
    match result {
        Ok(()) => Ok(()),
        Err(Failed::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            summary.stopped_early = true;
            Ok(())
        }
        Err(Failed::Write(e)) => Err(ReplayError::Write(e)),
        Err(Failed::Spill(e)) => Err(ReplayError::Spill(e)),
    }
}

/// A rule's entity columns with the values read from a record (absent: null).
fn entity_map(pr: &PackRule, values: Vec<Option<String>>) -> Map<String, Value> {
    pr.entities
        .iter()
        .zip(values)
        .map(|(c, v)| (c.column.clone(), v.map_or(Value::Null, Value::String)))
        .collect()
}

/// One hit as a JSON line in `line`; `at` is the record's (file, index).
fn hit_line(
    line: &mut Vec<u8>,
    pr: &PackRule,
    at: (&str, u64),
    time: Option<&str>,
    window: Option<String>,
    entities: Map<String, Value>,
) {
    let hit = HitLine {
        rule_id: &pr.rule.id.0,
        rule: &pr.rule.name.0,
        severity: pr.rule.severity,
        file: at.0,
        record: at.1,
        time,
        window,
        entities,
    };
    line.clear();
    // Serialising plain strings and numbers cannot fail.
    let _ = serde_json::to_writer(&mut *line, &hit);
    line.push(b'\n');
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch.
fn iso_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The parse-only baseline for the benchmark: reads JSON Lines files on this thread with
/// serde_json into `Value`s and does nothing else. Returns (values, malformed lines).
pub fn parse_only(files: &[PathBuf]) -> io::Result<(u64, u64)> {
    let (mut values, mut bad) = (0u64, 0u64);
    let mut line = Vec::new();
    for p in files {
        let mut r = BufReader::with_capacity(BLOCK, File::open(p)?);
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if trim(&line).is_empty() {
                continue;
            }
            match serde_json::from_slice::<Value>(&line) {
                Ok(v) => {
                    values += 1;
                    std::hint::black_box(v);
                }
                Err(_) => bad += 1,
            }
        }
    }
    Ok((values, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (text, line, element, skipped) of every value, scanning in blocks of `block` bytes.
    fn scan(input: &str, block: usize) -> Vec<(String, u64, Option<u64>, bool)> {
        let mut s = Scan::default();
        let mut batch = Vec::new();
        let mut units = Vec::new();
        for chunk in input.as_bytes().chunks(block) {
            s.scan(chunk, &mut batch, &mut units);
        }
        s.finish(&mut batch, &mut units);
        units
            .iter()
            .map(|u| {
                (
                    String::from_utf8_lossy(trim(&batch[u.range.clone()])).into_owned(),
                    u.line,
                    u.element,
                    u.skip.is_some(),
                )
            })
            .collect()
    }

    fn texts(input: &str, block: usize) -> Vec<String> {
        scan(input, block).into_iter().map(|u| u.0).collect()
    }

    #[test]
    fn scanner_splits_arrays_across_blocks() {
        let input = "[\n {\"a\": \"x,]}\\\"\"},\n [1, {\"b\": [2]}],\n 3\n]\n[{\"c\":1}]";
        for block in [1, 2, 3, 7, 1000] {
            assert_eq!(
                scan(input, block),
                vec![
                    ("{\"a\": \"x,]}\\\"\"}".to_string(), 2, Some(0), false),
                    ("[1, {\"b\": [2]}]".to_string(), 3, Some(1), false),
                    ("3".to_string(), 4, Some(2), false),
                    ("{\"c\":1}".to_string(), 6, Some(3), false),
                ],
                "block size {block}"
            );
        }
    }

    #[test]
    fn scanner_splits_lines_and_pretty_printed_values() {
        let input = "{\"a\":1}\n\n{\"b\":\n  {\"c\": \"}\"}\n}{\"d\":2} 42 \"s\" nul\n";
        for block in [1, 4, 1000] {
            assert_eq!(
                texts(input, block),
                vec![
                    "{\"a\":1}",
                    "{\"b\":\n  {\"c\": \"}\"}\n}",
                    "{\"d\":2}",
                    "42",
                    "\"s\"",
                    "nul"
                ],
                "block size {block}"
            );
        }
        let lines: Vec<u64> = scan(input, 3).iter().map(|u| u.1).collect();
        assert_eq!(lines, vec![1, 3, 5, 5, 5, 5]);
    }

    #[test]
    fn scanner_resyncs_after_a_truncated_line() {
        for block in [1, 5, 1000] {
            assert_eq!(
                texts("{\"a\": [1,\n{\"b\": \"unterminated\n{\"c\": 3}\n", block),
                vec!["{\"a\": [1,", "{\"b\": \"unterminated", "{\"c\": 3}"],
                "block size {block}"
            );
            assert_eq!(
                texts("[\n{\"a\": 1\n{\"b\": 2},\n{\"c\": 3}\n]", block),
                vec!["{\"a\": 1", "{\"b\": 2}", "{\"c\": 3}"]
            );
        }
    }

    #[test]
    fn scanner_reports_empty_elements_and_truncation() {
        let got = scan("[1,,2,] x [{\"a\":", 4);
        let skips: Vec<bool> = got.iter().map(|g| g.3).collect();
        assert_eq!(skips, vec![false, true, false, true, false, false]);
        assert_eq!(got[4].0, "x");
        assert_eq!(got[5].0, "{\"a\":");
        assert!(scan("[]", 1).is_empty());
        assert!(scan(" [ ] \n", 1).is_empty());
    }

    #[test]
    fn iso_times_round_trip() {
        for t in [0i64, 1_689_208_199, 951_782_400, -86_400] {
            assert_eq!(parse_time(&iso_time(t)), Some(t), "{}", iso_time(t));
        }
        assert_eq!(iso_time(1_689_206_400), "2023-07-13T00:00:00Z");
    }

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

    #[test]
    fn aggregation_windows_close_behind_the_watermark() {
        let mut a = AggState {
            window: 60,
            threshold: 2,
            distinct: false,
            groups: HashMap::new(),
            watermark: None,
            evicted_to: i64::MIN,
            late: 0,
            untimed: 0,
        };
        let k = || vec!["x".to_string()];
        assert_eq!(a.feed(Some(10), k(), None), None);
        assert_eq!(a.feed(Some(70), k(), None), None);
        // Out of order within one window of lateness: still counted.
        assert_eq!(a.feed(Some(20), k(), None), Some((2, 0)));
        assert_eq!(a.feed(Some(30), k(), None), None, "fires once per window");
        assert_eq!(a.feed(Some(200), k(), None), None);
        assert_eq!(a.feed(Some(50), k(), None), None);
        assert_eq!(a.late, 1);
        assert_eq!(a.feed(None, k(), None), None);
        assert_eq!(a.untimed, 1);
        assert!(a.groups.len() <= 2);
    }
}
