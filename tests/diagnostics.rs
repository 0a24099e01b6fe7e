//! Bad input: every case in tests/fixtures/errors/<case>/ must fail `rulepack check` with exit
//! status 1 and a diagnostic naming the code, file, line and column; the rendered text is a
//! snapshot, reviewed like any output.

mod common;

use std::process::Command;

fn check(dir: &std::path::Path, format: &str) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .current_dir(common::repo())
        .env("NO_COLOR", "1")
        .args(["check", "--format", format, "--rules"])
        .arg(dir.strip_prefix(common::repo()).unwrap())
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
    let out = Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .current_dir(common::repo())
        .env("NO_COLOR", "1")
        .args(["check", "--rules"])
        .arg(tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error[R010]") && stderr.contains("over the 1048576 byte limit"),
        "{stderr}"
    );
    assert!(stderr.contains("huge.yml:1:1"), "{stderr}");
}
