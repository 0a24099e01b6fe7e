//! What the templates see of a rule besides the rule itself: the metadata view, a lowered
//! correlation's stages, and an aggregation's columns in the backend's expressions.

use super::backend::Backend;
use super::pack_decl::{self, PackVar};
use super::{joint, query};
use crate::diag::Diagnostic;
use crate::ir::Cond;
use crate::model::{AggFunction, Correlation, CorrelationKind, Output, Rule};
use indexmap::IndexMap;
use serde::Serialize;
use tera::Value;

#[derive(Serialize)]
pub(super) struct RuleView<'a> {
    #[serde(flatten)]
    pub(super) rule: &'a Rule,
    pub(super) tactic_names: Vec<&'static str>,
    pub(super) tactic_slugs: Vec<&'static str>,
    pub(super) technique_tags: Vec<String>,
    pub(super) columns: Vec<&'a str>,
}

/// A rule's logic lowered for rendering: its condition, or a correlation with the lowered
/// conditions of the rules it names and its lowered key.
pub(super) enum Lowered<'r> {
    Events(Cond),
    Correlation {
        c: &'r Correlation,
        first: Vec<(&'r Rule, Cond)>,
        then: (&'r Rule, Cond),
        /// Boxed: the output and its lowered filter dwarf the other variant.
        key: Box<(Output, Option<Cond>)>,
    },
}

/// One stage of a correlation: the rule it comes from and its pipeline pieces.
#[derive(Serialize)]
pub(super) struct StageView {
    pub(super) rule: String,
    pub(super) plan: query::QueryPlan,
}

#[derive(Serialize)]
pub(super) struct CorrView {
    pub(super) kind: CorrelationKind,
    /// The neutral field both records share.
    pub(super) by: String,
    pub(super) within: String,
    pub(super) within_minutes: u64,
    pub(super) within_seconds: u64,
    /// An absence looks at `first` records older than `within` but younger than this
    /// (`within` + the frequency), so each run judges each record once.
    pub(super) anchor_from: String,
    pub(super) anchor_from_seconds: u64,
    pub(super) frequency_seconds: u64,
    /// Parameter declarations of every stage.
    pub(super) preamble: Vec<String>,
    pub(super) first: Vec<StageView>,
    pub(super) then: StageView,
    /// The correlation as one search, for backends with search terms.
    pub(super) joint: Option<joint::JointView>,
}

pub(super) fn kind_name(k: CorrelationKind) -> &'static str {
    match k {
        CorrelationKind::Sequence => "sequence",
        CorrelationKind::Absence => "absence",
    }
}

#[derive(Serialize)]
pub(super) struct AggView {
    pub(super) function: AggFunction,
    pub(super) value_expr: Option<String>,
    pub(super) value_field: Option<String>,
    pub(super) group_by: Vec<String>,
    pub(super) group_by_fields: Vec<String>,
    pub(super) others: Vec<String>,
    pub(super) window: String,
    pub(super) window_minutes: u64,
    pub(super) threshold: u32,
}

pub(super) fn agg_view(b: &Backend, rule: &Rule, a: &crate::model::Aggregation) -> AggView {
    let expr = |f: &str| b.fields.fields.get(f).cloned();
    AggView {
        function: a.function,
        value_expr: a.field.as_ref().and_then(|f| expr(&f.0)),
        value_field: a.field.as_ref().map(|f| f.0.clone()),
        group_by: a.group_by.iter().map(|c| c.0.clone()).collect(),
        group_by_fields: a
            .group_by
            .iter()
            .filter_map(|c| rule.outputs.iter().find(|o| o.column == *c))
            .filter_map(|o| expr(&o.field.0))
            .collect(),
        others: rule
            .outputs
            .iter()
            .filter(|o| !a.group_by.contains(&o.column))
            .map(|o| o.column.0.clone())
            .collect(),
        window: a.window.text.clone(),
        window_minutes: a.window.minutes,
        threshold: a.threshold,
    }
}

/// What the pack templates see of one rule (`rules`): its `pieces`, and the variables (or
/// dotted paths into them, `corr.kind`) that `pack_vars` names, where the rule has them. A path
/// into a value the rule has that leads nowhere is an error at its `pack_vars` entry.
pub(super) fn pack_view(
    vars: &IndexMap<&'static str, Value>,
    keep: &[PackVar],
) -> Result<Value, Diagnostic> {
    let mut view = Node::Branch(IndexMap::new());
    for var in keep {
        let head = var.path.split('.').next().unwrap_or_default();
        if let Some(v) = vars.get(head)
            && let Some(v) = pack_decl::follow(var, v)?
        {
            view.insert(var.path.split('.'), v.clone());
        }
    }
    if let Some(pieces) = vars.get("pieces") {
        view.insert(std::iter::once("pieces"), pieces.clone());
    }
    Ok(view.into_value())
}

/// A template value being assembled from parts of others.
enum Node {
    Whole(Value),
    Branch(IndexMap<String, Node>),
}

impl Node {
    fn insert<'a>(&mut self, mut path: impl Iterator<Item = &'a str>, value: Value) {
        let Node::Branch(map) = self else {
            // All of this value is kept already.
            return;
        };
        let Some(key) = path.next() else {
            *self = Node::Whole(value);
            return;
        };
        map.entry(key.to_string())
            .or_insert_with(|| Node::Branch(IndexMap::new()))
            .insert(path, value);
    }

    fn into_value(self) -> Value {
        match self {
            Node::Whole(v) => v,
            Node::Branch(map) => Value::from(
                map.into_iter()
                    .map(|(k, n)| (k, n.into_value()))
                    .collect::<IndexMap<String, Value>>(),
            ),
        }
    }
}
