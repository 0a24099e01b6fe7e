//! A backend as data: `templates/<backend>/backend.yml` declares its operators, syntax, JSON
//! access and quantifier commands; `fields.yml` maps the neutral taxonomy to its expressions.
//! Adding a SIEM is mostly a new folder.

use super::pack_decl::PackVar;
use crate::diag::{Code, Diagnostic};
use crate::load::{files, yaml};
use crate::source::SourceMap;
use crate::templates::Templates;
use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Escaper {
    Kql,
    Spl,
    Sigma,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// A text query: conditions become expressions, quantifiers become pipeline steps.
    Query,
    /// A Sigma detection: conditions become selections and a condition string.
    Sigma,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// The tera template in the backend folder that lays the artifact out; a plain relative
    /// path inside that folder.
    pub template: Spanned<String>,
    /// File name under out/<backend>/, with `{name}` for the rule name.
    pub file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Piece {
    /// Its key under `pieces`.
    pub name: Spanned<String>,
    /// The tera template in the backend folder that renders it.
    pub template: Spanned<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Syntax {
    pub and: String,
    pub or: String,
    /// `{}` stands for the negated expression.
    pub not: String,
    pub group: String,
    pub list_separator: String,
    /// Wraps a predicate under `not` so that a missing value reads as false rather than null
    /// (`{}` is the predicate); for languages with three-valued logic.
    #[serde(default)]
    pub null_safe: Option<String>,
}

/// Operator spellings. Placeholders: `{field}`, `{value}` (a string literal), `{values}`
/// (literals joined by the list separator), `{regex}` (a regex literal built from the value),
/// `{pattern}` (a user regex literal), `{number}`, `{cmp}`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Operators {
    pub equals: String,
    pub equals_cs: String,
    /// Optional: without it, one_of renders as `or` of equals.
    #[serde(default)]
    pub one_of: Option<String>,
    #[serde(default)]
    pub one_of_cs: Option<String>,
    pub contains: String,
    pub contains_cs: String,
    pub starts_with: String,
    pub starts_with_cs: String,
    pub ends_with: String,
    pub ends_with_cs: String,
    pub regex: String,
    /// Equality with a rule parameter's list, kept overridable (`{param}`, `{rule}`); without
    /// it the values are written inline.
    #[serde(default)]
    pub in_parameter: Option<String>,
    #[serde(default)]
    pub in_parameter_cs: Option<String>,
    /// Declares a parameter at the top of the query (`{param}`, `{values}`).
    #[serde(default)]
    pub parameter: Option<String>,
    /// Prefix that makes a regex case-insensitive.
    pub regex_ci_prefix: String,
    pub exists: String,
    pub absent: String,
    pub number: String,
    pub gt: String,
    pub gte: String,
    pub lt: String,
    pub lte: String,
    /// `added` / `removed`: `{expr}` (a JSON array reached by a path) as the backend's array, or
    /// lower-cased for case-insensitive tests; missing reads as empty.
    #[serde(default)]
    pub set_array: Option<String>,
    #[serde(default)]
    pub set_array_ci: Option<String>,
    /// Some element of array `{from}` is not in array `{to}`.
    #[serde(default)]
    pub set_added: Option<String>,
    /// `{value}` (a literal; `{regex}` the anchored escaped regex) is in `{from}` and not in `{to}`.
    #[serde(default)]
    pub set_added_value: Option<String>,
}

/// Walking into JSON text. `{expr}` is the value so far, `{key}` a key, `{index}` an index.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Json {
    pub key: String,
    pub index: String,
    /// Turns an intermediate step back into text before the next decode.
    pub to_string: String,
    /// Keys go in as string literals (`literal`) or raw inside a path string (`raw`).
    pub key_form: KeyForm,
}

#[derive(Clone, Copy, Debug, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KeyForm {
    #[default]
    Literal,
    Raw,
}

