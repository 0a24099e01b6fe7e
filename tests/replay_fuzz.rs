//! Replay input fuzzing (issue 15): generated files of JSON Lines records, arrays, envelopes,
//! pretty-printed records, scalars, blank lines, records with hostile times and keys, and lines
//! cut short at any byte, replayed through the pack.
//!
//! Per case: no panic, no hang (each case has a time limit), and no lost record: the records read
//! (evaluated + skipped) equal the count the generator computed from what it wrote, and the hits
//! equal those of the same file without its broken lines (a broken line changes nothing after it).
//!
//! Cases: RULEPACK_REPLAY_FUZZ_CASES (default 150, the test command's short run); seed:
//! RULEPACK_REPLAY_FUZZ_SEED. The long run:
//! `RULEPACK_REPLAY_FUZZ_CASES=10000 cargo test --test replay_fuzz -- --nocapture`.

mod common;

use rulepack::model::Rule;
use rulepack::replay::{self, Options, Pack};
use rulepack::source::SourceMap;
use rulepack::taxonomy::LogSource;
use rulepack::{TestEvents, check_unlocked};
use serde_json::{Value, json};
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// A case that takes longer than this hangs.
const CASE_LIMIT: Duration = Duration::from_secs(20);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Times, readable and not: each record gets one (an unreadable one makes it a skipped record,
/// still one record).
const TIMES: &[&str] = &[
    "2026-11-02T10:00:00.0000000+00:00",
    "2026-11-02T09:00:00Z",
    "2026-11-09T12:00:00Z",
    "2026-11-02T10:05:00+02:00",
    "2023-01-01T00:00:00é0:00",
    "2023-01-01T00:00:00.5🙂",
    "2026-02-30T25:61:00Z",
    "",
    "yesterday",
];

/// One generated record (an object of a known shape or not).
fn record(rng: &mut Rng, events: &[Value]) -> Value {
    let mut r = rng.pick(events).clone();
    if let Some(m) = r.as_object_mut() {
        m.insert("activityDateTime".into(), json!(rng.pick(TIMES)));
    }
    match rng.below(8) {
        // Diagnostic-settings envelope around the Graph record.
        0 => json!({"time": r["activityDateTime"], "operationName": "op", "properties": r}),
        // Log Analytics row, dynamic columns as JSON text.
        1 => json!({
            "TimeGenerated": r["activityDateTime"],
            "ActivityDisplayName": r["activityDisplayName"],
            "InitiatedBy": r["initiatedBy"].to_string(),
            "TargetResources": r["targetResources"].to_string(),
            "Result": r["result"],
        }),
        // Unknown shape, with a long multibyte key.
        2 => json!({ "é".repeat(rng.below(300)) + "k": 1 }),
        _ => r,
    }
}

/// Generates one case: (the file, the same without its broken lines, records in the file).
fn case(rng: &mut Rng, events: &[Value]) -> (String, String, u64) {
    let (mut text, mut clean, mut records) = (String::new(), String::new(), 0u64);
    for _ in 0..1 + rng.below(12) {
        let (piece, n) = match rng.below(9) {
            0 => {
                let k = rng.below(4);
                let items: Vec<Value> = (0..k).map(|_| record(rng, events)).collect();
                (format!("{}\n", Value::Array(items)), k)
            }
            1 => {
                let k = rng.below(3);
                let items: Vec<Value> = (0..k)
                    .map(|_| json!({"time": rng.pick(TIMES), "properties": record(rng, events)}))
                    .collect();
                (format!("{}\n", json!({ "records": items })), k)
            }
            2 => {
                let pretty = serde_json::to_string_pretty(&record(rng, events)).unwrap();
                (format!("{pretty}\n"), 1)
            }
            3 => (
                format!("{}\n", rng.pick(&["42", "\"text\"", "null", "true"])),
                1,
            ),
            4 => (rng.pick(&["\n", "  \n", "\r\n"]).to_string(), 0),
            5 => {
                // A line cut short at any byte (the cut may split a character).
                let line = record(rng, events).to_string().into_bytes();
                let cut = 1 + rng.below(line.len() - 1);
                text.push_str(&String::from_utf8_lossy(&line[..cut]));
                text.push('\n');
                records += 1;
                continue;
            }
            6 => {
                let (a, b) = (record(rng, events), record(rng, events));
                (format!("{a} {b}\n"), 2)
            }
            _ => (format!("{}\n", record(rng, events)), 1),
        };
        text.push_str(&piece);
        clean.push_str(&piece);
        records += n as u64;
    }
    (text, clean, records)
}

/// Replays `text` in a thread; `None` if it does not finish in time. Returns (records,
/// evaluated + skipped, hits without file and record index).
fn replay_text(pack: &Arc<Pack<'static>>, text: &str) -> Option<(u64, u64, Vec<Value>)> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("case.json");
    std::fs::write(&file, text).unwrap();
    let (tx, rx) = mpsc::channel();
    let pack = Arc::clone(pack);
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let opts = Options {
            workers: 2,
            ..Options::default()
        };
        let summary = replay::run(&pack, &[file], &opts, &mut out).unwrap();
        let hits: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| {
                let mut h: Value = serde_json::from_str(l).unwrap();
                let m = h.as_object_mut().unwrap();
                m.remove("file");
                m.remove("record");
                h
            })
            .collect();
        let _ = tx.send((
            summary.records,
            summary.evaluated + summary.skipped_total(),
            hits,
        ));
    });
    let got = rx.recv_timeout(CASE_LIMIT);
    drop(dir);
    match got {
        Ok(r) => Some(r),
        // The thread panicked (its sender dropped): the panic message is already on stderr.
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("replay panicked on:\n{text}"),
        Err(mpsc::RecvTimeoutError::Timeout) => None,
    }
}

