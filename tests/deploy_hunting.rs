//! Gates the Sentinel hunting queries of the built pack (the rules whose kind
//! templates/sentinel/fields.yml lists in `hunting_kinds`): the Azure-Sentinel `Hunting Queries/`
//! YAML against the project's JSON Schema of that form, the query through Kusto.Language (it
//! parses and binds against AuditLogs, and returns the columns the entity mappings name), the
//! query without run bounds, and the ARM resource, a Log Analytics saved search, against the
//! project's JSON Schema of the API's SavedSearchProperties plus the fields Sentinel's Hunting
//! blade reads (category, tags description / tactics / techniques), cross-checked against the
//! YAML. Each gate also gets a deliberately broken artifact it must reject.
//!
//! The validators live in `.tools/` (scripts/setup-validators); missing tools fail the tests.

mod common;

use common::{repo, report, run};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const YAML_SCHEMA: &str = "tools/sentinel/hunting-query-yaml.schema.json";
const ARM_SCHEMA: &str = "tools/sentinel/hunting-saved-search-arm.schema.json";

fn tool(path: &str) -> PathBuf {
    let p = repo().join(".tools").join(path);
    assert!(
        p.exists(),
        "validator missing: {}\nRun scripts/test (it calls scripts/setup-validators).",
        p.display()
    );
    p
}

fn check_jsonschema(schema: &str, files: &[PathBuf]) -> Output {
    run(Command::new(tool("check-jsonschema/bin/check-jsonschema"))
        .arg("--schemafile")
        .arg(repo().join(schema))
        .args(files))
}

/// Kusto.Language over `files`: its output (diagnostics, then one JSON line of result columns
/// per file).
fn check_kql(files: &[PathBuf]) -> Output {
    run(Command::new("node")
        .arg(repo().join("tools/kql/check-kql.js"))
        .arg("--modules")
        .arg(tool("kql/node_modules"))
        .arg("--columns")
        .args(files))
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The pack built by the binary into `dir/out`.
fn build(dir: &Path) -> PathBuf {
    let out = run(Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .arg("build")
        .arg("--rules")
        .arg(repo().join("rules"))
        .arg("--out")
        .arg(dir.join("out")));
    assert!(out.status.success(), "{}", report("rulepack build", &out));
    dir.join("out/sentinel")
}

/// The rules Sentinel ships as hunting queries; the pack has at least one, so every gate below
/// runs on a real file.
fn hunting() -> Vec<String> {
    let names = common::hunting("sentinel");
    assert!(
        !names.is_empty(),
        "the pack ships no Sentinel hunting query"
    );
    names
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// The value of tag `name` in a saved search's tags.
fn tag<'a>(props: &'a Value, name: &str) -> Option<&'a str> {
    props["tags"]
        .as_array()?
        .iter()
        .find(|t| t["name"] == name)?["value"]
        .as_str()
}

/// A saved search resource against its hunting YAML: what no schema can say.
fn resource_problems(res: &Value, yaml: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let id = yaml["id"].as_str().unwrap_or_default();
    let literal = |v: &Value| match v.as_str() {
        Some(s) if s.starts_with('[') && s.ends_with(']') => Value::from(format!("[{s}")),
        _ => v.clone(),
    };
    let props = &res["properties"];
    let mut parents: Vec<String> = Vec::new();
    for t in strs(&yaml["relevantTechniques"]) {
        let parent = t[..t.len().min(5)].to_string();
        if !parents.contains(&parent) {
            parents.push(parent);
        }
    }
    let expected = [
        (
            "name",
            res["name"].clone(),
            Value::from(format!("[concat(parameters('workspace'),'/{id}')]")),
        ),
        (
            "displayName",
            props["displayName"].clone(),
            literal(&yaml["name"]),
        ),
        ("query", props["query"].clone(), literal(&yaml["query"])),
        (
            "tag description",
            tag(props, "description").into(),
            literal(&yaml["description"]),
        ),
        (
            "tag tactics",
            tag(props, "tactics").into(),
            strs(&yaml["tactics"]).join(",").into(),
        ),
        (
            "tag techniques",
            tag(props, "techniques").into(),
            parents.join(",").into(),
        ),
    ];
    for (what, got, want) in expected {
        if got != want {
            p.push(format!("{what} is {got}, expected {want}"));
        }
    }
    p
}

