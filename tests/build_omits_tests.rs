//! `build` does not read the rules' `tests:` sections (TestEvents::Omit); `check` still does.
//! Everything outside the tests reads exactly as a full read gives it.

mod common;

use rulepack::source::SourceMap;
use rulepack::{TestEvents, check_unlocked};
use std::path::Path;

/// Every diagnostic of the rules in `dir`, rendered, with its line in `rule.yml` (0 elsewhere).
fn diags(dir: &Path, events: TestEvents) -> Vec<(usize, String)> {
    let mut sources = SourceMap::default();
    match check_unlocked(&common::paths(dir), &mut sources, events) {
        Ok(_) => Vec::new(),
        Err(ds) => ds
            .iter()
            .map(|d| {
                let line = rulepack::diag::position(d, &sources)
                    .filter(|p| p.file.ends_with("rule.yml"))
                    .map_or(0, |p| p.line);
                (line, rulepack::diag::render_human(d, &sources, false))
            })
            .collect(),
    }
}

/// First and last line (1-based) of the top-level `tests:` section, as a person reads the file.
fn tests_lines(text: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.starts_with("tests:"))?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| {
            !l.is_empty() && !l.starts_with([' ', '\t', '#', '-']) || l.starts_with("---")
        })
        .map_or(lines.len(), |i| start + 1 + i);
    Some((start + 1, end))
}

#[test]
fn broken_test_events_do_not_stop_build_but_check_reports_them() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    common::copy_tree(&common::repo().join("rules"), &rules);
    std::fs::remove_file(rules.join("versions.lock")).ok();
    let victim = rules.join("guest_invited.yml");
    let text = std::fs::read_to_string(&victim).unwrap();
    // A test with a key the format does not have, an event that is not a mapping and a
    // malformed flow mapping: each one a problem only a read of the tests can find.
    let broken = format!(
        "{text}  - name: broken\n    expekt: match\n    event: hello\n  - name: worse\n    expect: match\n    event: {{a: [1, 2}}\n"
    );
    std::fs::write(&victim, broken).unwrap();

    let checked = diags(&rules, TestEvents::Skip);
    assert!(
        !checked.is_empty(),
        "check must report the broken test events"
    );

    let out = tmp.path().join("out");
    let mut sources = SourceMap::default();
    let built = rulepack::build(&common::paths(&rules), &mut sources, &out);
    assert!(built.is_ok(), "build must not read the tests section");

    // The tests never reach an artifact: the output equals the shipped pack's.
    let shipped = tmp.path().join("shipped");
    let mut sources = SourceMap::default();
    let pristine = tmp.path().join("pristine");
    common::copy_tree(&common::repo().join("rules"), &pristine);
    std::fs::remove_file(pristine.join("versions.lock")).ok();
    assert!(rulepack::build(&common::paths(&pristine), &mut sources, &shipped).is_ok());
    assert_eq!(common::tree_files(&out), common::tree_files(&shipped));
}

/// Diagnostics of `dir` read fully and without tests: those outside the tests section must be
/// the same, in the same order, position included. Returns how many were compared.
fn compare(dir: &Path, text: &str) -> usize {
    let kept = diags(dir, TestEvents::Keep);
    let omitted = diags(dir, TestEvents::Omit);
    let in_tests = |line: usize| tests_lines(text).is_some_and(|(s, e)| (s..=e).contains(&line));
    // Whether the tests prove both verdicts is only known when they are read (see check_coverage).
    let about_tests = |d: &str| d.contains("has no match") || d.contains("has no no_match");
    let expected: Vec<&(usize, String)> = kept
        .iter()
        .filter(|(l, d)| !in_tests(*l) && !about_tests(d))
        .collect();
    let got: Vec<&(usize, String)> = omitted.iter().collect();
    assert_eq!(got, expected, "{}", dir.display());
    expected.len()
}

const TESTS_FIRST: &str = "tests:\n  - name: invité\n    expect: match\n    event: {activityDisplayName: \"Invité ü\", additionalDetails: [{key: \"é\", value: \"ü\"}]}\n# ß\n";

#[test]
fn diagnostics_outside_the_tests_are_identical_position_included() {
    let fixtures = common::repo().join("tests/fixtures/errors");
    let tmp = tempfile::tempdir().unwrap();
    let (mut compared, mut outside, mut moved) = (0, 0, 0);
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let dir = entry.unwrap().path();
        // not_utf8 has no text to locate a section in; it is compared whole below.
        let Ok(text) = std::fs::read_to_string(dir.join("rule.yml")) else {
            continue;
        };
        outside += compare(&dir, &text);
        compared += 1;
        // The same rule with a tests section first, so that every other value sits after the
        // blanked bytes (multi-byte characters included): a blanking that moved offsets would
        // move every position.
        if tests_lines(&text).is_none() {
            let case = tmp.path().join(dir.file_name().unwrap());
            common::copy_tree(&dir, &case);
            let moved_text = format!("{TESTS_FIRST}{text}");
            std::fs::write(case.join("rule.yml"), &moved_text).unwrap();
            outside += compare(&case, &moved_text);
            moved += 1;
        }
    }
    assert!(compared >= 25, "only {compared} fixtures compared");
    assert!(
        moved >= 20,
        "only {moved} fixtures had a tests section to move"
    );
    assert!(
        outside >= 50,
        "only {outside} diagnostics outside the tests compared"
    );
}

#[test]
fn a_file_that_is_not_utf8_reads_the_same() {
    let dir = common::repo().join("tests/fixtures/errors/not_utf8");
    assert_eq!(diags(&dir, TestEvents::Omit), diags(&dir, TestEvents::Keep));
}
