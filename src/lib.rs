//! rulepack compiles vendor-neutral YAML detection rules to Microsoft Sentinel KQL, Splunk SPL and
//! Sigma. The pipeline reads top to bottom, one module per stage:
//! load → validate → lower → render → write. See ARCHITECTURE.md.

pub mod diag;
pub mod diff;
pub mod eval;
pub mod expect;
pub mod ir;
pub mod load;
pub mod lock;
pub mod lower;
pub mod manifest;
pub mod model;
pub mod out_folder;
pub mod package;
pub mod prove;
pub mod render;
pub mod replay;
pub mod scaffold;
pub mod schedule;
pub mod schema;
pub mod simulate;
pub mod source;
pub mod taxonomy;
pub mod templates;
pub mod validate;
pub mod verify;
pub mod write;

use diag::{Code, Diagnostic};
use manifest::Manifest;
use model::Rule;
use render::{Artifact, PackError, PackSink, Renderer};
use source::SourceMap;
use std::path::{Path, PathBuf};
use taxonomy::LogSource;
use templates::Templates;

/// Runs `f` on rulepack's worker threads, whose stacks are large enough for the deepest rule
/// the YAML budget admits (48 levels) in every stage; on the calling thread if none can start.
pub fn parallel<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .stack_size(64 << 20)
            .thread_name(|i| format!("rulepack-{i}"))
            .build()
            .ok()
    });
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
}

/// A pack's inputs.
pub struct Paths {
    pub rules: PathBuf,
    /// The shipped templates and log sources, with the team's overlay (`--templates`).
    pub templates: Templates,
    /// The pack's `rulepack.yml`.
    pub manifest: Manifest,
    /// The backends to render (`build --backend`); all of them when empty.
    pub backends: Vec<String>,
}

/// A compiled pack: the rules, their artifacts in path order, and warnings.
pub struct Compiled {
    pub rules: Vec<Rule>,
    pub logsources: Vec<LogSource>,
    pub artifacts: Vec<Artifact>,
    pub warnings: Vec<Diagnostic>,
    /// The pack's schedule and deployment settings the artifacts were rendered with.
    pub settings: schedule::PackSettings,
    /// Rule name → the backends that ship it as a hunting query (`Renderer::hunting_backends`).
    pub hunting: std::collections::BTreeMap<String, Vec<String>>,
}

