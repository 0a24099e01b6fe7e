//! The schedule semantics of docs/semantics.md ("Running on a schedule"), in one place: the
//! pack's tolerated ingestion delay D and, per rule, the time bounds a run at time T uses. The
//! Sentinel templates and `rulepack simulate` both take their bounds from here, so the deployed
//! query and the simulator cannot drift apart.

use crate::model::{CorrelationKind, Duration, Logic, Rule};
use serde::Serialize;

/// Default of `schedule.max_ingestion_delay`: Entra audit records usually reach Log Analytics
/// and Splunk within a few minutes; ten minutes covers the usual tail without delaying alerts
/// much (an aggregation window is reported D after it closes).
pub const DEFAULT_MAX_INGESTION_DELAY: &str = "10m";

/// Pack-wide deployment settings (the manifest's `schedule:` and `deploy:` sections).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PackSettings {
    /// D: how much later than its event time a record may be ingested and still be evaluated.
    pub max_ingestion_delay: Duration,
    /// Whether deployed analytics rules start enabled (default: disabled, a team switches
    /// them on after review).
    pub deploy_enabled: bool,
}

impl Default for PackSettings {
    fn default() -> Self {
        PackSettings {
            max_ingestion_delay: Duration::parse(DEFAULT_MAX_INGESTION_DELAY)
                .expect("the default delay is a valid duration"),
            deploy_enabled: false,
        }
    }
}

/// What a run of one rule does, in minutes: the rule's frequency F, the pack's delay D, and
/// the rule's window W (aggregation window or correlation `within`; 0 for single-record rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunBounds {
    pub kind: RunKind,
    pub frequency: u64,
    pub delay: u64,
    pub window: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Single,
    Aggregation,
    Sequence,
    Absence,
}

impl RunBounds {
    pub fn of(rule: &Rule, settings: &PackSettings) -> RunBounds {
        let (kind, window) = match &rule.logic {
            Logic::Events {
                aggregation: Some(a),
                ..
            } => (RunKind::Aggregation, a.window.minutes),
            Logic::Events { .. } => (RunKind::Single, 0),
            Logic::Correlation(c) => match c.kind {
                CorrelationKind::Sequence => (RunKind::Sequence, c.within.minutes),
                CorrelationKind::Absence => (RunKind::Absence, c.within.minutes),
            },
        };
        RunBounds {
            kind,
            frequency: rule.schedule.frequency.minutes,
            delay: settings.max_ingestion_delay.minutes,
            window,
        }
    }

    /// How far back in event time a run reads: F + D + W for every kind (W = 0 for a
    /// single-record rule). This is the deployed query period.
    pub fn query_period(&self) -> u64 {
        self.frequency + self.delay + self.window
    }
}

/// The template's view of a rule's run bounds: durations as KQL/SPL literals.
#[derive(Serialize)]
pub struct BoundsView {
    pub kind: RunKind,
    /// F, D, W.
    pub frequency: String,
    pub delay: String,
    pub window: String,
    /// F + D + W: as text (Sentinel YAML) and in minutes (ARM spells it in ISO 8601).
    pub query_period: String,
    pub query_period_minutes: u64,
}

impl From<RunBounds> for BoundsView {
    fn from(b: RunBounds) -> Self {
        BoundsView {
            kind: b.kind,
            frequency: duration_text(b.frequency),
            delay: duration_text(b.delay),
            window: duration_text(b.window),
            query_period: duration_text(b.query_period()),
            query_period_minutes: b.query_period(),
        }
    }
}

/// Minutes as a KQL/SPL-friendly duration: the largest unit that divides them.
pub fn duration_text(minutes: u64) -> String {
    match minutes {
        m if m % 1440 == 0 && m > 0 => format!("{}d", m / 1440),
        m if m % 60 == 0 && m > 0 => format!("{}h", m / 60),
        m => format!("{m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert_eq!(duration_text(10), "10m");
        assert_eq!(duration_text(60), "1h");
        assert_eq!(duration_text(70), "70m");
        assert_eq!(duration_text(2880), "2d");
        assert_eq!(duration_text(0), "0m");
        assert_eq!(PackSettings::default().max_ingestion_delay.minutes, 10);
        assert!(!PackSettings::default().deploy_enabled);
    }
}
