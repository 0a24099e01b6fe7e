//! Versioning against rules/versions.lock: logic changes need a version bump, ids never change
//! or move to another rule.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn rulepack(args: &[&str], rules: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .current_dir(common::repo())
        .env("NO_COLOR", "1")
        .args(args)
        .arg("--rules")
        .arg(rules)
        .output()
        .unwrap()
}

fn copy_pack() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(common::repo().join("rules")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    dir
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let p = dir.join(file);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{from} not in {file}");
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_committed_lock_is_current() {
    let dir = copy_pack();
    let o = rulepack(&["check"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let before = std::fs::read(dir.path().join("versions.lock")).unwrap();
    assert!(rulepack(&["lock"], dir.path()).status.success());
    assert_eq!(
        std::fs::read(dir.path().join("versions.lock")).unwrap(),
        before,
        "rulepack lock would change the committed lock"
    );
}

#[test]
fn a_logic_change_needs_a_version_bump() {
    let dir = copy_pack();
    edit(
        dir.path(),
        "guest_invited.yml",
        "      equals: success",
        "      one_of: [success, timeout]",
    );
    let o = rulepack(&["check"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("the logic of `guest_invited` changed but its version is still 1.0.0"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("guest_invited.yml:16:10"),
        "points at the version: {}",
        stderr(&o)
    );
    assert_eq!(
        rulepack(&["lock"], dir.path()).status.code(),
        Some(1),
        "lock must refuse too"
    );

    edit(
        dir.path(),
        "guest_invited.yml",
        "version: 1.0.0",
        "version: 1.1.0",
    );
    let o = rulepack(&["check"], dir.path());
    assert!(
        stderr(&o).contains("version 1.1.0 of `guest_invited` is not in the lock yet"),
        "{}",
        stderr(&o)
    );
    // The correlations that embed guest_invited's search changed with it.
    for name in [
        "guest_deleted_soon_after_invite",
        "guest_invite_not_redeemed",
        "guest_invited_after_settings_loosened",
    ] {
        assert!(
            stderr(&o).contains(&format!(
                "the logic of `{name}` changed but its version is still 1.0.0"
            )),
            "{}",
            stderr(&o)
        );
        edit(
            dir.path(),
            &format!("{name}.yml"),
            "version: 1.0.0",
            "version: 1.0.1",
        );
    }
    assert!(
        stderr(&o).contains("it embeds the rules it names"),
        "{}",
        stderr(&o)
    );
    assert!(rulepack(&["lock"], dir.path()).status.success());
    assert!(rulepack(&["check"], dir.path()).status.success());
}

#[test]
fn a_wording_change_needs_no_bump() {
    let dir = copy_pack();
    edit(
        dir.path(),
        "guest_invited.yml",
        "title: Entra ID External Guest User Invited",
        "title: Entra ID Guest User Invited",
    );
    assert!(rulepack(&["check"], dir.path()).status.success());
}

#[test]
fn ids_never_change_or_move() {
    let dir = copy_pack();
    edit(
        dir.path(),
        "guest_invited.yml",
        "id: 24699536-aa1f-43ba-9cd1-187aeee93684",
        "id: 5d1f6a0e-8f0a-4c52-9d3e-0f1e2d3c4b5a",
    );
    let o = rulepack(&["check"], dir.path());
    assert!(
        stderr(&o).contains("the id of `guest_invited` changed"),
        "{}",
        stderr(&o)
    );

    let dir = copy_pack();
    // Another rule takes guest_invited's id (and guest_invited gets a fresh one).
    edit(
        dir.path(),
        "guest_invited.yml",
        "id: 24699536-aa1f-43ba-9cd1-187aeee93684",
        "id: 5d1f6a0e-8f0a-4c52-9d3e-0f1e2d3c4b5a",
    );
    edit(
        dir.path(),
        "guest_invited.yml",
        "name: guest_invited",
        "name: guest_invited_v2",
    );
    for file in [
        "guest_invite_not_redeemed.yml",
        "guest_deleted_soon_after_invite.yml",
    ] {
        edit(
            dir.path(),
            file,
            "first: [guest_invited]",
            "first: [guest_invited_v2]",
        );
    }
    edit(
        dir.path(),
        "guest_invited_after_settings_loosened.yml",
        "then: guest_invited\n",
        "then: guest_invited_v2\n",
    );
    edit(
        dir.path(),
        "b2b_domain_policy_changed.yml",
        "id: 12e9198a-b67a-4dab-839e-7b3ee35fae67",
        "id: 24699536-aa1f-43ba-9cd1-187aeee93684",
    );
    edit(
        dir.path(),
        "b2b_domain_policy_changed.yml",
        "name: b2b_domain_policy_changed",
        "name: b2b_domain_policy_changed_v2",
    );
    let o = rulepack(&["check"], dir.path());
    assert!(
        stderr(&o).contains("belonged to `guest_invited`, whose logic was different"),
        "{}",
        stderr(&o)
    );
}
