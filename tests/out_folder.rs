//! Where `build` may write, and what it leaves behind. Folders that hold the project are
//! refused before anything is written; the staging folder sits beside `out/`, is removed on
//! failure and on SIGINT/SIGTERM, and a killed build's leftovers are cleaned up by the next one.

#![cfg(unix)]

mod common;

use common::fuzz::{Rng, cases, run_for, strays, tree};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(300);

fn rulepack(dir: &Path, args: &[&str]) -> std::process::Output {
    run_for(
        Command::new(env!("CARGO_BIN_EXE_rulepack"))
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .args(args),
        LIMIT,
    )
}

/// A project of `n` rules: copies of `guest_invited` under new ids, names and titles.
fn project(n: usize) -> tempfile::TempDir {
    let dir = common::scratch_project();
    let seed = std::fs::read_to_string(common::repo().join("rules/guest_invited.yml")).unwrap();
    for i in 0..n {
        let text = seed
            .replacen(
                "id: 24699536-aa1f-43ba-9cd1-187aeee93684",
                &format!("id: 24699536-aa1f-43ba-9cd1-{i:012x}"),
                1,
            )
            .replacen(
                "name: guest_invited\n",
                &format!("name: guest_invited_{i}\n"),
                1,
            )
            .replacen(
                "title: Entra ID External Guest User Invited",
                &format!("title: Entra ID External Guest User Invited {i}"),
                1,
            );
        std::fs::write(dir.path().join(format!("rules/r{i}.yml")), text).unwrap();
    }
    dir
}

#[test]
fn folders_that_hold_the_project_are_refused_before_writing() {
    let dir = project(1);
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let before = tree(dir.path());
    for out in [".", "/", "..", "rules/..", "rules", "rules/out", "sub/.."] {
        let o = rulepack(dir.path(), &["build", "--out", out]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(4), "--out {out}: {stderr}");
        assert!(
            stderr.contains("refusing to replace"),
            "--out {out}: {stderr}"
        );
        assert_eq!(tree(dir.path()), before, "--out {out} changed the project");
    }
}

#[test]
fn a_killed_builds_leftovers_are_cleaned_up_by_the_next() {
    let dir = project(1);
    let built = rulepack(dir.path(), &["build"]);
    assert!(
        built.status.success(),
        "{}",
        common::report("build", &built)
    );
    let out = tree(&dir.path().join("out"));
    // A dead process's staging folder, and a previous output whose swap was cut short.
    let dead = 4_194_300;
    std::fs::create_dir_all(
        dir.path()
            .join(format!(".rulepack-staging-{dead}-abc/sigma")),
    )
    .unwrap();
    std::fs::rename(
        dir.path().join("out"),
        dir.path().join(format!(".rulepack-old-{dead}-out")),
    )
    .unwrap();
    let again = rulepack(dir.path(), &["build"]);
    assert!(
        again.status.success(),
        "{}",
        common::report("build", &again)
    );
    assert!(strays(dir.path()).is_empty(), "{:?}", strays(dir.path()));
    assert_eq!(tree(&dir.path().join("out")), out);
}

/// Starts a build, waits until its staging folder exists and then `delay` more, and sends
/// `signal`. `None` when the build ended before it could be interrupted.
fn interrupt(dir: &Path, signal: i32, delay: Duration) -> Option<std::process::ExitStatus> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .current_dir(dir)
        .arg("build")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Its own staging folder: a killed build's leftovers may still lie beside `out/`.
    let own = format!(".rulepack-staging-{}-", child.id());
    let start = Instant::now();
    while !strays(dir).iter().any(|s| s.starts_with(&own)) {
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        assert!(start.elapsed() < LIMIT, "no staging folder appeared");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(delay);
    if child.try_wait().unwrap().is_some() {
        return None;
    }
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: signals our own child, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    Some(child.wait().unwrap())
}

/// Interrupts at seeded random moments of the write stage: a signal that lands while workers
/// are still adding files is the race that once left a staging folder behind.
#[test]
fn an_interrupted_build_leaves_out_as_it_was_and_nothing_else() {
    let dir = project(300);
    std::fs::create_dir_all(dir.path().join("out/previous")).unwrap();
    std::fs::write(dir.path().join("out/previous/file.txt"), "old output\n").unwrap();
    let before = tree(&dir.path().join("out"));
    let mut rng = Rng(0x5157_4e41_4c53);
    let mut interrupted = 0;
    for case in 0..cases(12) {
        let signal = *rng.pick(&[libc::SIGINT, libc::SIGTERM, libc::SIGKILL]);
        let delay = Duration::from_millis(rng.below(40) as u64);
        let Some(status) = interrupt(dir.path(), signal, delay) else {
            // Finished first: it replaced out/, so put the previous output back.
            std::fs::remove_dir_all(dir.path().join("out")).unwrap();
            std::fs::create_dir_all(dir.path().join("out/previous")).unwrap();
            std::fs::write(dir.path().join("out/previous/file.txt"), "old output\n").unwrap();
            continue;
        };
        interrupted += 1;
        let what = format!("case {case}: signal {signal} after {delay:?}");
        if signal == libc::SIGKILL {
            assert!(status.code().is_none(), "{what}: {status}");
        } else {
            assert_eq!(status.code(), Some(130), "{what}: {status}");
            assert!(
                strays(dir.path()).is_empty(),
                "{what}: {:?}",
                strays(dir.path())
            );
        }
        assert_eq!(tree(&dir.path().join("out")), before, "{what}");
    }
    assert!(interrupted > 0, "no build was interrupted");
    let again = rulepack(dir.path(), &["build"]);
    assert!(
        again.status.success(),
        "{}",
        common::report("build", &again)
    );
    assert!(strays(dir.path()).is_empty(), "{:?}", strays(dir.path()));
    assert!(
        dir.path()
            .join("out/sigma/azure_guest_invited_299.yml")
            .is_file()
    );
}
