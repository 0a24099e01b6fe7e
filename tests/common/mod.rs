//! Shared helpers for the integration tests.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod fuzz;

use rulepack::source::SourceMap;
use rulepack::{Compiled, Paths, TestEvents, compile};
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn paths(rules: &Path) -> Paths {
    Paths {
        rules: rules.to_path_buf(),
        templates: repo().join("templates"),
        overlay: None,
    }
}

/// Compiles the shipped pack; panics with the rendered diagnostics if it does not compile.
pub fn compile_pack() -> Compiled {
    compile_dir(&repo().join("rules"))
}

pub fn compile_dir(rules: &Path) -> Compiled {
    let mut sources = SourceMap::default();
    match compile(&paths(rules), &mut sources, TestEvents::Keep) {
        Ok(c) => c,
        Err(diags) => {
            let text: Vec<String> = diags
                .iter()
                .map(|d| rulepack::diag::render_human(d, &sources, false))
                .collect();
            panic!("the pack does not compile:\n{}", text.join("\n"));
        }
    }
}

/// Runs a command; a missing program is a test failure that says so.
pub fn run(cmd: &mut std::process::Command) -> std::process::Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is it installed and on PATH?)"))
}

/// A command's status and output, for assertion messages.
pub fn report(what: &str, out: &std::process::Output) -> String {
    format!(
        "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Copies a folder tree (regular files and folders only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A project folder in a temporary directory: the shipped templates and an empty `rules/`, for
/// tests that run the binary on a pack of their own.
pub fn scratch_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("templates"), &dir.path().join("templates"));
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    dir
}
