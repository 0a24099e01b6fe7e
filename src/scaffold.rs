//! `rulepack init` and `rulepack new`: a new pack repository, and a new rule in a pack. Each
//! builds every file in memory, checks it, and writes nothing when anything is wrong.

use crate::diag::{Code, Diagnostic};
use crate::load::raw::RawRule;
use crate::load::yaml;
use crate::source::SourceMap;
use crate::templates::Templates;
use crate::{Paths, lock, manifest, validate};
use std::path::{Path, PathBuf};

/// The rule `init` writes: a complete rule with tests, so the new pack is green at once.
const EXAMPLE: &str = "role_member_added";

/// Where `init` puts the rule format's JSON Schema, for the YAML language server.
const SCHEMA_FILE: &str = ".vscode/rule.schema.json";

/// A new pack in `dir` (created if missing). Refuses a folder that already holds a pack, or
/// any file it would write.
pub fn init(dir: &Path, name: Option<&str>, author: Option<&str>) -> Result<Vec<PathBuf>, String> {
    if dir.join(manifest::FILE).exists() {
        return Err(format!(
            "{} already holds a pack ({} exists); nothing was written",
            dir.display(),
            manifest::FILE
        ));
    }
    let name = match name {
        Some(n) => n.to_string(),
        None => folder_name(dir)?,
    };
    let author = author.map(str::to_string).unwrap_or_else(git_user);
    let manifest_text = manifest::template(&name, &author);
    // The manifest is checked as any other would be, so a bad name fails here, at its line.
    let mut sources = SourceMap::default();
    let file = sources.add(&dir.join(manifest::FILE), manifest_text.clone());
    manifest::parse(&sources, file).map_err(|ds| {
        let first = ds.first().map(|d| d.message.clone()).unwrap_or_default();
        format!("{first}: pass a pack name with --name (letters, digits, `_` and `-`)")
    })?;
    let rule = rule_text(
        &uuid::Uuid::new_v4().to_string(),
        EXAMPLE,
        &author,
        &today(),
        Some(SCHEMA_FILE),
    );
    let rule_path = dir.join("rules").join(format!("{EXAMPLE}.yml"));
    let lock_text = lock_for(&rule_path, &rule).map_err(|e| format!("internal: {e}"))?;
    let schema = shipped_schema().map_err(|e| format!("internal: {e}"))?;
    let files: Vec<(PathBuf, String)> = vec![
        (dir.join(manifest::FILE), manifest_text),
        (rule_path, rule),
        (dir.join("rules").join(lock::FILE), lock_text),
        (dir.join(".gitignore"), GITIGNORE.to_string()),
        (dir.join(SCHEMA_FILE), schema),
        (
            dir.join(".vscode/settings.json"),
            VSCODE_SETTINGS.to_string(),
        ),
        (
            dir.join(".github/workflows/rulepack.yml"),
            WORKFLOW.to_string(),
        ),
    ];
    if let Some((p, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(format!(
            "{} already exists; nothing was written (init writes a new pack)",
            p.display()
        ));
    }
    let mut written = Vec::new();
    for (p, text) in files {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        written.push(p);
    }
    Ok(written)
}

fn folder_name(dir: &Path) -> Result<String, String> {
    let abs = std::path::absolute(dir).map_err(|e| e.to_string())?;
    abs.components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .next_back()
        .map(str::to_string)
        .ok_or_else(|| format!("cannot name a pack after {}: pass --name", dir.display()))
}

/// `git config user.name`, or a placeholder the user sees in every new rule.
fn git_user() -> String {
    std::process::Command::new("git")
        .args(["config", "user.name"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "your team".to_string())
}

/// The rule schema `rulepack schema` prints without an overlay: the shipped log sources' fields.
fn shipped_schema() -> Result<String, String> {
    let mut sources = SourceMap::default();
    let logsources = crate::load_logsources(&Templates::default(), &mut sources)
        .map_err(|ds| format!("{} problem(s) in the shipped log sources", ds.len()))?;
    Ok(crate::schema::rule_schema(&logsources))
}

/// The lock of a pack whose only rule is `text`, as `rulepack lock` would write it.
fn lock_for(path: &Path, text: &str) -> Result<String, String> {
    let mut sources = SourceMap::default();
    let logsources = crate::load_logsources(&Templates::default(), &mut sources)
        .map_err(|ds| format!("{} problem(s) in the shipped log sources", ds.len()))?;
    let file = sources.add(path, text.to_string());
    let raw: RawRule<serde_json::Value> =
        yaml::parse(&sources, file).map_err(|d| d.message.clone())?;
    let rule = validate::validate(&raw, file, text, &logsources)
        .map_err(|ds| format!("{} problem(s) in the example rule", ds.len()))?;
    let (l, _) = lock::update(&[rule], &logsources, &lock::Lock::new(), false, false)
        .map_err(|ds| format!("{} lock problem(s)", ds.len()))?;
    Ok(lock::render(&l))
}

/// `rules/NAME.yml`: a skeleton, or a copy of rule `from`'s logic and tests, with a fresh id,
/// version 0.1.0, status experimental, the manifest's author and today's date. The new file is
/// validated before it is written.
pub fn new_rule(
    paths: &Paths,
    sources: &mut SourceMap,
    name: &str,
    from: Option<&str>,
) -> Result<PathBuf, Vec<Diagnostic>> {
    let target = paths.rules.join(format!("{name}.yml"));
    let (rules, logsources) = crate::check_unlocked(paths, sources, crate::TestEvents::Skip)?;
    let bad_name = |message: String, help: &str| {
        vec![
            Diagnostic::error(Code::InvalidName, message)
                .in_file(&target)
                .help(help.to_string()),
        ]
    };
    if !validate::is_slug(name) {
        return Err(bad_name(
            format!("invalid rule name `{name}`"),
            "a rule name is 3-60 characters of a-z, 0-9 and _, starting with a letter (it names every artifact)",
        ));
    }
    if rules.iter().any(|r| r.name.0 == name) || target.exists() {
        return Err(bad_name(
            format!("a rule named `{name}` already exists"),
            "pick another name, or edit the existing rule",
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let author = &paths.manifest.author;
    let text = match from {
        None => rule_text(&id, name, author, &today(), None),
        Some(from) => {
            let Some(source) = rules.iter().find(|r| r.name.0 == from) else {
                let known: Vec<&str> = rules.iter().map(|r| r.name.0.as_str()).collect();
                let hint = match crate::diag::did_you_mean(from, known.iter().copied()) {
                    Some(c) => {
                        format!("did you mean `{c}`? The pack's rules: {}", known.join(", "))
                    }
                    None => format!("the pack's rules: {}", known.join(", ")),
                };
                return Err(vec![
                    Diagnostic::error(Code::InvalidName, format!("no rule named `{from}` to copy"))
                        .in_file(&paths.rules)
                        .help(hint),
                ]);
            };
            let original = &sources.get(source.file).text;
            copy_text(original, &id, name, &source.title, author, &today())
        }
    };
    let file = sources.add(&target, text.clone());
    // With its events, so they are checked against the log source's record shape too.
    let raw: RawRule<serde_json::Value> = yaml::parse(sources, file).map_err(|d| vec![d])?;
    validate::validate(&raw, file, &text, &logsources)?;
    std::fs::write(&target, text).map_err(|e| {
        vec![Diagnostic::error(Code::Io, format!("cannot write the rule: {e}")).in_file(&target)]
    })?;
    Ok(target)
}

/// A copy of a rule's text with new identity lines. Only top-level keys are touched (rule files
/// keep them at column 0), so the logic, tests and comments stay exactly as written.
fn copy_text(
    original: &str,
    id: &str,
    name: &str,
    title: &str,
    author: &str,
    date: &str,
) -> String {
    let mut out = String::with_capacity(original.len());
    for line in original.split_inclusive('\n') {
        let key = line.split_once(':').map(|(k, _)| k).unwrap_or("");
        let replaced = match key {
            "id" => Some(format!("id: {id}\n")),
            "name" => Some(format!("name: {name}\n")),
            "title" => Some(format!(
                "title: {}\n",
                yaml_string(&format!("{title} ({name})"))
            )),
            "version" => Some("version: 0.1.0\n".to_string()),
            "status" => Some("status: experimental\n".to_string()),
            "author" => Some(format!("author: {}\n", yaml_string(author))),
            "date" => Some(format!("date: {date}\n")),
            // The copy is new: it has no history of changes yet.
            "modified" => Some(String::new()),
            _ => None,
        };
        out.push_str(replaced.as_deref().unwrap_or(line));
    }
    out
}

/// A YAML double-quoted string.
fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A complete rule: an Entra ID role assignment, with a test that must match and two that must
/// not. `schema` is the schema's path from the pack root, for the language-server modeline;
/// without it the rule is a skeleton for `rulepack new`, whose title and description say what
/// to replace.
fn rule_text(id: &str, name: &str, author: &str, date: &str, schema: Option<&str>) -> String {
    let modeline = schema
        .map(|s| format!("# yaml-language-server: $schema=../{s}\n"))
        .unwrap_or_default();
    let (title, description) = match schema {
        Some(_) => (
            format!("Entra ID user added to a directory role ({name})"),
            "A user was added to an Entra ID directory role (activity \"Add member to role\", result success).\n  Replace this with what the rule detects, why it matters, and why its severity is right.",
        ),
        None => (
            format!("TODO: what {name} detects"),
            "TODO: what the rule detects, why it matters, and why its severity is right. The\n  condition and tests below are a working example (a directory role assignment) to replace.",
        ),
    };
    let title = yaml_string(&title);
    let author = yaml_string(author);
    format!(
        r#"{modeline}# A rule (docs: rulepack's docs/rule-format.md). Edit the condition, then the tests, then run
# `rulepack test {name}`; `rulepack lock` records its version when it is ready for review.
id: {id}
name: {name}
title: {title}
description: >-
  {description}
status: experimental
severity: medium
author: {author}
date: {date}
version: 0.1.0
references:
  - https://learn.microsoft.com/en-us/entra/identity/monitoring-health/reference-audit-activities
attack:
  tactics: [privilege-escalation]
  techniques: [T1098.003]
falsepositives:
  - Planned role assignments by administrators
logsource: entra_audit
condition:
  all:
    - field: activity
      equals: Add member to role
    - field: result
      equals: success
schedule:
  frequency: 1h
output:
  Activity: {{ field: activity }}
  Initiator: {{ field: initiator.upn }}
  TargetUser: {{ field: target.upn }}
entities:
  - type: account
    identifiers: {{ upn: Initiator }}
tests:
  - name: an administrator adds a user to a role
    expect: match
    event: {{"id": "Core Directory_RoleManagement_1", "category": "RoleManagement", "correlationId": "6f0d1c2b-3a4e-4f5a-8b6c-7d8e9f0a1b2c", "result": "success", "resultReason": "", "activityDisplayName": "Add member to role", "activityDateTime": "2026-01-05T09:00:00Z", "loggedByService": "Core Directory", "operationType": "Assign", "initiatedBy": {{"user": {{"id": "11111111-2222-4333-8444-555555555555", "userPrincipalName": "admin@contoso.com", "ipAddress": "203.0.113.10"}}}}, "targetResources": [{{"id": "66666666-7777-4888-9999-000000000000", "type": "User", "userPrincipalName": "new.admin@contoso.com", "modifiedProperties": []}}], "additionalDetails": []}}
  - name: the assignment failed
    expect: no_match
    event: {{"id": "Core Directory_RoleManagement_2", "category": "RoleManagement", "correlationId": "7a1e2d3c-4b5f-4a6b-9c7d-8e9f0a1b2c3d", "result": "failure", "resultReason": "Insufficient privileges", "activityDisplayName": "Add member to role", "activityDateTime": "2026-01-05T09:05:00Z", "loggedByService": "Core Directory", "operationType": "Assign", "initiatedBy": {{"user": {{"id": "11111111-2222-4333-8444-555555555555", "userPrincipalName": "admin@contoso.com", "ipAddress": "203.0.113.10"}}}}, "targetResources": [{{"id": "66666666-7777-4888-9999-000000000000", "type": "User", "userPrincipalName": "new.admin@contoso.com", "modifiedProperties": []}}], "additionalDetails": []}}
  - name: a user is removed from a role
    expect: no_match
    event: {{"id": "Core Directory_RoleManagement_3", "category": "RoleManagement", "correlationId": "8b2f3e4d-5c6a-4b7c-8d8e-9f0a1b2c3d4e", "result": "success", "resultReason": "", "activityDisplayName": "Remove member from role", "activityDateTime": "2026-01-05T09:10:00Z", "loggedByService": "Core Directory", "operationType": "Unassign", "initiatedBy": {{"user": {{"id": "11111111-2222-4333-8444-555555555555", "userPrincipalName": "admin@contoso.com", "ipAddress": "203.0.113.10"}}}}, "targetResources": [{{"id": "66666666-7777-4888-9999-000000000000", "type": "User", "userPrincipalName": "new.admin@contoso.com", "modifiedProperties": []}}], "additionalDetails": []}}
"#
    )
}

/// Today's date (UTC), YYYY-MM-DD, from the system clock (Howard Hinnant's civil-from-days).
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

const GITIGNORE: &str = "\
# rulepack: build staging folders (a failed build leaves them only if killed), release files,
# and the verification engines' caches.
.rulepack-*
/dist/
/.tools/
";

const VSCODE_SETTINGS: &str = r#"{
  "yaml.schemas": {
    "./.vscode/rule.schema.json": ["rules/**/*.yml", "rules/**/*.yaml"]
  }
}
"#;

/// The pack's CI: checks on pull requests (with the diff of the built pack as a comment) and
/// release files on tags. rulepack comes from the repository variables RULEPACK_GIT (its git
/// URL) and RULEPACK_TAG (a release tag), so every run uses the same pinned compiler.
const WORKFLOW: &str = r#"# rulepack CI: set the repository variables RULEPACK_GIT (rulepack's git URL) and RULEPACK_TAG
# (the release tag to install) under Settings > Secrets and variables > Actions > Variables.
name: rulepack
on:
  pull_request:
  push:
    tags: ["v*"]
permissions:
  contents: read
jobs:
  check:
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    permissions:
      contents: read
      pull-requests: write
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - uses: actions/cache@v4
        with:
          path: ~/.cargo/bin/rulepack
          key: rulepack-${{ vars.RULEPACK_TAG }}
      - name: Install rulepack
        run: command -v rulepack || cargo install --locked --git "${{ vars.RULEPACK_GIT }}" --tag "${{ vars.RULEPACK_TAG }}" rulepack
      - uses: actions/cache@v4
        with:
          path: ~/.cache/rulepack/engines
          key: rulepack-engines-${{ vars.RULEPACK_TAG }}
      - run: rulepack check --format github
      - run: rulepack test
      - name: The pack judged by independent engines (installed on first use)
        run: rulepack verify --format github
      - run: rulepack build --check --format github
      - name: What the change does to the built pack
        run: rulepack diff "origin/${{ github.base_ref }}" > rulepack-diff.md
      - name: Comment the diff on the pull request
        env:
          GH_TOKEN: ${{ github.token }}
        run: gh pr comment "${{ github.event.pull_request.number }}" --edit-last --body-file rulepack-diff.md || gh pr comment "${{ github.event.pull_request.number }}" --body-file rulepack-diff.md
  package:
    if: startsWith(github.ref, 'refs/tags/')
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/cache@v4
        with:
          path: ~/.cargo/bin/rulepack
          key: rulepack-${{ vars.RULEPACK_TAG }}
      - name: Install rulepack
        run: command -v rulepack || cargo install --locked --git "${{ vars.RULEPACK_GIT }}" --tag "${{ vars.RULEPACK_TAG }}" rulepack
      - run: rulepack package
      - uses: actions/upload-artifact@v4
        with:
          name: ${{ github.event.repository.name }}-${{ github.ref_name }}
          path: dist/
"#;
