//! Aggregations: group-by columns, function, threshold and window.

use super::Ctx;
use super::metadata::pick;
use super::schedule::duration;
use crate::diag::Code;
use crate::ir::FieldPath;
use crate::load::raw::S;
use crate::model::*;
use crate::taxonomy::LogSource;

pub(super) fn aggregation(
    cx: &mut Ctx,
    ls: &LogSource,
    a: &S<crate::load::raw::RawAggregation>,
    outputs: &[Output],
) -> Option<Aggregation> {
    let r = &a.value;
    let function = pick(
        cx,
        &r.function,
        &[
            ("count", AggFunction::Count),
            ("distinct_count", AggFunction::DistinctCount),
        ],
        "aggregation function",
    )?;
    let field = match (&r.field, function) {
        (Some(f), AggFunction::DistinctCount) => match ls.fields.get(&f.value) {
            Some(d) if d.array.is_none() => Some(FieldPath(f.value.clone())),
            Some(_) => {
                cx.err(
                    f,
                    Code::BadThreshold,
                    "distinct_count needs a field outside arrays",
                    "count a top-level field",
                );
                return None;
            }
            None => {
                cx.err(
                    f,
                    Code::UnknownField,
                    format!("unknown field `{}`", f.value),
                    "use a field of the log source",
                );
                return None;
            }
        },
        (None, AggFunction::DistinctCount) => {
            cx.err(
                &r.function,
                Code::MissingField,
                "distinct_count needs `field`",
                "add `field: <neutral field>`",
            );
            return None;
        }
        (Some(f), AggFunction::Count) => {
            cx.err(
                f,
                Code::BadThreshold,
                "`count` counts events and takes no `field`",
                "remove `field`, or use distinct_count",
            );
            return None;
        }
        (None, AggFunction::Count) => None,
    };
    let mut group_by = Vec::new();
    for g in &r.group_by {
        match outputs.iter().find(|o| o.column.0 == g.value) {
            Some(o)
                if o.filter.is_none()
                    && ls.fields.get(&o.field.0).is_some_and(|d| d.array.is_none()) =>
            {
                group_by.push(o.column.clone())
            }
            Some(_) => cx.err(
                g,
                Code::BadOutput,
                format!("cannot group by `{}`: it comes from an array", g.value),
                "group by a top-level field such as initiator.upn",
            ),
            None => cx.err(
                g,
                Code::BadOutput,
                format!("`{}` is not an output column", g.value),
                "group_by names columns declared under `output`",
            ),
        }
    }
    let window = duration(cx, &r.window)?;
    if r.threshold.value == 0 {
        cx.err(
            &r.threshold,
            Code::BadThreshold,
            "threshold must be at least 1",
            "the alert fires when the aggregate reaches the threshold",
        );
        return None;
    }
    Some(Aggregation {
        function,
        field,
        group_by,
        window,
        threshold: r.threshold.value,
    })
}
