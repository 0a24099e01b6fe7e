//! The IR → a Sigma detection (named selections and a condition). Sigma has no array binding and
//! no JSON decoding: where the rule needs them the detection is a documented approximation.

use super::backend::Backend;
use super::error::RenderError;
use super::escape::{sigma_value, yaml_string};
use crate::ir::{Case, Cmp, Cond, JsonStep, Op, Pred, SetDir, StrOp};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Item {
    /// `Field|modifier|…`
    pub key: String,
    /// YAML scalars, already quoted; one value prints inline, several as a list.
    pub values: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Selection {
    pub name: String,
    pub items: Vec<Item>,
}

#[derive(Debug, Default, Serialize)]
pub struct Detection {
    pub selections: Vec<Selection>,
    pub condition: String,
    /// What the Sigma rule matches differently from the rule, in words.
    pub approximations: Vec<String>,
}

pub fn detection(b: &Backend, cond: &Cond) -> Result<Detection, RenderError> {
    let mut d = Detection::default();
    let mut names = Names::default();
    let cond = approximate(cond, true, &mut d.approximations);
    if is_const(&cond).is_some() {
        return Err(RenderError::SigmaUnsupported(
            "a condition that rests entirely on decoded JSON".into(),
        ));
    }
    d.condition = expr(b, &cond, false, &mut d, &mut names)?;
    let mut seen = std::collections::HashSet::new();
    d.approximations.retain(|a| seen.insert(a.clone()));
    if names.positive == 1
        && let Some(s) = d.selections.iter_mut().find(|s| s.name == "selection_1")
    {
        s.name = "selection".into();
        d.condition = d.condition.replace("selection_1", "selection");
    }
    if names.negative == 1
        && let Some(s) = d.selections.iter_mut().find(|s| s.name == "filter_main_1")
    {
        s.name = "filter_main".into();
        d.condition = d.condition.replace("filter_main_1", "filter_main");
    }
    Ok(d)
}

#[derive(Default)]
struct Names {
    positive: usize,
    negative: usize,
}

impl Names {
    fn next(&mut self, negated: bool) -> String {
        if negated {
            self.negative += 1;
            format!("filter_main_{}", self.negative)
        } else {
            self.positive += 1;
            format!("selection_{}", self.positive)
        }
    }
}

fn expr(
    b: &Backend,
    c: &Cond,
    negated: bool,
    d: &mut Detection,
    names: &mut Names,
) -> Result<String, RenderError> {
    Ok(match c {
        Cond::All(cs) => {
            // Sigma cannot bind to an element anyway, so conjunctions inside quantifiers join the
            // enclosing one (the approximation is recorded once per quantifier).
            let flat = flatten_all(cs, d);
            let mut merged: Vec<Item> = Vec::new();
            let mut rest = Vec::new();
            for child in &flat {
                if let Cond::Pred(p) = child
                    && let Some(item) = simple_item(b, p)?
                    && !merged.iter().any(|i| i.key == item.key)
                {
                    merged.push(item);
                } else {
                    rest.push(child);
                }
            }
            let mut parts = Vec::new();
            if !merged.is_empty() {
                let name = names.next(negated);
                d.selections.push(Selection {
                    name: name.clone(),
                    items: merged,
                });
                parts.push(name);
            }
            for child in rest {
                parts.push(wrap(expr(b, child, negated, d, names)?));
            }
            parts.join(" and ")
        }
        Cond::Any(cs) => {
            let mut parts = Vec::new();
            for child in cs {
                parts.push(wrap(expr(b, child, negated, d, names)?));
            }
            format!("({})", parts.join(" or "))
        }
        Cond::Not(inner) => format!("not {}", wrap(expr(b, inner, !negated, d, names)?)),
        Cond::Some { array, cond } => {
            note_binding(array, cond, d);
            expr(b, cond, negated, d, names)?
        }
        Cond::Pred(p) => match simple_item(b, p)? {
            Some(item) => {
                // SigmaHQ names an exclusion a team tunes `filter_optional_*`.
                let name = match &p.op {
                    Op::Str {
                        param: Some(param), ..
                    } if negated => format!("filter_optional_{param}"),
                    _ => names.next(negated),
                };
                d.selections.push(Selection {
                    name: name.clone(),
                    items: vec![item],
                });
                name
            }
            None => presence(b, p, negated, d, names)?,
        },
    })
}

fn note_binding(array: &crate::ir::ArrayName, cond: &Cond, d: &mut Detection) {
    if units(cond) > 1 {
        d.approximations.push(format!(
            "Sigma cannot bind several conditions to one element of `{}`: they may be met by different elements.",
            array.0
        ));
    }
}

/// Children of a conjunction with nested conjunctions and quantified conjunctions spliced in.
fn flatten_all<'c>(cs: &'c [Cond], d: &mut Detection) -> Vec<&'c Cond> {
    let mut out = Vec::new();
    for c in cs {
        match c {
            Cond::All(inner) => out.extend(flatten_all(inner, d)),
            Cond::Some { array, cond } => {
                note_binding(array, cond, d);
                match cond.as_ref() {
                    Cond::All(inner) => out.extend(flatten_all(inner, d)),
                    other => out.extend(flatten_all(std::slice::from_ref(other), d)),
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Parenthesise compound sub-expressions so the condition reads unambiguously.
fn wrap(s: String) -> String {
    if !s.contains(' ') || is_one_group(&s) {
        s
    } else {
        format!("({s})")
    }
}

/// Whether the whole text is one parenthesised group: "(a or b)", not "(a) and (b)".
fn is_one_group(s: &str) -> bool {
    if !s.starts_with('(') {
        return false;
    }
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i == s.len() - 1;
                }
            }
            _ => {}
        }
    }
    false
}

