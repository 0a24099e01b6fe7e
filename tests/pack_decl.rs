//! `pieces` and `pack_vars` in a backend.yml (shipped, or a team's overlay of it) are checked at
//! their entry: a misspelt pack var, a path that leads nowhere or a piece named twice is an
//! error naming the file, line and column, with what may be written there. Before, a misspelt
//! pack var was dropped without a word and a second piece of one name replaced the first.

mod common;

use std::path::Path;
use std::process::Command;

/// The shipped `backend` backend.yml with `from` replaced by `to`, as the overlay `mine/`.
fn overlay(dir: &Path, backend: &str, from: &str, to: &str) -> Overlay {
    let shipped =
        std::fs::read_to_string(common::repo().join(format!("templates/{backend}/backend.yml")))
            .unwrap();
    assert!(shipped.contains(from), "{from}");
    let text = shipped.replacen(from, to, 1);
    std::fs::create_dir_all(dir.join("mine").join(backend)).unwrap();
    std::fs::write(dir.join("mine").join(backend).join("backend.yml"), &text).unwrap();
    Overlay {
        backend: backend.to_string(),
        text,
    }
}

struct Overlay {
    backend: String,
    text: String,
}

impl Overlay {
    /// Where `needle` first begins in the overlay's backend.yml, as `path:line:column`.
    fn at(&self, needle: &str) -> String {
        let at = self.text.find(needle).unwrap();
        let line = self.text[..at].matches('\n').count() + 1;
        let column = at - self.text[..at].rfind('\n').map_or(0, |n| n + 1) + 1;
        format!("mine/{}/backend.yml:{line}:{column}", self.backend)
    }
}

/// `build` of the shipped rules with the overlay fails with exit status 1 and writes nothing;
/// its stderr.
fn build_fails(dir: &Path) -> String {
    let out = dir.join("out");
    let res = Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .current_dir(common::repo())
        .env("NO_COLOR", "1")
        .args(["build", "--templates"])
        .arg(dir.join("mine"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    assert_eq!(res.status.code(), Some(1), "{stderr}");
    assert!(!out.exists(), "nothing may be written");
    stderr
}

/// `build` with the overlay fails with one R090 saying each of `what`.
fn refused(dir: &Path, what: &[&str]) {
    let stderr = build_fails(dir);
    assert_eq!(stderr.matches("error[R090]").count(), 1, "{stderr}");
    for w in what {
        assert!(stderr.contains(w), "{w}: {stderr}");
    }
}

#[test]
fn a_misspelt_pack_var_is_named_with_what_it_may_be() {
    let tmp = tempfile::tempdir().unwrap();
    let o = overlay(tmp.path(), "sigma", "  - rule.title\n", "  - rules.title\n");
    refused(
        tmp.path(),
        &[
            "pack var `rules.title`: a sigma backend's rules have no variable `rules`",
            &o.at("rules.title"),
            "did you mean `rule`?",
            "rule, c, pack, agg, settings, sched, omitted, primary, sigma_description",
        ],
    );
}

#[test]
fn a_pack_var_path_that_leads_nowhere_is_named_once() {
    let tmp = tempfile::tempdir().unwrap();
    // Every rule meets it; it is reported once.
    let o = overlay(
        tmp.path(),
        "splunk",
        "rule.id, rule.name,",
        "rule.nmae, rule.id,",
    );
    refused(
        tmp.path(),
        &[
            "pack var `rule.nmae`: `rule` has no `nmae`",
            &o.at("rule.nmae"),
            "did you mean `rule.name`?",
            "`rule` has: id, name, title",
        ],
    );
    let o = overlay(
        tmp.path(),
        "splunk",
        "rule.id, rule.name,",
        "rule.name.x, rule.id,",
    );
    refused(
        tmp.path(),
        &[
            "pack var `rule.name.x`: `rule.name` is a string, with nothing under it",
            &o.at("rule.name.x"),
        ],
    );
}

#[test]
fn pack_var_entries_that_mean_nothing_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for (to, entry, what) in [
        (
            "rule..id,",
            "rule..id",
            "pack var `rule..id` has an empty name in it",
        ),
        (
            "pieces.macros,",
            "pieces.macros",
            "the pack templates see every piece already",
        ),
        // The second of the two is at fault.
        (
            "rule.id, rule.id,",
            "rule.id, rule.title",
            "pack var `rule.id` is named twice",
        ),
    ] {
        let o = overlay(tmp.path(), "splunk", "rule.id, rule.name,", to);
        refused(tmp.path(), &[what, &o.at(entry)]);
    }
}

#[test]
fn a_piece_named_twice_is_refused_at_the_second() {
    let tmp = tempfile::tempdir().unwrap();
    let o = overlay(
        tmp.path(),
        "splunk",
        "  - name: macros\n",
        "  - name: savedsearch\n",
    );
    refused(
        tmp.path(),
        &[
            "piece `savedsearch` is declared twice",
            &o.at("savedsearch\n    template: piece.macros"),
        ],
    );
    let o = overlay(
        tmp.path(),
        "splunk",
        "  - name: macros\n",
        "  - name: \"\"\n",
    );
    refused(tmp.path(), &["a piece has an empty name", &o.at("\"\"\n")]);
}

#[test]
fn every_bad_declaration_of_a_backend_is_reported_together() {
    let tmp = tempfile::tempdir().unwrap();
    let shipped =
        std::fs::read_to_string(common::repo().join("templates/splunk/backend.yml")).unwrap();
    let from = ["  - name: macros\n", "rule.id, rule.name,"];
    assert!(from.iter().all(|f| shipped.contains(f)));
    let text = shipped
        .replacen(from[0], "  - name: savedsearch\n", 1)
        .replacen(from[1], "rules.id, rule.name, rule.name,", 1);
    std::fs::create_dir_all(tmp.path().join("mine/splunk")).unwrap();
    std::fs::write(tmp.path().join("mine/splunk/backend.yml"), text).unwrap();
    let stderr = build_fails(tmp.path());
    assert_eq!(stderr.matches("error[R090]").count(), 3, "{stderr}");
    assert!(
        stderr.contains("piece `savedsearch` is declared twice")
            && stderr.contains("a splunk backend's rules have no variable `rules`")
            && stderr.contains("pack var `rule.name` is named twice"),
        "{stderr}"
    );
}
