//! The generic IR walker for text-query backends (KQL, SPL). Operators, syntax, JSON access and
//! quantifier commands all come from the backend's table; this file only decides structure.

use super::backend::{Backend, Escaper, KeyForm, SearchTerms, fill};
use super::error::RenderError;
use super::escape::{kql_string, regex_escape, spl_search_value, spl_string};
use crate::ir::{Case, Cmp, Cond, JsonStep, Op, Pred, SetDir, StrOp};
use crate::model::{Output, Parameter};
use crate::taxonomy::LogSource;
use serde::Serialize;

/// A rule condition laid out as pipeline pieces, in order.
#[derive(Debug, Default, Serialize)]
pub struct QueryPlan {
    /// Declarations before the query (overridable parameter lists).
    pub preamble: Vec<String>,
    /// Search terms (backends with `search_terms`), all to hold: literal tests the base search
    /// makes before any command runs, each implied by one conjunct of the condition.
    pub search: Vec<String>,
    /// Conjuncts that need no quantifier: each can be its own filter, first.
    pub filters: Vec<String>,
    /// The `filters` the search terms do not say exactly, which a query with the search terms
    /// still has to test.
    pub unsearched: Vec<String>,
    /// Steps that evaluate quantifiers into flag columns.
    pub steps: Vec<String>,
    /// Conjuncts over those flags.
    pub residual: Vec<String>,
    /// Steps that compute the output columns.
    pub outputs: Vec<String>,
}

pub struct Walker<'a> {
    b: &'a Backend,
    ls: &'a LogSource,
    rule: &'a str,
    flags: usize,
    /// Inside an odd number of `not`s: predicates must then yield false, never null.
    negated: bool,
    events_numbered: bool,
}

type Scope = Vec<(String, String)>;

/// A search term and whether it says exactly what its condition says (then the condition needs
/// no other test). `grouped` can be joined with other terms as it is.
struct Term {
    grouped: String,
    exact: bool,
}

impl Term {
    /// Terms joined by `sep`, grouped unless there is one.
    fn new(mut texts: Vec<String>, sep: &str, exact: bool, st: &SearchTerms) -> Term {
        let grouped = match texts.len() {
            1 => texts.remove(0),
            _ => st.group.replace("{}", &texts.join(sep)),
        };
        Term { grouped, exact }
    }
}

/// The base-search term that admits a record of any of several plans (a correlation's stages):
/// `or` of each plan's terms, or nothing when a plan has none (its records could be anything).
pub fn any_search(b: &Backend, plans: &[&QueryPlan]) -> Option<String> {
    let st = b.config.search_terms.as_ref()?;
    let mut each = plans
        .iter()
        .map(|p| (!p.search.is_empty()).then(|| p.search.join(&st.and)))
        .collect::<Option<Vec<String>>>()?;
    // Stages on the same activity share their terms: say them once.
    let mut seen = std::collections::HashSet::new();
    each.retain(|t| seen.insert(t.clone()));
    match each.as_slice() {
        [one] => Some(one.clone()),
        many => Some(
            many.iter()
                .map(|t| st.group.replace("{}", t))
                .collect::<Vec<_>>()
                .join(&st.or),
        ),
    }
}

/// A condition without quantifiers that every record satisfying `c` satisfies too (the
/// record-level predicates every branch needs), or None when some branch needs only array
/// elements. `any[activity = A, all[activity = B, some …]]` gives `any[activity = A,
/// activity = B]`.
fn guard(c: &Cond) -> Option<Cond> {
    if !c.has_quantifier() {
        return Some(c.clone());
    }
    match c {
        Cond::All(cs) => {
            let mut parts: Vec<Cond> = cs.iter().filter_map(guard).collect();
            match parts.len() {
                0 => None,
                1 => parts.pop(),
                _ => Some(Cond::All(parts)),
            }
        }
        Cond::Any(cs) => cs
            .iter()
            .map(guard)
            .collect::<Option<Vec<_>>>()
            .map(Cond::Any),
        Cond::Not(_) | Cond::Some { .. } | Cond::Pred(_) => None,
    }
}

impl<'a> Walker<'a> {
    pub fn new(b: &'a Backend, ls: &'a LogSource, rule: &'a str) -> Self {
        Walker {
            b,
            ls,
            rule,
            flags: 0,
            negated: false,
            events_numbered: false,
        }
    }

