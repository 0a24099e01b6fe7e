//! Hostile values: rules whose values hold quotes of every kind, backslashes, newlines, tabs,
//! pipes, wildcards, `%`, `$`, template delimiters, control characters and non-ASCII text, for
//! every string operator, top-level and inside a quantifier. Checked by the real KQL parser and
//! `sigma check`, and by reading each value back out of the Sigma YAML and the SPL literal. A value
//! holding a control character is refused (R036, docs/rule-format.md) unless a regex spells it
//! `\xHH`; titles carry the same pieces less those control characters (tab and line breaks stay).
//! Cases: RULEPACK_HOSTILE_CASES (default 48); a longer run: RULEPACK_HOSTILE_CASES=2000.

mod common;

use rulepack::render::escape::{regex_escape, yaml_string};
use std::fmt::Write;
use std::process::Command;

const PIECES: &[&str] = &[
    "\"",
    "'",
    "`",
    "\\",
    "\\\\",
    "\n",
    "\r\n",
    "\t",
    "|",
    "*",
    "?",
    "%",
    "$",
    "{{",
    "}}",
    "{%",
    "%}",
    "{field}",
    "{value}",
    "\u{1}",
    "\u{7f}",
    "é",
    "ß",
    "漢字",
    "🙂",
    " ",
    "#EXT#",
    "(",
    ")",
    "[",
    "]",
    ";",
    "//",
    "/*",
    "--",
    "=~",
    "@",
    "guest",
    "\\\"",
    "''",
    "\"\"",
    "urldecode(\"%0A\")",
    "\u{2028}",
];

const OPS: &[(&str, bool)] = &[
    ("equals", false),
    ("equals", true),
    ("contains", false),
    ("contains", true),
    ("starts_with", false),
    ("ends_with", true),
    ("one_of", false),
    ("regex", false),
];

/// A small deterministic generator: the same cases on every machine.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn value(&mut self) -> String {
        let n = 1 + self.next() % 6;
        (0..n)
            .map(|_| PIECES[(self.next() % PIECES.len() as u64) as usize])
            .collect()
    }
}

struct Case {
    name: String,
    value: String,
    op: &'static str,
    cased: bool,
}

impl Case {
    /// A value written as itself with a control character in it, which validation refuses (a
    /// regex case writes it escaped).
    fn refused(&self) -> bool {
        self.op != "regex" && self.value.chars().any(char::is_control)
    }
}

/// The generated cases that must build.
fn accepted() -> Vec<Case> {
    cases().into_iter().filter(|c| !c.refused()).collect()
}

fn cases() -> Vec<Case> {
    let n: usize = std::env::var("RULEPACK_HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|i| {
            let (op, cased) = OPS[i % OPS.len()];
            Case {
                name: format!("hostile_{i:05}"),
                value: rng.value(),
                op,
                cased,
            }
        })
        .collect()
}

fn rule_yaml(c: &Case, i: usize) -> String {
    let v = yaml_string(&c.value);
    let predicate = |field: &str| match c.op {
        "one_of" => format!("field: {field}\n      one_of: [{v}, 'plain']"),
        "regex" => format!(
            "field: {field}\n      regex: {}",
            yaml_string(&regex_escape(&c.value))
        ),
        op => format!(
            "field: {field}\n      {op}: {v}\n      case_sensitive: {}",
            c.cased
        ),
    };
    let mut y = String::new();
    let _ = write!(
        y,
        "id: {:08x}-0000-4000-8000-{:012x}\nname: {}\ntitle: {}\ndescription: Generated rule whose value is hostile to every query language.\n\
         status: experimental\nseverity: low\nauthor: rulepack tests\ndate: 2026-11-28\nversion: 1.0.0\n\
         attack:\n  tactics: [persistence]\n  techniques: [T1136.003]\nlogsource: entra_audit\n\
         condition:\n  all:\n    - {}\n    - some: target\n      where:\n        {}\n\
         schedule: {{ frequency: 1h }}\noutput:\n  Initiator: {{ field: initiator.upn }}\n",
        i + 1,
        i + 1,
        c.name,
        yaml_string(&format!(
            "Hostile value {i} {}",
            c.value
                .chars()
                .filter(|ch| !ch.is_control() || matches!(ch, '\t' | '\n' | '\r'))
                .collect::<String>()
        )),
        predicate("initiator.upn"),
        predicate("target.upn").replace("\n      ", "\n        "),
    );
    // An event holding the value matches; one holding it less its last character (shorter, so it
    // can neither equal, contain, start nor end with it) does not.
    let shorter: String = {
        let mut chars: Vec<char> = c.value.chars().collect();
        chars.pop();
        chars.into_iter().collect()
    };
    let _ = write!(
        y,
        "tests:\n  - name: holds the value\n    expect: match\n    event: {}\n  - name: a near variant\n    expect: no_match\n    event: {}\n",
        event_json(&format!("{i}-hit"), &c.value),
        event_json(&format!("{i}-near"), &shorter),
    );
    y
}

