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

use crate::ir::{ArrayName, Case, Cmp, Cond, JsonStep, Op, Pred, SetDir, StrOp};
use crate::lower::lower;
use crate::model::{AggFunction, Correlation, CorrelationKind, Output, Rule};
use crate::taxonomy::LogSource;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
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

/// Where a field (or array) is read from: the record, the bound element of an array (by its
/// index in the taxonomy), or nowhere (it names an array the taxonomy lacks: always absent).
#[derive(Clone, Copy)]
enum Base {
    Record,
    Element(usize),
    Missing,
}

/// FNV-1a, for the evaluator's name tables: the names are short and come from the pack, never
/// from records, so a keyed hash buys nothing there.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
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

    /// An output column's value on a record (see the module docs). The record is borrowed
    /// mutably to test one array element at a time, and left as it was.
    pub fn output(&self, record: &mut Value, c: &OutCol) -> Option<String> {
        let Some(a) = &c.array else {
            return self.field_text(record, &c.field);
        };
        let Some(filter) = &a.filter else {
            let items = walk(record, &a.path)?.as_array()?;
            return items
                .iter()
                .filter_map(|e| walk(e, &a.field_path).map(|v| text(v).into_owned()))
                .find(|t| !t.is_empty());
        };
        let items = match walk_mut(record, &a.path)? {
            Value::Array(items) => std::mem::take(items),
            _ => return None,
        };
        let mut found = None;
        let mut kept = Vec::with_capacity(items.len());
        for item in items {
            if found.is_some() {
                kept.push(item);
                continue;
            }
            if let Some(slot) = walk_mut(record, &a.path) {
                *slot = Value::Array(vec![item]);
            }
            let ok = self.matches(filter, record);
            let item = match walk_mut(record, &a.path).map(Value::take) {
                Some(Value::Array(mut one)) if one.len() == 1 => one.remove(0),
                _ => Value::Null,
            };
            if ok {
                found = Some(
                    walk(&item, &a.field_path)
                        .filter(|v| !v.is_null())
                        .map(|v| text(v).into_owned()),
                );
            }
            kept.push(item);
        }
        if let Some(slot) = walk_mut(record, &a.path) {
            *slot = Value::Array(kept);
        }
        found.flatten()
    }

    /// The records (indices) a correlation fires on.
    pub fn correlate(&self, c: &Stages, records: &[Value]) -> Vec<usize> {
        let mut firsts = Vec::new();
        let mut thens = Vec::new();
        let mut newest = None;
        for (i, r) in records.iter().enumerate() {
            let Some(t) = self.field_text(r, "time").as_deref().and_then(parse_time) else {
                continue;
            };
            newest = Some(newest.map_or(t, |n: i64| n.max(t)));
            let is_first = c.first.iter().any(|f| self.matches(f, r));
            let is_then = self.matches(&c.then, r);
            if !(is_first || is_then) {
                continue;
            }
            let key = match &c.key {
                // Keys compare case-insensitively (docs/semantics.md).
                Some(k) => self
                    .output(&mut r.clone(), k)
                    .filter(|k| !k.is_empty())
                    .map(|k| k.to_lowercase()),
                None => Some(String::new()),
            };
            let Some(key) = key else { continue };
            if is_first {
                firsts.push((i, t, key.clone()));
            }
            if is_then {
                thens.push((i, t, key));
            }
        }
        let w = c.within;
        let pairs = |f: &(usize, i64, String), t: &(usize, i64, String)| {
            f.2 == t.2 && f.1 <= t.1 && t.1 <= f.1.saturating_add(w)
        };
        match c.kind {
            CorrelationKind::Sequence => thens
                .iter()
                .filter(|t| firsts.iter().any(|f| pairs(f, t)))
                .map(|t| t.0)
                .collect(),
            CorrelationKind::Absence => firsts
                .iter()
                .filter(|f| newest.is_some_and(|n| f.1.saturating_add(w) <= n))
                .filter(|f| !thens.iter().any(|t| pairs(f, t)))
                .map(|f| f.0)
                .collect(),
        }
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
                self.regex(pattern, *case).is_some_and(|re| re.is_match(&v))
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

    /// The compiled regex for a pattern (with `(?i)` prepended when case-insensitive), compiled
    /// on first use and shared by every later evaluation; `None` when the pattern is invalid.
    fn regex(&self, pattern: &str, case: Case) -> Option<regex::Regex> {
        let slots = self
            .regexes
            .read()
            .ok()
            .and_then(|m| m.get(pattern).cloned());
        let slots = match slots {
            Some(s) => s,
            None => {
                let mut m = self.regexes.write().ok()?;
                m.entry(pattern.to_string()).or_default().clone()
            }
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
            .clone()
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

/// Follows a Graph path (split at its dots).
fn walk<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| member(v, k))
}

/// Objects up to this many keys are searched key by key rather than through their hash table.
const LINEAR_KEYS: usize = 32;

/// `v[k]` when `v` is an object that has key `k` (see [`map_member`]).
fn member<'v>(v: &'v Value, k: &str) -> Option<&'v Value> {
    match v {
        Value::Object(m) => map_member(m, k),
        other => other.get(k),
    }
}

