//! A rule's condition: nodes, predicates and JSON paths, checked against the log source.

use super::{Ctx, portable_regex, text};
use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::ir::{ArrayName, Case, Cmp, Cond, FieldPath, JsonStep, Op, Pred, SetDir, StrOp};
use crate::load::raw::{RawCondition, S};
use crate::taxonomy::{FieldType, LogSource};

const NODE_KEYS: &str = "all, any, not, some (+ where), field (+ one operator)";
pub(crate) const OPERATORS: &[&str] = &[
    "equals",
    "one_of",
    "in_parameter",
    "contains",
    "starts_with",
    "ends_with",
    "regex",
    "exists",
    "added",
    "removed",
    "gt",
    "gte",
    "lt",
    "lte",
];

/// `bound`: arrays bound by enclosing `some`, innermost last.
pub(super) fn cond(
    cx: &mut Ctx,
    ls: &LogSource,
    node: &S<RawCondition>,
    bound: &[String],
) -> Option<Cond> {
    let n = &node.value;
    let kinds = [
        n.all.is_some(),
        n.any.is_some(),
        n.not.is_some(),
        n.some.is_some(),
        n.field.is_some(),
    ];
    let count = kinds.iter().filter(|k| **k).count();
    if count == 0 {
        let d = Diagnostic::error(Code::EmptyCondition, "empty condition")
            .at(cx.span(node))
            .help(format!("a condition node needs one of: {NODE_KEYS}"));
        cx.diags.push(d);
        return None;
    }
    if count > 1 {
        let d = Diagnostic::error(
            Code::BadPredicate,
            "a condition node must hold exactly one of all / any / not / some / field",
        )
        .at(cx.span(node))
        .help("split it: put the parts in a list under `all:` (or `any:`)");
        cx.diags.push(d);
        return None;
    }
    if n.where_.is_some() && n.some.is_none() {
        let w = n.where_.as_deref()?;
        cx.err(
            w,
            Code::BadPredicate,
            "`where` belongs to `some`",
            "write `some: <array>` next to `where:`",
        );
        return None;
    }
    let has_op = op_keys(n).next().is_some() || n.json.is_some() || n.case_sensitive.is_some();
    if n.field.is_none() && has_op {
        let d = Diagnostic::error(Code::BadPredicate, "an operator needs a `field`")
            .at(cx.span(node))
            .help("add `field: <neutral field>` to this predicate");
        cx.diags.push(d);
        return None;
    }
    if let Some(list) = n.all.as_ref().or(n.any.as_ref()) {
        if list.value.is_empty() {
            cx.err(
                list,
                Code::EmptyCondition,
                "empty list of conditions",
                "add at least one condition, or remove the node",
            );
            return None;
        }
        let mut out = Vec::new();
        for c in &list.value {
            out.extend(cond(cx, ls, c, bound));
        }
        if out.len() != list.value.len() {
            return None;
        }
        return Some(if n.all.is_some() {
            Cond::All(out)
        } else {
            Cond::Any(out)
        });
    }
    if let Some(inner) = &n.not {
        return cond(cx, ls, inner, bound).map(|c| Cond::Not(Box::new(c)));
    }
    if let Some(array) = &n.some {
        let Some(def) = ls.arrays.get(&array.value) else {
            let help = match did_you_mean(&array.value, ls.arrays.keys().map(String::as_str)) {
                Some(a) => format!("did you mean `{a}`?"),
                None => format!(
                    "`some` takes an array: {}",
                    ls.arrays.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            };
            let msg = if ls.fields.contains_key(&array.value) {
                format!(
                    "`{}` is a field, not an array: `some` quantifies over arrays",
                    array.value
                )
            } else {
                format!("unknown array `{}`", array.value)
            };
            cx.err(array, Code::NotAnArray, msg, help);
            return None;
        };
        if bound.contains(&array.value) {
            cx.err(
                array,
                Code::BadPredicate,
                format!("already inside `some: {}`", array.value),
                "predicates here already refer to that element; remove the inner `some`",
            );
            return None;
        }
        if let Some(p) = &def.parent
            && !bound.is_empty()
            && !bound.contains(p)
        {
            cx.err(
                array,
                Code::NotAnArray,
                format!(
                    "`{}` lives inside `{p}`, which is not the enclosing element",
                    array.value
                ),
                format!("quantify over `{p}` first, or move this outside"),
            );
            return None;
        }
        let Some(w) = n.where_.as_deref() else {
            cx.err(
                array,
                Code::MissingField,
                "`some` needs a `where` condition",
                "add `where:` with the predicates the same element must satisfy",
            );
            return None;
        };
        let mut inner = bound.to_vec();
        inner.push(array.value.clone());
        return cond(cx, ls, w, &inner).map(|c| Cond::Some {
            array: ArrayName(array.value.clone()),
            cond: Box::new(c),
        });
    }
    let field = n.field.as_ref()?;
    predicate(cx, ls, node, field, bound).map(Cond::Pred)
}

fn op_keys(n: &RawCondition) -> impl Iterator<Item = &'static str> + '_ {
    let present = [
        n.equals.is_some(),
        n.one_of.is_some(),
        n.in_parameter.is_some(),
        n.contains.is_some(),
        n.starts_with.is_some(),
        n.ends_with.is_some(),
        n.regex.is_some(),
        n.exists.is_some(),
        n.added.is_some(),
        n.removed.is_some(),
        n.gt.is_some(),
        n.gte.is_some(),
        n.lt.is_some(),
        n.lte.is_some(),
    ];
    OPERATORS
        .iter()
        .zip(present)
        .filter(|(_, p)| *p)
        .map(|(k, _)| *k)
}

fn predicate(
    cx: &mut Ctx,
    ls: &LogSource,
    node: &S<RawCondition>,
    field: &S<String>,
    bound: &[String],
) -> Option<Pred> {
    let n = &node.value;
    let Some(def) = ls.fields.get(&field.value) else {
        let help = match did_you_mean(&field.value, ls.fields.keys().map(String::as_str)) {
            Some(f) => format!("did you mean `{f}`?"),
            None => format!(
                "see templates/logsources/{}.yml for the fields of this log source",
                ls.name
            ),
        };
        cx.err(
            field,
            Code::UnknownField,
            format!(
                "unknown field `{}` in log source `{}`",
                field.value, ls.name
            ),
            help,
        );
        return None;
    };
    if let (Some(array), Some(inner)) = (&def.array, bound.last())
        && !ls.array_chain(inner).contains(array)
        && !ls.array_chain(array).contains(inner)
    {
        cx.err(
            field,
            Code::NotAnArray,
            format!(
                "`{}` is a field of `{array}`, not of the `{inner}` element this `some` binds",
                field.value
            ),
            format!("move it out of `some: {inner}`"),
        );
        return None;
    }
    let ops: Vec<&str> = op_keys(n).collect();
    if ops.len() != 1 {
        let d = if ops.is_empty() {
            Diagnostic::error(
                Code::BadPredicate,
                format!("predicate on `{}` has no operator", field.value),
            )
            .help(format!("add one of: {}", OPERATORS.join(", ")))
        } else {
            Diagnostic::error(
                Code::BadPredicate,
                format!("predicate has several operators: {}", ops.join(", ")),
            )
            .help("one operator per predicate: combine several with `all:` or `any:`")
        };
        cx.diags.push(d.at(cx.span(field)));
        return None;
    }
    let json = match &n.json {
        None => Vec::new(),
        Some(path) => {
            if def.kind != FieldType::JsonText {
                cx.err(
                    path,
                    Code::BadJsonPath,
                    format!("`{}` does not hold JSON text", field.value),
                    "`json:` applies to fields of type json_text (modified.old, modified.new)",
                );
                return None;
            }
            json_path(cx, path)?
        }
    };
    let case = match &n.case_sensitive {
        Some(c) if c.value => Case::Sensitive,
        _ => Case::Insensitive,
    };
    let string_like =
        !json.is_empty() || matches!(def.kind, FieldType::String | FieldType::JsonText);
    let str_op = |cx: &mut Ctx, op: StrOp, v: &S<String>| -> Option<Op> {
        if !string_like {
            cx.err(
                v,
                Code::BadPredicate,
                format!("`{}` is not a string field", field.value),
                "use gt/gte/lt/lte for numbers and times",
            );
            return None;
        }
        if !text::value_ok(cx, v, &v.value) {
            return None;
        }
        Some(Op::Str {
            op,
            values: vec![v.value.clone()],
            case,
            param: None,
        })
    };
    let number = |cx: &mut Ctx, cmp: Cmp, v: &S<f64>| -> Option<Op> {
        if json.is_empty() && def.kind != FieldType::Number {
            cx.err(
                v,
                Code::BadPredicate,
                format!("`{}` is not a number field", field.value),
                "numeric comparisons apply to number fields and JSON values",
            );
            return None;
        }
        if !v.value.is_finite() {
            cx.err(
                v,
                Code::BadThreshold,
                "the number must be finite",
                "write a plain number",
            );
            return None;
        }
        Some(Op::Number {
            cmp,
            value: v.value,
        })
    };
    let op = if let Some(v) = &n.equals {
        str_op(cx, StrOp::Equals, v)
    } else if let Some(list) = &n.one_of {
        if list.value.is_empty() {
            cx.err(
                list,
                Code::EmptyCondition,
                "`one_of` has no values",
                "list at least one value",
            );
            return None;
        }
        if !string_like {
            cx.err(
                list,
                Code::BadPredicate,
                format!("`{}` is not a string field", field.value),
                "use gt/gte/lt/lte for numbers",
            );
            return None;
        }
        if !list.value.iter().all(|v| text::value_ok(cx, v, &v.value)) {
            return None;
        }
        Some(Op::Str {
            op: StrOp::Equals,
            values: list.value.iter().map(|v| v.value.clone()).collect(),
            case,
            param: None,
        })
    } else if let Some(name) = &n.in_parameter {
        let Some(p) = cx.params.iter().find(|p| p.name == name.value) else {
            let names: Vec<&str> = cx.params.iter().map(|p| p.name.as_str()).collect();
            let help = match did_you_mean(&name.value, names.iter().copied()) {
                Some(n) => format!("did you mean `{n}`?"),
                None => "declare it under `parameters:` with a description and values".into(),
            };
            cx.err(
                name,
                Code::BadPredicate,
                format!("unknown parameter `{}`", name.value),
                help,
            );
            return None;
        };
        if !string_like {
            cx.err(
                name,
                Code::BadPredicate,
                format!("`{}` is not a string field", field.value),
                "parameters hold strings",
            );
            return None;
        }
        Some(Op::Str {
            op: StrOp::Equals,
            values: p.values.clone(),
            case,
            param: Some(p.name.clone()),
        })
    } else if let Some(v) = &n.contains {
        str_op(cx, StrOp::Contains, v)
    } else if let Some(v) = &n.starts_with {
        str_op(cx, StrOp::StartsWith, v)
    } else if let Some(v) = &n.ends_with {
        str_op(cx, StrOp::EndsWith, v)
    } else if let Some(v) = &n.regex {
        if !text::value_ok(cx, v, &v.value) {
            return None;
        }
        regex_op(cx, v, case)
    } else if let Some(v) = &n.exists {
        Some(Op::Exists(v.value))
    } else if let Some(v) = &n.added {
        set_change(cx, ls, field, json.is_empty(), SetDir::Added, v, case)
    } else if let Some(v) = &n.removed {
        set_change(cx, ls, field, json.is_empty(), SetDir::Removed, v, case)
    } else if let Some(v) = &n.gt {
        number(cx, Cmp::Gt, v)
    } else if let Some(v) = &n.gte {
        number(cx, Cmp::Gte, v)
    } else if let Some(v) = &n.lt {
        number(cx, Cmp::Lt, v)
    } else if let Some(v) = &n.lte {
        number(cx, Cmp::Lte, v)
    } else {
        None
    }?;
    if let (Some(c), Op::Exists(_) | Op::Number { .. }) = (&n.case_sensitive, &op) {
        cx.err(
            c,
            Code::BadPredicate,
            "`case_sensitive` applies to string operators only",
            "remove it",
        );
        return None;
    }
    Some(Pred {
        field: FieldPath(field.value.clone()),
        json,
        op,
        span: cx.span(field),
    })
}

/// `added` / `removed`: the field is the new value of a pair whose sibling `….old` holds the old
/// value, so both sides are read from the one element the enclosing `some` binds.
fn set_change(
    cx: &mut Ctx,
    ls: &LogSource,
    field: &S<String>,
    no_path: bool,
    dir: SetDir,
    v: &S<serde_json::Value>,
    case: Case,
) -> Option<Op> {
    let old = field
        .value
        .strip_suffix(".new")
        .map(|base| format!("{base}.old"))
        .filter(|o| {
            ls.fields
                .get(o)
                .is_some_and(|d| d.kind == FieldType::JsonText)
        });
    let Some(old) = old.filter(|_| !no_path) else {
        cx.err(
            field,
            Code::BadPredicate,
            format!(
                "`added` / `removed` compare the old and new value of a change; `{}` with this path is not one",
                field.value
            ),
            "use `field: modified.new` with a `json:` path to an array (the old value is read from modified.old)",
        );
        return None;
    };
    let values = match &v.value {
        serde_json::Value::Bool(true) => Vec::new(),
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a)
            if !a.is_empty() && a.iter().all(serde_json::Value::is_string) =>
        {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        }
        _ => {
            cx.err(
                v,
                Code::BadPredicate,
                "`added` / `removed` take `true` (any element), a string or a list of strings",
                "write `added: true` or `added: partner.example`",
            );
            return None;
        }
    };
    if !values.iter().all(|s| text::value_ok(cx, v, s)) {
        return None;
    }
    Some(Op::SetChange {
        dir,
        old: FieldPath(old),
        values,
        case,
    })
}

