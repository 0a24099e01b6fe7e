//! The schedule proof (issue 12, docs/semantics.md "Running on a schedule") as a gate: a seeded
//! stream made from the rules' own test scenarios (bursts across bucket edges, late and
//! out-of-order ingestion, sequences and absences spanning runs) goes through `rulepack
//! simulate`, and the built KQL of every rule runs on duckdb-kql at every scheduled run time,
//! seeing only the records ingested by then (tools/engines/schedule_proof.py). Every alert the
//! simulator expects must be raised by exactly the run it names: none twice, none lost within
//! the tolerated delay, none extra, and every rule must alert at least once. The rules duckdb-kql
//! cannot translate must be exactly the ones rulepack.yml declares under
//! `verify.not_executable`; the rules left out as hunting queries (not scheduled) exactly the
//! ones the Sentinel templates declare (`hunting_kinds`), read through the compiler, never a
//! list of names here. A deliberately wrong variant of the queries (the pack before issue
//! 12: no ingestion-time bounds) must fail the same proof.

mod common;

use common::{manifest, repo, report, run};
use rulepack::verify::install::{DUCKDB_KQL, ensure};
use std::path::Path;
use std::process::{Command, Output};

/// The pack built into `dir/out`, its tests exported to `dir/tests.json`.
fn build(dir: &Path) {
    let rulepack = || Command::new(env!("CARGO_BIN_EXE_rulepack"));
    let built = run(rulepack()
        .current_dir(repo())
        .arg("build")
        .arg("--out")
        .arg(dir.join("out")));
    assert!(built.status.success(), "{}", report("build", &built));
    let export = run(rulepack().current_dir(repo()).arg("export-tests"));
    assert!(
        export.status.success(),
        "{}",
        report("export-tests", &export)
    );
    std::fs::write(dir.join("tests.json"), &export.stdout).unwrap();
}

fn proof(dir: &Path, extra: &[&str]) -> Output {
    let engine = ensure(&DUCKDB_KQL, &repo().join(".tools/engines")).expect("duckdb-kql engine");
    run(Command::new(engine.python())
        .current_dir(repo())
        .arg(repo().join("tools/engines/schedule_proof.py"))
        .arg(dir.join("tests.json"))
        .arg(dir.join("out"))
        .arg(env!("CARGO_BIN_EXE_rulepack"))
        .arg(repo().join("rules"))
        .args(extra))
}

fn summary(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("schedule proof: "))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn built_queries_alert_exactly_once_on_schedule() {
    let tmp = tempfile::tempdir().unwrap();
    build(tmp.path());
    let out = proof(tmp.path(), &[]);
    let ctx = report("schedule_proof.py", &out);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let line = summary(&out);
    assert!(
        line.contains(" agreed (100.0 %), 0 missing, 0 extra, 0 duplicates; "),
        "{line}\n{ctx}"
    );
    let declared: Vec<String> = manifest()
        .not_executable
        .get("duckdb-kql")
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    let pack = common::compile_pack();
    let hunting: Vec<&str> = pack
        .rules
        .iter()
        .map(|r| r.name.0.as_str())
        .filter(|n| {
            pack.hunting
                .get(*n)
                .is_some_and(|b| b.iter().any(|b| b == "sentinel"))
        })
        .collect();
    // The pack ships its absence as a hunting query: the exclusion below is exercised.
    assert!(!hunting.is_empty(), "no hunting query in the pack");
    let listed = format!(
        "hunting queries, not scheduled: [{}]; not executable by duckdb-kql: [{}]",
        hunting.join(", "),
        declared.join(", ")
    );
    assert!(line.ends_with(&listed), "expected `{listed}`\n{ctx}");
    // Every other rule of the pack was checked and passed; each hunting query was named.
    let stdout = String::from_utf8_lossy(&out.stdout);
    for rule in &pack.rules {
        let name = &rule.name.0;
        if hunting.contains(&name.as_str()) {
            assert!(
                stdout
                    .lines()
                    .any(|l| l.starts_with(&format!("HUNTING {name}: "))),
                "{name} left out without being named\n{ctx}"
            );
            continue;
        }
        if declared.contains(name) {
            continue;
        }
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("ok   {name}: "))),
            "{name} not proven\n{ctx}"
        );
    }
}

/// The same proof over queries stripped of their schedule bounds: runs re-read what earlier runs
/// read, so alerts repeat and the proof fails.
#[test]
fn the_proof_fails_on_queries_without_schedule_bounds() {
    let tmp = tempfile::tempdir().unwrap();
    build(tmp.path());
    let out = proof(
        tmp.path(),
        &[
            "--double-report",
            "--only",
            "guest_invited,guest_invitation_burst",
        ],
    );
    let ctx = report("schedule_proof.py --double-report", &out);
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for rule in ["guest_invited", "guest_invitation_burst"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("FAIL {rule}: "))),
            "{rule} passed without its schedule bounds\n{ctx}"
        );
    }
    let line = summary(&out);
    assert!(!line.contains(" 0 duplicates"), "{line}\n{ctx}");
}
