//! `rulepack verify` judged: the shipped pack passes every engine, and deliberately broken packs
//! fail where they are broken (flipped expectations, a misspelt column, an unknown Sigma
//! modifier). The harness itself lives in the binary (src/verify, tools/engines); these tests
//! only run the command. The engines come from `.tools/engines` (scripts/setup-validators calls
//! `rulepack verify --install-only`); a missing engine is installed, never skipped.

mod common;

use common::{compile_pack, manifest, repo, report, run, scratch_project};
use rulepack::verify::{Failure, Style, render, spl};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::process::{Command, Output};

fn verify(args: &[&str]) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .arg("verify")
        .args(args)
        .env("RULEPACK_ENGINES", repo().join(".tools/engines")))
}

/// Each tool's `CHECK: N passed, M failed` line, and the closing `N passed, M failed`; what
/// follows (the rules a manifest declares not executable) is read by `not_executable`.
fn tallies(out: &Output) -> (BTreeMap<String, (usize, usize)>, (usize, usize)) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let counts = |text: &str| -> Option<(usize, usize)> {
        let (p, rest) = text.split_once(" passed, ")?;
        let (f, _) = rest.split_once(" failed")?;
        Some((p.parse().ok()?, f.parse().ok()?))
    };
    let mut per_check = BTreeMap::new();
    for line in stdout.lines() {
        if let Some((check, rest)) = line.split_once(": ")
            && let Some(c) = counts(rest)
            && !line.starts_with("::")
        {
            per_check.insert(check.to_string(), c);
        }
    }
    let last = stdout.lines().last().unwrap_or_default();
    let total = counts(last).unwrap_or_else(|| panic!("last line is not a summary: {last:?}"));
    (per_check, total)
}

const CHECKS: [&str; 5] = [
    "duckdb-kql",
    "sigma-sqlite",
    "kusto-language",
    "sigma check",
    "spl",
];

#[test]
fn shipped_pack_passes_every_engine() {
    let rules = repo().join("rules");
    let out = verify(&["--rules", rules.to_str().unwrap()]);
    let ctx = report("rulepack verify", &out);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let (per_check, (passed, failed)) = tallies(&out);
    assert_eq!(failed, 0, "{ctx}");
    let keys: BTreeSet<&str> = per_check.keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(CHECKS), "{ctx}");
    assert_eq!(
        passed,
        per_check.values().map(|(p, _)| p).sum::<usize>(),
        "{ctx}"
    );
    // Nothing judged silently: duckdb-kql ran every test, Kusto.Language saw every query, every
    // SPL search was checked; Sigma runs every test of the rules that have a Sigma file.
    let pack = compile_pack();
    let tests: usize = pack.rules.iter().map(|r| r.tests.len()).sum();
    let has = |rule: &str, backend: &str| {
        pack.artifacts
            .iter()
            .any(|a| a.primary && a.rule.as_deref() == Some(rule) && a.path.starts_with(backend))
    };
    let sigma_tests: usize = pack
        .rules
        .iter()
        .filter(|r| has(&r.name.0, "sigma"))
        .map(|r| r.tests.len())
        .sum();
    // duckdb-kql runs every test but those of the rules rulepack.yml declares it cannot run, and
    // the run names exactly those.
    let declared = manifest()
        .not_executable
        .get("duckdb-kql")
        .cloned()
        .unwrap_or_default();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let listed = format!(
        "duckdb-kql: {} passed, 0 failed (not executable, as rulepack.yml declares: {})",
        per_check["duckdb-kql"].0,
        declared.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    assert!(
        stdout.lines().any(|l| l == listed),
        "expected `{listed}`\n{ctx}"
    );
    let undeclared: usize = pack
        .rules
        .iter()
        .filter(|r| !declared.contains(&r.name.0))
        .map(|r| r.tests.len())
        .sum();
    assert_eq!(per_check["duckdb-kql"], (undeclared, 0), "{ctx}");
    assert!(undeclared < tests, "the declared rules have tests");
    assert_eq!(per_check["sigma-sqlite"], (sigma_tests, 0), "{ctx}");
    assert_eq!(per_check["kusto-language"].0, pack.rules.len(), "{ctx}");
    assert_eq!(per_check["spl"].0, pack.rules.len(), "{ctx}");
    assert!(per_check["sigma check"].0 > 0, "{ctx}");
}

/// A one-rule pack (`scratch_project`) holding the shipped `rule` with `edit` applied to its
/// text; `verify` appended to its manifest. Returns (pack folder, rule file).
fn one_rule_pack(
    dir: &tempfile::TempDir,
    rule: &str,
    verify: &str,
    edit: impl Fn(&str) -> String,
) -> (String, String) {
    let text = fs::read_to_string(repo().join(format!("rules/{rule}.yml"))).unwrap();
    let file = dir.path().join(format!("rules/{rule}.yml"));
    fs::write(&file, edit(&text)).unwrap();
    let manifest = dir.path().join("rulepack.yml");
    let own = fs::read_to_string(&manifest).unwrap();
    fs::write(&manifest, format!("{own}{verify}")).unwrap();
    (
        dir.path().to_str().unwrap().to_string(),
        file.to_str().unwrap().to_string(),
    )
}

