//! The Sigma rules convert without error with pySigma's own Splunk and Kusto backends (sigma-cli
//! 3.1.0, pinned in tools/bench/requirements.txt). Rule parameters stay Sigma placeholders, so
//! the conversion runs with a placeholder pipeline, as any user's would.

mod common;

use common::{repo, report, run};
use std::path::{Path, PathBuf};
use std::process::Command;

fn sigma() -> PathBuf {
    let bin = repo().join(".tools/sigma-convert/bin/sigma");
    assert!(
        bin.exists(),
        "validator missing: {}\nRun scripts/test (it installs .tools/).",
        bin.display()
    );
    bin
}

fn convert(target: &str, files: &[PathBuf]) -> std::process::Output {
    run(Command::new(sigma())
        .args(["convert", "-t", target, "-p"])
        .arg(repo().join("tools/bench/sigma-placeholders.yml"))
        .args(files))
}

fn built_sigma() -> (tempfile::TempDir, Vec<PathBuf>) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let b = run(Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .current_dir(repo())
        .args(["build", "--out"])
        .arg(&out));
    assert!(b.status.success(), "{}", report("build", &b));
    // The rules; the folder's README.md lists the rules left out of Sigma.
    let mut files: Vec<PathBuf> = std::fs::read_dir(out.join("sigma"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    (tmp, files)
}

fn has_correlation(p: &Path) -> bool {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .any(|l| l.starts_with("correlation:"))
}

fn is_ordered_sequence(p: &Path) -> bool {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .any(|l| l.trim() == "type: temporal_ordered")
}

#[test]
fn every_sigma_rule_converts_to_splunk_and_kusto() {
    let (_tmp, files) = built_sigma();
    // pySigma-backend-splunk 0.x converts event_count, value_count and temporal correlations but
    // not temporal_ordered, the only Sigma type that says "in this order". Those files must be
    // refused by name (pySigma's sqlite backend executes them in tests/engines.rs).
    let (ordered, files): (Vec<PathBuf>, Vec<PathBuf>) =
        files.into_iter().partition(|f| is_ordered_sequence(f));
    assert!(!ordered.is_empty(), "the pack has a sequence correlation");
    for f in &ordered {
        let refused = convert("splunk", std::slice::from_ref(f));
        assert!(
            !refused.status.success()
                && String::from_utf8_lossy(&refused.stderr)
                    .contains("Correlation type 'temporal_ordered' is not supported by backend"),
            "{}",
            report("sigma convert -t splunk (temporal_ordered)", &refused)
        );
    }
    let splunk = convert("splunk", &files);
    assert!(
        splunk.status.success(),
        "{}",
        report("sigma convert -t splunk", &splunk)
    );
    let queries = String::from_utf8_lossy(&splunk.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    assert!(
        queries >= files.len(),
        "one query per rule at least\n{}",
        report("splunk", &splunk)
    );

    // pySigma-backend-kusto 1.0.1 supports no correlation rule type at all: those files are
    // converted by the Splunk backend above and must be refused, not mistranslated, here.
    let (correlated, plain): (Vec<PathBuf>, Vec<PathBuf>) =
        files.into_iter().partition(|f| has_correlation(f));
    let kusto = convert("kusto", &plain);
    assert!(
        kusto.status.success(),
        "{}",
        report("sigma convert -t kusto", &kusto)
    );
    for f in &correlated {
        let refused = convert("kusto", std::slice::from_ref(f));
        assert!(
            !refused.status.success(),
            "{} converted to Kusto although the backend has no correlations",
            f.display()
        );
    }
}

#[test]
fn the_conversion_gate_can_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("azure_broken_rule.yml");
    std::fs::write(
        &bad,
        "title: Broken Rule\nid: 6f1e2a4b-8c3d-4e5f-9a0b-1c2d3e4f5a6b\nstatus: experimental\nlogsource:\n    product: azure\n    service: auditlogs\ndetection:\n    selection:\n        ActivityDisplayName|contans: x\n    condition: selection\nlevel: low\n",
    )
    .unwrap();
    let out = convert("splunk", &[bad]);
    assert!(!out.status.success(), "{}", report("sigma convert", &out));
}
