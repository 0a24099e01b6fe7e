//! `rulepack replay`: streams exported Entra ID audit records through every rule of the pack with
//! the reference evaluator ([`crate::eval`]), aggregation windows included, and reports one hit per
//! firing as a JSON line.
//!
//! **Input.** Each file (`-`: standard input) is a stream of JSON values: JSON Lines (several
//! values on a line are several records), pretty-printed values one after another, or JSON arrays,
//! which are entered: each element is a record. A byte scanner that tracks only strings and
//! nesting cuts the stream into records (a line that starts with `{` and ends with `}` is taken
//! whole), so a 1 GB array is never one value in memory; a value cut short ends at a newline inside
//! a string or at the next line that starts with `{` or `[`, and a value over several lines that
//! does not parse is read again line by line ([`worker`]), so one truncated line never swallows
//! the records after it. Envelopes are
//! opened: an object whose only keys are `records` (Event Hub / storage export) or `value` and
//! `@odata.*` (a Graph list page) yields each element as a record.
//!
//! **Shapes** ([`Shape`], detected per record or forced): A, a Graph `directoryAudit` (camelCase
//! keys); B, a diagnostic-settings export (the Graph record under `properties`; its
//! `activityDateTime` falls back to the envelope's `time`, `activityDisplayName` to
//! `operationName`); C, a Log Analytics `AuditLogs` row (PascalCase columns mapped back to the Graph
//! names, `dynamic` columns given as JSON text decoded). Every record is normalised to shape A,
//! the shape the rules are written against.
//!
//! **Records and positions.** Every value read is one record with a 0-based index in its file:
//! skipped values (malformed JSON, not an object, unknown shape, over [`MAX_RECORD`] bytes or
//! [`bounded::MAX_VALUES`] parsed values, a time there but unreadable) count too, so an index always names the same place in the file. Skips are never fatal and never
//! silent: the summary counts them by reason and lists them with their position.
//!
//! **Pipeline.** One reader thread cuts the files into ~1 MiB batches of whole records; worker
//! threads parse, normalise and evaluate every rule on every record of a batch; the calling thread
//! puts the batches back in input order, feeds the stateful stages in that order and writes the
//! hits. Channels are bounded, so memory does not grow with the input: at most a few batches are in
//! flight, plus the open aggregation windows.
//!
//! **Aggregation.** Per rule, per (group key, window) a counter (or a set of distinct values), with
//! fixed windows aligned to the Unix epoch as in [`crate::eval`]; a hit is emitted by the record
//! that brings a group to the threshold, once per group and window. Records are assumed to be
//! roughly in time order: a window stays open until a record at least one window length past its
//! end has been seen (the watermark is the latest record time so far); a record for a window that
//! has closed is counted as *late* in the summary and not counted. Records without a readable time
//! cannot be placed in a window and are counted as *untimed*, as the evaluator ignores them (a
//! record whose time is there but unreadable is skipped before).
//!
//! **Output.** One JSON line per hit, in input order: `rule_id`, `rule`, `severity`, `file`,
//! `record` (0-based index in that file), `time` (the record's `activityDateTime` as written),
//! `entities` (the rule's entity columns, each output evaluated on the record; for an aggregation,
//! the group-by columns and `count`) and, for an aggregation, `window` (start of the window, UTC).
//!
//! **Multi-event correlation** (not in the IR yet) fits the same split: workers already compute
//! per record and per rule whether it matched and the values a stateful stage needs
//! ([`MatchKind`](pack::MatchKind)). A correlation rule (e.g. "rule A then rule B for the same
//! initiator within 10m") would be a third [`Stage`](pack::Stage) variant fed, in record order, by
//! the matches of the rules it names (rules referenced only by correlations would be evaluated but
//! emit no hits of their own), keeping per-(group, window) sequence state and evicting it with the
//! same watermark.

mod aggregation;
mod bounded;
mod correlation;
pub(crate) mod hit;
mod ordered;
pub(crate) mod pack;
mod reader;
mod scan;
mod shape;
mod summary;
mod worker;

pub use bounded::parse_whole;
pub use pack::Pack;
pub use reader::parse_only;
pub use shape::{Shape, normalise};
pub use summary::{Skipped, Summary};

