//! Correlations: a rule's stages and window; across the pack, the rules they name.

use super::Ctx;
use super::metadata::pick;
use super::output::output;
use super::schedule::duration;
use super::shapes::is_slug;
use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::load::raw::{RawCorrelation, RawRule, S, TestEvent};
use crate::model::*;
use crate::taxonomy::LogSource;

pub(super) fn correlation<E: TestEvent>(
    cx: &mut Ctx,
    ls: &LogSource,
    raw: &RawRule<E>,
    k: &S<RawCorrelation>,
) -> Option<Correlation> {
    let r = &k.value;
    if let Some(a) = &raw.aggregation {
        cx.err(
            a,
            Code::BadCorrelation,
            "a correlation takes no `aggregation`",
            "count in the rules it names, or remove `aggregation`",
        );
    }
    let kind = pick(
        cx,
        &r.kind,
        &[
            ("sequence", CorrelationKind::Sequence),
            ("absence", CorrelationKind::Absence),
        ],
        "correlation type",
    );
    let stage = |cx: &mut Ctx, v: &S<String>| {
        if is_slug(&v.value) {
            Some(StageRef {
                rule: RuleName(v.value.clone()),
                span: cx.span(v),
            })
        } else {
            cx.err(
                v,
                Code::BadCorrelation,
                format!("`{}` is not a rule name", v.value),
                "name a rule of this pack by its `name`",
            );
            None
        }
    };
    let first: Vec<StageRef> = r.first.value.iter().filter_map(|v| stage(cx, v)).collect();
    let then = stage(cx, &r.then);
    match (kind, r.first.value.len()) {
        (_, 0) => cx.err(
            &r.first,
            Code::BadCorrelation,
            "`first` names no rule",
            "list the rules whose matches open the window",
        ),
        (Some(CorrelationKind::Absence), n) if n > 1 => cx.err(
            &r.first,
            Code::BadCorrelation,
            "an absence has exactly one `first` rule",
            "write one correlation per rule whose follow-up you expect",
        ),
        _ => {}
    }
    let key = output(cx, ls, "rp_key", &r.by);
    let within = duration(cx, &r.within);
    Some(Correlation {
        kind: kind?,
        first,
        then: then?,
        key: key?,
        within: within?,
    })
}

/// Every correlation names rules of the pack that match single records of its own log source.
pub fn check_correlations(rules: &[Rule]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for r in rules {
        let Some(c) = r.correlation() else { continue };
        for s in c.stages() {
            let problem = match find(rules, &s.rule) {
                None => {
                    let help =
                        match did_you_mean(&s.rule.0, rules.iter().map(|r| r.name.0.as_str())) {
                            Some(n) => format!("did you mean `{n}`?"),
                            None => "name a rule of this pack by its `name`".into(),
                        };
                    Some((format!("no rule named `{}` in the pack", s.rule.0), help))
                }
                Some(t) if t.name == r.name => Some((
                    "a correlation cannot name itself".into(),
                    "name the rules whose matches it relates".into(),
                )),
                Some(t) if t.correlation().is_some() => Some((
                    format!("`{}` is a correlation itself", s.rule.0),
                    "name single-record rules; correlations do not nest".into(),
                )),
                Some(t) if t.aggregation().is_some() => Some((
                    format!(
                        "`{}` aggregates: its matches are windows, not records",
                        s.rule.0
                    ),
                    "name a rule without `aggregation`".into(),
                )),
                Some(t) if t.logsource != r.logsource => Some((
                    format!(
                        "`{}` reads log source `{}`, this rule `{}`",
                        s.rule.0, t.logsource, r.logsource
                    ),
                    "correlate rules of one log source".into(),
                )),
                Some(_) => None,
            };
            if let Some((msg, help)) = problem {
                diags.push(
                    Diagnostic::error(Code::BadCorrelation, msg)
                        .at(s.span)
                        .help(help),
                );
            }
        }
    }
    diags
}