#[test]
fn generated_replay_inputs_lose_nothing_and_never_panic_or_hang() {
    let cases: usize = std::env::var("RULEPACK_REPLAY_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let seed: u64 = std::env::var("RULEPACK_REPLAY_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let mut sources = SourceMap::default();
    let (rules, logsources): (Vec<Rule>, Vec<LogSource>) = check_unlocked(
        &common::paths(&common::repo().join("rules")),
        &mut sources,
        TestEvents::Keep,
    )
    .unwrap_or_else(|d| panic!("the pack does not load: {} problems", d.len()));
    let events: Vec<Value> = rules
        .iter()
        .flat_map(|r| &r.tests)
        .flat_map(|t| t.events.iter().cloned())
        .collect();
    let rules: &'static [Rule] = Box::leak(rules.into_boxed_slice());
    let logsources: &'static [LogSource] = Box::leak(logsources.into_boxed_slice());
    let pack = Arc::new(Pack::new(rules, logsources));
    let mut rng = Rng(seed);
    let (mut records, mut hits) = (0u64, 0usize);
    for i in 0..cases {
        let (text, clean, want) = case(&mut rng, &events);
        let Some((read, accounted, got)) = replay_text(&pack, &text) else {
            panic!("case {i} did not finish in {CASE_LIMIT:?}:\n{text}");
        };
        assert_eq!(read, want, "case {i}: records read\n{text}");
        assert_eq!(accounted, read, "case {i}: evaluated + skipped\n{text}");
        if clean != text {
            let (_, _, want_hits) = replay_text(&pack, &clean).expect("the clean file hangs");
            assert_eq!(
                got, want_hits,
                "case {i}: hits differ from the clean file's\n{text}"
            );
        }
        records += read;
        hits += got.len();
    }
    eprintln!(
        "replay fuzz: {cases} cases (seed {seed}), {records} records, {hits} hits: 0 panics, 0 hangs, 0 lost"
    );
}
