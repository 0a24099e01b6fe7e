//! Worker threads: a batch parsed, normalised and evaluated against every rule.

use super::SkipReason;
use super::bounded;
use super::pack::{Pack, RecordOut};
use super::reader::Batch;
use super::scan::{Scan, Unit, trim};
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
        unit(
            pack,
            shape,
            &batch.data[u.range.clone()],
            u,
            true,
            &mut outs,
        );
    }
    Done {
        seq: batch.seq,
        file: batch.file,
        outs,
    }
}

/// Parses and evaluates one unit the scanner cut. `resync_lines`: a value over several lines that
/// does not parse is read again line by line (see [`resync`]).
fn unit(
    pack: &Pack,
    shape: Shape,
    bytes: &[u8],
    u: &Unit,
    resync_lines: bool,
    outs: &mut Vec<Outcome>,
) {
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
        return;
    }
    let bad = |e: serde_json::Error| Outcome::Skip {
        position: pos.to_string(),
        reason: if bounded::over_budget(&e) {
            SkipReason::TooLarge
        } else {
            SkipReason::Malformed
        },
        detail: malformed(&e, u.line),
    };
    if u.multi {
        for v in bounded::parse_all(bytes) {
            match v {
                Ok(v) => record(pack, shape, v, pos, outs),
                Err(e) => outs.push(bad(e)),
            }
        }
        return;
    }
    match bounded::parse(bytes) {
        Ok(v) => record(pack, shape, v, pos, outs),
        Err(e) if resync_lines && !bounded::over_budget(&e) => {
            match resync(pack, shape, bytes, u, outs) {
                Some(()) => {}
                None => outs.push(bad(e)),
            }
        }
        Err(e) => outs.push(bad(e)),
    }
}

/// A value over several lines that does not parse (a truncated line the scanner could not tell
/// from a pretty-printed record): its first line is the broken record, and each line after it is
/// read afresh, as JSON Lines, so the records on them are not lost. `None`: one line only.
fn resync(
    pack: &Pack,
    shape: Shape,
    bytes: &[u8],
    u: &Unit,
    outs: &mut Vec<Outcome>,
) -> Option<()> {
    let nl = memchr::memchr(b'\n', bytes)?;
    if trim(&bytes[nl..]).is_empty() {
        return None;
    }
    let first = Unit {
        range: 0..nl,
        line: u.line,
        element: u.element,
        skip: None,
        multi: false,
    };
    unit(pack, shape, &bytes[..nl], &first, false, outs);
    for (k, text) in bytes[nl + 1..].split(|b| *b == b'\n').enumerate() {
        let mut scan = Scan::default();
        let (mut data, mut units) = (Vec::new(), Vec::new());
        scan.scan(text, &mut data, &mut units);
        scan.finish(&mut data, &mut units);
        for mut v in units {
            v.line = u.line + 1 + k as u64;
            unit(pack, shape, &data[v.range.clone()], &v, false, outs);
        }
    }
    Some(())
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
    match normalise(v, shape).and_then(|mut r| pack.evaluate(&mut r)) {
        Ok(r) => outs.push(Outcome::Record(r)),
        Err((reason, detail)) => outs.push(Outcome::Skip {
            position: position(),
            reason,
            detail,
        }),
    }
}
