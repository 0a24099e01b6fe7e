//! Aggregation windows: per rule, per (group key, window) a counter or a set of distinct values.

use std::collections::{HashMap, HashSet};

pub(super) struct AggState {
    window: i64,
    threshold: u32,
    distinct: bool,
    groups: HashMap<(Vec<String>, i64), Group>,
    /// The latest record time seen.
    watermark: Option<i64>,
    /// Windows below this index are closed.
    evicted_to: i64,
    pub(super) late: u64,
    pub(super) untimed: u64,
}

#[derive(Default)]
struct Group {
    count: u32,
    values: HashSet<String>,
    fired: bool,
}

impl AggState {
    /// An empty state: `window` in seconds (at least 1).
    pub(super) fn new(window: i64, threshold: u32, distinct: bool) -> AggState {
        AggState {
            window,
            threshold,
            distinct,
            groups: HashMap::new(),
            watermark: None,
            evicted_to: i64::MIN,
            late: 0,
            untimed: 0,
        }
    }

    /// Counts a matching record; returns (aggregate, window start) when its group reaches the
    /// threshold with this record.
    pub(super) fn feed(
        &mut self,
        t: Option<i64>,
        key: Vec<String>,
        distinct: Option<String>,
    ) -> Option<(u32, i64)> {
        let Some(t) = t else {
            self.untimed += 1;
            return None;
        };
        let w = t.div_euclid(self.window);
        if w < self.evicted_to {
            self.late += 1;
            return None;
        }
        let wm = self.watermark.map_or(t, |m| m.max(t));
        self.watermark = Some(wm);
        // A window closes once the watermark is a whole window past its end.
        let open_from = (wm - self.window).div_euclid(self.window);
        if open_from > self.evicted_to {
            self.evicted_to = open_from;
            self.groups.retain(|(_, gw), _| *gw >= open_from);
            if w < open_from {
                self.late += 1;
                return None;
            }
        }
        let g = self.groups.entry((key, w)).or_default();
        g.count = g.count.saturating_add(1);
        let n = if self.distinct {
            if let Some(v) = distinct {
                g.values.insert(v);
            }
            g.values.len() as u32
        } else {
            g.count
        };
        if !g.fired && n >= self.threshold {
            g.fired = true;
            return Some((n, w * self.window));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregation_windows_close_behind_the_watermark() {
        let mut a = AggState {
            window: 60,
            threshold: 2,
            distinct: false,
            groups: HashMap::new(),
            watermark: None,
            evicted_to: i64::MIN,
            late: 0,
            untimed: 0,
        };
        let k = || vec!["x".to_string()];
        assert_eq!(a.feed(Some(10), k(), None), None);
        assert_eq!(a.feed(Some(70), k(), None), None);
        // Out of order within one window of lateness: still counted.
        assert_eq!(a.feed(Some(20), k(), None), Some((2, 0)));
        assert_eq!(a.feed(Some(30), k(), None), None, "fires once per window");
        assert_eq!(a.feed(Some(200), k(), None), None);
        assert_eq!(a.feed(Some(50), k(), None), None);
        assert_eq!(a.late, 1);
        assert_eq!(a.feed(None, k(), None), None);
        assert_eq!(a.untimed, 1);
        assert!(a.groups.len() <= 2);
    }
}
