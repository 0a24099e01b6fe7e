//! Test events checked against the log source's `record` shape: a key the Graph record does not
//! have, or a value of the wrong type, would make a test pass or fail for the wrong reason.

use super::Ctx;
use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::source::Span;
use crate::taxonomy::LogSource;
use serde_json::Value;

enum Step {
    Key(String),
    Index(usize),
}

fn show(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) if s.is_empty() => s.push_str(k),
            Step::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Checks one event against the record shape. Its text starts at `event` and ends before
/// `end` (the next event or test), where the keys of diagnostics are looked up.
pub(super) fn check_event(cx: &mut Ctx, ls: &LogSource, record: &Value, event: Span, end: usize) {
    let mut path = Vec::new();
    let at = Text { event, end };
    walk(cx, &ls.name, &ls.record, record, &mut path, at);
}

#[derive(Clone, Copy)]
struct Text {
    event: Span,
    end: usize,
}

fn walk(cx: &mut Ctx, name: &str, shape: &Value, v: &Value, path: &mut Vec<Step>, event: Text) {
    if v.is_null() {
        return;
    }
    let fits = match shape {
        Value::Object(_) => v.is_object(),
        Value::Array(_) => v.is_array(),
        Value::String(t) => match t.as_str() {
            "string" => v.is_string(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            _ => true,
        },
        _ => true,
    };
    if !fits {
        let want = match shape {
            Value::Object(_) => "an object",
            Value::Array(_) => "an array",
            Value::String(t) if t == "number" => "a number",
            Value::String(t) if t == "boolean" => "true or false",
            _ => "a string",
        };
        let span = key_span(cx, path, event);
        let d = Diagnostic::error(
            Code::BadTest,
            format!("event key `{}` is {}, not {want}", show(path), kind(v)),
        )
        .at(span)
        .help(format!(
            "a Graph directoryAudit record holds {want} here (templates/logsources/{}.yml, `record`)",
            name
        ));
        cx.diags.push(d);
        return;
    }
    match (shape, v) {
        (Value::Object(keys), Value::Object(map)) => {
            for (k, x) in map {
                path.push(Step::Key(k.clone()));
                match keys.get(k) {
                    Some(s) => walk(cx, name, s, x, path, event),
                    None => {
                        let span = key_span(cx, path, event);
                        let help = match did_you_mean(k, keys.keys().map(String::as_str)) {
                            Some(m) => format!("did you mean `{m}`?"),
                            None => format!(
                                "keys here: {}",
                                keys.keys()
                                    .map(String::as_str)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        };
                        cx.diags.push(
                            Diagnostic::error(
                                Code::BadTest,
                                format!(
                                    "event key `{}` is not in a Graph directoryAudit record",
                                    show(path)
                                ),
                            )
                            .at(span)
                            .help(help),
                        );
                    }
                }
                path.pop();
            }
        }
        (Value::Array(elem), Value::Array(items)) => {
            if let Some(s) = elem.first() {
                for (i, x) in items.iter().enumerate() {
                    path.push(Step::Index(i));
                    walk(cx, name, s, x, path, event);
                    path.pop();
                }
            }
        }
        _ => {}
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether a no_match record says what happened: without the activity field, the record would
/// pass a no_match test against any rule that names an activity.
pub(super) fn has_activity(ls: &LogSource, record: &Value) -> bool {
    let Some(path) = ls.graph_path(&ls.activity_field) else {
        return true;
    };
    let mut at = record;
    for key in &path {
        match at.get(key) {
            Some(v) => at = v,
            None => return false,
        }
    }
    match at {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        _ => true,
    }
}

/// The position of the key at `path` inside the event's text: each key is searched after the
/// previous one, so the span lands on the key itself in flow (JSON) and block YAML alike. Falls
/// back to the event when the text does not show the key (e.g. it came through an alias).
fn key_span(cx: &Ctx, path: &[Step], at: Text) -> Span {
    let text = cx.text;
    let event = at.event;
    let end = at.end.min(text.len()).max(event.start.min(text.len()));
    let mut cursor = event.start.min(end);
    let mut found = None;
    for step in path {
        if let Step::Key(k) = step {
            match find_key(&text[cursor..end], k) {
                Some((at, len)) => {
                    found = Some((cursor + at, cursor + at + len));
                    cursor += at + len;
                }
                None => return event,
            }
        }
    }
    match found {
        Some((start, end)) => Span {
            file: event.file,
            start,
            end,
        },
        None => event,
    }
}

/// Offset and length of `key` written as a mapping key (bare or quoted, then `:`).
fn find_key(hay: &str, key: &str) -> Option<(usize, usize)> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    for (i, _) in hay.match_indices(key) {
        let before = hay[..i].chars().next_back();
        let rest = &hay[i + key.len()..];
        let quote = before.filter(|c| *c == '"' || *c == '\'');
        let after = match quote {
            Some(q) => match rest.strip_prefix(q) {
                Some(r) => r,
                None => continue,
            },
            None if before.is_some_and(word) || rest.starts_with(word) => continue,
            None => rest,
        };
        if after.trim_start_matches([' ', '\t']).starts_with(':') {
            let q = quote.map_or(0, char::len_utf8);
            return Some((i - q, key.len() + 2 * q));
        }
    }
    None
}