    /// The rule whose parameters later plans name (a correlation's stages share one walker).
    pub fn set_rule(&mut self, rule: &'a str) {
        self.rule = rule;
    }

    pub fn plan(
        &mut self,
        cond: &Cond,
        outputs: &[(Output, Option<Cond>)],
        params: &[Parameter],
    ) -> Result<QueryPlan, RenderError> {
        let mut plan = QueryPlan::default();
        let conjuncts = match cond {
            Cond::All(cs) => cs.clone(),
            c => vec![c.clone()],
        };
        for c in &conjuncts {
            let term = self.search_term(c);
            let exact = term.as_ref().is_some_and(|t| t.exact);
            if let Some(t) = term {
                plan.search.push(t.grouped);
            }
            if c.has_quantifier() {
                // What the record itself must satisfy is tested before any array is expanded,
                // so the expansion only runs on the records that can still match.
                if let Some(g) = guard(c) {
                    let text = self.cond(&g, &Vec::new(), &mut Vec::new(), "")?;
                    // The search term of `c` is the guard's when the guard is searchable.
                    if !self.search_term(&g).is_some_and(|t| t.exact) {
                        plan.unsearched.push(text.clone());
                    }
                    plan.filters.push(text);
                }
                let text = self.cond(c, &Vec::new(), &mut plan.steps, "")?;
                plan.residual.push(text);
            } else {
                let text = self.cond(c, &Vec::new(), &mut Vec::new(), "")?;
                if !exact {
                    plan.unsearched.push(text.clone());
                }
                plan.filters.push(text);
            }
        }
        if let Some(t) = &self.b.config.operators.parameter {
            for p in params {
                let lits: Vec<String> = p.values.iter().map(|v| self.string(v)).collect();
                plan.preamble.push(fill(
                    t,
                    &[
                        ("param", &p.name),
                        ("values", &lits.join(&self.b.config.syntax.list_separator)),
                    ],
                ));
            }
        }
        plan.outputs = self.outputs(outputs)?;
        Ok(plan)
    }

    /// The steps that compute output columns.
    pub fn outputs(
        &mut self,
        outputs: &[(Output, Option<Cond>)],
    ) -> Result<Vec<String>, RenderError> {
        let mut steps = Vec::new();
        for (o, filter) in outputs {
            steps.extend(self.output(o, filter.as_ref())?);
        }
        Ok(steps)
    }

    /// The search term `c` implies, if any: a predicate the search can test exactly, `and` of
    /// the children that have one (exact if all do), `or` of the children if every child has
    /// one. `not` and quantifiers imply none (their tests need the event's arrays or nulls).
    fn search_term(&self, c: &Cond) -> Option<Term> {
        let st = self.b.config.search_terms.as_ref()?;
        match c {
            Cond::Pred(p) => self.pred_term(p),
            Cond::All(cs) => {
                let terms: Vec<Option<Term>> = cs.iter().map(|c| self.search_term(c)).collect();
                let exact = terms.iter().all(|t| t.as_ref().is_some_and(|t| t.exact));
                let texts: Vec<String> = terms.into_iter().flatten().map(|t| t.grouped).collect();
                (!texts.is_empty()).then(|| Term::new(texts, &st.and, exact, st))
            }
            Cond::Any(cs) => {
                let terms = cs
                    .iter()
                    .map(|c| self.search_term(c))
                    .collect::<Option<Vec<Term>>>()?;
                let exact = terms.iter().all(|t| t.exact);
                let texts: Vec<String> = terms.into_iter().map(|t| t.grouped).collect();
                Some(Term::new(texts, &st.or, exact, st))
            }
            Cond::Not(_) | Cond::Some { .. } => None,
        }
    }

    /// A case-insensitive equality or one-of on a searchable field, with values a search
    /// literal can spell (`spl_search_value`).
    fn pred_term(&self, p: &Pred) -> Option<Term> {
        let st = self.b.config.search_terms.as_ref()?;
        let field = self.b.fields.search_fields.get(&p.field.0)?;
        let Op::Str {
            op: StrOp::Equals,
            values,
            case: Case::Insensitive,
            param: None,
        } = &p.op
        else {
            return None;
        };
        if !p.json.is_empty() || self.ls.fields.get(&p.field.0)?.array.is_some() {
            return None;
        }
        let lits = values
            .iter()
            .map(|v| spl_search_value(v))
            .collect::<Option<Vec<String>>>()?;
        let text = match lits.as_slice() {
            [one] => fill(&st.equals, &[("field", field), ("value", one)]),
            _ => fill(
                &st.one_of,
                &[("field", field), ("values", &lits.join(&st.list_separator))],
            ),
        };
        Some(Term {
            grouped: text,
            exact: true,
        })
    }