#[test]
fn hunting_queries_pass_schemas_kusto_and_cross_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = build(tmp.path());
    let names = hunting();
    let yamls: Vec<PathBuf> = names
        .iter()
        .map(|n| dir.join(format!("{n}.yaml")))
        .collect();
    let kqls: Vec<PathBuf> = names.iter().map(|n| dir.join(format!("{n}.kql"))).collect();
    let mut failures = Vec::new();

    let schema = check_jsonschema(YAML_SCHEMA, &yamls);
    if schema.status.code() != Some(0) {
        failures.push(report("check-jsonschema (hunting YAML)", &schema));
    }
    let kusto = check_kql(&kqls);
    if kusto.status.code() != Some(0) {
        failures.push(report("check-kql (hunting queries)", &kusto));
    }
    let columns: Vec<Value> = String::from_utf8_lossy(&kusto.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();

    let pack_arm: Value = serde_json::from_str(&read(&dir.join("rulepack.arm.json"))).unwrap();
    let pack_resources = pack_arm["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut resources = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut problems = Vec::new();
        let kql = read(&kqls[i]);
        let yaml: Value = serde_saphyr::from_str(&read(&yamls[i])).unwrap();
        let deployed: String = kql
            .split_inclusive('\n')
            .filter(|l| !l.starts_with("//"))
            .collect();
        if yaml["query"].as_str() != Some(deployed.as_str()) {
            problems.push("query is not the .kql minus its // header lines".to_string());
        }
        // A person picks the time range: no run bounds of a schedule.
        for bound in ["ingestion_time()", "rp_frequency"] {
            if deployed.contains(bound) {
                problems.push(format!("the query keeps the run bound `{bound}`"));
            }
        }
        let file = kqls[i].display().to_string();
        let returned: Vec<(String, String)> = columns
            .iter()
            .find(|c| c["file"] == file.as_str())
            .and_then(|c| c["columns"].as_array())
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or_default().to_string(),
                    c["type"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        if returned.is_empty() {
            problems.push("Kusto.Language reports no result columns".to_string());
        }
        for m in yaml["entityMappings"].as_array().into_iter().flatten() {
            for f in m["fieldMappings"].as_array().into_iter().flatten() {
                let col = f["columnName"].as_str().unwrap_or_default();
                if !returned.iter().any(|(c, t)| c == col && t == "string") {
                    problems.push(format!(
                        "entity mapping column `{col}` is not a string column of the query"
                    ));
                }
            }
        }
        let arm: Value =
            serde_json::from_str(&read(&dir.join(format!("{name}.arm.json")))).unwrap();
        match arm["resources"].as_array().map(Vec::as_slice) {
            Some([res]) => {
                problems.extend(resource_problems(res, &yaml));
                if !pack_resources.contains(res) {
                    problems.push("its resource is not in rulepack.arm.json".to_string());
                }
                resources.push(res.clone());
            }
            _ => problems.push("the ARM template must hold exactly one resource".to_string()),
        }
        // No alert rule is deployed for a hunting query.
        let id = yaml["id"].as_str().unwrap_or_default();
        for r in &pack_resources {
            if r["type"] != "Microsoft.OperationalInsights/workspaces/savedSearches"
                && r["name"].as_str().is_some_and(|n| n.contains(id))
            {
                problems.push(format!(
                    "rulepack.arm.json also deploys it as {}",
                    r["type"]
                ));
            }
        }
        failures.extend(problems.into_iter().map(|m| format!("{name}: {m}")));
    }
    let files: Vec<PathBuf> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let p = tmp.path().join(format!("saved-search-{i}.json"));
            fs::write(&p, serde_json::to_string_pretty(r).unwrap()).unwrap();
            p
        })
        .collect();
    let arm = check_jsonschema(ARM_SCHEMA, &files);
    if arm.status.code() != Some(0) {
        failures.push(report("check-jsonschema (savedSearches resources)", &arm));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The gates reject what Sentinel would not take as a hunting query: an analytics-rule key in
/// the YAML, a saved search outside the "Hunting Queries" category or without its techniques
/// tag, a tag value that differs from the YAML, and a query Kusto.Language cannot parse.
#[test]
fn hunting_gates_reject_broken_artifacts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = build(tmp.path());
    let name = &hunting()[0];
    let text = read(&dir.join(format!("{name}.yaml")));
    let yaml: Value = serde_saphyr::from_str(&text).unwrap();

    let bad_yaml = tmp.path().join("bad.yaml");
    fs::write(&bad_yaml, format!("{text}queryFrequency: 1d\n")).unwrap();
    let out = check_jsonschema(YAML_SCHEMA, &[bad_yaml]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        report("hunting YAML with queryFrequency", &out)
    );

    let arm: Value = serde_json::from_str(&read(&dir.join(format!("{name}.arm.json")))).unwrap();
    let res = arm["resources"][0].clone();
    assert!(resource_problems(&res, &yaml).is_empty());
    let mut wrong_category = res.clone();
    wrong_category["properties"]["category"] = "Saved Queries".into();
    let mut no_techniques = res.clone();
    let tags = no_techniques["properties"]["tags"].as_array_mut().unwrap();
    tags.retain(|t| t["name"] != "techniques");
    for (what, bad) in [
        ("category Saved Queries", &wrong_category),
        ("no techniques tag", &no_techniques),
    ] {
        let p = tmp.path().join("bad-resource.json");
        fs::write(&p, serde_json::to_string(bad).unwrap()).unwrap();
        let out = check_jsonschema(ARM_SCHEMA, &[p]);
        assert_eq!(out.status.code(), Some(1), "{}", report(what, &out));
    }
    let mut other_tactic = res.clone();
    for t in other_tactic["properties"]["tags"].as_array_mut().unwrap() {
        if t["name"] == "tactics" {
            t["value"] = "Discovery".into();
        }
    }
    let problems = resource_problems(&other_tactic, &yaml);
    assert!(
        problems.iter().any(|p| p.starts_with("tag tactics")),
        "{problems:?}"
    );

    let kql = read(&dir.join(format!("{name}.kql")));
    let broken = tmp.path().join("broken.kql");
    fs::write(
        &broken,
        kql.replace("| where rp_followed == 0", "| where rp_followed =="),
    )
    .unwrap();
    let out = check_kql(&[broken]);
    assert_eq!(out.status.code(), Some(1), "{}", report("broken KQL", &out));
}
