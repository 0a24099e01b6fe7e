//! The validated rule: everything a backend needs, with newtypes that cannot hold bad values.

use crate::ir::{Cond, FieldPath};
use crate::source::{FileId, Span};
use serde::Serialize;

/// A lower-case UUID.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct RuleId(pub String);

/// A slug `[a-z][a-z0-9_]*`: safe as a file name in every backend.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
pub struct RuleName(pub String);

/// An output column name `[A-Za-z][A-Za-z0-9_]*`, valid unquoted in KQL, SPL and Sigma.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Column(pub String);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Experimental,
    Test,
    Stable,
    Deprecated,
}

/// A span of time written `<n>m`, `<n>h` or `<n>d`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Duration {
    pub minutes: u64,
    /// As the rule wrote it, e.g. `1h`.
    pub text: String,
}

impl Duration {
    pub fn parse(s: &str) -> Option<Duration> {
        // The unit is the last character, which need not be ASCII in what a user wrote.
        let unit = s.chars().next_back()?;
        let num = &s[..s.len() - unit.len_utf8()];
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) || num.len() > 6 {
            return None;
        }
        let n: u64 = num.parse().ok()?;
        let per = match unit {
            'm' => 1,
            'h' => 60,
            'd' => 1440,
            _ => return None,
        };
        (n > 0).then(|| Duration {
            minutes: n * per,
            text: s.to_string(),
        })
    }
}

/// An ATT&CK enterprise tactic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Tactic {
    pub id: &'static str,
    /// Lower-case hyphenated name, as Sigma tags use it.
    pub slug: &'static str,
    /// PascalCase name, as Sentinel uses it.
    pub pascal: &'static str,
}

pub const TACTICS: &[Tactic] = &[
    Tactic {
        id: "TA0043",
        slug: "reconnaissance",
        pascal: "Reconnaissance",
    },
    Tactic {
        id: "TA0042",
        slug: "resource-development",
        pascal: "ResourceDevelopment",
    },
    Tactic {
        id: "TA0001",
        slug: "initial-access",
        pascal: "InitialAccess",
    },
    Tactic {
        id: "TA0002",
        slug: "execution",
        pascal: "Execution",
    },
    Tactic {
        id: "TA0003",
        slug: "persistence",
        pascal: "Persistence",
    },
    Tactic {
        id: "TA0004",
        slug: "privilege-escalation",
        pascal: "PrivilegeEscalation",
    },
    Tactic {
        id: "TA0005",
        slug: "defense-evasion",
        pascal: "DefenseEvasion",
    },
    Tactic {
        id: "TA0006",
        slug: "credential-access",
        pascal: "CredentialAccess",
    },
    Tactic {
        id: "TA0007",
        slug: "discovery",
        pascal: "Discovery",
    },
    Tactic {
        id: "TA0008",
        slug: "lateral-movement",
        pascal: "LateralMovement",
    },
    Tactic {
        id: "TA0009",
        slug: "collection",
        pascal: "Collection",
    },
    Tactic {
        id: "TA0011",
        slug: "command-and-control",
        pascal: "CommandAndControl",
    },
    Tactic {
        id: "TA0010",
        slug: "exfiltration",
        pascal: "Exfiltration",
    },
    Tactic {
        id: "TA0040",
        slug: "impact",
        pascal: "Impact",
    },
];

/// `T####` or `T####.###`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Technique(pub String);