fn json_path(cx: &mut Ctx, path: &S<Vec<S<serde_json::Value>>>) -> Option<Vec<JsonStep>> {
    if path.value.is_empty() {
        cx.err(
            path,
            Code::BadJsonPath,
            "empty JSON path",
            "list keys and indices, e.g. [0, B2BManagementPolicy]",
        );
        return None;
    }
    let mut steps = Vec::new();
    for step in &path.value {
        match &step.value {
            serde_json::Value::String(k) if is_json_key(k) => steps.push(JsonStep::Key(k.clone())),
            serde_json::Value::Number(i) if i.as_u64().is_some_and(|i| i < 10_000) => {
                steps.push(JsonStep::Index(i.as_u64()? as u32))
            }
            _ => {
                cx.err(step, Code::BadJsonPath, "a JSON path step is a key (letters, digits, _ - $ @) or an array index (0, 1, …)", "JSON text inside a decoded string is decoded again automatically");
                return None;
            }
        }
    }
    Some(steps)
}

fn is_json_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 128
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-$@".contains(&b))
}

/// A regex predicate: valid for the `regex` crate, inside the portable subset (refusals are
/// errors at the value), and warned about when its quantifiers nest.
fn regex_op(cx: &mut Ctx, v: &S<String>, case: Case) -> Option<Op> {
    let refuse = |cx: &mut Ctx, msg: String, help: &str| {
        cx.err(v, Code::InvalidRegex, msg, help);
        None
    };
    if let Err(e) = regex::Regex::new(&v.value) {
        let msg = e
            .to_string()
            .lines()
            .last()
            .unwrap_or("invalid")
            .trim()
            .trim_start_matches("error: ")
            .to_string();
        return refuse(
            cx,
            format!("invalid regular expression: {msg}"),
            "write a regex in the RE2/PCRE common subset; escape literal `(`, `[`, `.` with `\\`",
        );
    }
    let (refused, slow) = match portable_regex::check(&v.value) {
        Ok(found) => found,
        Err(msg) => {
            return refuse(
                cx,
                format!("invalid regular expression: {msg}"),
                "write a regex in the RE2/PCRE common subset",
            );
        }
    };
    for f in &refused {
        cx.err(
            v,
            Code::InvalidRegex,
            format!("{} (character {} of the pattern)", f.message, f.at + 1),
            f.help,
        );
    }
    for f in slow {
        let d = Diagnostic::warning(
            Code::SlowRegex,
            format!("{} (character {} of the pattern)", f.message, f.at + 1),
        )
        .at(cx.span(v))
        .help(f.help);
        cx.warnings.push(d);
    }
    refused.is_empty().then(|| Op::Regex {
        pattern: v.value.clone(),
        case,
    })
}