    fn string(&self, s: &str) -> String {
        match self.b.config.escaper {
            Escaper::Kql => kql_string(s),
            Escaper::Spl | Escaper::Sigma => spl_string(s),
        }
    }

    fn cond(
        &mut self,
        c: &Cond,
        scope: &Scope,
        sink: &mut Vec<String>,
        row: &str,
    ) -> Result<String, RenderError> {
        let syn = &self.b.config.syntax;
        Ok(match c {
            Cond::All(cs) | Cond::Any(cs) => {
                let sep = if matches!(c, Cond::All(_)) {
                    &syn.and
                } else {
                    &syn.or
                };
                let mut parts = Vec::new();
                for child in cs {
                    let t = self.cond(child, scope, sink, row)?;
                    parts.push(match child {
                        Cond::All(_) | Cond::Any(_) => syn.group.replace("{}", &t),
                        _ => t,
                    });
                }
                parts.join(sep)
            }
            Cond::Not(inner) => {
                self.negated = !self.negated;
                let t = self.cond(inner, scope, sink, row);
                self.negated = !self.negated;
                syn.not.replace("{}", &t?)
            }
            Cond::Some { array, cond } => {
                let (steps, test) = self.quantifier(&array.0, cond, scope, row)?;
                sink.extend(steps);
                test
            }
            Cond::Pred(p) => {
                let t = self.pred(p, scope)?;
                match (&syn.null_safe, self.negated) {
                    (Some(wrap), true) => wrap.replace("{}", &t),
                    _ => t,
                }
            }
        })
    }

    fn quantifier(
        &mut self,
        array: &str,
        cond: &Cond,
        scope: &Scope,
        parent_row: &str,
    ) -> Result<(Vec<String>, String), RenderError> {
        let q = self
            .b
            .config
            .quantifier
            .as_ref()
            .ok_or(RenderError::MissingSection("quantifier"))?;
        self.flags += 1;
        let flag = format!("rp_q{}", self.flags);
        let map = self
            .b
            .fields
            .arrays
            .get(array)
            .ok_or_else(|| RenderError::UnmappedArray(array.to_string()))?;
        let var = map.var.clone();
        let parent = scope.last().map(|(_, v)| v.clone()).unwrap_or_default();
        let source = fill(&map.source, &[("parent", &parent)]);
        let mut inner_scope = scope.clone();
        inner_scope.push((array.to_string(), var.clone()));
        let row = fill(&q.row, &[("var", &var)]);
        let mut inner_steps = Vec::new();
        // The fold turns a null element test into "no match", so the element condition starts
        // with fresh polarity.
        let outer = std::mem::replace(&mut self.negated, false);
        let text = self.cond(cond, &inner_scope, &mut inner_steps, &row);
        self.negated = outer;
        let text = text?;
        let args = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
            let mut v: Vec<(String, String)> = [
                ("var", var.as_str()),
                ("source", source.as_str()),
                ("parent", parent.as_str()),
                ("flag", flag.as_str()),
                ("cond", text.as_str()),
                ("row", row.as_str()),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            v.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            v
        };
        let filled = |t: &str, extra: &[(&str, &str)]| {
            let a = args(extra);
            let refs: Vec<(&str, &str)> = a.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            fill(t, &refs)
        };
        let test = filled(&q.flag_test, &[]);
        let mut steps = Vec::new();
        if scope.is_empty() && !self.events_numbered && !q.number_events.is_empty() {
            self.events_numbered = true;
            steps.push(filled(&q.number_events, &[]));
        }
        let expand = if scope.is_empty() {
            &q.expand_top
        } else {
            &q.expand_nested
        };
        steps.extend(expand.iter().map(|t| filled(t, &[])));
        if cond.has_quantifier() && !q.number_rows.is_empty() {
            steps.push(filled(&q.number_rows, &[]));
        }
        steps.extend(inner_steps);
        let group = if scope.is_empty() {
            q.event_key.clone()
        } else {
            fill(
                &q.nested_group,
                &[("event", &q.event_key), ("parent_row", parent_row)],
            )
        };
        steps.extend(q.fold.iter().map(|t| filled(t, &[("group", &group)])));
        Ok((steps, test))
    }

