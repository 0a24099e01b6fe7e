//! `rulepack verify`: the pack judged by engines rulepack does not control. The pack is built
//! into a temporary folder; then every rule's tests run through duckdb-kql on its KQL and
//! pySigma's SQLite backend on its Sigma, Microsoft's Kusto.Language parses and binds every KQL
//! file against the AuditLogs schema, `sigma check` (sigma-cli) checks every Sigma file, and
//! every SPL search gets the structural checks of `spl`. Each judgement is one pass or one
//! failure, positioned at the rule file (and the test's line) the author edits.

pub mod install;
pub mod spl;

use crate::diag::{github_data, github_property};
use crate::source::SourceMap;
use crate::{Compiled, tests_manifest};
use install::Installed;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One failed judgement.
#[derive(Debug)]
pub struct Failure {
    /// The tool that judged: `duckdb-kql`, `sigma-sqlite`, `kusto-language`, `sigma check`, `spl`.
    pub check: &'static str,
    /// The rule file, when the failure belongs to one rule.
    pub file: Option<String>,
    /// The test's line in the rule file.
    pub line: Option<usize>,
    pub rule: Option<String>,
    pub test: Option<String>,
    pub message: String,
}

/// Passes and failures of one tool.
#[derive(Debug)]
pub struct Tally {
    pub check: &'static str,
    pub passed: usize,
    pub failed: usize,
    /// Rules the engine could not run, as the pack's manifest declares (`verify.not_executable`):
    /// neither passed nor failed, and printed.
    pub not_executable: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub tallies: Vec<Tally>,
    pub failures: Vec<Failure>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.tallies.iter().map(|t| t.passed).sum()
    }

    pub fn not_executable(&self) -> usize {
        self.tallies.iter().map(|t| t.not_executable.len()).sum()
    }

    fn add(&mut self, judged: Judgement) {
        self.tallies.push(Tally {
            check: judged.check,
            passed: judged.passed,
            failed: judged.failures.len(),
            not_executable: judged.not_executable,
        });
        self.failures.extend(judged.failures);
    }
}

/// Every engine, installed into `root` unless it already is (progress on stderr).
pub fn install_all(root: &Path) -> Result<Vec<Installed>, String> {
    install::ALL
        .iter()
        .map(|e| install::ensure(e, root))
        .collect()
}

/// The pack's rules as `export-tests` describes them, by name.
struct Pack {
    out: PathBuf,
    manifest: PathBuf,
    rules: Vec<Value>,
    /// Artifact path (relative, `/`-separated) → rule name.
    owners: BTreeMap<String, String>,
    /// The pack's own artifacts.
    unowned: Vec<String>,
}

impl Pack {
    fn rule(&self, name: &str) -> Option<&Value> {
        self.rules.iter().find(|r| r["name"] == name)
    }

    /// A failure of rule `name` (or of the pack, when no rule has that name).
    fn failure(&self, check: &'static str, name: Option<&str>, message: String) -> Failure {
        let rule = name.and_then(|n| self.rule(n));
        Failure {
            check,
            file: rule.and_then(|r| r["file"].as_str()).map(String::from),
            line: None,
            rule: name.map(String::from),
            test: None,
            message,
        }
    }

    /// Artifacts under `backend/` ending in `ext`, as (relative path, full path).
    fn files(&self, backend: &str, ext: &str) -> Vec<(String, PathBuf)> {
        self.owners
            .keys()
            .chain(self.unowned.iter())
            .filter(|p| p.starts_with(&format!("{backend}/")) && p.ends_with(ext))
            .map(|p| (p.clone(), self.out.join(p)))
            .collect()
    }
}