use ordered::collect;
use reader::{Batch, Reader};
use worker::{Done, work};

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};

/// Records (a line, or an array element) longer than this are skipped without being held in
/// memory. An Entra audit record is a few KB; a Graph page of 999 of them, or an Event Hub
/// message (at most 1 MB), stays well below. With the budget of parsed values
/// ([`bounded::MAX_VALUES`]), this bounds what one worker holds: its batch (1 MiB plus at most one
/// record) and one parsed record.
pub const MAX_RECORD: usize = 8 << 20;

/// Bytes read per batch.
const BLOCK: usize = 1 << 20;

/// Skips listed one by one in the summary; all are counted.
const LISTED_SKIPS: usize = 1000;

/// Why a record was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    Malformed,
    NotObject,
    UnknownShape,
    TooLarge,
    BadTime,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Malformed => "malformed JSON",
            SkipReason::NotObject => "not an object",
            SkipReason::UnknownShape => "unknown shape",
            SkipReason::TooLarge => "too large",
            SkipReason::BadTime => "unreadable time",
        }
    }
}

/// The most worker threads a replay runs: more than the cores only costs memory (each worker
/// can hold a few records in flight; see [`MAX_RECORD`]).
pub const MAX_WORKERS: usize = 256;

/// How to run a replay.
pub struct Options {
    pub shape: Shape,
    /// Worker threads (1 to [`MAX_WORKERS`]; other values are clamped).
    pub workers: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            shape: Shape::Auto,
            workers: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .min(MAX_WORKERS),
            progress: false,
        }
    }
}

/// A failure that ends the replay (records never do).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot keep the open absence windows in a temporary file: {0}")]
    Spill(io::Error),
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("cannot write the hits: {0}")]
    Write(io::Error),
}

/// Replays the files, in order, through the pack; hits go to `out` as JSON lines.
pub fn run(
    pack: &Pack,
    files: &[PathBuf],
    opts: &Options,
    out: &mut dyn Write,
) -> Result<Summary, ReplayError> {
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    for (p, name) in files
        .iter()
        .zip(&names)
        .filter(|(p, _)| *p != Path::new("-"))
    {
        File::open(p).map_err(|source| ReplayError::Read {
            path: name.clone(),
            source,
        })?;
    }
    let progress = opts.progress.then(|| {
        let total: u64 = files
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let pb = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] [{wide_bar}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let workers = opts.workers.clamp(1, MAX_WORKERS);
    let (batch_tx, batch_rx) = sync_channel::<Batch>(workers * 2);
    let (done_tx, done_rx) = sync_channel::<Done>(workers * 2);
    let batch_rx = Arc::new(Mutex::new(batch_rx));
    let mut summary = Summary {
        files: names.iter().map(|n| (n.clone(), 0)).collect(),
        ..Summary::default()
    };
    let names_ref = &names;
    let progress_ref = progress.as_ref();
    let result = std::thread::scope(|scope| {
        // The reader owns the batch sender, so the workers see the end of the input when it is
        // done; the workers own the receiver, so the reader stops when they are gone.
        let reader = scope.spawn(move || -> Result<(), ReplayError> {
            let tx = batch_tx;
            let names = names_ref;
            let mut r = Reader {
                tx: &tx,
                seq: 0,
                progress: progress_ref,
            };
            for (i, (p, name)) in files.iter().zip(names).enumerate() {
                match r.file(i, p) {
                    Ok(true) => {}
                    Ok(false) => return Ok(()),
                    Err(source) => {
                        return Err(ReplayError::Read {
                            path: name.clone(),
                            source,
                        });
                    }
                }
            }
            Ok(())
        });
        for _ in 0..workers {
            let rx = Arc::clone(&batch_rx);
            let tx = done_tx.clone();
            scope.spawn(move || {
                loop {
                    let batch = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    let Ok(batch) = batch else { return };
                    if tx.send(work(pack, opts.shape, batch)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        drop(batch_rx);
        let written = collect(pack, names_ref, done_rx, out, &mut summary);
        // The receiver is gone now: the workers stop at their next send, then the reader.
        let read = reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        written.and(read)
    });
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    result.map(|()| summary)
}
