//! The pack: every rule lowered once with its evaluator, and what one record yields for the
//! stages.

use super::SkipReason;
use super::aggregation::AggState;
use super::correlation::CorrState;
use super::shape::clip;
use crate::eval::{Evaluator, Index, OutCol, Stages, parse_time};
use crate::ir::Cond;
use crate::lower::lower;
use crate::model::{AggFunction, Rule, RuleName};
use crate::taxonomy::LogSource;
use serde_json::Value;
use std::sync::Arc;

/// What a rule does with its matching records, in record order.
pub(super) enum Stage {
    /// Every matching record is a hit.
    Each,
    /// Counted per group and window (see the module docs).
    Aggregation(AggState),
    /// Matches of other rules paired by key (see the module docs).
    Correlation(CorrState),
}

pub(crate) struct PackRule<'a> {
    pub(crate) rule: &'a Rule,
    /// Shared by the rules of one log source, so what one rule found in a record (its fields,
    /// its decoded JSON: [`crate::eval::Decoded`]) serves the next.
    eval: Arc<Evaluator<'a>>,
    /// Single-record rules: the lowered condition. Correlations evaluate nothing themselves:
    /// they read the matches of the rules they name (`links`).
    cond: Option<Cond>,
    /// For correlations: the pack indices of the `first` rules, then of the `then` rule.
    links: Option<(Vec<usize>, usize)>,
    pub(crate) entities: Vec<OutCol>,
    /// Group-by fields (top-level), for aggregations.
    pub(crate) group: Vec<(String, String)>,
    /// For correlations: the stages; `cond` is then any stage's condition.
    stages: Option<Stages>,
}

/// Every rule of a pack, lowered once, with its evaluator.
pub struct Pack<'a> {
    pub(crate) rules: Vec<PackRule<'a>>,
    /// Per log source, the rules keyed by the value of one field they require ([`Index`]).
    indexes: Vec<(Arc<Evaluator<'a>>, Index)>,
    /// The rules no index decides for: evaluated on every record.
    unindexed: Vec<bool>,
}