/// Runs every check over the compiled pack. `splunk` holds the Splunk backend's files (name,
/// text); `declared` the manifest's `verify.not_executable`. Errors are problems of the machinery (a folder not writable, an engine that crashed
/// before judging), not of the pack.
pub fn run(
    compiled: &Compiled,
    sources: &SourceMap,
    splunk: &[(String, String)],
    engines: &[Installed],
    declared: &BTreeMap<String, BTreeSet<String>>,
) -> Result<Report, String> {
    let tmp = tempfile::tempdir().map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    let out = tmp.path().join("out");
    let mut owners = BTreeMap::new();
    let mut unowned = Vec::new();
    for a in &compiled.artifacts {
        let path = out.join(&a.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&path, &a.content).map_err(|e| format!("{}: {e}", path.display()))?;
        let rel = a.path.to_string_lossy().replace('\\', "/");
        match &a.rule {
            Some(rule) => owners.insert(rel, rule.clone()),
            None => {
                unowned.push(rel);
                None
            }
        };
    }
    let text = tests_manifest(compiled, sources);
    let manifest = tmp.path().join("manifest.json");
    std::fs::write(&manifest, &text).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let parsed: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let pack = Pack {
        out,
        manifest,
        rules: parsed["rules"].as_array().cloned().unwrap_or_default(),
        owners,
        unowned,
    };
    let [kql, sigma, cli, kusto] = engines else {
        return Err("rulepack verify needs its four engines".into());
    };
    let backend = spl::Backend::new(splunk)?;
    let mut report = Report::default();
    // The four tools are separate processes: run them side by side.
    let results = std::thread::scope(|s| {
        let pack = &pack;
        let replay = move |check, engine, script| {
            let known = declared.get(check).cloned().unwrap_or_default();
            replay(pack, check, engine, script, &known)
        };
        let a = s.spawn(move || replay(install::DUCKDB_KQL.name, kql, "kql_replay.py"));
        let b = s.spawn(move || replay(install::SIGMA_SQLITE.name, sigma, "sigma_replay.py"));
        let c = s.spawn(move || kusto_language(pack, kusto));
        let d = s.spawn(move || sigma_check(pack, cli));
        [a, b, c, d].map(|h| h.join().expect("a check thread panicked"))
    });
    for r in results {
        report.add(r?);
    }
    let (passed, failures) = spl_checks(&pack, compiled, &backend)?;
    report.add(Judgement::new("spl", passed, failures));
    Ok(report)
}

/// What one tool judged.
struct Judgement {
    check: &'static str,
    passed: usize,
    failures: Vec<Failure>,
    not_executable: Vec<String>,
}

impl Judgement {
    fn new(check: &'static str, passed: usize, failures: Vec<Failure>) -> Judgement {
        Judgement {
            check,
            passed,
            failures,
            not_executable: Vec::new(),
        }
    }
}

type Judged = Result<Judgement, String>;

fn spawn(cmd: &mut Command) -> Result<Output, String> {
    cmd.output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))
}

/// The last lines of a tool's error output, for a failure message.
fn tail(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// A replay harness (tools/engines): one JSON verdict per line. `declared`: the rules the
/// manifest says this engine cannot run.
fn replay(
    pack: &Pack,
    check: &'static str,
    engine: &Installed,
    script: &str,
    declared: &BTreeSet<String>,
) -> Judged {
    let out = spawn(
        Command::new(engine.python())
            .arg(engine.file(script))
            .arg(&pack.manifest)
            .arg(&pack.out),
    )?;
    let (mut passed, mut failures, mut not_executable) = (0, Vec::new(), Vec::new());
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v["ok"] == true {
            passed += 1;
            continue;
        }
        let name = v["rule"].as_str();
        let mut message = v["message"].as_str().unwrap_or("").to_string();
        if v["executable"] == false {
            match name {
                Some(n) if declared.contains(n) => {
                    not_executable.push(n.to_string());
                    continue;
                }
                _ => message.push_str(&format!(
                    "; if the engine cannot run this construct, list the rule under \
                     verify.not_executable.{check} in rulepack.yml (the KQL is still parsed by \
                     Kusto.Language)"
                )),
            }
        }
        let mut f = pack.failure(check, name, message);
        f.test = v["test"].as_str().map(String::from);
        f.line = v["line"].as_u64().map(|l| l as usize);
        failures.push(f);
    }
    if !out.status.success() {
        failures.push(pack.failure(
            check,
            None,
            format!("the harness stopped ({}): {}", out.status, tail(&out)),
        ));
    }
    for name in declared.iter().filter(|n| !not_executable.contains(n)) {
        let why = if pack.rule(name).is_some() {
            "it ran: remove it from the list"
        } else {
            "the pack has no rule of that name: remove it from the list"
        };
        failures.push(pack.failure(
            check,
            Some(name),
            format!("listed under verify.not_executable.{check} in rulepack.yml, but {why}"),
        ));
    }
    Ok(Judgement {
        check,
        passed,
        failures,
        not_executable,
    })
}

