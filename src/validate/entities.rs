//! A rule's entities, mapped to its output columns.

use super::Ctx;
use crate::diag::{Code, did_you_mean};
use crate::load::raw::{RawRule, TestEvent};
use crate::model::*;

pub(super) fn entities<E: TestEvent>(
    cx: &mut Ctx,
    raw: &RawRule<E>,
    outputs: &[Output],
) -> Vec<Entity> {
    let mut out = Vec::new();
    for e in &raw.entities {
        let Some((_, kind, idents)) = EntityKind::ALL
            .iter()
            .find(|(n, _, _)| *n == e.value.kind.value)
        else {
            let names = EntityKind::ALL.iter().map(|(n, _, _)| *n);
            let help = match did_you_mean(&e.value.kind.value, names.clone()) {
                Some(n) => format!("did you mean `{n}`?"),
                None => format!("one of: {}", names.collect::<Vec<_>>().join(", ")),
            };
            cx.err(
                &e.value.kind,
                Code::BadEntity,
                format!("unknown entity type `{}`", e.value.kind.value),
                help,
            );
            continue;
        };
        let mut identifiers = Vec::new();
        for (ident, column) in &e.value.identifiers {
            if !idents.contains(&ident.as_str()) {
                cx.err(
                    column,
                    Code::BadEntity,
                    format!("`{ident}` is not an identifier of {}", e.value.kind.value),
                    format!("one of: {}", idents.join(", ")),
                );
                continue;
            }
            if !outputs.iter().any(|o| o.column.0 == column.value) {
                cx.err(
                    column,
                    Code::BadEntity,
                    format!("`{}` is not an output column", column.value),
                    "entities map columns declared under `output`",
                );
                continue;
            }
            // An aggregation returns one value per row only for its group-by columns; the other
            // columns become sets, which no entity identifier takes.
            if let Some(agg) = &raw.aggregation
                && !agg.value.group_by.iter().any(|g| g.value == column.value)
            {
                cx.err(
                    column,
                    Code::BadEntity,
                    format!(
                        "`{}` is not a group-by column of the aggregation",
                        column.value
                    ),
                    "an aggregation's other columns are sets of values: map only `group_by` columns, or add the column to `group_by`",
                );
                continue;
            }
            identifiers.push((ident.clone(), Column(column.value.clone())));
        }
        if e.value.identifiers.is_empty() {
            cx.err(
                &e.value.kind,
                Code::BadEntity,
                "entity has no identifier",
                format!("map at least one of: {}", idents.join(", ")),
            );
            continue;
        }
        // A bad identifier was reported above; keep the entity out rather than half-mapped.
        if identifiers.len() == e.value.identifiers.len() {
            out.push(Entity {
                kind: *kind,
                identifiers,
            });
        }
    }
    out
}
