//! Gates the built rule pack with third-party validators (shared/docs/validators.md §1, §4):
//! Microsoft's Kusto.Language for the KQL, `sigma check` for the Sigma rules.
//! The tools live in `.tools/` (scripts/setup-validators). Missing tools fail the tests rather
//! than skipping them, so a green run always means the real tools judged the output.

mod common;

use common::{repo, report, run};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kql_modules() -> PathBuf {
    repo().join(".tools/kql/node_modules")
}

fn sigma_bin() -> PathBuf {
    repo().join(".tools/sigma-cli/bin/sigma")
}

fn require_tools() {
    let needed = [
        kql_modules().join("@kusto/language-service-next/Kusto.Language.Bridge.min.js"),
        sigma_bin(),
    ];
    for path in needed {
        assert!(
            path.exists(),
            "validator missing: {}\nRun scripts/test (it calls scripts/setup-validators to install \
             the pinned validators into .tools/).",
            path.display()
        );
    }
}

/// Files under `dir` (recursively) whose name ends in `.{ext}`, sorted.
fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            found.extend(files_with_ext(&path, ext));
        } else if path.extension().is_some_and(|e| e == ext) {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn check_kql(files: &[PathBuf]) -> Output {
    run(Command::new("node")
        .arg(repo().join("tools/kql/check-kql.js"))
        .arg("--modules")
        .arg(kql_modules())
        .args(files))
}

fn sigma_check(dir: &Path) -> Output {
    // attacktag and d3_fendtag download MITRE data on first use; the gate must run offline.
    run(Command::new(sigma_bin())
        .args([
            "check",
            "-x",
            "attacktag",
            "-x",
            "d3_fendtag",
            "--fail-on-issues",
            // The rules, not the pySigma pipelines beside them in out/sigma/pipelines/.
            "--file-pattern",
            "azure_*.yml",
        ])
        .arg(dir))
}

#[test]
fn built_pack_passes_real_validators() {
    require_tools();
    let out = tempfile::tempdir().expect("temp dir");
    let build = run(Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .arg("build")
        .arg("--rules")
        .arg(repo().join("rules"))
        .arg("--out")
        .arg(out.path()));
    assert!(
        build.status.success(),
        "{}",
        report("rulepack build", &build)
    );

    // Run both gates before asserting so one failure does not hide the other.
    let kql_files = files_with_ext(&out.path().join("sentinel"), "kql");
    assert!(
        !kql_files.is_empty(),
        "no .kql files in {}/sentinel",
        out.path().display()
    );
    let kql = check_kql(&kql_files);

    let sigma_dir = out.path().join("sigma");
    assert!(
        !files_with_ext(&sigma_dir, "yml").is_empty(),
        "no .yml files in {}",
        sigma_dir.display()
    );
    let sigma = sigma_check(&sigma_dir);

    let mut failures = Vec::new();
    if kql.status.code() != Some(0) {
        failures.push(report("check-kql", &kql));
    }
    if sigma.status.code() != Some(0) {
        failures.push(report("sigma check", &sigma));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Proves the KQL gate can fail: a misspelt column and a syntax error are reported with
/// file:line:col, while a realistic good query in the same run is accepted.
#[test]
fn kql_gate_rejects_bad_queries() {
    require_tools();
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good.kql");
    let bad_column = dir.path().join("bad_column.kql");
    let bad_syntax = dir.path().join("bad_syntax.kql");
    fs::write(
        &good,
        "AuditLogs\n\
         | where TimeGenerated > ago(1h)\n\
         | where ActivityDisplayName in~ (\"Invite external user\")\n\
         | extend Initiator = tostring(InitiatedBy.user.userPrincipalName)\n\
         | mv-apply rp_t = TargetResources on (summarize rp_q1 = countif(tostring(rp_t.displayName) =~ \"x\"))\n\
         | where rp_q1 > 0\n\
         | project TimeGenerated, Initiator\n",
    )
    .unwrap();
    fs::write(&bad_column, "AuditLogs | where OperationNme == \"x\"\n").unwrap();
    fs::write(
        &bad_syntax,
        "AuditLogs\n| where OperationName == \"x\"\n| project TimeGenerated,\n",
    )
    .unwrap();

    let out = check_kql(&[good.clone(), bad_column.clone(), bad_syntax.clone()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ctx = report("check-kql", &out);
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    let column_err = format!("{}:1:19: error KS142:", bad_column.display());
    assert!(
        stdout.contains(&column_err),
        "expected `{column_err}`\n{ctx}"
    );
    assert!(stdout.contains("'OperationNme'"), "{ctx}");
    let syntax_err = format!("{}:3:25: error KS006:", bad_syntax.display());
    assert!(
        stdout.contains(&syntax_err),
        "expected `{syntax_err}`\n{ctx}"
    );
    assert!(
        !stdout.contains(&*good.to_string_lossy()),
        "good query flagged\n{ctx}"
    );
    assert!(stdout.contains("kql-check: 3 files,"), "{ctx}");
}

/// Proves the Sigma gate can fail: a valid rule passes, the same rule with `|contans` fails.
#[test]
fn sigma_gate_rejects_unknown_modifier() {
    require_tools();
    let rule = |selection: &str| {
        format!(
            "title: Guest User Invited Control\n\
             id: 5f0c2b8e-2c1a-4f47-9a53-0c6f1c7d2a11\n\
             status: experimental\n\
             description: Control rule for the sigma check gate.\n\
             author: rulepack tests\n\
             date: 2026-11-28\n\
             tags:\n    - attack.persistence\n    - attack.t1136.003\n\
             logsource:\n    product: azure\n    service: auditlogs\n\
             detection:\n    selection:\n        {selection}\n    condition: selection\n\
             falsepositives:\n    - Legitimate guest invitations\n\
             level: low\n"
        )
    };
    // File names must be 10..90 characters or sigma check reports an issue.
    let good = tempfile::tempdir().expect("temp dir");
    fs::write(
        good.path().join("azure_guest_invite_control.yml"),
        rule("ActivityDisplayName: Invite external user"),
    )
    .unwrap();
    let out = sigma_check(good.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        report("sigma check (good rule)", &out)
    );

    let bad = tempfile::tempdir().expect("temp dir");
    fs::write(
        bad.path().join("azure_guest_invite_control.yml"),
        rule("ActivityDisplayName|contans: Invite external user"),
    )
    .unwrap();
    let out = sigma_check(bad.path());
    let ctx = report("sigma check (|contans)", &out);
    assert!(!out.status.success(), "{ctx}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("contans"),
        "{ctx}"
    );
}
