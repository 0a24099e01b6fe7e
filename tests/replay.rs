//! `rulepack replay` end to end: the pack's own test events replay to the verdicts the reference
//! evaluator gives, the three export shapes give the same hits, bad records are counted with their
//! position and never stop the run, arrays stream, and the output is the same on every run.

use rulepack::eval::{Evaluator, Stages};
use rulepack::lower::lower;
use rulepack::model::Rule;
use rulepack::replay::{self, Options, Pack};
use rulepack::source::SourceMap;
use rulepack::taxonomy::LogSource;
use rulepack::{Paths, TestEvents, check_unlocked};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pack() -> (Vec<Rule>, Vec<LogSource>) {
    let mut sources = SourceMap::default();
    let paths = Paths {
        rules: repo().join("rules"),
        templates: rulepack::templates::Templates::default(),
        manifest: rulepack::manifest::load(&repo(), &mut sources).expect("rulepack.yml"),
        backends: Vec::new(),
    };
    match check_unlocked(&paths, &mut sources, TestEvents::Keep) {
        Ok(p) => p,
        Err(d) => panic!("the pack does not load: {} problems", d.len()),
    }
}

fn write_lines(path: &Path, records: &[Value]) {
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// Runs the CLI; returns (stdout lines as JSON, stderr).
fn cli(args: &[&str]) -> (Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .current_dir(repo())
        .arg("replay")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "replay failed: {stderr}");
    let hits = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (hits, stderr)
}

/// The hits without the file name, for comparing runs over different files.
fn strip_file(hits: &[Value]) -> Vec<Value> {
    hits.iter()
        .map(|h| {
            let mut h = h.clone();
            h.as_object_mut().unwrap().remove("file");
            h
        })
        .collect()
}

