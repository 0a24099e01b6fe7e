//! `--templates DIR` overlays the shipped templates file by file; a broken user template is
//! reported with its own file and position.

mod common;

use std::process::Command;

fn build(overlay: &std::path::Path, out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .current_dir(common::repo())
        .env("NO_COLOR", "1")
        .args(["build", "--templates"])
        .arg(overlay)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn a_team_template_overrides_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let overlay = tmp.path().join("mine");
    std::fs::create_dir_all(overlay.join("sentinel")).unwrap();
    let shipped =
        std::fs::read_to_string(common::repo().join("templates/sentinel/rule.kql")).unwrap();
    std::fs::write(
        overlay.join("sentinel/rule.kql"),
        format!("// reviewed by the SOC team\n{shipped}"),
    )
    .unwrap();
    let res = build(&overlay, &tmp.path().join("out"));
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let kql = std::fs::read_to_string(tmp.path().join("out/sentinel/guest_invited.kql")).unwrap();
    assert!(
        kql.starts_with("// reviewed by the SOC team\n// Entra ID External Guest User Invited"),
        "{kql}"
    );
    let spl = std::fs::read_to_string(tmp.path().join("out/splunk/guest_invited.spl")).unwrap();
    assert_eq!(
        spl,
        std::fs::read_to_string(common::repo().join("out/splunk/guest_invited.spl")).unwrap()
    );
}

#[test]
fn a_broken_team_template_names_its_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let overlay = tmp.path().join("mine");
    std::fs::create_dir_all(overlay.join("splunk")).unwrap();
    std::fs::write(
        overlay.join("splunk/rule.spl"),
        "`{{ c.macro }}`\n| where {{ rule.title | no_such_filter }}\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let res = build(&overlay, &out);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error[R090]") && stderr.contains("no_such_filter"),
        "{stderr}"
    );
    assert!(
        stderr.contains("mine/splunk/rule.spl:2:25"),
        "the template's own file, line and column: {stderr}"
    );
    assert!(!out.exists(), "nothing may be written");
}
