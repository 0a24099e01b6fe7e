//! The schedule semantics of docs/semantics.md ("Running on a schedule") applied to matches:
//! which run reports each record, window, pair or absence, and which are lost to lateness.
//!
//! Nothing is rescanned per run. Every alert's run follows from its own records' times: a
//! single-record match is decided when it is read, an aggregation keeps one counter per (group,
//! window), and a correlation keeps, per key, the times of its stage matches until the end.

use crate::replay::hit::EntityObject;
use crate::replay::pack::{MatchKind, Pack, PackRule};
use crate::schedule::{PackSettings, RunBounds, RunKind};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// One alert: the run that raises it and what it is about.
pub(crate) struct Alert {
    pub rule: usize,
    /// Run time, seconds since the epoch.
    pub run: i64,
    /// Index of the record the alert is about (the first record of an aggregation window).
    pub record: u64,
    /// The anchor's event time (a window's start for an aggregation).
    pub time: i64,
    pub ingested: Option<i64>,
    pub entities: Entities,
}

/// An alert's entity values, kept as read: the JSON object is built only when the alert is
/// written (on every core), so the alerts held until the end are a fraction of their maps' size.
pub(crate) enum Entities {
    /// The rule's entity columns' values, in its entity order (absent: null).
    Columns(Vec<Option<String>>),
    /// An aggregation's group-by values, in its group order, and the count.
    Group(Vec<String>, u32),
}

impl Entities {
    /// The `entities` object of the alert line.
    pub fn object<'p>(&self, pr: &'p PackRule) -> EntityObject<'p> {
        match self {
            Entities::Columns(values) => EntityObject::columns(pr, values.clone()),
            Entities::Group(key, count) => {
                let mut entities: Map<String, Value> = pr
                    .group
                    .iter()
                    .zip(key)
                    .map(|((col, _), v)| (col.clone(), Value::String(v.clone())))
                    .collect();
                entities.insert("count".into(), Value::from(*count));
                EntityObject::Map(entities)
            }
        }
    }
}

/// A record as the simulator sees it: its position, event and ingestion times.
#[derive(Clone, Copy)]
pub(crate) struct Stamp {
    pub index: u64,
    pub t: i64,
    pub i: i64,
}

struct Cell {
    count: u32,
    distinct: HashSet<String>,
    record: u64,
}

struct StageRec {
    s: Stamp,
    /// Kept only for the stage whose records alert (a sequence's `then`, an absence's `first`).
    entities: Vec<Option<String>>,
}

#[derive(Default)]
struct KeyState {
    firsts: Vec<StageRec>,
    thens: Vec<StageRec>,
}

pub(crate) struct Runs<'p> {
    pack: &'p Pack<'p>,
    bounds: Vec<RunBounds>,
    pub alerts: Vec<Alert>,
    /// Per rule: matches no run reported because they arrived too late.
    pub lost: Vec<u64>,
    aggs: HashMap<(usize, Vec<String>, i64), Cell>,
    corr: Vec<HashMap<String, KeyState>>,
}

/// The run that covers instant `x`: runs are at multiples of `f` seconds and a run at T covers
/// (T − F, T].
fn covering_run(x: i64, f: i64) -> i64 {
    (x + f - 1).div_euclid(f) * f
}

