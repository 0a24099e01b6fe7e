//! The reference evaluator: runs a rule's IR over Microsoft Graph directoryAudit records. It is
//! what `rulepack test` checks the rules' own tests with, and the specification the backends'
//! outputs are replayed against. Semantics, operator by operator (docs/semantics.md says the same):
//!
//! - A field is read from the record by its taxonomy `graph` path. A JSON string is its text; a
//!   number, boolean, object or array is its compact JSON text; null or missing is *absent*.
//! - String tests on an absent value are false. Case-insensitive tests compare Unicode lower case.
//! - `regex` is unanchored (Rust `regex`, RE2 syntax); case-insensitive adds `(?i)`.
//! - `exists: true` holds when the value is present, not null and not the empty string (an empty
//!   JSON array or object is present); `exists: false` is its negation.
//! - Numbers compare as f64; a value that is not a number (or numeric text) makes the test false.
//! - `json` steps decode the value as JSON; a string met on the way is decoded again before a key
//!   or index is applied; a missing key, bad index or undecodable text makes the value absent.
//! - `some` holds when at least one element of the array (of the bound parent element, for nested
//!   arrays) satisfies its condition with that element bound; a missing array has no elements.
//! - Aggregation: matching records are grouped by the group-by columns' values and by fixed windows
//!   aligned to the Unix epoch (as KQL and SPL `bin` do); the rule fires for a group whose count (or
//!   distinct count of the field's present values) reaches the threshold.
//! - Output columns (and correlation keys): a top-level field's text; for an array field, the value
//!   of the first element that satisfies the output's `where` (without `where`: the first element
//!   with a non-empty value).
//! - Correlation, over records with a time and a non-empty key: a `sequence` fires on a `then`
//!   record when a `first` record with the same key lies at most `within` before it (or at the
//!   same time); an `absence` fires on a `first` record when no `then` record with the same key
//!   lies in `[t, t + within]` and the newest record seen is at least `t + within` (the window
//!   has closed). A record that matches both stages counts in both.

mod decoded;
mod fields;
mod index;
mod outputs;
mod time;

pub use decoded::Decoded;
pub(crate) use fields::map_member;
pub use index::Index;
pub use outputs::{OutCol, Stages};
pub use time::parse_time;

use crate::ir::{Case, Cmp, Cond, Op, Pred, SetDir, StrOp};
use crate::model::{AggFunction, Rule};
use crate::taxonomy::LogSource;
use fields::{Base, Fnv, walk};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasherDefault;
use std::sync::{OnceLock, RwLock};

/// Evaluates rules of one log source against its records. Shareable between threads.
pub struct Evaluator<'a> {
    /// Compiled regexes by pattern, each compiled once (case-insensitive and sensitive slots); an
    /// invalid pattern is cached as `None` and never matches.
    regexes: RwLock<HashMap<String, RegexSlots>>,
    /// The taxonomy's Graph paths split at the dots once, by field and by array index.
    field_paths: Vec<Vec<String>>,
    array_paths: Vec<Vec<String>>,
    /// Field and array names → their index in the taxonomy, and where each is read from, resolved
    /// once: every predicate looks its field up, and SipHash on the name (the taxonomy's maps)
    /// was a twentieth of replay's time.
    field_index: HashMap<&'a str, usize, BuildHasherDefault<Fnv>>,
    array_index: HashMap<&'a str, usize, BuildHasherDefault<Fnv>>,
    field_base: Vec<Base>,
    array_base: Vec<Base>,
}

type RegexSlots = std::sync::Arc<[OnceLock<Option<regex::Regex>>; 2]>;

/// Bound elements, innermost last, keyed by the array's index in the taxonomy.
type Bindings<'v> = Vec<(usize, &'v Value)>;

impl<'a> Evaluator<'a> {
    pub fn new(ls: &'a LogSource) -> Self {
        let split = |p: &str| p.split('.').map(str::to_string).collect();
        let base = |array: &Option<String>| match array {
            None => Base::Record,
            Some(a) => ls
                .arrays
                .get_index_of(a)
                .map_or(Base::Missing, Base::Element),
        };
        Evaluator {
            regexes: RwLock::new(HashMap::new()),
            field_paths: ls.fields.values().map(|f| split(&f.graph)).collect(),
            array_paths: ls.arrays.values().map(|a| split(&a.graph)).collect(),
            field_index: ls
                .fields
                .keys()
                .enumerate()
                .map(|(i, k)| (k.as_str(), i))
                .collect(),
            array_index: ls
                .arrays
                .keys()
                .enumerate()
                .map(|(i, k)| (k.as_str(), i))
                .collect(),
            field_base: ls.fields.values().map(|f| base(&f.array)).collect(),
            array_base: ls.arrays.values().map(|a| base(&a.parent)).collect(),
        }
    }

