//! The third-party validators, run in batches over many built packs at once: one node process
//! for all KQL (Kusto.Language), one `sigma check` per folder, one ksconf run per set of .conf
//! files. A missing tool fails the test (scripts/setup-validators installs them into `.tools/`).

use super::{repo, report, run};
use std::path::{Path, PathBuf};
use std::process::Command;

fn tool(path: &str) -> PathBuf {
    let p = repo().join(".tools").join(path);
    assert!(
        p.exists(),
        "validator missing: {} (run scripts/setup-validators)",
        p.display()
    );
    p
}

/// Files under `dir` (recursively) whose name ends in `suffix`, sorted.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                found.extend(files_ending(&path, suffix));
            } else if path.to_string_lossy().ends_with(suffix) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Kusto.Language's parser and binder over every file: `Err` holds its report.
pub fn kql(files: &[PathBuf]) -> Result<(), String> {
    if files.is_empty() {
        return Ok(());
    }
    // One argument list could outgrow the OS limit for a long fuzz run: batches of 2,000.
    for chunk in files.chunks(2000) {
        let out = run(Command::new("node")
            .arg(repo().join("tools/kql/check-kql.js"))
            .arg("--modules")
            .arg(tool("kql/node_modules"))
            .args(chunk));
        if !out.status.success() {
            return Err(report("Kusto.Language (tools/kql/check-kql.js)", &out));
        }
    }
    Ok(())
}

/// `sigma check` over the Sigma rules under `dir` (not the pipelines): no rule or condition
/// error, and no issue above low severity (ControlCharacterIssue is high). Low issues are what
/// a literal `*` or `?` in a value gives (EscapedWildcardIssue): intended. The two validators
/// that download MITRE data stay off.
pub fn sigma(dir: &Path) -> Result<(), String> {
    sigma_excluding(dir, &[])
}

/// `sigma` over the packs of many builds in subfolders of `dir`: the checks across rules (unique
/// ids, titles and file names) are off, since each pack reuses the same ids; within one pack
/// rulepack itself refuses duplicates (R022, R023).
pub fn sigma_packs(dir: &Path) -> Result<(), String> {
    sigma_excluding(
        dir,
        &[
            "identifier_uniqueness",
            "duplicate_title",
            "duplicate_filename",
        ],
    )
}

fn sigma_excluding(dir: &Path, excluded: &[&str]) -> Result<(), String> {
    // sigma-cli as `rulepack verify` installs it (.tools/engines, scripts/setup-validators).
    use rulepack::verify::install::{SIGMA_CLI, ensure};
    let engine = ensure(&SIGMA_CLI, &repo().join(".tools/engines")).expect("sigma-cli engine");
    let out = run(engine
        .sigma_check()
        .args(["--file-pattern", "azure_*.yml"])
        .args(excluded.iter().flat_map(|x| ["-x", x]))
        .arg(dir));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let serious: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            l.starts_with("issue=")
                && !l.contains(" severity=low ")
                && !l.contains(" severity=informational ")
        })
        .collect();
    if out.status.success()
        && serious.is_empty()
        && stdout.contains("Found 0 errors, 0 condition errors")
    {
        Ok(())
    } else {
        Err(format!("{serious:#?}\n{}", report("sigma check", &out)))
    }
}

/// `ksconf check` over .conf files (syntax, duplicate stanzas and keys).
pub fn ksconf(files: &[PathBuf]) -> Result<(), String> {
    for chunk in files.chunks(2000) {
        let out = run(Command::new(tool("ksconf/bin/ksconf"))
            .arg("check")
            .args(chunk));
        if !out.status.success() {
            return Err(report("ksconf check", &out));
        }
    }
    Ok(())
}
