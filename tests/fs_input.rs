//! What a rules folder may hold that is not a rule file: symbolic link loops, links out of the
//! folder, FIFOs and devices, oversized files, rulepack's own staging folders. Each is refused
//! with one diagnostic, quickly, without reading what a link points at.

#![cfg(unix)]

mod common;

use common::fuzz::run_for;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

fn check(dir: &Path) -> (Option<i32>, String) {
    let out = run_for(
        Command::new(env!("CARGO_BIN_EXE_rulepack"))
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .args(["check", "--format", "json"]),
        LIMIT,
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A project with one valid rule.
fn project() -> tempfile::TempDir {
    let dir = common::scratch_project();
    std::fs::copy(
        common::repo().join("rules/guest_invited.yml"),
        dir.path().join("rules/guest_invited.yml"),
    )
    .unwrap();
    dir
}

fn errors(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect()
}

#[test]
fn symlink_loops_end_with_one_diagnostic_per_link() {
    let dir = project();
    symlink(".", dir.path().join("rules/a")).unwrap();
    symlink(".", dir.path().join("rules/b")).unwrap();
    symlink("..", dir.path().join("rules/up")).unwrap();
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    let errors = errors(&stderr);
    let files: Vec<&str> = errors.iter().filter_map(|e| e["file"].as_str()).collect();
    assert_eq!(
        files,
        ["rules/a", "rules/b", "rules/up"],
        "one diagnostic per link: {stderr}"
    );
}

#[test]
fn a_link_out_of_the_rules_folder_is_refused_unread() {
    let dir = project();
    let secret = dir.path().join("secret.yml");
    std::fs::write(&secret, "id: SECRET-CONTENT-DO-NOT-PRINT\n").unwrap();
    symlink(&secret, dir.path().join("rules/leak.yml")).unwrap();
    symlink("/dev/zero", dir.path().join("rules/z.yml")).unwrap();
    symlink("/etc", dir.path().join("rules/etc")).unwrap();
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("SECRET"), "{stderr}");
    let files: Vec<String> = errors(&stderr)
        .iter()
        .filter_map(|e| e["file"].as_str().map(String::from))
        .collect();
    assert_eq!(
        files,
        ["rules/etc", "rules/leak.yml", "rules/z.yml"],
        "{stderr}"
    );
    assert!(stderr.contains("outside the folder"), "{stderr}");
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = project();
    let fifo = dir.path().join("rules/pipe.yml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("rules/pipe.yml") && stderr.contains("FIFO"),
        "{stderr}"
    );
}

#[test]
fn oversized_files_are_refused_while_reading() {
    let dir = project();
    let big = dir.path().join("rules/big.yml");
    std::fs::write(&big, "a".repeat(1024 * 1024 + 1)).unwrap();
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("over the 1048576 byte limit"), "{stderr}");
}

#[test]
fn a_fifo_lock_file_is_refused() {
    let dir = project();
    let made = Command::new("mkfifo")
        .arg(dir.path().join("rules/versions.lock"))
        .status()
        .unwrap();
    assert!(made.success());
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("versions.lock") && stderr.contains("FIFO"),
        "{stderr}"
    );
}

#[test]
fn staging_folders_are_never_read_as_rules() {
    let dir = project();
    let stale = dir.path().join("rules/.rulepack-staging-1-x/sigma");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("broken.yml"), "not: [a rule").unwrap();
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(0), "{stderr}");
}
