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

/// A pack whose `out/` is the repository's (up to date with its rules) and a `dist/` from an
/// earlier release.
fn project() -> tempfile::TempDir {
    let dir = common::scratch_project();
    common::copy_tree(&common::repo().join("rules"), &dir.path().join("rules"));
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

/// Packaging fails with exit 4, names `what`, and leaves the project unchanged.
fn refused(dir: &Path, args: &[&str], what: &str) {
    let before = tree(dir);
    let o = package(dir, args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{args:?}: {stderr}");
    assert!(stderr.contains(what), "{args:?}: {stderr}");
    assert_eq!(tree(dir), before, "{args:?} changed the project");
    assert!(strays(dir).is_empty());
}

/// Files a build never writes (so `package` through the binary stops at "stale"), packaged by
/// the library: long non-ASCII names are stored whole and read back by GNU tar.
#[test]
fn long_non_ascii_names_are_packaged_whole() {
    let dir = project();
    let name = format!("{}.yml", "é".repeat(80));
    let deep = format!("{}/{}.txt", "漢".repeat(60), "🙂".repeat(30));
    let manifest = common::manifest();
    let app = dir.path().join("out/splunk").join(&manifest.splunk.app_id);
    std::fs::write(dir.path().join("out/sigma").join(&name), "a: 1\n").unwrap();
    std::fs::create_dir(app.join("漢".repeat(60))).unwrap();
    std::fs::write(app.join(&deep), "b\n").unwrap();
    let files =
        rulepack::package::release(&dir.path().join("out"), &dir.path().join("dist"), &manifest)
            .unwrap();
    assert!(
        !dir.path().join("dist/earlier.tar.gz").exists(),
        "dist is replaced whole"
    );
    let stem = format!("{}-{}", manifest.name, manifest.version);
    let sigma = listing(&dir.path().join(format!("dist/{stem}-sigma.tar.gz")));
    assert!(sigma.contains(&format!("{stem}-sigma/{name}")), "{sigma}");
    let splunk = listing(&files[0]);
    assert!(
        splunk.contains(&format!("{}/{deep}", manifest.splunk.app_id)),
        "{splunk}"
    );
    assert!(strays(dir.path()).is_empty());
}

#[test]
fn links_and_special_files_under_out_are_refused() {
    let dir = project();
    let manifest = common::manifest();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "SECRET").unwrap();
    let link = dir
        .path()
        .join("out/splunk")
        .join(&manifest.splunk.app_id)
        .join("default/leak.conf");
    symlink(&secret, &link).unwrap();
    refused(dir.path(), &[], "symbolic link");
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
    refused(dir.path(), &[], "symbolic link");
    // The library refuses them too, whoever calls it.
    let err =
        rulepack::package::release(&dir.path().join("out"), &dir.path().join("dist"), &manifest)
            .unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
}

#[test]
fn a_missing_out_or_a_dangerous_dist_is_an_error() {
    let dir = project();
    refused(
        dir.path(),
        &["--out", "nonexistent"],
        "run `rulepack build` first",
    );
    for dist in [".", "..", "/", "out/dist", "out", "rules"] {
        refused(dir.path(), &["--dist", dist], "refusing to replace");
    }
    let o = package(dir.path(), &[]);
    assert!(o.status.success(), "{}", common::report("package", &o));
    assert!(strays(dir.path()).is_empty());
}