#[test]
fn pack_test_events_replay_to_the_evaluators_verdicts() {
    let (rules, logsources) = pack();
    let pack = Pack::new(&rules, &logsources);
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for rule in &rules {
        for (n, t) in rule.tests.iter().enumerate() {
            let file = dir.path().join(format!("{}_{n}.jsonl", rule.name.0));
            write_lines(&file, &t.events);
            let mut out = Vec::new();
            let summary = replay::run(
                &pack,
                std::slice::from_ref(&file),
                &Options::default(),
                &mut out,
            )
            .unwrap();
            assert_eq!(summary.skipped_total(), 0, "{}: {}", rule.name.0, t.name);
            assert_eq!(summary.records, t.events.len() as u64);
            let hits: Vec<Value> = String::from_utf8(out)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            // The rule under test: a hit exactly when its test expects a match.
            let own = hits.iter().filter(|h| h["rule"] == rule.name.0).count();
            assert_eq!(
                own > 0,
                t.expect_match,
                "{}: test `{}` expects {}, replay found {own} hits",
                rule.name.0,
                t.name,
                if t.expect_match {
                    "a match"
                } else {
                    "no match"
                }
            );
            // Every rule of the pack: the same records as the reference evaluator.
            for other in &rules {
                let ls = logsources
                    .iter()
                    .find(|l| l.name == other.logsource)
                    .unwrap();
                let eval = Evaluator::new(ls);
                let mut got: Vec<u64> = hits
                    .iter()
                    .filter(|h| h["rule"] == other.name.0)
                    .map(|h| h["record"].as_u64().unwrap())
                    .collect();
                if let Some(c) = other.correlation() {
                    // An absence reports a record when its window closes, later in the output.
                    let stages = Stages::new(c, &rules, ls).unwrap();
                    let want: Vec<u64> = eval
                        .correlate(&stages, &t.events)
                        .into_iter()
                        .map(|i| i as u64)
                        .collect();
                    got.sort_unstable();
                    assert_eq!(
                        got, want,
                        "{} on the events of {}: {}",
                        other.name.0, rule.name.0, t.name
                    );
                    continue;
                }
                let cond = lower(other.condition().unwrap(), ls);
                if other.aggregation().is_some() {
                    assert_eq!(
                        !got.is_empty(),
                        eval.fires(other, &cond, &t.events),
                        "{} on the events of {}: {}",
                        other.name.0,
                        rule.name.0,
                        t.name
                    );
                    assert!(got.len() <= 1 || t.events.len() > 1);
                } else {
                    let want: Vec<u64> = t
                        .events
                        .iter()
                        .enumerate()
                        .filter(|(_, e)| eval.matches(&cond, e))
                        .map(|(i, _)| i as u64)
                        .collect();
                    assert_eq!(
                        got, want,
                        "{} on the events of {}: {}",
                        other.name.0, rule.name.0, t.name
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 0);
}

/// Shape B: the diagnostic-settings envelope around the Graph record.
fn diagnostic(graph: &Value) -> Value {
    json!({
        "time": graph["activityDateTime"],
        "resourceId": "/tenants/0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0/providers/Microsoft.aadiam",
        "operationName": graph["activityDisplayName"],
        "operationVersion": "1.0",
        "category": "AuditLogs",
        "tenantId": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
        "resultSignature": "None",
        "durationMs": 0,
        "correlationId": graph["correlationId"],
        "Level": 4,
        "properties": graph,
    })
}

/// Shape C: a Log Analytics AuditLogs row; `dynamic` columns as objects or as JSON text.
fn log_analytics(graph: &Value, dynamic_as_text: bool) -> Value {
    let dynamic = |v: &Value| {
        if dynamic_as_text && !v.is_null() {
            Value::String(v.to_string())
        } else {
            v.clone()
        }
    };
    let g = |k: &str| graph.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "TenantId": "a1b2c3d4-0000-4000-8000-000000000000",
        "SourceSystem": "Azure AD",
        "TimeGenerated": g("activityDateTime"),
        "ResourceId": "/tenants/0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0/providers/Microsoft.aadiam",
        "OperationName": g("activityDisplayName"),
        "OperationVersion": "1.0",
        "Category": g("category"),
        "ResultType": "",
        "CorrelationId": g("correlationId"),
        "Identity": "",
        "Level": "4",
        "AdditionalDetails": dynamic(&g("additionalDetails")),
        "Id": g("id"),
        "InitiatedBy": dynamic(&g("initiatedBy")),
        "LoggedByService": g("loggedByService"),
        "Result": g("result"),
        "ResultReason": g("resultReason"),
        "TargetResources": dynamic(&g("targetResources")),
        "AADTenantId": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
        "ActivityDisplayName": g("activityDisplayName"),
        "ActivityDateTime": g("activityDateTime"),
        "AADOperationType": g("operationType"),
        "Type": "AuditLogs",
    })
}

/// Every test event of the single-record rules, in rule and test order (aggregations' and
/// correlations' tests are re-timed series that would count and pair across tests).
fn all_events(rules: &[Rule]) -> Vec<Value> {
    rules
        .iter()
        .filter(|r| r.aggregation().is_none() && r.correlation().is_none())
        .flat_map(|r| &r.tests)
        .flat_map(|t| t.events.iter().cloned())
        .collect()
}

#[test]
fn the_three_shapes_give_the_same_hits() {
    let (rules, _) = pack();
    let graph = all_events(&rules);
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, records: Vec<Value>| {
        let p = dir.path().join(name);
        write_lines(&p, &records);
        p.display().to_string()
    };
    let a = file("a.jsonl", graph.clone());
    let b = file("b.jsonl", graph.iter().map(diagnostic).collect());
    let c = file(
        "c.jsonl",
        graph.iter().map(|g| log_analytics(g, false)).collect(),
    );
    let c_text = file(
        "c_text.jsonl",
        graph.iter().map(|g| log_analytics(g, true)).collect(),
    );
    let (want, _) = cli(&["--events", &a]);
    assert!(
        want.len()
            >= rules
                .iter()
                .filter(|r| r.aggregation().is_none() && r.correlation().is_none())
                .count(),
        "every rule should hit at least its own match tests: {} hits",
        want.len()
    );
    let want = strip_file(&want);
    for (path, forced) in [
        (&b, "diagnostic"),
        (&c, "loganalytics"),
        (&c_text, "loganalytics"),
    ] {
        for format in ["auto", forced] {
            let (got, stderr) = cli(&["--events", path, "--format", format]);
            assert_eq!(strip_file(&got), want, "{path} --format {format}");
            assert!(stderr.contains(" 0 skipped"), "{stderr}");
        }
    }
    // Forcing the wrong shape skips every record, with the reason.
    let (got, stderr) = cli(&["--events", &a, "--format", "diagnostic"]);
    assert!(got.is_empty());
    assert!(
        stderr.contains(&format!("skipped: {} unknown shape", graph.len())),
        "{stderr}"
    );
}

#[test]
fn bad_records_are_counted_with_their_position_and_the_run_goes_on() {
    let (rules, _) = pack();
    let event = rules
        .iter()
        .filter(|r| r.aggregation().is_none())
        .flat_map(|r| &r.tests)
        .find(|t| t.expect_match && t.events.len() == 1)
        .map(|t| t.events[0].clone())
        .expect("a single-event match test");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    let text = format!(
        "{event}\n42\n\"just text\"\n{{\"activityDisplayName\": \"Invite external user\", \"targetResources\": [\n\n{{\"unrelated\": true}}\n{event}\n"
    );
    std::fs::write(&path, text).unwrap();
    let p = path.display().to_string();
    let (hits, stderr) = cli(&["--events", &p]);
    let records: Vec<u64> = hits.iter().map(|h| h["record"].as_u64().unwrap()).collect();
    assert!(records.contains(&0) && records.contains(&5), "{hits:?}");
    assert!(records.iter().all(|r| *r == 0 || *r == 5), "{hits:?}");
    for want in [
        "replay: 6 records read from 1 file, 2 evaluated, 4 skipped",
        "skipped: 1 malformed JSON",
        "skipped: 2 not an object",
        "skipped: 1 unknown shape",
        &format!("skipped: {p}: record 1 (line 2): not an object: a JSON number"),
        &format!("skipped: {p}: record 2 (line 3): not an object: a JSON string"),
        // A truncated line ends where the next line starts with `{`.
        &format!("skipped: {p}: record 3 (line 4): malformed JSON: EOF while parsing a list"),
        &format!("skipped: {p}: record 4 (line 6): unknown shape"),
    ] {
        assert!(stderr.contains(want), "missing `{want}` in:\n{stderr}");
    }
}

#[test]
fn a_json_array_and_an_envelope_stream_like_lines() {
    let (rules, _) = pack();
    let graph = all_events(&rules);
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("a.jsonl");
    write_lines(&lines, &graph);
    let array = dir.path().join("a.json");
    std::fs::write(
        &array,
        serde_json::to_string_pretty(&Value::Array(graph.clone())).unwrap(),
    )
    .unwrap();
    // An Event Hub message: diagnostic records under `records`.
    let hub = dir.path().join("hub.json");
    std::fs::write(
        &hub,
        json!({ "records": graph.iter().map(diagnostic).collect::<Vec<_>>() }).to_string(),
    )
    .unwrap();
    let (want, _) = cli(&["--events", &lines.display().to_string()]);
    assert!(!want.is_empty());
    for p in [&array, &hub] {
        let (got, stderr) = cli(&["--events", &p.display().to_string()]);
        assert_eq!(strip_file(&got), strip_file(&want), "{}", p.display());
        assert!(
            stderr.contains(&format!("replay: {} records read", graph.len())),
            "{stderr}"
        );
    }
}

#[test]
fn output_is_the_same_on_every_run_and_with_any_number_of_workers() {
    let (rules, _) = pack();
    let graph = all_events(&rules);
    // Enough records for many batches, so that workers finish out of order.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.jsonl");
    let records: Vec<Value> = (0..6000).map(|i| graph[i % graph.len()].clone()).collect();
    write_lines(&path, &records);
    let p = path.display().to_string();
    let (first, _) = cli(&["--events", &p, "--workers", "4"]);
    assert!(first.len() > 1000, "{} hits", first.len());
    let indices: Vec<u64> = first
        .iter()
        .map(|h| h["record"].as_u64().unwrap())
        .collect();
    assert!(
        indices.windows(2).all(|w| w[0] <= w[1]),
        "hits in record order"
    );
    for workers in ["4", "1", "2"] {
        let (again, _) = cli(&["--events", &p, "--workers", workers]);
        assert_eq!(again, first, "--workers {workers}");
    }
}

#[test]
fn a_closed_output_is_a_quiet_success() {
    let (rules, _) = pack();
    let graph = all_events(&rules);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.jsonl");
    let records: Vec<Value> = (0..20000).map(|i| graph[i % graph.len()].clone()).collect();
    write_lines(&path, &records);
    let mut child = Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .current_dir(repo())
        .args(["replay", "--events"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The pipe is closed here, as `| head -1` would.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(first.starts_with("{\"rule_id\""), "{first}");
}

#[test]
fn several_values_on_a_line_and_pretty_printed_values_are_records() {
    let (rules, _) = pack();
    let graph = all_events(&rules);
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("a.jsonl");
    write_lines(&lines, &graph);
    // Pairs of records on one line, then every record pretty-printed, one after another.
    let mut text = String::new();
    for pair in graph.chunks(2) {
        let line: Vec<String> = pair.iter().map(Value::to_string).collect();
        text.push_str(&line.join(" "));
        text.push('\n');
    }
    for g in &graph {
        text.push_str(&serde_json::to_string_pretty(g).unwrap());
        text.push('\n');
    }
    let mixed = dir.path().join("mixed.json");
    std::fs::write(&mixed, text).unwrap();
    // Correlations pair records across the two copies (the stream goes back in time at the
    // second copy), so only single-record rules must repeat their hits exactly.
    let single = |hits: Vec<Value>| -> Vec<Value> {
        hits.into_iter()
            .filter(|h| {
                rules
                    .iter()
                    .any(|r| r.name.0 == h["rule"] && r.correlation().is_none())
            })
            .collect()
    };
    let (want, _) = cli(&["--events", &lines.display().to_string()]);
    let (got, stderr) = cli(&["--events", &mixed.display().to_string()]);
    let (want, got) = (single(want), single(got));
    assert!(
        stderr.contains(&format!("{} records read", 2 * graph.len())),
        "{stderr}"
    );
    let n = graph.len() as u64;
    let second: Vec<Value> = got
        .iter()
        .filter(|h| h["record"].as_u64().unwrap() >= n)
        .map(|h| {
            let mut h = h.clone();
            h["record"] = json!(h["record"].as_u64().unwrap() - n);
            h
        })
        .collect();
    assert_eq!(got.len(), 2 * want.len());
    assert_eq!(strip_file(&second), strip_file(&want));
}