impl<'p> Runs<'p> {
    pub fn new(pack: &'p Pack<'p>, settings: &PackSettings) -> Runs<'p> {
        let bounds = pack
            .rules
            .iter()
            .map(|r| RunBounds::of(r.rule, settings))
            .collect();
        Runs {
            pack,
            bounds,
            alerts: Vec::new(),
            lost: vec![0; pack.rules.len()],
            aggs: HashMap::new(),
            corr: (0..pack.rules.len()).map(|_| HashMap::new()).collect(),
        }
    }

    fn secs(&self, rule: usize) -> (i64, i64, i64) {
        let b = self.bounds[rule];
        (
            b.frequency as i64 * 60,
            b.delay as i64 * 60,
            b.window as i64 * 60,
        )
    }

    /// Takes one record's match for one rule.
    pub fn add(&mut self, rule: usize, s: Stamp, kind: MatchKind) {
        let (f, d, w) = self.secs(rule);
        match kind {
            MatchKind::Each(values) => {
                let run = covering_run(s.i, f);
                if s.t > run - f - d {
                    self.alerts.push(Alert {
                        rule,
                        run,
                        record: s.index,
                        time: s.t,
                        ingested: Some(s.i),
                        entities: Entities::Columns(values),
                    });
                } else {
                    self.lost[rule] += 1;
                }
            }
            MatchKind::Aggregation { key, distinct, .. } => {
                let start = s.t.div_euclid(w) * w;
                if s.i > covering_run(start + w + d, f) {
                    self.lost[rule] += 1;
                    return;
                }
                let cell = self.aggs.entry((rule, key, start)).or_insert(Cell {
                    count: 0,
                    distinct: HashSet::new(),
                    record: s.index,
                });
                cell.count += 1;
                cell.record = cell.record.min(s.index);
                if let Some(v) = distinct {
                    cell.distinct.insert(v);
                }
            }
            MatchKind::Correlation {
                key: Some(key),
                first,
                then,
                entities,
                ..
            } => {
                let alerting = self.bounds[rule].kind;
                let state = self.corr[rule].entry(key).or_default();
                let rec = |keep: bool| StageRec {
                    s,
                    entities: if keep { entities.clone() } else { Vec::new() },
                };
                if first.is_some() {
                    state.firsts.push(rec(alerting == RunKind::Absence));
                }
                if then {
                    state.thens.push(rec(alerting == RunKind::Sequence));
                }
            }
            MatchKind::Correlation { key: None, .. } => {}
        }
    }

    /// Decides the aggregation windows and correlations once every record has been read.
    pub fn finish(&mut self) {
        let aggs = std::mem::take(&mut self.aggs);
        for ((rule, key, start), cell) in aggs {
            let (f, d, w) = self.secs(rule);
            let pr = &self.pack.rules[rule];
            let Some(a) = pr.rule.aggregation() else {
                continue;
            };
            let value = if a.field.is_some() {
                cell.distinct.len() as u32
            } else {
                cell.count
            };
            if value < a.threshold {
                continue;
            }
            self.alerts.push(Alert {
                rule,
                run: covering_run(start + w + d, f),
                record: cell.record,
                time: start,
                ingested: None,
                entities: Entities::Group(key, value),
            });
        }
        let corr = std::mem::take(&mut self.corr);
        for (rule, keys) in corr.into_iter().enumerate() {
            let kind = self.bounds[rule].kind;
            for (_, mut state) in keys {
                state.firsts.sort_by_key(|r| r.s.t);
                match kind {
                    RunKind::Sequence => self.sequence(rule, state),
                    RunKind::Absence => self.absence(rule, state),
                    RunKind::Single | RunKind::Aggregation => {}
                }
            }
        }
        self.alerts
            .sort_by_key(|a| (a.run, a.rule, a.time, a.record));
    }

    /// A `then` record is reported by the run covering the later of its own ingestion and the
    /// earliest ingestion of a matching `first` record, if its event time is then at most F + D
    /// old.
    fn sequence(&mut self, rule: usize, mut state: KeyState) {
        let (f, d, w) = self.secs(rule);
        state.thens.sort_by_key(|r| r.s.t);
        let mut firsts = EarliestIngestion::new(&state.firsts);
        for r in state.thens {
            let Some(first_i) = firsts.within(r.s.t - w, r.s.t) else {
                continue;
            };
            let run = covering_run(r.s.i.max(first_i), f);
            if r.s.t > run - f - d {
                self.alerts.push(Alert {
                    rule,
                    run,
                    record: r.s.index,
                    time: r.s.t,
                    ingested: Some(r.s.i),
                    entities: Entities::Columns(r.entities),
                });
            } else {
                self.lost[rule] += 1;
            }
        }
    }

    /// A `first` record is judged by the run covering its window's end plus the delay: it
    /// alerts when no `then` record of its key within the window was ingested by that run.
    fn absence(&mut self, rule: usize, mut state: KeyState) {
        let (f, d, w) = self.secs(rule);
        state.thens.sort_by_key(|r| r.s.t);
        let mut thens = EarliestIngestion::new(&state.thens);
        for first in state.firsts {
            let run = covering_run(first.s.t + w + d, f);
            if first.s.i > run {
                self.lost[rule] += 1;
                continue;
            }
            let followed = thens
                .within(first.s.t, first.s.t + w)
                .is_some_and(|i| i <= run);
            if !followed {
                self.alerts.push(Alert {
                    rule,
                    run,
                    record: first.s.index,
                    time: first.s.t,
                    ingested: Some(first.s.i),
                    entities: Entities::Columns(first.entities),
                });
            }
        }
    }
}

