//! Every value rulepack writes into the Splunk app's `.conf` files survives Splunk's trailing
//! backslash line continuation and line breaks: the shipped rules are rebuilt twice, once with
//! plain marker titles and descriptions, once with the same texts ending in every hostile way
//! (`\`, `\\`, `\ `, CR, LF, trailing spaces, non-ASCII, a line that looks like a setting), and
//! ksconf's strict parser must read the hostile app as the plain one with only the marker texts
//! changed: no setting swallowed, none added, every other value identical.

mod common;

use common::{report, run};
use rulepack::source::SourceMap;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const ENDINGS: &[&str] = &[
    "\\",
    "\\\\",
    "\\ ",
    "\r",
    "\n",
    "   ",
    "é",
    "é\\",
    "\u{2028}",
    "\u{2028}\\",
    "\t\\",
    "\\\r\n",
    "\\\n\\",
    "\nsearch = index=* | delete",
    "\\\nenableSched = 0",
];

/// Manifest texts are one line (R080 refuses more), so only the one-line endings apply there.
const MANIFEST_ENDINGS: &[&str] = &["\\", "\\\\", "\\ ", "   ", "é\\", "\t\\"];

fn tool(exe: &str) -> PathBuf {
    let p = common::repo().join(".tools/ksconf/bin").join(exe);
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup-validators",
        p.display()
    );
    p
}

/// What a free text must read as in a .conf value: whitespace folded to single spaces, and a
/// final backslash kept from continuing the line by ` .` after it.
fn conf_text(s: &str) -> String {
    let t = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.ends_with('\\') { t + " ." } else { t }
}

/// Replaces the value of every `key:` line (any indent) with `value(n)` for its n-th occurrence,
/// dropping a block scalar's more-indented continuation lines.
fn set_key(text: &str, key: &str, value: &mut dyn FnMut() -> String) -> String {
    let mut out = Vec::new();
    let mut skip_deeper: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(d) = skip_deeper {
            if indent > d && !line.trim().is_empty() {
                continue;
            }
            skip_deeper = None;
        }
        if line.trim_start().starts_with(&format!("{key}:")) {
            out.push(format!(
                "{}{key}: {}",
                &line[..indent],
                serde_json::to_string(&value()).unwrap()
            ));
            skip_deeper = Some(indent);
        } else {
            out.push(line.to_string());
        }
    }
    out.join("\n") + "\n"
}

struct Texts {
    /// (marker, hostile text) pairs, in the order they were handed out.
    pairs: Vec<(String, String)>,
}

impl Texts {
    fn next(&mut self, what: &str, endings: &[&str], hostile: bool) -> String {
        let i = self.pairs.len();
        // Long enough for the minimum length of a description.
        let marker = format!("Marker{what}{i:03}x{}", "y".repeat(60));
        let text = format!(
            "{what} {i:03}, a text long enough for every minimum length{}",
            endings[i % endings.len()]
        );
        self.pairs.push((marker.clone(), text.clone()));
        if hostile { text } else { marker }
    }
}

