//! Stage 2, validate: `RawRule` → `Rule`. Reports every problem it finds, each at the value's
//! position, instead of stopping at the first.

mod aggregation;
mod condition;
mod correlation;
mod entities;
mod events;
mod expect;
mod metadata;
mod output;
mod parameters;
pub mod portable_regex;
pub mod reserved;
mod schedule;
mod shapes;
mod test_cases;
mod text;

// The operator keys of a predicate: the schema (`rulepack schema`) states them as the validator does.
pub(crate) use condition::OPERATORS;
pub use correlation::check_correlations;
pub use metadata::check_unique;
pub use shapes::is_slug;
pub use test_cases::check_coverage;

use aggregation::aggregation;
use condition::cond;
use correlation::correlation;
use entities::entities;
use metadata::{check, nonempty, pick, tactic};
use output::outputs;
use parameters::parameters;
use schedule::schedule;
use shapes::{is_atrm, is_date, is_semver, is_technique, is_trr, is_uuid};
use test_cases::tests;

use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::load::raw::{RawRule, S, TestEvent};
use crate::load::yaml::span_of;
use crate::model::*;
use crate::source::{FileId, Span};
use crate::taxonomy::LogSource;

struct Ctx<'a> {
    file: FileId,
    /// The rule file's text, to place diagnostics inside test events.
    text: &'a str,
    logsources: &'a [LogSource],
    params: Vec<Parameter>,
    diags: Vec<Diagnostic>,
    /// Warnings: they go with the rule when it is valid, after the errors when not.
    warnings: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn span<T>(&self, v: &S<T>) -> Span {
        span_of(v, self.file)
    }

    fn err<T>(&mut self, v: &S<T>, code: Code, msg: impl Into<String>, help: impl Into<String>) {
        let d = Diagnostic::error(code, msg).at(self.span(v)).help(help);
        self.diags.push(d);
    }
}

pub fn validate<E: TestEvent>(
    raw: &RawRule<E>,
    file: FileId,
    text: &str,
    logsources: &[LogSource],
) -> Result<Rule, Vec<Diagnostic>> {
    let mut cx = Ctx {
        file,
        text,
        logsources,
        params: Vec::new(),
        diags: Vec::new(),
        warnings: Vec::new(),
    };
    let rule = rule(&mut cx, raw);
    match rule {
        Some(mut r) if cx.diags.is_empty() => {
            r.warnings = cx.warnings;
            Ok(r)
        }
        _ => Err(cx.diags.into_iter().chain(cx.warnings).collect()),
    }
}

