//! Structural checks of the built SPL. No SPL engine runs offline (Splunk's own parser is in its
//! server), so each search is checked for what rulepack's templates promise: it starts with the
//! data macro, every pipeline command is one the templates use, strings and brackets balance,
//! single-quoted fields are mapped in the backend's `fields.yml`, and every string literal is a
//! value of the rule's logic or a constant of the backend (so no value was mangled on the way).

use serde_json::Value;
use std::collections::BTreeSet;

const SPL_COMMANDS: &[&str] = &[
    "where",
    "eval",
    "spath",
    "fillnull",
    "mvexpand",
    "streamstats",
    "eventstats",
    "dedup",
    "table",
    "stats",
    "bin",
    "fields",
    // Run bounds of aggregations and correlations; correlations tag each row with its stage
    // and order the rows by time.
    "addinfo",
    "sort",
];

/// The parts of an SPL search a structural check looks at.
#[derive(Default)]
struct Scan {
    /// Double-quoted string literals, as written between the quotes (still escaped).
    literals: Vec<String>,
    /// Single-quoted field names.
    fields: Vec<String>,
    /// The text between top-level pipes (outside strings and brackets).
    segments: Vec<String>,
    problems: Vec<String>,
}

fn scan(spl: &str) -> Scan {
    let mut s = Scan::default();
    let mut stack = Vec::new();
    let mut segment = String::new();
    let mut chars = spl.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut lit = String::new();
                loop {
                    match chars.next() {
                        None => {
                            s.problems.push(format!("unterminated string \"{lit}"));
                            break;
                        }
                        Some('"') => break,
                        Some('\\') => {
                            lit.push('\\');
                            lit.extend(chars.next());
                        }
                        Some(other) => lit.push(other),
                    }
                }
                segment.push_str(&format!("\"{lit}\""));
                s.literals.push(lit);
                continue;
            }
            '\'' | '`' => {
                let body: String = chars.by_ref().take_while(|&x| x != c).collect();
                if c == '\'' {
                    s.fields.push(body.clone());
                }
                segment.push_str(&format!("{c}{body}{c}"));
                continue;
            }
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    s.problems.push(format!("unbalanced `{c}`"));
                }
            }
            '|' if stack.is_empty() => {
                s.segments.push(std::mem::take(&mut segment));
                continue;
            }
            _ => {}
        }
        segment.push(c);
    }
    s.segments.push(segment);
    if !stack.is_empty() {
        s.problems.push(format!("unclosed {stack:?}"));
    }
    s
}

/// SPL string escapes are `\"` and `\\`; anything else was not written by `spl_string`.
fn unescape(lit: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = lit.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, false) => out.push(c),
            (_, true) => match chars.next() {
                Some(e @ ('"' | '\\')) => out.push(e),
                other => return Err(format!("stray backslash before {other:?} in \"{lit}\"")),
            },
        }
    }
    Ok(out)
}