/// Conditions bound to one element at this level; a nested quantifier counts as one.
fn units(c: &Cond) -> usize {
    match c {
        Cond::All(cs) | Cond::Any(cs) => cs.iter().map(units).sum(),
        Cond::Not(c) => units(c),
        Cond::Some { .. } | Cond::Pred(_) => 1,
    }
}

fn last_key(p: &Pred) -> Option<String> {
    p.json.iter().rev().find_map(|s| match s {
        JsonStep::Key(k) => Some(k.clone()),
        JsonStep::Index(_) => None,
    })
}

/// Sigma cannot decode JSON. A test inside JSON text becomes "the text contains the key or the
/// value" where that over-matches (positive position, `exists: true` or a string test), and is
/// otherwise dropped: true in positive position, false under `not`, so the rule over-matches
/// rather than missing what the rule means. Every replacement is noted for the description.
fn approximate(c: &Cond, positive: bool, notes: &mut Vec<String>) -> Cond {
    let simplify_list = |cs: Vec<Cond>, all: bool| -> Cond {
        let (unit, absorbing) = (all, !all);
        if cs.iter().any(|c| is_const(c) == Some(absorbing)) {
            return constant(absorbing);
        }
        let rest: Vec<Cond> = cs
            .into_iter()
            .filter(|c| is_const(c) != Some(unit))
            .collect();
        match (rest.len(), all) {
            (0, _) => constant(unit),
            (1, _) => rest.into_iter().next().unwrap_or_else(|| constant(unit)),
            (_, true) => Cond::All(rest),
            (_, false) => Cond::Any(rest),
        }
    };
    match c {
        Cond::All(cs) => simplify_list(
            cs.iter().map(|c| approximate(c, positive, notes)).collect(),
            true,
        ),
        Cond::Any(cs) => simplify_list(
            cs.iter().map(|c| approximate(c, positive, notes)).collect(),
            false,
        ),
        Cond::Not(inner) => match approximate(inner, !positive, notes) {
            k if is_const(&k).is_some() => constant(is_const(&k) != Some(true)),
            k => Cond::Not(Box::new(k)),
        },
        Cond::Some { array, cond } => match approximate(cond, positive, notes) {
            k if is_const(&k).is_some() => k,
            k => Cond::Some {
                array: array.clone(),
                cond: Box::new(k),
            },
        },
        Cond::Pred(p) if p.json.is_empty() => c.clone(),
        Cond::Pred(p) => {
            let path: Vec<String> = p
                .json
                .iter()
                .map(|s| match s {
                    JsonStep::Key(k) => k.clone(),
                    JsonStep::Index(i) => i.to_string(),
                })
                .collect();
            let at = format!(
                "`{}` is JSON text that Sigma cannot decode: the test at path {}",
                p.field.0,
                path.join(".")
            );
            match (&p.op, positive, last_key(p)) {
                (Op::SetChange { values, .. }, true, _) if !values.is_empty() => {
                    notes.push(format!(
                        "{at}, an element added or removed across the change, is approximated by the value holding that element's text."
                    ));
                    c.clone()
                }
                (Op::Exists(true), true, Some(k)) => {
                    notes.push(format!(
                        "{at} is approximated by the text containing \"{k}\"."
                    ));
                    c.clone()
                }
                (Op::Str { .. }, true, _) => {
                    notes.push(format!(
                        "{at} is approximated by the text containing the value."
                    ));
                    c.clone()
                }
                _ => {
                    notes.push(format!("{at} is left out, so the rule matches more."));
                    constant(positive)
                }
            }
        }
    }
}

