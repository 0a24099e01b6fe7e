//! Stage 4, render: IR → artifact text, one file per rule per backend, through the backend's
//! tera template. Backends never see YAML rules; they see the validated rule and the IR.

pub mod backend;
pub mod error;
pub mod escape;
pub mod query;
pub mod sigma;

use crate::diag::{Code, Diagnostic};
use crate::lower::{lower, lower_element};
use crate::model::{AggFunction, Rule};
use crate::source::SourceMap;
use crate::taxonomy::LogSource;
use backend::{Backend, Style};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tera::{Context, Kwargs, State, Tera};

/// The backends rulepack ships, in output order.
pub const BACKENDS: &[&str] = &["sentinel", "splunk", "sigma"];

pub struct Artifact {
    /// Relative to the output folder, e.g. `sentinel/guest_invited.kql`.
    pub path: PathBuf,
    pub content: String,
}

pub struct Renderer {
    backends: Vec<Backend>,
    tera: Tera,
}

#[derive(Serialize)]
struct RuleView<'a> {
    #[serde(flatten)]
    rule: &'a Rule,
    tactic_names: Vec<&'static str>,
    tactic_slugs: Vec<&'static str>,
    technique_tags: Vec<String>,
    columns: Vec<&'a str>,
}

#[derive(Serialize)]
struct AggView {
    function: AggFunction,
    value_expr: Option<String>,
    value_field: Option<String>,
    group_by: Vec<String>,
    group_by_fields: Vec<String>,
    others: Vec<String>,
    window: String,
    threshold: u32,
}

impl Renderer {
    pub fn load(
        templates: &Path,
        sources: &mut SourceMap,
        logsources: &[LogSource],
    ) -> Result<Renderer, Vec<Diagnostic>> {
        let mut backends = Vec::new();
        let mut diags = Vec::new();
        let mut tera = Tera::default();
        tera.autoescape_on(Vec::<&str>::new());
        register_filters(&mut tera);
        for name in BACKENDS {
            let dir = templates.join(name);
            match Backend::load(&dir, sources) {
                Ok(b) => {
                    if let Err(d) = check_mapping(&b, logsources, &dir) {
                        diags.push(d);
                        continue;
                    }
                    let tpl_path = dir.join(&b.config.artifact.template);
                    if let Err(e) = tera.add_raw_template(name, &b.template) {
                        diags.push(
                            Diagnostic::error(Code::Template, format!("template error: {e}"))
                                .in_file(tpl_path)
                                .help("fix the template syntax at the position shown"),
                        );
                        continue;
                    }
                    backends.push(b);
                }
                Err(d) => diags.push(d),
            }
        }
        if diags.is_empty() {
            Ok(Renderer { backends, tera })
        } else {
            Err(diags)
        }
    }

