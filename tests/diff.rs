//! `rulepack diff` summarises a change per rule with the changed query lines.

mod common;

use std::process::Command;

fn rulepack(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rulepack"));
    c.current_dir(common::repo()).args(args);
    c
}

#[test]
fn diff_names_the_rule_and_the_changed_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    for f in std::fs::read_dir(common::repo().join("rules")).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "yml") {
            std::fs::copy(&f, rules.join(f.file_name().unwrap())).unwrap();
        }
    }
    let base = tmp.path().join("base");
    assert!(
        rulepack(&["build", "--out"])
            .arg(&base)
            .status()
            .unwrap()
            .success()
    );

    let same = rulepack(&["diff", "--rules"])
        .arg(&rules)
        .arg(&base)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&same.stdout).contains("No artifact changed."));

    let file = rules.join("guest_invited.yml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("      equals: success", "      one_of: [success, timeout]"),
    )
    .unwrap();
    let out = rulepack(&["diff", "--rules"])
        .arg(&rules)
        .arg(&base)
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The three queries, the Sentinel YAML and ARM files that embed one, the Sentinel pack
    // template and the Splunk app's savedsearches.conf; and the same files of the four
    // correlations that embed guest_invited's search (a Sigma file for the two sequences that
    // have one): 7 + 5 + 5 + 4 + 4.
    assert!(md.contains("0 added, 0 removed, 25 changed."), "{md}");
    assert!(md.contains("### guest_invited\n"), "{md}");
    assert!(
        md.contains("### guest_invited_after_settings_loosened"),
        "{md}"
    );
    assert!(md.contains("### guest_invited_after_access_opened"), "{md}");
    assert!(md.contains("### guest_invite_not_redeemed"), "{md}");
    assert!(md.contains("### guest_deleted_soon_after_invite"), "{md}");
    assert!(
        md.contains(
            "-| where Result =~ \"success\"\n+| where Result in~ (\"success\", \"timeout\")"
        ),
        "{md}"
    );
    assert!(!md.contains("### b2b_domain_policy_changed"), "{md}");
}

#[test]
fn a_base_that_is_neither_folder_nor_revision_is_an_error() {
    let out = rulepack(&["diff", "no-such-revision-or-folder"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither a folder nor a git revision"));
}
