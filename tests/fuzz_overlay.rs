//! Fuzzing `--templates` overlays: generated template bodies (loops, nesting, filters, unknown
//! variables, broken syntax, runaway output) and generated `backend.yml` template paths (`..`,
//! absolute, links out, FIFOs), built in process. For every case: no panic, no hang (per-case
//! time limit), no `.rulepack-*` left, `out/` byte-identical after a failed build, and no file
//! from outside the overlay in a built `out/`.
//! Cases: RULEPACK_FUZZ_CASES (default 40); the long run is in the README.

#![cfg(unix)]

mod common;

use common::fuzz::{self, Rng, strays, tree};
use rulepack::source::SourceMap;
use std::path::Path;
use std::time::Duration;

const FRAGMENTS: &[&str] = &[
    "{{ rule.title }}",
    "{{ rule.name | upper }}",
    "{{ nothing.here }}",
    "{% for i in range(end=100000) %}",
    "{% for i in range(end=3) %}",
    "{% endfor %}",
    "{% if rule.title %}",
    "{% else %}",
    "{% endif %}",
    "{% set x = 1 %}{{ x }}",
    "{% filter upper %}",
    "{% endfilter %}",
    "{{ range(end=100000) | length }}",
    "{{ rule.title ~ rule.title }}",
    "{# comment #}",
    "{% raw %}{{ kept }}{% endraw %}",
    "{{",
    "}}",
    "{%",
    "%}",
    "é漢🙂",
    "\n",
    "| where true\n",
    "\\",
    "\0",
];

const PATHS: &[&str] = &[
    "rule.kql",
    "../../../../etc/hostname",
    "/etc/hostname",
    "..",
    ".",
    "",
    "sub/../rule.kql",
    "./rule.kql",
    "missing.kql",
    "link.kql",
    "pipe.kql",
    "é/漢.kql",
    "rule.kql/",
];

/// A template: mostly well-formed (nested loops, conditions, filters, expressions, text), a
/// quarter of the time a run of loose fragments that is usually broken.
fn template(rng: &mut Rng) -> String {
    if rng.below(4) == 0 {
        return (0..1 + rng.below(12))
            .map(|_| *rng.pick(FRAGMENTS))
            .collect();
    }
    block(rng, 0)
}

fn block(rng: &mut Rng, depth: usize) -> String {
    const LEAVES: &[&str] = &[
        "{{ rule.title }}",
        "{{ rule.name | upper }}",
        "{{ rule.title ~ rule.title }}",
        "{{ range(end=100000) | length }}",
        "{% set x = 1 %}{{ x }}",
        "{# comment #}",
        "{% raw %}{{ kept }}{% endraw %}",
        "é漢🙂",
        "\n",
        "| where true\n",
        "\\",
        "{{ nothing.here }}",
    ];
    (0..1 + rng.below(4))
        .map(|_| match if depth < 3 { rng.below(5) } else { 4 } {
            0 => {
                let n = *rng.pick(&[3, 1000, 100_000]);
                let body = block(rng, depth + 1);
                format!("{{% for i in range(end={n}) %}}{body}{{% endfor %}}")
            }
            1 => format!(
                "{{% if rule.title %}}{}{{% endif %}}",
                block(rng, depth + 1)
            ),
            2 => format!(
                "{{% filter upper %}}{}{{% endfilter %}}",
                block(rng, depth + 1)
            ),
            _ => (*rng.pick(LEAVES)).to_string(),
        })
        .collect()
}

/// A generated overlay under `mine/`: a sentinel `backend.yml` whose rule query template path
/// is generated, and generated bodies for some templates.
fn overlay(mine: &Path, secret: &Path, rng: &mut Rng) {
    let dir = mine.join("sentinel");
    std::fs::create_dir_all(&dir).unwrap();
    let path = if rng.below(2) == 0 {
        "rule.kql"
    } else {
        *rng.pick(PATHS)
    };
    if rng.below(2) == 0 {
        let shipped =
            std::fs::read_to_string(common::repo().join("templates/sentinel/backend.yml")).unwrap();
        let yaml_path = serde_json::to_string(path).unwrap();
        std::fs::write(
            dir.join("backend.yml"),
            shipped.replace("template: rule.kql", &format!("template: {yaml_path}")),
        )
        .unwrap();
    }
    match rng.below(4) {
        0 => std::os::unix::fs::symlink(secret, dir.join("link.kql")).unwrap(),
        1 => {
            let ok = std::process::Command::new("mkfifo")
                .arg(dir.join("pipe.kql"))
                .status()
                .unwrap();
            assert!(ok.success());
        }
        2 => std::os::unix::fs::symlink(secret, dir.join("rule.kql")).unwrap(),
        _ => {}
    }
    for name in ["rule.kql", "rule.yaml", "pack.arm.json"] {
        if rng.below(2) == 0 && !dir.join(name).exists() {
            std::fs::write(dir.join(name), template(rng)).unwrap();
        }
    }
}

#[test]
fn generated_overlays_never_panic_hang_leak_or_leave_files() {
    let n = fuzz::cases(40);
    let mut rng = Rng(0x0bad_5eed_1234_5678);
    let (mut built, mut failed) = (0, 0);
    for i in 0..n {
        let work = tempfile::tempdir().unwrap();
        let rules = work.path().join("rules");
        std::fs::create_dir(&rules).unwrap();
        for f in ["guest_invited.yml", "guest_deleted.yml"] {
            std::fs::copy(common::repo().join("rules").join(f), rules.join(f)).unwrap();
        }
        let secret = work.path().join("secret");
        std::fs::write(&secret, "SECRET-OUTSIDE-THE-OVERLAY").unwrap();
        let mine = work.path().join("mine");
        overlay(&mine, &secret, &mut rng);
        let out = work.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("earlier"), format!("case {i}")).unwrap();
        let before = tree(&out);
        let mut paths = common::paths(&rules);
        paths.templates = rulepack::templates::Templates::new(Some(mine));
        let out2 = out.clone();
        let ok = fuzz::within(
            Duration::from_secs(60),
            &format!("overlay case {i}"),
            move || {
                let mut sources = SourceMap::default();
                let result = rulepack::build(&paths, &mut sources, &out2);
                if let Err(rulepack::BuildError::Rules(d)) = &result {
                    for d in d {
                        assert!(!rulepack::diag::render_human(d, &sources, false).is_empty());
                    }
                }
                result.is_ok()
            },
        );
        if ok {
            built += 1;
            for (p, content) in tree(&out) {
                let leaked = content.is_some_and(|c| c.windows(6).any(|w| w == b"SECRET"));
                assert!(!leaked, "case {i}: {} holds the secret", p.display());
            }
        } else {
            failed += 1;
            assert_eq!(tree(&out), before, "case {i}: a failed build changed out/");
        }
        let left = strays(work.path());
        assert!(left.is_empty(), "case {i}: left {left:?}");
    }
    println!(
        "overlays: {n} cases, {built} built, {failed} refused; 0 panics, 0 hangs, 0 leaks, 0 stray files"
    );
}
