//! Stage 4, render: IR → artifact text through each backend's tera templates: per-rule
//! artifacts (the query first, then files that embed it) and per-pack artifacts. Backends never
//! see YAML rules; they see the validated rule and the IR.

pub mod backend;
pub mod budget;
pub mod derived_id;
pub mod error;
pub mod escape;
mod filters;
pub mod joint;
mod normalise;
mod pack_decl;
pub mod pipeline;
pub mod query;
pub mod schedule;
pub mod sigma;
mod sigma_notes;
mod template_diag;
mod views;

use crate::diag::{Code, Diagnostic};
use crate::ir::Cond;
use crate::lower::{lower, lower_element};
use crate::manifest::Manifest;
use crate::model::{CorrelationKind, Logic, Output, Rule, StageRef, find};
use crate::schedule::{BoundsView, PackSettings, RunBounds, duration_text};
use crate::source::SourceMap;
use crate::taxonomy::LogSource;
use crate::templates::Templates;
use backend::{Backend, Style, Support};
use indexmap::IndexMap;
use sigma_notes::{note_approximations, note_over_matches, sigma_meta};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use template_diag::{context_diag, derived_id, error_template, template_diag, to_value};
use tera::{Context, Tera, Value};
use views::{CorrView, Lowered, RuleView, StageView, agg_view, kind_name, pack_view};

/// The backends rulepack ships, in output order.
pub const BACKENDS: &[&str] = &["sentinel", "splunk", "sigma"];

pub struct Artifact {
    /// Relative to the output folder, e.g. `sentinel/guest_invited.kql`.
    pub path: PathBuf,
    pub content: String,
    /// The rule it belongs to (None for pack artifacts) and whether it is that rule's query.
    pub rule: Option<String>,
    pub primary: bool,
}

/// Where the pack artifacts go as they render, each in one piece of text that is never held
/// whole by the renderer: files of the staging folder (`build`), or memory.
pub trait PackSink: Sync {
    type File: Write;
    /// What the sink makes of a finished artifact.
    type Done: Send;
    /// Where the artifact at `path` (relative to the output folder) is written.
    fn create(&self, path: &Path) -> io::Result<Self::File>;
    /// The artifact at `path` is complete in `file`.
    fn finish(&self, path: PathBuf, file: Self::File) -> io::Result<Self::Done>;
}

/// Why a pack artifact was not rendered: the templates, or the sink.
pub enum PackError {
    Template(Diagnostic),
    Io(io::Error),
}

impl From<Diagnostic> for PackError {
    fn from(d: Diagnostic) -> PackError {
        PackError::Template(d)
    }
}

/// One rule rendered: its artifacts, its warnings, and what the pack artifacts need of it.
pub struct Rendered {
    pub artifacts: Vec<Artifact>,
    pub warnings: Vec<Diagnostic>,
    pub pack: PackVars,
}

/// What each backend's pack artifacts see of one rule (`rules`): its pieces and the variables
/// `pack_vars` names (`views::pack_view`). Template values share their contents, so the rule's
/// metadata kept for three backends is held once.
pub struct PackVars(Vec<Value>);

pub struct Renderer {
    backends: Vec<Backend>,
    /// The pack's schedule and deployment settings (tolerated delay, enabled).
    settings: PackSettings,
    /// Each backend's `constants` as a template value, converted once.
    constants: Vec<Value>,
    /// The pySigma pipelines' view of the field tables, for the pack templates (`pipelines`).
    pipelines: Value,
    /// The pack manifest, as the templates' `pack` variable.
    pack: Value,
    /// Pack artifact file names with `{app_id}` filled from the manifest.
    pack_files: Vec<Vec<String>>,
    tera: Tera,
}