/// A Graph record holding `value` as the initiator's and the target's UPN, as one-line JSON
/// (valid YAML flow) with every non-printable character escaped.
fn event_json(id: &str, value: &str) -> String {
    let event = serde_json::json!({
        "id": format!("Invited Users_{id}"),
        "activityDisplayName": "Invite external user",
        "activityDateTime": "2026-11-02T09:00:00.0000000+00:00",
        "loggedByService": "Invited Users",
        "result": "success",
        "initiatedBy": { "user": { "userPrincipalName": value } },
        "targetResources": [{ "type": "User", "userPrincipalName": value, "modifiedProperties": [] }],
        "additionalDetails": [],
    });
    serde_json::to_string(&event)
        .unwrap()
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                format!("\\u{:04x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Reads back every double-quoted SPL literal, with `urldecode("%XX")` splices joined by `.`.
fn spl_values(spl: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b: Vec<char> = spl.chars().collect();
    let mut i = 0;
    let mut cur: Option<String> = None;
    while i < b.len() {
        let rest: String = b[i..b.len().min(i + 11)].iter().collect();
        if b[i] == '"' {
            let mut s = String::new();
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' && i + 1 < b.len() {
                    i += 1;
                }
                s.push(b[i]);
                i += 1;
            }
            i += 1;
            cur.get_or_insert_with(String::new).push_str(&s);
        } else if rest.starts_with("urldecode(\"") {
            i += 11;
            let mut bytes = Vec::new();
            while b[i] == '%' {
                let hex: String = b[i + 1..i + 3].iter().collect();
                bytes.push(u8::from_str_radix(&hex, 16).unwrap());
                i += 3;
            }
            i += 2;
            cur.get_or_insert_with(String::new)
                .push_str(&String::from_utf8(bytes).unwrap());
        } else if b[i] == '.' && cur.is_some() {
            i += 1;
        } else {
            if let Some(c) = cur.take() {
                out.push(c);
            }
            i += 1;
        }
    }
    out.extend(cur);
    out
}

