//! `rulepack simulate`: runs every rule of the pack on its schedule, as its SIEM would
//! (docs/semantics.md, "Running on a schedule"), over records that carry an event time and an
//! ingestion time, and reports each alert with the run that raises it.
//!
//! **Input.** JSON Lines files (`-`: standard input), one record per line, in any of the shapes
//! `rulepack replay` reads (Graph, diagnostic-settings, Log Analytics). The ingestion time is the
//! record's top-level `ingestionTime` or `IngestionTime` (ISO 8601) or `_indextime` (Unix
//! seconds, Splunk); a record without one is ingested `fixed_delay` after its event time, or
//! skipped when no fixed delay is given.
//!
//! **Hunting queries.** A rule that a backend ships as a hunting query (its `fields.yml` constant
//! `hunting_kinds` names the rule's kind; [`crate::render::Renderer::hunting_backends`]) has no
//! schedule there: a person runs it. It is left out of the simulation by that declaration, never
//! by its name, and the summary names it with the backends that declare it.
//!
//! **Speed.** Lines are parsed and evaluated in parallel chunks, overlapped with reading and with
//! the schedule state ([`runs::Runs`]), which takes each record's matches once, so no run
//! rescans the records.

mod runs;

use crate::eval::{map_member, parse_time};
use crate::replay::pack::{Match, Only, Pack};
use crate::replay::{Shape, normalise};
use crate::schedule::PackSettings;
use rayon::prelude::*;
use runs::{Runs, Stamp};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};

/// Lines evaluated per parallel chunk.
const CHUNK: usize = 8192;

pub struct Options {
    pub shape: Shape,
    /// Ingestion delay, in seconds, of records that carry no ingestion time.
    pub fixed_delay: Option<i64>,
    /// Rule name → the backends that ship it as a hunting query (not scheduled, left out).
    pub hunting: BTreeMap<String, Vec<String>>,
}

/// What a simulation saw and decided.
#[derive(Default, Serialize)]
pub struct Summary {
    pub records: u64,
    /// Records without a readable event time, or without an ingestion time and no fixed delay.
    pub skipped: u64,
    /// Every rule, in pack order (by file path, so by name in a flat `rules/`): a reader
    /// looks a rule up by its name, whether it ran on a schedule or was left out as a hunting
    /// query.
    pub rules: Vec<RuleSummary>,
}

impl Summary {
    /// The summary as printed on stderr: one line per rule, then the totals.
    pub fn render(&self) -> String {
        let mut text = format!(
            "simulate: {} records, {} skipped (no event or ingestion time)\n",
            self.records, self.skipped
        );
        for r in &self.rules {
            text.push_str(&match &r.hunting {
                None => format!(
                    "  {}: {} alerts, {} duplicates, {} lost to lateness\n",
                    r.rule, r.alerts, r.duplicates, r.lost_to_lateness
                ),
                Some(backends) => format!(
                    "  {}: not scheduled: a hunting query on {} (`hunting_kinds` in their \
                     fields.yml), run by a person, not on a schedule\n",
                    r.rule,
                    backends.join(", ")
                ),
            });
        }
        let sum = |f: fn(&RuleSummary) -> u64| self.rules.iter().map(f).sum::<u64>();
        text.push_str(&format!(
            "simulate: {} alerts, {} duplicates, {} lost to lateness\n",
            sum(|r| r.alerts),
            sum(|r| r.duplicates),
            sum(|r| r.lost_to_lateness)
        ));
        text
    }
}

#[derive(Serialize)]
pub struct RuleSummary {
    pub rule: String,
    pub alerts: u64,
    /// Alerts about the same record or window raised by more than one run (must be 0).
    pub duplicates: u64,
    /// Matches that arrived later than the tolerated delay and no run reported.
    pub lost_to_lateness: u64,
    /// Left out as a hunting query, by these backends (the counts are then 0).
    pub hunting: Option<Vec<String>>,
}

#[derive(Serialize)]
struct AlertLine<'a> {
    rule: &'a str,
    run: String,
    record: u64,
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ingested: Option<String>,
    entities: crate::replay::hit::EntityObject<'a>,
}

/// The record's ingestion time, in seconds, as written in the export.
fn ingestion_time(v: &Value) -> Option<i64> {
    let map = v.as_object()?;
    for key in ["ingestionTime", "IngestionTime"] {
        if let Some(t) = map_member(map, key)
            .and_then(Value::as_str)
            .and_then(parse_time)
        {
            return Some(t);
        }
    }
    match map_member(map, "_indextime")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Evaluates one line: its stamp (without the index) and matches, or None to skip it.
fn evaluate(pack: &Pack, only: &Only, opts: &Options, line: &str) -> Evaluated {
    let raw = crate::replay::parse_whole(line).ok()?;
    let ingested = ingestion_time(&raw);
    let mut record = normalise(raw, opts.shape).ok()?;
    let t = pack.time(&record).and_then(|s| parse_time(&s))?;
    let i = ingested.or_else(|| opts.fixed_delay.map(|d| t + d))?;
    let out = pack.evaluate_only(&mut record, Some(only)).ok()?;
    Some((t, i, out.matches))
}

/// A line's evaluation: (event time, ingestion time, matches), or None to skip it.
type Evaluated = Option<(i64, i64, Vec<Match>)>;

/// Simulates the pack over `input`; alert lines go to `out`.
///
/// Three stages overlap: this thread reads chunks of lines, the pool evaluates one chunk while
/// the schedule state takes the previous chunk's matches (in input order), so the serial parts
/// do not wait for each other.
pub fn run(
    pack: &Pack,
    settings: &PackSettings,
    opts: &Options,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> io::Result<Summary> {
    let mut runs = Runs::new(pack, settings);
    let scheduled: Vec<bool> = pack
        .rules
        .iter()
        .map(|r| !opts.hunting.contains_key(&r.rule.name.0))
        .collect();
    // Hunting rules are not evaluated: no run would report their matches.
    let only = pack.only(scheduled);
    let mut summary = Summary::default();
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(2);
        let (runs, summary, only) = (&mut runs, &mut summary, &only);
        let worker = s.spawn(move || {
            let mut index: u64 = 0;
            let mut previous: Vec<Evaluated> = Vec::new();
            for chunk in rx {
                let earlier = std::mem::take(&mut previous);
                let lines = chunk.lines();
                let (evaluated, ()) = crate::parallel(|| {
                    rayon::join(
                        || {
                            lines
                                .par_iter()
                                .map(|l| evaluate(pack, only, opts, l))
                                .collect()
                        },
                        || take(runs, summary, &mut index, earlier),
                    )
                });
                previous = evaluated;
            }
            take(runs, summary, &mut index, previous);
        });
        let read = read_chunks(input, &tx);
        drop(tx);
        worker.join().expect("the simulation thread panicked");
        read
    })?;
    runs.finish();
    let counted = write_alerts(pack, &runs, out)?;
    summary.rules = pack
        .rules
        .iter()
        .zip(counted)
        .zip(&runs.lost)
        .map(|((r, (alerts, duplicates)), lost)| RuleSummary {
            rule: r.rule.name.0.clone(),
            alerts,
            duplicates,
            lost_to_lateness: *lost,
            hunting: opts.hunting.get(&r.rule.name.0).cloned(),
        })
        .collect();
    Ok(summary)
}

