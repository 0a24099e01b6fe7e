//! The rule JSON Schema (`rulepack schema`, and the copy `rulepack init` writes for editors),
//! judged by a real validator: ajv in strict mode (tools/ajv/check-schema.js, pinned in
//! tools/ajv/package.json, installed into `.tools/ajv` by scripts/setup-validators), reading the
//! YAML with `yaml`, the YAML language server's parser. A missing tool fails the test.
//!
//! Every shipped rule must pass; every file of tests/fixtures/schema/wrong/ (the valid fixture
//! with one fault) must fail for the reason its `# expect:` lines give, with no error outside the
//! node at fault, and `rulepack check` must refuse it too, so the editor and the compiler agree.
//!
//! What an editor shows is checked with the YAML language server itself (the engine of the VS
//! Code YAML extension; tools/yaml-ls/check-editor.js, installed into `.tools/yaml-ls`): it
//! must underline exactly the texts of a fixture's `# editor:` lines (the clashing key, the
//! misspelt key, the unknown name), and nothing in a shipped rule.

mod common;

use common::{repo, report, run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn modules() -> PathBuf {
    let m = repo().join(".tools/ajv/node_modules");
    assert!(
        m.join("ajv/package.json").is_file() && m.join("yaml/package.json").is_file(),
        "validator missing: {}\nRun scripts/test (it calls scripts/setup-validators to install \
         the pinned validators into .tools/).",
        m.display()
    );
    m
}

fn editor_modules() -> PathBuf {
    let m = repo().join(".tools/yaml-ls/node_modules");
    assert!(
        m.join("yaml-language-server/package.json").is_file(),
        "validator missing: {}\nRun scripts/test (it calls scripts/setup-validators to install \
         the pinned validators into .tools/).",
        m.display()
    );
    m
}

fn rulepack(dir: &Path, args: &[&str]) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(args))
}

/// `rulepack schema` (with `extra` arguments), written to `dir/rule.schema.json`.
fn schema_file(dir: &Path, extra: &[&str]) -> PathBuf {
    let mut args = vec!["schema"];
    args.extend(extra);
    let o = rulepack(&repo(), &args);
    assert!(o.status.success(), "{}", report("rulepack schema", &o));
    let path = dir.join("rule.schema.json");
    std::fs::write(&path, &o.stdout).unwrap();
    path
}

/// One file's verdict from check-schema.js.
struct Verdict {
    file: String,
    valid: bool,
    errors: Vec<Value>,
}

/// ajv's verdicts on `files`, in order. Exit 2 (the schema does not compile in strict mode, or a
/// file is not YAML) fails the test.
fn ajv(schema: &Path, files: &[PathBuf]) -> Vec<Verdict> {
    let o = run(Command::new("node")
        .arg(repo().join("tools/ajv/check-schema.js"))
        .arg("--modules")
        .arg(modules())
        .arg(schema)
        .args(files));
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        report("check-schema.js", &o)
    );
    let verdicts: Vec<Verdict> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            Verdict {
                file: v["file"].as_str().unwrap().to_string(),
                valid: v["valid"].as_bool().unwrap(),
                errors: v["errors"].as_array().unwrap().clone(),
            }
        })
        .collect();
    assert_eq!(
        verdicts.len(),
        files.len(),
        "{}",
        report("check-schema.js", &o)
    );
    verdicts
}

/// The texts the YAML language server underlines in each of `files`, in order.
fn underlined(schema: &Path, files: &[PathBuf]) -> Vec<(String, Vec<String>)> {
    let o = run(Command::new("node")
        .arg(repo().join("tools/yaml-ls/check-editor.js"))
        .arg("--modules")
        .arg(editor_modules())
        .arg(schema)
        .args(files));
    assert!(o.status.success(), "{}", report("check-editor.js", &o));
    let shown: Vec<(String, Vec<String>)> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let texts = v["diagnostics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["text"].as_str().unwrap().to_string())
                .collect();
            (v["file"].as_str().unwrap().to_string(), texts)
        })
        .collect();
    assert_eq!(
        shown.len(),
        files.len(),
        "{}",
        report("check-editor.js", &o)
    );
    shown
}