fn sigma_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn hostile_values_survive_every_backend() {
    let cases = accepted();
    let tmp = tempfile::tempdir().unwrap();
    for (i, c) in cases.iter().enumerate() {
        std::fs::write(tmp.path().join(format!("{}.yml", c.name)), rule_yaml(c, i)).unwrap();
    }
    let pack = common::compile_dir(tmp.path());
    let kql_dir = tmp.path().join("kql");
    std::fs::create_dir(&kql_dir).unwrap();
    let sigma_dir = tmp.path().join("sigma");
    std::fs::create_dir(&sigma_dir).unwrap();
    for c in &cases {
        let content = |prefix: &str, ext: &str| {
            let path = format!("{prefix}{}.{ext}", c.name);
            pack.artifacts
                .iter()
                .find(|a| a.path.ends_with(&path))
                .unwrap_or_else(|| panic!("no {path}"))
                .content
                .clone()
        };
        let kql = content("", "kql");
        std::fs::write(kql_dir.join(format!("{}.kql", c.name)), &kql).unwrap();

        // SPL: the literals, read back, hold the value (twice: top level and in the quantifier);
        // substring tests hold a regex that must match the value where the operator says.
        let spl = content("", "spl");
        let esc = regex_escape(&c.value);
        let ci = if c.cased { "" } else { "(?i)" };
        let (want, hit, miss) = match c.op {
            "equals" | "one_of" => (c.value.clone(), None, None),
            "contains" => (
                format!("{ci}{esc}"),
                Some(format!("a{}b", c.value)),
                Some("nothing".to_string()),
            ),
            "starts_with" => (
                format!("{ci}^{esc}"),
                Some(format!("{}b", c.value)),
                Some(format!("a{}", c.value)),
            ),
            "ends_with" => (
                format!("{ci}{esc}$"),
                Some(format!("a{}", c.value)),
                Some(format!("{}b", c.value)),
            ),
            _ => (format!("(?i){esc}"), Some(c.value.clone()), None),
        };
        let found = spl_values(&spl).iter().filter(|v| **v == want).count();
        assert!(
            found >= 2,
            "{}: SPL literal does not read back as {want:?}:\n{spl}",
            c.name
        );
        if let Some(hit) = hit {
            let re = regex::Regex::new(&want).unwrap();
            assert!(re.is_match(&hit), "{}: {want:?} misses {hit:?}", c.name);
            if let Some(miss) = miss {
                assert!(!re.is_match(&miss), "{}: {want:?} matches {miss:?}", c.name);
            }
        }
        assert!(
            !spl.lines().any(|l| l.ends_with('\\')),
            "{}: a line ends in a backslash:\n{spl}",
            c.name
        );

        // Sigma: the YAML parses, and the value comes back once Sigma's own escapes are undone.
        let sigma = content("azure_", "yml");
        std::fs::write(sigma_dir.join(format!("azure_{}.yml", c.name)), &sigma).unwrap();
        let doc: serde_json::Value = serde_saphyr::from_str(&sigma)
            .unwrap_or_else(|e| panic!("{}: Sigma YAML does not parse: {e}\n{sigma}", c.name));
        let selection = doc["detection"]["selection"]
            .as_object()
            .unwrap_or_else(|| panic!("{}: {sigma}", c.name));
        let values: Vec<String> = selection
            .iter()
            .flat_map(|(k, v)| {
                let list = v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
                let regex = k.contains("|re");
                list.into_iter().filter_map(move |x| {
                    x.as_str().map(|s| {
                        if regex {
                            s.to_string()
                        } else {
                            sigma_unescape(s)
                        }
                    })
                })
            })
            .collect();
        let want = if c.op == "regex" {
            regex_escape(&c.value)
        } else {
            c.value.clone()
        };
        assert!(
            values.iter().filter(|v| **v == want).count() >= 2,
            "{}: Sigma values {values:?} lack {want:?}",
            c.name
        );
    }

    // KQL: Microsoft's parser and binder accept every query.
    let modules = common::repo().join(".tools/kql/node_modules");
    assert!(
        modules.exists(),
        "validator missing: run scripts/test (it installs .tools/kql)"
    );
    let mut files: Vec<_> = std::fs::read_dir(&kql_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let out = Command::new("node")
        .arg(common::repo().join("tools/kql/check-kql.js"))
        .arg("--modules")
        .arg(&modules)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "Kusto.Language rejects generated KQL:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Sigma: no issue at all, ControlCharacterIssue included.
    if let Err(e) = common::real::sigma(&sigma_dir) {
        panic!("{e}");
    }
    println!("hostile values: {} cases, 0 failed", cases.len());
}

/// Mutated rule files (cut, repeated and hostile-spliced text, truncation) through load and
/// validate: every outcome is a rule or diagnostics, never a panic.
#[test]
fn the_loader_never_panics() {
    use rulepack::load::{raw::RawRule, yaml};
    use rulepack::source::SourceMap;
    let n: usize = std::env::var("RULEPACK_HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
        * 10;
    let mut sources = SourceMap::default();
    let logsources =
        rulepack::load_logsources(&rulepack::templates::Templates::default(), &mut sources)
            .unwrap();
    let seeds: Vec<String> = ["guest_invited.yml", "b2b_domain_policy_changed.yml"]
        .iter()
        .map(|f| std::fs::read_to_string(common::repo().join("rules").join(f)).unwrap())
        .collect();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut ok, mut rejected) = (0, 0);
    for i in 0..n {
        let mut text: Vec<char> = seeds[i % seeds.len()].chars().collect();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() as usize) % (text.len() + 1);
            match rng.next() % 4 {
                0 => {
                    let end = (at + (rng.next() % 40) as usize).min(text.len());
                    text.drain(at..end);
                }
                1 => text.splice(at..at, rng.value().chars()).for_each(drop),
                2 => {
                    let end = (at + (rng.next() % 80) as usize).min(text.len());
                    let copy: Vec<char> = text[at..end].to_vec();
                    text.splice(at..at, copy).for_each(drop);
                }
                _ => text.truncate(at),
            }
        }
        let file = sources.add(
            std::path::Path::new("mutant.yml"),
            text.into_iter().collect(),
        );
        match yaml::parse::<RawRule>(&sources, file) {
            Ok(raw) => {
                match rulepack::validate::validate(&raw, file, &sources.get(file).text, &logsources)
                {
                    Ok(_) => ok += 1,
                    Err(d) => {
                        assert!(!d.is_empty());
                        rejected += 1;
                    }
                }
            }
            Err(_) => rejected += 1,
        }
    }
    println!(
        "loader: {n} mutants, {ok} still valid, {rejected} rejected with diagnostics, 0 panics"
    );
}

