//! The pack manifest, `rulepack.yml` at the pack's root: what the pack is called and how each
//! SIEM names it. The Splunk app folder, `app.conf`, the release file names and the Sentinel pack
//! template come from here. Every value a SIEM would refuse is an error at its own position.
//!
//! To add a setting: a field in `RawManifest` (with `#[serde(default)]` when optional), its check
//! in `validate`, and its field in `Manifest`; templates see it as `pack.<field>`.

use crate::diag::{Code, Diagnostic};
use crate::load::raw::S;
use crate::load::{read_source, yaml};
use crate::model::Duration;
use crate::schedule::PackSettings;
use crate::source::{FileId, SourceMap};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub const FILE: &str = "rulepack.yml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: S<String>,
    version: S<String>,
    description: S<String>,
    author: S<String>,
    splunk: RawSplunk,
    sentinel: RawSentinel,
    #[serde(default)]
    schedule: Option<RawSchedule>,
    #[serde(default)]
    deploy: Option<RawDeploy>,
    #[serde(default)]
    verify: Option<RawVerify>,
}

/// `rulepack verify`'s declared engine gaps (docs/rule-format.md, "The pack").
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    not_executable: RawNotExecutable,
}

/// One list per replay engine (`REPLAY_ENGINES`); an unknown engine is an unknown key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotExecutable {
    #[serde(rename = "duckdb-kql", default)]
    duckdb_kql: Vec<S<String>>,
    #[serde(rename = "sigma-sqlite", default)]
    sigma_sqlite: Vec<S<String>>,
}

/// docs/semantics.md, "Running on a schedule".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    max_ingestion_delay: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeploy {
    enabled: S<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSplunk {
    app_id: S<String>,
    label: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSentinel {
    pack_name: S<String>,
}

/// A checked manifest; serialised as the templates' `pack` variable.
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    /// File-name-safe pack name: the release files are `<name>-<version>-…`.
    pub name: String,
    /// MAJOR.MINOR.PATCH: the Splunk app version, the ARM `contentVersion` (plus `.0`).
    pub version: String,
    pub description: String,
    /// The default author of new rules (`rulepack new`) and the Splunk app's author.
    pub author: String,
    pub splunk: SplunkApp,
    pub sentinel: SentinelPack,
    /// `schedule.max_ingestion_delay` (default 10m) and `deploy.enabled` (default false).
    pub settings: PackSettings,
    /// `verify.not_executable`: replay engine → the rules it is known not to run. `rulepack
    /// verify` fails a rule an engine cannot run unless it is listed here, and a listed rule that
    /// runs, so the list stays true.
    pub not_executable: BTreeMap<String, BTreeSet<String>>,
}

/// The replay engines of `rulepack verify`, the keys of `verify.not_executable`.
pub const REPLAY_ENGINES: [&str; 2] = ["duckdb-kql", "sigma-sqlite"];