impl Renderer {
    /// Loads every backend from the shipped templates and the team's overlay.
    pub fn load(
        templates: &Templates,
        sources: &mut SourceMap,
        logsources: &[LogSource],
        manifest: &Manifest,
    ) -> Result<Renderer, Vec<Diagnostic>> {
        let mut backends = Vec::new();
        let mut constants = Vec::new();
        let mut diags = Vec::new();
        let mut tera = Tera::default();
        tera.autoescape_on(Vec::<&str>::new());
        filters::register(&mut tera);
        for name in BACKENDS {
            let b = match Backend::load(name, templates, sources) {
                Ok(b) => b,
                Err(ds) => {
                    diags.extend(ds);
                    continue;
                }
            };
            if let Err(d) = check_mapping(&b, logsources) {
                diags.push(d);
                continue;
            }
            let mut ok = true;
            for t in &b.templates {
                if let Err(e) = tera.add_raw_template(&t.name, &t.text) {
                    ok = false;
                    diags.push(template_diag(
                        &t.path,
                        &e,
                        "fix the template syntax at the position shown",
                    ));
                }
            }
            if !ok {
                continue;
            }
            match to_value(&b.fields.constants, &b.templates[0].path) {
                Ok(c) => {
                    constants.push(c);
                    backends.push(b);
                }
                Err(d) => diags.push(d),
            }
        }
        let pipelines = if diags.is_empty() {
            match pipelines_value(&backends, logsources) {
                Ok(v) => v,
                Err(d) => return Err(vec![d]),
            }
        } else {
            Value::none()
        };
        let pack = Value::try_from_serializable(manifest)
            .map_err(|e| vec![context_diag(Path::new(crate::manifest::FILE), &e)])?;
        let pack_files = backends
            .iter()
            .map(|b| {
                b.config
                    .pack_artifacts
                    .iter()
                    .map(|a| backend::fill(&a.file, &[("app_id", &manifest.splunk.app_id)]))
                    .collect()
            })
            .collect();
        if diags.is_empty() {
            Ok(Renderer {
                backends,
                settings: PackSettings::default(),
                constants,
                pipelines,
                pack,
                pack_files,
                tera,
            })
        } else {
            Err(diags)
        }
    }

    /// Uses the pack's settings (from its manifest) instead of the defaults.
    pub fn with_settings(mut self, settings: PackSettings) -> Renderer {
        self.settings = settings;
        self
    }

    /// Renders only the named backends (all when `names` is empty). The pySigma pipelines
    /// were already derived from every backend's field table, so the Sigma output is the same
    /// whichever others are left out.
    pub fn only(mut self, names: &[String]) -> Renderer {
        if names.is_empty() {
            return self;
        }
        let backends = std::mem::take(&mut self.backends);
        let constants = std::mem::take(&mut self.constants);
        let pack_files = std::mem::take(&mut self.pack_files);
        for ((b, c), f) in backends.into_iter().zip(constants).zip(pack_files) {
            if names.contains(&b.config.name) {
                self.backends.push(b);
                self.constants.push(c);
                self.pack_files.push(f);
            }
        }
        self
    }

    pub fn settings(&self) -> &PackSettings {
        &self.settings
    }

    /// The backends that ship `rule` as a hunting query a person runs, not a scheduled search:
    /// those whose `fields.yml` constant `hunting_kinds` names the rule's correlation kind.
    /// Templates read the same constant; the engines and the schedule proof read this, so a
    /// hunting query is left out of schedule checks by the declaration, never by its name.
    pub fn hunting_backends(&self, rule: &Rule) -> Vec<String> {
        let Some(kind) = rule.correlation().map(|c| kind_name(c.kind)) else {
            return Vec::new();
        };
        self.backends
            .iter()
            .filter(|b| {
                b.fields
                    .constants
                    .get("hunting_kinds")
                    .and_then(|v| v.as_array())
                    .is_some_and(|kinds| kinds.iter().any(|k| k.as_str() == Some(kind)))
            })
            .map(|b| b.config.name.clone())
            .collect()
    }

