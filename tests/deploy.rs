//! Gates the deployment artifacts of the built pack: the Azure-Sentinel repository YAML against
//! the project's JSON Schema of it, the ARM alertRules resources against Microsoft's SDK models, the Splunk app with AppInspect, slim and
//! ksconf; plus the cross-field rules no schema can express (mapped columns are columns the query
//! returns, per Kusto.Language; schedules; ARM technique ids; the parsed `search` of every
//! stanza is the rule's SPL). Every gate also gets a deliberately broken artifact it must reject.
//!
//! The validators live in `.tools/` (scripts/setup-validators); the YAML schema and the ARM script
//! are in `tools/sentinel/`. Missing tools fail the tests rather than skipping them.

mod common;

use common::{repo, report, run};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const APP_ID: &str = "rulepack_entra_guest";
/// The Azure-Sentinel repository YAML form, as JSON Schema written for this project from the
/// repository's C# validator models (cited in the schema's description).
const YAML_SCHEMA: &str = "tools/sentinel/analytics-rule-yaml.schema.json";
/// ARM alertRules resources against Microsoft's SDK models (PyPI azure-mgmt-securityinsight).
const ARM_SCRIPT: &str = "tools/sentinel/check_arm_alertrules.py";

// ---- locations and processes -------------------------------------------------------------

fn tool(venv: &str, exe: &str) -> PathBuf {
    let path = repo().join(".tools").join(venv).join("bin").join(exe);
    assert!(
        path.exists(),
        "validator missing: {}\nRun scripts/test (it calls scripts/setup-validators to install \
         the pinned validators into .tools/).",
        path.display()
    );
    path
}

fn kql_modules() -> PathBuf {
    let m = repo().join(".tools/kql/node_modules");
    assert!(
        m.join("@kusto/language-service-next/Kusto.Language.Bridge.min.js")
            .exists(),
        "validator missing: {}\nRun scripts/test (it calls scripts/setup-validators).",
        m.display()
    );
    m
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Files of `dir` (not recursive) whose name ends in `suffix`, sorted.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    found
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            fs::copy(&p, &dest).unwrap();
        }
    }
}

/// The pack built by the binary into a temporary folder.
struct Pack {
    tmp: tempfile::TempDir,
}

impl Pack {
    fn build() -> Pack {
        let tmp = tempfile::tempdir().expect("temp dir");
        let out = run(Command::new(env!("CARGO_BIN_EXE_rulepack"))
            .arg("build")
            .arg("--rules")
            .arg(repo().join("rules"))
            .arg("--out")
            .arg(tmp.path().join("out")));
        assert!(out.status.success(), "{}", report("rulepack build", &out));
        Pack { tmp }
    }
    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }
    fn sentinel(&self) -> PathBuf {
        self.out().join("sentinel")
    }
    fn app(&self) -> PathBuf {
        self.out().join("splunk").join(APP_ID)
    }
    /// Rule names, from the per-rule KQL files.
    fn names(&self) -> Vec<String> {
        let names: Vec<String> = files(&self.sentinel(), ".kql")
            .iter()
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(!names.is_empty(), "no rules were built");
        names
    }
    /// A scratch folder inside the build's temporary folder.
    fn scratch(&self, name: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        fs::create_dir_all(&p).unwrap();
        p
    }
}

// ---- Sentinel ------------------------------------------------------------------------------

fn check_jsonschema(files: &[PathBuf]) -> Output {
    run(Command::new(tool("check-jsonschema", "check-jsonschema"))
        .arg("--schemafile")
        .arg(repo().join(YAML_SCHEMA))
        .args(files))
}

fn validate_arm(files: &[PathBuf]) -> Output {
    run(Command::new(tool("securityinsight", "python"))
        .arg(repo().join(ARM_SCRIPT))
        .args(files))
}

