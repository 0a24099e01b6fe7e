//! Versioning against rules/versions.lock: a logic change warns while editing and needs a
//! version bump at release (`lock --bump`) once its version was released; ids never change or
//! move to another rule.

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
    assert!(!stderr(&o).contains("W110"), "{}", stderr(&o));
    let before = std::fs::read(dir.path().join("versions.lock")).unwrap();
    assert!(rulepack(&["lock"], dir.path()).status.success());
    assert_eq!(
        std::fs::read(dir.path().join("versions.lock")).unwrap(),
        before,
        "rulepack lock would change the committed lock"
    );
}

/// MAJOR.MINOR.PATCH with the minor version bumped, as `lock --bump` does.
fn bumped(version: &str) -> String {
    let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap()).collect();
    format!("{}.{}.0", parts[0], parts[1] + 1)
}

/// The line of a rule file's `version:` key.
fn version_line(dir: &Path, file: &str) -> usize {
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    text.lines()
        .position(|l| l.starts_with("version: "))
        .unwrap()
        + 1
}

fn version_of(dir: &Path, file: &str) -> String {
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("version: "))
        .unwrap()
        .to_string()
}

/// The correlations that embed guest_invited's search: they change with it.
const EMBEDDING: [&str; 4] = [
    "guest_deleted_soon_after_invite",
    "guest_invite_not_redeemed",
    "guest_invited_after_settings_loosened",
    "guest_invited_after_access_opened",
];

#[test]
fn a_logic_change_warns_while_editing_and_is_refused_at_release() {
    let dir = copy_pack();
    let released = version_of(dir.path(), "guest_invited.yml");
    let before: Vec<String> = EMBEDDING
        .iter()
        .map(|n| version_of(dir.path(), &format!("{n}.yml")))
        .collect();
    let untouched = version_of(dir.path(), "guest_invited_by_guest.yml");
    let line = version_line(dir.path(), "guest_invited.yml");
    edit(
        dir.path(),
        "guest_invited.yml",
        "      equals: success",
        "      one_of: [success, timeout]",
    );
    // The edit loop runs the change and warns.
    for cmd in ["check", "test"] {
        let o = rulepack(&[cmd], dir.path());
        assert!(o.status.success(), "{cmd}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("warning[W110]: the logic of `guest_invited` changed but its version is still the released {released}")),
            "{cmd}: {err}"
        );
        assert!(
            err.contains(&format!("guest_invited.yml:{line}:10")),
            "points at the version: {err}"
        );
        assert!(err.contains("rulepack lock --bump"), "{err}");
        for name in EMBEDDING {
            assert!(
                err.contains(&format!("the logic of `{name}` changed")),
                "{cmd}: {err}"
            );
        }
        assert!(err.contains("it embeds the rules it names"), "{err}");
    }
    // The release points refuse it.
    let o = rulepack(&["build", "--check"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("error[R024]: the logic of `guest_invited` changed"),
        "{}",
        stderr(&o)
    );
    let dist = tempfile::tempdir().unwrap();
    let o = rulepack(
        &["package", "--dist", dist.path().to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_dir(dist.path()).unwrap().count(),
        0,
        "nothing packaged"
    );
    // `lock` alone will not record a released version's new logic.
    let o = rulepack(&["lock"], dir.path());
    assert_eq!(o.status.code(), Some(1), "lock must refuse");
    assert!(
        stderr(&o).contains("rulepack lock --bump"),
        "{}",
        stderr(&o)
    );
    // `lock --bump` bumps the rule and the correlations embedding it, and records them.
    let o = rulepack(&["lock", "--bump"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        version_of(dir.path(), "guest_invited.yml"),
        bumped(&released)
    );
    let bumped_text = std::fs::read_to_string(dir.path().join("guest_invited.yml")).unwrap();
    assert!(
        bumped_text.contains(&format!("\nmodified: {}\n", rulepack::scaffold::today())),
        "the date of the logic change: {bumped_text}"
    );
    for (name, was) in EMBEDDING.iter().zip(&before) {
        assert_eq!(
            version_of(dir.path(), &format!("{name}.yml")),
            bumped(was),
            "{name}"
        );
    }
    assert_eq!(
        version_of(dir.path(), "guest_invited_by_guest.yml"),
        untouched
    );
    let o = rulepack(&["check"], dir.path());
    assert!(
        o.status.success() && !stderr(&o).contains("W110"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_unreleased_version_is_relocked_a_released_one_is_not() {
    let dir = copy_pack();
    let once = bumped(&version_of(dir.path(), "guest_invited.yml"));
    edit(
        dir.path(),
        "guest_invited.yml",
        "      equals: success",
        "      one_of: [success, timeout]",
    );
    assert!(rulepack(&["lock", "--bump"], dir.path()).status.success());
    // The bumped version is locked but not released: more edits are re-locked at it.
    edit(
        dir.path(),
        "guest_invited.yml",
        "one_of: [success, timeout]",
        "one_of: [success, timeout, failure]",
    );
    let o = rulepack(&["check"], dir.path());
    assert!(
        stderr(&o).contains(&format!("warning[W110]: the logic of `guest_invited` changed since unreleased version {once} was locked")),
        "{}",
        stderr(&o)
    );
    let o = rulepack(&["lock"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(version_of(dir.path(), "guest_invited.yml"), once);
    assert!(!stderr(&rulepack(&["check"], dir.path())).contains("W110"));
    // Released, the version is frozen: the next change needs a bump again.
    assert!(
        rulepack(&["lock", "--release"], dir.path())
            .status
            .success()
    );
    let lock = std::fs::read_to_string(dir.path().join("versions.lock")).unwrap();
    assert!(!lock.contains("\"released\": false"), "{lock}");
    edit(
        dir.path(),
        "guest_invited.yml",
        "one_of: [success, timeout, failure]",
        "equals: success",
    );
    assert_eq!(rulepack(&["lock"], dir.path()).status.code(), Some(1));
    assert!(rulepack(&["lock", "--bump"], dir.path()).status.success());
    assert_eq!(version_of(dir.path(), "guest_invited.yml"), bumped(&once));
}

#[test]
fn a_pack_without_a_lock_warns() {
    let dir = copy_pack();
    std::fs::remove_file(dir.path().join("versions.lock")).unwrap();
    let o = rulepack(&["check"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning[W110]: the pack has no versions.lock"),
        "{}",
        stderr(&o)
    );
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
    for file in [
        "guest_invited_after_settings_loosened.yml",
        "guest_invited_after_access_opened.yml",
    ] {
        edit(
            dir.path(),
            file,
            "then: guest_invited\n",
            "then: guest_invited_v2\n",
        );
    }
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