impl<'a> Pack<'a> {
    pub fn new(rules: &'a [Rule], logsources: &'a [LogSource]) -> Pack<'a> {
        let all = rules;
        let evals: Vec<Arc<Evaluator>> = logsources
            .iter()
            .map(|ls| Arc::new(Evaluator::new(ls)))
            .collect();
        let rules = rules
            .iter()
            .filter_map(|rule| {
                let at = logsources.iter().position(|l| l.name == rule.logsource)?;
                let ls = &logsources[at];
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
                    eval: Arc::clone(&evals[at]),
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
        let indexes: Vec<(Arc<Evaluator>, Index)> = evals
            .iter()
            .filter_map(|e| {
                let conds = rules.iter().enumerate().filter_map(|(i, r)| {
                    let c = r.cond.as_ref().filter(|_| Arc::ptr_eq(&r.eval, e))?;
                    Some((i, c))
                });
                Some((Arc::clone(e), e.index(conds)?))
            })
            .collect();
        let mut unindexed: Vec<bool> = rules.iter().map(|r| r.cond.is_some()).collect();
        for (_, index) in &indexes {
            for &i in index.keyed() {
                unindexed[i] = false;
            }
        }
        Pack {
            rules,
            indexes,
            unindexed,
        }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub(super) fn stages(&self) -> Vec<Stage> {
        self.rules
            .iter()
            .map(|r| match (r.rule.aggregation(), &r.stages) {
                (_, Some(s)) => Stage::Correlation(CorrState::new(s.kind, s.within)),
                (None, None) => Stage::Each,
                (Some(a), None) => Stage::Aggregation(AggState::new(
                    (a.window.minutes as i64 * 60).max(1),
                    a.threshold,
                    a.function == AggFunction::DistinctCount,
                )),
            })
            .collect()
    }

    /// A normalised record's event time, as written.
    pub(crate) fn time(&self, record: &Value) -> Option<String> {
        self.rules.first()?.eval.field_text(record, "time")
    }

    /// Evaluates every rule on one normalised record. A record whose time is there but cannot be
    /// read is skipped: it could be placed in no window, and a record without a time is rare
    /// enough in an export that it is a broken one.
    pub(crate) fn evaluate(&self, record: &mut Value) -> Result<RecordOut, (SkipReason, String)> {
        self.evaluate_only(record, None)
    }

    /// Which rules [`Pack::evaluate_only`] reports: `report` (by pack index), evaluating besides
    /// them only the rules their correlations read.
    pub(crate) fn only(&self, report: Vec<bool>) -> Only {
        let mut eval = report.clone();
        for (r, _) in self.rules.iter().zip(&report).filter(|(_, on)| **on) {
            if let Some((first, then)) = &r.links {
                for &i in first.iter().chain([then]) {
                    eval[i] = true;
                }
            }
        }
        Only { report, eval }
    }

    /// [`Pack::evaluate`], reporting only the rules `only` names (all without it): `simulate`
    /// leaves hunting rules out, and evaluating them cost it their outputs on every match.
    pub(crate) fn evaluate_only(
        &self,
        record: &mut Value,
        only: Option<&Only>,
    ) -> Result<RecordOut, (SkipReason, String)> {
        let evaluated = |i: usize| only.is_none_or(|o| o.eval[i]);
        let reported = |i: usize| only.is_none_or(|o| o.report[i]);
        let time = self.time(record).filter(|t| !t.is_empty());
        if let Some(t) = &time
            && parse_time(t).is_none()
        {
            return Err((SkipReason::BadTime, format!("`{}`", clip(t, 64))));
        }
        // The decoded JSON text is keyed by addresses in `record`: it ends before the outputs
        // below borrow the record mutably.
        let hit: Vec<bool> = {
            let decoded = crate::eval::Decoded::default();
            let mut may = self.unindexed.clone();
            for (e, index) in &self.indexes {
                e.candidates(index, record, &decoded, &mut may);
            }
            self.rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    evaluated(i)
                        && may[i]
                        && r.cond
                            .as_ref()
                            .is_some_and(|c| r.eval.matches_decoded(c, record, &decoded))
                })
                .collect()
        };
        // (rule, first stage matched, then stage matched): a correlation takes part when one of
        // the rules it names matched.
        let matched: Vec<(usize, Option<usize>, bool)> = self
            .rules
            .iter()
            .enumerate()
            .filter(|(i, _)| reported(*i))
            .filter_map(|(i, r)| match &r.links {
                None => hit[i].then_some((i, None, false)),
                Some((first, then)) => {
                    let f = first.iter().position(|&j| hit[j]);
                    (f.is_some() || hit[*then]).then_some((i, f, hit[*then]))
                }
            })
            .collect();
        let mut out = RecordOut {
            time,
            matches: Vec::with_capacity(matched.len()),
        };
        for (i, first, then) in matched {
            let r = &self.rules[i];
            let kind = match (r.rule.aggregation(), &r.stages) {
                (_, Some(s)) => MatchKind::Correlation {
                    t: out.time.as_deref().and_then(parse_time),
                    key: match &s.key {
                        // Keys compare case-insensitively (docs/semantics.md).
                        Some(k) => r
                            .eval
                            .output(record, k)
                            .filter(|k| !k.is_empty())
                            .map(|k| k.to_lowercase()),
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
        Ok(out)
    }
}

/// The rules one evaluation reports ([`Pack::only`]), by pack index.
pub(crate) struct Only {
    report: Vec<bool>,
    /// `report` and the rules the reported correlations read.
    eval: Vec<bool>,
}

/// A record's matches and what the stages need from it.
pub(crate) struct RecordOut {
    /// The record's `time` field as written.
    pub(crate) time: Option<String>,
    pub(crate) matches: Vec<Match>,
}

pub(crate) struct Match {
    pub(crate) rule: usize,
    pub(crate) kind: MatchKind,
}

/// The facts a rule's stage needs from a matching record.
pub(crate) enum MatchKind {
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
