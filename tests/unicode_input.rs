//! Non-ASCII text where code slices bytes: durations whose unit is a multibyte character, and
//! diagnostics whose span starts or ends inside a character. Every diagnostic of every mutant is
//! rendered in all three formats, because the human renderer is where a bad span panics.
//! Cases: RULEPACK_FUZZ_CASES (default 120).

mod common;

use common::fuzz::{self, NON_ASCII, Rng};
use rulepack::diag;
use rulepack::source::SourceMap;
use std::process::Command;
use std::time::Duration;

fn rulepack(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    common::run(
        Command::new(env!("CARGO_BIN_EXE_rulepack"))
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .args(args),
    )
}

/// A one-rule pack in a temporary folder, with the shipped templates.
fn pack_with(rule: &str) -> tempfile::TempDir {
    let dir = common::scratch_project();
    std::fs::write(dir.path().join("rules/r.yml"), rule).unwrap();
    dir
}

fn shipped(name: &str) -> String {
    std::fs::read_to_string(common::repo().join("rules").join(name)).unwrap()
}

#[test]
fn a_duration_ending_in_a_multibyte_character_is_a_diagnostic() {
    let rule = shipped("guest_invitation_burst.yml").replace("frequency: 1h", "frequency: 5é");
    let dir = pack_with(&rule);
    for cmd in ["check", "build", "test", "lock"] {
        let out = rulepack(&[cmd], dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {stderr}");
        assert!(
            stderr.contains("error[R050]") && stderr.contains("rules/r.yml:"),
            "{cmd}: {stderr}"
        );
    }
}

#[test]
fn a_caret_never_ends_inside_a_character() {
    let dir = pack_with("é: 1\n");
    let out = rulepack(&["check"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--> rules/r.yml:1:1") && stderr.contains("1 | é: 1"),
        "{stderr}"
    );
}

#[test]
fn spans_snap_to_character_boundaries() {
    let mut sources = SourceMap::default();
    let file = sources.add(std::path::Path::new("x.yml"), "aé🙂b".into());
    let span = |start, end| rulepack::source::Span { file, start, end };
    assert_eq!(sources.char_range(span(2, 2)), 1..3);
    assert_eq!(sources.char_range(span(1, 4)), 1..7);
    assert_eq!(sources.char_range(span(4, 100)), 3..8);
    assert_eq!(sources.char_range(span(9, 3)), 8..8);
}

/// Inserts non-ASCII text at places that byte-slicing code looks at: the end of a value (a
/// duration's unit, an id's last character), the start of a key or value, or anywhere.
fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut out = text.to_string();
    for _ in 0..1 + rng.below(3) {
        let piece = *rng.pick(NON_ASCII);
        let boundaries: Vec<usize> = match rng.below(3) {
            0 => out.match_indices('\n').map(|(i, _)| i).collect(),
            1 => out.match_indices(": ").map(|(i, _)| i + 2).collect(),
            _ => out.char_indices().map(|(i, _)| i).collect(),
        };
        let at = boundaries
            .get(rng.below(boundaries.len()))
            .copied()
            .unwrap_or(0);
        if rng.below(4) == 0 {
            // Replace the character before the point, so a value's last byte changes width.
            let before = out[..at].char_indices().next_back().map_or(at, |(i, _)| i);
            out.replace_range(before..at, piece);
        } else {
            out.insert_str(at, piece);
        }
    }
    out
}

#[test]
fn non_ascii_mutants_never_panic_in_check_or_in_diagnostics() {
    let n = fuzz::cases(120);
    let seeds: Vec<String> = [
        "guest_invitation_burst.yml",
        "guest_invite_not_redeemed.yml",
        "guest_invited.yml",
        "b2b_domain_policy_changed.yml",
    ]
    .iter()
    .map(|f| shipped(f))
    .collect();
    let work = tempfile::tempdir().unwrap();
    let rules = work.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut valid, mut rejected) = (0, 0);
    for i in 0..n {
        let text = mutate(&seeds[i % seeds.len()], &mut rng);
        std::fs::write(rules.join("r.yml"), &text).unwrap();
        let paths = common::paths(&rules);
        let ok = fuzz::within(
            Duration::from_secs(30),
            &format!("case {i}: {text:?}"),
            move || {
                let mut sources = SourceMap::default();
                let result = rulepack::compile(
                    &paths,
                    &mut sources,
                    rulepack::TestEvents::Keep,
                    rulepack::LockPolicy::Edit,
                );
                let diags = match &result {
                    Ok(c) => c.warnings.clone(),
                    Err(d) => d.clone(),
                };
                for d in &diags {
                    assert!(!diag::render_human(d, &sources, false).is_empty());
                    assert!(!diag::render_human(d, &sources, true).is_empty());
                    assert_eq!(diag::render_github(d, &sources).lines().count(), 1);
                    assert_eq!(diag::render_json(d, &sources).lines().count(), 1);
                }
                result.is_ok()
            },
        );
        if ok {
            valid += 1;
        } else {
            rejected += 1;
        }
    }
    println!("non-ASCII mutants: {n} cases, {valid} valid, {rejected} rejected, 0 panics, 0 hangs");
}