/// `m[k]`. A record's objects are small (a Graph record has about 15 keys): comparing the keys,
/// lengths first, costs less than hashing `k` with the map's SipHash, which every field read did.
/// Keys are unique, so both find the same member.
pub(crate) fn map_member<'m>(m: &'m serde_json::Map<String, Value>, k: &str) -> Option<&'m Value> {
    if m.len() <= LINEAR_KEYS {
        m.iter().find(|(key, _)| key.as_str() == k).map(|(_, v)| v)
    } else {
        m.get(k)
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

/// Follows `steps` from a decoded value: a string met before a step is decoded once, then the
/// step applies. Only the value reached is copied.
fn steps_from(cur: &Value, steps: &[JsonStep]) -> Option<Value> {
    let Some((step, rest)) = steps.split_first() else {
        return Some(cur.clone());
    };
    let decoded;
    let cur = if cur.is_string() {
        decoded = decode(cur)?;
        &decoded
    } else {
        cur
    };
    let next = match step {
        JsonStep::Key(k) => member(cur, k)?,
        JsonStep::Index(i) => cur.get(*i as usize)?,
    };
    steps_from(next, rest)
}

/// What the rules read from one record, kept while it is evaluated, so it is valid for that one
/// record only.
///
/// - The JSON text of its fields, decoded on first use: several rules (and several predicates of
///   one rule) read paths inside the same `modifiedProperties` value, which is then parsed once.
///   Keyed by the field value's address (a record decodes a few values: found by a scan).
/// - Its top-level fields, found on first use: most rules first test the same field (the
///   activity), and each test used to walk the record for it again. Kept for one evaluator (the
///   first that asks; [`crate::replay::Pack`] shares one per log source), by taxonomy index.
#[derive(Default)]
pub struct Decoded<'v> {
    json: std::cell::RefCell<Vec<(usize, Option<std::rc::Rc<Value>>)>>,
    /// (the evaluator's address, each field's value once found).
    fields: std::cell::RefCell<(usize, Vec<Option<Option<&'v Value>>>)>,
}

impl<'v> Decoded<'v> {
    /// Top-level field `index` of `record` as `eval` reads it, found once per record.
    fn field(&self, eval: &Evaluator, index: usize, record: &'v Value) -> Option<&'v Value> {
        let find = || walk(record, &eval.field_paths[index]).filter(|v| !v.is_null());
        let owner = eval as *const Evaluator as usize;
        let mut memo = self.fields.borrow_mut();
        if memo.0 == 0 {
            *memo = (owner, vec![None; eval.field_paths.len()]);
        } else if memo.0 != owner {
            return find();
        }
        *memo.1[index].get_or_insert_with(find)
    }

    /// Decodes JSON text `v` (or takes it decoded) and follows `steps`, decoding strings met on
    /// the way again (see [`steps_from`]).
    fn follow(&self, v: &Value, steps: &[JsonStep]) -> Option<Value> {
        let key = v as *const Value as usize;
        let cached = self
            .json
            .borrow()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, root)| root.clone());
        let root = match cached {
            Some(root) => root,
            None => {
                let root = decode(v).map(std::rc::Rc::new);
                self.json.borrow_mut().push((key, root.clone()));
                root
            }
        }?;
        steps_from(&root, steps)
    }
}

