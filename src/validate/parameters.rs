//! A rule's parameters: named value lists that `in_parameter` conditions refer to.

use super::shapes::is_slug;
use super::{Ctx, text};
use crate::diag::Code;
use crate::load::raw::{RawRule, TestEvent};
use crate::model::*;

pub(super) fn parameters<E: TestEvent>(cx: &mut Ctx, raw: &RawRule<E>) -> Vec<Parameter> {
    let mut out = Vec::new();
    for (name, p) in &raw.parameters {
        if !is_slug(name) {
            cx.err(
                p,
                Code::BadMetadata,
                format!("parameter name `{name}` is not a plain name"),
                "use 3-60 characters of a-z, 0-9 and _, starting with a letter",
            );
            continue;
        }
        let mut clean = text::text_ok(cx, &p.value.description);
        for v in &p.value.values.value {
            clean &= text::value_ok(cx, v, &v.value);
        }
        if !clean {
            continue;
        }
        if p.value.values.value.is_empty() {
            cx.err(
                &p.value.values,
                Code::EmptyCondition,
                "a parameter needs at least one value",
                "list the default values",
            );
            continue;
        }
        out.push(Parameter {
            name: name.clone(),
            description: p.value.description.value.clone(),
            values: p
                .value
                .values
                .value
                .iter()
                .map(|v| v.value.clone())
                .collect(),
        });
    }
    out
}