#[derive(Clone, Debug, Serialize)]
pub struct SplunkApp {
    /// The app folder under `out/splunk/`, `[package] id` and `[id] name` in app.conf.
    pub app_id: String,
    pub label: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SentinelPack {
    /// Shown in the pack ARM template's metadata.
    pub pack_name: String,
}

/// The pack root: `explicit` if given (it must hold a manifest), else the first of `start` and
/// its parents that holds `rulepack.yml`, as cargo finds Cargo.toml.
pub fn find_root(explicit: Option<&Path>, start: &Path) -> Result<PathBuf, Diagnostic> {
    if let Some(dir) = explicit {
        let file = dir.join(FILE);
        return if file.is_file() {
            Ok(dir.to_path_buf())
        } else {
            Err(Diagnostic::error(
                Code::Manifest,
                format!("no {FILE} in the pack folder {}", dir.display()),
            )
            .in_file(file)
            .help("pass the folder that holds rulepack.yml with --pack, or run `rulepack init DIR` to create a pack"))
        };
    }
    for dir in start.ancestors() {
        if dir.join(FILE).is_file() {
            return Ok(dir.to_path_buf());
        }
    }
    Err(Diagnostic::error(
        Code::Manifest,
        format!("no {FILE} in {} or any folder above it", start.display()),
    )
    .in_file(start.join(FILE))
    .help("run `rulepack init` to create a pack here, or pass --pack DIR"))
}

/// Reads and checks `<root>/rulepack.yml`; all problems are reported together.
pub fn load(root: &Path, sources: &mut SourceMap) -> Result<Manifest, Vec<Diagnostic>> {
    let file = read_source(&root.join(FILE), sources)
        .map_err(|d| vec![d.help("run `rulepack init` to create a pack, or pass --pack DIR")])?;
    parse(sources, file)
}

/// Parses and checks a manifest already in the source map.
pub fn parse(sources: &SourceMap, file: FileId) -> Result<Manifest, Vec<Diagnostic>> {
    let raw: RawManifest = yaml::parse(sources, file).map_err(|d| vec![d])?;
    validate(raw, file)
}

fn validate(raw: RawManifest, file: FileId) -> Result<Manifest, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut check = |v: &S<String>, problem: Option<String>, help: &str| {
        if let Some(p) = problem {
            diags.push(
                Diagnostic::error(Code::Manifest, p)
                    .at(yaml::span_of(v, file))
                    .help(help.to_string()),
            );
        }
    };
    check(
        &raw.name,
        name_problem(&raw.name.value),
        "the name is part of the release file names: letters, digits, `_` and `-`, starting with a letter",
    );
    check(
        &raw.version,
        version_problem(&raw.version.value),
        "write MAJOR.MINOR.PATCH, e.g. 1.0.0: Splunk's app.conf wants Semantic Versioning and ARM's contentVersion four numbers (rulepack appends .0)",
    );
    check(
        &raw.splunk.app_id,
        app_id_problem(&raw.splunk.app_id.value),
        "Splunk app ids (app.conf [package] id, checked by AppInspect's check_for_valid_package_id): letters, digits, `.`, `_` and `-`, not starting with a digit, not ending with `.`, not a reserved or Splunk default app name",
    );
    for (v, what) in [
        (&raw.description, "description"),
        (&raw.author, "author"),
        (&raw.splunk.label, "splunk.label"),
        (&raw.sentinel.pack_name, "sentinel.pack_name"),
    ] {
        check(v, text_problem(&v.value, what), "write one line of text");
    }
    let mut settings = PackSettings::default();
    if let Some(sched) = &raw.schedule {
        let v = &sched.max_ingestion_delay;
        match Duration::parse(&v.value).filter(|d| d.minutes <= 1440) {
            Some(d) => settings.max_ingestion_delay = d,
            None => check(
                v,
                Some(format!(
                    "invalid schedule.max_ingestion_delay `{}`",
                    v.value
                )),
                "write a duration from 1m to 1d such as 10m or 1h: how much later than its event time a record may be ingested and still be evaluated (docs/semantics.md)",
            ),
        }
    }
    if let Some(d) = &raw.deploy {
        settings.deploy_enabled = d.enabled.value;
    }
    let mut not_executable = BTreeMap::new();
    if let Some(v) = raw.verify {
        let lists = [v.not_executable.duckdb_kql, v.not_executable.sigma_sqlite];
        for (engine, rules) in REPLAY_ENGINES.iter().zip(lists) {
            let names: BTreeSet<String> = rules.into_iter().map(|r| r.value).collect();
            if !names.is_empty() {
                not_executable.insert(engine.to_string(), names);
            }
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    Ok(Manifest {
        settings,
        not_executable,
        name: raw.name.value,
        version: raw.version.value,
        description: raw.description.value,
        author: raw.author.value,
        splunk: SplunkApp {
            app_id: raw.splunk.app_id.value,
            label: raw.splunk.label.value,
        },
        sentinel: SentinelPack {
            pack_name: raw.sentinel.pack_name.value,
        },
    })
}

fn name_problem(name: &str) -> Option<String> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= 64;
    (!ok).then(|| format!("invalid pack name `{name}`"))
}

/// Semantic Versioning's core (no pre-release or build part, which ARM's four-number
/// contentVersion cannot carry), without leading zeros.
pub fn version_problem(v: &str) -> Option<String> {
    let parts: Vec<&str> = v.split('.').collect();
    let ok = parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
                && p.parse::<u32>().is_ok()
        });
    (!ok).then(|| format!("invalid version `{v}`"))
}

