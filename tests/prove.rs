//! `rulepack test` on the pack, and proof that it fails where it must.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn run_test(rules: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .current_dir(common::repo())
        .args(["test", "--rules"])
        .arg(rules)
        .output()
        .unwrap()
}

fn copy_rule(name: &str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(common::repo().join("rules").join(format!("{name}.yml"))).unwrap();
    std::fs::write(dir.path().join(format!("{name}.yml")), edit(text)).unwrap();
    dir
}

#[test]
fn the_pack_passes_its_own_tests() {
    let out = run_test(&common::repo().join("rules"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let summary = stdout.lines().last().unwrap();
    assert!(
        summary.starts_with("rules: ") && summary.ends_with(" passed, 0 failed"),
        "{summary}"
    );
    assert!(!stdout.contains("WEAK"), "{stdout}");
}

#[test]
fn a_wrong_expectation_fails_with_its_position() {
    let dir = copy_rule("guest_invited", |t| {
        t.replacen(
            "expect: no_match\n    note: Same invite, but the service refused it",
            "expect: match\n    note: Same invite, but the service refused it",
            1,
        )
    });
    let out = run_test(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL guest_invited: failed invitation ("),
        "{stdout}"
    );
    assert!(
        stdout.contains("guest_invited.yml:") && stdout.contains("expected match, got no match"),
        "{stdout}"
    );
}

#[test]
fn a_predicate_no_test_needs_is_reported() {
    // Without the failed-invitation near miss nothing tells `result: success` apart from its removal.
    let dir = copy_rule("guest_invited", |t| {
        let start = t.find("  - name: failed invitation").unwrap();
        let end = t.find("  - name: invitation redeemed").unwrap();
        format!("{}{}", &t[..start], &t[end..])
    });
    let out = run_test(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("WEAK")
            && stdout.contains("guest_invited.yml:")
            && stdout.contains("removed"),
        "{stdout}"
    );
}
