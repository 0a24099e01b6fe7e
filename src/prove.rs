//! `rulepack test`: every rule's tests through the reference evaluator, then mutation: each
//! predicate is negated, given a value no event holds, removed, and (`added` / `removed`) turned
//! the other way, and the aggregation threshold is moved by one; a broken copy that no test tells apart from the rule is reported with its position.

use crate::eval::{Evaluator, Stages};
use crate::ir::{Cond, Op, Pred, SetDir};
use crate::lower::lower;
use crate::model::{Correlation, Logic, Rule};
use crate::source::{SourceMap, Span};
use crate::taxonomy::LogSource;

pub struct Outcome {
    pub rule: String,
    pub test: String,
    pub position: String,
    pub expected: bool,
    pub got: bool,
}

pub struct Report {
    pub outcomes: Vec<Outcome>,
    /// (position, what) for rules whose tests cannot tell them from a broken copy, or lack tests.
    pub weak: Vec<(String, String)>,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.expected != o.got).count()
    }
}

pub fn run(rules: &[Rule], logsources: &[LogSource], sources: &SourceMap) -> Report {
    let mut report = Report {
        outcomes: Vec::new(),
        weak: Vec::new(),
    };
    for rule in rules {
        let Some(ls) = logsources.iter().find(|l| l.name == rule.logsource) else {
            continue;
        };
        let eval = Evaluator::new(ls);
        if let Some(c) = rule.correlation() {
            prove_correlation(&mut report, rule, c, rules, ls, &eval, sources);
            continue;
        }
        let Some(cond) = rule.condition().map(|c| lower(c, ls)) else {
            continue;
        };
        let verdicts = |c: &Cond, r: &Rule| -> Vec<bool> {
            r.tests
                .iter()
                .map(|t| eval.fires(r, c, &t.events))
                .collect()
        };
        let actual = verdicts(&cond, rule);
        let here = pos(sources, rule.spans.condition);
        if !record(&mut report, rule, &actual, sources) {
            continue;
        }
        for i in 0..count_preds(&cond) {
            for (what, mutant) in [
                ("negated", mutate(&cond, i, negate)),
                ("given a value no event holds", mutate(&cond, i, alien)),
                ("removed (no near miss needs it)", mutate(&cond, i, drop)),
                (
                    "turned the other way (added read as removed)",
                    mutate(&cond, i, swap),
                ),
            ] {
                let Some((mutant, span)) = mutant else {
                    continue;
                };
                if verdicts(&mutant, rule) == actual {
                    report.weak.push((pos(sources, span), format!("{}: the tests pass with this predicate {what}; add a test that needs it", rule.name.0)));
                }
            }
        }
        if let Some(agg) = rule.aggregation() {
            for delta in [1i64, -1] {
                let threshold = agg.threshold as i64 + delta;
                if threshold < 1 {
                    continue;
                }
                let mut moved = rule.clone();
                if let Logic::Events {
                    aggregation: Some(a),
                    ..
                } = &mut moved.logic
                {
                    a.threshold = threshold as u32;
                }
                if verdicts(&cond, &moved) == actual {
                    report.weak.push((here.clone(), format!("{}: the tests pass with the threshold at {threshold}; add tests at the threshold and just below it", rule.name.0)));
                }
            }
        }
    }
    report
}

/// A correlation's tests, then its mutants: the window doubled and halved, the key dropped, and
/// each of several `first` rules left out.
fn prove_correlation(
    report: &mut Report,
    rule: &Rule,
    c: &Correlation,
    rules: &[Rule],
    ls: &LogSource,
    eval: &Evaluator,
    sources: &SourceMap,
) {
    let Some(stages) = Stages::new(c, rules, ls) else {
        return;
    };
    let verdicts = |s: &Stages| -> Vec<bool> {
        rule.tests
            .iter()
            .map(|t| !eval.correlate(s, &t.events).is_empty())
            .collect()
    };
    let actual = verdicts(&stages);
    let here = pos(sources, rule.spans.condition);
    if !record(report, rule, &actual, sources) {
        return;
    }
    let fresh = || Stages::new(c, rules, ls);
    let mut mutants: Vec<(String, String, Option<Stages>)> = Vec::new();
    for (what, factor) in [("doubled", 2.0), ("halved", 0.5)] {
        let mut m = fresh();
        if let Some(m) = m.as_mut() {
            m.within = (m.within as f64 * factor) as i64;
        }
        mutants.push((
            here.clone(),
            format!("the tests pass with `within` {what}; add a test just inside and one just outside the window"),
            m,
        ));
    }
    let mut keyless = fresh();
    if let Some(m) = keyless.as_mut() {
        m.key = None;
    }
    mutants.push((
        here.clone(),
        "the tests pass without `by`; add a near miss whose records have different keys".into(),
        keyless,
    ));
    if c.first.len() > 1 {
        for (i, s) in c.first.iter().enumerate() {
            let mut m = fresh();
            if let Some(m) = m.as_mut() {
                m.first.remove(i);
            }
            mutants.push((
                pos(sources, s.span),
                format!(
                    "the tests pass without `{}` in `first`; add a match that starts with it",
                    s.rule.0
                ),
                m,
            ));
        }
    }
    for (at, what, m) in mutants {
        if let Some(m) = m
            && verdicts(&m) == actual
        {
            report.weak.push((at, format!("{}: {what}", rule.name.0)));
        }
    }
}

