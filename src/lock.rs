//! Versioning. `rules/versions.lock` records, per rule id, the rule's name, version, a hash of
//! its logic (log source, lowered condition, aggregation, schedule, outputs: what a deployed
//! rule does, not how it is described) and whether that version was released. A version goes
//! out when `rulepack lock --release` marks it; until then its logic may change and be
//! re-locked at the same version. A released version's logic is frozen: a change needs a new
//! version (`rulepack lock --bump`). A version going down, an id changed for a name or reused
//! by another rule are always errors; a rule missing from the lock or not bumped is a warning
//! while editing and an error at a release point (`LockPolicy`).

use crate::LockPolicy;
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
    /// Marked by `rulepack lock --release`. Entries written before this flag existed count as
    /// released, the safe reading.
    #[serde(default = "released_by_default")]
    pub released: bool,
}

fn released_by_default() -> bool {
    true
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

/// The warning for a pack without a lock.
pub fn missing(rules_dir: &Path) -> Diagnostic {
    Diagnostic::warning(
        Code::Unlocked,
        "the pack has no versions.lock: rule versions are not checked",
    )
    .in_file(path(rules_dir))
    .help("run `rulepack lock` and commit rules/versions.lock with the rules")
}

/// What the lock says about one rule.
enum State {
    /// Locked as it is.
    Current,
    /// Not in the lock, or at a version the lock does not have yet.
    Unlocked,
    /// Its logic changed since the unreleased version was locked: `rulepack lock` records it.
    Stale,
    /// Its logic changed since the version was released: it needs a new version.
    Unbumped,
    /// Always an error.
    Broken(Diagnostic),
}

fn state(r: &Rule, logic: &str, lock: &Lock) -> State {
    if let Some((old_id, _)) = lock
        .iter()
        .find(|(id, e)| e.name == r.name.0 && **id != r.id.0)
    {
        return State::Broken(
            Diagnostic::error(Code::InvalidId, format!("the id of `{}` changed (the lock has {old_id})", r.name.0))
                .at(r.spans.id)
                .help("a published rule keeps its id: put the old id back, or give the new rule a new name"),
        );
    }
    let Some(e) = lock.get(&r.id.0) else {
        return State::Unlocked;
    };
    if e.name != r.name.0 && e.logic != logic {
        return State::Broken(
            Diagnostic::error(
                Code::DuplicateId,
                format!(
                    "id {} belonged to `{}`, whose logic was different",
                    r.id.0, e.name
                ),
            )
            .at(r.spans.id)
            .help("never reuse an id: generate a new one (a pure rename keeps the same logic)"),
        );
    }
    match newer(&r.version, &e.version) {
        std::cmp::Ordering::Less => State::Broken(
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
        std::cmp::Ordering::Equal if e.logic == logic => State::Current,
        std::cmp::Ordering::Equal if e.released => State::Unbumped,
        std::cmp::Ordering::Equal => State::Stale,
        std::cmp::Ordering::Greater => State::Unlocked,
    }
}

/// The problems of every rule against the lock; `policy` decides whether a rule that is not
/// locked as it is warns or fails.
pub fn check(
    rules: &[Rule],
    logsources: &[LogSource],
    lock: &Lock,
    policy: LockPolicy,
) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for r in rules {
        let Some(ls) = logsources.iter().find(|l| l.name == r.logsource) else {
            continue;
        };
        let logic = logic_hash(r, rules, ls);
        let (message, span, help) = match state(r, &logic, lock) {
            State::Current => continue,
            State::Broken(d) => {
                diags.push(d);
                continue;
            }
            State::Unlocked => (
                format!("version {} of `{}` is not in the lock", r.version, r.name.0),
                r.spans.version,
                "run `rulepack lock` and commit rules/versions.lock".to_string(),
            ),
            State::Stale => (
                format!(
                    "the logic of `{}` changed since unreleased version {} was locked",
                    r.name.0, r.version
                ),
                r.spans.version,
                "run `rulepack lock` (an unreleased version can be re-locked) and commit rules/versions.lock".to_string(),
            ),
            State::Unbumped => (
                format!(
                    "the logic of `{}` changed but its version is still the released {}",
                    r.name.0, r.version
                ),
                r.spans.version,
                if r.correlation().is_some() {
                    "it embeds the rules it names, so it changes when they do: run `rulepack lock --bump` (it bumps the minor version of every rule whose logic changed, correlations included, and records them)".to_string()
                } else {
                    "run `rulepack lock --bump` (it bumps the minor version of every rule whose logic changed, correlations included, and records them)".to_string()
                },
            ),
        };
        let d = match policy {
            LockPolicy::Edit => Diagnostic::warning(Code::Unlocked, message),
            LockPolicy::Release => Diagnostic::error(Code::BadMetadata, message),
        };
        diags.push(d.at(span).help(help));
    }
    diags
}

/// A rule `rulepack lock --bump` gives a new version: where its version is written, the old
/// and the new value.
pub struct Bump {
    pub span: crate::source::Span,
    pub from: String,
    pub to: String,
    pub rule: String,
    /// The rule's creation date: `modified` is set only when today is later.
    pub date: String,
}

/// The next minor version: 1.2.3 → 1.3.0.
pub fn next_minor(v: &str) -> String {
    let mut parts = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    format!("{major}.{}.0", minor + 1)
}

/// The lock for the current rules, and the version bumps it needs (only with `bump`; without
/// it, a released rule whose logic changed is an error that says to pass `--bump`). Entries of
/// changed or new rules are unreleased; `release` marks every entry released.
pub fn update(
    rules: &[Rule],
    logsources: &[LogSource],
    lock: &Lock,
    bump: bool,
    release: bool,
) -> Result<(Lock, Vec<Bump>), Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut out = lock.clone();
    let mut bumps = Vec::new();
    for r in rules {
        let Some(ls) = logsources.iter().find(|l| l.name == r.logsource) else {
            continue;
        };
        let logic = logic_hash(r, rules, ls);
        let version = match state(r, &logic, lock) {
            State::Broken(d) => {
                diags.push(d);
                continue;
            }
            State::Current => {
                // A pure rename keeps its version and release state.
                if let Some(e) = out.get_mut(&r.id.0) {
                    e.name = r.name.0.clone();
                }
                continue;
            }
            State::Unbumped if !bump => {
                diags.push(
                    Diagnostic::error(
                        Code::BadMetadata,
                        format!(
                            "the logic of `{}` changed but its version is still the released {}",
                            r.name.0, r.version
                        ),
                    )
                    .at(r.spans.version)
                    .help("run `rulepack lock --bump`: it bumps the minor version of every rule whose logic changed, correlations included, and records them"),
                );
                continue;
            }
            State::Unbumped => {
                let to = next_minor(&r.version);
                bumps.push(Bump {
                    span: r.spans.version,
                    from: r.version.clone(),
                    to: to.clone(),
                    rule: r.name.0.clone(),
                    date: r.date.clone(),
                });
                to
            }
            State::Unlocked | State::Stale => r.version.clone(),
        };
        out.insert(
            r.id.0.clone(),
            Entry {
                name: r.name.0.clone(),
                version,
                logic,
                released: false,
            },
        );
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    if release {
        for e in out.values_mut() {
            e.released = true;
        }
    }
    Ok((out, bumps))
}

/// The rule files with their bumped versions written in, edited where the version value sits
/// so the rest of each file (comments, layout) stays as written; `modified` (the date of the
/// last logic change) becomes today. A file holds one rule, so it has one bump.
pub fn bumped_files(bumps: &[Bump], sources: &crate::source::SourceMap) -> Vec<(PathBuf, String)> {
    let today = crate::scaffold::today();
    let mut files: BTreeMap<crate::source::FileId, String> = BTreeMap::new();
    // From the end of each file backwards, so earlier offsets stay valid.
    let mut ordered: Vec<&Bump> = bumps.iter().collect();
    ordered.sort_by_key(|b| std::cmp::Reverse((b.span.file, b.span.start)));
    for b in ordered {
        let text = files
            .entry(b.span.file)
            .or_insert_with(|| sources.get(b.span.file).text.clone());
        // The span may start at a quote: the version is the first match from there.
        if let Some(at) = text[b.span.start..].find(&b.from) {
            let start = b.span.start + at;
            text.replace_range(start..start + b.from.len(), &b.to);
        }
        // `modified` must be later than `date`: a rule created today keeps none.
        if today > b.date {
            *text = with_modified(text, &today);
        }
    }
    files
        .into_iter()
        .map(|(id, text)| (sources.get(id).path.clone(), text))
        .collect()
}

/// `text` with its top-level `modified:` set to `date`, added after `date:` when missing. Rule
/// files keep top-level keys at column 0, one per line.
fn with_modified(text: &str, date: &str) -> String {
    let line = format!("modified: {date}\n");
    let has = text.lines().any(|l| l.starts_with("modified:"));
    let mut out = String::with_capacity(text.len() + line.len());
    for l in text.split_inclusive('\n') {
        if l.starts_with("modified:") {
            out.push_str(&line);
            continue;
        }
        out.push_str(l);
        if !has && l.starts_with("date:") {
            if !l.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&line);
        }
    }
    out
}