/// Commands for quantifiers. Placeholders: `{var}` element variable, `{source}` the array,
/// `{parent}` the enclosing element, `{flag}` the flag column, `{cond}` the element condition,
/// `{group}` the row id the flag is folded by, `{row}` this level's row id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quantifier {
    /// Numbers events before the first expansion (empty when events carry a key).
    #[serde(default)]
    pub number_events: String,
    /// the column that identifies an event when flags are folded back.
    #[serde(default)]
    pub event_key: String,
    /// the row id of an element of this level (`{var}`).
    #[serde(default)]
    pub row: String,
    /// what a nested level's flags are folded by (`{event}`, `{parent_row}`).
    #[serde(default)]
    pub nested_group: String,
    /// steps that bring a top-level array's elements into rows.
    #[serde(default)]
    pub expand_top: Vec<String>,
    /// steps that bring a nested array's elements into rows.
    #[serde(default)]
    pub expand_nested: Vec<String>,
    /// numbers element rows when they have nested quantifiers (empty when the
    /// expansion numbers them itself).
    #[serde(default)]
    pub number_rows: String,
    /// steps that flag an element row and fold the flag back.
    #[serde(default)]
    pub fold: Vec<String>,
    /// The test on the flag that replaces the quantifier in the enclosing condition.
    pub flag_test: String,
}

/// Search terms: the literal predicates a backend's indexers evaluate before the first pipe
/// (Splunk's base search). Placeholders: `{field}` a name from `search_fields` in fields.yml,
/// `{value}` one search literal, `{values}` several joined by `list_separator`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchTerms {
    pub equals: String,
    pub one_of: String,
    pub list_separator: String,
    pub and: String,
    pub or: String,
    /// `{}` stands for the grouped terms.
    pub group: String,
}

/// Output columns. Placeholders: `{column}`, `{expr}`, `{var}`, `{source}`, `{cond}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outputs {
    pub scalar: String,
    /// Steps taking a value from the element of a top-level array that satisfies `{cond}`.
    pub element: Vec<String>,
    /// The condition used when the output has no `where`: the value is present.
    pub element_any: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub name: String,
    pub description: String,
    pub style: Style,
    pub escaper: Escaper,
    /// Per-rule artifacts; the first is the query the others may embed (`primary`).
    pub artifacts: Vec<Artifact>,
    /// Artifacts rendered once for the whole pack, with what each rule gives them in `rules`:
    /// its `pieces` and its variables `pack_vars` names.
    #[serde(default)]
    pub pack_artifacts: Vec<Artifact>,
    /// Per-rule text the pack artifacts join, rendered with the rule after its query and
    /// before its other artifacts (which see them as `pieces` too), as the template writes it.
    #[serde(default)]
    pub pieces: Vec<Piece>,
    /// The rule's template variables the pack artifacts see besides the pieces: a name, or a
    /// dotted path into one (`corr.kind`). The rest (plans, detections, query texts) is
    /// dropped once the rule's artifacts are written, so a large pack is not held in memory.
    #[serde(default)]
    pub pack_vars: Vec<Spanned<String>>,
    #[serde(default)]
    pub syntax: Syntax,
    #[serde(default)]
    pub operators: Operators,
    #[serde(default)]
    pub json: Json,
    #[serde(default)]
    pub quantifier: Option<Quantifier>,
    #[serde(default)]
    pub outputs: Option<Outputs>,
    /// Without it, every condition stays in the query's filters.
    #[serde(default)]
    pub search_terms: Option<SearchTerms>,
    /// Correlation kinds this backend renders; a rule of another kind is omitted from it with
    /// a warning and a line in its pack notes.
    #[serde(default)]
    pub correlations: std::collections::BTreeMap<crate::model::CorrelationKind, Support>,
}

/// `yes`, or the reason the backend cannot render it (shown to the user).
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(from = "String")]
pub enum Support {
    Yes,
    No(String),
}

