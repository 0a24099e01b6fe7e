//! Bad input: every case in tests/fixtures/errors/<case>/ must fail `rulepack check` with exit
//! status 1 and a diagnostic naming the code, file, line and column; the rendered text is a
//! snapshot, reviewed like any output.

mod common;

use std::process::Command;

/// `rulepack check` of the rules in `dir`, run from the repository: its exit status and stderr.
/// A folder of the repository is named relative to it, so the paths in the output are too.
fn check(dir: &std::path::Path, format: &str) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .current_dir(common::repo())
        .env("NO_COLOR", "1")
        .args(["check", "--format", format, "--rules"])
        .arg(dir.strip_prefix(common::repo()).unwrap_or(dir))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_bad_rule_gets_a_precise_diagnostic() {
    insta::glob!("fixtures/errors", "*/rule.yml", |path| {
        let dir = path.parent().unwrap();
        let (code, stderr) = check(dir, "human");
        assert_eq!(code, Some(1), "{}: {stderr}", dir.display());
        assert!(
            stderr.contains("error[R"),
            "{}: no coded error: {stderr}",
            dir.display()
        );
        assert!(
            stderr.contains("--> tests/fixtures/errors/"),
            "{}: no position: {stderr}",
            dir.display()
        );
        insta::with_settings!({ prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!("diagnostic", stderr);
        });
    });
}

#[test]
fn json_and_github_formats_carry_code_and_position() {
    let dir = common::repo().join("tests/fixtures/errors/unknown_key");
    let (code, json) = check(&dir, "json");
    assert_eq!(code, Some(1));
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["code"], "R012");
    assert_eq!(first["file"], "tests/fixtures/errors/unknown_key/rule.yml");
    assert_eq!(first["line"], 7);
    assert_eq!(first["column"], 1);
    assert_eq!(first["help"], "did you mean `severity`?");
    let (_, github) = check(&dir, "github");
    assert!(github.starts_with("::error file=tests/fixtures/errors/unknown_key/rule.yml,line=7,col=1::R012: unknown key `severty`"), "{github}");
}

#[test]
fn all_problems_of_all_rules_in_one_run() {
    let root = common::repo().join("tests/fixtures/errors");
    let (code, stderr) = check(&root, "human");
    assert_eq!(code, Some(1));
    for case in std::fs::read_dir(&root).unwrap() {
        let name = case.unwrap().file_name().into_string().unwrap();
        assert!(
            stderr.contains(&format!("tests/fixtures/errors/{name}/")),
            "{name} missing from one combined run:\n{stderr}"
        );
    }
}

#[test]
fn a_huge_file_is_refused_before_parsing() {
    let tmp = tempfile::tempdir().unwrap();
    let rule = std::fs::read_to_string(common::repo().join("rules/guest_invited.yml")).unwrap();
    let padding = "# padding\n".repeat(120_000);
    std::fs::write(tmp.path().join("huge.yml"), format!("{rule}{padding}")).unwrap();
    let (code, stderr) = check(tmp.path(), "human");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("error[R010]") && stderr.contains("over the 1048576 byte limit"),
        "{stderr}"
    );
    assert!(stderr.contains("huge.yml:1:1"), "{stderr}");
}

/// `build` and `check` read test events only for their shape; every odd event must get the same
/// diagnostics as when the events are read whole (as `rulepack test` does).
#[test]
fn test_events_read_for_their_shape_give_the_same_diagnostics() {
    use rulepack::{TestEvents, check_unlocked, source::SourceMap};
    let rule =
        std::fs::read_to_string(common::repo().join("tests/fixtures/errors/alias_bomb/rule.yml"))
            .unwrap();
    let head = &rule[..rule.find("tests:").unwrap()];
    let events = [
        "event: {a: 123456789012345678901234567890}",
        "event: {a: -123456789012345678901234567890}",
        "event: {? {x: 1} : 2}",
        "event: {a: 1, ? [x] : 2}",
        "event: {1: a, true: c, null: d}",
        "event: {a: {b: 1, b: 2}}",
        "event: {a: 1, !!binary aGVsbG8=: 2}",
        "event: {!!binary aGVsbG8=: 2}",
        "event: {a: !!binary aGVsbG8=, b: !foo bar, <<: {c: 1}}",
        "event: {a: .nan}",
        "event: &e {a: [1, *e]}",
        "events: [&x {a: 1}, *x, [1]]",
        "event: hello",
        "events: []",
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (i, e) in events.iter().enumerate() {
        let dir = tmp.path().join(format!("case{i}"));
        std::fs::create_dir(&dir).unwrap();
        let text = format!("{head}tests:\n  - name: t\n    expect: match\n    {e}\n");
        std::fs::write(dir.join("rule.yml"), text).unwrap();
    }
    let diags = |events: TestEvents| -> Vec<String> {
        let mut sources = SourceMap::default();
        match check_unlocked(&common::paths(tmp.path()), &mut sources, events) {
            Ok(_) => panic!("every case has a problem"),
            Err(d) => d
                .iter()
                .map(|d| rulepack::diag::render_human(d, &sources, false))
                .collect(),
        }
    };
    // Kept events are also checked against the log source's record shape (key `a` is not a
    // Graph key); those diagnostics come on top of the reading ones, which must be the same.
    let (shape, kept): (Vec<String>, Vec<String>) = diags(TestEvents::Keep)
        .into_iter()
        .partition(|d| d.contains("error[R070]: event key `"));
    assert!(!shape.is_empty());
    // Nine cases are refused (the others are valid events); every case repeats the id and name.
    // (Which cases repeat them, or get the missing-test warning, depends on which rules
    // validated, so those are left out.)
    let reading = |d: Vec<String>| -> Vec<String> {
        d.into_iter()
            .filter(|d| !d.contains("already used") && !d.starts_with("warning"))
            .collect()
    };
    let kept = reading(kept);
    assert_eq!(kept.len(), 9, "{kept:#?}");
    assert_eq!(kept, reading(diags(TestEvents::Skip)));
}

/// `schedule.lookback` is deprecated: a rule that still writes it builds, with a warning at the
/// key that says what to do; a window over Sentinel's 14-day query period (what a lookback used
/// to bound) is still an error.
#[test]
fn a_deprecated_lookback_warns_at_its_key() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::repo().join("rules/guest_invited.yml")).unwrap();
    let with = text.replacen("  frequency: 1h\n", "  frequency: 1h\n  lookback: 3h\n", 1);
    assert_ne!(with, text);
    let line = with.lines().position(|l| l == "  lookback: 3h").unwrap() + 1;
    std::fs::write(tmp.path().join("guest_invited.yml"), &with).unwrap();
    let (code, stderr) = check(tmp.path(), "human");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("warning[W103]: `schedule.lookback` is deprecated and ignored"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("guest_invited.yml:{line}:13")),
        "{stderr}"
    );
    assert!(stderr.contains("help: delete the line"), "{stderr}");

    let long = text.replacen("  frequency: 1h\n", "  frequency: 14d\n", 1);
    let burst = std::fs::read_to_string(common::repo().join("rules/guest_invitation_burst.yml"))
        .unwrap()
        .replacen("  frequency: 1h\n", "  frequency: 14d\n", 1);
    std::fs::write(tmp.path().join("guest_invited.yml"), long).unwrap();
    std::fs::write(tmp.path().join("guest_invitation_burst.yml"), burst).unwrap();
    let (code, stderr) = check(tmp.path(), "human");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("error[R050]: the window (1h) plus the frequency (14d) is over 14 days"),
        "{stderr}"
    );
}
