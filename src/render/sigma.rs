//! The IR → a Sigma detection (named selections and a condition). Sigma has no array binding and
//! no JSON decoding: where the rule needs them the detection is a documented approximation.

use super::backend::Backend;
use super::error::RenderError;
use super::escape::{sigma_value, yaml_string};
use crate::ir::{Case, Cmp, Cond, Op, Pred, StrOp};
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
    d.condition = expr(b, cond, false, &mut d, &mut names)?;
    if names.positive == 1
        && let Some(s) = d.selections.iter_mut().find(|s| s.name == "selection_1")
    {
        s.name = "selection".into();
        d.condition = d.condition.replace("selection_1", "selection");
    }
    if names.negative == 1
        && let Some(s) = d.selections.iter_mut().find(|s| s.name == "filter_1")
    {
        s.name = "filter".into();
        d.condition = d.condition.replace("filter_1", "filter");
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
            format!("filter_{}", self.negative)
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
                    && let Some(item) = simple_item(b, p, d)?
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
        Cond::Pred(p) => match simple_item(b, p, d)? {
            Some(item) => {
                let name = names.next(negated);
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
    if preds(cond) > 1 {
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
    if s.contains(' ') && !(s.starts_with('(') && s.ends_with(')')) {
        format!("({s})")
    } else {
        s
    }
}

fn preds(c: &Cond) -> usize {
    match c {
        Cond::All(cs) | Cond::Any(cs) => cs.iter().map(preds).sum(),
        Cond::Not(c) | Cond::Some { cond: c, .. } => preds(c),
        Cond::Pred(_) => 1,
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
fn simple_item(b: &Backend, p: &Pred, d: &mut Detection) -> Result<Option<Item>, RenderError> {
    let f = field(b, p)?;
    let cased = |case: Case| {
        if case == Case::Sensitive {
            "|cased"
        } else {
            ""
        }
    };
    if !p.json.is_empty() {
        let path: Vec<String> = p
            .json
            .iter()
            .map(|s| match s {
                crate::ir::JsonStep::Key(k) => k.clone(),
                crate::ir::JsonStep::Index(i) => i.to_string(),
            })
            .collect();
        let last_key = p.json.iter().rev().find_map(|s| match s {
            crate::ir::JsonStep::Key(k) => Some(k.clone()),
            crate::ir::JsonStep::Index(_) => None,
        });
        return match (&p.op, last_key) {
            (Op::Exists(_), Some(k)) => {
                d.approximations.push(format!(
                    "`{}` is JSON text that Sigma cannot decode: the test for path {} is approximated by the text containing \"{k}\".",
                    p.field.0,
                    path.join(".")
                ));
                if matches!(p.op, Op::Exists(true)) {
                    Ok(Some(Item {
                        key: format!("{f}|contains"),
                        values: vec![yaml_string(&sigma_value(&k))],
                    }))
                } else {
                    Ok(None)
                }
            }
            (Op::Str { values, case, .. }, _) => {
                d.approximations.push(format!(
                    "`{}` is JSON text that Sigma cannot decode: the test at path {} is approximated by the text containing the value.",
                    p.field.0,
                    path.join(".")
                ));
                Ok(Some(Item {
                    key: format!("{f}|contains{}", cased(*case)),
                    values: values
                        .iter()
                        .map(|v| yaml_string(&sigma_value(v)))
                        .collect(),
                }))
            }
            _ => Err(RenderError::SigmaUnsupported(format!(
                "this test inside the JSON of `{}`",
                p.field.0
            ))),
        };
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
        Op::Exists(_) => None,
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
        (Op::Exists(false), false) => {
            let key = p
                .json
                .iter()
                .rev()
                .find_map(|s| match s {
                    crate::ir::JsonStep::Key(k) => Some(k.clone()),
                    crate::ir::JsonStep::Index(_) => None,
                })
                .unwrap_or_default();
            let name = names.next(!negated);
            d.selections.push(Selection {
                name: name.clone(),
                items: vec![Item {
                    key: format!("{f}|contains"),
                    values: vec![yaml_string(&sigma_value(&key))],
                }],
            });
            return Ok(format!("not {name}"));
        }
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
