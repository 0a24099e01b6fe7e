//! `build --backend`: a team that deploys to one SIEM builds only its output, the same bytes the
//! full build writes for it, and `--check` holds that folder to exactly that.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn rulepack(args: &[&str], out: &Path) -> std::process::Output {
    common::run(
        Command::new(env!("CARGO_BIN_EXE_rulepack"))
            .current_dir(common::repo())
            .args(args)
            .arg("--out")
            .arg(out),
    )
}

#[test]
fn each_backend_alone_is_its_part_of_the_full_build() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    let built = rulepack(&["build"], &full);
    assert!(
        built.status.success(),
        "{}",
        common::report("build", &built)
    );
    let all = common::tree_files(&full);
    for selection in [
        &["splunk"][..],
        &["sentinel"],
        &["sigma"],
        &["sentinel", "sigma"],
    ] {
        let out = tmp.path().join(selection.join("_"));
        let mut args = vec!["build"];
        for b in selection {
            args.extend(["--backend", b]);
        }
        let built = rulepack(&args, &out);
        assert!(
            built.status.success(),
            "{}",
            common::report("build", &built)
        );
        let part: BTreeMap<String, Vec<u8>> = all
            .iter()
            .filter(|(p, _)| selection.iter().any(|b| p.starts_with(&format!("{b}/"))))
            .map(|(p, c)| (p.clone(), c.clone()))
            .collect();
        assert!(!part.is_empty());
        let got = common::tree_files(&out);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            part.keys().collect::<Vec<_>>(),
            "{selection:?}: the files"
        );
        assert!(
            got == part,
            "{selection:?}: the bytes differ from the full build's"
        );
    }
}

#[test]
fn check_holds_the_folder_to_the_selected_backends() {
    let tmp = tempfile::tempdir().unwrap();
    let splunk = tmp.path().join("splunk_only");
    let full = tmp.path().join("full");
    assert!(
        rulepack(&["build", "--backend", "splunk"], &splunk)
            .status
            .success()
    );
    assert!(rulepack(&["build"], &full).status.success());
    let same = rulepack(&["build", "--check", "--backend", "splunk"], &splunk);
    assert!(same.status.success(), "{}", common::report("check", &same));
    // The full folder holds files a splunk-only build does not write, and the other way round.
    for (args, out) in [
        (&["build", "--check", "--backend", "splunk"][..], &full),
        (&["build", "--check"], &splunk),
    ] {
        let stale = rulepack(args, out);
        assert_eq!(
            stale.status.code(),
            Some(3),
            "{}",
            common::report("check", &stale)
        );
        let err = String::from_utf8_lossy(&stale.stderr);
        assert!(err.contains("is stale"), "{err}");
    }
}

#[test]
fn an_unknown_backend_is_refused_with_the_known_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let refused = rulepack(&["build", "--backend", "kusto"], &out);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "{}",
        common::report("build", &refused)
    );
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("kusto") && err.contains("sentinel, splunk, sigma"),
        "{err}"
    );
    assert!(!out.exists(), "nothing is written");
}
