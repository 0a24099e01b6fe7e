//! The cheap locator of the top-level `tests:` section (`load::tests_section`, what `build`
//! blanks instead of parsing) against the real YAML reader, on generated documents full of
//! what fools a line scan: `tests:` inside block scalars, quoted scalars and flow collections
//! that run over several lines (down to column 0), quoted and nested `tests` keys, comments,
//! anchors, tags, several documents, CRLF, a BOM, lone CR and NEL line breaks, and broken YAML
//! inside and outside the tests.
//!
//! For every case where the locator names a section:
//! - the reader agrees: the document parses with one top-level `tests` key whose key starts the
//!   section, and the next top-level key starts the line where the section ends;
//! - the blanked text reads as the document without `tests`, every other value and every key
//!   position the same; so does the text cut before tests that come last (what `build` reads);
//! - a document the reader refuses outside the section is refused the same way (message and
//!   byte position) when blanked; one it refuses inside the section reads without that error.
//!
//! Where the locator gives up, `build` reads the file whole, which is always right; the test
//! also proves that it does not give up on the plain shapes rules are written in.
//! Cases: RULEPACK_FUZZ_CASES (default 3000).

mod common;

use common::fuzz::{self, NON_ASCII, Rng};
use rulepack::load::tests_section::{blank, rule_part, section};
use rulepack::source::{FileId, SourceMap};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;
use std::path::Path;

