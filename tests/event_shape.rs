//! Test events are checked against the log source's `record` shape (issue 11, item 6): an
//! unknown key or a value of the wrong type is an error at the key with "did you mean"; a
//! no_match record without an activity is refused; `test`/`stable` rules need both verdicts.
//! The property tests mutate every key and value of a real record and expect the diagnostic at
//! the mutated key. Cases: RULEPACK_FUZZ_CASES (default 200).

mod common;

use common::fuzz::{Rng, cases};
use rulepack::diag::Diagnostic;
use rulepack::source::SourceMap;
use rulepack::{TestEvents, check_unlocked};
use serde_json::{Value, json};

/// guest_invited up to its tests, so every generated file is a valid rule but for its tests.
fn header() -> String {
    let text = std::fs::read_to_string(common::repo().join("rules/guest_invited.yml")).unwrap();
    text[..text.find("\ntests:\n").unwrap()].to_string()
}

/// The real invite of guest_invited's first test.
fn real_event() -> Value {
    let text = std::fs::read_to_string(common::repo().join("rules/guest_invited.yml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("event: {\"id\""))
        .unwrap();
    serde_json::from_str(line.trim_start().trim_start_matches("event: ")).unwrap()
}

fn rule(status: &str, tests: &[(&str, &Value)]) -> String {
    let mut s = header().replace("status: experimental", &format!("status: {status}"));
    s.push_str("\ntests:\n");
    for (i, (expect, event)) in tests.iter().enumerate() {
        s.push_str(&format!(
            "  - name: case {i}\n    expect: {expect}\n    event: {event}\n"
        ));
    }
    s
}

/// `check` with events kept; the diagnostics, or none, and the file's text.
fn diagnose(text: &str) -> (Vec<Diagnostic>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rule.yml"), text).unwrap();
    let mut sources = SourceMap::default();
    let diags = check_unlocked(&common::paths(dir.path()), &mut sources, TestEvents::Keep)
        .err()
        .unwrap_or_default();
    (diags, text.to_string())
}

fn near_miss() -> Value {
    let mut e = real_event();
    e["result"] = json!("failure");
    e
}

/// The text a diagnostic underlines.
fn underlined<'a>(d: &Diagnostic, text: &'a str) -> &'a str {
    let s = d.span.expect("diagnostic has a position");
    &text[s.start..s.end]
}

#[test]
fn misspelt_key_is_an_error_at_the_key_with_a_suggestion() {
    let mut e = real_event();
    let v = e
        .as_object_mut()
        .unwrap()
        .remove("activityDisplayName")
        .unwrap();
    e["activityDisplayname"] = v;
    let (diags, text) = diagnose(&rule(
        "experimental",
        &[("match", &real_event()), ("no_match", &e)],
    ));
    let d = diags
        .iter()
        .find(|d| d.message.contains("`activityDisplayname`"))
        .unwrap_or_else(|| panic!("no diagnostic for the key: {diags:?}"));
    assert_eq!(d.code.as_str(), "R070");
    assert!(d.is_error());
    assert_eq!(underlined(d, &text), "\"activityDisplayname\"");
    assert_eq!(
        d.help.as_deref(),
        Some("did you mean `activityDisplayName`?")
    );
    // Without its activity the no_match record proves nothing: refused too.
    assert!(
        diags
            .iter()
            .any(|d| d.message.contains("has no `activity`")),
        "{diags:?}"
    );
}

#[test]
fn object_where_an_array_belongs_is_an_error_at_the_key() {
    let mut e = real_event();
    e["targetResources"] = e["targetResources"][0].clone();
    let (diags, text) = diagnose(&rule(
        "experimental",
        &[("match", &e), ("no_match", &near_miss())],
    ));
    let d = diags
        .iter()
        .find(|d| {
            d.message
                .contains("`targetResources` is an object, not an array")
        })
        .unwrap_or_else(|| panic!("{diags:?}"));
    assert_eq!(underlined(d, &text), "\"targetResources\"");
}

#[test]
fn no_match_record_without_an_activity_is_refused() {
    let mut e = near_miss();
    e["activityDisplayName"] = Value::Null;
    let (diags, text) = diagnose(&rule(
        "experimental",
        &[("match", &real_event()), ("no_match", &e)],
    ));
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(diags[0].message.contains("has no `activity`"));
    assert!(
        diags[0]
            .help
            .as_deref()
            .unwrap()
            .contains("activity it must not be mistaken for")
    );
    assert!(underlined(&diags[0], &text).starts_with('{'));
    // A match record may lack it (then it fails its test, which `rulepack test` reports).
    let (diags, _) = diagnose(&rule(
        "experimental",
        &[("match", &e), ("no_match", &near_miss())],
    ));
    assert!(
        !diags
            .iter()
            .any(|d| d.message.contains("has no `activity`")),
        "{diags:?}"
    );
}

