//! Output columns (and correlation keys) read from records, and correlations evaluated over a
//! list of records (module docs of [`crate::eval`]).

use super::fields::{walk, walk_mut};
use super::{Evaluator, parse_time, text};
use crate::ir::{ArrayName, Cond};
use crate::lower::lower;
use crate::model::{Correlation, CorrelationKind, Output, Rule};
use crate::taxonomy::LogSource;
use serde_json::Value;

impl Evaluator<'_> {
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