/// duckdb-kql cannot translate `set_difference`: a rule using it fails verify unless the
/// manifest declares it, and a declared rule that runs (or that the pack lacks) fails too.
#[test]
fn not_executable_rules_fail_unless_declared() {
    let rule = "b2b_allowlist_domain_added";
    let tmp = scratch_project();
    let (pack, file) = one_rule_pack(&tmp, rule, "", str::to_string);
    let out = verify(&["--pack", &pack]);
    let ctx = report("rulepack verify (undeclared)", &out);
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected = format!("{file}: duckdb-kql: {rule}: duckdb-kql cannot translate: ");
    assert!(
        stdout.lines().any(|l| l.starts_with(&expected)
            && l.contains("list the rule under verify.not_executable.duckdb-kql in rulepack.yml")),
        "expected `{expected}…`\n{ctx}"
    );
    assert_eq!(tallies(&out).1.1, 1, "only that failure\n{ctx}");

    let tmp = scratch_project();
    let declared = format!(
        "verify:\n  not_executable:\n    duckdb-kql: [{rule}, guest_invited, no_such_rule]\n"
    );
    let (pack, _) = one_rule_pack(&tmp, rule, &declared, str::to_string);
    one_rule_pack(&tmp, "guest_invited", "", str::to_string);
    let out = verify(&["--pack", &pack]);
    let ctx = report("rulepack verify (declared)", &out);
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "(not executable, as rulepack.yml declares: {rule})"
        )),
        "{ctx}"
    );
    for (name, why) in [
        ("guest_invited", "but it ran: remove it from the list"),
        ("no_such_rule", "but the pack has no rule of that name"),
    ] {
        let line = format!(
            "duckdb-kql: {name}: listed under verify.not_executable.duckdb-kql in rulepack.yml, {why}"
        );
        assert!(stdout.contains(&line), "expected `{line}`\n{ctx}");
    }
    assert!(
        stdout.trim_end().ends_with(", 1 not executable (declared)"),
        "{ctx}"
    );
}

/// Every expectation flipped: both executing engines fail every test, at the test's own line,
/// as GitHub annotations; the checks that do not read expectations still pass.
#[test]
fn flipped_expectations_fail_at_each_test() {
    let tmp = scratch_project();
    let (pack, file) = one_rule_pack(&tmp, "guest_invited", "", |t| {
        t.replace("expect: match", "expect: MATCH")
            .replace("expect: no_match", "expect: match")
            .replace("expect: MATCH", "expect: no_match")
    });
    let text = fs::read_to_string(&file).unwrap();
    let start = text
        .lines()
        .position(|l| l == "tests:")
        .expect("a tests: block");
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .skip(start)
        .filter(|(_, l)| l.starts_with("  - name:"))
        .map(|(i, _)| i + 1)
        .collect();
    assert!(!lines.is_empty());
    let out = verify(&["--pack", &pack, "--format", "github"]);
    let ctx = report("rulepack verify (flipped)", &out);
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for engine in ["duckdb-kql", "sigma-sqlite"] {
        for line in &lines {
            let at = format!("::error file={file},line={line},title=verify%3A {engine}::");
            assert!(
                stdout
                    .lines()
                    .any(|l| l.starts_with(&at) && l.contains(": expected ")),
                "no failure `{at}`\n{ctx}"
            );
        }
    }
    let (per_check, (passed, failed)) = tallies(&out);
    assert_eq!(per_check["duckdb-kql"], (0, lines.len()), "{ctx}");
    assert_eq!(per_check["sigma-sqlite"], (0, lines.len()), "{ctx}");
    for check in ["kusto-language", "sigma check", "spl"] {
        assert_eq!(per_check[check], (1, 0), "{check}\n{ctx}");
    }
    assert_eq!((passed, failed), (3, 2 * lines.len()), "{ctx}");
}

