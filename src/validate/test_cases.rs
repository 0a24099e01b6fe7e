//! A rule's test cases: events it must and must not match.

use super::Ctx;
use crate::diag::Code;
use crate::load::raw::{RawRule, TestEvent};
use crate::model::*;
use std::collections::HashMap;

pub(super) fn tests<E: TestEvent>(cx: &mut Ctx, raw: &RawRule<E>) -> Vec<TestCase> {
    let mut out = Vec::new();
    let mut names: HashMap<&str, ()> = HashMap::new();
    for t in &raw.tests {
        let r = &t.value;
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
        let events: Vec<&E> = match (&r.event, &r.events) {
            (Some(e), None) => vec![&e.value],
            (None, Some(es)) if !es.value.is_empty() => es.value.iter().map(|e| &e.value).collect(),
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
        if events.iter().any(|e| !e.is_object()) {
            cx.err(
                &r.name,
                Code::BadTest,
                "a test event must be a mapping (a Graph directoryAudit record)",
                "write the record as a YAML mapping or JSON object",
            );
            continue;
        }
        // Tests read without their events are checked, not kept.
        let Some(events) = events.iter().map(|e| e.record()).collect() else {
            continue;
        };
        out.push(TestCase {
            name: r.name.value.clone(),
            expect_match,
            note: r.note.as_ref().map(|n| n.value.clone()),
            events,
            span: cx.span(&r.name),
        });
    }
    out
}