    /// Renders one rule's artifacts for every backend; `rules` is the pack, for correlations.
    pub fn render(
        &self,
        rule: &Rule,
        rules: &[Rule],
        ls: &LogSource,
    ) -> Result<Rendered, Diagnostic> {
        let lowered = |o: &Output| {
            let array = ls.fields.get(&o.field.0).and_then(|f| f.array.clone());
            let filter = match (&o.filter, array) {
                (Some(f), Some(a)) => Some(lower_element(f, ls, &a)),
                _ => None,
            };
            (o.clone(), filter)
        };
        let outputs: Vec<_> = rule.outputs.iter().map(lowered).collect();
        let logic = match &rule.logic {
            Logic::Events { condition, .. } => Lowered::Events(lower(condition, ls)),
            Logic::Correlation(c) => {
                let stage = |s: &StageRef| -> Result<(&Rule, Cond), Diagnostic> {
                    find(rules, &s.rule)
                        .and_then(|r| Some((r, lower(r.condition()?, ls))))
                        .ok_or_else(|| {
                            Diagnostic::error(
                                Code::BadCorrelation,
                                format!("no single-record rule named `{}`", s.rule.0),
                            )
                            .at(s.span)
                        })
                };
                Lowered::Correlation {
                    c,
                    first: c.first.iter().map(stage).collect::<Result<Vec<_>, _>>()?,
                    then: stage(&c.then)?,
                    key: Box::new(lowered(&c.key)),
                }
            }
        };
        let view = RuleView {
            rule,
            tactic_names: rule.tactics.iter().map(|t| t.pascal).collect(),
            tactic_slugs: rule.tactics.iter().map(|t| t.slug).collect(),
            technique_tags: rule
                .techniques
                .iter()
                .map(|t| t.0.to_ascii_lowercase())
                .collect(),
            columns: rule.outputs.iter().map(|o| o.column.0.as_str()).collect(),
        };
        // The rule's view, the pack settings and the rule's run bounds are the same for every
        // backend: convert them once.
        let rule_value = Value::try_from_serializable(&view);
        let first_path = self.backends.first().map(|b| b.templates[0].path.clone());
        let first_path = first_path.as_deref().unwrap_or(Path::new(""));
        let settings = to_value(&self.settings, first_path)?;
        let sched = to_value(
            &BoundsView::from(RunBounds::of(rule, &self.settings)),
            first_path,
        )?;
        let mut out = Rendered {
            artifacts: Vec::new(),
            warnings: Vec::new(),
            pack: PackVars(Vec::new()),
        };
        for (b, constants) in self.backends.iter().zip(&self.constants) {
            let name = &b.config.name;
            let fail = |m: error::RenderError| {
                Diagnostic::error(Code::Template, format!("{name} backend: {m}"))
                    .in_file(crate::templates::builtin_path(name))
            };
            let path = &b.templates[0].path;
            // In this order: templates that iterate over a rule's variables see it.
            let mut vars: IndexMap<&'static str, Value> = IndexMap::new();
            let rule_value = rule_value.as_ref().map_err(|e| context_diag(path, e))?;
            vars.insert("rule", rule_value.clone());
            vars.insert("c", constants.clone());
            vars.insert("pack", self.pack.clone());
            let agg = rule.aggregation().map(|a| agg_view(b, rule, a));
            vars.insert("agg", to_value(&agg, path)?);
            vars.insert("settings", settings.clone());
            vars.insert("sched", sched.clone());
            if let Lowered::Correlation { c, key, .. } = &logic {
                let reason = match b.config.correlations.get(&c.kind) {
                    None => Some(format!(
                        "the backend declares no {} correlation",
                        kind_name(c.kind)
                    )),
                    Some(Support::No(why)) => Some(why.clone()),
                    Some(Support::Yes)
                        if b.config.style == Style::Sigma
                            && ls
                                .fields
                                .get(&key.0.field.0)
                                .is_some_and(|f| f.array.is_some()) =>
                    {
                        Some(
                            "its `by` field sits in an array, which a Sigma group-by cannot name"
                                .to_string(),
                        )
                    }
                    Some(Support::Yes) => None,
                };
                if let Some(reason) = reason {
                    out.warnings.push(
                        Diagnostic::warning(
                            Code::Omitted,
                            format!("no {name} output for `{}`: {reason}", rule.name.0),
                        )
                        .at(rule.spans.condition)
                        .help(format!(
                            "the {name} pack lists it as omitted; the other backends carry the rule"
                        )),
                    );
                    vars.insert("omitted", Value::from(reason));
                    out.pack.0.push(pack_view(&vars, &b.pack_vars)?);
                    continue;
                }
            }
            match (b.config.style, &logic) {
                (Style::Query, Lowered::Events(ir)) => {
                    let plan = query::Walker::new(b, ls, &rule.name.0)
                        .plan(ir, &outputs, &rule.parameters)
                        .map_err(fail)?;
                    vars.insert("plan", to_value(&plan, path)?);
                }
                (
                    Style::Query,
                    Lowered::Correlation {
                        c,
                        first,
                        then,
                        key,
                    },
                ) => {
                    let stage = |r: &Rule, cond: &Cond, outs: &[(Output, Option<Cond>)]| {
                        query::Walker::new(b, ls, &r.name.0)
                            .plan(cond, outs, &r.parameters)
                            .map(|plan| StageView {
                                rule: r.name.0.clone(),
                                plan,
                            })
                            .map_err(fail)
                    };
                    let key_only = std::slice::from_ref(&**key);
                    let mut anchor_outputs = vec![(**key).clone()];
                    anchor_outputs.extend(outputs.iter().cloned());
                    let anchor_is_then = c.kind == CorrelationKind::Sequence;
                    let mut first_views = Vec::new();
                    for (i, (r, cond)) in first.iter().enumerate() {
                        let outs = if !anchor_is_then && i == 0 {
                            &anchor_outputs[..]
                        } else {
                            key_only
                        };
                        first_views.push(stage(r, cond, outs)?);
                    }
                    let then_outs = if anchor_is_then {
                        &anchor_outputs[..]
                    } else {
                        key_only
                    };
                    let then_view = stage(then.0, &then.1, then_outs)?;
                    // Parameter declarations of every stage, once each.
                    let mut preamble: Vec<String> = Vec::new();
                    for v in first_views.iter().chain([&then_view]) {
                        for p in &v.plan.preamble {
                            if !preamble.contains(p) {
                                preamble.push(p.clone());
                            }
                        }
                    }
                    let frequency = rule.schedule.frequency.minutes;
                    let joint = match b.config.search_terms {
                        Some(_) => Some(
                            joint::joint(b, ls, first, (then.0, &then.1), key, &outputs)
                                .map_err(fail)?,
                        ),
                        None => None,
                    };
                    vars.insert(
                        "corr",
                        to_value(
                            &CorrView {
                                kind: c.kind,
                                by: c.key.field.0.clone(),
                                within: c.within.text.clone(),
                                within_minutes: c.within.minutes,
                                within_seconds: c.within.minutes * 60,
                                anchor_from: duration_text(c.within.minutes + frequency),
                                anchor_from_seconds: (c.within.minutes + frequency) * 60,
                                frequency_seconds: frequency * 60,
                                preamble,
                                first: first_views,
                                then: then_view,
                                joint,
                            },
                            path,
                        )?,
                    );
                }
                (
                    Style::Sigma,
                    Lowered::Correlation {
                        c,
                        first,
                        then,
                        key,
                    },
                ) => {
                    let first_cond = Cond::Any(first.iter().map(|(_, c)| c.clone()).collect());
                    let mut description = rule.description.clone();
                    let mut dets = Vec::new();
                    for cond in [&first_cond, &then.1] {
                        let det = sigma::detection(b, cond).map_err(fail)?;
                        note_approximations(rule, &det, &mut description, &mut out.warnings);
                        dets.push(det);
                    }
                    let approximate = dets.iter().any(|d| !d.approximations.is_empty());
                    note_over_matches(rule, &mut description);
                    let then_det = dets.pop();
                    let first_det = dets.pop();
                    vars.insert("sigma_description", to_value(&description, path)?);
                    let (level, fps) = sigma_meta(rule, approximate);
                    vars.insert("sigma_level", to_value(&level, path)?);
                    vars.insert("sigma_falsepositives", to_value(&fps, path)?);
                    for role in ["first", "then"] {
                        vars.insert(
                            if role == "first" {
                                "first_id"
                            } else {
                                "then_id"
                            },
                            to_value(&derived_id(rule, role, path)?, path)?,
                        );
                    }
                    vars.insert("first_detection", to_value(&first_det, path)?);
                    vars.insert("then_detection", to_value(&then_det, path)?);
                    vars.insert("corr", to_value(&serde_json::json!({
                            "kind": c.kind,
                            "within": c.within.text,
                            "first_rules": first.iter().map(|(r, _)| r.name.0.clone()).collect::<Vec<_>>(),
                            "then_rule": then.0.name.0,
                            "group_by": b.fields.fields.get(&key.0.field.0),
                        }), path)?);
                }
                (Style::Sigma, Lowered::Events(ir)) => {
                    let det = sigma::detection(b, ir).map_err(fail)?;
                    let mut description = rule.description.clone();
                    note_approximations(rule, &det, &mut description, &mut out.warnings);
                    note_over_matches(rule, &mut description);
                    vars.insert("sigma_description", to_value(&description, path)?);
                    let (level, fps) = sigma_meta(rule, !det.approximations.is_empty());
                    vars.insert("sigma_level", to_value(&level, path)?);
                    vars.insert("sigma_falsepositives", to_value(&fps, path)?);
                    // The document that alerts carries the rule's id (as the Sentinel rule and
                    // the Splunk stanza do); a threshold's base rule gets a derived one.
                    let base_id = match rule.aggregation() {
                        Some(_) => derived_id(rule, "base", path)?,
                        None => rule.id.0.clone(),
                    };
                    vars.insert("base_id", to_value(&base_id, path)?);
                    vars.insert("detection", to_value(&det, path)?);
                }
            }
            let mut ctx = Context::new();
            for (k, v) in &vars {
                ctx.insert_value(*k, v.clone());
            }
            for (i, a) in b.config.artifacts.iter().enumerate() {
                let text = self.render_one(&b.templates[i], &ctx, budget::MAX_ARTIFACT_BYTES)?;
                if i == 0 {
                    let primary = Value::from(text.as_str());
                    ctx.insert_value("primary", primary.clone());
                    vars.insert("primary", primary);
                    let pieces = self.render_pieces(b, &ctx)?;
                    ctx.insert_value("pieces", pieces.clone());
                    vars.insert("pieces", pieces);
                }
                let file = a.file.replace("{name}", &rule.name.0);
                out.artifacts.push(Artifact {
                    path: Path::new(name).join(file),
                    content: text,
                    rule: Some(rule.name.0.clone()),
                    primary: i == 0,
                });
            }
            // `pack_decl` lists the variables a pack var may name: it must know every one.
            debug_assert!(
                vars.keys().all(
                    |k| *k == "pieces" || pack_decl::rule_vars(b.config.style).any(|n| n == *k)
                )
            );
            out.pack.0.push(pack_view(&vars, &b.pack_vars)?);
        }
        Ok(out)
    }