/// A top-level mapping as the reader sees it: each key with its byte offset, and its value.
#[derive(Debug, PartialEq)]
struct Top(Vec<(String, usize, serde_json::Value)>);

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Top, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Top;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<Spanned<String>>()? {
                    let at = k.referenced.span().byte_offset().unwrap_or(0) as usize;
                    out.push((k.value, at, map.next_value()?));
                }
                Ok(Top(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The reader's verdict, as rulepack configures it: the mapping, or the error's message and
/// byte offset in the original file (a blanked text keeps every offset).
fn read(text: &str, sources: &SourceMap, file: FileId) -> Result<Top, (String, usize)> {
    rulepack::load::yaml::parse_text::<Top>(text, sources, file)
        .map_err(|d| (d.message.clone(), d.span.map_or(usize::MAX, |s| s.start)))
}

const KEYS: &[&str] = &["name", "title", "status", "a_b", "x1", "description"];

/// Values of an ordinary key: each starts right after `key:`. The scan follows these.
const VALUES: &[&str] = &[
    " plain value",
    " plain with # comment",
    " \"double # not a comment: \\\" [ {\"",
    " 'single ''quoted'' [ {'",
    " \"over\n  tests: not a key\n  lines\"",
    " 'over\n  tests: no'",
    " {a: 1,\n  tests: 2}",
    " [1, \"]\", '[', {b: \"}\"}]",
    " {\"a\":\"b\",\"c\":[1,2]}",
    " |\n  tests: in a literal\n  \"quote [ {\n",
    " >-\n  folded\n\n  more [ \" '\n",
    " |\n tests: shallow\n",
    " |+\n  kept\n\n",
    "\n  tests: nested\n  b: [x]",
    "\n- item\n- \"two\n  lines\"",
    "\n  - tests: in a list",
    "",
    " plain\n  continued",
    " x: y",
];

/// Values the scan gives up on (or that are broken), for an ordinary key.
const GIVE_UP_VALUES: &[&str] = &[
    " \"to column 0\ntests: inside a quote\"",
    " {a: 1,\ntests: 2}",
    " |2\n   tests: x\n",
    " &anchor value",
    " *anchor",
    " *ev",
    " !!str tagged",
    " \"unterminated",
    " [unclosed",
];

/// Values of the `tests` key.
const TEST_VALUES: &[&str] = &[
    "\n  - name: t\n    expect: match\n    event: {a: \"x\", b: [1, 2]}",
    "\n- name: t\n  event:\n    k: \"v # x\"\n    l: '['",
    "\n  - name: t\n    event: {a: [1, 2}",
    "\n  - |\n    tests: x\n    status: y",
    "\n  - >\n    [ { \"\n  - 'x\n    y'",
    " []",
    " [\n  1,\n  2]",
    "\n  - name: t\n    event: {\"a\":\"b]\",\"c\":[{\"d\":\"}\"}]}",
    "\n  - name: t\n    event:\n      a: 'it''s # fine'\n  # comment\n# column-0 comment\n  - name: u",
    " # comment\n  - x",
    "\n  - a: \"b\n  c\"",
    "\n  - &ev {a: 1}\n  - *ev\n  - !!map {b: *ev}",
    "\n  - name: t\n    event: {a: [1, 2}",
];

/// Values of the `tests` key that the scan gives up on, or that are broken.
const GIVE_UP_TEST_VALUES: &[&str] = &["\n  - name: \"unterminated\n", " [\n1]", "\n\t- tab"];

/// Lines between entries.
const BETWEEN: &[&str] = &["", "# tests: commented\n", "\n", "  # indented\n", "   \n"];

/// Key spellings that may or may not be the top-level `tests` key, besides `tests`.
const TESTS_KEYS: &[&str] = &["tests ", "\"tests\"", "'tests'", "testsx"];

/// One of `items`.
fn one(rng: &mut Rng, items: &[&'static str]) -> &'static str {
    items[rng.below(items.len())]
}

fn document(rng: &mut Rng) -> String {
    let mut doc = String::new();
    if rng.below(20) == 0 {
        doc.push_str(one(rng, &["---\n", "%YAML 1.2\n---\n", "# header\n"]));
    }
    let entries = 1 + rng.below(6);
    let tests_at = rng.below(entries + 1);
    for i in 0..=entries {
        doc.push_str(one(rng, BETWEEN));
        if i == tests_at || rng.below(40) == 0 {
            doc.push_str(if rng.below(6) == 0 {
                one(rng, TESTS_KEYS)
            } else {
                "tests"
            });
            doc.push(':');
            doc.push_str(if rng.below(10) == 0 {
                one(rng, GIVE_UP_TEST_VALUES)
            } else {
                one(rng, TEST_VALUES)
            });
        } else {
            doc.push_str(one(rng, KEYS));
            doc.push(':');
            let values = if rng.below(12) == 0 {
                GIVE_UP_VALUES
            } else {
                VALUES
            };
            let mut value = one(rng, values).to_string();
            if rng.below(4) == 0 && !value.is_empty() {
                // Characters that break byte slicing, inside a value.
                let at = value
                    .char_indices()
                    .map(|(i, _)| i)
                    .nth(1 + rng.below(value.chars().count().max(2) - 1))
                    .unwrap_or(value.len());
                value.insert_str(at, one(rng, NON_ASCII));
            }
            doc.push_str(&value);
        }
        doc.push('\n');
    }
    if rng.below(20) == 0 {
        doc.push_str(one(rng, &["...\n", "---\nb: 1\n", "\u{feff}c: 1\n"]));
    }
    match rng.below(16) {
        0 => doc.replace('\n', "\r\n"),
        1 => {
            // One line break made a lone CR (or NEL), which the reader may take as a break.
            let lines: Vec<&str> = doc.split('\n').collect();
            let k = rng.below(lines.len().max(2) - 1);
            let sep = one(rng, &["\r", "\u{85}"]);
            let (a, b) = lines.split_at(k + 1);
            format!("{}{sep}{}", a.join("\n"), b.join("\n"))
        }
        _ => doc,
    }
}

/// What one case showed: whether the locator named a section.
fn check(text: &str) -> bool {
    let mut sources = SourceMap::default();
    let file = sources.add(Path::new("rule.yml"), text.to_string());
    let located = section(text);
    let full = read(text, &sources, file);
    let Some((s, e)) = located else {
        assert_eq!(blank(text), text, "nothing is blanked without a section");
        assert_eq!(rule_part(text), (text.into(), None), "nor cut");
        return false;
    };
    let line_of = |at: usize| text[..at].matches('\n').count();
    assert!(s == 0 || text.as_bytes()[s - 1] == b'\n', "starts a line");
    assert!(
        e == text.len() || text.as_bytes()[e - 1] == b'\n',
        "ends a line"
    );
    let blanked = blank(text);
    assert_eq!(blanked.len(), text.len());
    let without = read(&blanked, &sources, file);
    // What build reads: tests that come last are cut off, and that reads as the blanked text.
    let (part, last) = rule_part(text);
    assert_eq!(
        last,
        (e == text.len()).then_some(s),
        "where cut tests start"
    );
    assert_eq!(part.len(), if e == text.len() { s } else { text.len() });
    assert_eq!(read(&part, &sources, file), without, "cut reads as blanked");
    match full {
        Ok(Top(keys)) => {
            let at: Vec<usize> = keys.iter().map(|k| k.1).collect();
            let tests: Vec<usize> = (0..keys.len()).filter(|&i| keys[i].0 == "tests").collect();
            assert_eq!(tests.len(), 1, "one top-level tests key");
            let t = tests[0];
            assert_eq!(at[t], s, "the reader's tests key starts the section");
            match at.get(t + 1) {
                Some(&next) => assert_eq!(line_of(next), line_of(e), "the next key ends it"),
                None => assert_eq!(e, text.len(), "the section runs to the end"),
            }
            let mut rest = keys;
            rest.remove(t);
            assert_eq!(without, Ok(Top(rest)), "blanked, the rest reads the same");
        }
        // An error at the end of a file whose tests come last is the tests' (an unclosed
        // bracket in them, or a budget they exhaust).
        Err((message, at)) if at < s || (at >= e && e < text.len()) => {
            assert_eq!(
                without,
                Err((message, at)),
                "an error outside the section stays"
            );
        }
        Err((_, _)) => {
            if let Err((_, at)) = without {
                assert!(at >= e, "blanked, no error inside the section (at {at})");
            }
        }
    }
    true
}

#[test]
fn the_locator_agrees_with_the_reader_or_gives_up() {
    let n = fuzz::cases(3000);
    let mut rng = Rng(0x7e57_5ec7_10a7_0001);
    let mut located = 0;
    for case in 0..n {
        let text = document(&mut rng);
        let what = format!("case {case}: {text:?}");
        let label = what.clone();
        if fuzz::within(std::time::Duration::from_secs(10), &label, move || {
            std::panic::catch_unwind(|| check(&text))
                .unwrap_or_else(|_| panic!("disagreement in {what}"))
        }) {
            located += 1;
        }
    }
    eprintln!("located {located} of {n} sections");
    // The generator puts a plain `tests:` key in most documents: a locator that always gave
    // up would pass the checks above and help no one.
    assert!(located * 4 >= n, "located only {located} of {n} sections");
}

#[test]
fn every_shipped_rule_is_located_and_reads_the_same_without_tests() {
    let rules = rulepack::load::rule_files(&common::repo().join("rules")).unwrap();
    assert!(rules.len() >= 10);
    for path in rules {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(section(&text).is_some(), "{} not located", path.display());
        assert!(check(&text));
        assert!(
            check(&text.replace('\n', "\r\n")),
            "{} with CRLF",
            path.display()
        );
    }
}

#[test]
fn plain_shapes_are_located() {
    for text in [
        "name: a\ntests:\n  - name: t\n    event: {a: \"x # y\"}\nstatus: b\n",
        "tests:\n- name: t\n  event:\n    a: |\n      tests: x\nname: a\n",
        "description: >-\n  \"quoted\n  [bracket\ntests: # c\n  - 'x'\n",
        "name: a\r\ntests:\r\n  - n: 1\r\n",
    ] {
        assert!(section(text).is_some(), "{text:?}");
        assert!(check(text), "{text:?}");
    }
}
