//! The rule index: which conditions a record can satisfy, from one look at one top-level field.
//! Most rules require one of a few activity names (an `equals` or `one_of` on `activity`, under
//! `all`, or in every branch of an `any`), so a record can match only the rules that name its own
//! activity, and the others need not be evaluated at all. Replay and simulate evaluate every rule
//! on every record; with the index, a record costs one lookup plus its few candidates.
//!
//! A condition is only ever ruled out when the field's value is none of the values the condition
//! requires, compared as the evaluator compares (Unicode lower case for case-insensitive values),
//! so the index never changes a result.

use super::fields::Fnv;
use super::{Base, Decoded, Evaluator, fold, text};
use crate::ir::{Case, Cond, Op, StrOp};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasherDefault;

type Keys = HashMap<String, Vec<usize>, BuildHasherDefault<Fnv>>;

/// Values a condition requires of a field (one of them must be its value), as
/// (case-sensitive, value folded as the evaluator compares it).
type Required = BTreeSet<(bool, String)>;

/// The conditions keyed by the values they require of one top-level field.
pub struct Index {
    /// The taxonomy index of the field.
    field: usize,
    /// Case-insensitive values, folded to lower case → the numbers of the conditions.
    insensitive: Keys,
    sensitive: Keys,
    /// The numbers of every condition keyed here.
    keyed: Vec<usize>,
}

impl Index {
    /// The numbers of the conditions this index decides for.
    pub fn keyed(&self) -> &[usize] {
        &self.keyed
    }
}

