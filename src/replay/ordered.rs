//! The ordered stage: batches back in input order, stateful stages fed, hits written.

use super::hit::{EntityObject, hit_line, iso_time};
use super::pack::{MatchKind, Pack, Stage};
use super::summary::{Skipped, Summary};
use super::worker::{Done, Outcome};
use super::{LISTED_SKIPS, ReplayError};
use crate::eval::parse_time;
use crate::model::CorrelationKind;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::Receiver;

/// What stopped the ordered stage: the output, or the file that holds open absence windows.
enum Failed {
    Write(io::Error),
    Spill(io::Error),
}

/// The ordered stage: puts the workers' batches back in input order, numbers the records, runs
/// the stages and writes the hits.
pub(super) fn collect(
    pack: &Pack,
    names: &[String],
    rx: Receiver<Done>,
    out: &mut dyn Write,
    summary: &mut Summary,
) -> Result<(), ReplayError> {
    let mut stages = pack.stages();
    let mut hits = vec![0u64; pack.rules.len()];
    let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next = 0u64;
    let mut w = io::BufWriter::with_capacity(1 << 16, out);
    let mut line = Vec::with_capacity(512);
    let result = 'run: {
        for done in rx.iter() {
            pending.insert(done.seq, done);
            while let Some(done) = pending.remove(&next) {
                next += 1;
                let file = done.file;
                for o in done.outs {
                    let index = summary.files[file].1;
                    summary.files[file].1 += 1;
                    summary.records += 1;
                    let r = match o {
                        Outcome::Skip {
                            position,
                            reason,
                            detail,
                        } => {
                            *summary.skipped_by_reason.entry(reason).or_default() += 1;
                            if summary.skipped.len() < LISTED_SKIPS {
                                summary.skipped.push(Skipped {
                                    file: names[file].clone(),
                                    record: index,
                                    position,
                                    reason,
                                    detail,
                                });
                            }
                            continue;
                        }
                        Outcome::Record(r) => r,
                    };
                    summary.evaluated += 1;
                    if let Some(t) = r.time.as_deref().and_then(parse_time) {
                        for (i, st) in stages.iter_mut().enumerate() {
                            let Stage::Correlation(c) = st else { continue };
                            let closed = match c.advance(t) {
                                Ok(c) => c,
                                Err(e) => break 'run Err(Failed::Spill(e)),
                            };
                            for line in closed {
                                hits[i] += 1;
                                if let Err(e) = w.write_all(&line) {
                                    break 'run Err(Failed::Write(e));
                                }
                            }
                        }
                    }
                    for m in r.matches {
                        let pr = &pack.rules[m.rule];
                        let (window, entities) = match (m.kind, &mut stages[m.rule]) {
                            (MatchKind::Each(values), _) => {
                                (None, EntityObject::columns(pr, values))
                            }
                            (
                                MatchKind::Aggregation { t, key, distinct },
                                Stage::Aggregation(agg),
                            ) => {
                                let Some((n, start)) = agg.feed(t, key.clone(), distinct) else {
                                    continue;
                                };
                                let mut e: Map<String, Value> = pr
                                    .group
                                    .iter()
                                    .zip(key)
                                    .map(|((c, _), v)| (c.clone(), Value::String(v)))
                                    .collect();
                                e.insert("count".into(), Value::from(n));
                                (Some(iso_time(start)), EntityObject::Map(e))
                            }
                            (
                                MatchKind::Correlation {
                                    t,
                                    key,
                                    first,
                                    then,
                                    entities,
                                },
                                Stage::Correlation(c),
                            ) => {
                                let (Some(t), Some(key)) = (t, key) else {
                                    c.untimed += u64::from(t.is_none());
                                    continue;
                                };
                                let entities = EntityObject::columns(pr, entities);
                                match c.kind {
                                    CorrelationKind::Sequence => {
                                        if c.remember_and_pair(&key, t, first, then).is_none() {
                                            continue;
                                        }
                                        (None, entities)
                                    }
                                    CorrelationKind::Absence => {
                                        if then {
                                            c.resolve(&key, t);
                                        }
                                        if first.is_some() {
                                            let at = (names[file].as_str(), index);
                                            hit_line(
                                                &mut line,
                                                pr,
                                                at,
                                                r.time.as_deref(),
                                                None,
                                                entities,
                                            );
                                            if let Err(e) = c.open(t, &key, &line) {
                                                break 'run Err(Failed::Spill(e));
                                            }
                                        }
                                        continue;
                                    }
                                }
                            }
                            _ => continue,
                        };
                        hits[m.rule] += 1;
                        let at = (names[file].as_str(), index);
                        hit_line(&mut line, pr, at, r.time.as_deref(), window, entities);
                        if let Err(e) = w.write_all(&line) {
                            break 'run Err(Failed::Write(e));
                        }
                    }
                }
            }
        }
        w.flush().map_err(Failed::Write)
    };
    summary.hits = pack
        .rules
        .iter()
        .zip(&hits)
        .map(|(r, n)| (r.rule.name.0.clone(), r.rule.severity, *n))
        .collect();
    summary.aggregation = pack
        .rules
        .iter()
        .zip(&stages)
        .filter_map(|(r, s)| match s {
            Stage::Aggregation(a) => Some((r.rule.name.0.clone(), a.late, a.untimed)),
            Stage::Each | Stage::Correlation(_) => None,
        })
        .collect();
    summary.correlation = pack
        .rules
        .iter()
        .zip(&stages)
        .filter_map(|(r, s)| match s {
            Stage::Correlation(c) => Some((r.rule.name.0.clone(), c.open_windows(), c.untimed)),
            _ => None,
        })
        .collect();
    match result {
        Ok(()) => Ok(()),
        Err(Failed::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            summary.stopped_early = true;
            Ok(())
        }
        Err(Failed::Write(e)) => Err(ReplayError::Write(e)),
        Err(Failed::Spill(e)) => Err(ReplayError::Spill(e)),
    }
}