fn decode(v: &Value) -> Option<Value> {
    match v {
        Value::String(s) => serde_json::from_str(s).ok(),
        other => Some(other.clone()),
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

/// Seconds since the Unix epoch of an ISO-8601 time (`2023-07-13T00:29:59.51+00:00`, `…Z`).
/// Reads bytes only, never slicing the text, so any text is safe (a multibyte character where a
/// digit or the offset belongs makes the time unreadable, not a panic); fields out of their
/// calendar range are unreadable too.
pub fn parse_time(s: &str) -> Option<i64> {
    /// The value of a run of ASCII digits (no sign, no spaces).
    fn digits(b: &[u8]) -> Option<i64> {
        b.iter().try_fold(0i64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    }
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, sec) = (
        digits(&b[0..4])?,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &b[19..];
    if let [b'.', frac @ ..] = rest {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        rest = &frac[n..];
    }
    let offset = match rest {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), hh @ .., b':', m1, m2] if hh.len() == 2 => {
            let mins = digits(hh)? * 60 + digits(&[*m1, *m2])?;
            if *sign == b'-' { -mins } else { mins }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset * 60)
}

fn walk_mut<'v>(v: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    path.iter().try_fold(v, |v, k| v.get_mut(k))
}

/// An output column, ready to read from records.
pub struct OutCol {
    pub column: String,
    pub field: String,
    /// For array fields: where the array is and how to pick the element.
    array: Option<ArrayOut>,
}

struct ArrayOut {
    /// Keys of the (top-level) array in the record.
    path: Vec<String>,
    /// Path of the field inside an element.
    field_path: Vec<String>,
    /// `some: array where …`, evaluated on the record with the array cut down to one element.
    filter: Option<Cond>,
}

impl OutCol {
    pub fn new(ls: &LogSource, o: &Output) -> OutCol {
        let array = ls
            .fields
            .get(&o.field.0)
            .and_then(|f| Some((f, f.array.as_ref()?)))
            .and_then(|(f, a)| {
                let def = ls.arrays.get(a)?;
                Some(ArrayOut {
                    path: def.graph.split('.').map(str::to_string).collect(),
                    field_path: f.graph.split('.').map(str::to_string).collect(),
                    filter: o.filter.as_ref().map(|w| {
                        lower(
                            &Cond::Some {
                                array: ArrayName(a.clone()),
                                cond: Box::new(w.clone()),
                            },
                            ls,
                        )
                    }),
                })
            });
        OutCol {
            column: o.column.0.clone(),
            field: o.field.0.clone(),
            array,
        }
    }
}

/// A correlation with its stages' conditions lowered, ready to evaluate.
pub struct Stages {
    pub kind: CorrelationKind,
    /// One condition per `first` rule, in order.
    pub first: Vec<Cond>,
    pub then: Cond,
    /// None: every record shares one key (the mutation check's "without `by`").
    pub key: Option<OutCol>,
    /// Seconds.
    pub within: i64,
}

impl Stages {
    /// `None` when a stage names no single-record rule of `rules` (validation rules that out).
    pub fn new(c: &Correlation, rules: &[Rule], ls: &LogSource) -> Option<Stages> {
        let cond = |name| {
            crate::model::find(rules, name)?
                .condition()
                .map(|c| lower(c, ls))
        };
        Some(Stages {
            kind: c.kind,
            first: c
                .first
                .iter()
                .map(|s| cond(&s.rule))
                .collect::<Option<_>>()?,
            then: cond(&c.then.rule)?,
            key: Some(OutCol::new(ls, &c.key)),
            within: c.within.minutes as i64 * 60,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time("2023-07-13T00:29:59.5100003+00:00"),
            Some(1_689_208_199)
        );
        assert_eq!(parse_time("2023-07-13T02:29:59+02:00"), Some(1_689_208_199));
        assert_eq!(parse_time("yesterday"), None);
        // Issue 15: a multibyte character where the offset starts used to panic.
        assert_eq!(parse_time("2023-01-01T00:00:00é0:00"), None);
        assert_eq!(parse_time("2023-01-01T00:00:00.5é:00"), None);
        assert_eq!(parse_time("2023-13-01T00:00:00Z"), None, "month 13");
        assert_eq!(
            parse_time("2023-01-01T00:00:+1Z"),
            None,
            "a sign is no digit"
        );
    }

    /// Every valid time with a character of each UTF-8 width put in, or put over, each of its
    /// places reads back as some time or as none, and never panics.
    #[test]
    fn times_with_any_character_anywhere_never_panic() {
        let valid = [
            "2023-07-13T02:29:59+02:00",
            "2023-07-13T00:29:59.5100003-00:30",
            "2023-07-13 00:29:59Z",
        ];
        let mut cases = 0;
        for v in valid {
            assert!(parse_time(v).is_some(), "{v}");
            let chars: Vec<char> = v.chars().collect();
            for i in 0..=chars.len() {
                for c in ['é', '€', '🙂', '+', ':', '.', '9', 'Z'] {
                    let mut put_in = chars.clone();
                    put_in.insert(i, c);
                    let mut over = chars.clone();
                    if i < over.len() {
                        over[i] = c;
                    }
                    for text in [put_in, over] {
                        let text: String = text.into_iter().collect();
                        let _ = parse_time(&text);
                        cases += 1;
                    }
                }
            }
        }
        assert!(cases > 500, "{cases}");
    }

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

    #[test]
    fn json_paths_decode_nested_strings() {
        let v = Value::String(r#"["{\"P\":{\"A\":[\"x.com\"]}}"]"#.into());
        let path = [
            JsonStep::Index(0),
            JsonStep::Key("P".into()),
            JsonStep::Key("A".into()),
        ];
        let d = Decoded::default();
        assert_eq!(d.follow(&v, &path), Some(serde_json::json!(["x.com"])));
        assert_eq!(d.follow(&v, &[JsonStep::Index(1)]), None);
        let other = Value::String("not json".into());
        assert_eq!(Decoded::default().follow(&other, &path), None);
    }
}