/// Log sources declared under `logsources/` of the templates.
pub fn load_logsources(
    templates: &Templates,
    sources: &mut SourceMap,
) -> Result<Vec<LogSource>, Vec<Diagnostic>> {
    let files = templates.list("logsources").map_err(|d| vec![d])?;
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for f in files {
        match LogSource::load(&f, templates, sources) {
            Ok(ls) => out.push(ls),
            Err(d) => diags.push(d),
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

/// How much of the rules' tests a command reads. Reading the events into JSON values is most of
/// the cost of loading a rule, so only `test`, `export-tests` and the like keep them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestEvents {
    /// Read and validate the tests, and keep their events.
    Keep,
    /// Read and validate the tests, without building their events.
    Skip,
    /// Do not read the `tests:` section at all (`build`): `check` and `test` validate it, and CI
    /// runs them before `build --check`.
    Omit,
}

/// How strictly `rules/versions.lock` is held. While editing (`check`, `test`, `diff`, `build`,
/// `replay`), a rule that is not locked or whose logic changed without a bump is a warning, so a
/// change can be run and reviewed before it is versioned; at a release point (`build --check`,
/// `package`) it is an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockPolicy {
    Edit,
    Release,
}

/// Checked rules, their log sources, and the warnings found on the way.
pub struct Checked {
    pub rules: Vec<Rule>,
    pub logsources: Vec<LogSource>,
    pub warnings: Vec<Diagnostic>,
}

/// Load and validate every rule; all problems in all rules are reported together. Includes the
/// versioning checks against `rules/versions.lock`, held as `policy` says.
pub fn check(
    paths: &Paths,
    sources: &mut SourceMap,
    events: TestEvents,
    policy: LockPolicy,
) -> Result<Checked, Vec<Diagnostic>> {
    let (rules, logsources) = check_unlocked(paths, sources, events)?;
    let mut diags = match lock::read(&paths.rules) {
        Ok(Some(l)) => lock::check(&rules, &logsources, &l, policy),
        Ok(None) => vec![lock::missing(&paths.rules)],
        Err(d) => vec![d],
    };
    diags.extend(rules.iter().flat_map(|r| r.warnings.iter().cloned()));
    expect::settle(&rules, &mut diags, expect::Stage::Validate, true);
    if events != TestEvents::Omit {
        diags.extend(
            validate::check_coverage(&rules)
                .into_iter()
                .filter(|d| !d.is_error()),
        );
    }
    if diags.iter().any(Diagnostic::is_error) {
        Err(diags)
    } else {
        Ok(Checked {
            rules,
            logsources,
            warnings: diags,
        })
    }
}

/// `check` without the lock, for `rulepack lock` itself.
pub fn check_unlocked(
    paths: &Paths,
    sources: &mut SourceMap,
    events: TestEvents,
) -> Result<(Vec<Rule>, Vec<LogSource>), Vec<Diagnostic>> {
    let logsources = load_logsources(&paths.templates, sources)?;
    let files = load::rule_files(&paths.rules)?;
    if files.is_empty() {
        return Err(vec![
            Diagnostic::error(Code::Io, "no rule files (*.yml) found")
                .in_file(&paths.rules)
                .help("pass the folder that holds the rules with --rules"),
        ]);
    }
    let (validated, mut diags) = match events {
        TestEvents::Keep => load_valid::<serde_json::Value>(&files, sources, &logsources, false),
        TestEvents::Skip => {
            load_valid::<load::raw::EventShape>(&files, sources, &logsources, false)
        }
        TestEvents::Omit => load_valid::<load::raw::EventShape>(&files, sources, &logsources, true),
    };
    let mut rules = Vec::new();
    for v in validated {
        match v {
            Ok(r) => rules.push(r),
            Err(ds) => diags.extend(ds),
        }
    }
    diags.extend(validate::check_unique(&rules));
    diags.extend(validate::check_correlations(&rules));
    // Without the tests section nothing is known of the rules' tests.
    if events != TestEvents::Omit {
        diags.extend(validate::check_coverage(&rules));
    }
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    Ok((rules, logsources))
}

/// Files read, parsed and validated at a time. Without the tests (`build`), each file's text
/// is cut to its rule part once the rule is valid, so a large pack's texts (mostly test events)
/// are never all held at once.
const LOAD_CHUNK: usize = 256;

/// Loads and validates every file: per file, its rule or its problems; and the problems of
/// reading and parsing, reading's first.
fn load_valid<E: serde::de::DeserializeOwned + Send + Sync + load::raw::TestEvent>(
    files: &[PathBuf],
    sources: &mut SourceMap,
    logsources: &[LogSource],
    omit_tests: bool,
) -> (Vec<Result<Rule, Vec<Diagnostic>>>, Vec<Diagnostic>) {
    let mut validated = Vec::new();
    let (mut read_diags, mut parse_diags) = (Vec::new(), Vec::new());
    for chunk in files.chunks(LOAD_CHUNK) {
        let (ids, diags) = load::read_sources(chunk, sources);
        read_diags.extend(diags);
        // Each file is parsed and validated on one worker, and its raw form dropped right away.
        let parsed = load::parse_each::<E, _>(sources, &ids, omit_tests, |file, raw| {
            raw.map(|raw| validate::validate(&raw, file, &sources.get(file).text, logsources))
        });
        for (&file, (p, tests_from)) in ids.iter().zip(parsed) {
            match p {
                Ok(Ok(rule)) => {
                    // A valid rule's diagnostics all point into its rule part.
                    if let Some(at) = tests_from {
                        sources.truncate(file, at);
                    }
                    validated.push(Ok(rule));
                }
                Ok(Err(ds)) => validated.push(Err(ds)),
                Err(d) => parse_diags.push(d),
            }
        }
    }
    read_diags.extend(parse_diags);
    (validated, read_diags)
}

/// Check, then render every rule for every backend, in memory.
pub fn compile(
    paths: &Paths,
    sources: &mut SourceMap,
    events: TestEvents,
    policy: LockPolicy,
) -> Result<Compiled, Vec<Diagnostic>> {
    let (checked, renderer) = prepare(paths, sources, events, policy)?;
    let Checked {
        rules,
        logsources,
        warnings,
    } = checked;
    let rendered =
        render_each(&rules, &logsources, &renderer, &Ok, &InMemory).map_err(|f| match f {
            Failure::Rules(d) => d,
            Failure::Sink(e, _) => vec![
                Diagnostic::error(Code::Io, format!("rendering in memory failed: {e}"))
                    .help("the machine ran out of memory or the like; try again"),
            ],
        })?;
    let mut artifacts: Vec<Artifact> = rendered.out.into_iter().flatten().collect();
    artifacts.extend(rendered.pack);
    artifacts.sort_by(|a, b| a.path.cmp(&b.path));
    let hunting = rules
        .iter()
        .map(|r| (r.name.0.clone(), renderer.hunting_backends(r)))
        .filter(|(_, b)| !b.is_empty())
        .collect();
    let mut warnings: Vec<Diagnostic> = warnings.into_iter().chain(rendered.warnings).collect();
    expect::settle(
        &rules,
        &mut warnings,
        expect::Stage::Render,
        paths.backends.is_empty(),
    );
    Ok(Compiled {
        rules,
        logsources,
        artifacts,
        warnings,
        settings: renderer.settings().clone(),
        hunting,
    })
}

/// What `build` wrote.
pub struct Built {
    pub rules: usize,
    pub files: usize,
    pub warnings: Vec<Diagnostic>,
}

pub enum BuildError {
    /// Problems in the rules or templates; nothing was written.
    Rules(Vec<Diagnostic>),
    /// Writing failed; the previous output is unchanged. With the warnings of the rules.
    Io(std::io::Error, Vec<Diagnostic>),
}

/// Check, then render every rule and write its artifacts as soon as they are rendered, so a
/// large pack never holds all its artifacts at once; `out` is replaced only when all is done.
pub fn build(paths: &Paths, sources: &mut SourceMap, out: &Path) -> Result<Built, BuildError> {
    let inputs: Vec<&Path> = std::iter::once(paths.rules.as_path())
        .chain(paths.templates.overlay.as_deref())
        .collect();
    out_folder::check(out, &inputs).map_err(|e| BuildError::Io(e, Vec::new()))?;
    let (checked, renderer) =
        prepare(paths, sources, TestEvents::Omit, LockPolicy::Edit).map_err(BuildError::Rules)?;
    let Checked {
        rules,
        logsources,
        warnings,
    } = checked;
    let staging = write::Staging::new(out).map_err(|e| BuildError::Io(e, Vec::new()))?;
    let rendered = render_each(
        &rules,
        &logsources,
        &renderer,
        &|a| staging.write(&a).map(|()| a.len()),
        &staging,
    )
    .map_err(|f| match f {
        Failure::Rules(d) => BuildError::Rules(d),
        Failure::Sink(e, mut warnings) => {
            // Cut short: what was rendered is marked, nothing is judged stale.
            expect::settle(&rules, &mut warnings, expect::Stage::Render, false);
            BuildError::Io(e, warnings)
        }
    })?;
    let mut warnings: Vec<Diagnostic> = warnings.into_iter().chain(rendered.warnings).collect();
    expect::settle(
        &rules,
        &mut warnings,
        expect::Stage::Render,
        paths.backends.is_empty(),
    );
    if let Err(e) = staging.commit() {
        return Err(BuildError::Io(e, warnings));
    }
    Ok(Built {
        rules: rules.len(),
        files: rendered.out.iter().sum::<usize>() + rendered.pack.len(),
        warnings,
    })
}

/// `compile`'s pack artifacts, each held whole in memory.
struct InMemory;

impl PackSink for InMemory {
    type File = Vec<u8>;
    type Done = Artifact;

    fn create(&self, _: &Path) -> std::io::Result<Vec<u8>> {
        Ok(Vec::new())
    }

    fn finish(&self, path: PathBuf, file: Vec<u8>) -> std::io::Result<Artifact> {
        Ok(Artifact {
            path,
            content: String::from_utf8(file).map_err(std::io::Error::other)?,
            rule: None,
            primary: false,
        })
    }
}

/// The checked rules, their log sources, and the loaded templates.
fn prepare(
    paths: &Paths,
    sources: &mut SourceMap,
    events: TestEvents,
    policy: LockPolicy,
) -> Result<(Checked, Renderer), Vec<Diagnostic>> {
    let checked = check(paths, sources, events, policy)?;
    let renderer = Renderer::load(
        &paths.templates,
        sources,
        &checked.logsources,
        &paths.manifest,
    )?
    .with_settings(paths.manifest.settings.clone())
    .only(&paths.backends);
    Ok((checked, renderer))
}

enum Failure {
    Rules(Vec<Diagnostic>),
    /// The sink's first error, and the rules' warnings.
    Sink(std::io::Error, Vec<Diagnostic>),
}

/// What the sink returned for each rule's artifacts, in rule order; what the pack sink made of
/// the pack's artifacts; and the warnings.
struct Rendering<T, P> {
    out: Vec<T>,
    pack: Vec<P>,
    warnings: Vec<Diagnostic>,
}

/// Renders every rule, handing its artifacts to `sink` on the worker that rendered them, then
/// the pack artifacts to `pack`. Problems in the rules or templates take precedence over sink
/// errors.
fn render_each<T: Send, P: PackSink>(
    rules: &[Rule],
    logsources: &[LogSource],
    renderer: &Renderer,
    sink: &(dyn Fn(Vec<Artifact>) -> std::io::Result<T> + Sync),
    pack: &P,
) -> Result<Rendering<T, P::Done>, Failure> {
    // Rules render independently, so they use every core; results keep the rules' order.
    use rayon::prelude::*;
    type Done<T> = (render::PackVars, Vec<Diagnostic>, T);
    let results: Vec<Result<Done<T>, Failure>> = parallel(|| {
        rules
            .par_iter()
            .filter_map(|rule| {
                let ls = logsources.iter().find(|l| l.name == rule.logsource)?;
                Some(match renderer.render(rule, rules, ls) {
                    Ok(r) => match sink(r.artifacts) {
                        Ok(t) => Ok((r.pack, r.warnings, t)),
                        Err(e) => Err(Failure::Sink(e, r.warnings)),
                    },
                    Err(d) => Err(Failure::Rules(vec![d])),
                })
            })
            .collect()
    });
    let mut packs = Vec::new();
    let mut rendering = Rendering {
        out: Vec::new(),
        pack: Vec::new(),
        warnings: Vec::new(),
    };
    let mut errors = Vec::new();
    let mut sink_error = None;
    for r in results {
        match r {
            Ok((pack, warnings, t)) => {
                packs.push(pack);
                rendering.warnings.extend(warnings);
                rendering.out.push(t);
            }
            Err(Failure::Rules(d)) => errors.extend(d),
            Err(Failure::Sink(e, warnings)) => {
                rendering.warnings.extend(warnings);
                sink_error.get_or_insert(e);
            }
        }
    }
    if !errors.is_empty() {
        return Err(Failure::Rules(once_each(errors)));
    }
    if let Some(e) = sink_error {
        return Err(Failure::Sink(e, rendering.warnings));
    }
    match renderer.render_pack(&packs, pack) {
        Ok(done) => rendering.pack = done,
        Err(PackError::Template(d)) => return Err(Failure::Rules(vec![d])),
        Err(PackError::Io(e)) => return Err(Failure::Sink(e, rendering.warnings)),
    }
    Ok(rendering)
}

/// `errors` without repeats, in order: a problem in a backend's declarations (a `pack_vars`
/// path that leads nowhere) is met by every rule alike.
fn once_each(errors: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut seen = std::collections::HashSet::new();
    errors
        .into_iter()
        .filter(|e| {
            let span = e.span.map(|s| (s.file, s.start, s.end));
            seen.insert((e.message.clone(), e.path.clone(), e.line_col, span))
        })
        .collect()
}

/// JSON for external test engines: per rule, its artifacts (relative to the output folder), its
/// Sigma approximations, and its tests with their events and positions.
pub fn tests_manifest(c: &Compiled, sources: &SourceMap) -> String {
    let rules: Vec<serde_json::Value> = c
        .rules
        .iter()
        .map(|r| {
            // The query of each backend: the engines replay queries, not deployment wrappers.
            let artifacts: serde_json::Map<String, serde_json::Value> = c
                .artifacts
                .iter()
                .filter(|a| a.primary && a.rule.as_deref() == Some(r.name.0.as_str()))
                .filter_map(|a| {
                    let backend = a.path.components().next()?.as_os_str().to_str()?.to_string();
                    Some((backend, serde_json::Value::String(a.path.display().to_string())))
                })
                .collect();
            // The build's warnings of one kind about this rule.
            let about = |code: Code| -> Vec<&str> {
                c.warnings
                    .iter()
                    .filter(|w| w.code == code && w.message.contains(&format!("`{}`", r.name.0)))
                    .map(|w| w.message.as_str())
                    .collect()
            };
            let approximations = about(Code::Approximation);
            let omitted = about(Code::Omitted);
            let file = sources.get(r.file).path.display().to_string();
            let tests: Vec<serde_json::Value> = r
                .tests
                .iter()
                .map(|t| {
                    let (line, _) = sources.line_col(t.span.file, t.span.start);
                    serde_json::json!({ "name": t.name, "expect_match": t.expect_match, "line": line, "events": t.events })
                })
                .collect();
            let b = schedule::RunBounds::of(r, &c.settings);
            serde_json::json!({
                "name": r.name.0,
                "id": r.id.0,
                "schedule": {
                    "kind": b.kind,
                    "frequency_minutes": b.frequency,
                    "delay_minutes": b.delay,
                    "window_minutes": b.window,
                },
                // Backends that ship it as a hunting query: not scheduled there (one run by a
                // person over a time range, docs/semantics.md "Hunting queries").
                "hunting": c.hunting.get(&r.name.0).cloned().unwrap_or_default(),
                "file": file,
                "aggregation": r.aggregation().is_some(),
                "correlation": r.correlation().map(|c| c.kind),
                "artifacts": artifacts,
                "sigma_approximations": approximations,
                "omitted": omitted,
                "tests": tests,
            })
        })
        .collect();
    let mut text =
        serde_json::to_string_pretty(&serde_json::json!({ "rules": rules })).unwrap_or_default();
    text.push('\n');
    text
}
