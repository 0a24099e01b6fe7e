//! Fuzzing the rules folder: generated packs (mutated rule text, non-ASCII spliced where code
//! slices bytes, and folder mutations: link loops, links out, FIFOs, oversized files, stale
//! staging folders, nested folders) built in process. For every case: no panic, no hang (per-case
//! time limit), every diagnostic renders in every format, nothing `.rulepack-*` is left beside
//! `out/`, and a failed build leaves `out/` byte-identical. Every artifact of every case that
//! builds then goes through the real tools, batched: one node process (Kusto.Language) for all
//! KQL, one `sigma check` over all Sigma packs, one ksconf run over all Splunk apps. Identical
//! outputs are checked once.
//! Cases: RULEPACK_FUZZ_CASES (default 60); the long run is in the README.

#![cfg(unix)]

mod common;

use common::fuzz::{self, NON_ASCII, Rng, strays, tree};
use rulepack::diag;
use rulepack::source::SourceMap;
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
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

/// The built artifacts of the cases, kept for the real tools: each distinct KQL file, and each
/// distinct Sigma pack and Splunk app (whole, since their files refer to each other).
struct Artifacts {
    dir: tempfile::TempDir,
    seen: HashSet<u64>,
    kql: Vec<PathBuf>,
    sigma_packs: usize,
    conf: Vec<PathBuf>,
    apps: usize,
}

fn digest(parts: &[(PathBuf, Vec<u8>)]) -> u64 {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// Files under `dir` with their contents, sorted, paths relative to `dir`.
fn contents(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<(PathBuf, Vec<u8>)> {
    common::real::files_ending(dir, "")
        .into_iter()
        .filter(|p| keep(p))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p.strip_prefix(dir).unwrap().to_path_buf(), bytes)
        })
        .collect()
}

impl Artifacts {
    fn new() -> Self {
        Artifacts {
            dir: tempfile::tempdir().unwrap(),
            seen: HashSet::new(),
            kql: Vec::new(),
            sigma_packs: 0,
            conf: Vec::new(),
            apps: 0,
        }
    }

    /// Copies what is new in `set` under `into/` and returns the copies.
    fn keep(&mut self, into: &str, set: Vec<(PathBuf, Vec<u8>)>) -> Vec<PathBuf> {
        if set.is_empty() || !self.seen.insert(digest(&set)) {
            return Vec::new();
        }
        let root = self.dir.path().join(into);
        set.into_iter()
            .map(|(rel, bytes)| {
                let to = root.join(rel);
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::write(&to, bytes).unwrap();
                to
            })
            .collect()
    }

    fn add(&mut self, case: usize, out: &Path) {
        for (rel, bytes) in contents(&out.join("sentinel"), |p| {
            p.extension().is_some_and(|e| e == "kql")
        }) {
            let kept = self.keep(&format!("kql/{case}"), vec![(rel, bytes)]);
            self.kql.extend(kept);
        }
        let sigma = contents(&out.join("sigma"), |p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("azure_"))
        });
        if !self.keep(&format!("sigma/{case}"), sigma).is_empty() {
            self.sigma_packs += 1;
        }
        let app = contents(&out.join("splunk"), |p| {
            p.extension().is_some_and(|e| e == "conf" || e == "meta")
        });
        let kept = self.keep(&format!("conf/{case}"), app);
        if !kept.is_empty() {
            self.apps += 1;
            self.conf.extend(kept);
        }
    }

    /// The real tools over everything kept; panics with their report.
    fn check(&self) {
        common::real::kql(&self.kql).unwrap_or_else(|e| panic!("{e}"));
        common::real::sigma_packs(&self.dir.path().join("sigma")).unwrap_or_else(|e| panic!("{e}"));
        common::real::ksconf(&self.conf).unwrap_or_else(|e| panic!("{e}"));
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
    let mut artifacts = Artifacts::new();
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
            artifacts.add(i, &out);
        } else {
            failed += 1;
            assert_eq!(tree(&out), before, "case {i}: a failed build changed out/");
        }
        let left = strays(work.path());
        assert!(left.is_empty(), "case {i}: left {left:?}");
    }
    let started = std::time::Instant::now();
    artifacts.check();
    println!(
        "rule folders: {n} cases, {built} built, {failed} refused; 0 panics, 0 hangs, 0 stray files"
    );
    println!(
        "real tools on the built cases: {} distinct KQL files (Kusto.Language), {} distinct Sigma packs (sigma check), {} distinct Splunk apps, {} .conf files (ksconf): all pass, {:.1} s",
        artifacts.kql.len(),
        artifacts.sigma_packs,
        artifacts.apps,
        artifacts.conf.len(),
        started.elapsed().as_secs_f64()
    );
}