/// `match()` regexes are a value escaped for PCRE, `(?i)` for case-insensitive, `^`/`$` anchors.
fn regex_unescape(re: &str) -> String {
    let mut out = String::new();
    let mut chars = re.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(|n| !n.is_alphanumeric()) {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

fn literal_is_known(value: &str, known: &BTreeSet<String>) -> bool {
    let body = value.strip_prefix("(?i)").unwrap_or(value);
    let anchored = [
        Some(body),
        body.strip_prefix('^'),
        body.strip_suffix('$'),
        body.strip_prefix('^').and_then(|b| b.strip_suffix('$')),
    ];
    std::iter::once(value.to_string())
        .chain(
            anchored
                .into_iter()
                .flatten()
                .flat_map(|b| [b.to_string(), regex_unescape(b)]),
        )
        .any(|candidate| known.contains(&candidate))
}

/// Every structural problem of one SPL search. `fields_yml` is templates/splunk/fields.yml;
/// `known` holds the strings a literal may stand for.
pub fn problems(spl: &str, fields_yml: &str, known: &BTreeSet<String>) -> Vec<String> {
    let s = scan(spl);
    let mut problems = s.problems;
    let (first, pipeline) = s.segments.split_first().expect("one segment at least");
    if !first.trim_start().starts_with('`') {
        problems.push(format!(
            "the search does not start with the data macro: {first:?}"
        ));
    }
    for segment in pipeline {
        let command = segment.split_whitespace().next().unwrap_or("");
        // A macro call: the search's tuning macro, which the app defines (tests/deploy.rs).
        if command.starts_with('`') && command.ends_with("_filter`") {
            continue;
        }
        if !SPL_COMMANDS.contains(&command) {
            problems.push(format!("unknown command `{command}`"));
        }
    }
    for field in &s.fields {
        if !fields_yml.contains(&format!("'{field}'")) {
            problems.push(format!(
                "field '{field}' is not in the splunk backend's fields.yml"
            ));
        }
    }
    for lit in &s.literals {
        match unescape(lit) {
            Err(e) => problems.push(e),
            Ok(value) if !literal_is_known(&value, known) => problems.push(format!(
                "literal {value:?} is neither a rule value nor a backend constant"
            )),
            Ok(_) => {}
        }
    }
    problems
}

/// The double-quoted parts of a text.
fn quoted(text: &str, into: &mut BTreeSet<String>) {
    into.extend(text.split('"').skip(1).step_by(2).map(String::from));
}

/// Every string in a YAML document, plus the double-quoted literals inside those strings.
fn yaml_strings(value: &Value, into: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            into.insert(s.clone());
            quoted(s, into);
        }
        Value::Array(items) => items.iter().for_each(|v| yaml_strings(v, into)),
        Value::Object(map) => map.values().for_each(|v| yaml_strings(v, into)),
        _ => {}
    }
}

fn read_yaml(path: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    serde_saphyr::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

/// What the Splunk backend itself contributes to a search: its field mapping and the strings
/// its templates may put into a search.
pub struct Backend {
    fields_yml: String,
    constants: BTreeSet<String>,
}

impl Backend {
    /// From the backend's files (name, text): the strings of its `*.yml` files and the
    /// double-quoted literals of its other templates.
    pub fn new(files: &[(String, String)]) -> Result<Backend, String> {
        let mut constants = BTreeSet::new();
        let mut fields_yml = String::new();
        for (name, text) in files {
            if name.ends_with(".yml") {
                let value: Value =
                    serde_saphyr::from_str(text).map_err(|e| format!("{name}: {e}"))?;
                yaml_strings(&value, &mut constants);
                if name.ends_with("fields.yml") {
                    fields_yml = text.clone();
                }
            } else {
                quoted(text, &mut constants);
            }
        }
        Ok(Backend {
            fields_yml,
            constants,
        })
    }

    /// The problems of `rule`'s search (`rule` and `all` are `export-tests` entries). A literal
    /// stands for a value of the rule's logic, of the rules a correlation names, or for a
    /// backend constant.
    pub fn check(&self, rule: &Value, all: &[Value], spl: &str) -> Result<Vec<String>, String> {
        let source = read_yaml(rule["file"].as_str().unwrap_or_default())?;
        let mut known = self.constants.clone();
        for key in [
            "condition",
            "output",
            "parameters",
            "aggregation",
            "correlation",
        ] {
            yaml_strings(&source[key], &mut known);
        }
        let mut stages = vec![source["correlation"]["then"].clone()];
        if let Value::Array(first) = &source["correlation"]["first"] {
            stages.extend(first.iter().cloned());
        }
        for name in stages.iter().filter_map(Value::as_str) {
            let named = all
                .iter()
                .find(|r| r["name"] == name)
                .ok_or_else(|| format!("no rule {name} in the pack"))?;
            let stage = read_yaml(named["file"].as_str().unwrap_or_default())?;
            for key in ["condition", "parameters"] {
                yaml_strings(&stage[key], &mut known);
            }
        }
        Ok(problems(spl, &self.fields_yml, &known))
    }
}
