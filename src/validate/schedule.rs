//! Durations and a rule's schedule.

use super::Ctx;
use crate::diag::{Code, Diagnostic};
use crate::load::raw::{RawRule, S, TestEvent};
use crate::model::*;

pub(super) fn duration(cx: &mut Ctx, v: &S<String>) -> Option<Duration> {
    match Duration::parse(&v.value) {
        Some(d) => Some(d),
        None => {
            cx.err(
                v,
                Code::BadDuration,
                format!("`{}` is not a duration", v.value),
                "write a whole number and m, h or d: 5m, 1h, 14d",
            );
            None
        }
    }
}

pub(super) fn schedule<E: TestEvent>(cx: &mut Ctx, raw: &RawRule<E>) -> Option<Schedule> {
    let s = &raw.schedule;
    let frequency = duration(cx, &s.frequency)?;
    let (min, max) = (5, 14 * 1440);
    if frequency.minutes < min || frequency.minutes > max {
        cx.err(
            &s.frequency,
            Code::BadDuration,
            format!("`{}` is outside 5m … 14d", frequency.text),
            "Sentinel accepts schedules from 5 minutes to 14 days",
        );
        return None;
    }
    // A run reads back its frequency plus the rule's window (plus the pack's delay, under a
    // day): Sentinel's query period stops at 14 days.
    let window = raw
        .aggregation
        .as_ref()
        .map(|a| &a.value.window)
        .or(raw.correlation.as_ref().map(|k| &k.value.within));
    if let Some(w) = window
        && let Some(d) = Duration::parse(&w.value)
        && d.minutes + frequency.minutes > max
    {
        cx.err(
            w,
            Code::BadDuration,
            format!(
                "the window ({}) plus the frequency ({}) is over 14 days",
                d.text, frequency.text
            ),
            "each run reads back its frequency plus the window, and Sentinel's query period \
             stops at 14 days: shorten the window or the frequency",
        );
        return None;
    }
    // Deprecated, so a pack written before keeps building: a warning at the key, which is
    // otherwise ignored (its value is kept only for the lock hash, see model::Schedule).
    let legacy_lookback = s.lookback.as_ref().and_then(|v| {
        cx.warnings.push(
            Diagnostic::warning(
                Code::Deprecated,
                "`schedule.lookback` is deprecated and ignored: the query period is derived from \
                 the frequency, the tolerated ingestion delay and the rule's window",
            )
            .at(cx.span(v))
            .help(
                "delete the line; it is part of the rule's lock hash, so record the change with \
                 `rulepack lock --bump` (docs/rule-format.md, \"schedule\")",
            ),
        );
        Duration::parse(&v.value)
    });
    Some(Schedule {
        frequency,
        legacy_lookback,
    })
}
