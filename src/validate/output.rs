//! A rule's output columns.

use super::Ctx;
use super::condition::cond;
use super::shapes::is_column;
use crate::diag::{Code, did_you_mean};
use crate::ir::FieldPath;
use crate::load::raw::{RawOutput, RawRule, S, TestEvent};
use crate::model::*;
use crate::taxonomy::LogSource;

pub(super) fn outputs<E: TestEvent>(cx: &mut Ctx, ls: &LogSource, raw: &RawRule<E>) -> Vec<Output> {
    let mut out = Vec::new();
    for (column, o) in &raw.output {
        if !is_column(column) {
            cx.err(
                o,
                Code::BadOutput,
                format!("output column `{column}` is not a plain name"),
                "use letters, digits and _, starting with a letter (at most 40)",
            );
            continue;
        }
        if let Some((msg, help)) =
            super::reserved::problem(column, raw.correlation.is_some(), raw.aggregation.is_some())
        {
            cx.err(o, Code::BadOutput, msg, help);
            continue;
        }
        out.extend(output(cx, ls, column, o));
    }
    out
}

/// One value taken from a record: a top-level field, or a field of the top-level array element
/// that satisfies `where`.
pub(super) fn output(
    cx: &mut Ctx,
    ls: &LogSource,
    column: &str,
    o: &S<RawOutput>,
) -> Option<Output> {
    let Some(def) = ls.fields.get(&o.value.field.value) else {
        let help = match did_you_mean(&o.value.field.value, ls.fields.keys().map(String::as_str)) {
            Some(f) => format!("did you mean `{f}`?"),
            None => "use a field of the log source".into(),
        };
        cx.err(
            &o.value.field,
            Code::UnknownField,
            format!("unknown field `{}`", o.value.field.value),
            help,
        );
        return None;
    };
    let filter = match (&o.value.where_, &def.array) {
        (None, _) => None,
        (Some(w), Some(array)) => {
            if ls.arrays.get(array).is_some_and(|a| a.parent.is_some()) {
                cx.err(
                    w,
                    Code::BadOutput,
                    "`where` on an output works for top-level arrays only",
                    "output a field of the enclosing array instead",
                );
                return None;
            }
            Some(cond(cx, ls, w, std::slice::from_ref(array))?)
        }
        (Some(w), None) => {
            cx.err(
                w,
                Code::BadOutput,
                format!(
                    "`{}` is not in an array: `where` has nothing to choose from",
                    o.value.field.value
                ),
                "remove `where`",
            );
            return None;
        }
    };
    if def
        .array
        .as_ref()
        .is_some_and(|a| ls.arrays.get(a).is_some_and(|d| d.parent.is_some()))
    {
        cx.err(
            &o.value.field,
            Code::BadOutput,
            format!(
                "`{}` sits in a nested array and cannot be an output column",
                o.value.field.value
            ),
            "output a field of the enclosing element",
        );
        return None;
    }
    Some(Output {
        column: Column(column.to_string()),
        field: FieldPath(o.value.field.value.clone()),
        filter,
    })
}
