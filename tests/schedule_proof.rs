//! Issue 12, proof on the built outputs: tools/engines/schedule_proof.py generates a seeded
//! stream (bursts across bucket edges, late and out-of-order ingestion, correlations spanning
//! runs), runs `rulepack simulate` on it, and runs every built .kql on duckdb-kql at every
//! scheduled run with only the rows ingested by then. Both must agree on every alert, with no
//! duplicate; a deliberately double-reporting variant of the queries must fail the proof.

mod common;

use common::{repo, report, run};
use std::fs;
use std::process::{Command, Output};

struct Built {
    dir: tempfile::TempDir,
}

fn build() -> Built {
    let dir = tempfile::tempdir().expect("temp dir");
    let rulepack = || Command::new(env!("CARGO_BIN_EXE_rulepack"));
    let rules = repo().join("rules");
    let b = run(rulepack()
        .arg("build")
        .arg("--rules")
        .arg(&rules)
        .arg("--out")
        .arg(dir.path().join("out")));
    assert!(b.status.success(), "{}", report("rulepack build", &b));
    let export = run(rulepack().arg("export-tests").arg("--rules").arg(&rules));
    assert!(
        export.status.success(),
        "{}",
        report("export-tests", &export)
    );
    fs::write(dir.path().join("manifest.json"), &export.stdout).unwrap();
    Built { dir }
}

fn proof(built: &Built, double_report: bool) -> (Output, String) {
    let python = repo().join(".tools/duckdb-kql/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/setup-validators",
        python.display()
    );
    let mut cmd = Command::new(python);
    cmd.arg(repo().join("tools/engines/schedule_proof.py"))
        .arg(built.dir.path().join("manifest.json"))
        .arg(built.dir.path().join("out"))
        .arg(env!("CARGO_BIN_EXE_rulepack"))
        .arg(repo().join("rules"));
    if double_report {
        cmd.arg("--double-report");
    }
    let out = run(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, stdout)
}

/// The number before `word` on the proof's closing line.
fn number(line: &str, word: &str) -> u64 {
    let before = line.split(&format!(" {word}")).next().unwrap();
    before
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{line}"))
}

#[test]
fn built_kql_and_simulate_agree_on_a_scheduled_stream_and_the_proof_can_fail() {
    let built = build();
    let (out, stdout) = proof(&built, false);
    let ctx = report("schedule_proof.py", &out);
    let last = stdout
        .lines()
        .find(|l| l.starts_with("schedule proof: "))
        .unwrap_or_else(|| panic!("no closing line\n{ctx}"))
        .to_string();
    println!("{last}");
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    assert!(number(&last, "expected alerts") > 0, "{ctx}");
    assert_eq!(
        number(&last, "expected alerts"),
        number(&last, "agreed"),
        "{ctx}"
    );
    assert_eq!(number(&last, "duplicates"), 0, "{ctx}");
    // Every rule of the pack raised alerts in the stream: none is agreed on vacuously.
    for l in stdout.lines().filter(|l| l.starts_with("ok  ")) {
        assert!(
            !l.contains(": simulate 0,"),
            "a rule never alerted: {l}\n{ctx}"
        );
    }
    // The simulator's own summary: no duplicates, and some records were too late.
    assert!(stdout.contains("simulate: "), "{ctx}");
    let (dbl, dbl_stdout) = proof(&built, true);
    let dctx = report("schedule_proof.py --double-report", &dbl);
    assert_eq!(dbl.status.code(), Some(1), "{dctx}");
    let dlast = dbl_stdout
        .lines()
        .find(|l| l.starts_with("schedule proof: "))
        .unwrap_or_else(|| panic!("no closing line\n{dctx}"))
        .to_string();
    assert!(number(&dlast, "duplicates") > 0, "{dctx}");
}
