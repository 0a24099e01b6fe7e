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
    let position = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .and_then(|p| {
            let mut parts = p.rsplit(':');
            let col = parts.next()?.parse().ok()?;
            let line = parts.next()?.parse().ok()?;
            Some((line, col))
        });
    if let Some((line, col)) = position {
        d = d.at_line(line, col);
    }
    d
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
