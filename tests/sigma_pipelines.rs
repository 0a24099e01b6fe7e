//! The Sigma rules as a Sigma user converts them: pySigma's own Kusto and Splunk backends
//! (sigma-cli 3.1.0, tools/bench/requirements.txt) with the pipelines the build ships in
//! out/sigma/pipelines/. The KQL must pass Kusto.Language and, executed by duckdb-kql on each
//! rule's tests, agree with them (approximate rules: no missed match, over-matches only on the
//! tests the Sigma file names); every field the SPL names must be an azure:monitor:aad path of
//! the Splunk mapping. The drivers are tools/sigma-pipelines/{convert,replay}.py.

mod common;

use common::{repo, report, run};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tool(rel: &str) -> PathBuf {
    let bin = repo().join(".tools").join(rel);
    assert!(
        bin.exists(),
        "validator missing: {}\nRun scripts/setup-validators (scripts/test does).",
        bin.display()
    );
    bin
}

fn rulepack(args: &[&str], out: &Path) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .current_dir(repo())
        .args(args)
        .arg(out))
}

fn convert(sigma_dir: &Path, dest: &Path) -> Output {
    run(Command::new(tool("sigma-convert/bin/python"))
        .arg(repo().join("tools/sigma-pipelines/convert.py"))
        .arg(sigma_dir)
        .arg(repo().join("templates"))
        .arg(dest))
}

fn replay(manifest: &Path, converted: &Path, invert: bool) -> Output {
    // duckdb-kql as `rulepack verify` installs it (scripts/setup-validators: .tools/engines).
    use rulepack::verify::install::{DUCKDB_KQL, ensure};
    let engine = ensure(&DUCKDB_KQL, &repo().join(".tools/engines")).expect("duckdb-kql engine");
    let mut cmd = Command::new(engine.python());
    cmd.arg(repo().join("tools/sigma-pipelines/replay.py"))
        .arg(manifest)
        .arg(converted);
    if invert {
        cmd.arg("--invert-expectations");
    }
    run(&mut cmd)
}

fn kql_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn converted_sigma_parses_runs_and_names_only_mapped_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let b = rulepack(&["build", "--out"], &out);
    assert!(b.status.success(), "{}", report("build", &b));
    let manifest = tmp.path().join("tests.json");
    let m = run(Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .current_dir(repo())
        .arg("export-tests"));
    assert!(m.status.success(), "{}", report("export-tests", &m));
    std::fs::write(&manifest, &m.stdout).unwrap();

    let converted = tmp.path().join("converted");
    let c = convert(&out.join("sigma"), &converted);
    println!("{}", String::from_utf8_lossy(&c.stdout));
    assert!(c.status.success(), "{}", report("convert.py", &c));

    let mut kql = kql_files(&converted.join("kusto"));
    assert!(!kql.is_empty());
    kql.extend(kql_files(&converted.join("kusto-stages")));
    let parsed = run(Command::new("node")
        .arg(repo().join("tools/kql/check-kql.js"))
        .arg("--modules")
        .arg(tool("kql/node_modules"))
        .args(&kql));
    assert!(
        parsed.status.success(),
        "{}",
        report("Kusto.Language", &parsed)
    );

    let r = replay(&manifest, &converted, false);
    let text = String::from_utf8_lossy(&r.stdout).to_string();
    println!("{text}");
    assert!(r.status.success(), "{}", report("replay.py", &r));
    assert!(text.contains("0 failed (0 missed matches)"), "{text}");
    // The gate can fail: with every expectation flipped the same queries must disagree.
    let flipped = replay(&manifest, &converted, true);
    assert!(
        !flipped.status.success(),
        "{}",
        report("replay.py --invert-expectations", &flipped)
    );

    // The exact command out/sigma/README.md shows gives the same query.
    for (target, ext) in [("kusto", "kql"), ("splunk", "spl")] {
        let cli = run(Command::new(tool("sigma-convert/bin/sigma"))
            .current_dir(out.join("sigma"))
            .args(["convert", "-t", target, "-p"])
            .arg(format!("pipelines/{target}.yml"))
            .arg("azure_b2b_blocklist_to_any_domain.yml"));
        assert!(cli.status.success(), "{}", report("sigma convert", &cli));
        let want = std::fs::read_to_string(
            converted
                .join(target)
                .join(format!("azure_b2b_blocklist_to_any_domain.{ext}")),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&cli.stdout).trim(),
            want.trim(),
            "sigma convert -t {target}"
        );
    }
}

#[test]
fn an_unmapped_field_in_the_spl_fails_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let b = rulepack(&["build", "--out"], &out);
    assert!(b.status.success(), "{}", report("build", &b));
    let sigma = tmp.path().join("sigma");
    std::fs::create_dir_all(&sigma).unwrap();
    std::fs::rename(out.join("sigma/pipelines"), sigma.join("pipelines")).unwrap();
    // OperationName is an AuditLogs column with no azure:monitor:aad mapping.
    std::fs::write(
        sigma.join("azure_unmapped_field.yml"),
        "title: Unmapped Field\nid: 6f1e2a4b-8c3d-4e5f-9a0b-1c2d3e4f5a6b\nstatus: experimental\nlogsource:\n    product: azure\n    service: auditlogs\ndetection:\n    selection:\n        OperationName: x\n    condition: selection\nlevel: low\n",
    )
    .unwrap();
    let c = convert(&sigma, &tmp.path().join("converted"));
    assert!(!c.status.success(), "{}", report("convert.py", &c));
    assert!(
        String::from_utf8_lossy(&c.stdout)
            .contains("fields outside the azure:monitor:aad mapping: ['OperationName']"),
        "{}",
        report("convert.py", &c)
    );
}
