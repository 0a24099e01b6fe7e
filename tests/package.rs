//! `rulepack package` on hostile output folders: long non-ASCII names, links out of `out/`,
//! special files, a missing `out/`, a `dist` that would replace the project. All or nothing:
//! on failure `dist/` is as it was and nothing is left beside it.

#![cfg(unix)]

mod common;

use common::fuzz::{run_for, strays, tree};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn package(dir: &Path, args: &[&str]) -> std::process::Output {
    run_for(
        Command::new(env!("CARGO_BIN_EXE_rulepack"))
            .current_dir(dir)
            .arg("package")
            .args(args),
        Duration::from_secs(60),
    )
}

/// A project holding a copy of the shipped `out/` and a `dist/` from an earlier release.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::copy_tree(&common::repo().join("out"), &dir.path().join("out"));
    std::fs::create_dir(dir.path().join("dist")).unwrap();
    std::fs::write(dir.path().join("dist/earlier.tar.gz"), "earlier release").unwrap();
    dir
}

fn listing(archive: &Path) -> String {
    let o = common::run(Command::new("tar").arg("-tzf").arg(archive));
    assert!(o.status.success(), "{}", common::report("tar", &o));
    String::from_utf8(o.stdout).unwrap()
}

/// Packaging fails with exit 4, names `what`, and leaves `dist/` and its folder unchanged.
fn refused(dir: &Path, args: &[&str], what: &str) {
    let before = tree(dir);
    let o = package(dir, args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{args:?}: {stderr}");
    assert!(stderr.contains(what), "{args:?}: {stderr}");
    assert_eq!(tree(dir), before, "{args:?} changed the project");
    assert!(strays(dir).is_empty());
}

#[test]
fn long_non_ascii_names_are_packaged_whole() {
    let dir = project();
    let name = format!("{}.yml", "é".repeat(80));
    let deep = format!("{}/{}.txt", "漢".repeat(60), "🙂".repeat(30));
    std::fs::write(dir.path().join("out/sigma").join(&name), "a: 1\n").unwrap();
    std::fs::create_dir(
        dir.path()
            .join("out/splunk/rulepack_entra_guest")
            .join("漢".repeat(60)),
    )
    .unwrap();
    std::fs::write(
        dir.path()
            .join("out/splunk/rulepack_entra_guest")
            .join(&deep),
        "b\n",
    )
    .unwrap();
    let o = package(dir.path(), &[]);
    assert!(o.status.success(), "{}", common::report("package", &o));
    assert!(
        !dir.path().join("dist/earlier.tar.gz").exists(),
        "dist is replaced whole"
    );
    let sigma = listing(&dir.path().join("dist/rulepack-sigma.tar.gz"));
    assert!(sigma.contains(&format!("rulepack-sigma/{name}")), "{sigma}");
    let app = std::fs::read_dir(dir.path().join("dist"))
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("rulepack_entra_guest-")
        })
        .unwrap();
    let splunk = listing(&app.path());
    assert!(
        splunk.contains(&format!("rulepack_entra_guest/{deep}")),
        "{splunk}"
    );
    assert!(strays(dir.path()).is_empty());
}

#[test]
fn links_and_special_files_under_out_are_refused() {
    let dir = project();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "SECRET").unwrap();
    let link = dir
        .path()
        .join("out/splunk/rulepack_entra_guest/default/leak.conf");
    symlink(&secret, &link).unwrap();
    refused(dir.path(), &[], "is a symbolic link");
    std::fs::remove_file(&link).unwrap();
    let fifo = dir.path().join("out/sigma/pipe.yml");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    refused(dir.path(), &[], "FIFO");
    std::fs::remove_file(&fifo).unwrap();
    symlink("/etc", dir.path().join("out/sigma/etc")).unwrap();
    refused(dir.path(), &[], "is a symbolic link");
}

#[test]
fn a_missing_out_or_a_dangerous_dist_is_an_error() {
    let dir = project();
    refused(
        dir.path(),
        &["--out", "nonexistent"],
        "run `rulepack build` first",
    );
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    refused(dir.path(), &["--out", "empty"], "nothing to package");
    for dist in [".", "..", "/", "out/dist", "out"] {
        refused(dir.path(), &["--dist", dist], "refusing to replace");
    }
}