    fn field(&self, name: &str, scope: &Scope) -> Result<String, RenderError> {
        let expr = self
            .b
            .fields
            .fields
            .get(name)
            .ok_or_else(|| RenderError::UnmappedField(name.to_string()))?;
        let array = self.ls.fields.get(name).and_then(|f| f.array.as_deref());
        let element = match array {
            Some(a) => scope
                .iter()
                .rev()
                .find(|(n, _)| n == a)
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| RenderError::Unbound {
                    field: name.to_string(),
                    array: a.to_string(),
                })?,
            None => "",
        };
        Ok(fill(expr, &[("element", element)]))
    }

    fn pred(&self, p: &Pred, scope: &Scope) -> Result<String, RenderError> {
        let ops = &self.b.config.operators;
        let json = &self.b.config.json;
        let raw = self.follow(self.field(&p.field.0, scope)?, &p.json);
        let mut value = raw.clone();
        if !p.json.is_empty() {
            value = fill(&json.to_string, &[("expr", &value)]);
        }
        Ok(match &p.op {
            Op::SetChange {
                dir,
                old,
                values,
                case,
            } => {
                let old = self.follow(self.field(&old.0, scope)?, &p.json);
                self.set_change(*dir, &raw, &old, values, *case)?
            }
            Op::Exists(true) => fill(&ops.exists, &[("field", &value)]),
            Op::Exists(false) => fill(&ops.absent, &[("field", &value)]),
            Op::Number { cmp, value: n } => {
                let sym = match cmp {
                    Cmp::Gt => &ops.gt,
                    Cmp::Gte => &ops.gte,
                    Cmp::Lt => &ops.lt,
                    Cmp::Lte => &ops.lte,
                };
                fill(
                    &ops.number,
                    &[("field", &raw), ("cmp", sym), ("number", &number(*n))],
                )
            }
            Op::Regex { pattern, case } => {
                let p = match case {
                    Case::Insensitive => format!("{}{pattern}", ops.regex_ci_prefix),
                    Case::Sensitive => pattern.clone(),
                };
                fill(
                    &ops.regex,
                    &[("field", &value), ("pattern", &self.string(&p))],
                )
            }
            Op::Str {
                op: StrOp::Equals,
                values,
                case,
                param: Some(param),
            } => {
                let t = match case {
                    Case::Insensitive => &self.b.config.operators.in_parameter,
                    Case::Sensitive => &self.b.config.operators.in_parameter_cs,
                };
                match t {
                    Some(t) => fill(
                        t,
                        &[("field", &value), ("param", param), ("rule", self.rule)],
                    ),
                    None => self.str_op(StrOp::Equals, values, *case, &value),
                }
            }
            Op::Str {
                op, values, case, ..
            } => self.str_op(*op, values, *case, &value),
        })
    }

    /// The JSON path followed from `value`, as the backend's expression (not turned to text).
    fn follow(&self, mut value: String, steps: &[JsonStep]) -> String {
        let json = &self.b.config.json;
        for (i, step) in steps.iter().enumerate() {
            let base = if i == 0 {
                value.clone()
            } else {
                fill(&json.to_string, &[("expr", &value)])
            };
            value = match step {
                JsonStep::Key(k) => {
                    let key = match json.key_form {
                        KeyForm::Literal => self.string(k),
                        KeyForm::Raw => k.clone(),
                    };
                    fill(&json.key, &[("expr", &base), ("key", &key)])
                }
                JsonStep::Index(n) => {
                    fill(&json.index, &[("expr", &base), ("index", &n.to_string())])
                }
            };
        }
        value
    }

    fn set_change(
        &self,
        dir: SetDir,
        new: &str,
        old: &str,
        values: &[String],
        case: Case,
    ) -> Result<String, RenderError> {
        let ops = &self.b.config.operators;
        let missing = || RenderError::MissingSection("operators.set_*");
        let array = match case {
            Case::Insensitive => ops.set_array_ci.as_ref(),
            Case::Sensitive => ops.set_array.as_ref(),
        }
        .ok_or_else(missing)?;
        let (new, old) = (fill(array, &[("expr", new)]), fill(array, &[("expr", old)]));
        let (from, to) = match dir {
            SetDir::Added => (new, old),
            SetDir::Removed => (old, new),
        };
        if values.is_empty() {
            let t = ops.set_added.as_ref().ok_or_else(missing)?;
            return Ok(fill(t, &[("from", &from), ("to", &to)]));
        }
        let t = ops.set_added_value.as_ref().ok_or_else(missing)?;
        let parts: Vec<String> = values
            .iter()
            .map(|v| {
                let v = match case {
                    Case::Insensitive => v.to_lowercase(),
                    Case::Sensitive => v.clone(),
                };
                let regex = format!("^{}$", regex_escape(&v));
                fill(
                    t,
                    &[
                        ("from", &from),
                        ("to", &to),
                        ("value", &self.string(&v)),
                        ("regex", &self.string(&regex)),
                    ],
                )
            })
            .collect();
        Ok(match parts.len() {
            1 => parts.concat(),
            _ => self
                .b
                .config
                .syntax
                .group
                .replace("{}", &parts.join(&self.b.config.syntax.or)),
        })
    }

    fn str_op(&self, op: StrOp, values: &[String], case: Case, field: &str) -> String {
        let ops = &self.b.config.operators;
        let cs = case == Case::Sensitive;
        if values.len() > 1 {
            let list = if cs { &ops.one_of_cs } else { &ops.one_of };
            if let Some(t) = list {
                let lits: Vec<String> = values.iter().map(|v| self.string(v)).collect();
                return fill(
                    t,
                    &[
                        ("field", field),
                        ("values", &lits.join(&self.b.config.syntax.list_separator)),
                    ],
                );
            }
            let parts: Vec<String> = values
                .iter()
                .map(|v| self.str_op(op, std::slice::from_ref(v), case, field))
                .collect();
            return self
                .b
                .config
                .syntax
                .group
                .replace("{}", &parts.join(&self.b.config.syntax.or));
        }
        let v = &values[0];
        let (t, anchored) = match (op, cs) {
            (StrOp::Equals, false) => (&ops.equals, ("^", "$")),
            (StrOp::Equals, true) => (&ops.equals_cs, ("^", "$")),
            (StrOp::Contains, false) => (&ops.contains, ("", "")),
            (StrOp::Contains, true) => (&ops.contains_cs, ("", "")),
            (StrOp::StartsWith, false) => (&ops.starts_with, ("^", "")),
            (StrOp::StartsWith, true) => (&ops.starts_with_cs, ("^", "")),
            (StrOp::EndsWith, false) => (&ops.ends_with, ("", "$")),
            (StrOp::EndsWith, true) => (&ops.ends_with_cs, ("", "$")),
        };
        let prefix = if cs { "" } else { ops.regex_ci_prefix.as_str() };
        let regex = format!("{prefix}{}{}{}", anchored.0, regex_escape(v), anchored.1);
        fill(
            t,
            &[
                ("field", field),
                ("value", &self.string(v)),
                ("regex", &self.string(&regex)),
            ],
        )
    }

    fn output(&mut self, o: &Output, filter: Option<&Cond>) -> Result<Vec<String>, RenderError> {
        let outs = self
            .b
            .config
            .outputs
            .as_ref()
            .ok_or(RenderError::MissingSection("outputs"))?;
        let column = o.column.0.as_str();
        let array = self.ls.fields.get(&o.field.0).and_then(|f| f.array.clone());
        let Some(array) = array else {
            let expr = self.field(&o.field.0, &Vec::new())?;
            return Ok(vec![fill(
                &outs.scalar,
                &[("column", column), ("expr", &expr)],
            )]);
        };
        let map = self
            .b
            .fields
            .arrays
            .get(&array)
            .ok_or_else(|| RenderError::UnmappedArray(array.to_string()))?;
        let scope = vec![(array.clone(), map.var.clone())];
        let expr = self.field(&o.field.0, &scope)?;
        let cond = match filter {
            Some(f) => {
                let mut sink = Vec::new();
                let t = self.cond(f, &scope, &mut sink, "")?;
                if !sink.is_empty() {
                    return Err(RenderError::NestedOutputFilter(column.to_string()));
                }
                t
            }
            None => fill(&outs.element_any, &[("expr", &expr)]),
        };
        let source = fill(&map.source, &[("parent", "")]);
        Ok(outs
            .element
            .iter()
            .map(|t| {
                fill(
                    t,
                    &[
                        ("column", column),
                        ("expr", &expr),
                        ("var", &map.var),
                        ("source", &source),
                        ("cond", &cond),
                    ],
                )
            })
            .collect())
    }
}

fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}
