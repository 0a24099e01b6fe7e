//! Correlation windows: sequence pairs and absence windows, keyed, evicted behind the watermark.

use crate::model::CorrelationKind;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

pub(super) struct CorrState {
    pub(super) kind: CorrelationKind,
    /// Seconds.
    within: i64,
    /// Sequence: per key, the latest `first` match (time, stage index).
    latest: HashMap<String, (i64, usize)>,
    /// Absence: the open windows by (end, arrival number), so they close in time order even when
    /// records arrive out of order.
    windows: BTreeMap<(i64, u64), Window>,
    /// Arrival numbers given so far.
    arrived: u64,
    /// (key hash, end, arrival number) of the open windows: a `then` match finds the windows it
    /// closes by a range query, never by walking every open window of its key (records out of
    /// order made that quadratic).
    open_by_key: BTreeSet<(u64, i64, u64)>,
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

/// An open absence window (its end is its index key): its key, and where its hit line is spilled.
struct Window {
    key: u64,
    at: u64,
    len: u32,
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
            windows: BTreeMap::new(),
            arrived: 0,
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
                while let Some(entry) = self.windows.first_entry() {
                    let (end, seq) = *entry.key();
                    if end > wm {
                        break;
                    }
                    let w = entry.remove();
                    self.open_by_key.remove(&(w.key, end, seq));
                    let mut line = vec![0; w.len as usize];
                    if let Some(f) = self.spill.as_mut() {
                        f.seek(SeekFrom::Start(w.at))?;
                        f.read_exact(&mut line)?;
                    }
                    closed.push(line);
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

    /// Absence: a `then` match closes every open window of its key that it falls in, those whose
    /// end is in `t ..= t + within`.
    pub(super) fn resolve(&mut self, key: &str, t: i64) {
        let k = key_hash(key);
        let closed: Vec<(u64, i64, u64)> = self
            .open_by_key
            .range((k, t, 0)..=(k, t.saturating_add(self.within), u64::MAX))
            .copied()
            .collect();
        for entry in closed {
            self.open_by_key.remove(&entry);
            self.windows.remove(&(entry.1, entry.2));
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
        let end = t.saturating_add(self.within);
        let w = Window {
            key: key_hash(key),
            at: self.spill_len,
            len: u32::try_from(line.len()).map_err(|_| io::Error::other("hit line over 4 GiB"))?,
        };
        self.spill_len += line.len() as u64;
        let seq = self.arrived;
        self.arrived += 1;
        self.open_by_key.insert((w.key, end, seq));
        self.windows.insert((end, seq), w);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15: N `first` matches of one key, then N `then` matches an hour before them. Each
    /// `then` used to walk every open window of the key: 2×10^8 steps here, minutes in a debug
    /// build; indexed by end, this is milliseconds.
    #[test]
    fn out_of_order_thens_do_not_walk_the_open_windows() {
        let n = 20_000;
        let mut c = CorrState::new(CorrelationKind::Absence, 7 * 86_400);
        let start = std::time::Instant::now();
        for i in 0..n {
            c.open(100_000 + i, "guest", b"hit\n").unwrap();
        }
        for i in 0..n {
            c.resolve("guest", 100_000 - 3600 + i % 7);
        }
        assert_eq!(
            c.open_windows(),
            n as u64,
            "a `then` before a window closes none"
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        // A `then` inside the windows closes exactly those whose end is at most `within` after it.
        c.resolve("guest", 100_000 + 10);
        assert_eq!(c.open_windows(), n as u64 - 11);
        c.resolve("other", 100_000 + 500);
        assert_eq!(c.open_windows(), n as u64 - 11);
        // Out of order: windows still close in order of their end.
        let closed = c.advance(100_000 + 7 * 86_400 + 20).unwrap();
        assert_eq!(closed.len(), 10);
        assert_eq!(c.open_windows(), n as u64 - 21);
    }
}