/// The same hostile rules through `rulepack verify`: duckdb-kql runs the KQL and pySigma's
/// SQLite backend the Sigma over each rule's two events (both must match the event holding the
/// value and only it), and Kusto.Language, `sigma check` and the SPL checks accept every file.
#[test]
fn hostile_values_execute_on_the_engines() {
    let cases = accepted();
    let tmp = common::scratch_project();
    let rules = tmp.path().join("rules");
    for (i, c) in cases.iter().enumerate() {
        std::fs::write(rules.join(format!("{}.yml", c.name)), rule_yaml(c, i)).unwrap();
    }
    let res = common::run(
        Command::new(env!("CARGO_BIN_EXE_rulepack"))
            .arg("verify")
            .arg("--pack")
            .arg(tmp.path())
            .args(["--format", "json"])
            .env("RULEPACK_ENGINES", common::repo().join(".tools/engines")),
    );
    let text = common::report("rulepack verify", &res);
    let stdout = String::from_utf8_lossy(&res.stdout);
    // sigma check flags, by a heuristic, what these values hold on purpose: an escaped wildcard
    // ("make sure the escape is intentional"). Only that issue is tolerated, on values that hold
    // a wildcard character. Control characters are refused (R036), so none reaches an engine.
    let has_wildcard = |rule: &str| {
        cases
            .iter()
            .any(|c| c.name == rule && c.value.contains(['*', '?']))
    };
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let f: serde_json::Value = serde_json::from_str(line).expect("a JSON failure line");
        let rule = f["rule"].as_str().unwrap_or_default();
        let message = f["message"].as_str().unwrap_or_default();
        assert!(
            f["check"] == "sigma check"
                && message.starts_with("issue=EscapedWildcardIssue ")
                && has_wildcard(rule),
            "{line}\n{text}"
        );
    }
    for engine in ["duckdb-kql", "sigma-sqlite"] {
        let want = format!("{engine}: {} passed, 0 failed", cases.len() * 2);
        assert!(
            stdout.lines().any(|l| l == want),
            "expected `{want}`\n{text}"
        );
        println!("{want}");
    }
    for check in ["kusto-language", "spl"] {
        let want = format!("{check}: {} passed, 0 failed", cases.len());
        assert!(stdout.lines().any(|l| l == want), "{want}\n{text}");
    }
    assert!(
        res.status.code() == Some(0) || res.status.code() == Some(1),
        "{text}"
    );
}

/// Every generated value with a control character written as itself is refused with R036 at
/// the value, in both places the rule writes it (top level and inside `some: target`), and in
/// nothing else of the rule.
#[test]
fn control_characters_in_values_are_refused_at_the_value() {
    use rulepack::load::{raw::RawRule, yaml};
    use rulepack::source::SourceMap;
    let mut sources = SourceMap::default();
    let logsources =
        rulepack::load_logsources(&rulepack::templates::Templates::default(), &mut sources)
            .unwrap();
    let refused: Vec<Case> = cases().into_iter().filter(Case::refused).collect();
    assert!(
        !refused.is_empty(),
        "the generator made no control-character case"
    );
    for (i, c) in refused.iter().enumerate() {
        let text = rule_yaml(c, i);
        let file = sources.add(std::path::Path::new("refused.yml"), text.clone());
        let raw = yaml::parse::<RawRule>(&sources, file)
            .unwrap_or_else(|d| panic!("{}: {d:?}\n{text}", c.name));
        let diags = rulepack::validate::validate(&raw, file, &text, &logsources)
            .err()
            .unwrap_or_else(|| panic!("{}: a control character was accepted", c.name));
        let value_lines: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with(&format!("{}:", c.op)))
            .map(|(n, _)| n + 1)
            .collect();
        let lines: Vec<usize> = diags
            .iter()
            .map(|d| {
                assert_eq!(d.code.as_str(), "R036", "{}: {d:?}", c.name);
                let span = d.span.unwrap();
                sources.line_col(span.file, span.start).0
            })
            .collect();
        assert_eq!(lines, value_lines, "{}: {diags:?}", c.name);
    }
    println!("control characters: {} values refused", refused.len());
}
