//! A team's overlay may only replace templates, never reach outside its folders: template
//! paths with `..`, absolute paths and links out of the folder are refused at the key's
//! position in `check` and `build` alike, and a template that writes without end is stopped
//! at the artifact budget. Nothing is written and nothing is left behind.

#![cfg(unix)]

mod common;

use common::fuzz::{run_for, strays, tree};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn rulepack(dir: &Path, cmd: &str) -> (Option<i32>, String) {
    let out = run_for(
        Command::new(env!("CARGO_BIN_EXE_rulepack"))
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .args([cmd, "--templates", "mine"]),
        Duration::from_secs(120),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A project with the shipped rules, an earlier `out/`, and an overlay folder `mine/`.
fn project() -> tempfile::TempDir {
    let dir = common::scratch_project();
    common::copy_tree(&common::repo().join("rules"), &dir.path().join("rules"));
    std::fs::create_dir_all(dir.path().join("out/old")).unwrap();
    std::fs::write(dir.path().join("out/old/x"), "earlier").unwrap();
    std::fs::create_dir_all(dir.path().join("mine/sentinel")).unwrap();
    dir
}

/// The shipped sentinel backend.yml with the rule query's template path replaced.
fn backend_with(dir: &Path, template: &str) {
    let shipped =
        std::fs::read_to_string(common::repo().join("templates/sentinel/backend.yml")).unwrap();
    assert!(shipped.contains("  - template: rule.kql\n"));
    let text = shipped.replace(
        "  - template: rule.kql\n",
        &format!("  - template: {template}\n"),
    );
    std::fs::write(dir.join("mine/sentinel/backend.yml"), text).unwrap();
}

/// `check` and `build` both fail with `code` and `what`, and the project is unchanged.
fn refused(dir: &Path, code: &str, what: &str) {
    let before = tree(dir);
    for cmd in ["check", "build"] {
        let (status, stderr) = rulepack(dir, cmd);
        assert_eq!(status, Some(1), "{cmd}: {stderr}");
        assert!(
            stderr.contains(&format!("error[{code}]")) && stderr.contains(what),
            "{cmd}: {stderr}"
        );
        assert_eq!(tree(dir), before, "{cmd} changed the project");
        assert!(strays(dir).is_empty());
    }
}

#[test]
fn template_paths_that_leave_the_folder_are_refused_at_the_key() {
    let dir = project();
    backend_with(dir.path(), "../../../../etc/hostname");
    refused(dir.path(), "R090", "mine/sentinel/backend.yml:8:15");
    backend_with(dir.path(), "/etc/hostname");
    refused(dir.path(), "R090", "is absolute");
    backend_with(dir.path(), "sub/../../sigma/rule.yml");
    refused(dir.path(), "R090", "leaves its folder");
}

#[test]
fn links_out_of_the_overlay_are_refused() {
    let dir = project();
    std::fs::write(dir.path().join("secret"), "SECRET").unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("secret"),
        dir.path().join("mine/sentinel/rule.kql"),
    )
    .unwrap();
    refused(dir.path(), "R090", "outside its folder");
}

#[test]
fn a_fifo_template_is_refused_without_blocking() {
    let dir = project();
    let fifo = dir.path().join("mine/sentinel/rule.kql");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    refused(dir.path(), "R001", "FIFO");
}

#[test]
fn a_runaway_template_stops_at_the_artifact_budget() {
    let dir = project();
    std::fs::write(
        dir.path().join("mine/sentinel/rule.kql"),
        "{% for i in range(end=100000) %}{% for j in range(end=100000) %}{{ rule.title }}{% endfor %}{% endfor %}\n",
    )
    .unwrap();
    refused(dir.path(), "R090", "wrote more than 4194304 bytes");
}
