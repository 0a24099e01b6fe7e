//! Replays every rule's tests against the BUILT pack with engines rulepack does not control
//! (issue 4, part 2): duckdb-kql runs the Sentinel KQL, pySigma's SQLite backend the Sigma rules
//! (tools/engines/*.py; shared/docs/validators.md §2, §5). No SPL engine exists offline (§3), so
//! the SPL gets structural checks here. The engines live in `.tools/` (scripts/setup-validators):
//! a missing one fails the tests rather than skipping them, and every gate is shown able to fail.

mod common;

use common::{repo, report, run};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The shipped rules built into a temporary folder, with their `export-tests` manifest.
struct Pack {
    dir: tempfile::TempDir,
    manifest: Value,
}

impl Pack {
    fn build() -> Pack {
        let dir = tempfile::tempdir().expect("temp dir");
        let rules = repo().join("rules");
        let rulepack = || Command::new(env!("CARGO_BIN_EXE_rulepack"));
        let build = run(rulepack()
            .arg("build")
            .arg("--rules")
            .arg(&rules)
            .arg("--out")
            .arg(dir.path().join("out")));
        assert!(
            build.status.success(),
            "{}",
            report("rulepack build", &build)
        );
        let export = run(rulepack().arg("export-tests").arg("--rules").arg(&rules));
        assert!(
            export.status.success(),
            "{}",
            report("export-tests", &export)
        );
        fs::write(dir.path().join("manifest.json"), &export.stdout).unwrap();
        let manifest = serde_json::from_slice(&export.stdout).expect("export-tests prints JSON");
        Pack { dir, manifest }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn rules(&self) -> &Vec<Value> {
        self.manifest["rules"].as_array().expect("manifest.rules")
    }
}

struct Engine {
    name: &'static str,
    script: &'static str,
}

const KQL: Engine = Engine {
    name: "duckdb-kql",
    script: "kql_replay.py",
};
const SIGMA: Engine = Engine {
    name: "sigma-sqlite",
    script: "sigma_replay.py",
};

/// What a harness's closing line says: `ENGINE: N passed, M failed, ... not executable offline: [..]`.
#[derive(Debug)]
struct Summary {
    line: String,
    passed: usize,
    failed: usize,
    not_executable: BTreeSet<String>,
}

fn replay(engine: &Engine, pack: &Pack, invert: bool) -> (Output, Summary) {
    // The venv is named after the engine (scripts/setup-validators: ensure_venv).
    let python = repo().join(".tools").join(engine.name).join("bin/python");
    assert!(
        python.exists(),
        "{} missing\nRun scripts/test (it calls scripts/setup-validators to install the pinned \
         engines into .tools/).",
        python.display()
    );
    let mut cmd = Command::new(python);
    cmd.arg(repo().join("tools/engines").join(engine.script))
        .arg(pack.dir.path().join("manifest.json"))
        .arg(pack.out());
    if invert {
        cmd.arg("--invert-expectations");
    }
    let out = run(&mut cmd);
    let ctx = report(engine.script, &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{}: ", engine.name)))
        .unwrap_or_else(|| panic!("no summary line\n{ctx}"))
        .to_string();
    let number = |word: &str| -> usize {
        let before = line.split(&format!(" {word}")).next().unwrap();
        before
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("{line}"))
    };
    let listed = line.split("not executable offline: [").nth(1).expect(&line);
    let not_executable = listed
        .split(']')
        .next()
        .unwrap_or_default()
        .split(", ")
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let summary = Summary {
        passed: number("passed"),
        failed: number("failed"),
        not_executable,
        line: line.clone(),
    };
    (out, summary)
}

/// tools/engines/not-executable.txt: the rules `engine` is allowed to leave unexecuted.
fn allowed_not_executable(engine: &Engine) -> BTreeSet<String> {
    let text = fs::read_to_string(repo().join("tools/engines/not-executable.txt")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .filter(|(e, _)| *e == engine.name)
        .map(|(_, rule)| rule.trim().to_string())
        .collect()
}

fn replays_every_test(engine: &Engine) {
    let pack = Pack::build();
    let (out, summary) = replay(engine, &pack, false);
    let ctx = report(engine.script, &out);
    println!("{}", summary.line);
    assert_eq!(
        out.status.code(),
        Some(0),
        "an engine disagrees with a test\n{ctx}"
    );
    assert_eq!(summary.failed, 0, "{ctx}");
    assert!(
        summary.passed > 0,
        "{} judged no test at all\n{ctx}",
        engine.name
    );
    assert_eq!(
        summary.not_executable,
        allowed_not_executable(engine),
        "the rules {} cannot execute differ from tools/engines/not-executable.txt (update the \
         file with the change)\n{ctx}",
        engine.name
    );
}

#[test]
fn duckdb_kql_replays_every_test_on_the_built_kql() {
    replays_every_test(&KQL);
}

#[test]
fn sigma_sqlite_replays_every_test_on_the_built_sigma() {
    replays_every_test(&SIGMA);
}

/// Negative control: with every expectation flipped, both harnesses must report failures (the
/// KQL one on every test it executes, as its verdicts are exact).
#[test]
fn replay_gates_fail_on_flipped_expectations() {
    let pack = Pack::build();
    for engine in [&KQL, &SIGMA] {
        let (out, summary) = replay(engine, &pack, true);
        let ctx = report(engine.script, &out);
        assert_eq!(out.status.code(), Some(1), "{ctx}");
        assert!(summary.failed > 0, "{ctx}");
        if engine.name == KQL.name {
            assert_eq!(summary.passed, 0, "{ctx}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SPL structural checks

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
fn spl_problems(spl: &str, fields_yml: &str, known: &BTreeSet<String>) -> Vec<String> {
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
                "field '{field}' is not in templates/splunk/fields.yml"
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

fn read_yaml(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The strings a literal of the backend itself may be: the strings of templates/splunk/*.yml and
/// the double-quoted literals of its other templates.
fn splunk_constants() -> BTreeSet<String> {
    let mut known = BTreeSet::new();
    for entry in fs::read_dir(repo().join("templates/splunk")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yml") {
            yaml_strings(&read_yaml(&path), &mut known);
        } else {
            quoted(&fs::read_to_string(&path).unwrap(), &mut known);
        }
    }
    known
}

#[test]
fn built_spl_is_structurally_sound() {
    let pack = Pack::build();
    let fields_yml = fs::read_to_string(repo().join("templates/splunk/fields.yml")).unwrap();
    let constants = splunk_constants();
    let mut problems = Vec::new();
    for rule in pack.rules() {
        let file = rule["artifacts"]["splunk"]
            .as_str()
            .expect("artifacts.splunk");
        let spl = fs::read_to_string(pack.out().join(file)).unwrap();
        // A literal stands for a value of the rule's logic or for a backend constant.
        let source = read_yaml(&repo().join(rule["file"].as_str().expect("file")));
        let mut known = constants.clone();
        for key in [
            "condition",
            "output",
            "parameters",
            "aggregation",
            "correlation",
        ] {
            yaml_strings(&source[key], &mut known);
        }
        // A correlation's search holds the searches of the rules it names.
        let mut stages = vec![source["correlation"]["then"].clone()];
        if let Value::Array(first) = &source["correlation"]["first"] {
            stages.extend(first.iter().cloned());
        }
        for name in stages.iter().filter_map(Value::as_str) {
            let named = pack
                .rules()
                .iter()
                .find(|r| r["name"] == name)
                .unwrap_or_else(|| panic!("{file}: no rule {name} in the manifest"));
            let stage = read_yaml(&repo().join(named["file"].as_str().expect("file")));
            for key in ["condition", "parameters"] {
                yaml_strings(&stage[key], &mut known);
            }
        }
        for p in spl_problems(&spl, &fields_yml, &known) {
            problems.push(format!("{file}: {p}"));
        }
    }
    println!(
        "spl-structure: {} searches, {} problems",
        pack.rules().len(),
        problems.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Negative controls: each structural check rejects one deliberately broken search, while the
/// unbroken search passes them all.
#[test]
fn spl_checks_reject_broken_spl() {
    let fields_yml = "activity: \"'properties.activityDisplayName'\"\n";
    let known: BTreeSet<String> = ["Invite external user", "#EXT#"].map(String::from).into();
    let good = "`rulepack_entra_audit`\n\
                | where lower('properties.activityDisplayName')==lower(\"Invite external user\")\n\
                | where match('properties.activityDisplayName', \"(?i)\\\\#EXT\\\\#\")\n\
                | table _time";
    assert_eq!(spl_problems(good, fields_yml, &known), Vec::<String>::new());
    let broken = [
        (
            "lower(\"Invite external user\")",
            "lower(\"Invite external user)",
            "unterminated string",
        ),
        // An escaped quote does not close the string.
        ("user\")", "user\\\")", "unterminated string"),
        ("==lower(", "==lower((", "unclosed"),
        ("| table _time", "| table _time]", "unbalanced `]`"),
        (
            "| table _time",
            "| frobnicate _time",
            "unknown command `frobnicate`",
        ),
        (
            "| table _time",
            "| table _time | rex field=x \"(?<a>.)\"",
            "unknown command `rex`",
        ),
        (
            "lower('properties.",
            "lower('properties.x",
            "is not in templates/splunk/fields.yml",
        ),
        (
            "Invite external user",
            "Invite external usr",
            "neither a rule value",
        ),
        ("\\\\#EXT", "\\#EXT", "stray backslash"),
    ];
    for (from, to, expected) in broken {
        let spl = good.replacen(from, to, 1);
        assert_ne!(spl, good, "mutation {from:?} did not apply");
        let problems = spl_problems(&spl, fields_yml, &known);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "expected a problem containing {expected:?} for\n{spl}\ngot {problems:?}"
        );
    }
}