    /// The rule's pieces of the pack artifacts (`pieces` in backend.yml), as their templates
    /// write them: the pack artifact they go into is normalised as a whole.
    fn render_pieces(&self, b: &Backend, ctx: &Context) -> Result<Value, Diagnostic> {
        let first = b.config.artifacts.len() + b.config.pack_artifacts.len();
        let mut pieces: IndexMap<String, Value> = IndexMap::new();
        for (p, t) in b.config.pieces.iter().zip(&b.templates[first..]) {
            let text = self.render_raw(t, ctx, budget::MAX_ARTIFACT_BYTES, Vec::new(), RULE_HELP);
            pieces.insert(
                p.name.value.clone(),
                Value::from(in_memory(t, text)?.as_str()),
            );
        }
        Ok(Value::from(pieces))
    }

    /// Renders the pack-level artifacts of every backend from all rules' variables, each
    /// written to `sink` as it renders (on a large pack they run to tens of megabytes each);
    /// the artifacts render in parallel, each over every rule. What the sink made of them, in
    /// artifact order. Template problems take precedence over the sink's errors.
    pub fn render_pack<S: PackSink>(
        &self,
        rules: &[PackVars],
        sink: &S,
    ) -> Result<Vec<S::Done>, PackError> {
        use rayon::prelude::*;
        let jobs: Vec<(usize, usize)> = self
            .backends
            .iter()
            .enumerate()
            .flat_map(|(i, b)| (0..b.config.pack_artifacts.len()).map(move |j| (i, j)))
            .collect();
        let pack_limit = budget::MAX_ARTIFACT_BYTES.saturating_mul(rules.len().max(1));
        let results: Vec<Result<S::Done, PackError>> = crate::parallel(|| {
            jobs.par_iter()
                .map(|&(i, j)| {
                    let b = &self.backends[i];
                    let vars: Vec<&Value> = rules.iter().map(|r| &r.0[i]).collect();
                    let mut ctx = Context::new();
                    ctx.insert_value("rules", to_value(&vars, &b.templates[0].path)?);
                    ctx.insert_value("c", self.constants[i].clone());
                    ctx.insert_value("pipelines", self.pipelines.clone());
                    ctx.insert_value("pack", self.pack.clone());
                    ctx.insert_value("settings", to_value(&self.settings, &b.templates[0].path)?);
                    let t = &b.templates[b.config.artifacts.len() + j];
                    let path = Path::new(&b.config.name).join(&self.pack_files[i][j]);
                    let file = sink.create(&path).map_err(PackError::Io)?;
                    let file = self.render_to(t, &ctx, pack_limit, file, PACK_HELP)?;
                    sink.finish(path, file).map_err(PackError::Io)
                })
                .collect()
        });
        let mut done = Vec::new();
        let mut io_error = None;
        for r in results {
            match r {
                Ok(d) => done.push(d),
                Err(PackError::Template(d)) => return Err(PackError::Template(d)),
                Err(PackError::Io(e)) => {
                    io_error.get_or_insert(e);
                }
            }
        }
        match io_error {
            Some(e) => Err(PackError::Io(e)),
            None => Ok(done),
        }
    }

