//! Stage 3, lower: the validated condition → the IR. Makes every quantifier explicit (a predicate
//! on `target.upn` outside `some: target` means "some target has …"; `some: modified` outside
//! `some: target` means "some target has some modified property …") and flattens nested lists.

use crate::ir::{ArrayName, Cond};
use crate::taxonomy::LogSource;

pub fn lower(cond: &Cond, ls: &LogSource) -> Cond {
    lower_in(cond, ls, &[])
}

/// Lowers a condition evaluated on one element of `array` (an output's `where`).
pub fn lower_element(cond: &Cond, ls: &LogSource, array: &str) -> Cond {
    lower_in(cond, ls, &ls.array_chain(array))
}

fn lower_in(cond: &Cond, ls: &LogSource, bound: &[String]) -> Cond {
    match cond {
        Cond::All(cs) => flatten(cs, ls, bound, true),
        Cond::Any(cs) => flatten(cs, ls, bound, false),
        Cond::Not(c) => Cond::Not(Box::new(lower_in(c, ls, bound))),
        Cond::Some { array, cond } => {
            let chain = ls.array_chain(&array.0);
            let mut inner_bound = bound.to_vec();
            let missing: Vec<String> = chain
                .iter()
                .filter(|a| !bound.contains(a))
                .cloned()
                .collect();
            inner_bound.extend(missing.iter().cloned());
            wrap(&missing, lower_in(cond, ls, &inner_bound))
        }
        Cond::Pred(p) => {
            let array = ls.fields.get(&p.field.0).and_then(|f| f.array.as_deref());
            let missing: Vec<String> = match array {
                Some(a) => ls
                    .array_chain(a)
                    .into_iter()
                    .filter(|a| !bound.contains(a))
                    .collect(),
                None => Vec::new(),
            };
            wrap(&missing, Cond::Pred(p.clone()))
        }
    }
}

fn wrap(arrays: &[String], cond: Cond) -> Cond {
    arrays.iter().rev().fold(cond, |c, a| Cond::Some {
        array: ArrayName(a.clone()),
        cond: Box::new(c),
    })
}

fn flatten(cs: &[Cond], ls: &LogSource, bound: &[String], all: bool) -> Cond {
    let mut out = Vec::new();
    for c in cs {
        match (lower_in(c, ls, bound), all) {
            (Cond::All(inner), true) | (Cond::Any(inner), false) => out.extend(inner),
            (other, _) => out.push(other),
        }
    }
    match (out.len(), all) {
        (1, _) => out.remove(0),
        (_, true) => Cond::All(out),
        (_, false) => Cond::Any(out),
    }
}