/// Builds the shipped rules and a manifest with marker or hostile texts into `dir/out`.
fn build(dir: &Path, hostile: bool) -> Texts {
    let mut texts = Texts { pairs: Vec::new() };
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let mut names: Vec<PathBuf> = std::fs::read_dir(common::repo().join("rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        let mut text = std::fs::read_to_string(&path).unwrap();
        if path.extension().is_some_and(|e| e == "yml") {
            text = set_key(&text, "title", &mut || {
                texts.next("Title", ENDINGS, hostile)
            });
            text = set_key(&text, "description", &mut || {
                texts.next("Description", ENDINGS, hostile)
            });
        }
        std::fs::write(rules.join(path.file_name().unwrap()), text).unwrap();
    }
    let mut manifest = std::fs::read_to_string(common::repo().join("rulepack.yml")).unwrap();
    for key in ["description", "author", "label"] {
        manifest = set_key(&manifest, key, &mut || {
            texts.next("Manifest", MANIFEST_ENDINGS, hostile)
        });
    }
    std::fs::write(dir.join("rulepack.yml"), manifest).unwrap();
    let mut sources = SourceMap::default();
    let paths = rulepack::Paths {
        rules: rules.clone(),
        templates: rulepack::templates::Templates::default(),
        manifest: rulepack::manifest::load(dir, &mut sources)
            .unwrap_or_else(|d| panic!("hostile manifest refused: {d:?}")),
        backends: Vec::new(),
    };
    match rulepack::build(&paths, &mut sources, &dir.join("out")) {
        Ok(_) => {}
        Err(rulepack::BuildError::Rules(d)) => {
            let text: Vec<String> = d
                .iter()
                .map(|d| rulepack::diag::render_human(d, &sources, false))
                .collect();
            panic!(
                "the build failed (hostile: {hostile}):\n{}",
                text.join("\n")
            );
        }
        Err(rulepack::BuildError::Io(e, _)) => panic!("the build failed: {e}"),
    }
    texts
}

fn conf_files(out: &Path) -> Vec<PathBuf> {
    let app = out.join("splunk/rulepack_entra_guest");
    let mut files: Vec<PathBuf> = ["default", "metadata"]
        .iter()
        .flat_map(|d| std::fs::read_dir(app.join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Every file as ksconf's strict parser reads it: `[[stanza, [[key, value], …]], …]`.
fn ksconf_read(files: &[PathBuf]) -> Vec<Value> {
    let out = run(Command::new(tool("python"))
        .arg("-c")
        .arg(
            "import json, sys\n\
             from ksconf.conf.parser import parse_conf, PARSECONF_STRICT_NC\n\
             print(json.dumps([[[s, list(kv.items())] for s, kv in \
             parse_conf(p, profile=PARSECONF_STRICT_NC).items()] for p in sys.argv[1:]]))",
        )
        .args(files));
    assert!(
        out.status.success(),
        "{}",
        report("ksconf parse_conf", &out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn hostile_text_endings_never_swallow_or_add_a_setting() {
    let plain_dir = tempfile::tempdir().unwrap();
    let hostile_dir = tempfile::tempdir().unwrap();
    let texts = build(plain_dir.path(), false);
    let again = build(hostile_dir.path(), true);
    assert_eq!(texts.pairs, again.pairs);
    let files = conf_files(&hostile_dir.path().join("out"));
    let check = run(Command::new(tool("ksconf")).arg("check").args(&files));
    assert!(check.status.success(), "{}", report("ksconf check", &check));

    // The plain app with each marker replaced by what its hostile text must read as.
    let mut expected =
        serde_json::to_string(&ksconf_read(&conf_files(&plain_dir.path().join("out")))).unwrap();
    for (marker, text) in texts.pairs.iter().rev() {
        let folded = serde_json::to_string(&conf_text(text)).unwrap();
        expected = expected.replace(marker, folded.trim_matches('"'));
    }
    let expected: Value = serde_json::from_str(&expected).unwrap();
    let got = Value::Array(ksconf_read(&files));
    for (file, (e, g)) in files.iter().zip(
        expected
            .as_array()
            .unwrap()
            .iter()
            .zip(got.as_array().unwrap()),
    ) {
        let (e, g) = (e.as_array().unwrap(), g.as_array().unwrap());
        assert_eq!(e.len(), g.len(), "{}: stanza count", file.display());
        for (es, gs) in e.iter().zip(g) {
            assert_eq!(es[0], gs[0], "{}: stanza name", file.display());
            let (ek, gk) = (es[1].as_array().unwrap(), gs[1].as_array().unwrap());
            let keys = |kv: &Vec<Value>| kv.iter().map(|p| p[0].clone()).collect::<Vec<_>>();
            assert_eq!(keys(ek), keys(gk), "{} [{}]: keys", file.display(), es[0]);
            for (ep, gp) in ek.iter().zip(gk) {
                assert_eq!(ep, gp, "{} [{}]: value", file.display(), es[0]);
            }
        }
    }
    // Every marker reached a .conf value (so each ending was really tried there).
    let plain_text = files
        .iter()
        .map(|f| {
            std::fs::read_to_string(
                plain_dir
                    .path()
                    .join("out")
                    .join(f.strip_prefix(hostile_dir.path().join("out")).unwrap()),
            )
            .unwrap()
        })
        .collect::<String>();
    for (marker, _) in &texts.pairs {
        assert!(
            plain_text.contains(marker.as_str()),
            "{marker} not in any .conf"
        );
    }
}

#[test]
fn the_fold_rule_is_what_the_endings_need() {
    assert_eq!(conf_text("a \\ "), "a \\ .");
    assert_eq!(conf_text("a\r\nb = c"), "a b = c");
    assert_eq!(conf_text("a\u{2028}"), "a");
}
