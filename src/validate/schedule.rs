//! Durations and a rule's schedule.

use super::Ctx;
use crate::diag::Code;
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
    let frequency = duration(cx, &s.frequency);
    let lookback = duration(cx, &s.lookback);
    let (frequency, lookback) = (frequency?, lookback?);
    let (min, max) = (5, 14 * 1440);
    for (v, d) in [(&s.frequency, &frequency), (&s.lookback, &lookback)] {
        if d.minutes < min || d.minutes > max {
            cx.err(
                v,
                Code::BadDuration,
                format!("`{}` is outside 5m … 14d", d.text),
                "Sentinel accepts schedules from 5 minutes to 14 days",
            );
            return None;
        }
    }
    if lookback.minutes < frequency.minutes {
        cx.err(
            &s.lookback,
            Code::BadDuration,
            "lookback is shorter than the frequency: events between runs would be missed",
            "make lookback at least the frequency",
        );
        return None;
    }
    if let Some(a) = &raw.aggregation
        && let Some(w) = Duration::parse(&a.value.window.value)
        && w.minutes > lookback.minutes
    {
        cx.err(
            &a.value.window,
            Code::BadDuration,
            "the aggregation window is longer than the lookback",
            "raise schedule.lookback to at least the window",
        );
        return None;
    }
    if let Some(k) = &raw.correlation
        && let Some(w) = Duration::parse(&k.value.within.value)
        && w.minutes + frequency.minutes > lookback.minutes
    {
        cx.err(
            &s.lookback,
            Code::BadDuration,
            format!(
                "lookback {} is shorter than `within` ({}) plus the frequency ({})",
                lookback.text, w.text, frequency.text
            ),
            "each run must see a whole window before its newest records; raise schedule.lookback",
        );
        return None;
    }
    Some(Schedule {
        frequency,
        lookback,
    })
}