    /// Renders one rule for every backend. Warnings (Sigma approximations) come back beside it.
    pub fn render(
        &self,
        rule: &Rule,
        ls: &LogSource,
    ) -> Result<(Vec<Artifact>, Vec<Diagnostic>), Diagnostic> {
        let ir = lower(&rule.condition, ls);
        let outputs: Vec<_> = rule
            .outputs
            .iter()
            .map(|o| {
                let array = ls.fields.get(&o.field.0).and_then(|f| f.array.clone());
                let filter = match (&o.filter, array) {
                    (Some(f), Some(a)) => Some(lower_element(f, ls, &a)),
                    _ => None,
                };
                (o.clone(), filter)
            })
            .collect();
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
        let mut artifacts = Vec::new();
        let mut warnings = Vec::new();
        for b in &self.backends {
            let fail = |m: error::RenderError| {
                Diagnostic::error(Code::Template, format!("{} backend: {m}", b.config.name))
                    .in_file(Path::new("templates").join(&b.config.name))
            };
            let mut ctx = Context::new();
            ctx.insert("rule", &view);
            ctx.insert("c", &b.fields.constants);
            ctx.insert("ir", &ir);
            let agg = rule.aggregation.as_ref().map(|a| {
                let expr = |f: &str| b.fields.fields.get(f).cloned();
                let group_fields: Vec<String> = a
                    .group_by
                    .iter()
                    .filter_map(|c| rule.outputs.iter().find(|o| o.column == *c))
                    .filter_map(|o| expr(&o.field.0))
                    .collect();
                AggView {
                    function: a.function,
                    value_expr: a.field.as_ref().and_then(|f| expr(&f.0)),
                    value_field: a.field.as_ref().map(|f| f.0.clone()),
                    group_by: a.group_by.iter().map(|c| c.0.clone()).collect(),
                    group_by_fields: group_fields,
                    others: rule
                        .outputs
                        .iter()
                        .filter(|o| !a.group_by.contains(&o.column))
                        .map(|o| o.column.0.clone())
                        .collect(),
                    window: a.window.text.clone(),
                    threshold: a.threshold,
                }
            });
            ctx.insert("agg", &agg);
            match b.config.style {
                Style::Query => {
                    let plan = query::Walker::new(b, ls)
                        .plan(&ir, &outputs)
                        .map_err(fail)?;
                    ctx.insert("plan", &plan);
                }
                Style::Sigma => {
                    let det = sigma::detection(b, &ir).map_err(fail)?;
                    for a in &det.approximations {
                        warnings.push(
                            Diagnostic::warning(Code::Approximation, format!("Sigma output of `{}` is approximate: {a}", rule.name.0))
                                .at(rule.condition_span)
                                .help("the Sigma file states this in its description; the KQL and SPL outputs are exact"),
                        );
                    }
                    let mut description = rule.description.clone();
                    for a in &det.approximations {
                        description.push_str(" Sigma approximation: ");
                        description.push_str(a);
                    }
                    ctx.insert("sigma_description", &description);
                    ctx.insert("correlation_id", &derived_uuid(&rule.id.0, "correlation"));
                    ctx.insert("detection", &det);
                }
            }
            let text = self
                .tera
                .render(&b.config.name, &ctx)
                .map_err(|e| template_error(&b.config.name, &e))?;
            let file = b.config.artifact.file.replace("{name}", &rule.name.0);
            artifacts.push(Artifact {
                path: Path::new(&b.config.name).join(file),
                content: normalise(&text),
            });
        }
        Ok((artifacts, warnings))
    }
}

fn template_error(backend: &str, e: &tera::Error) -> Diagnostic {
    Diagnostic::error(
        Code::Template,
        format!("{backend} backend: template error: {e}"),
    )
    .in_file(Path::new("templates").join(backend))
    .help("fix the template or the backend table it reads")
}

/// Every taxonomy field and array of the backend's log source must be mapped.
fn check_mapping(b: &Backend, logsources: &[LogSource], dir: &Path) -> Result<(), Diagnostic> {
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

/// A stable UUID for an artifact derived from a rule (a Sigma correlation), so it never changes
/// between builds and never collides with the rule's own id.
fn derived_uuid(id: &str, salt: &str) -> String {
    let fnv = |seed: u64| {
        let mut h = seed;
        for b in id.bytes().chain([0]).chain(salt.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    };
    let hex = format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x8422_2325_cbf2_9ce4)
    );
    // Version 8 (custom) and the RFC 4122 variant, so validators accept it as a UUID.
    format!(
        "{}-{}-8{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        "9",
        &hex[17..20],
        &hex[20..32]
    )
}

/// LF line ends, no trailing spaces, exactly one final newline: stable bytes for reviewers.
fn normalise(text: &str) -> String {
    let mut out: String = text
        .replace("\r\n", "\n")
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    while out.ends_with('\n') {
        out.pop();
    }
    out.push('\n');
    out
}

fn register_filters(tera: &mut Tera) {
    tera.register_filter("kql_string", |s: &str, _: Kwargs, _: &State| {
        escape::kql_string(s)
    });
    tera.register_filter("spl_string", |s: &str, _: Kwargs, _: &State| {
        escape::spl_string(s)
    });
    tera.register_filter("yaml", |s: &str, _: Kwargs, _: &State| {
        escape::yaml_string(s)
    });
    // A comment must stay on one line whatever the text holds.
    tera.register_filter("one_line", |s: &str, _: Kwargs, _: &State| {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    });
}