impl Technique {
    /// The parent technique `T####`, which is all some deployment APIs accept.
    pub fn parent(&self) -> &str {
        &self.0[..5]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AggFunction {
    Count,
    DistinctCount,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Aggregation {
    pub function: AggFunction,
    /// The field counted distinctly (distinct_count only).
    pub field: Option<FieldPath>,
    pub group_by: Vec<Column>,
    pub window: Duration,
    pub threshold: u32,
}

/// A named list of values a team may override per SIEM.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Parameter {
    pub name: String,
    pub description: String,
    pub values: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Schedule {
    pub frequency: Duration,
    /// The deprecated `lookback` key, when a rule still writes it. Nothing renders it; it is
    /// kept only so the lock hash of such a rule stays what it was (`lock::logic_hash` hashes
    /// the schedule), and an existing pack keeps building until its rules drop the key.
    #[serde(rename = "lookback", skip_serializing_if = "Option::is_none")]
    pub legacy_lookback: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Output {
    pub column: Column,
    pub field: FieldPath,
    /// For array fields: the element whose value is taken (any element when absent).
    pub filter: Option<Cond>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Account,
    Ip,
    CloudApplication,
}

impl EntityKind {
    pub const ALL: &[(&'static str, EntityKind, &'static [&'static str])] = &[
        (
            "account",
            EntityKind::Account,
            &["upn", "aad_user_id", "name"],
        ),
        ("ip", EntityKind::Ip, &["address"]),
        // Sentinel's CloudApplication AppId is the Defender for Cloud Apps number, not the
        // Entra application id, so only the name maps.
        ("cloud_application", EntityKind::CloudApplication, &["name"]),
    ];
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entity {
    pub kind: EntityKind,
    /// (identifier, column), in the order written.
    pub identifiers: Vec<(String, Column)>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TestCase {
    pub name: String,
    pub expect_match: bool,
    pub note: Option<String>,
    /// Graph directoryAudit records, in time order.
    pub events: Vec<serde_json::Value>,
    #[serde(skip)]
    pub span: Span,
}

/// What makes a rule fire.
#[derive(Clone, Debug)]
pub enum Logic {
    /// A condition on one record, optionally counted over fixed windows.
    Events {
        condition: Cond,
        aggregation: Option<Aggregation>,
    },
    /// An order, or an absence, between other rules' matches.
    Correlation(Correlation),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrelationKind {
    /// A `then` match at most `within` after a `first` match with the same key; fires on the
    /// `then` record.
    Sequence,
    /// A `first` match with no `then` match of the same key within `within` after it, once that
    /// time has passed; fires on the `first` record.
    Absence,
}

/// A rule of the same pack that a correlation refers to by name. `validate::check_correlations`
/// guarantees it exists and is a single-record rule of the same log source.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageRef {
    pub rule: RuleName,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Correlation {
    pub kind: CorrelationKind,
    pub first: Vec<StageRef>,
    pub then: StageRef,
    /// The value both records share (its column is `rp_key`, rulepack's own).
    pub key: Output,
    pub within: Duration,
}

impl Correlation {
    /// The stage whose record the alert is about, and whose outputs it carries.
    pub fn anchor(&self) -> &StageRef {
        match self.kind {
            CorrelationKind::Sequence => &self.then,
            CorrelationKind::Absence => &self.first[0],
        }
    }

    pub fn stages(&self) -> impl Iterator<Item = &StageRef> {
        self.first.iter().chain([&self.then])
    }
}

/// Columns a sequence adds after its own outputs: which rule matched first, and when.
pub const SEQUENCE_COLUMNS: &[&str] = &["FirstRule", "FirstTime"];

/// Where the parts that later checks point at were written.
#[derive(Clone, Copy, Debug)]
pub struct RuleSpans {
    pub id: Span,
    pub status: Span,
    pub name: Span,
    pub title: Span,
    pub version: Span,
    pub condition: Span,
}

/// A warning a rule knowingly carries: its code, why, and where the entry was written.
#[derive(Clone, Debug)]
pub struct Expectation {
    pub code: crate::diag::Code,
    pub reason: String,
    /// The code as written (the key of the entry).
    pub at: Span,
}

/// Which verdicts a rule's tests cover.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Coverage {
    pub matches: bool,
    pub no_match: bool,
}

impl Coverage {
    /// The verdicts no test covers, as the rule format spells them.
    pub fn missing(self) -> Vec<&'static str> {
        let mut m = Vec::new();
        if !self.matches {
            m.push("match");
        }
        if !self.no_match {
            m.push("no_match");
        }
        m
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Rule {
    pub id: RuleId,
    pub name: RuleName,
    pub title: String,
    pub description: String,
    pub status: Status,
    pub severity: Severity,
    pub author: String,
    pub date: String,
    pub modified: Option<String>,
    pub version: String,
    pub references: Vec<String>,
    pub tactics: Vec<Tactic>,
    pub techniques: Vec<Technique>,
    pub trr: Vec<String>,
    pub atrm: Vec<String>,
    pub falsepositives: Vec<String>,
    /// no_match tests the Sigma output is known to match (validated against the tests).
    pub sigma_over_matches: Vec<String>,
    /// Warnings the rule acknowledges (`expect_warnings`); no artifact carries them.
    #[serde(skip)]
    pub expected: Vec<Expectation>,
    pub parameters: Vec<Parameter>,
    pub logsource: String,
    /// Templates see the logic through the renderer's plans, never directly.
    #[serde(skip)]
    pub logic: Logic,
    #[serde(skip)]
    pub spans: RuleSpans,
    pub schedule: Schedule,
    pub outputs: Vec<Output>,
    pub entities: Vec<Entity>,
    /// Not part of what templates see: events can be large and no artifact carries them.
    /// Empty when the rules were read with `TestEvents::Skip` (the tests were still checked) or
    /// `TestEvents::Omit` (`build`: the tests were not read).
    #[serde(skip)]
    pub tests: Vec<TestCase>,
    /// Which verdicts the tests cover (known even when the events were not kept).
    pub coverage: Coverage,
    #[serde(skip)]
    pub file: FileId,
    /// What validation warns about (W102), reported by `check` beside the other warnings.
    #[serde(skip)]
    pub warnings: Vec<crate::diag::Diagnostic>,
}

impl Rule {
    /// The single-record condition (None for correlations).
    pub fn condition(&self) -> Option<&Cond> {
        match &self.logic {
            Logic::Events { condition, .. } => Some(condition),
            Logic::Correlation(_) => None,
        }
    }

    pub fn aggregation(&self) -> Option<&Aggregation> {
        match &self.logic {
            Logic::Events { aggregation, .. } => aggregation.as_ref(),
            Logic::Correlation(_) => None,
        }
    }

    pub fn correlation(&self) -> Option<&Correlation> {
        match &self.logic {
            Logic::Correlation(c) => Some(c),
            Logic::Events { .. } => None,
        }
    }
}

/// The rule named `name` in `rules`.
pub fn find<'r>(rules: &'r [Rule], name: &RuleName) -> Option<&'r Rule> {
    rules.iter().find(|r| r.name == *name)
}
