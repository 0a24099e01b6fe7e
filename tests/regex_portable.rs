//! The portable regex subset, as a property: generated patterns (portable pieces mixed with
//! Rust-only ones) go through rule validation; every pattern rulepack accepts must compile in
//! Python's `re` (one process for all) and its Sigma rule must convert with pySigma's Splunk and
//! Kusto backends (one `sigma convert` per backend for all); every pattern holding a Rust-only
//! piece must be refused with R032 at the value.
//! Cases: RULEPACK_REGEX_CASES (default 150).

mod common;

use common::fuzz::Rng;
use common::{repo, report, run};
use rulepack::load::{raw::RawRule, yaml};
use rulepack::render::escape::yaml_string;
use rulepack::source::SourceMap;
use std::io::Write;
use std::process::{Command, Stdio};

const ATOMS: &[&str] = &[
    "a",
    "b",
    "é",
    " ",
    "#EXT#",
    r"\.",
    r"\(",
    r"\\",
    r"\$",
    "[a-c]",
    "[^x]",
    "[]a]",
    "[-.]",
    r"\d",
    r"\w",
    r"\s",
    r"\S",
    ".",
    r"\x41",
    r"\t",
    "[\\x00-\\x1f]",
    "guest",
    "@",
    "%",
];
const QUANTIFIERS: &[&str] = &[
    "", "", "", "*", "+", "?", "{2}", "{1,3}", "*?", "+?", "{2,}",
];
/// Rust-only pieces: each makes a pattern unportable wherever it stands.
const RUST_ONLY: &[&str] = &[
    r"\p{L}",
    r"\pN",
    r"\z",
    r"\A",
    r"\x{263a}",
    "(?<n>x)",
    "(?P<n>x)",
    "(?U)",
    r"[\d--4]",
    "[a&&b]",
    "[[:alpha:]]",
    r"\b{end}",
    "(?x)",
    r"\u00e9",
];

fn piece(rng: &mut Rng, depth: usize) -> (String, bool) {
    if depth < 2 && rng.below(4) == 0 {
        let (inner, bad) = pattern(rng, depth + 1);
        let open = *rng.pick(&["(", "(?:", "(?i:", "(?-i:", "(?s:"]);
        return (format!("{open}{inner}){}", rng.pick(QUANTIFIERS)), bad);
    }
    if rng.below(12) == 0 {
        return (rng.pick(RUST_ONLY).to_string(), true);
    }
    (
        format!("{}{}", rng.pick(ATOMS), rng.pick(QUANTIFIERS)),
        false,
    )
}

/// A pattern and whether it holds a Rust-only piece.
fn pattern(rng: &mut Rng, depth: usize) -> (String, bool) {
    let mut out = String::new();
    let mut bad = false;
    for i in 0..1 + rng.below(4) {
        if i > 0 && rng.below(5) == 0 {
            out.push('|');
        }
        let (p, b) = piece(rng, depth);
        out.push_str(&p);
        bad |= b;
    }
    (out, bad)
}

fn rule_text(i: usize, pattern: &str) -> String {
    format!(
        "id: 3b0c2f61-5d7e-4a8b-9c1d-{i:012x}\nname: regex_case_{i:05}\ntitle: Regex case {i}\n\
         description: A generated rule whose only test is a regular expression.\n\
         status: experimental\nseverity: low\nauthor: rulepack tests\ndate: 2026-11-28\n\
         version: 1.0.0\nattack:\n  tactics: [persistence]\n  techniques: [T1136.003]\n\
         logsource: entra_audit\ncondition:\n  all:\n    - field: activity\n      regex: {}\n\
         schedule: {{ frequency: 1h }}\noutput:\n  Initiator: {{ field: initiator.upn }}\n",
        yaml_string(pattern)
    )
}

#[test]
fn accepted_regexes_run_in_python_and_pysigma() {
    let n: usize = std::env::var("RULEPACK_REGEX_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let mut rng = Rng(0x005e_ed0f_4e6e_c0de);
    let mut sources = SourceMap::default();
    let logsources =
        rulepack::load_logsources(&rulepack::templates::Templates::default(), &mut sources)
            .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let (mut accepted, mut refused, mut warned) = (Vec::new(), 0, 0);
    for i in 0..n {
        let (p, rust_only) = pattern(&mut rng, 0);
        let text = rule_text(i, &p);
        let file = sources.add(std::path::Path::new("regex.yml"), text.clone());
        let raw = yaml::parse::<RawRule>(&sources, file)
            .unwrap_or_else(|d| panic!("{p:?}: {d:?}\n{text}"));
        match rulepack::validate::validate(&raw, file, &text, &logsources) {
            Ok(rule) => {
                assert!(!rust_only, "{p:?}: a Rust-only piece was accepted");
                warned += rule.warnings.len();
                std::fs::write(rules.join(format!("regex_case_{i:05}.yml")), &text).unwrap();
                accepted.push(p);
            }
            Err(d) => {
                let errors: Vec<_> = d.iter().filter(|d| d.is_error()).collect();
                assert!(
                    !errors.is_empty() && errors.iter().all(|d| d.code.as_str() == "R032"),
                    "{p:?}: {d:?}"
                );
                refused += 1;
            }
        }
    }
    assert!(
        accepted.len() > n / 3 && refused > 0,
        "{} accepted",
        accepted.len()
    );

    // Python's re, one process for every accepted pattern.
    let mut child = Command::new(repo().join(".tools/sigma-convert/bin/python"))
        .arg("-c")
        .arg(
            "import json, re, sys\n\
             bad = []\n\
             for p in json.load(sys.stdin):\n\
             \x20   try: re.compile(p)\n\
             \x20   except re.error as e: bad.append([p, str(e)])\n\
             print(json.dumps(bad))",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the sigma-convert python (scripts/setup-validators)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&accepted).unwrap().as_bytes())
        .unwrap();
    let py = child.wait_with_output().unwrap();
    assert!(py.status.success(), "{}", report("python re", &py));
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), "[]");

    // pySigma: the built Sigma rules convert with the Splunk and Kusto backends.
    let pack = common::compile_dir(&rules);
    let sigma_dir = tmp.path().join("sigma");
    std::fs::create_dir(&sigma_dir).unwrap();
    let mut files = Vec::new();
    for a in pack.artifacts.iter().filter(|a| {
        a.path.starts_with("sigma")
            && a.path.to_string_lossy().ends_with(".yml")
            && a.rule.is_some()
    }) {
        let f = sigma_dir.join(a.path.file_name().unwrap());
        std::fs::write(&f, &a.content).unwrap();
        files.push(f);
    }
    assert_eq!(files.len(), accepted.len());
    for target in ["splunk", "kusto"] {
        let out = run(Command::new(repo().join(".tools/sigma-convert/bin/sigma"))
            .args(["convert", "-t", target, "-p"])
            .arg(repo().join("tools/bench/sigma-placeholders.yml"))
            .args(&files));
        assert!(out.status.success(), "{}", report(target, &out));
    }
    println!(
        "regexes: {n} generated, {} accepted (Python re and pySigma splunk/kusto: all good), {refused} refused, {warned} nested-quantifier warnings",
        accepted.len()
    );
}
