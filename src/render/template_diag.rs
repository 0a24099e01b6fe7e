//! Rendering's own diagnostics: a template value that cannot be built, a tera error placed at
//! its template line, a rule id that yields no derived Sigma id.

use crate::diag::{Code, Diagnostic};
use crate::model::Rule;
use serde::Serialize;
use std::path::Path;
use tera::Value;

/// A template value, converted straight from the Rust value.
pub(super) fn to_value<T: Serialize + ?Sized>(value: &T, path: &Path) -> Result<Value, Diagnostic> {
    Value::try_from_serializable(value).map_err(|e| context_diag(path, &e))
}

pub(super) fn context_diag(path: &Path, e: &tera::Error) -> Diagnostic {
    template_diag(path, e, "the template context could not be built")
}

/// Tera reports `message` then `--> name:line:col` with its own snippet; keep the message and
/// the position, and let our renderer show the user's file.
pub(super) fn template_diag(path: &Path, e: &tera::Error, help: &str) -> Diagnostic {
    let text = e.to_string();
    let message = text
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .trim_start_matches("error: ");
    let mut d = Diagnostic::error(Code::Template, format!("template error: {message}"))
        .in_file(path)
        .help(help);
    if let Some((_, line, col)) = position(&text) {
        d = d.at_line(line, col);
    }
    d
}

/// The name of the template tera places error `e` in: the one that holds the failing line,
/// which is not the template being rendered when the line is in a component defined elsewhere.
pub(super) fn error_template(e: &tera::Error) -> Option<String> {
    position(&e.to_string()).map(|(name, _, _)| name.to_string())
}

/// `name`, line and column of tera's `--> name:line:col`.
fn position(text: &str) -> Option<(&str, usize, usize)> {
    let p = text.lines().find_map(|l| l.trim().strip_prefix("--> "))?;
    let mut parts = p.rsplitn(3, ':');
    let col = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    Some((parts.next()?, line, col))
}

/// The id of a Sigma document derived from `rule` (`derived_id::derived_uuid`).
pub(super) fn derived_id(rule: &Rule, role: &str, path: &Path) -> Result<String, Diagnostic> {
    super::derived_id::derived_uuid(&rule.id.0, role).ok_or_else(|| {
        Diagnostic::error(
            Code::Template,
            format!("rule id `{}` is not a UUID", rule.id.0),
        )
        .in_file(path)
        .help("derived Sigma ids are UUIDv5 in the rule id's namespace")
    })
}