    /// One rule's artifact, in memory.
    fn render_one(
        &self,
        t: &backend::Template,
        ctx: &Context,
        limit: usize,
    ) -> Result<String, Diagnostic> {
        in_memory(t, self.render_to(t, ctx, limit, Vec::new(), RULE_HELP))
    }

    /// Renders template `t` into `out` in its normal form (`normalise`), within `limit` bytes.
    fn render_to<W: Write>(
        &self,
        t: &backend::Template,
        ctx: &Context,
        limit: usize,
        out: W,
        help: &str,
    ) -> Result<W, PackError> {
        let out = self.render_raw(t, ctx, limit, normalise::Normalise::new(out), help)?;
        out.finish().map_err(PackError::Io)
    }

    /// Renders template `t` into `out` as it writes, within `limit` bytes; `help` says what to
    /// do about a template error.
    fn render_raw<W: Write>(
        &self,
        t: &backend::Template,
        ctx: &Context,
        limit: usize,
        out: W,
        help: &str,
    ) -> Result<W, PackError> {
        let mut out = budget::Budget::new(out, limit);
        budget::start();
        let rendered = self.tera.render_to(&t.name, ctx, &mut out);
        if let Some(e) = out.failed {
            return Err(PackError::Io(e));
        }
        let over = if out.exceeded {
            Some(format!("wrote more than {limit} bytes"))
        } else if budget::range_exceeded() {
            Some(format!(
                "asked `range()` for more than {} elements",
                budget::MAX_RANGE_ELEMENTS
            ))
        } else {
            None
        };
        if let Some(over) = over {
            return Err(PackError::Template(
                Diagnostic::error(
                    Code::Template,
                    format!(
                        "template `{}` {over} for one artifact; rendering stopped",
                        t.name
                    ),
                )
                .in_file(&t.path)
                .help("look for a loop that never ends or repeats far more than meant"),
            ));
        }
        rendered.map_err(|e| {
            // A line of a component is reported in the file that defines it.
            let at = error_template(&e).and_then(|n| self.template_path(&n));
            template_diag(at.unwrap_or(&t.path), &e, help)
        })?;
        Ok(out.inner)
    }

