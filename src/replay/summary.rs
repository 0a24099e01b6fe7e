//! What a replay read, skipped and found, as printed on stderr.

use super::SkipReason;
use crate::model::Severity;
use std::collections::BTreeMap;

/// A skipped record.
#[derive(Clone, Debug)]
pub struct Skipped {
    pub file: String,
    pub record: u64,
    pub position: String,
    pub reason: SkipReason,
    pub detail: String,
}

/// What a replay read, skipped and found.
#[derive(Debug, Default)]
pub struct Summary {
    /// (file, records read from it).
    pub files: Vec<(String, u64)>,
    pub records: u64,
    pub evaluated: u64,
    pub skipped_by_reason: BTreeMap<SkipReason, u64>,
    /// The first skips, in input order (all are counted in `skipped_by_reason`).
    pub skipped: Vec<Skipped>,
    /// (rule name, severity, hits), in pack order.
    pub hits: Vec<(String, Severity, u64)>,
    /// (rule name, late records, untimed records) for aggregation rules.
    pub aggregation: Vec<(String, u64, u64)>,
    /// (rule name, absence windows still open at the end, untimed matches) for correlations.
    pub correlation: Vec<(String, u64, u64)>,
    /// stdout was closed before the end (e.g. `| head`): the replay stopped there.
    pub stopped_early: bool,
}

impl Summary {
    pub fn skipped_total(&self) -> u64 {
        self.skipped_by_reason.values().sum()
    }

    pub fn hits_total(&self) -> u64 {
        self.hits.iter().map(|h| h.2).sum()
    }

    /// The summary as printed on stderr.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let files = self.files.len();
        s.push_str(&format!(
            "replay: {} records read from {files} file{}, {} evaluated, {} skipped\n",
            self.records,
            if files == 1 { "" } else { "s" },
            self.evaluated,
            self.skipped_total()
        ));
        if self.stopped_early {
            s.push_str("replay: stopped early: the output was closed\n");
        }
        for (reason, n) in &self.skipped_by_reason {
            s.push_str(&format!("skipped: {n} {}\n", reason.as_str()));
        }
        for k in &self.skipped {
            s.push_str(&format!(
                "skipped: {}: record {} ({}): {}: {}\n",
                k.file,
                k.record,
                k.position,
                k.reason.as_str(),
                k.detail
            ));
        }
        let total = self.skipped_total();
        if total > self.skipped.len() as u64 {
            s.push_str(&format!(
                "skipped: … and {} more not listed\n",
                total - self.skipped.len() as u64
            ));
        }
        let by_sev: Vec<(&str, u64)> = [
            (Severity::High, "high"),
            (Severity::Medium, "medium"),
            (Severity::Low, "low"),
            (Severity::Informational, "informational"),
        ]
        .iter()
        .map(|(sev, name)| {
            (
                *name,
                self.hits
                    .iter()
                    .filter(|h| h.1 == *sev)
                    .map(|h| h.2)
                    .sum::<u64>(),
            )
        })
        .collect();
        let sev: Vec<String> = by_sev.iter().map(|(n, c)| format!("{n} {c}")).collect();
        s.push_str(&format!(
            "hits: {} ({})\n",
            self.hits_total(),
            sev.join(", ")
        ));
        let width = self.hits.iter().map(|h| h.0.len()).max().unwrap_or(0);
        for (name, sev, n) in &self.hits {
            s.push_str(&format!(
                "  {name:<width$}  {:<13}  {n}\n",
                severity_str(*sev)
            ));
        }
        for (name, late, untimed) in &self.aggregation {
            if *late > 0 || *untimed > 0 {
                s.push_str(&format!(
                    "aggregation: {name}: {late} late records not counted (window already closed), {untimed} without a readable time\n"
                ));
            }
        }
        for (name, open, untimed) in &self.correlation {
            if *open > 0 || *untimed > 0 {
                s.push_str(&format!(
                    "correlation: {name}: {open} windows still open at the end of the input (not reported), {untimed} matches without a readable time\n"
                ));
            }
        }
        s
    }
}

fn severity_str(s: Severity) -> &'static str {
    match s {
        Severity::Informational => "informational",
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
    }
}
