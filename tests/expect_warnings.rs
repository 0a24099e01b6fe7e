//! `expect_warnings`: a warning its rule acknowledges is not printed but counted; every other
//! warning still prints; an acknowledgement whose warning no longer happens warns (`W104`) at
//! its entry. (Bad entries are refused: tests/fixtures/errors/bad_expect_warnings/.)

mod common;

use rulepack::diag::Code;
use std::path::Path;
use std::process::Command;

/// `rulepack ARGS --rules RULES` from the repository root: exit code and stderr.
fn run(rules: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = common::run(
        Command::new(env!("CARGO_BIN_EXE_rulepack"))
            .current_dir(common::repo())
            .env("NO_COLOR", "1")
            .args(args)
            .arg("--rules")
            .arg(rules),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The JSON diagnostics of a `--format json` run.
fn json_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The shipped rules in a temporary folder, `edit` applied to the text of rule `name`.
fn pack_with(name: &str, edit: impl FnOnce(&str) -> String) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_tree(&common::repo().join("rules"), tmp.path());
    let path = tmp.path().join(format!("{name}.yml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = edit(&text);
    assert_ne!(edited, text, "the edit of {name} changed nothing");
    std::fs::write(&path, edited).unwrap();
    tmp
}

/// The shipped pack carries known Sigma limits, each acknowledged by its rule: `check` and
/// `build --check` print no warning and say how many were expected; `--show-expected` lists
/// exactly those, each with its rule's reason, in every format.
#[test]
fn expected_warnings_are_silent_and_counted() {
    let rules = common::repo().join("rules");
    let (code, listed) = run(&rules, &["check", "--format", "json", "--show-expected"]);
    assert_eq!(code, Some(0), "{listed}");
    let listed = json_lines(&listed);
    let expected: Vec<&serde_json::Value> = listed
        .iter()
        .filter(|d| d["expected"].is_string())
        .collect();
    assert!(
        expected.len() >= 2 && expected.len() == listed.len(),
        "every warning of the shipped pack is expected: {listed:#?}"
    );
    for code in ["W100", "W101"] {
        assert!(
            expected.iter().any(|d| d["code"] == code),
            "{code} missing: {expected:#?}"
        );
    }
    // The reason shown is the rule's own: the Sigma omission of the absence rule.
    let absence = expected
        .iter()
        .find(|d| {
            d["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("/rules/guest_invite_not_redeemed.yml"))
        })
        .unwrap();
    assert_eq!(absence["code"], "W101");
    assert!(
        absence["expected"]
            .as_str()
            .unwrap()
            .starts_with("No Sigma correlation type expresses an absence"),
        "{absence}"
    );
    let n = expected.len();
    let tail = format!("; {n} warnings expected by rules (--show-expected lists them)");

    for args in [&["check"][..], &["build", "--check"]] {
        let (code, stderr) = run(&rules, args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("warning["), "{args:?} printed: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?} printed: {stderr}");
        let last = stderr.lines().last().unwrap();
        assert!(last.ends_with(&tail), "{args:?}: {last}");
    }
    let (_, stderr) = run(&rules, &["check"]);
    assert!(stderr.ends_with(&format!("0 warnings{tail}\n")), "{stderr}");

    let (_, json) = run(&rules, &["check", "--format", "json"]);
    assert!(json_lines(&json).is_empty(), "{json}");
    let (_, github) = run(&rules, &["check", "--format", "github"]);
    assert!(!github.contains("::"), "{github}");
    let (_, github) = run(&rules, &["check", "--format", "github", "--show-expected"]);
    assert_eq!(github.matches("::notice file=").count(), n, "{github}");
    assert!(!github.contains("::warning"), "{github}");
    let (_, human) = run(&rules, &["check", "--show-expected"]);
    assert_eq!(
        human.matches("= note: expected by the rule: ").count(),
        n,
        "{human}"
    );
    assert!(
        human.ends_with(&format!("{n} warnings expected by rules (listed above)\n")),
        "{human}"
    );
}

/// A warning no rule acknowledges prints as before, beside the silent ones.
#[test]
fn an_unexpected_warning_still_prints() {
    let tmp = pack_with("guest_invite_setting_widened", |t| {
        let start = t.find("expect_warnings:\n").unwrap();
        let end = t.find("logsource:").unwrap();
        format!("{}{}", &t[..start], &t[end..])
    });
    let (code, stderr) = run(tmp.path(), &["build", "--check"]);
    // The copy's logic is the shipped one: only the warning changes.
    assert_eq!(code, Some(0), "{stderr}");
    let printed: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning"))
        .collect();
    assert_eq!(
        printed,
        [
            "warning[W100]: Sigma output of `guest_invite_setting_widened` is approximate: Sigma cannot bind several conditions to one element of `modified`: they may be met by different elements."
        ],
        "{stderr}"
    );
    assert!(
        stderr.contains("guest_invite_setting_widened.yml:"),
        "{stderr}"
    );
    assert!(
        stderr.contains(" warnings expected by rules (--show-expected lists them)"),
        "{stderr}"
    );
}

/// An acknowledgement whose warning is gone warns at its entry, with what to do; one for a
/// backend that was not rendered (`build --backend`) is not judged.
#[test]
fn a_stale_expectation_warns_at_its_line() {
    let entry = "expect_warnings:\n  W100: the Sigma output drops a test\n";
    let tmp = pack_with("guest_invited", |t| {
        t.replacen("logsource: ", &format!("{entry}logsource: "), 1)
    });
    let text = std::fs::read_to_string(tmp.path().join("guest_invited.yml")).unwrap();
    let line = text
        .lines()
        .position(|l| l == "  W100: the Sigma output drops a test")
        .unwrap()
        + 1;
    let (code, stderr) = run(tmp.path(), &["check"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "warning[W104]: `guest_invited` expects warning W100, which it no longer gets"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("guest_invited.yml:{line}:3")),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: delete the W100 entry of `expect_warnings`"),
        "{stderr}"
    );
    assert!(stderr.contains("artifacts, 1 warnings;"), "{stderr}");

    let (_, json) = run(tmp.path(), &["build", "--check", "--format", "json"]);
    let stale: Vec<_> = json_lines(&json)
        .into_iter()
        .filter(|d| d["code"] == "W104")
        .collect();
    assert_eq!(stale.len(), 1, "{json}");
    assert_eq!(stale[0]["line"], line);
    assert_eq!(stale[0]["column"], 3);

    // A validation warning is judged by every command that validates, `test` included.
    let tmp = pack_with("guest_invited", |t| {
        t.replacen(
            "logsource: ",
            "expect_warnings:\n  W102: a regex that backtracks\nlogsource: ",
            1,
        )
    });
    let (_, stderr) = run(tmp.path(), &["test"]);
    assert!(
        stderr.contains("warning[W104]: `guest_invited` expects warning W102"),
        "{stderr}"
    );

    // Only the Splunk files are built: the Sigma approximations are not known, so not stale.
    let out = tempfile::tempdir().unwrap();
    let tmp = pack_with("guest_invited", |t| {
        t.replacen("logsource: ", &format!("{entry}logsource: "), 1)
    });
    let (code, stderr) = run(
        tmp.path(),
        &[
            "build",
            "--backend",
            "splunk",
            "--out",
            out.path().join("out").to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("W104"), "{stderr}");
}

/// The codes an entry may name parse back to themselves; an error code parses but is refused.
#[test]
fn expectable_codes_are_warnings() {
    for c in Code::EXPECTABLE {
        assert_eq!(Code::parse(c.as_str()), Some(*c));
        assert!(c.as_str().starts_with('W'), "{}", c.as_str());
    }
    assert_eq!(Code::parse("W104"), Some(Code::StaleExpectation));
    assert!(!Code::EXPECTABLE.contains(&Code::StaleExpectation));
    assert!(!Code::EXPECTABLE.contains(&Code::Unlocked));
    assert_eq!(Code::parse("R031"), Some(Code::BadPredicate));
    assert_eq!(Code::parse("W999"), None);
}