fn yml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    files
}

fn fixtures() -> PathBuf {
    repo().join("tests/fixtures/schema")
}

/// `rulepack check` on `rule` alone, in this repository's pack.
fn check_alone(rule: &Path) -> Output {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(rule, tmp.path().join(rule.file_name().unwrap())).unwrap();
    let rules = tmp.path().to_str().unwrap();
    rulepack(&repo(), &["check", "--rules", rules])
}

#[test]
fn every_shipped_rule_passes_the_schema_under_ajv_strict() {
    let tmp = tempfile::tempdir().unwrap();
    let schema = schema_file(tmp.path(), &[]);
    let mut files = yml_files(&repo().join("rules"));
    assert!(files.len() >= 10, "the shipped rules: {files:?}");
    files.push(fixtures().join("valid.yml"));
    for v in ajv(&schema, &files) {
        assert!(v.valid, "{} fails the schema: {:#?}", v.file, v.errors);
    }
    let o = check_alone(&fixtures().join("valid.yml"));
    assert!(o.status.success(), "{}", report("rulepack check", &o));
}

/// `# expect: KEYWORD | INSTANCE_PATH [| PARAM=VALUE]` lines of a fixture.
struct Expect {
    keyword: String,
    path: String,
    param: Option<(String, String)>,
}

fn expectations(file: &Path) -> Vec<Expect> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|l| {
            let parts: Vec<&str> = l.split('|').map(str::trim).collect();
            let param = parts.get(2).map(|p| {
                let (k, v) = p.split_once('=').expect("PARAM=VALUE");
                (k.to_string(), v.to_string())
            });
            Expect {
                keyword: parts[0].to_string(),
                path: parts.get(1).copied().unwrap_or_default().to_string(),
                param,
            }
        })
        .collect()
}

/// The deepest instance path that holds every expected one: the node at fault.
fn scope(expects: &[Expect]) -> Vec<&str> {
    let mut common: Vec<&str> = expects[0].path.split('/').collect();
    for e in &expects[1..] {
        let segs: Vec<&str> = e.path.split('/').collect();
        let same = common.iter().zip(&segs).take_while(|(a, b)| a == b).count();
        common.truncate(same);
    }
    common
}

#[test]
fn each_wrong_rule_is_refused_for_its_own_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let schema = schema_file(tmp.path(), &[]);
    let files = yml_files(&fixtures().join("wrong"));
    assert!(files.len() >= 10, "the wrong-rule fixtures: {files:?}");
    for (file, v) in files.iter().zip(ajv(&schema, &files)) {
        let expects = expectations(file);
        assert!(!expects.is_empty(), "{}: no `# expect:` line", v.file);
        assert!(!v.valid, "{} passes the schema", v.file);
        for e in &expects {
            let found = v.errors.iter().any(|err| {
                err["keyword"] == e.keyword.as_str()
                    && err["instancePath"] == e.path.as_str()
                    && e.param
                        .as_ref()
                        .is_none_or(|(k, val)| err["params"][k] == val.as_str())
            });
            assert!(
                found,
                "{}: no `{}` error at `{}` ({:?}); ajv said {:#?}",
                v.file, e.keyword, e.path, e.param, v.errors
            );
        }
        let within = scope(&expects);
        for err in &v.errors {
            let at: Vec<&str> = err["instancePath"].as_str().unwrap().split('/').collect();
            assert!(
                at.starts_with(&within),
                "{}: an error outside `{}`, so the rule is wrong in more than one way: {err}",
                v.file,
                within.join("/")
            );
        }
        let o = check_alone(file);
        assert!(
            !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("error["),
            "{}",
            report(&format!("rulepack check on {}", v.file), &o)
        );
    }
}

