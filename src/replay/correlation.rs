//! Correlation windows: sequence pairs and absence windows, keyed, evicted behind the watermark.

use crate::model::CorrelationKind;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

pub(super) struct CorrState {
    pub(super) kind: CorrelationKind,
    /// Seconds.
    within: i64,
    /// Sequence: per key, the latest `first` match (time, stage index).
    latest: HashMap<String, (i64, usize)>,
    /// Absence: windows in arrival order, so (records being in time order) in order of their
    /// end; a window a `then` match closed stays, dead, until it reaches the front.
    windows: VecDeque<Window>,
    /// The arrival number of `windows[0]`.
    base: u64,
    /// (key hash, arrival number) of the windows still open.
    open_by_key: BTreeSet<(u64, u64)>,
    /// Absence: the hit lines of open windows. A week of invitations can be many; only their
    /// place in this file stays in memory.
    spill: Option<File>,
    spill_len: u64,
    /// The latest record time seen (every record, not only matches).
    watermark: Option<i64>,
    /// Sequence: the watermark at the last eviction of expired keys.
    swept_at: i64,
    pub(super) untimed: u64,
}

/// An absence window: when it ends, its key, and where its hit line is spilled.
struct Window {
    end: i64,
    key: u64,
    at: u64,
    len: u32,
    open: bool,
}

/// Keys are kept as 64-bit hashes: two keys colliding (about 1 in 10^9 for 10^5 open windows)
/// could let one key's `then` close the other's window.
fn key_hash(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

impl CorrState {
    pub(super) fn new(kind: CorrelationKind, within: i64) -> CorrState {
        CorrState {
            kind,
            within,
            latest: HashMap::new(),
            windows: VecDeque::new(),
            base: 0,
            open_by_key: BTreeSet::new(),
            spill: None,
            spill_len: 0,
            watermark: None,
            swept_at: i64::MIN,
            untimed: 0,
        }
    }

    /// Moves the clock to `t`; returns the hit lines of the absence windows that closed.
    pub(super) fn advance(&mut self, t: i64) -> io::Result<Vec<Vec<u8>>> {
        let wm = self.watermark.map_or(t, |m| m.max(t));
        self.watermark = Some(wm);
        let mut closed = Vec::new();
        match self.kind {
            CorrelationKind::Sequence => {
                // Keys whose latest first match is a whole window old can pair no more.
                if wm.saturating_sub(self.swept_at) > self.within {
                    let within = self.within;
                    self.latest
                        .retain(|_, (ft, _)| ft.saturating_add(within) >= wm);
                    self.swept_at = wm;
                }
            }
            CorrelationKind::Absence => {
                while let Some(w) = self.windows.front() {
                    if w.open && w.end > wm {
                        break;
                    }
                    if w.open {
                        self.open_by_key.remove(&(w.key, self.base));
                        let mut line = vec![0; w.len as usize];
                        if let Some(f) = self.spill.as_mut() {
                            f.seek(SeekFrom::Start(w.at))?;
                            f.read_exact(&mut line)?;
                        }
                        closed.push(line);
                    }
                    self.windows.pop_front();
                    self.base += 1;
                }
            }
        }
        Ok(closed)
    }

    /// Absence windows still open.
    pub(super) fn open_windows(&self) -> u64 {
        self.open_by_key.len() as u64
    }

    /// Sequence: the time of the first match this `then` match at `t` pairs with.
    pub(super) fn remember_and_pair(
        &mut self,
        key: &str,
        t: i64,
        first: Option<usize>,
        then: bool,
    ) -> Option<(i64, usize)> {
        if let Some(i) = first {
            let e = self.latest.entry(key.to_string()).or_insert((t, i));
            if t >= e.0 {
                *e = (t, i);
            }
        }
        if !then {
            return None;
        }
        self.latest
            .get(key)
            .copied()
            .filter(|(ft, _)| *ft <= t && t <= ft.saturating_add(self.within))
    }

    /// Absence: a `then` match closes every open window of its key that it falls in.
    pub(super) fn resolve(&mut self, key: &str, t: i64) {
        let k = key_hash(key);
        let seqs: Vec<u64> = self
            .open_by_key
            .range((k, 0)..=(k, u64::MAX))
            .map(|(_, seq)| *seq)
            .collect();
        for seq in seqs {
            let Some(w) = self.windows.get_mut((seq - self.base) as usize) else {
                continue;
            };
            if w.end.saturating_sub(self.within) <= t && t <= w.end {
                w.open = false;
                self.open_by_key.remove(&(k, seq));
            }
        }
    }

    /// Absence: opens the window of a `first` match at `t`, whose hit line is `line`.
    pub(super) fn open(&mut self, t: i64, key: &str, line: &[u8]) -> io::Result<()> {
        let spill = match &mut self.spill {
            Some(f) => f,
            None => self.spill.insert(tempfile::tempfile()?),
        };
        spill.seek(SeekFrom::Start(self.spill_len))?;
        spill.write_all(line)?;
        let w = Window {
            end: t.saturating_add(self.within),
            key: key_hash(key),
            at: self.spill_len,
            len: u32::try_from(line.len()).map_err(|_| io::Error::other("hit line over 4 GiB"))?,
            open: true,
        };
        self.spill_len += line.len() as u64;
        self.open_by_key
            .insert((w.key, self.base + self.windows.len() as u64));
        self.windows.push_back(w);
        Ok(())
    }
}
