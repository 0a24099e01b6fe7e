//! Worker threads: a batch parsed, normalised and evaluated against every rule.

use super::SkipReason;
use super::pack::{Pack, RecordOut};
use super::reader::Batch;
use super::shape::{Shape, envelope, normalise};
use serde_json::Value;

pub(super) struct Done {
    pub(super) seq: u64,
    pub(super) file: usize,
    pub(super) outs: Vec<Outcome>,
}

pub(super) enum Outcome {
    Record(RecordOut),
    Skip {
        position: String,
        reason: SkipReason,
        detail: String,
    },
}

/// Where a record is in its file, formatted only for skips.
#[derive(Clone, Copy)]
struct Pos {
    line: u64,
    element: Option<u64>,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.element {
            Some(e) => write!(f, "line {}, array element {e}", self.line),
            None => write!(f, "line {}", self.line),
        }
    }
}

pub(super) fn work(pack: &Pack, shape: Shape, batch: Batch) -> Done {
    let mut outs = Vec::with_capacity(batch.units.len());
    for u in &batch.units {
        let pos = Pos {
            line: u.line,
            element: u.element,
        };
        if let Some((reason, detail)) = &u.skip {
            outs.push(Outcome::Skip {
                position: pos.to_string(),
                reason: *reason,
                detail: detail.clone(),
            });
            continue;
        }
        let bytes = &batch.data[u.range.clone()];
        let bad = |e: serde_json::Error| Outcome::Skip {
            position: pos.to_string(),
            reason: SkipReason::Malformed,
            detail: malformed(&e, u.line),
        };
        if u.multi {
            for v in serde_json::Deserializer::from_slice(bytes).into_iter::<Value>() {
                match v {
                    Ok(v) => record(pack, shape, v, pos, &mut outs),
                    Err(e) => {
                        outs.push(bad(e));
                        break;
                    }
                }
            }
            continue;
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(v) => record(pack, shape, v, pos, &mut outs),
            Err(e) => outs.push(bad(e)),
        }
    }
    Done {
        seq: batch.seq,
        file: batch.file,
        outs,
    }
}

/// serde_json's message with the position in the file instead of in the record.
fn malformed(e: &serde_json::Error, start_line: u64) -> String {
    let msg = e.to_string();
    let msg = msg
        .rsplit_once(" at line ")
        .map_or(msg.as_str(), |(m, _)| m)
        .to_string();
    if e.line() == 0 {
        return msg;
    }
    let line = start_line + e.line() as u64 - 1;
    if e.line() == 1 {
        format!("{msg} (line {line})")
    } else {
        format!("{msg} (line {line}, column {})", e.column())
    }
}

fn record(pack: &Pack, shape: Shape, mut v: Value, pos: Pos, outs: &mut Vec<Outcome>) {
    if let Some((key, items)) = envelope(&mut v) {
        for (i, item) in items.into_iter().enumerate() {
            one(pack, shape, item, || format!("{pos}, {key}[{i}]"), outs);
        }
    } else {
        one(pack, shape, v, || pos.to_string(), outs);
    }
}

fn one(
    pack: &Pack,
    shape: Shape,
    v: Value,
    position: impl FnOnce() -> String,
    outs: &mut Vec<Outcome>,
) {
    match normalise(v, shape) {
        Ok(mut r) => outs.push(Outcome::Record(pack.evaluate(&mut r))),
        Err((reason, detail)) => outs.push(Outcome::Skip {
            position: position(),
            reason,
            detail,
        }),
    }
}