/// Windows device names AppInspect refuses as app ids.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Apps every Splunk instance has (AppInspect's check_for_default_splunk_app): a pack with one
/// of these ids would replace them.
const SPLUNK_APPS: &[&str] = &[
    "alert_logevent",
    "alert_webhook",
    "appsbrowser",
    "launcher",
    "learned",
    "legacy",
    "sample_app",
    "search",
    "splunk_archiver",
    "splunk_httpinput",
    "splunk_instrumentation",
    "splunk_monitoring_console",
    "SplunkForwarder",
    "SplunkLightForwarder",
    "user-prefs",
    "framework",
];

/// AppInspect 4's `_is_package_id_valid` and its message: letters, digits, `.`, `_`, `-`; not
/// starting with a digit; not ending with a dot or an archive suffix; not a reserved name.
pub fn app_id_problem(id: &str) -> Option<String> {
    let bad = |why: &str| Some(format!("invalid Splunk app id `{id}`: {why}"));
    if id.is_empty() {
        return bad("it is empty");
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return bad(&format!("`{c}` is not allowed"));
    }
    if id.starts_with(|c: char| c.is_ascii_digit()) {
        return bad("it starts with a digit");
    }
    if let Some(s) = [".tar.gz", ".tar", ".tgz", ".spl", "."]
        .iter()
        .find(|s| id.ends_with(**s))
    {
        return bad(&format!("it ends with `{s}`"));
    }
    if RESERVED.contains(&id) {
        return bad("it is a reserved device name");
    }
    if SPLUNK_APPS.contains(&id) {
        return bad("a Splunk default app has this id");
    }
    None
}

fn text_problem(v: &str, what: &str) -> Option<String> {
    if v.trim().is_empty() {
        Some(format!("`{what}` is empty"))
    } else if v.contains('\n') || v.contains('\r') {
        Some(format!("`{what}` spans several lines"))
    } else {
        // The same policy as rule text (docs/rule-format.md, "Text and control characters").
        v.chars()
            .find(|c| c.is_control() && *c != '\t')
            .map(|c| format!("`{what}` holds the control character U+{:04X}", c as u32))
    }
}

/// The manifest `rulepack init` writes.
pub fn template(name: &str, author: &str) -> String {
    let app_id = name.replace('-', "_");
    format!(
        "# The pack manifest (rulepack.yml): how the pack and its outputs are named.\n\
         name: {name}\n\
         # MAJOR.MINOR.PATCH: the Splunk app version and the ARM contentVersion.\n\
         version: 0.1.0\n\
         description: Detection rules of the {name} pack, compiled by rulepack.\n\
         # The default author of new rules (`rulepack new`).\n\
         author: {author}\n\
         splunk:\n\
         \x20 # The app folder (out/splunk/<app_id>/) and app.conf [package] id.\n\
         \x20 app_id: {app_id}\n\
         \x20 label: {name} detections\n\
         sentinel:\n\
         \x20 pack_name: {name}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_as_appinspect_judges_them() {
        for ok in ["rulepack_entra_guest", "TA-my.app", "_x", "a1"] {
            assert_eq!(app_id_problem(ok), None, "{ok}");
        }
        for bad in [
            "1app",
            "my app",
            "app.",
            "app.spl",
            "app.tar.gz",
            "CON",
            "search",
            "",
            "é",
        ] {
            assert!(app_id_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn texts_are_one_line_without_control_characters() {
        assert_eq!(text_problem("a\tb \\ é", "author"), None);
        for bad in ["", " ", "a\nb", "a\rb", "a\u{1}", "a\u{7f}", "\u{9b}x"] {
            assert!(text_problem(bad, "author").is_some(), "{bad:?}");
        }
    }

    #[test]
    fn versions_are_three_numbers() {
        for ok in ["0.1.0", "1.0.0", "10.20.30"] {
            assert_eq!(version_problem(ok), None, "{ok}");
        }
        for bad in [
            "1.0",
            "1.0.0.0",
            "01.0.0",
            "1.0.0-rc1",
            "v1.0.0",
            "1..0",
            "",
        ] {
            assert!(version_problem(bad).is_some(), "{bad}");
        }
    }
}