    /// Does one record satisfy the (lowered) condition?
    pub fn matches(&self, cond: &Cond, record: &Value) -> bool {
        self.cond(cond, record, &mut Vec::new(), &Decoded::default())
    }

    /// [`Evaluator::matches`], with JSON text decoded at most once per record for every rule
    /// that reads it: `decoded` must be used for this one `record` only.
    pub fn matches_decoded<'v>(
        &self,
        cond: &Cond,
        record: &'v Value,
        decoded: &Decoded<'v>,
    ) -> bool {
        self.cond(cond, record, &mut Vec::new(), decoded)
    }

    /// Does the rule fire on these records (in time order)? Without aggregation: on any record.
    pub fn fires(&self, rule: &Rule, cond: &Cond, records: &[Value]) -> bool {
        let hits = records.iter().filter(|r| self.matches(cond, r));
        let Some(agg) = rule.aggregation() else {
            return hits.count() > 0;
        };
        let window = agg.window.minutes as i64 * 60;
        let mut groups: BTreeMap<(Vec<String>, i64), (u32, BTreeSet<String>)> = BTreeMap::new();
        for r in hits {
            let Some(t) = self.field_text(r, "time").as_deref().and_then(parse_time) else {
                continue;
            };
            let key: Vec<String> = agg
                .group_by
                .iter()
                .filter_map(|c| rule.outputs.iter().find(|o| o.column == *c))
                .map(|o| self.field_text(r, &o.field.0).unwrap_or_default())
                .collect();
            let entry = groups.entry((key, t.div_euclid(window))).or_default();
            entry.0 += 1;
            if let Some(f) = &agg.field
                && let Some(v) = self.field_text(r, &f.0)
            {
                entry.1.insert(v);
            }
        }
        groups.values().any(|(count, distinct)| match agg.function {
            AggFunction::Count => *count >= agg.threshold,
            AggFunction::DistinctCount => distinct.len() as u32 >= agg.threshold,
        })
    }

    fn cond<'v>(
        &self,
        c: &Cond,
        record: &'v Value,
        bound: &mut Bindings<'v>,
        d: &Decoded<'v>,
    ) -> bool {
        match c {
            Cond::All(cs) => cs.iter().all(|c| self.cond(c, record, bound, d)),
            Cond::Any(cs) => cs.iter().any(|c| self.cond(c, record, bound, d)),
            Cond::Not(c) => !self.cond(c, record, bound, d),
            Cond::Some { array, cond } => {
                let Some(&index) = self.array_index.get(array.0.as_str()) else {
                    return false;
                };
                let base = match self.array_base[index] {
                    Base::Record => Some(record),
                    Base::Element(p) => self.bound(p, bound),
                    Base::Missing => None,
                };
                let path = &self.array_paths[index];
                let Some(Value::Array(items)) = base.and_then(|b| walk(b, path)) else {
                    return false;
                };
                items.iter().any(|item| {
                    bound.push((index, item));
                    let ok = self.cond(cond, record, bound, d);
                    bound.pop();
                    ok
                })
            }
            Cond::Pred(p) => self.pred(p, record, bound, d),
        }
    }

    fn value<'v>(&self, name: &str, record: &'v Value, bound: &Bindings<'v>) -> Option<&'v Value> {
        let &index = self.field_index.get(name)?;
        let base = match self.field_base[index] {
            Base::Record => record,
            Base::Element(a) => self.bound(a, bound)?,
            Base::Missing => return None,
        };
        walk(base, &self.field_paths[index]).filter(|v| !v.is_null())
    }

    /// The element bound for the array of taxonomy index `index`, innermost first.
    fn bound<'v>(&self, index: usize, bound: &Bindings<'v>) -> Option<&'v Value> {
        bound
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map(|(_, v)| *v)
    }

    /// A top-level field as text (for grouping and outputs).
    pub fn field_text(&self, record: &Value, name: &str) -> Option<String> {
        self.value(name, record, &Vec::new())
            .map(|v| text(v).into_owned())
    }

    fn pred<'v>(&self, p: &Pred, record: &'v Value, bound: &Bindings<'v>, d: &Decoded<'v>) -> bool {
        let raw = match self.field_index.get(p.field.0.as_str()) {
            Some(&index) if matches!(self.field_base[index], Base::Record) => {
                d.field(self, index, record)
            }
            _ => self.value(&p.field.0, record, bound),
        };
        let value: Option<Cow<'v, Value>> = if p.json.is_empty() {
            raw.map(Cow::Borrowed)
        } else {
            raw.and_then(|v| d.follow(v, &p.json)).map(Cow::Owned)
        };
        let value = value.filter(|v| !v.is_null());
        match &p.op {
            Op::SetChange {
                dir,
                old,
                values,
                case,
            } => {
                let old = self
                    .value(&old.0, record, bound)
                    .and_then(|v| d.follow(v, &p.json));
                let (new, old) = (
                    elements(value.as_deref(), *case),
                    elements(old.as_ref(), *case),
                );
                let (from, to) = match dir {
                    SetDir::Added => (&new, &old),
                    SetDir::Removed => (&old, &new),
                };
                let mut moved = from.difference(to);
                if values.is_empty() {
                    moved.next().is_some()
                } else {
                    moved.any(|e| {
                        values
                            .iter()
                            .any(|w| fold(Cow::Borrowed(w.as_str()), *case) == e.as_str())
                    })
                }
            }
            Op::Exists(want) => {
                let present = value.as_deref().is_some_and(|v| !text(v).is_empty());
                present == *want
            }
            Op::Number { cmp, value: n } => {
                let Some(x) = value.as_deref().and_then(number) else {
                    return false;
                };
                match cmp {
                    Cmp::Gt => x > *n,
                    Cmp::Gte => x >= *n,
                    Cmp::Lt => x < *n,
                    Cmp::Lte => x <= *n,
                }
            }
            Op::Regex { pattern, case } => {
                let Some(v) = value.as_deref().map(text) else {
                    return false;
                };
                self.regex_match(pattern, *case, &v)
            }
            Op::Str {
                op, values, case, ..
            } => {
                let Some(v) = value.as_deref().map(text) else {
                    return false;
                };
                if *case == Case::Insensitive && v.is_ascii() {
                    // ASCII text: comparing ASCII case-insensitively is comparing lower case,
                    // without copying either side. Other values take the general path below.
                    if let Some(hit) = ascii_any(&v, values, *op) {
                        return hit;
                    }
                }
                let v = fold(v, *case);
                values.iter().any(|w| {
                    let w = fold(Cow::Borrowed(w.as_str()), *case);
                    match op {
                        StrOp::Equals => v == w,
                        StrOp::Contains => v.contains(w.as_ref()),
                        StrOp::StartsWith => v.starts_with(w.as_ref()),
                        StrOp::EndsWith => v.ends_with(w.as_ref()),
                    }
                })
            }
        }
    }

    /// Whether `text` matches the pattern's regex (with `(?i)` prepended when case-insensitive),
    /// compiled on first use and shared by every later evaluation; never when the pattern is
    /// invalid. The shared regex is used in place: a clone per test started with an empty
    /// search cache, and making it cost forty times the search.
    fn regex_match(&self, pattern: &str, case: Case, text: &str) -> bool {
        let slots = self
            .regexes
            .read()
            .ok()
            .and_then(|m| m.get(pattern).cloned());
        let slots = match slots {
            Some(s) => s,
            None => match self.regexes.write() {
                Ok(mut m) => m.entry(pattern.to_string()).or_default().clone(),
                Err(_) => return false,
            },
        };
        let slot = match case {
            Case::Insensitive => 0,
            Case::Sensitive => 1,
        };
        slots[slot]
            .get_or_init(|| {
                let pat = match case {
                    Case::Insensitive => format!("(?i){pattern}"),
                    Case::Sensitive => pattern.to_string(),
                };
                regex::Regex::new(&pat).ok()
            })
            .as_ref()
            .is_some_and(|re| re.is_match(text))
    }
}