/// A template overlay that misspells a column (Sentinel) and a Sigma modifier: Kusto.Language
/// names the column at its line and column, `sigma check` the modifier.
#[test]
fn misspelt_column_and_unknown_modifier_fail() {
    let tmp = scratch_project();
    let (pack, file) = one_rule_pack(&tmp, "guest_invited", "", str::to_string);
    let overlay = tmp.path().join("templates");
    for (backend, mapped) in [
        ("sentinel", "ActivityDisplayNme"),
        ("sigma", "ActivityDisplayName|contans"),
    ] {
        let fields = fs::read_to_string(repo().join(format!("templates/{backend}/fields.yml")))
            .unwrap()
            .replace(
                "  activity: ActivityDisplayName\n",
                &format!("  activity: {mapped}\n"),
            );
        assert!(
            fields.contains(mapped),
            "the {backend} mutation did not apply"
        );
        fs::create_dir_all(overlay.join(backend)).unwrap();
        fs::write(overlay.join(backend).join("fields.yml"), fields).unwrap();
    }
    let out = verify(&["--pack", &pack, "--templates", overlay.to_str().unwrap()]);
    let ctx = report("rulepack verify (broken templates)", &out);
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kusto = format!(
        "{file}: kusto-language: guest_invited: sentinel/guest_invited.kql:10:9: error KS142: The \
         name 'ActivityDisplayNme'"
    );
    assert!(stdout.contains(&kusto), "expected `{kusto}`\n{ctx}");
    let sigma = format!(
        "{file}: sigma check: guest_invited: Unknown modifier 'contans' in \
         sigma/azure_guest_invited.yml"
    );
    assert!(stdout.contains(&sigma), "expected `{sigma}`\n{ctx}");
    let (per_check, _) = tallies(&out);
    assert_eq!(per_check["duckdb-kql"].0, 0, "{ctx}");
    assert_eq!(per_check["sigma-sqlite"].0, 0, "{ctx}");
    assert_eq!(per_check["spl"], (1, 0), "{ctx}");
}

/// No package index reachable and no cache: the error names the first package and the ways
/// around it, and no engine folder (whole or partial) is left behind.
#[test]
fn offline_install_names_the_package() {
    let engines = tempfile::tempdir().unwrap();
    let out = run(Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .args(["verify", "--install-only", "--engines"])
        .arg(engines.path())
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_NO_CACHE_DIR", "1")
        .env("PIP_RETRIES", "0")
        .env("PIP_TIMEOUT", "2"));
    let ctx = report("rulepack verify --install-only (offline)", &out);
    assert_eq!(out.status.code(), Some(5), "{ctx}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "error: could not install antlr4-python3-runtime==4.13.2 for the duckdb-kql engine"
        ),
        "{ctx}"
    );
    assert!(stderr.contains("--engines DIR"), "{ctx}");
    assert!(stderr.contains("PIP_INDEX_URL"), "{ctx}");
    let left: Vec<_> = fs::read_dir(engines.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{ctx}");
}

/// GitHub's workflow-command escaping: `%`, CR and LF everywhere, and `:` and `,` in properties.
#[test]
fn github_annotations_escape_properties_and_data() {
    let f = Failure {
        check: "sigma check",
        file: Some("rules/a,b:c%.yml".into()),
        line: Some(7),
        rule: Some("r".into()),
        test: Some("t".into()),
        message: "100% wrong\r\nnext: a, b".into(),
    };
    assert_eq!(
        render(&f, Style::Github),
        "::error file=rules/a%2Cb%3Ac%25.yml,line=7,title=verify%3A sigma check::r / t: 100%25 \
         wrong%0D%0Anext: a, b"
    );
    assert_eq!(
        render(&f, Style::Human),
        "rules/a,b:c%.yml:7: sigma check: r / t: 100% wrong  next: a, b"
    );
}

/// Negative controls of the SPL structural checks: each rejects one deliberately broken search,
/// while the unbroken search passes them all.
#[test]
fn spl_checks_reject_broken_spl() {
    let fields_yml = "activity: \"'properties.activityDisplayName'\"\n";
    let known: BTreeSet<String> = ["Invite external user", "#EXT#"].map(String::from).into();
    let good = "`rulepack_entra_audit`\n\
                | where lower('properties.activityDisplayName')==lower(\"Invite external user\")\n\
                | where match('properties.activityDisplayName', \"(?i)\\\\#EXT\\\\#\")\n\
                | table _time";
    assert_eq!(
        spl::problems(good, fields_yml, &known),
        Vec::<String>::new()
    );
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
            "is not in the splunk backend's fields.yml",
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
        let problems = spl::problems(&spl, fields_yml, &known);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "expected a problem containing {expected:?} for\n{spl}\ngot {problems:?}"
        );
    }
}

/// Two installs of one engine at once, as parallel tests or two `verify` runs start them: both
/// succeed with the same folder, and no partial folder is left. Both threads share one process
/// id, which once gave them one scratch folder to fight over.
#[test]
fn concurrent_installs_of_one_engine_both_succeed() {
    use rulepack::verify::install::{KUSTO, ensure};
    let engines = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| s.spawn(|| ensure(&KUSTO, engines.path())))
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let dirs: Vec<_> = dirs.into_iter().map(|d| d.expect("install").dir).collect();
    assert_eq!(dirs[0], dirs[1]);
    let left: Vec<_> = fs::read_dir(engines.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [dirs[0].file_name().unwrap()], "{left:?}");
}