impl From<String> for Support {
    fn from(s: String) -> Support {
        if s == "yes" {
            Support::Yes
        } else {
            Support::No(s)
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrayMap {
    /// Where the elements come from: the event's array, or `{parent}`'s for nested arrays.
    pub source: String,
    /// Name of the element variable.
    pub var: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMap {
    pub logsource: String,
    /// Backend-specific data the templates use (table, macro, entity type names, …).
    #[serde(default)]
    pub constants: IndexMap<String, serde_json::Value>,
    pub arrays: IndexMap<String, ArrayMap>,
    /// Neutral field → expression; `{element}` stands for the bound element of its array.
    pub fields: IndexMap<String, String>,
    /// Neutral field → the name a search term uses, for the top-level scalar fields whose
    /// case-insensitive equality the base search can test (`search_terms` in backend.yml).
    #[serde(default)]
    pub search_fields: IndexMap<String, String>,
}

pub struct Template {
    /// Name in the tera environment: `<backend>/<file>`.
    pub name: String,
    pub path: PathBuf,
    pub text: String,
}

pub struct Backend {
    pub config: BackendConfig,
    pub fields: FieldMap,
    /// Templates of `artifacts`, `pack_artifacts` then `pieces`, in that order.
    pub templates: Vec<Template>,
    /// `pack_vars`, checked (`pack_decl::check`).
    pub pack_vars: Vec<PackVar>,
}

impl Backend {
    /// Loads backend `name` from the shipped templates, a team's overlay replacing them file by
    /// file.
    pub fn load(
        name: &str,
        templates: &Templates,
        sources: &mut SourceMap,
    ) -> Result<Backend, Vec<Diagnostic>> {
        let backend_file = templates
            .read(&format!("{name}/backend.yml"), sources)
            .map_err(|d| vec![d])?;
        let config: BackendConfig = yaml::parse(sources, backend_file).map_err(|d| vec![d])?;
        let pack_vars = super::pack_decl::check(&config, backend_file)?;
        Backend::load_templates(name, config, pack_vars, backend_file, templates, sources)
            .map_err(|d| vec![d])
    }

    /// The rest of `load`: the field table and the templates `config` names.
    fn load_templates(
        name: &str,
        config: BackendConfig,
        pack_vars: Vec<PackVar>,
        backend_file: crate::source::FileId,
        templates: &Templates,
        sources: &mut SourceMap,
    ) -> Result<Backend, Diagnostic> {
        let file = templates.read(&format!("{name}/fields.yml"), sources)?;
        let fields: FieldMap = yaml::parse(sources, file)?;
        let mut templates_out = Vec::new();
        let paths = config.artifacts.iter().chain(&config.pack_artifacts);
        let paths = paths
            .map(|a| &a.template)
            .chain(config.pieces.iter().map(|p| &p.template));
        for template in paths {
            // Refused at the key, before the path is joined to any folder.
            files::check_relative(&template.value).map_err(|why| {
                Diagnostic::error(
                    Code::Template,
                    format!("template path `{}` {why}", template.value),
                )
                .at(yaml::span_of(template, backend_file))
                .help("name a file inside the backend folder, such as `rule.kql`")
            })?;
            let file = templates.read(&format!("{name}/{}", template.value), sources)?;
            let source = sources.get(file);
            templates_out.push(Template {
                name: format!("{name}/{}", template.value),
                path: source.path.clone(),
                text: source.text.clone(),
            });
        }
        let templates = templates_out;
        Ok(Backend {
            config,
            fields,
            templates,
            pack_vars,
        })
    }
}

/// Fills `{name}` placeholders in one pass, so text inserted for one placeholder is never
/// scanned again (a value holding `{field}` stays literal). Unknown `{…}` are kept as written.
pub fn fill(template: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let replaced = after.find('}').and_then(|close| {
            let name = &after[..close];
            args.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (v, close))
        });
        match replaced {
            Some((v, close)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn fill_is_single_pass() {
        assert_eq!(
            fill(
                "{field} == {value}",
                &[("field", "F"), ("value", "\"{field}\"")]
            ),
            "F == \"{field}\""
        );
        assert_eq!(
            fill("spath path=a{} output={var}", &[("var", "v")]),
            "spath path=a{} output=v"
        );
    }
}