/// Output columns (name, Kusto type) of each query, from Kusto.Language's result schema.
fn kql_columns(files: &[PathBuf]) -> HashMap<PathBuf, Vec<(String, String)>> {
    let out = run(Command::new("node")
        .arg(repo().join("tools/kql/check-kql.js"))
        .arg("--modules")
        .arg(kql_modules())
        .arg("--columns")
        .args(files));
    assert_eq!(out.status.code(), Some(0), "{}", report("check-kql", &out));
    let mut cols = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let file = PathBuf::from(v["file"].as_str().expect("file"));
        let list = v["columns"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: the query returns no table", file.display()))
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["type"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        cols.insert(file, list);
    }
    cols
}

/// The KQL a deployment artifact must carry: the .kql file without its `//` header lines.
fn deployed_query(kql: &str) -> String {
    kql.split_inclusive('\n')
        .filter(|l| !l.starts_with("//"))
        .collect()
}

/// `5m`, `1h`, `2d` -> minutes.
fn short_minutes(s: &str) -> Option<u64> {
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    Some(
        n * match unit {
            "m" => 1,
            "h" => 60,
            "d" => 1440,
            _ => return None,
        },
    )
}

/// `PT5M`, `PT1H`, `P1D` (what the `iso_duration` filter writes) -> minutes.
fn iso_minutes(s: &str) -> Option<u64> {
    let (n, per) = if let Some(r) = s.strip_prefix("PT") {
        match r.chars().last()? {
            'M' => (&r[..r.len() - 1], 1),
            'H' => (&r[..r.len() - 1], 60),
            _ => return None,
        }
    } else {
        let r = s.strip_prefix('P')?.strip_suffix('D')?;
        (r, 1440)
    };
    Some(n.parse::<u64>().ok()? * per)
}

/// ATT&CK (v17, the tactic set Sentinel's API knows) tactics of the parent techniques the pack
/// uses. A technique missing here fails the test: add it with its tactics from attack.mitre.org.
const TECHNIQUE_TACTICS: &[(&str, &[&str])] = &[
    (
        "T1078",
        &[
            "DefenseEvasion",
            "Persistence",
            "PrivilegeEscalation",
            "InitialAccess",
        ],
    ),
    ("T1070", &["DefenseEvasion"]),
    ("T1098", &["Persistence", "PrivilegeEscalation"]),
    ("T1136", &["Persistence"]),
    ("T1484", &["DefenseEvasion", "PrivilegeEscalation"]),
    ("T1562", &["DefenseEvasion"]),
];

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Cross-field rules of one rule's repository YAML that no schema expresses.
fn sentinel_yaml_problems(kql: &str, yaml: &Value, columns: &[(String, String)]) -> Vec<String> {
    let mut p = Vec::new();
    let query = yaml["query"].as_str().unwrap_or_default();
    if query != deployed_query(kql) {
        p.push("query is not the .kql minus its // header lines".to_string());
    }
    let len = query.encode_utf16().count();
    if !(1..=10_000).contains(&len) {
        p.push(format!(
            "query has {len} characters, Sentinel takes 1..10000"
        ));
    }
    let freq = yaml["queryFrequency"].as_str().and_then(short_minutes);
    let period = yaml["queryPeriod"].as_str().and_then(short_minutes);
    match (freq, period) {
        (Some(f), Some(q)) => {
            for (what, m) in [("queryFrequency", f), ("queryPeriod", q)] {
                if !(5..=14 * 1440).contains(&m) {
                    p.push(format!("{what} is {m} minutes, outside 5m..14d"));
                }
            }
            if q < f {
                p.push(format!(
                    "queryPeriod ({q}m) is shorter than queryFrequency ({f}m)"
                ));
            }
        }
        _ => p.push("queryFrequency/queryPeriod are not <n>m|h|d".to_string()),
    }
    let tactics = strs(&yaml["tactics"]);
    for t in strs(&yaml["relevantTechniques"]) {
        let parent = &t[..t.len().min(5)];
        match TECHNIQUE_TACTICS.iter().find(|(id, _)| *id == parent) {
            None => p.push(format!(
                "technique {t}: no tactics known, add {parent} to TECHNIQUE_TACTICS"
            )),
            Some((_, ts)) if !ts.iter().any(|x| tactics.iter().any(|y| y == x)) => p.push(format!(
                "technique {t} has none of its tactics {ts:?} in {tactics:?}"
            )),
            _ => {}
        }
    }
    let column = |name: &str| columns.iter().find(|(c, _)| c == name);
    for m in yaml["entityMappings"].as_array().into_iter().flatten() {
        for f in m["fieldMappings"].as_array().into_iter().flatten() {
            let name = f["columnName"].as_str().unwrap_or_default();
            match column(name) {
                None => p.push(format!(
                    "entity mapping {} column `{name}` is not returned by the query (returns {:?})",
                    m["entityType"],
                    columns.iter().map(|c| &c.0).collect::<Vec<_>>()
                )),
                Some((_, ty)) if ty != "string" => p.push(format!(
                    "entity mapping column `{name}` is {ty}, identifiers need a string"
                )),
                _ => {}
            }
        }
    }
    if let Some(details) = yaml["customDetails"].as_object() {
        for (k, v) in details {
            let name = v.as_str().unwrap_or_default();
            if column(name).is_none() {
                p.push(format!(
                    "custom detail {k} column `{name}` is not returned by the query"
                ));
            }
        }
    }
    p
}

/// One rule's ARM resource against its repository YAML (the YAML -> ARM table of
/// target-formats.md §2) and the API's own rules.
fn arm_resource_problems(res: &Value, yaml: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let id = yaml["id"].as_str().unwrap_or_default();
    let name = format!("[concat(parameters('workspace'),'/Microsoft.SecurityInsights/{id}')]");
    // ARM evaluates a string written "[...]" as an expression; "[[" keeps it literal.
    let literal = |v: &Value| match v.as_str() {
        Some(s) if s.starts_with('[') && s.ends_with(']') => Value::from(format!("[{s}")),
        _ => v.clone(),
    };
    let props = &res["properties"];
    let expected: [(&str, &Value, Value); 16] = [
        (
            "type",
            &res["type"],
            "Microsoft.OperationalInsights/workspaces/providers/alertRules".into(),
        ),
        ("apiVersion", &res["apiVersion"], "2025-09-01".into()),
        ("kind", &res["kind"], "Scheduled".into()),
        ("name", &res["name"], name.into()),
        ("displayName", &props["displayName"], literal(&yaml["name"])),
        (
            "description",
            &props["description"],
            literal(&yaml["description"]),
        ),
        ("severity", &props["severity"], yaml["severity"].clone()),
        ("query", &props["query"], literal(&yaml["query"])),
        (
            "triggerOperator",
            &props["triggerOperator"],
            "GreaterThan".into(),
        ),
        (
            "triggerThreshold",
            &props["triggerThreshold"],
            yaml["triggerThreshold"].clone(),
        ),
        ("tactics", &props["tactics"], yaml["tactics"].clone()),
        (
            "entityMappings",
            &props["entityMappings"],
            yaml["entityMappings"].clone(),
        ),
        (
            "customDetails",
            &props["customDetails"],
            yaml["customDetails"].clone(),
        ),
        (
            "templateVersion",
            &props["templateVersion"],
            yaml["version"].clone(),
        ),
        (
            "suppressionDuration",
            &props["suppressionDuration"],
            "PT5H".into(),
        ),
        (
            "suppressionEnabled",
            &props["suppressionEnabled"],
            false.into(),
        ),
    ];
    for (what, got, want) in expected {
        if *got != want {
            p.push(format!("{what} is {got}, expected {want}"));
        }
    }
    for key in ["queryFrequency", "queryPeriod"] {
        let arm = props[key].as_str().and_then(iso_minutes);
        if arm.is_none() || arm != yaml[key].as_str().and_then(short_minutes) {
            p.push(format!(
                "{key} {} is not the YAML {}",
                props[key], yaml[key]
            ));
        }
    }
    // The API accepts only parent techniques (Azure/Azure-Sentinel #8960).
    let techniques = strs(&props["techniques"]);
    let mut parents: Vec<String> = Vec::new();
    for t in strs(&yaml["relevantTechniques"]) {
        let parent = t[..t.len().min(5)].to_string();
        if !parents.contains(&parent) {
            parents.push(parent);
        }
    }
    for t in &techniques {
        let ok = t.len() == 5 && t.starts_with('T') && t[1..].bytes().all(|b| b.is_ascii_digit());
        if !ok {
            p.push(format!(
                "technique `{t}` is not T#### (the API rejects sub-techniques)"
            ));
        }
    }
    if techniques != parents {
        p.push(format!(
            "techniques {techniques:?} are not the parents {parents:?}"
        ));
    }
    // A string ARM would evaluate as a template expression: "[...]" without the "[[" escape.
    for (k, v) in props.as_object().into_iter().flatten() {
        if let Some(s) = v.as_str()
            && s.starts_with('[')
            && !s.starts_with("[[")
            && s.ends_with(']')
        {
            p.push(format!("{k} would be read as an ARM expression: {s}"));
        }
    }
    p
}

/// A deployment template holding `resources`, with the `workspace` parameter.
fn arm_template_problems(arm: &Value) -> Vec<String> {
    let mut p = Vec::new();
    if arm["$schema"]
        != "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
    {
        p.push(format!("$schema is {}", arm["$schema"]));
    }
    if arm["parameters"]["workspace"]["type"] != "string" {
        p.push("no string parameter `workspace`".to_string());
    }
    p
}

fn parse_yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_json(path: &Path) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn sentinel_artifacts_pass_schemas_and_cross_checks() {
    let pack = Pack::build();
    let dir = pack.sentinel();
    let names = pack.names();
    // Hunting queries are another resource kind with their own gates (tests/deploy_hunting.rs);
    // here only their place in rulepack.arm.json is checked.
    let hunting = common::hunting("sentinel");
    let scheduled = names.iter().filter(|n| !hunting.contains(n)).count();
    let yamls: Vec<PathBuf> = names
        .iter()
        .map(|n| dir.join(format!("{n}.yaml")))
        .collect();
    let mut arms: Vec<PathBuf> = names
        .iter()
        .map(|n| dir.join(format!("{n}.arm.json")))
        .collect();
    arms.push(dir.join("rulepack.arm.json"));
    let kqls: Vec<PathBuf> = names.iter().map(|n| dir.join(format!("{n}.kql"))).collect();

    let analytics_yamls: Vec<PathBuf> = names
        .iter()
        .zip(&yamls)
        .filter(|(n, _)| !hunting.contains(n))
        .map(|(_, y)| y.clone())
        .collect();
    let schema = check_jsonschema(&analytics_yamls);
    let arm = validate_arm(&arms);
    let columns = kql_columns(&kqls);
    let mut failures = Vec::new();
    if schema.status.code() != Some(0) {
        failures.push(report("check-jsonschema (repo YAML)", &schema));
    }
    let arm_out = String::from_utf8_lossy(&arm.stdout);
    let oks = arm_out.lines().filter(|l| l.ends_with(" ok")).count();
    if arm.status.code() != Some(0) || oks != 2 * scheduled {
        failures.push(report(
            &format!(
                "validate_arm_alertrules.py ({oks} resources ok, expected {})",
                2 * scheduled
            ),
            &arm,
        ));
    }

    let pack_arm = parse_json(&dir.join("rulepack.arm.json"));
    let pack_resources = pack_arm["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    failures.extend(
        arm_template_problems(&pack_arm)
            .into_iter()
            .map(|m| format!("rulepack.arm.json: {m}")),
    );
    if pack_resources.len() != names.len() {
        failures.push(format!(
            "rulepack.arm.json has {} resources for {} rules",
            pack_resources.len(),
            names.len()
        ));
    }
    for (i, name) in names.iter().enumerate() {
        let arm = parse_json(&arms[i]);
        if hunting.contains(name) {
            if arm["resources"].as_array().and_then(|r| r.first()) != pack_resources.get(i) {
                failures.push(format!("{name}: its resource differs in rulepack.arm.json"));
            }
            continue;
        }
        let kql = read(&kqls[i]);
        let yaml = parse_yaml(&yamls[i]);
        let cols = columns
            .get(&kqls[i])
            .unwrap_or_else(|| panic!("no columns reported for {}", kqls[i].display()));
        let mut problems = sentinel_yaml_problems(&kql, &yaml, cols);
        problems.extend(arm_template_problems(&arm));
        match arm["resources"].as_array().map(Vec::as_slice) {
            Some([res]) => {
                problems.extend(arm_resource_problems(res, &yaml));
                if pack_resources.get(i) != Some(res) {
                    problems.push("its resource differs in rulepack.arm.json".to_string());
                }
            }
            _ => problems.push("the ARM template must hold exactly one resource".to_string()),
        }
        failures.extend(problems.into_iter().map(|m| format!("{name}: {m}")));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The YAML gate rejects what the Sentinel repository's validator rejects: severity Critical.
#[test]
fn sentinel_yaml_gate_rejects_critical_severity() {
    let pack = Pack::build();
    let name = &pack.names()[0];
    let text = read(&pack.sentinel().join(format!("{name}.yaml")));
    let scratch = pack.scratch("yaml");
    let good = scratch.join("good.yaml");
    let bad = scratch.join("bad.yaml");
    fs::write(&good, &text).unwrap();
    let broken = text
        .lines()
        .map(|l| {
            if l.starts_with("severity: ") {
                "severity: Critical"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(broken, text.trim_end());
    fs::write(&bad, broken).unwrap();
    let ok = check_jsonschema(&[good]);
    assert_eq!(ok.status.code(), Some(0), "{}", report("good YAML", &ok));
    let out = check_jsonschema(&[bad]);
    let ctx = report("severity Critical", &out);
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Critical"),
        "{ctx}"
    );
}

/// The ARM gate rejects a severity outside its enum, the YAML spelling `gt` and a misspelt key;
/// the Rust-side check rejects a sub-technique, which the SDK model (a list of strings) lets
/// through.
#[test]
fn arm_gates_reject_bad_properties_and_sub_techniques() {
    let pack = Pack::build();
    let name = &pack.names()[0];
    let path = pack.sentinel().join(format!("{name}.arm.json"));
    let arm = parse_json(&path);
    let yaml = parse_yaml(&pack.sentinel().join(format!("{name}.yaml")));

    let scratch = pack.scratch("arm");
    let mut bad = arm.clone();
    bad["resources"][0]["properties"]["severity"] = "Critical".into();
    bad["resources"][0]["properties"]["triggerOperator"] = "gt".into();
    // A misspelt key, which the service would silently ignore.
    let props = bad["resources"][0]["properties"].as_object_mut().unwrap();
    let frequency = props.remove("queryFrequency").expect("queryFrequency");
    props.insert("queryFrequncy".into(), frequency);
    let bad_path = scratch.join("bad.arm.json");
    fs::write(&bad_path, serde_json::to_string_pretty(&bad).unwrap()).unwrap();
    let out = validate_arm(&[path.clone(), bad_path.clone()]);
    let ctx = report("validate_arm_alertrules.py", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    assert!(
        stdout.contains(&format!("{}: resources[0] ok", path.display())),
        "{ctx}"
    );
    for field in [
        "properties.severity",
        "properties.triggerOperator",
        "properties.queryFrequncy",
    ] {
        assert!(
            stdout.contains(&format!("{}: resources[0].{field}:", bad_path.display())),
            "{field} not reported\n{ctx}"
        );
    }

    let res = &arm["resources"][0];
    assert_eq!(arm_resource_problems(res, &yaml), Vec::<String>::new());
    let mut sub = res.clone();
    sub["properties"]["techniques"] = serde_json::json!(["T1136.003"]);
    let problems = arm_resource_problems(&sub, &yaml);
    assert!(
        problems
            .iter()
            .any(|m| m.contains("`T1136.003` is not T####")),
        "{problems:?}"
    );
    // The SDK model alone accepts it: that is why the Rust check exists.
    let mut sub_template = arm.clone();
    sub_template["resources"][0] = sub;
    let sub_path = scratch.join("sub.arm.json");
    fs::write(
        &sub_path,
        serde_json::to_string_pretty(&sub_template).unwrap(),
    )
    .unwrap();
    let out = validate_arm(&[sub_path]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        report("sub-technique", &out)
    );
}

/// The cross-field checks reject an entity mapping on a column the query does not return (the
/// InitiatingIPAddress/InitiatingIpAddress defect), schedules outside the API's limits and an
/// over-long query.
#[test]
fn sentinel_cross_checks_reject_broken_rules() {
    let pack = Pack::build();
    let dir = pack.sentinel();
    // A rule with an entity mapping.
    let name = pack
        .names()
        .into_iter()
        .find(|n| parse_yaml(&dir.join(format!("{n}.yaml")))["entityMappings"].is_array())
        .expect("a rule with entity mappings");
    let kql_path = dir.join(format!("{name}.kql"));
    let kql = read(&kql_path);
    let yaml = parse_yaml(&dir.join(format!("{name}.yaml")));
    let columns = kql_columns(std::slice::from_ref(&kql_path));
    let cols = &columns[&kql_path];
    assert_eq!(
        sentinel_yaml_problems(&kql, &yaml, cols),
        Vec::<String>::new()
    );

    let mut bad = yaml.clone();
    let mapped = bad["entityMappings"][0]["fieldMappings"][0]["columnName"]
        .as_str()
        .unwrap()
        .to_string();
    // Same letters, different case: Sentinel matches columns case-sensitively.
    let wrong = mapped.to_uppercase();
    bad["entityMappings"][0]["fieldMappings"][0]["columnName"] = wrong.clone().into();
    let problems = sentinel_yaml_problems(&kql, &bad, cols);
    assert!(
        problems
            .iter()
            .any(|m| m.contains(&format!("`{wrong}` is not returned"))),
        "{problems:?}"
    );

    let mut bad = yaml.clone();
    bad["queryFrequency"] = "1h".into();
    bad["queryPeriod"] = "30m".into();
    let problems = sentinel_yaml_problems(&kql, &bad, cols);
    assert!(
        problems.iter().any(|m| m.contains("shorter than")),
        "{problems:?}"
    );
    bad["queryPeriod"] = "15d".into();
    let problems = sentinel_yaml_problems(&kql, &bad, cols);
    assert!(
        problems.iter().any(|m| m.contains("outside 5m..14d")),
        "{problems:?}"
    );

    let mut bad = yaml.clone();
    let long = format!("{}| where true\n", deployed_query(&kql)).repeat(10_000 / kql.len() + 1);
    bad["query"] = long.clone().into();
    let kql_long = format!("// header\n{long}");
    let problems = sentinel_yaml_problems(&kql_long, &bad, cols);
    assert!(
        problems
            .iter()
            .any(|m| m.contains("Sentinel takes 1..10000")),
        "{problems:?}"
    );

    let mut bad = yaml.clone();
    bad["tactics"] = serde_json::json!(["Discovery"]);
    let problems = sentinel_yaml_problems(&kql, &bad, cols);
    assert!(
        problems
            .iter()
            .any(|m| m.contains("has none of its tactics")),
        "{problems:?}"
    );
}

// ---- Splunk --------------------------------------------------------------------------------

/// Every stanza of a .conf file as ksconf's strict parser reads it (continuations joined).
fn ksconf_parse(path: &Path) -> Result<Map<String, Value>, String> {
    let out = run(Command::new(tool("ksconf", "python"))
        .arg("-c")
        .arg(
            "import json, sys\n\
             from ksconf.conf.parser import parse_conf, PARSECONF_STRICT_NC\n\
             print(json.dumps(parse_conf(sys.argv[1], profile=PARSECONF_STRICT_NC)))",
        )
        .arg(path));
    if !out.status.success() {
        return Err(report("ksconf parse_conf", &out));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("ksconf output: {e}"))
}

fn ksconf_check(paths: &[PathBuf]) -> Output {
    run(Command::new(tool("ksconf", "ksconf"))
        .arg("check")
        .args(paths))
}

/// `slim validate` on a copy (it writes app.manifest into the folder it checks). Its warnings
/// count as failures: an orphan line holding `=` is only a warning ("Undefined setting").
fn slim_validate(app: &Path, scratch: &Path) -> (bool, String) {
    let copy = scratch.join(APP_ID);
    copy_dir(app, &copy);
    let out = run(Command::new(tool("slim", "slim"))
        .arg("validate")
        .arg(&copy));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let clean = out.status.success() && !text.contains("[WARNING]") && !text.contains("[ERROR]");
    (clean, report("slim validate", &out))
}

fn appinspect(package: &Path) -> Output {
    run(Command::new(tool("splunk-appinspect", "splunk-appinspect"))
        .args(["inspect"])
        .arg(package)
        .args([
            "--mode",
            "precert",
            "--ci",
            "--skip-trusted-libraries-update",
            "--max-messages",
            "all",
        ]))
}

/// The release package of the app, as `rulepack package` writes it (0600/0700, root-owned).
fn package(out: &Path, dist: &Path) -> PathBuf {
    let st = run(Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .arg("package")
        .arg("--out")
        .arg(out)
        .arg("--dist")
        .arg(dist));
    assert!(st.status.success(), "{}", report("rulepack package", &st));
    files(dist, ".tar.gz")
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(APP_ID))
        .expect("the Splunk app package")
}

/// Fields an SPL search returns: the final `table`, or the `stats` of an aggregation.
fn spl_output_fields(spl: &str) -> Vec<String> {
    let lines: Vec<&str> = spl.lines().collect();
    if let Some(t) = lines.iter().rev().find_map(|l| l.strip_prefix("| table ")) {
        return t.split(',').map(|f| f.trim().to_string()).collect();
    }
    let stats = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("| stats "))
        .unwrap_or_else(|| panic!("cannot find the output fields of:\n{spl}"));
    let (aggs, by) = stats.split_once(" BY ").unwrap_or((stats, ""));
    let mut fields: Vec<String> = aggs
        .split(" AS ")
        .skip(1)
        .map(|s| s.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    fields.extend(
        by.split(',')
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty() && f != "rp_window"),
    );
    fields
}

/// Every key the generator writes on a stanza; anything else is a stray line read as a key.
const STANZA_KEYS: &[&str] = &[
    "description",
    "action.risk",
    "action.risk.param._risk_message",
    "action.risk.param._risk",
    "action.risk.param._risk_score",
    "action.risk.param.verbose",
    "cron_schedule",
    "dispatch.earliest_time",
    "dispatch.latest_time",
    "action.correlationsearch.enabled",
    "action.correlationsearch.detection_type",
    "action.correlationsearch.label",
    "action.correlationsearch.annotations",
    "action.correlationsearch.metadata",
    "schedule_window",
    "action.notable",
    "action.notable.param.nes_fields",
    "action.notable.param.rule_description",
    "action.notable.param.rule_title",
    "action.notable.param.security_domain",
    "action.notable.param.severity",
    "alert.digest_mode",
    "alert.suppress",
    "alert.suppress.fields",
    "alert.suppress.period",
    "alert.track",
    "disabled",
    "enableSched",
    "allow_skew",
    "counttype",
    "relation",
    "quantity",
    "realtime_schedule",
    "is_visible",
    "search",
    "action.notable.param.drilldown_searches",
];

/// The period in minutes of the schedules the `cron` filter writes.
fn cron_period(cron: &str) -> Option<u64> {
    let f: Vec<&str> = cron.split(' ').collect();
    let step = |s: &str| s.strip_prefix("*/").and_then(|n| n.parse::<u64>().ok());
    match f.as_slice() {
        ["0", "*", "*", "*", "*"] => Some(60),
        ["0", "0", "*", "*", "*"] => Some(1440),
        [m, "*", "*", "*", "*"] => step(m),
        ["0", "0", d, "*", "*"] => step(d).map(|d| d * 1440),
        ["0", h, "*", "*", "*"] => step(h).map(|h| h * 60),
        _ => None,
    }
}

/// `-70m@m` -> 70, `@m` -> 0.
fn relative_minutes(s: &str) -> Option<u64> {
    if s == "@m" {
        return Some(0);
    }
    s.strip_prefix('-')?.strip_suffix("m@m")?.parse().ok()
}

/// The value of time modifier `key` (`earliest`, `_index_latest`, …) in the base search (the
/// text before the first pipe), in minutes back.
fn base_bound(spl: &str, key: &str) -> Option<u64> {
    let base = spl.split("\n|").next()?;
    base.split_whitespace()
        .find_map(|t| t.strip_prefix(key)?.strip_prefix('='))
        .and_then(relative_minutes)
}

/// Runs every `period` minutes read disjoint, adjacent slices: a single-record search's
/// index-time window is the period; an aggregation or correlation reports what its `addinfo`
/// bounds say, one period back from the run's end (an absence: its window of first records
/// ends `earliest - period` back).
fn slices_tile(spl: &str, period: u64) -> bool {
    let p = period * 60;
    if !spl.contains("| addinfo") {
        return base_bound(spl, "_index_earliest")
            .zip(base_bound(spl, "_index_latest"))
            .is_some_and(|(e, l)| e - l == period);
    }
    // `text` followed by something other than a digit.
    let has = |text: String| {
        spl.match_indices(&text)
            .any(|(i, _)| !spl[i + text.len()..].starts_with(|c: char| c.is_ascii_digit()))
    };
    let back = base_bound(spl, "earliest").map(|e| e * 60 - p);
    has(format!("info_max_time-{p}")) || back.is_some_and(|b| has(format!("<info_max_time-{b}")))
}

/// savedsearches.conf as ksconf reads it, against the rules: one stanza per rule whose `search`
/// is the rule's SPL with its continuations intact, the scheduling and ES keys, and risk objects
/// and `$tokens$` that name fields the search returns.
fn savedsearches_problems(
    conf: &Map<String, Value>,
    sentinel: &Path,
    splunk: &Path,
) -> Vec<String> {
    let mut p = Vec::new();
    // Rule id -> (name, severity): ids from the Sentinel YAML of the same build, severities
    // from the rules (a hunting query's YAML has none).
    let pack = common::compile_pack();
    let mut rules: BTreeMap<String, (String, String)> = BTreeMap::new();
    for y in files(sentinel, ".yaml") {
        let v = parse_yaml(&y);
        let name = y.file_stem().unwrap().to_string_lossy().into_owned();
        let severity = pack
            .rules
            .iter()
            .find(|r| r.name.0 == name)
            .map(|r| serde_json::to_value(r.severity).unwrap())
            .and_then(|s| s.as_str().map(str::to_string))
            .unwrap_or_default();
        rules.insert(v["id"].as_str().unwrap().to_string(), (name, severity));
    }
    if conf.contains_key("default") {
        p.push("a [default] stanza".to_string());
    }
    let mut seen = Vec::new();
    for (stanza, settings) in conf {
        let s = |k: &str| settings.get(k).and_then(Value::as_str).unwrap_or("");
        let mut bad = |m: String| p.push(format!("[{stanza}] {m}"));
        for k in settings.as_object().into_iter().flat_map(|m| m.keys()) {
            if !STANZA_KEYS.contains(&k.as_str()) {
                bad(format!(
                    "unexpected key `{k}` (a line that lost its continuation?)"
                ));
            }
        }
        let json = |k: &str| serde_json::from_str::<Value>(s(k));
        let meta = match json("action.correlationsearch.metadata") {
            Ok(m) => m,
            Err(e) => {
                bad(format!("metadata is not JSON: {e}"));
                continue;
            }
        };
        let id = meta["detection_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some((name, rule_severity)) = rules.get(&id) else {
            bad(format!("detection_id {id} is no rule of the pack"));
            continue;
        };
        seen.push(id.clone());
        let spl = read(&splunk.join(format!("{name}.spl")));
        // conf_value ends every line but the last with ` \`; the parser keeps the space.
        let expected = spl
            .trim_end_matches('\n')
            .split('\n')
            .collect::<Vec<_>>()
            .join(" \n");
        if s("search") != expected {
            bad(format!(
                "search is not {name}.spl:\n--- parsed ---\n{}\n--- expected ---\n{expected}",
                s("search")
            ));
        }
        // The alert policy: shipped disabled; a hunting search (an absence) has no actions and
        // no schedule; below medium a rule adds risk only; a notable is throttled on its entity
        // columns and has a drilldown.
        let hunting = spl.contains("rp_next_then");
        let notable = !hunting && !["informational", "low"].contains(&rule_severity.as_str());
        let flag = |b: bool| if b { "1" } else { "0" };
        for (k, v) in [
            ("enableSched", flag(!hunting)),
            ("disabled", "1"),
            ("counttype", "number of events"),
            ("relation", "greater than"),
            ("quantity", "0"),
            ("realtime_schedule", "0"),
            ("action.correlationsearch.enabled", flag(!hunting)),
            ("action.notable", flag(notable)),
            ("alert.suppress", if notable { "1" } else { "" }),
            ("action.correlationsearch.label", stanza.as_str()),
        ] {
            if s(k) != v {
                bad(format!("{k} = {:?}, expected {v:?}", s(k)));
            }
        }
        if hunting && s("action.risk") != "0" {
            bad("a hunting search adds risk".to_string());
        }
        if notable {
            if s("alert.suppress.fields") != s("action.notable.param.nes_fields") {
                bad("throttled on other fields than the notable's entities".to_string());
            }
            let drill = json("action.notable.param.drilldown_searches").unwrap_or(Value::Null);
            let first = &drill[0];
            let token = format!(
                "= ${}$",
                s("alert.suppress.fields").split(',').next().unwrap()
            );
            if first["earliest_offset"] != "$info_min_time$"
                || first["latest_offset"] != "$info_max_time$"
                || !first["search"]
                    .as_str()
                    .is_some_and(|q| q.ends_with(&token))
            {
                bad(format!(
                    "drilldown {drill} does not narrow the run to {token}"
                ));
            }
        }
        if !spl.trim_end().ends_with(&format!("| `{name}_filter`")) {
            bad(format!(
                "the search does not end in its tuning macro {name}_filter"
            ));
        }
        // The dispatch window is the one the search states, and runs tile time.
        for (k, bound) in [
            ("dispatch.earliest_time", "earliest"),
            ("dispatch.latest_time", "latest"),
        ] {
            if relative_minutes(s(k)).is_none() || relative_minutes(s(k)) != base_bound(&spl, bound)
            {
                bad(format!("{k} = {:?} is not the search's {bound}", s(k)));
            }
        }
        match cron_period(s("cron_schedule")) {
            Some(period) if slices_tile(&spl, period) => {}
            other => bad(format!(
                "cron_schedule {:?} (every {other:?}m) does not match the search's slices",
                s("cron_schedule")
            )),
        }
        let severity = if notable {
            s("action.notable.param.severity")
        } else {
            rule_severity.as_str()
        };
        if !["informational", "low", "medium", "high", "critical"].contains(&severity) {
            bad(format!("notable severity {severity:?}"));
        }
        if notable
            && ![
                "access", "endpoint", "network", "threat", "identity", "audit",
            ]
            .contains(&s("action.notable.param.security_domain"))
        {
            bad("security_domain outside the ES enum".to_string());
        }
        if json("action.correlationsearch.annotations").is_err() {
            bad("annotations are not JSON".to_string());
        }
        let fields = spl_output_fields(&spl);
        let has = |f: &str| fields.iter().any(|x| x == f);
        if s("action.risk") == "1" {
            let risk = json("action.risk.param._risk").unwrap_or(Value::Null);
            let mut max = 0;
            for o in risk.as_array().into_iter().flatten() {
                if let Some(f) = o["risk_object_field"].as_str() {
                    if !has(f) {
                        bad(format!(
                            "risk object field {f} is not returned by the search"
                        ));
                    }
                    if !["user", "system", "other"]
                        .contains(&o["risk_object_type"].as_str().unwrap_or(""))
                    {
                        bad(format!("risk object type {}", o["risk_object_type"]));
                    }
                    max = max.max(o["risk_score"].as_u64().unwrap_or(0));
                } else if let Some(f) = o["threat_object_field"].as_str() {
                    if !has(f) {
                        bad(format!(
                            "threat object field {f} is not returned by the search"
                        ));
                    }
                } else {
                    bad(format!(
                        "risk entry {o} is neither a risk nor a threat object"
                    ));
                }
            }
            // ESCU derives severity from the highest score; both must tell the same story.
            let derived = match max {
                0..=20 => "informational",
                21..=40 => "low",
                41..=60 => "medium",
                61..=80 => "high",
                _ => "critical",
            };
            if max == 0 || derived != severity {
                bad(format!(
                    "risk score {max} reads as {derived}, the notable says {severity}"
                ));
            }
        }
        for k in [
            "action.risk.param._risk_message",
            "action.notable.param.rule_title",
            "action.notable.param.rule_description",
        ] {
            for token in s(k).split('$').skip(1).step_by(2) {
                if !has(token) {
                    bad(format!("{k} token ${token}$ is not a field of the search"));
                }
            }
        }
    }
    for (id, (name, _)) in &rules {
        if !seen.contains(id) {
            p.push(format!("no stanza for rule {name}"));
        }
    }
    p
}

fn conf_files(app: &Path) -> Vec<PathBuf> {
    let mut v = files(&app.join("default"), ".conf");
    v.push(app.join("metadata/default.meta"));
    v
}

#[test]
fn splunk_app_passes_appinspect_slim_and_ksconf() {
    let pack = Pack::build();
    let app = pack.app();
    let mut failures = Vec::new();

    let pkg = package(&pack.out(), &pack.scratch("dist"));
    let ai = appinspect(&pkg);
    if ai.status.code() != Some(0) {
        failures.push(report("splunk-appinspect (precert, --ci)", &ai));
    }
    let (slim_ok, slim) = slim_validate(&app, &pack.scratch("slim"));
    if !slim_ok {
        failures.push(slim);
    }
    let check = ksconf_check(&conf_files(&app));
    if check.status.code() != Some(0) {
        failures.push(report("ksconf check", &check));
    }

    let app_conf = ksconf_parse(&app.join("default/app.conf")).unwrap();
    let get = |s: &str, k: &str| app_conf[s][k].as_str().unwrap_or("").to_string();
    for (s, k) in [("package", "id"), ("id", "name")] {
        if get(s, k) != APP_ID {
            failures.push(format!(
                "app.conf [{s}] {k} = {:?}, the folder is {APP_ID}",
                get(s, k)
            ));
        }
    }
    if get("id", "version") != get("launcher", "version")
        || !pkg.ends_with(format!("{APP_ID}-{}.tar.gz", get("id", "version")))
    {
        failures.push(format!(
            "app versions disagree: {app_conf:?} / {}",
            pkg.display()
        ));
    }
    for f in conf_files(&app) {
        let conf = ksconf_parse(&f).unwrap();
        if conf.contains_key("default") {
            failures.push(format!("{} has a [default] stanza", f.display()));
        }
    }
    let macros = ksconf_parse(&app.join("default/macros.conf")).unwrap();
    if !macros.contains_key("rulepack_entra_audit") {
        failures.push("macros.conf lacks rulepack_entra_audit".to_string());
    }
    // Every macro a search calls is defined in the app.
    for spl in files(&pack.out().join("splunk"), ".spl") {
        for m in read(&spl).split('`').skip(1).step_by(2) {
            if !macros.contains_key(m) {
                failures.push(format!(
                    "{}: macro `{m}` is not in macros.conf",
                    spl.display()
                ));
            }
        }
    }

    let conf = ksconf_parse(&app.join("default/savedsearches.conf")).unwrap();
    failures.extend(savedsearches_problems(
        &conf,
        &pack.sentinel(),
        &pack.out().join("splunk"),
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A forgotten continuation backslash: on a line holding `=` it becomes a bogus key that only
/// slim warns about and the parsed `search` loses its tail; on a line without `=` ksconf and slim
/// fail outright. (AppInspect passes both, validators.md §6.4.)
#[test]
fn conf_gates_catch_a_forgotten_continuation() {
    let pack = Pack::build();
    let app = pack.app();
    let conf_path = app.join("default/savedsearches.conf");
    let text = read(&conf_path);
    let good = ksconf_parse(&conf_path).unwrap();
    assert_eq!(
        savedsearches_problems(&good, &pack.sentinel(), &pack.out().join("splunk")),
        Vec::<String>::new()
    );

    // Drop the ` \` before the first search line that holds `=`, or before the first last
    // search line without `=` (a middle line would run on into the next continued line).
    let lines: Vec<&str> = text.lines().collect();
    let drop_continuation = |want_eq: bool| -> String {
        let i = (0..lines.len() - 1)
            .find(|&i| {
                let next = lines[i + 1];
                lines[i].ends_with(" \\")
                    && next.starts_with('|')
                    && if want_eq {
                        next.contains('=')
                    } else {
                        !next.contains('=') && !next.ends_with('\\')
                    }
            })
            .expect("a continued search line");
        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        out[i] = out[i].trim_end_matches(" \\").to_string();
        out.join("\n") + "\n"
    };

    let broken = pack.scratch("broken_eq");
    copy_dir(&app, &broken.join(APP_ID));
    let conf = broken.join(APP_ID).join("default/savedsearches.conf");
    fs::write(&conf, drop_continuation(true)).unwrap();
    let parsed = ksconf_parse(&conf).expect("ksconf reads the orphan line as a key");
    let problems = savedsearches_problems(&parsed, &pack.sentinel(), &pack.out().join("splunk"));
    assert!(
        problems.iter().any(|m| m.contains("search is not")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|m| m.contains("unexpected key")),
        "{problems:?}"
    );
    let (slim_ok, slim) = slim_validate(&broken.join(APP_ID), &pack.scratch("slim_eq"));
    assert!(!slim_ok && slim.contains("Undefined setting"), "{slim}");

    let broken = pack.scratch("broken_plain");
    copy_dir(&app, &broken.join(APP_ID));
    let conf = broken.join(APP_ID).join("default/savedsearches.conf");
    fs::write(&conf, drop_continuation(false)).unwrap();
    let out = ksconf_check(std::slice::from_ref(&conf));
    assert_eq!(
        out.status.code(),
        Some(20),
        "{}",
        report("ksconf check", &out)
    );
    assert!(ksconf_parse(&conf).is_err());
    let (slim_ok, slim) = slim_validate(&broken.join(APP_ID), &pack.scratch("slim_plain"));
    assert!(!slim_ok, "{slim}");
}

/// AppInspect fails a cron schedule that is not five fields, on the packaged app.
#[test]
fn appinspect_rejects_a_bad_cron_schedule() {
    let pack = Pack::build();
    let conf = pack.app().join("default/savedsearches.conf");
    let text = read(&conf);
    let broken = text.replacen("cron_schedule = 0 * * * *", "cron_schedule = 0 * * *", 1);
    assert_ne!(broken, text, "no hourly search to break");
    fs::write(&conf, broken).unwrap();
    // `rulepack package` refuses an output folder that differs from the build, so the broken
    // app is archived the way it archives one.
    let pkg = pack.scratch("dist").join(format!("{APP_ID}-broken.tar.gz"));
    fs::write(
        &pkg,
        rulepack::package::tar_gz(&pack.app(), APP_ID).unwrap(),
    )
    .unwrap();
    let ai = appinspect(&pkg);
    let ctx = report("splunk-appinspect", &ai);
    assert_eq!(ai.status.code(), Some(101), "{ctx}");
    assert!(
        String::from_utf8_lossy(&ai.stdout).contains("cron"),
        "{ctx}"
    );
}
