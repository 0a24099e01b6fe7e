//! Metadata values: checked text, picked names, ATT&CK tactics; ids and names unique across the
//! pack.

use super::Ctx;
use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::load::raw::S;
use crate::model::*;
use std::collections::HashMap;

pub(super) fn check(
    cx: &mut Ctx,
    v: &S<String>,
    code: Code,
    ok: fn(&str) -> bool,
    msg: &str,
    help: &str,
) -> Option<String> {
    if ok(&v.value) {
        Some(v.value.clone())
    } else {
        cx.err(v, code, msg, help);
        None
    }
}

pub(super) fn nonempty(cx: &mut Ctx, v: &S<String>, max: usize) -> Option<String> {
    let t = v.value.trim();
    if !super::text::text_ok(cx, v) {
        None
    } else if t.is_empty() {
        cx.err(
            v,
            Code::BadMetadata,
            "this value must not be empty",
            "write some text",
        );
        None
    } else if t.chars().count() > max {
        cx.err(
            v,
            Code::BadMetadata,
            format!("this value is longer than {max} characters"),
            "shorten it",
        );
        None
    } else {
        Some(t.to_string())
    }
}

pub(super) fn pick<T: Copy>(
    cx: &mut Ctx,
    v: &S<String>,
    options: &[(&str, T)],
    what: &str,
) -> Option<T> {
    if let Some((_, t)) = options.iter().find(|(n, _)| *n == v.value) {
        return Some(*t);
    }
    let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
    let help = match did_you_mean(&v.value, names.iter().copied()) {
        Some(n) => format!("did you mean `{n}`?"),
        None => format!("one of: {}", names.join(", ")),
    };
    cx.err(
        v,
        Code::BadMetadata,
        format!("unknown {what} `{}`", v.value),
        help,
    );
    None
}

pub(super) fn tactic(cx: &mut Ctx, v: &S<String>) -> Option<Tactic> {
    let key = v.value.to_ascii_lowercase().replace([' ', '_'], "-");
    if let Some(t) = TACTICS
        .iter()
        .find(|t| t.id.eq_ignore_ascii_case(&key) || t.slug == key)
    {
        return Some(*t);
    }
    let help = match did_you_mean(&key, TACTICS.iter().map(|t| t.slug)) {
        Some(n) => format!("did you mean `{n}`?"),
        None => "use an ATT&CK tactic name (persistence) or id (TA0003)".into(),
    };
    cx.err(
        v,
        Code::BadAttackId,
        format!("unknown ATT&CK tactic `{}`", v.value),
        help,
    );
    None
}

/// Cross-rule checks: ids and names are unique across the pack.
pub fn check_unique(rules: &[Rule]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    // Titles name the Splunk stanzas (Splunk merges two stanzas of one name, losing settings) and
    // Sigma's DuplicateTitleIssue refuses a folder with two; compared as Splunk and a reader would.
    let mut titles: HashMap<String, usize> = HashMap::new();
    for (i, r) in rules.iter().enumerate() {
        let title = r.title.trim().to_lowercase();
        if let Some(&j) = titles.get(&title) {
            diags.push(
                Diagnostic::error(
                    Code::DuplicateName,
                    format!(
                        "rule title `{}` is already used by `{}`",
                        r.title, rules[j].name.0
                    ),
                )
                .at(r.spans.title)
                .help(
                    "give each rule its own title: it names the Splunk search and the Sigma rule",
                ),
            );
        } else {
            titles.insert(title, i);
        }
        if let Some(&j) = ids.get(r.id.0.as_str()) {
            diags.push(
                Diagnostic::error(
                    Code::DuplicateId,
                    format!(
                        "rule id {} is already used by `{}`",
                        r.id.0, rules[j].name.0
                    ),
                )
                .at(r.spans.id)
                .help("every rule needs its own UUID: generate a new one for the newer rule"),
            );
        } else {
            ids.insert(&r.id.0, i);
        }
        if let Some(&j) = names.get(r.name.0.as_str()) {
            diags.push(
                Diagnostic::error(
                    Code::DuplicateName,
                    format!("rule name `{}` is already used", r.name.0),
                )
                .at(r.spans.name)
                .help(format!(
                    "rename one of the two; the other is in the rule with id {}",
                    rules[j].id.0
                )),
            );
        } else {
            names.insert(&r.name.0, i);
        }
    }
    diags
}
