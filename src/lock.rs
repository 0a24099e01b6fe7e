//! Versioning. `rules/versions.lock` records, per rule id, the rule's name, version and a hash of
//! its logic (log source, lowered condition, aggregation, schedule, outputs): what a deployed
//! rule does, not how it is described. `check` fails when the logic changed and the version did
//! not, when a version went down, when an id changed for a name or was reused by another rule;
//! `rulepack lock` records the current state once those hold.

use crate::diag::{Code, Diagnostic};
use crate::lower::lower;
use crate::model::{Logic, Rule, find};
use crate::taxonomy::LogSource;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const FILE: &str = "versions.lock";

/// A lock line is about 150 bytes per rule: room for a pack a hundred times the largest seen.
const MAX_LOCK_BYTES: u64 = 64 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub version: String,
    pub logic: String,
}

/// Rule id → entry, sorted so the file diffs cleanly.
pub type Lock = BTreeMap<String, Entry>;

pub fn path(rules_dir: &Path) -> PathBuf {
    rules_dir.join(FILE)
}

/// The lock, or None when the folder has none yet.
pub fn read(rules_dir: &Path) -> Result<Option<Lock>, Diagnostic> {
    let p = path(rules_dir);
    if !p.exists() {
        return Ok(None);
    }
    let bytes = crate::load::files::read_bounded(&p, MAX_LOCK_BYTES).map_err(|e| {
        Diagnostic::error(Code::Io, format!("cannot read the lock: {e}")).in_file(&p)
    })?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Diagnostic::error(Code::BadMetadata, format!("the lock is not valid: {e}"))
            .in_file(&p)
            .at_line(e.line(), e.column())
            .help("restore it from version control, or delete it and run `rulepack lock`")
    })
}

pub fn render(lock: &Lock) -> String {
    let mut text = serde_json::to_string_pretty(lock).unwrap_or_default();
    text.push('\n');
    text
}

/// What the rule fires on, hashed. A correlation's logic includes the conditions of the rules
/// it names: changing one of them changes what the correlation's deployed query does.
pub fn logic_hash(rule: &Rule, rules: &[Rule], ls: &LogSource) -> String {
    let logic = match &rule.logic {
        Logic::Events {
            condition,
            aggregation,
        } => serde_json::json!({
            "logsource": rule.logsource,
            "condition": lower(condition, ls),
            "aggregation": aggregation,
            "schedule": rule.schedule,
            "outputs": rule.outputs,
        }),
        Logic::Correlation(c) => {
            let stage = |s: &crate::model::StageRef| {
                serde_json::json!({
                    "rule": s.rule,
                    "condition": find(rules, &s.rule).and_then(Rule::condition).map(|c| lower(c, ls)),
                })
            };
            serde_json::json!({
                "logsource": rule.logsource,
                "correlation": {
                    "kind": c.kind,
                    "first": c.first.iter().map(stage).collect::<Vec<_>>(),
                    "then": stage(&c.then),
                    "key": c.key,
                    "within": c.within,
                },
                "schedule": rule.schedule,
                "outputs": rule.outputs,
            })
        }
    };
    let digest = Sha256::digest(logic.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn newer(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a).cmp(&parse(b))
}

/// Problems that `rulepack lock` must not paper over, plus (when `stale_is_error`) entries that
/// are missing or out of date.
pub fn check(
    rules: &[Rule],
    logsources: &[LogSource],
    lock: &Lock,
    stale_is_error: bool,
) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for r in rules {
        let Some(ls) = logsources.iter().find(|l| l.name == r.logsource) else {
            continue;
        };
        let logic = logic_hash(r, rules, ls);
        if let Some((old_id, _)) = lock
            .iter()
            .find(|(id, e)| e.name == r.name.0 && **id != r.id.0)
        {
            diags.push(
                Diagnostic::error(Code::InvalidId, format!("the id of `{}` changed (the lock has {old_id})", r.name.0))
                    .at(r.spans.id)
                    .help("a published rule keeps its id: put the old id back, or give the new rule a new name"),
            );
            continue;
        }
        match lock.get(&r.id.0) {
            Some(e) if e.name != r.name.0 && e.logic != logic => diags.push(
                Diagnostic::error(
                    Code::DuplicateId,
                    format!(
                        "id {} belonged to `{}`, whose logic was different",
                        r.id.0, e.name
                    ),
                )
                .at(r.spans.id)
                .help("never reuse an id: generate a new one (a pure rename keeps the same logic)"),
            ),
            Some(e) => match newer(&r.version, &e.version) {
                std::cmp::Ordering::Less => diags.push(
                    Diagnostic::error(
                        Code::BadMetadata,
                        format!(
                            "version {} is lower than the locked {}",
                            r.version, e.version
                        ),
                    )
                    .at(r.spans.version)
                    .help("versions only go up"),
                ),
                std::cmp::Ordering::Equal if e.logic != logic => diags.push(
                    Diagnostic::error(
                        Code::BadMetadata,
                        format!(
                            "the logic of `{}` changed but its version is still {}",
                            r.name.0, r.version
                        ),
                    )
                    .at(r.spans.version)
                    .help(if r.correlation().is_some() {
                        "it embeds the rules it names, so it changes when they do: bump the version, then run `rulepack lock`"
                    } else {
                        "bump the version (e.g. the minor number), then run `rulepack lock`"
                    }),
                ),
                std::cmp::Ordering::Greater if stale_is_error => diags.push(
                    Diagnostic::error(
                        Code::BadMetadata,
                        format!(
                            "version {} of `{}` is not in the lock yet",
                            r.version, r.name.0
                        ),
                    )
                    .at(r.spans.version)
                    .help("run `rulepack lock` and commit rules/versions.lock"),
                ),
                _ => {}
            },
            None if stale_is_error => diags.push(
                Diagnostic::error(
                    Code::BadMetadata,
                    format!("`{}` is not in the lock", r.name.0),
                )
                .at(r.spans.id)
                .help("run `rulepack lock` and commit rules/versions.lock"),
            ),
            None => {}
        }
    }
    diags
}

/// The lock for the current rules; fails with the same problems `check` reports.
pub fn update(
    rules: &[Rule],
    logsources: &[LogSource],
    lock: &Lock,
) -> Result<Lock, Vec<Diagnostic>> {
    let diags = check(rules, logsources, lock, false);
    if !diags.is_empty() {
        return Err(diags);
    }
    let mut out = lock.clone();
    for r in rules {
        let Some(ls) = logsources.iter().find(|l| l.name == r.logsource) else {
            continue;
        };
        out.insert(
            r.id.0.clone(),
            Entry {
                name: r.name.0.clone(),
                version: r.version.clone(),
                logic: logic_hash(r, rules, ls),
            },
        );
    }
    Ok(out)
}
