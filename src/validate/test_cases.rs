//! A rule's test cases: events it must and must not match.

use super::Ctx;
use super::events::{check_event, has_activity};
use crate::diag::{Code, Diagnostic};
use crate::load::raw::{RawRule, S, TestEvent};
use crate::model::*;
use crate::taxonomy::LogSource;
use std::collections::HashMap;

/// The rule's tests, and which verdicts they cover. Events are checked against the log
/// source's record shape when they were read.
pub(super) fn tests<E: TestEvent>(
    cx: &mut Ctx,
    ls: Option<&LogSource>,
    raw: &RawRule<E>,
) -> (Vec<TestCase>, Coverage) {
    let mut out = Vec::new();
    let mut coverage = Coverage::default();
    let mut names: HashMap<&str, ()> = HashMap::new();
    for (i, t) in raw.tests.iter().enumerate() {
        let r = &t.value;
        // Where this test's text ends, to find keys inside its events.
        let test_end = raw
            .tests
            .get(i + 1)
            .map_or(cx.text.len(), |next| cx.span(next).start);
        if names.insert(r.name.value.as_str(), ()).is_some() {
            cx.err(
                &r.name,
                Code::BadTest,
                format!("two tests are named `{}`", r.name.value),
                "give each test its own name",
            );
        }
        let expect_match = match r.expect.value.as_str() {
            "match" => true,
            "no_match" => false,
            _ => {
                cx.err(
                    &r.expect,
                    Code::BadTest,
                    format!("unknown expectation `{}`", r.expect.value),
                    "write `match` or `no_match`",
                );
                continue;
            }
        };
        let events: Vec<&S<E>> = match (&r.event, &r.events) {
            (Some(e), None) => vec![e],
            (None, Some(es)) if !es.value.is_empty() => es.value.iter().collect(),
            _ => {
                cx.err(
                    &r.name,
                    Code::BadTest,
                    "a test needs exactly one of `event` or a non-empty `events`",
                    "give the Graph record under `event:` (or several under `events:`)",
                );
                continue;
            }
        };
        if events.iter().any(|e| !e.value.is_object()) {
            cx.err(
                &r.name,
                Code::BadTest,
                "a test event must be a mapping (a Graph directoryAudit record)",
                "write the record as a YAML mapping or JSON object",
            );
            continue;
        }
        if expect_match {
            coverage.matches = true;
        } else {
            coverage.no_match = true;
        }
        // Tests read without their events are checked, not kept.
        let Some(records) = events
            .iter()
            .map(|e| e.value.record())
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        if let Some(ls) = ls {
            for (j, (e, record)) in events.iter().zip(&records).enumerate() {
                let span = cx.span(e);
                let end = events
                    .get(j + 1)
                    .map_or(test_end, |next| cx.span(next).start);
                check_event(cx, ls, record, span, end);
                if !expect_match && !has_activity(ls, record) {
                    cx.diags.push(
                        Diagnostic::error(
                            Code::BadTest,
                            format!(
                                "this no_match record has no `{}`, so it passes against any rule that names an activity",
                                ls.activity_field
                            ),
                        )
                        .at(span)
                        .help("give the record the activity it must not be mistaken for, e.g. the rule's own activity with one detail changed"),
                    );
                }
            }
        }
        let events = records;
        out.push(TestCase {
            name: r.name.value.clone(),
            expect_match,
            note: r.note.as_ref().map(|n| n.value.clone()),
            events,
            span: cx.span(&r.name),
        });
    }
    (out, coverage)
}

/// A `test` or `stable` rule must prove both verdicts (an error at its `status`); an
/// `experimental` one is warned. Only for rules read with their tests.
pub fn check_coverage(rules: &[Rule]) -> Vec<Diagnostic> {
    rules
        .iter()
        .filter(|r| !r.coverage.missing().is_empty())
        .filter_map(|r| {
            let missing = r.coverage.missing().join(" and no ");
            let d = match r.status {
                Status::Test | Status::Stable => Diagnostic::error(
                    Code::BadTest,
                    format!(
                        "a `{}` rule needs a match and a no_match test; `{}` has no {missing}",
                        if r.status == Status::Test { "test" } else { "stable" },
                        r.name.0
                    ),
                )
                .help("add the missing test (a near miss makes the best no_match), or set `status: experimental`"),
                Status::Experimental => Diagnostic::warning(
                    Code::BadTest,
                    format!("experimental rule `{}` has no {missing} test", r.name.0),
                )
                .help("add it before setting `status: test` or `stable`, which require both"),
                Status::Deprecated => return None,
            };
            Some(d.at(r.spans.status))
        })
        .collect()
}