/// Records the verdicts; false (with a WEAK line) when the rule lacks a match or a near miss,
/// which leaves mutants nothing to be told apart by.
fn record(report: &mut Report, rule: &Rule, actual: &[bool], sources: &SourceMap) -> bool {
    for (t, got) in rule.tests.iter().zip(actual) {
        report.outcomes.push(Outcome {
            rule: rule.name.0.clone(),
            test: t.name.clone(),
            position: pos(sources, t.span),
            expected: t.expect_match,
            got: *got,
        });
    }
    let both =
        rule.tests.iter().any(|t| t.expect_match) && rule.tests.iter().any(|t| !t.expect_match);
    if !both {
        report.weak.push((
            pos(sources, rule.spans.condition),
            format!(
                "{}: needs at least one `match` and one `no_match` test",
                rule.name.0
            ),
        ));
    }
    both
}

fn pos(sources: &SourceMap, span: Span) -> String {
    let (line, col) = sources.line_col(span.file, span.start);
    format!("{}:{line}:{col}", sources.get(span.file).path.display())
}

fn count_preds(c: &Cond) -> usize {
    match c {
        Cond::All(cs) | Cond::Any(cs) => cs.iter().map(count_preds).sum(),
        Cond::Not(c) | Cond::Some { cond: c, .. } => count_preds(c),
        Cond::Pred(_) => 1,
    }
}

/// A copy of `c` with its `target`-th predicate (pre-order) replaced by `f(pred)`.
fn mutate(c: &Cond, target: usize, f: fn(&Pred) -> Option<Cond>) -> Option<(Cond, Span)> {
    let mut seen = 0;
    let mut span = None;
    let out = walk(c, target, &mut seen, &mut span, f)?;
    Some((out, span?))
}

fn walk(
    c: &Cond,
    target: usize,
    seen: &mut usize,
    span: &mut Option<Span>,
    f: fn(&Pred) -> Option<Cond>,
) -> Option<Cond> {
    Some(match c {
        Cond::All(cs) => Cond::All(
            cs.iter()
                .map(|c| walk(c, target, seen, span, f))
                .collect::<Option<_>>()?,
        ),
        Cond::Any(cs) => Cond::Any(
            cs.iter()
                .map(|c| walk(c, target, seen, span, f))
                .collect::<Option<_>>()?,
        ),
        Cond::Not(c) => Cond::Not(Box::new(walk(c, target, seen, span, f)?)),
        Cond::Some { array, cond } => Cond::Some {
            array: array.clone(),
            cond: Box::new(walk(cond, target, seen, span, f)?),
        },
        Cond::Pred(p) => {
            *seen += 1;
            if *seen - 1 == target {
                *span = Some(p.span);
                f(p)?
            } else {
                Cond::Pred(p.clone())
            }
        }
    })
}

/// Always true: the rule without this predicate.
fn drop(_: &Pred) -> Option<Cond> {
    Some(Cond::All(Vec::new()))
}

fn negate(p: &Pred) -> Option<Cond> {
    Some(Cond::Not(Box::new(Cond::Pred(p.clone()))))
}

/// The same test against a value no real event holds; None where that equals negation.
fn alien(p: &Pred) -> Option<Cond> {
    const ALIEN: &str = "rulepack-mutant-\u{2400}";
    let op = match &p.op {
        Op::Str {
            op,
            values,
            case,
            param,
        } => Op::Str {
            op: *op,
            values: values.iter().map(|v| format!("{ALIEN}{v}")).collect(),
            case: *case,
            param: param.clone(),
        },
        Op::Regex { case, .. } => Op::Regex {
            pattern: regex_literal(ALIEN),
            case: *case,
        },
        Op::Number { cmp, value } => Op::Number {
            cmp: *cmp,
            value: value + 1.0e12,
        },
        Op::SetChange {
            dir,
            old,
            values,
            case,
        } if !values.is_empty() => Op::SetChange {
            dir: *dir,
            old: old.clone(),
            values: values.iter().map(|v| format!("{ALIEN}{v}")).collect(),
            case: *case,
        },
        Op::Exists(_) | Op::SetChange { .. } => return None,
    };
    Some(Cond::Pred(Pred { op, ..p.clone() }))
}

/// `added` read as `removed` and the reverse: the direction of a change must be told apart.
fn swap(p: &Pred) -> Option<Cond> {
    let Op::SetChange {
        dir,
        old,
        values,
        case,
    } = &p.op
    else {
        return None;
    };
    let dir = match dir {
        SetDir::Added => SetDir::Removed,
        SetDir::Removed => SetDir::Added,
    };
    Some(Cond::Pred(Pred {
        op: Op::SetChange {
            dir,
            old: old.clone(),
            values: values.clone(),
            case: *case,
        },
        ..p.clone()
    }))
}

fn regex_literal(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_string()
            } else {
                format!("\\x{{{:x}}}", c as u32)
            }
        })
        .collect()
}
