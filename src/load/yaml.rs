//! The one place that knows the YAML library (serde-saphyr): parsing with budgets, and turning
//! its errors and positions into ours.

use crate::diag::{Code, Diagnostic};
use crate::source::{FileId, SourceMap, Span};
use serde::de::DeserializeOwned;
use serde_saphyr::{Location, Spanned};

/// Larger rule files are refused before parsing: a rule is a page of YAML, not megabytes.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

pub fn parse<T: DeserializeOwned>(sources: &SourceMap, file: FileId) -> Result<T, Diagnostic> {
    parse_text(&sources.get(file).text, sources, file)
}

/// Parses `text`, a stand-in for the file's text with the same byte offsets (positions are
/// reported against the file).
pub fn parse_text<T: DeserializeOwned>(
    text: &str,
    sources: &SourceMap,
    file: FileId,
) -> Result<T, Diagnostic> {
    // Tighter than the library's defaults: a rule is a page of YAML, so alias bombs and deep
    // nesting are refused early with a position.
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_depth = 48;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_nodes = 100_000;
    let options = serde_saphyr::options! { budget: Some(budget) };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| error_to_diag(&e, sources, file))
}

/// Span of a value as the YAML reader saw it.
pub fn span_of<T>(v: &Spanned<T>, file: FileId) -> Span {
    location_span(&v.referenced, file)
}

pub fn location_span(loc: &Location, file: FileId) -> Span {
    let s = loc.span();
    let start = s.byte_offset().unwrap_or(0) as usize;
    let len = s.byte_len().unwrap_or(0) as usize;
    Span {
        file,
        start,
        end: start + len.max(1),
    }
}

fn error_to_diag(e: &serde_saphyr::Error, sources: &SourceMap, file: FileId) -> Diagnostic {
    let text = e.without_snippet().to_string();
    // The library appends its own " at line L, column C"; we show the position ourselves.
    let message = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let (code, message, help) = classify(&message);
    let span = e.location().map(|loc| {
        let start = sources.offset_of(file, loc.line() as usize, loc.column() as usize);
        Span {
            file,
            start,
            end: start + 1,
        }
    });
    let mut d = Diagnostic::error(code, message).in_file(sources.get(file).path.clone());
    if let Some(span) = span {
        d = d.at(span);
    }
    if let Some(help) = help {
        d = d.help(help);
    }
    d
}

/// Sort the library's messages into our stable codes, with a hint for each family.
fn classify(message: &str) -> (Code, String, Option<String>) {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let candidates: Vec<&str> = expected
            .trim_start_matches(", expected one of ")
            .trim_start_matches(", expected ")
            .split(", ")
            .map(|c| c.trim_matches('`'))
            .filter(|c| !c.is_empty())
            .collect();
        let help = match crate::diag::did_you_mean(field, candidates.iter().copied()) {
            Some(c) => format!("did you mean `{c}`?"),
            None => format!("allowed keys here: {}", candidates.join(", ")),
        };
        return (
            Code::UnknownKey,
            format!("unknown key `{field}`"),
            Some(help),
        );
    }
    if message.starts_with("duplicate mapping key") {
        let key = message
            .trim_start_matches("duplicate mapping key: ")
            .split(',')
            .next()
            .unwrap_or("");
        return (
            Code::DuplicateKey,
            format!("duplicate key `{key}`"),
            Some("a key may appear once per mapping: delete or merge the repeated one".into()),
        );
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.trim_end_matches('`');
        return (
            Code::MissingField,
            format!("missing required key `{field}`"),
            Some(format!(
                "add `{field}:` to this mapping (see docs/rule-format.md)"
            )),
        );
    }
    if message.contains("budget breached") {
        let what = if message.contains("Depth") {
            "the YAML is nested more than 48 levels deep"
        } else if message.contains("Nodes") {
            "the YAML expands to more than 100000 values (anchors and aliases multiply)"
        } else if message.contains("Alias") || message.contains("Anchor") {
            "the YAML uses more than 1000 anchors or aliases"
        } else {
            "the YAML exceeds the reader's size budget"
        };
        return (
            Code::YamlSyntax,
            what.to_string(),
            Some("rules are small documents: remove anchors/aliases that expand, and flatten deep nesting".into()),
        );
    }
    if message.starts_with("expected ")
        || message.starts_with("invalid ")
        || message.contains("invalid type")
    {
        let plain = message
            .replace("sequence start", "a list")
            .replace("mapping start", "a mapping")
            .replace("string scalar", "a string");
        return (
            Code::WrongType,
            format!("wrong type: {plain}"),
            Some("check the value's type against docs/rule-format.md (quote strings that look like numbers or booleans)".into()),
        );
    }
    (
        Code::YamlSyntax,
        format!("YAML syntax error: {message}"),
        Some("fix the YAML at the marked position".into()),
    )
}