#[test]
fn the_editor_underlines_each_fault_where_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let schema = schema_file(tmp.path(), &[]);
    let mut clean = yml_files(&repo().join("rules"));
    clean.push(fixtures().join("valid.yml"));
    for (file, texts) in underlined(&schema, &clean) {
        assert!(texts.is_empty(), "{file}: the editor underlines {texts:?}");
    }
    let wrong = yml_files(&fixtures().join("wrong"));
    let mut keyed = 0;
    for (path, (file, texts)) in wrong.iter().zip(underlined(&schema, &wrong)) {
        assert!(!texts.is_empty(), "{file}: the editor shows nothing");
        let text = std::fs::read_to_string(path).unwrap();
        for want in text.lines().filter_map(|l| l.strip_prefix("# editor: ")) {
            keyed += 1;
            assert!(
                texts.iter().any(|t| t == want),
                "{file}: `{want}` is not underlined; the editor underlines {texts:?}"
            );
        }
    }
    assert!(
        keyed >= 10,
        "only {keyed} `# editor:` lines in the fixtures"
    );
}

/// The field list is generated from the log sources the compiler reads, overlay included: a
/// field added to the log source is a field the editor offers.
#[test]
fn field_names_come_from_the_log_source() {
    let tmp = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(repo().join("templates/logsources/entra_audit.yml"))
        .unwrap()
        .replace(
            "fields:\n",
            "fields:\n  initiator.agent_type: { type: string, graph: initiatedBy.user.agentType, description: An overlay's field }\n",
        );
    let overlay = tmp.path().join("overlay");
    std::fs::create_dir_all(overlay.join("logsources")).unwrap();
    std::fs::write(overlay.join("logsources/entra_audit.yml"), shipped).unwrap();
    let schema: Value = serde_json::from_slice(
        &std::fs::read(schema_file(
            tmp.path(),
            &["--templates", overlay.to_str().unwrap()],
        ))
        .unwrap(),
    )
    .unwrap();
    let fields = &schema["definitions"]["RawCondition"]["properties"]["field"]["enum"];
    let names: Vec<&str> = fields
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(names[0], "initiator.agent_type", "{names:?}");
    for f in ["activity", "target.upn", "modified.new", "detail.value"] {
        assert!(names.contains(&f), "{f} missing from {names:?}");
    }
    assert_eq!(
        schema["definitions"]["RawCondition"]["properties"]["some"]["enum"],
        serde_json::json!(["target", "modified", "detail"])
    );
}

/// `rulepack init` wires the editor to this schema: the file it writes is the one `rulepack
/// schema` prints, settings.json maps it to the rules, and the example rule passes it.
#[test]
fn init_wires_the_editor_to_the_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let o = rulepack(tmp.path(), &["init", "p", "--author", "Blue Team"]);
    assert!(o.status.success(), "{}", report("rulepack init", &o));
    let pack = tmp.path().join("p");
    let written = std::fs::read(pack.join(".vscode/rule.schema.json")).unwrap();
    let printed = rulepack(&repo(), &["schema"]).stdout;
    assert!(
        written == printed,
        "init's schema differs from `rulepack schema`"
    );
    let settings: Value =
        serde_json::from_slice(&std::fs::read(pack.join(".vscode/settings.json")).unwrap())
            .unwrap();
    assert_eq!(
        settings["yaml.schemas"]["./.vscode/rule.schema.json"],
        serde_json::json!(["rules/**/*.yml", "rules/**/*.yaml"])
    );
    let example = pack.join("rules/role_member_added.yml");
    let text = std::fs::read_to_string(&example).unwrap();
    assert!(
        text.starts_with("# yaml-language-server: $schema=../.vscode/rule.schema.json\n"),
        "{text}"
    );
    let v = ajv(&pack.join(".vscode/rule.schema.json"), &[example]);
    assert!(v[0].valid, "the example rule fails: {:#?}", v[0].errors);
}