/// The earliest ingestion time among stage records whose event time lies in a window that only
/// moves forward (a sliding-window minimum): each record enters and leaves the window once, so
/// a key with n records of one stage and m of the other costs O(n + m), not O(n × m).
struct EarliestIngestion {
    /// (event time, ingestion time), by event time.
    recs: Vec<(i64, i64)>,
    /// Records that entered the window so far.
    entered: usize,
    /// Indices into `recs` inside the window whose ingestion time is smaller than that of every
    /// later one in the window: the front is the window's minimum.
    candidates: std::collections::VecDeque<usize>,
}

impl EarliestIngestion {
    /// `recs` must be sorted by event time.
    fn new(recs: &[StageRec]) -> EarliestIngestion {
        EarliestIngestion {
            recs: recs.iter().map(|r| (r.s.t, r.s.i)).collect(),
            entered: 0,
            candidates: std::collections::VecDeque::new(),
        }
    }

    /// The earliest ingestion among records with event time in `[lo, hi]`; `lo` and `hi` must
    /// not decrease from one call to the next.
    fn within(&mut self, lo: i64, hi: i64) -> Option<i64> {
        while let Some(&(t, i)) = self.recs.get(self.entered)
            && t <= hi
        {
            while self.candidates.back().is_some_and(|&k| self.recs[k].1 >= i) {
                self.candidates.pop_back();
            }
            self.candidates.push_back(self.entered);
            self.entered += 1;
        }
        while self
            .candidates
            .front()
            .is_some_and(|&k| self.recs[k].0 < lo)
        {
            self.candidates.pop_front();
        }
        self.candidates.front().map(|&k| self.recs[k].1)
    }
}

#[cfg(test)]
mod tests {
    use super::{EarliestIngestion, StageRec, Stamp, covering_run};

    #[test]
    fn the_sliding_minimum_equals_a_scan_of_each_window() {
        // Event times with repeats and gaps, ingestion times in no order.
        let recs: Vec<StageRec> = (0..200i64)
            .map(|k| StageRec {
                s: Stamp {
                    index: k as u64,
                    t: k / 3 * 7,
                    i: (k * 7919) % 211,
                },
                entities: Vec::new(),
            })
            .collect();
        let mut sliding = EarliestIngestion::new(&recs);
        let mut checked = 0;
        for lo in (-20..500).step_by(5) {
            let hi = lo + 40;
            let scan = recs
                .iter()
                .filter(|r| r.s.t >= lo && r.s.t <= hi)
                .map(|r| r.s.i)
                .min();
            assert_eq!(sliding.within(lo, hi), scan, "window [{lo}, {hi}]");
            checked += usize::from(scan.is_some());
        }
        assert!(checked > 50, "most windows hold records");
    }

    #[test]
    fn a_run_covers_the_instants_since_the_previous_one() {
        assert_eq!(covering_run(3600, 3600), 3600);
        assert_eq!(covering_run(3601, 3600), 7200);
        assert_eq!(covering_run(1, 3600), 3600);
        assert_eq!(covering_run(0, 3600), 0);
        assert_eq!(covering_run(-1, 3600), 0);
    }
}