fn constant(value: bool) -> Cond {
    if value {
        Cond::All(Vec::new())
    } else {
        Cond::Any(Vec::new())
    }
}

fn is_const(c: &Cond) -> Option<bool> {
    match c {
        Cond::All(cs) if cs.is_empty() => Some(true),
        Cond::Any(cs) if cs.is_empty() => Some(false),
        _ => None,
    }
}

fn field(b: &Backend, p: &Pred) -> Result<String, RenderError> {
    b.fields
        .fields
        .get(&p.field.0)
        .cloned()
        .ok_or_else(|| RenderError::UnmappedField(p.field.0.clone()))
}

/// The predicate as one `key: values` item, or None for presence tests (two selections).
fn simple_item(b: &Backend, p: &Pred) -> Result<Option<Item>, RenderError> {
    let f = field(b, p)?;
    let cased = |case: Case| {
        if case == Case::Sensitive {
            "|cased"
        } else {
            ""
        }
    };
    if !p.json.is_empty() {
        // Only the forms `approximate` keeps reach here: both over-match in positive position.
        return Ok(match &p.op {
            Op::Exists(true) => last_key(p).map(|k| Item {
                key: format!("{f}|contains"),
                values: vec![yaml_string(&sigma_value(&k))],
            }),
            Op::SetChange {
                dir,
                old,
                values,
                case,
            } => {
                // Added: the new value holds the element; removed: the old value held it.
                let f = match dir {
                    SetDir::Added => f,
                    SetDir::Removed => b
                        .fields
                        .fields
                        .get(&old.0)
                        .cloned()
                        .ok_or_else(|| RenderError::UnmappedField(old.0.clone()))?,
                };
                Some(Item {
                    key: format!("{f}|contains{}", cased(*case)),
                    values: values
                        .iter()
                        .map(|v| yaml_string(&sigma_value(v)))
                        .collect(),
                })
            }
            Op::Str { values, case, .. } => Some(Item {
                key: format!("{f}|contains{}", cased(*case)),
                values: values
                    .iter()
                    .map(|v| yaml_string(&sigma_value(v)))
                    .collect(),
            }),
            _ => None,
        });
    }
    Ok(match &p.op {
        Op::Str {
            op: StrOp::Equals,
            case,
            param: Some(param),
            ..
        } => Some(Item {
            key: format!("{f}|expand{}", cased(*case)),
            values: vec![yaml_string(&format!("%{param}%"))],
        }),
        Op::Str {
            op, values, case, ..
        } => {
            let m = match op {
                StrOp::Equals => "",
                StrOp::Contains => "|contains",
                StrOp::StartsWith => "|startswith",
                StrOp::EndsWith => "|endswith",
            };
            Some(Item {
                key: format!("{f}{m}{}", cased(*case)),
                values: values
                    .iter()
                    .map(|v| yaml_string(&sigma_value(v)))
                    .collect(),
            })
        }
        Op::Regex { pattern, case } => {
            let m = if *case == Case::Insensitive {
                "|re|i"
            } else {
                "|re"
            };
            Some(Item {
                key: format!("{f}{m}"),
                values: vec![yaml_string(pattern)],
            })
        }
        Op::Number { cmp, value } => {
            let m = match cmp {
                Cmp::Gt => "gt",
                Cmp::Gte => "gte",
                Cmp::Lt => "lt",
                Cmp::Lte => "lte",
            };
            Some(Item {
                key: format!("{f}|{m}"),
                values: vec![format!("{value}")],
            })
        }
        Op::Exists(_) | Op::SetChange { .. } => None,
    })
}

/// exists / absent: "absent" is null or empty, so it takes two selections.
fn presence(
    b: &Backend,
    p: &Pred,
    negated: bool,
    d: &mut Detection,
    names: &mut Names,
) -> Result<String, RenderError> {
    let f = field(b, p)?;
    let want_present = match (&p.op, p.json.is_empty()) {
        (Op::Exists(e), true) => *e,
        _ => return Err(RenderError::SigmaUnsupported("this presence test".into())),
    };
    let n_null = names.next(want_present ^ negated);
    d.selections.push(Selection {
        name: n_null.clone(),
        items: vec![Item {
            key: f.clone(),
            values: vec!["null".into()],
        }],
    });
    let n_empty = names.next(want_present ^ negated);
    d.selections.push(Selection {
        name: n_empty.clone(),
        items: vec![Item {
            key: f,
            values: vec!["''".into()],
        }],
    });
    Ok(if want_present {
        format!("not ({n_null} or {n_empty})")
    } else {
        format!("({n_null} or {n_empty})")
    })
}