fn rule<E: TestEvent>(cx: &mut Ctx, raw: &RawRule<E>) -> Option<Rule> {
    let id = check(
        cx,
        &raw.id,
        Code::InvalidId,
        is_uuid,
        "`id` must be a UUID such as 6f1e2a4b-8c3d-4e5f-9a0b-1c2d3e4f5a6b",
        "generate one with `uuidgen`; never change it once published",
    )
    .map(|s| RuleId(s.to_ascii_lowercase()));
    let name = check(
        cx,
        &raw.name,
        Code::InvalidName,
        is_slug,
        "`name` must be 3-60 characters of a-z, 0-9 and _, starting with a letter",
        "it becomes the file name of every artifact, e.g. `guest_invited`",
    )
    .map(RuleName);
    let title = nonempty(cx, &raw.title, 120);
    let description = nonempty(cx, &raw.description, 5000);
    if raw.description.value.trim().len() < 16 {
        cx.err(
            &raw.description,
            Code::BadMetadata,
            "`description` is too short",
            "say what the rule detects and why its severity fits, in at least 16 characters",
        );
    }
    let status = pick(
        cx,
        &raw.status,
        &[
            ("experimental", Status::Experimental),
            ("test", Status::Test),
            ("stable", Status::Stable),
            ("deprecated", Status::Deprecated),
        ],
        "status",
    );
    let severity = pick(
        cx,
        &raw.severity,
        &[
            ("informational", Severity::Informational),
            ("low", Severity::Low),
            ("medium", Severity::Medium),
            ("high", Severity::High),
        ],
        "severity",
    );
    let author = nonempty(cx, &raw.author, 200);
    let date = check(
        cx,
        &raw.date,
        Code::BadMetadata,
        is_date,
        "`date` must be a calendar date YYYY-MM-DD",
        "write the creation date, e.g. 2026-11-28",
    );
    let modified = raw.modified.as_ref().and_then(|m| {
        check(
            cx,
            m,
            Code::BadMetadata,
            is_date,
            "`modified` must be a calendar date YYYY-MM-DD",
            "write the date of the last logic change",
        )
    });
    if let (Some(d), Some(m), Some(rm)) = (&date, &modified, &raw.modified)
        && m <= d
    {
        cx.err(
            rm,
            Code::BadMetadata,
            "`modified` must be later than `date`",
            "remove `modified` or set it to the date of the change",
        );
    }
    let version = check(
        cx,
        &raw.version,
        Code::BadMetadata,
        is_semver,
        "`version` must be a semantic version a.b.c",
        "e.g. 1.0.0; bump it whenever the logic changes",
    );
    let references = raw.references.iter().map(|r| r.value.clone()).collect();
    for r in &raw.references {
        if !(r.value.starts_with("https://") || r.value.starts_with("http://")) {
            cx.err(
                r,
                Code::BadMetadata,
                "a reference must be a URL",
                "write the full https:// address",
            );
        }
    }
    let tactics = raw
        .attack
        .tactics
        .iter()
        .filter_map(|t| tactic(cx, t))
        .collect::<Vec<_>>();
    let techniques = raw
        .attack
        .techniques
        .iter()
        .filter_map(|t| {
            check(
                cx,
                t,
                Code::BadAttackId,
                is_technique,
                "ATT&CK technique ids look like T1136 or T1136.003",
                "use the id from attack.mitre.org, upper-case T",
            )
            .map(Technique)
        })
        .collect::<Vec<_>>();
    if raw.attack.tactics.is_empty() {
        cx.diags.push(
            Diagnostic::error(Code::BadAttackId, "`attack.tactics` is empty")
                .at(cx.span(&raw.id))
                .help("name at least one tactic, e.g. persistence"),
        );
    }
    let trr = raw
        .trr
        .iter()
        .filter_map(|t| {
            check(
                cx,
                t,
                Code::BadTrrId,
                is_trr,
                "TRR procedure ids look like TRR0021.AZR.A",
                "TRR number, platform code and procedure letter, upper case",
            )
        })
        .collect();
    let atrm = raw
        .atrm
        .iter()
        .filter_map(|t| {
            check(
                cx,
                t,
                Code::BadAtrmId,
                is_atrm,
                "Azure Threat Research Matrix ids look like AZT502.3",
                "use the id from microsoft.github.io/Azure-Threat-Research-Matrix",
            )
        })
        .collect();
    for f in &raw.falsepositives {
        text::text_ok(cx, f);
    }
    let falsepositives = raw.falsepositives.iter().map(|f| f.value.clone()).collect();
    // `build` blanks the tests section before parsing; the names are checked whenever it is read.
    let sigma_over_matches =
        raw.sigma_over_matches
            .iter()
            .filter(|n| {
                let known = raw.tests.is_empty()
                    || raw.tests.iter().any(|t| {
                        t.value.name.value == n.value && t.value.expect.value == "no_match"
                    });
                if !known {
                    cx.err(
                        n,
                        Code::BadTest,
                        "`sigma_over_matches` names no no_match test of this rule",
                        "write the exact name of a test whose expect is no_match",
                    );
                }
                known
            })
            .map(|n| n.value.clone())
            .collect();

    let expected = expect::expectations(cx, raw);

    let ls_index = cx
        .logsources
        .iter()
        .position(|l| l.name == raw.logsource.value);
    if ls_index.is_none() {
        let names: Vec<&str> = cx.logsources.iter().map(|l| l.name.as_str()).collect();
        let help = match did_you_mean(&raw.logsource.value, names.iter().copied()) {
            Some(n) => format!("did you mean `{n}`?"),
            None => format!("known log sources: {}", names.join(", ")),
        };
        cx.err(
            &raw.logsource,
            Code::UnknownField,
            format!("unknown log source `{}`", raw.logsource.value),
            help,
        );
    }
    let ls = ls_index.map(|i| &cx.logsources[i]);
    cx.params = parameters(cx, raw);

    let outputs = ls.map(|ls| outputs(cx, ls, raw)).unwrap_or_default();
    let logic = match (&raw.condition, &raw.correlation) {
        (Some(c), None) => {
            let condition = ls.and_then(|ls| cond(cx, ls, c, &[]));
            let aggregation = match (&raw.aggregation, ls) {
                (Some(a), Some(ls)) => aggregation(cx, ls, a, &outputs),
                _ => None,
            };
            condition.map(|condition| Logic::Events {
                condition,
                aggregation,
            })
        }
        (None, Some(k)) => ls
            .and_then(|ls| correlation(cx, ls, raw, k))
            .map(Logic::Correlation),
        (Some(_), Some(k)) => {
            cx.err(
                k,
                Code::BadCorrelation,
                "a rule has `condition` or `correlation`, not both",
                "move the correlation into a rule of its own that names this one",
            );
            None
        }
        (None, None) => {
            cx.err(
                &raw.id,
                Code::MissingField,
                "the rule has neither `condition` nor `correlation`",
                "add `condition:` (what one record must satisfy) or `correlation:` (see docs/rule-format.md)",
            );
            None
        }
    };
    let logic_span = match (&raw.condition, &raw.correlation) {
        (Some(c), _) => cx.span(c),
        (None, Some(k)) => cx.span(k),
        (None, None) => cx.span(&raw.id),
    };
    let schedule = schedule(cx, raw);
    let entities = entities(cx, raw, &outputs);
    let (tests, coverage) = tests(cx, ls, raw);

    Some(Rule {
        id: id?,
        name: name?,
        title: title?,
        description: description?,
        status: status?,
        severity: severity?,
        author: author?,
        date: date?,
        modified,
        version: version?,
        references,
        tactics,
        techniques,
        trr,
        atrm,
        falsepositives,
        sigma_over_matches,
        expected,
        parameters: cx.params.clone(),
        logsource: raw.logsource.value.clone(),
        logic: logic?,
        spans: RuleSpans {
            id: cx.span(&raw.id),
            status: cx.span(&raw.status),
            name: cx.span(&raw.name),
            title: cx.span(&raw.title),
            version: cx.span(&raw.version),
            condition: logic_span,
        },
        schedule: schedule?,
        outputs,
        entities,
        tests,
        coverage,
        file: cx.file,
        warnings: Vec::new(),
    })
}