/// Case-insensitive string test of ASCII `v` against the values, when they are all ASCII
/// (`None` otherwise: the caller folds to Unicode lower case instead).
fn ascii_any(v: &str, values: &[String], op: StrOp) -> Option<bool> {
    if !values.iter().all(|w| w.is_ascii()) {
        return None;
    }
    let (v, n) = (v.as_bytes(), v.len());
    Some(values.iter().any(|w| {
        let w = w.as_bytes();
        match op {
            StrOp::Equals => v.eq_ignore_ascii_case(w),
            StrOp::StartsWith => n >= w.len() && v[..w.len()].eq_ignore_ascii_case(w),
            StrOp::EndsWith => n >= w.len() && v[n - w.len()..].eq_ignore_ascii_case(w),
            StrOp::Contains => {
                w.is_empty() || v.windows(w.len()).any(|win| win.eq_ignore_ascii_case(w))
            }
        }
    }))
}

/// Unicode lower case for case-insensitive tests; text without upper-case or non-ASCII
/// characters is already its lower case and is not copied.
fn fold(s: Cow<'_, str>, case: Case) -> Cow<'_, str> {
    match case {
        Case::Insensitive if s.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) => {
            Cow::Owned(s.to_lowercase())
        }
        _ => s,
    }
}

/// The elements of a JSON array as (case-folded) text; anything else is the empty set.
fn elements(v: Option<&Value>, case: Case) -> BTreeSet<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter(|x| !x.is_null())
            .map(|x| fold(text(x), case).into_owned())
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// The value as text: strings as they are, everything else as compact JSON.
fn text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        Value::Null => Cow::Borrowed(""),
        other => Cow::Owned(other.to_string()),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_shortcut_agrees_with_unicode_lower_case() {
        let texts = [
            "",
            "a",
            "A",
            "Invite external user",
            "INVITE EXTERNAL USER",
            "invite",
            "#EXT#",
            "x#ext#y",
            "ÄbC",
            "äbc",
            "ΣΑΣ",
            "K",
            "\u{212A}",
            "k",
            "user@Contoso.COM",
        ];
        let ops = [
            StrOp::Equals,
            StrOp::Contains,
            StrOp::StartsWith,
            StrOp::EndsWith,
        ];
        for v in texts {
            for w in texts {
                for op in ops {
                    let slow = {
                        let (v, w) = (v.to_lowercase(), w.to_lowercase());
                        match op {
                            StrOp::Equals => v == w,
                            StrOp::Contains => v.contains(&w),
                            StrOp::StartsWith => v.starts_with(&w),
                            StrOp::EndsWith => v.ends_with(&w),
                        }
                    };
                    let values = [w.to_string()];
                    if v.is_ascii()
                        && let Some(fast) = ascii_any(v, &values, op)
                    {
                        assert_eq!(fast, slow, "{v:?} {op:?} {w:?}");
                    }
                    let folded = fold(Cow::Borrowed(v), Case::Insensitive);
                    assert_eq!(folded, v.to_lowercase());
                }
            }
        }
    }

    #[test]
    fn regexes_are_compiled_once_per_pattern_and_case() {
        let ls: LogSource = serde_json::from_value(serde_json::json!({
            "name": "t", "title": "t", "arrays": {},
            "fields": {"f": {"type": "string", "description": "", "graph": "f"}},
            "activity_field": "f", "record": {"f": "string"}
        }))
        .unwrap();
        let eval = Evaluator::new(&ls);
        let pred = |pattern: &str, case| {
            Cond::Pred(Pred {
                field: crate::ir::FieldPath("f".into()),
                json: Vec::new(),
                op: Op::Regex {
                    pattern: pattern.into(),
                    case,
                },
                span: crate::source::Span {
                    file: crate::source::FileId(0),
                    start: 0,
                    end: 0,
                },
            })
        };
        let r = serde_json::json!({"f": "Guest#EXT#"});
        assert!(eval.matches(&pred("#ext#", Case::Insensitive), &r));
        assert!(!eval.matches(&pred("#ext#", Case::Sensitive), &r));
        assert!(eval.matches(&pred("#EXT#", Case::Sensitive), &r));
        assert!(
            !eval.matches(&pred("(", Case::Insensitive), &r),
            "invalid: no match"
        );
        assert_eq!(eval.regexes.read().unwrap().len(), 3);
    }
}
