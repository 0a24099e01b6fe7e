//! The build as CI and reviewers rely on it: out/ is current, output is byte-stable, and a failed
//! build leaves out/ untouched.

mod common;

use std::process::Command;

fn rulepack() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rulepack"));
    c.current_dir(common::repo());
    c
}

#[test]
fn committed_out_is_current() {
    let pack = common::compile_pack();
    let diffs = rulepack::write::differences(&common::repo().join("out"), &pack.artifacts).unwrap();
    assert!(
        diffs.is_empty(),
        "out/ is stale, run `cargo run -- build` and commit: {diffs:?}"
    );
}

#[test]
fn two_builds_are_byte_identical() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for dir in [&a, &b] {
        let st = rulepack()
            .args(["build", "--out"])
            .arg(dir.path().join("out"))
            .status()
            .unwrap();
        assert!(st.success());
    }
    let pack = common::compile_pack();
    for a_file in &pack.artifacts {
        let x = std::fs::read(a.path().join("out").join(&a_file.path)).unwrap();
        let y = std::fs::read(b.path().join("out").join(&a_file.path)).unwrap();
        assert_eq!(x, y, "{} differs between builds", a_file.path.display());
        assert!(
            !x.contains(&b'\r'),
            "{} has CR line ends",
            a_file.path.display()
        );
        assert!(
            x.ends_with(b"\n") && !x.ends_with(b"\n\n"),
            "{} must end in exactly one newline",
            a_file.path.display()
        );
    }
}

#[test]
fn check_flag_reports_stale_and_current_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    assert!(
        rulepack()
            .args(["build", "--out"])
            .arg(&out)
            .status()
            .unwrap()
            .success()
    );
    let ok = rulepack()
        .args(["build", "--check", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let victim = out.join("sentinel/guest_invited.kql");
    std::fs::write(&victim, "edited by hand\n").unwrap();
    std::fs::write(out.join("sentinel/stray.kql"), "x\n").unwrap();
    let stale = rulepack()
        .args(["build", "--check", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(stale.status.code(), Some(3));
    let err = String::from_utf8_lossy(&stale.stderr);
    assert!(err.contains("guest_invited.kql: differs"), "{err}");
    assert!(
        err.contains("stray.kql: not produced by the rules"),
        "{err}"
    );
}

#[test]
fn failed_build_leaves_out_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    common::copy_tree(&common::repo().join("rules"), &rules);
    let out = tmp.path().join("out");
    assert!(
        rulepack()
            .args(["build", "--rules"])
            .arg(&rules)
            .arg("--out")
            .arg(&out)
            .status()
            .unwrap()
            .success()
    );
    let before = common::tree_files(&out);

    // A second, valid rule file plus one broken file: nothing may be written.
    let good = std::fs::read_to_string(rules.join("guest_invited.yml")).unwrap();
    std::fs::write(
        rules.join("zz_broken.yml"),
        good.replace("severity: low", "severity: severe"),
    )
    .unwrap();
    let res = rulepack()
        .args(["build", "--rules"])
        .arg(&rules)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("unknown severity `severe`"));
    assert_eq!(
        common::tree_files(&out),
        before,
        "a failed build changed out/"
    );
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".rulepack"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary folders left behind: {leftovers:?}"
    );
}

#[test]
fn packages_are_byte_identical_across_checkouts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for n in ["a", "b"] {
        // A fresh build per "checkout": files get new inodes and times.
        let out = tmp.path().join(n).join("out");
        assert!(
            rulepack()
                .args(["build", "--out"])
                .arg(&out)
                .status()
                .unwrap()
                .success()
        );
        let dist = tmp.path().join(n).join("dist");
        let st = rulepack()
            .args(["package", "--out"])
            .arg(&out)
            .arg("--dist")
            .arg(&dist)
            .status()
            .unwrap();
        assert!(st.success());
        let mut files: Vec<_> = std::fs::read_dir(&dist)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty());
        bytes.push(
            files
                .iter()
                .map(|f| (f.file_name().unwrap().to_owned(), std::fs::read(f).unwrap()))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(bytes[0], bytes[1]);
}