#[test]
fn test_and_stable_rules_need_both_verdicts_experimental_is_warned() {
    let real = real_event();
    let miss = near_miss();
    for status in ["test", "stable"] {
        for (tests, missing) in [
            (vec![("match", &real)], "no_match"),
            (vec![("no_match", &miss)], "match"),
        ] {
            let (diags, text) = diagnose(&rule(status, &tests));
            assert_eq!(diags.len(), 1, "{status}: {diags:?}");
            assert!(diags[0].is_error());
            assert!(
                diags[0].message.ends_with(&format!("has no {missing}")),
                "{diags:?}"
            );
            assert_eq!(underlined(&diags[0], &text), status);
        }
        let (diags, _) = diagnose(&rule(status, &[("match", &real), ("no_match", &miss)]));
        assert!(diags.is_empty(), "{diags:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rule.yml"),
        rule("experimental", &[("match", &real)]),
    )
    .unwrap();
    let compiled = common::compile_dir(dir.path());
    let w: Vec<_> = compiled
        .warnings
        .iter()
        .filter(|w| w.code.as_str() == "R070")
        .collect();
    assert_eq!(w.len(), 1, "{:?}", compiled.warnings);
    assert!(!w[0].is_error());
    assert!(w[0].message.contains("has no no_match test"));
}

/// Every key of the record, as a path of keys and indices.
fn key_paths(v: &Value, path: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                path.push(json!(k));
                out.push(path.clone());
                key_paths(x, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(json!(i));
                key_paths(x, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn parent_mut<'a>(root: &'a mut Value, path: &[Value]) -> &'a mut Value {
    let mut at = root;
    for step in &path[..path.len() - 1] {
        at = match step {
            Value::String(k) => &mut at[k.as_str()],
            Value::Number(i) => &mut at[i.as_u64().unwrap() as usize],
            _ => unreachable!(),
        };
    }
    at
}

/// A one-edit misspelling: a letter's case flipped, a letter dropped or doubled.
fn misspell(rng: &mut Rng, key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let i = rng.below(chars.len());
    let mut out = chars.clone();
    match rng.below(3) {
        0 if chars[i].is_ascii_alphabetic() => {
            out[i] = if chars[i].is_ascii_uppercase() {
                chars[i].to_ascii_lowercase()
            } else {
                chars[i].to_ascii_uppercase()
            };
        }
        1 if chars.len() > 3 => {
            out.remove(i);
        }
        _ => out.insert(i, chars[i]),
    }
    out.into_iter().collect()
}

#[test]
fn property_every_misspelt_key_is_found_at_its_position() {
    let real = real_event();
    let mut paths = Vec::new();
    key_paths(&real, &mut Vec::new(), &mut paths);
    let mut rng = Rng(0x5eed_e7e7);
    for case in 0..cases(200) {
        let path = rng.pick(&paths).clone();
        let key = path.last().unwrap().as_str().unwrap().to_string();
        let wrong = misspell(&mut rng, &key);
        let mut e = real.clone();
        let parent = parent_mut(&mut e, &path).as_object_mut().unwrap();
        if parent.contains_key(&wrong) {
            continue;
        }
        let v = parent.remove(&key).unwrap();
        parent.insert(wrong.clone(), v);
        let text = rule("experimental", &[("match", &e), ("no_match", &near_miss())]);
        if text.matches(&format!("\"{wrong}\"")).count() != 1 {
            continue;
        }
        let (diags, text) = diagnose(&text);
        let d = diags
            .iter()
            .find(|d| {
                d.message.contains(&format!("`{wrong}` is not in"))
                    || d.message.ends_with(&format!(
                        ".{wrong}` is not in a Graph directoryAudit record"
                    ))
            })
            .unwrap_or_else(|| panic!("case {case}: {key} -> {wrong}: {diags:?}"));
        assert_eq!(underlined(d, &text), format!("\"{wrong}\""), "case {case}");
        assert_eq!(
            d.help.as_deref(),
            Some(format!("did you mean `{key}`?").as_str()),
            "case {case}: {key} -> {wrong}"
        );
    }
}

#[test]
fn property_every_value_of_the_wrong_type_is_an_error_at_its_key() {
    let real = real_event();
    let mut paths = Vec::new();
    key_paths(&real, &mut Vec::new(), &mut paths);
    // Keys whose content the Graph schema leaves open (`any`) take any type.
    let open = [
        "performedBy",
        "linkableIdentifiers",
        "roles",
        "administrativeUnits",
    ];
    paths.retain(|p| !p.iter().any(|s| open.contains(&s.as_str().unwrap_or(""))));
    let mut rng = Rng(0x7e57_7e57);
    for case in 0..cases(200) {
        let path = rng.pick(&paths).clone();
        let key = path.last().unwrap().as_str().unwrap().to_string();
        let mut e = real.clone();
        let slot = &mut parent_mut(&mut e, &path)[key.as_str()];
        let (wrong, kind) = match slot {
            Value::Null => continue,
            Value::Array(_) => (json!({"key": "v"}), "an object, not an array"),
            Value::Object(_) => (json!("text"), "a string, not an object"),
            _ => (json!([1]), "an array, not a string"),
        };
        *slot = wrong;
        let (diags, text) = diagnose(&rule(
            "experimental",
            &[("match", &e), ("no_match", &near_miss())],
        ));
        let d = diags
            .iter()
            .find(|d| d.message.contains(kind))
            .unwrap_or_else(|| panic!("case {case}: {path:?}: {diags:?}"));
        assert_eq!(underlined(d, &text), format!("\"{key}\""), "case {case}");
    }
}
