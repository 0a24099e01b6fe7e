//! What a backend.yml declares for its pack artifacts, checked: `pieces` (per-rule texts, each
//! under its own name) and `pack_vars` (the rule variables, or dotted paths into them, the pack
//! templates see). A mistake there would otherwise show only where a pack template reads the
//! name, or never; it is reported at the entry instead.

use super::backend::{BackendConfig, Style};
use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::load::yaml;
use crate::source::{FileId, Span};
use tera::Value;

/// The variables every rule's templates see, whatever the backend's style (`Renderer::render`
/// inserts them; `omitted` only for a correlation the backend leaves out, `agg` and `corr` are
/// none for rules without them).
const COMMON: &[&str] = &[
    "rule", "c", "pack", "agg", "settings", "sched", "omitted", "primary",
];
/// Besides those, what a query backend's rule templates see.
const QUERY: &[&str] = &["plan", "corr"];
/// Besides those, what a Sigma backend's rule templates see.
const SIGMA: &[&str] = &[
    "sigma_description",
    "sigma_level",
    "sigma_falsepositives",
    "detection",
    "base_id",
    "first_id",
    "then_id",
    "first_detection",
    "then_detection",
    "corr",
];

/// The names a `pack_vars` entry may begin with for a backend of `style`.
pub(super) fn rule_vars(style: Style) -> impl Iterator<Item = &'static str> {
    let own = match style {
        Style::Query => QUERY,
        Style::Sigma => SIGMA,
    };
    COMMON.iter().chain(own).copied()
}

/// One `pack_vars` entry: its dotted path and where backend.yml writes it.
pub struct PackVar {
    pub path: String,
    pub span: Span,
}

/// Checks the `pieces` and `pack_vars` of `config` (read from `file`): piece names unique and not
/// empty; each pack var a path of non-empty names that begins with a variable the backend's rule
/// templates see, named once. Every problem is reported. What lies under that variable is known
/// only with a rule in hand: `follow` checks it.
pub(super) fn check(config: &BackendConfig, file: FileId) -> Result<Vec<PackVar>, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for p in &config.pieces {
        let name = p.name.value.as_str();
        let at = yaml::span_of(&p.name, file);
        if name.trim().is_empty() {
            errors.push(
                Diagnostic::error(Code::Template, "a piece has an empty name")
                    .at(at)
                    .help("name it as the pack templates read it: `r.pieces.<name>`"),
            );
        } else if seen.contains(&name) {
            errors.push(
                Diagnostic::error(Code::Template, format!("piece `{name}` is declared twice"))
                    .at(at)
                    .label("a second piece of this name")
                    .help(
                        "give each piece its own name; the pack templates read `r.pieces.<name>`",
                    ),
            );
        }
        seen.push(name);
    }
    let names: Vec<&str> = rule_vars(config.style).collect();
    let mut out: Vec<PackVar> = Vec::new();
    for v in &config.pack_vars {
        let span = yaml::span_of(v, file);
        match entry(&v.value, &names, &out, &config.name) {
            Ok(()) => out.push(PackVar {
                path: v.value.clone(),
                span,
            }),
            Err(d) => errors.push(d.at(span)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// What is wrong with pack var `path`, if anything, given the rule variables `names` of backend
/// `backend` and the entries before it.
fn entry(path: &str, names: &[&str], before: &[PackVar], backend: &str) -> Result<(), Diagnostic> {
    let err = |m: String| Diagnostic::error(Code::Template, m);
    if path.split('.').any(|s| s.trim().is_empty()) {
        return Err(err(format!("pack var `{path}` has an empty name in it"))
            .help("write a variable, or a dotted path into one such as `rule.name`"));
    }
    let head = path.split('.').next().unwrap_or(path);
    if head == "pieces" {
        return Err(err(format!(
            "pack var `{path}`: the pack templates see every piece already"
        ))
        .help("remove this entry; read the piece as `r.pieces.<name>`"));
    }
    if !names.contains(&head) {
        let mean = match did_you_mean(head, names.iter().copied()) {
            Some(m) => format!("did you mean `{m}`? "),
            None => String::new(),
        };
        return Err(err(format!(
            "pack var `{path}`: a {backend} backend's rules have no variable `{head}`"
        ))
        .help(format!(
            "{mean}a pack var names one of the variables a rule's templates see, or a \
             dotted path into one: {}",
            names.join(", ")
        )));
    }
    if before.iter().any(|o| o.path == path) {
        return Err(err(format!("pack var `{path}` is named twice")).help("remove one"));
    }
    Ok(())
}

/// The value at `var`'s path in a rule's variable `head_value` (`None` where the rule has no
/// such value, e.g. `corr.kind` of a rule that is not a correlation). A name its map lacks, or a
/// step into text or a number, is an error at the entry: no rule has it.
pub(super) fn follow<'v>(
    var: &PackVar,
    head_value: &'v Value,
) -> Result<Option<&'v Value>, Diagnostic> {
    let mut steps = var.path.split('.');
    let mut so_far = steps.next().unwrap_or_default().to_string();
    let mut cur = head_value;
    for step in steps {
        // As tera reads a path: a none on the way is the value (`agg.window` of a rule
        // without aggregation is none), an undefined one is not there.
        if cur.is_none() {
            return Ok(Some(cur));
        }
        if cur.is_undefined() {
            return Ok(None);
        }
        let next = if let Some(map) = cur.as_map() {
            let keys: Vec<String> = map.keys().map(|k| k.to_string()).collect();
            match map.iter().find(|(k, _)| k.as_str() == Some(step)) {
                Some((_, v)) => v,
                None => {
                    let mean = match did_you_mean(step, keys.iter().map(String::as_str)) {
                        Some(m) => format!("did you mean `{so_far}.{m}`? "),
                        None => String::new(),
                    };
                    return Err(Diagnostic::error(
                        Code::Template,
                        format!("pack var `{}`: `{so_far}` has no `{step}`", var.path),
                    )
                    .at(var.span)
                    .help(format!("{mean}`{so_far}` has: {}", keys.join(", "))));
                }
            }
        } else if let Some(items) = cur.as_array() {
            match step.parse::<usize>() {
                Ok(i) => match items.get(i) {
                    Some(v) => v,
                    None => return Ok(None),
                },
                Err(_) => {
                    return Err(Diagnostic::error(
                        Code::Template,
                        format!("pack var `{}`: `{so_far}` is a list", var.path),
                    )
                    .at(var.span)
                    .help(format!(
                        "name the whole list `{so_far}`, or an item by its index"
                    )));
                }
            }
        } else {
            return Err(Diagnostic::error(
                Code::Template,
                format!(
                    "pack var `{}`: `{so_far}` is a {}, with nothing under it",
                    var.path,
                    cur.name()
                ),
            )
            .at(var.span)
            .help(format!("name `{so_far}` itself")));
        };
        so_far.push('.');
        so_far.push_str(step);
        cur = next;
    }
    Ok(Some(cur))
}
