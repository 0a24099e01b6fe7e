//! The condition IR every backend renders. In it, every predicate on an array field sits inside a
//! quantifier over that array, and quantifiers nest as the arrays do (modified inside target), so
//! "a property named P whose new value is V" is one element, never two independent matches.

use crate::source::Span;
use serde::Serialize;

/// A neutral field name from the taxonomy, e.g. `initiator.upn`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct FieldPath(pub String);

/// The name of an array in the taxonomy, e.g. `target`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ArrayName(pub String);

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    /// Some element of `array` (of the enclosing element, for nested arrays) satisfies `cond`.
    Some {
        array: ArrayName,
        cond: Box<Cond>,
    },
    Pred(Pred),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pred {
    pub field: FieldPath,
    /// Decode the value as JSON and follow this path before testing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub json: Vec<JsonStep>,
    pub op: Op,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonStep {
    Key(String),
    Index(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Case {
    Insensitive,
    Sensitive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StrOp {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// String test against one value, or any of several (one_of is `Equals` with many values).
    Str {
        op: StrOp,
        values: Vec<String>,
        case: Case,
        /// The rule parameter the values come from, so backends can keep it overridable.
        #[serde(skip_serializing_if = "Option::is_none")]
        param: Option<String>,
    },
    Regex {
        pattern: String,
        case: Case,
    },
    /// Present and not empty (`false`: absent, null or empty).
    Exists(bool),
    Number {
        cmp: Cmp,
        value: f64,
    },
    /// Across one change: the predicate's field holds the new value and `old` the old value of
    /// the same element; at the JSON path both hold arrays (absent or not an array: empty). Some
    /// element is in the new array and not in the old (`Added`), or the reverse (`Removed`); with
    /// `values`, that element equals one of them.
    SetChange {
        dir: SetDir,
        old: FieldPath,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        values: Vec<String>,
        case: Case,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SetDir {
    Added,
    Removed,
}

impl Cond {
    /// Quantifiers anywhere below, for backends that hoist them into their own steps.
    pub fn has_quantifier(&self) -> bool {
        match self {
            Cond::All(cs) | Cond::Any(cs) => cs.iter().any(Cond::has_quantifier),
            Cond::Not(c) => c.has_quantifier(),
            Cond::Some { .. } => true,
            Cond::Pred(_) => false,
        }
    }
}