    /// The file of the template tera knows as `name`.
    fn template_path(&self, name: &str) -> Option<&Path> {
        self.backends
            .iter()
            .flat_map(|b| &b.templates)
            .find(|t| t.name == name)
            .map(|t| t.path.as_path())
    }
}

/// What to do about an error in a rule's template.
const RULE_HELP: &str = "fix the template or the backend table it reads";

/// What to do about an error in a pack template, which sees less of each rule than a rule's
/// templates do.
const PACK_HELP: &str = "fix the template; of each rule in `rules`, a pack template sees only \
    its `pieces` and the variables `pack_vars` names in the backend's backend.yml: render \
    per-rule text as a piece there, or add the variable to `pack_vars`";

/// A rendering into memory as text.
fn in_memory(t: &backend::Template, r: Result<Vec<u8>, PackError>) -> Result<String, Diagnostic> {
    let bytes = r.map_err(|e| match e {
        PackError::Template(d) => d,
        PackError::Io(e) => Diagnostic::error(
            Code::Template,
            format!("template `{}` could not be rendered in memory: {e}", t.name),
        )
        .in_file(&t.path),
    })?;
    // Tera writes text, and the normal form is UTF-8: every line went through a lossy reading.
    Ok(String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// Every taxonomy field and array of the backend's log source must be mapped.
fn check_mapping(b: &Backend, logsources: &[LogSource]) -> Result<(), Diagnostic> {
    let dir = crate::templates::builtin_path(&b.config.name);
    let err = |m: String| Diagnostic::error(Code::Taxonomy, m).in_file(dir.join("fields.yml"));
    let ls = logsources
        .iter()
        .find(|l| l.name == b.fields.logsource)
        .ok_or_else(|| err(format!("unknown log source `{}`", b.fields.logsource)))?;
    for f in ls.fields.keys() {
        if !b.fields.fields.contains_key(f) {
            return Err(err(format!("field `{f}` of `{}` has no mapping", ls.name))
                .help("add it under `fields:`"));
        }
    }
    for a in ls.arrays.keys() {
        if !b.fields.arrays.contains_key(a) {
            return Err(err(format!("array `{a}` of `{}` has no mapping", ls.name))
                .help("add it under `arrays:`"));
        }
    }
    Ok(())
}

/// The pipelines view from the Sigma, Sentinel and Splunk backends and the Sigma log source.
fn pipelines_value(backends: &[Backend], logsources: &[LogSource]) -> Result<Value, Diagnostic> {
    let by_name = |n: &str| backends.iter().find(|b| b.config.name == n);
    let fields = Path::new("templates/sigma/fields.yml");
    let err = |m: String| {
        Diagnostic::error(Code::Template, format!("pySigma pipelines: {m}"))
            .in_file(fields)
            .help("the pipelines are derived from the Sentinel and Splunk field tables; keep their expression shapes")
    };
    let (Some(sigma), Some(sentinel), Some(splunk)) =
        (by_name("sigma"), by_name("sentinel"), by_name("splunk"))
    else {
        return Err(err(
            "the sigma, sentinel and splunk backends are all needed".into(),
        ));
    };
    let ls = logsources
        .iter()
        .find(|l| l.name == sigma.fields.logsource)
        .ok_or_else(|| err(format!("unknown log source `{}`", sigma.fields.logsource)))?;
    let view = pipeline::pipelines(sigma, sentinel, splunk, ls).map_err(err)?;
    to_value(&view, fields)
}
