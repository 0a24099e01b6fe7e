//! Shared helpers for the integration tests.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod fuzz;
pub mod real;

use rulepack::source::SourceMap;
use rulepack::templates::Templates;
use rulepack::{Compiled, LockPolicy, Paths, TestEvents, compile};
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The pack's manifest (rulepack.yml at the repository root).
pub fn manifest() -> rulepack::manifest::Manifest {
    let mut sources = SourceMap::default();
    rulepack::manifest::load(&repo(), &mut sources)
        .unwrap_or_else(|d| panic!("the repository's rulepack.yml: {d:?}"))
}

/// The rules in `rules`, with the templates compiled into rulepack and the repository's manifest.
pub fn paths(rules: &Path) -> Paths {
    Paths {
        rules: rules.to_path_buf(),
        templates: Templates::default(),
        manifest: manifest(),
        backends: Vec::new(),
    }
}

/// Compiles the shipped pack; panics with the rendered diagnostics if it does not compile.
pub fn compile_pack() -> Compiled {
    compile_dir(&repo().join("rules"))
}

/// The shipped pack's rules that `backend` ships as hunting queries (its `hunting_kinds`).
pub fn hunting(backend: &str) -> Vec<String> {
    compile_pack()
        .hunting
        .into_iter()
        .filter(|(_, b)| b.iter().any(|b| b == backend))
        .map(|(name, _)| name)
        .collect()
}

pub fn compile_dir(rules: &Path) -> Compiled {
    let mut sources = SourceMap::default();
    match compile(
        &paths(rules),
        &mut sources,
        TestEvents::Keep,
        LockPolicy::Release,
    ) {
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

/// Every file under `dir` (links followed) with its bytes, by its path relative to `dir` written
/// with `/`: a snapshot of a tree, to compare with another or with itself later.
pub fn tree_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy();
                out.insert(rel.replace('\\', "/"), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The paths `tree_files` gives, sorted.
pub fn tree_names(dir: &Path) -> Vec<String> {
    tree_files(dir).into_keys().collect()
}

/// A pack in a temporary directory: this repository's manifest and an empty `rules/`, for tests
/// that run the binary on a pack of their own (the templates are compiled into it). The manifest
/// loses its `verify:` section, which names shipped rules a scratch pack does not have.
pub fn scratch_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("rulepack.yml")).unwrap();
    let own = text.split("\nverify:\n").next().unwrap();
    std::fs::write(dir.path().join("rulepack.yml"), format!("{own}\n")).unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    dir
}