/// Kusto.Language over every KQL file: `FILE:LINE:COL: error CODE: message` lines.
fn kusto_language(pack: &Pack, engine: &Installed) -> Judged {
    let check = install::KUSTO.name;
    let files = pack.files("sentinel", ".kql");
    if files.is_empty() {
        return Ok(Judgement::new(check, 0, Vec::new()));
    }
    let out = spawn(
        Command::new("node")
            .arg(engine.file("check-kql.js"))
            .arg("--modules")
            .arg(engine.file("node_modules"))
            .args(files.iter().map(|(_, p)| p)),
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut failures = Vec::new();
    let mut bad = std::collections::BTreeSet::new();
    for (rel, full) in &files {
        let prefix = format!("{}:", full.display());
        for line in stdout.lines().filter(|l| l.starts_with(&prefix)) {
            let rest = &line[prefix.len()..];
            if !rest.contains(": error ") {
                continue;
            }
            bad.insert(rel.clone());
            let owner = pack.owners.get(rel).map(String::as_str);
            failures.push(pack.failure(check, owner, format!("{rel}:{rest}")));
        }
    }
    if !out.status.success() && failures.is_empty() {
        failures.push(pack.failure(
            check,
            None,
            format!("check-kql failed ({}): {}", out.status, tail(&out)),
        ));
    }
    Ok(Judgement::new(check, files.len() - bad.len(), failures))
}

/// `sigma check` over the Sigma folder; each error or issue line names the files it is about.
fn sigma_check(pack: &Pack, engine: &Installed) -> Judged {
    let check = "sigma check";
    // The rules' own files: the folder may also hold pack files (pySigma pipelines, a README).
    let files: Vec<_> = pack
        .files("sigma", ".yml")
        .into_iter()
        .filter(|(rel, _)| pack.owners.contains_key(rel))
        .collect();
    if files.is_empty() {
        return Ok(Judgement::new(check, 0, Vec::new()));
    }
    let out = spawn(
        engine
            .sigma_check()
            .arg("--fail-on-issues")
            .args(files.iter().map(|(_, p)| p)),
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut failures = Vec::new();
    let mut bad = std::collections::BTreeSet::new();
    let root = format!("{}/", pack.out.display());
    // A validator reports an issue once per value it finds it in: one failure line is enough.
    let mut seen = std::collections::BTreeSet::new();
    for line in stdout.lines().filter(|l| seen.insert(*l)) {
        for (rel, full) in &files {
            if line.contains(&*full.to_string_lossy()) {
                bad.insert(rel.clone());
                let owner = pack.owners.get(rel).map(String::as_str);
                failures.push(pack.failure(check, owner, line.replace(&root, "")));
            }
        }
    }
    if !out.status.success() && failures.is_empty() {
        let summary: Vec<&str> = stdout.lines().filter(|l| l.starts_with("Found ")).collect();
        failures.push(pack.failure(
            check,
            None,
            format!(
                "sigma check failed ({}): {} {}",
                out.status,
                summary.join(" "),
                tail(&out)
            ),
        ));
    }
    Ok(Judgement::new(check, files.len() - bad.len(), failures))
}

fn spl_checks(
    pack: &Pack,
    compiled: &Compiled,
    backend: &spl::Backend,
) -> Result<(usize, Vec<Failure>), String> {
    let (mut passed, mut failures) = (0, Vec::new());
    for rule in &pack.rules {
        let Some(file) = rule["artifacts"]["splunk"].as_str() else {
            continue;
        };
        let spl = compiled
            .artifacts
            .iter()
            .find(|a| a.path.to_string_lossy().replace('\\', "/") == file)
            .map(|a| a.content.as_str())
            .unwrap_or_default();
        let name = rule["name"].as_str();
        let problems = backend.check(rule, &pack.rules, spl)?;
        if problems.is_empty() {
            passed += 1;
        }
        for p in problems {
            failures.push(pack.failure("spl", name, format!("{file}: {p}")));
        }
    }
    Ok((passed, failures))
}

/// How `verify` prints its failures.
#[derive(Clone, Copy)]
pub enum Style {
    Human,
    Json,
    Github,
}

/// One failure as one line.
pub fn render(f: &Failure, style: Style) -> String {
    let what = match (&f.rule, &f.test) {
        (Some(r), Some(t)) => format!("{r} / {t}: {}", f.message),
        (Some(r), None) => format!("{r}: {}", f.message),
        _ => f.message.clone(),
    };
    match style {
        Style::Human => {
            let at = match (&f.file, f.line) {
                (Some(file), Some(line)) => format!("{file}:{line}: "),
                (Some(file), None) => format!("{file}: "),
                _ => String::new(),
            };
            format!("{at}{}: {what}", f.check).replace(['\r', '\n'], " ")
        }
        Style::Json => serde_json::json!({
            "check": f.check,
            "file": f.file,
            "line": f.line,
            "rule": f.rule,
            "test": f.test,
            "message": f.message,
        })
        .to_string(),
        Style::Github => {
            let mut props = Vec::new();
            if let Some(file) = &f.file {
                props.push(format!("file={}", github_property(file)));
                if let Some(line) = f.line {
                    props.push(format!("line={line}"));
                }
            }
            props.push(format!(
                "title={}",
                github_property(&format!("verify: {}", f.check))
            ));
            format!("::error {}::{}", props.join(","), github_data(&what))
        }
    }
}
