//! Fuzzing the rules folder: generated packs (mutated rule text, non-ASCII spliced where code
//! slices bytes, and folder mutations: link loops, links out, FIFOs, oversized files, stale
//! staging folders, nested folders) built in process. For every case: no panic, no hang (per-case
//! time limit), every diagnostic renders in every format, nothing `.rulepack-*` is left beside
//! `out/`, and a failed build leaves `out/` byte-identical.
//! Cases: RULEPACK_FUZZ_CASES (default 60); the long run is in the README.

#![cfg(unix)]

mod common;

use common::fuzz::{self, NON_ASCII, Rng, strays, tree};
use rulepack::diag;
use rulepack::source::SourceMap;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

const SEEDS: &[&str] = &[
    "guest_invited.yml",
    "guest_invitation_burst.yml",
    "guest_invite_not_redeemed.yml",
    "b2b_domain_policy_changed.yml",
    "guest_invited_by_application.yml",
];

const HOSTILE: &[&str] = &[
    "\"",
    "'",
    "\\",
    "\n",
    "\t",
    ": ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    "&a ",
    "*a",
    "!!str ",
    "#",
    "%",
    "|",
    ">",
    "\0",
    "---\n",
    "...\n",
    "~",
    "0x",
    "1e400",
    "-1",
    "99999999999999999999",
];

/// Mutates rule text: cut, splice hostile or non-ASCII text, repeat a slice, truncate, or
/// replace a value's last character (where durations and ids are sliced).
fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(chars.len() + 1);
        match rng.below(6) {
            0 => {
                let end = (at + rng.below(40)).min(chars.len());
                chars.drain(at..end);
            }
            1 => drop(chars.splice(at..at, rng.pick(HOSTILE).chars())),
            2 => drop(chars.splice(at..at, rng.pick(NON_ASCII).chars())),
            3 => {
                let end = (at + rng.below(80)).min(chars.len());
                let copy: Vec<char> = chars[at..end].to_vec();
                drop(chars.splice(at..at, copy));
            }
            4 => {
                // The last character before a line end becomes non-ASCII.
                if let Some(nl) = chars[at..].iter().position(|c| *c == '\n') {
                    let i = at + nl;
                    if i > 0 {
                        let piece: Vec<char> = rng.pick(NON_ASCII).chars().collect();
                        drop(chars.splice(i - 1..i, piece));
                    }
                }
            }
            _ => chars.truncate(at),
        }
    }
    chars.into_iter().collect()
}

/// Adds something to the rules folder that is not a plain rule file.
fn folder_mutation(rules: &Path, rng: &mut Rng, i: usize) {
    match rng.below(9) {
        0 => symlink(".", rules.join(format!("loop{i}"))).unwrap(),
        1 => symlink("..", rules.join("up")).unwrap(),
        2 => symlink("/dev/zero", rules.join("zero.yml")).unwrap(),
        3 => symlink("/etc/hostname", rules.join("host.yml")).unwrap(),
        4 => {
            let fifo = rules.join("pipe.yml");
            let ok = std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap();
            assert!(ok.success());
        }
        5 => std::fs::write(rules.join("big.yml"), vec![b'#'; (1 << 20) + 1]).unwrap(),
        6 => {
            let stale = rules.join(format!(".rulepack-staging-{}-x", 4_000_000 + i));
            std::fs::create_dir_all(&stale).unwrap();
            std::fs::write(stale.join("junk.yml"), "junk").unwrap();
        }
        7 => symlink("missing.yml", rules.join("dangling.yml")).unwrap(),
        _ => {
            std::fs::create_dir_all(rules.join("nested/deeper")).unwrap();
            let seed = std::fs::read(common::repo().join("rules/guest_deleted.yml")).unwrap();
            std::fs::write(rules.join("nested/deeper/copy.yml"), seed).unwrap();
        }
    }
}

#[test]
fn generated_rule_folders_never_panic_hang_or_leave_files() {
    let n = fuzz::cases(60);
    let seeds: Vec<String> = SEEDS
        .iter()
        .map(|f| std::fs::read_to_string(common::repo().join("rules").join(f)).unwrap())
        .collect();
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let (mut built, mut failed) = (0, 0);
    for i in 0..n {
        let work = tempfile::tempdir().unwrap();
        let rules = work.path().join("rules");
        std::fs::create_dir(&rules).unwrap();
        for (k, seed) in seeds.iter().enumerate().take(1 + rng.below(2)) {
            let text = if rng.below(5) == 0 {
                seed.clone()
            } else {
                mutate(seed, &mut rng)
            };
            std::fs::write(rules.join(format!("r{k}.yml")), text).unwrap();
        }
        if rng.below(3) == 0 {
            folder_mutation(&rules, &mut rng, i);
        }
        let out = work.path().join("out");
        std::fs::create_dir_all(out.join("earlier")).unwrap();
        std::fs::write(out.join("earlier/file"), format!("case {i}")).unwrap();
        let before = tree(&out);
        let paths = common::paths(&rules);
        let out2 = out.clone();
        let ok = fuzz::within(
            Duration::from_secs(60),
            &format!("rules case {i}"),
            move || {
                let mut sources = SourceMap::default();
                let result = rulepack::build(&paths, &mut sources, &out2);
                let diags = match &result {
                    Ok(b) => b.warnings.clone(),
                    Err(rulepack::BuildError::Rules(d)) => d.clone(),
                    Err(rulepack::BuildError::Io(_, w)) => w.clone(),
                };
                for d in &diags {
                    assert!(!diag::render_human(d, &sources, false).is_empty());
                    assert_eq!(diag::render_github(d, &sources).lines().count(), 1);
                    assert_eq!(diag::render_json(d, &sources).lines().count(), 1);
                }
                result.is_ok()
            },
        );
        if ok {
            built += 1;
        } else {
            failed += 1;
            assert_eq!(tree(&out), before, "case {i}: a failed build changed out/");
        }
        let left = strays(work.path());
        assert!(left.is_empty(), "case {i}: left {left:?}");
    }
    println!(
        "rule folders: {n} cases, {built} built, {failed} refused; 0 panics, 0 hangs, 0 stray files"
    );
}