impl Evaluator<'_> {
    /// Indexes `conds` (a number of the caller's choice, and a condition of this log source) by
    /// the top-level field that leaves the fewest of them to evaluate. `None` when no condition
    /// requires values of a top-level field.
    pub fn index<'c>(&self, conds: impl IntoIterator<Item = (usize, &'c Cond)>) -> Option<Index> {
        let conds: Vec<(usize, &Cond)> = conds.into_iter().collect();
        let mut fields = BTreeSet::new();
        for (_, c) in &conds {
            self.equality_fields(c, &mut fields);
        }
        let required = |field: usize| -> Vec<(usize, Required)> {
            conds
                .iter()
                .filter_map(|&(n, c)| Some((n, self.required(c, field)?)))
                .collect()
        };
        // Counting every value as equally likely, a record evaluates the conditions the field
        // does not key plus the keyed ones per value. `result` is required by almost every rule
        // but has one value; `activity` has many.
        let cost = |keyed: &[(usize, Required)]| {
            let postings: usize = keyed.iter().map(|(_, r)| r.len()).sum();
            let values: BTreeSet<&(bool, String)> = keyed.iter().flat_map(|(_, r)| r).collect();
            (conds.len() - keyed.len()) as f64 + postings as f64 / values.len().max(1) as f64
        };
        let (field, keyed) = fields
            .into_iter()
            .map(|f| (f, required(f)))
            .min_by(|(_, a), (_, b)| cost(a).total_cmp(&cost(b)))?;
        let mut index = Index {
            field,
            insensitive: Keys::default(),
            sensitive: Keys::default(),
            keyed: Vec::new(),
        };
        for (n, values) in keyed {
            for (sensitive, v) in values {
                let map = if sensitive {
                    &mut index.sensitive
                } else {
                    &mut index.insensitive
                };
                map.entry(v).or_default().push(n);
            }
            index.keyed.push(n);
        }
        Some(index)
    }

    /// Sets `may[n]` for every condition `n` of `index` that `record` can satisfy. `decoded`:
    /// as for [`Evaluator::matches_decoded`].
    pub fn candidates<'v>(
        &self,
        index: &Index,
        record: &'v Value,
        decoded: &Decoded<'v>,
        may: &mut [bool],
    ) {
        // The field as a predicate reads it: an absent value equals nothing.
        let Some(v) = decoded.field(self, index.field, record).map(text) else {
            return;
        };
        let mut mark = |rules: Option<&Vec<usize>>| {
            for &n in rules.into_iter().flatten() {
                may[n] = true;
            }
        };
        mark(index.sensitive.get(v.as_ref()));
        if !index.insensitive.is_empty() {
            mark(index.insensitive.get(fold(v, Case::Insensitive).as_ref()));
        }
    }

    /// The values `c` requires of top-level field `field`, when it requires some: an equality on
    /// it; under `all`, the fewest any part requires; under `any`, every branch's together.
    /// `not` and array quantifiers require nothing of a top-level field.
    fn required(&self, c: &Cond, field: usize) -> Option<Required> {
        match c {
            Cond::Pred(p) => match &p.op {
                Op::Str {
                    op: StrOp::Equals,
                    values,
                    case,
                    ..
                } if p.json.is_empty() && self.top(&p.field.0) == Some(field) => Some(
                    values
                        .iter()
                        .map(|v| {
                            let folded = fold(Cow::Borrowed(v.as_str()), *case);
                            (*case == Case::Sensitive, folded.into_owned())
                        })
                        .collect(),
                ),
                _ => None,
            },
            Cond::All(cs) => cs
                .iter()
                .filter_map(|c| self.required(c, field))
                .min_by_key(BTreeSet::len),
            Cond::Any(cs) => cs.iter().try_fold(Required::new(), |mut all, c| {
                all.extend(self.required(c, field)?);
                Some(all)
            }),
            Cond::Not(_) | Cond::Some { .. } => None,
        }
    }

    /// The top-level fields of the equality predicates in `c`: the fields worth indexing by.
    fn equality_fields(&self, c: &Cond, out: &mut BTreeSet<usize>) {
        match c {
            Cond::All(cs) | Cond::Any(cs) => cs.iter().for_each(|c| self.equality_fields(c, out)),
            Cond::Pred(p) => {
                if let Op::Str {
                    op: StrOp::Equals, ..
                } = p.op
                    && let Some(f) = self.top(&p.field.0)
                {
                    out.insert(f);
                }
            }
            Cond::Not(_) | Cond::Some { .. } => {}
        }
    }

    /// The taxonomy index of a field read from the record itself.
    fn top(&self, field: &str) -> Option<usize> {
        let &i = self.field_index.get(field)?;
        matches!(self.field_base[i], Base::Record).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{FieldPath, Pred};
    use crate::source::{FileId, Span};
    use crate::taxonomy::LogSource;

    fn logsource() -> LogSource {
        serde_json::from_value(serde_json::json!({
            "name": "t", "title": "t", "arrays": {},
            "fields": {
                "activity": {"type": "string", "description": "", "graph": "activityDisplayName"},
                "result": {"type": "string", "description": "", "graph": "result"},
                "upn": {"type": "string", "description": "", "graph": "initiatedBy.user.userPrincipalName"}
            },
            "activity_field": "activity", "record": {}
        }))
        .unwrap()
    }

    fn str_op(field: &str, op: StrOp, values: &[&str], case: Case) -> Cond {
        Cond::Pred(Pred {
            field: FieldPath(field.into()),
            json: Vec::new(),
            op: Op::Str {
                op,
                values: values.iter().map(|v| v.to_string()).collect(),
                case,
                param: None,
            },
            span: Span {
                file: FileId(0),
                start: 0,
                end: 0,
            },
        })
    }

    fn eq(field: &str, values: &[&str]) -> Cond {
        str_op(field, StrOp::Equals, values, Case::Insensitive)
    }

    fn record(activity: &str, result: &str) -> Value {
        serde_json::json!({
            "activityDisplayName": activity,
            "result": result,
            "initiatedBy": {"user": {"userPrincipalName": "a#EXT#@contoso.com"}}
        })
    }

    /// The conditions of the tests below, numbered by position.
    fn conds() -> Vec<Cond> {
        vec![
            // 0: one of two activities, with result: keyed by activity.
            Cond::All(vec![
                eq("result", &["success"]),
                eq(
                    "activity",
                    &["Invite external user", "Redeem external user invite"],
                ),
            ]),
            // 1: every branch of an any names activities: keyed by their union.
            Cond::All(vec![
                eq("result", &["success"]),
                Cond::Any(vec![
                    eq("activity", &["Delete external user"]),
                    Cond::All(vec![
                        eq("activity", &["Delete user"]),
                        str_op("upn", StrOp::Contains, &["#ext#"], Case::Insensitive),
                    ]),
                ]),
            ]),
            // 2: a branch without an activity: not keyed, evaluated on every record.
            Cond::Any(vec![
                eq("activity", &["Add user"]),
                str_op("upn", StrOp::EndsWith, &["@contoso.com"], Case::Insensitive),
            ]),
            // 3: case-sensitive and non-ASCII values.
            Cond::All(vec![
                str_op("activity", StrOp::Equals, &["Ärger"], Case::Insensitive),
                eq("result", &["success"]),
            ]),
            Cond::All(vec![
                str_op("activity", StrOp::Equals, &["Exact Case"], Case::Sensitive),
                eq("result", &["success"]),
            ]),
            // 5: the activity only under `not`: nothing required.
            Cond::Not(Box::new(eq("activity", &["Invite external user"]))),
        ]
    }

    fn candidates(eval: &Evaluator, index: &Index, r: &Value) -> Vec<bool> {
        let mut may: Vec<bool> = (0..conds().len())
            .map(|n| !index.keyed().contains(&n))
            .collect();
        eval.candidates(index, r, &Decoded::default(), &mut may);
        may
    }

    #[test]
    fn the_index_keys_by_the_field_with_the_most_values() {
        let ls = logsource();
        let eval = Evaluator::new(&ls);
        let conds = conds();
        let index = eval.index(conds.iter().enumerate()).unwrap();
        // `result` is required by four conditions but has one value; `activity` has six.
        assert_eq!(index.field, eval.field_index["activity"]);
        assert_eq!(index.keyed(), &[0, 1, 3, 4]);
        let may = candidates(&eval, &index, &record("INVITE external USER", "success"));
        assert_eq!(may, [true, false, true, false, false, true]);
        let may = candidates(&eval, &index, &record("Delete user", "failure"));
        assert_eq!(may, [false, true, true, false, false, true]);
        let may = candidates(&eval, &index, &record("ÄRGER", "success"));
        assert_eq!(may, [false, false, true, true, false, true]);
        let may = candidates(&eval, &index, &record("exact case", "success"));
        assert_eq!(may, [false, false, true, false, false, true]);
        let may = candidates(&eval, &index, &record("Exact Case", "success"));
        assert_eq!(may, [false, false, true, false, true, true]);
        let absent = serde_json::json!({"result": "success"});
        assert_eq!(
            candidates(&eval, &index, &absent),
            [false, false, true, false, false, true]
        );
    }

    #[test]
    fn no_condition_the_evaluator_matches_is_left_out() {
        let ls = logsource();
        let eval = Evaluator::new(&ls);
        let conds = conds();
        let index = eval.index(conds.iter().enumerate()).unwrap();
        let activities = [
            "Invite external user",
            "invite EXTERNAL user",
            "Redeem external user invite",
            "Delete external user",
            "Delete user",
            "DELETE USER",
            "Add user",
            "Ärger",
            "äRGER",
            "Exact Case",
            "exact case",
            "Invite external user ",
            "",
        ];
        let mut matched = 0;
        for a in activities {
            for result in ["success", "failure"] {
                let r = record(a, result);
                let may = candidates(&eval, &index, &r);
                for (n, c) in conds.iter().enumerate() {
                    if eval.matches(c, &r) {
                        matched += 1;
                        assert!(may[n], "condition {n} matches {r} but was ruled out");
                    }
                }
            }
        }
        assert!(
            matched > 20,
            "the records exercise the conditions ({matched})"
        );
    }

    #[test]
    fn conditions_without_a_required_value_give_no_index() {
        let ls = logsource();
        let eval = Evaluator::new(&ls);
        let conds = [
            Cond::Not(Box::new(eq("activity", &["Add user"]))),
            str_op("activity", StrOp::Contains, &["user"], Case::Insensitive),
        ];
        assert!(eval.index(conds.iter().enumerate()).is_none());
    }
}