/// A chunk of non-blank lines in one buffer: one allocation per chunk, not one per line.
struct Chunk {
    text: String,
    /// Where each line ends in `text`.
    ends: Vec<usize>,
}

impl Chunk {
    fn lines(&self) -> Vec<&str> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let line = &self.text[start..end];
                start = end;
                line
            })
            .collect()
    }
}

/// Sends the non-blank lines of `input` in chunks of [`CHUNK`] until the end or a read error.
/// A line that is not UTF-8 is a read error, as `BufRead::read_line` gives it.
fn read_chunks(input: &mut dyn BufRead, tx: &std::sync::mpsc::SyncSender<Chunk>) -> io::Result<()> {
    let mut line = Vec::new();
    let mut size = 1 << 20;
    loop {
        let mut chunk = Chunk {
            text: String::with_capacity(size),
            ends: Vec::with_capacity(CHUNK),
        };
        let mut eof = false;
        while chunk.ends.len() < CHUNK {
            line.clear();
            if input.read_until(b'\n', &mut line)? == 0 {
                eof = true;
                break;
            }
            let text = std::str::from_utf8(&line).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "stream did not contain valid UTF-8",
                )
            })?;
            if !text.trim().is_empty() {
                chunk.text.push_str(text);
                chunk.ends.push(chunk.text.len());
            }
        }
        size = chunk.text.len().max(1 << 20);
        // A send fails only when the simulation thread is gone; its join reports why.
        let gone = !chunk.ends.is_empty() && tx.send(chunk).is_err();
        if gone || eof {
            return Ok(());
        }
    }
}

/// Gives one chunk's matches (of the scheduled rules) to the schedule state, in input order.
fn take(runs: &mut Runs, summary: &mut Summary, index: &mut u64, chunk: Vec<Evaluated>) {
    for e in chunk {
        summary.records += 1;
        match e {
            Some((t, i, matches)) => {
                let s = Stamp {
                    index: *index,
                    t,
                    i,
                };
                for m in matches {
                    runs.add(m.rule, s, m.kind);
                }
            }
            None => summary.skipped += 1,
        }
        *index += 1;
    }
}

/// Writes one JSON line per alert (serialised in parallel, written in order); returns each
/// rule's (alerts, duplicates), in pack order.
fn write_alerts(pack: &Pack, runs: &Runs, out: &mut dyn Write) -> io::Result<Vec<(u64, u64)>> {
    let mut per_rule: Vec<(u64, HashSetKeys)> = (0..pack.rules.len())
        .map(|_| (0, HashSetKeys::default()))
        .collect();
    for a in &runs.alerts {
        let (count, seen) = &mut per_rule[a.rule];
        *count += 1;
        if !seen.0.insert((a.record, a.time)) {
            seen.1 += 1;
        }
    }
    let iso = crate::replay::hit::iso_time;
    let lines = |alerts: &[runs::Alert]| -> io::Result<Vec<u8>> {
        let mut text = Vec::with_capacity(alerts.len() * 256);
        for a in alerts {
            serde_json::to_writer(
                &mut text,
                &AlertLine {
                    rule: &pack.rules[a.rule].rule.name.0,
                    run: iso(a.run),
                    record: a.record,
                    time: iso(a.time),
                    ingested: a.ingested.map(iso),
                    entities: a.entities.object(&pack.rules[a.rule]),
                },
            )
            .map_err(io::Error::other)?;
            text.push(b'\n');
        }
        Ok(text)
    };
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    // Blocks bound the text held at once; each block's pieces are serialised side by side.
    for block in runs.alerts.chunks(64 * 1024) {
        let texts: Vec<Vec<u8>> =
            crate::parallel(|| block.par_chunks(2048).map(lines).collect::<io::Result<_>>())?;
        for t in texts {
            out.write_all(&t)?;
        }
    }
    out.flush()?;
    Ok(per_rule
        .into_iter()
        .map(|(alerts, seen)| (alerts, seen.1))
        .collect())
}

/// The (record, time) pairs already alerted on, and how many alerts repeated one.
#[derive(Default)]
struct HashSetKeys(std::collections::HashSet<(u64, i64)>, u64);
