//! The reader thread: files cut into batches of whole records; and the parse-only baseline.

use super::BLOCK;
use super::scan::{Scan, Unit, trim};
use serde_json::Value;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;

pub(super) struct Batch {
    pub(super) seq: u64,
    pub(super) file: usize,
    pub(super) data: Vec<u8>,
    pub(super) units: Vec<Unit>,
}

pub(super) struct Reader<'s> {
    pub(super) tx: &'s SyncSender<Batch>,
    pub(super) seq: u64,
    pub(super) progress: Option<&'s indicatif::ProgressBar>,
}

impl Reader<'_> {
    /// Reads one file into batches of whole records. `Ok(false)`: the consumer has gone.
    pub(super) fn file(&mut self, file: usize, path: &Path) -> io::Result<bool> {
        let mut r: Box<dyn Read> = if path == Path::new("-") {
            Box::new(io::stdin().lock())
        } else {
            Box::new(File::open(path)?)
        };
        let mut scan = Scan::default();
        let mut block = Vec::with_capacity(BLOCK);
        let mut first = true;
        loop {
            block.clear();
            let n = (&mut r).take(BLOCK as u64).read_to_end(&mut block)?;
            if let Some(p) = self.progress {
                p.inc(n as u64);
            }
            let mut start = 0;
            if first && block.starts_with(&[0xEF, 0xBB, 0xBF]) {
                start = 3;
            }
            first = false;
            let mut data = Vec::with_capacity(n + 64);
            let mut units = Vec::new();
            scan.scan(&block[start..], &mut data, &mut units);
            if n == 0 {
                scan.finish(&mut data, &mut units);
            }
            if !units.is_empty() {
                let seq = self.seq;
                self.seq += 1;
                let batch = Batch {
                    seq,
                    file,
                    data,
                    units,
                };
                if self.tx.send(batch).is_err() {
                    return Ok(false);
                }
            }
            if n == 0 {
                return Ok(true);
            }
        }
    }
}

/// The parse-only baseline for the benchmark: reads JSON Lines files on this thread with
/// serde_json into `Value`s and does nothing else. Returns (values, malformed lines).
pub fn parse_only(files: &[PathBuf]) -> io::Result<(u64, u64)> {
    let (mut values, mut bad) = (0u64, 0u64);
    let mut line = Vec::new();
    for p in files {
        let mut r = BufReader::with_capacity(BLOCK, File::open(p)?);
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if trim(&line).is_empty() {
                continue;
            }
            match serde_json::from_slice::<Value>(&line) {
                Ok(v) => {
                    values += 1;
                    std::hint::black_box(v);
                }
                Err(_) => bad += 1,
            }
        }
    }
    Ok((values, bad))
}
