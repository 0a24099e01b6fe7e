//! JSON text inside records (`json` steps), decoded once per record, and the top-level fields
//! the rules of one record read, found once.

use super::Evaluator;
use super::fields::{member, walk};
use crate::ir::JsonStep;
use serde_json::Value;

/// What the rules read from one record, kept while it is evaluated, so it is valid for that one
/// record only.
///
/// - The JSON text of its fields, decoded on first use: several rules (and several predicates of
///   one rule) read paths inside the same `modifiedProperties` value, which is then parsed once.
///   Keyed by the field value's address (a record decodes a few values: found by a scan).
/// - Its top-level fields, found on first use: most rules first test the same field (the
///   activity), and each test used to walk the record for it again. Kept for one evaluator (the
///   first that asks; [`crate::replay::Pack`] shares one per log source), by taxonomy index.
#[derive(Default)]
pub struct Decoded<'v> {
    json: std::cell::RefCell<Vec<(usize, Option<std::rc::Rc<Value>>)>>,
    /// (the evaluator's address, each field's value once found).
    fields: std::cell::RefCell<(usize, Vec<Option<Option<&'v Value>>>)>,
}

impl<'v> Decoded<'v> {
    /// Top-level field `index` of `record` as `eval` reads it, found once per record.
    pub(super) fn field(
        &self,
        eval: &Evaluator,
        index: usize,
        record: &'v Value,
    ) -> Option<&'v Value> {
        let find = || walk(record, &eval.field_paths[index]).filter(|v| !v.is_null());
        let owner = eval as *const Evaluator as usize;
        let mut memo = self.fields.borrow_mut();
        if memo.0 == 0 {
            *memo = (owner, vec![None; eval.field_paths.len()]);
        } else if memo.0 != owner {
            return find();
        }
        *memo.1[index].get_or_insert_with(find)
    }

    /// Decodes JSON text `v` (or takes it decoded) and follows `steps`: a string met before a
    /// step is decoded (once per record too), then the step applies. Only the value reached is
    /// copied.
    pub(super) fn follow(&self, v: &Value, steps: &[JsonStep]) -> Option<Value> {
        let root = self.decoded(v)?;
        self.steps_from(&root, steps)
    }

    fn steps_from(&self, cur: &Value, steps: &[JsonStep]) -> Option<Value> {
        let Some((step, rest)) = steps.split_first() else {
            return Some(cur.clone());
        };
        let decoded;
        let cur = if cur.is_string() {
            decoded = self.decoded(cur)?;
            &*decoded
        } else {
            cur
        };
        let next = match step {
            JsonStep::Key(k) => member(cur, k)?,
            JsonStep::Index(i) => cur.get(*i as usize)?,
        };
        self.steps_from(next, rest)
    }

    /// `v` decoded, once per record: keyed by its address, which stays the same while the
    /// record and the values decoded from it (held here) live. Policy values nest JSON text in
    /// JSON text (`["{\"B2BManagementPolicy\": …}"]`), and decoding the inner text again for
    /// every rule that reads it was a twentieth of replay's instructions.
    fn decoded(&self, v: &Value) -> Option<std::rc::Rc<Value>> {
        let key = v as *const Value as usize;
        let cached = self
            .json
            .borrow()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, root)| root.clone());
        match cached {
            Some(root) => root,
            None => {
                let root = decode(v).map(std::rc::Rc::new);
                self.json.borrow_mut().push((key, root.clone()));
                root
            }
        }
    }
}

fn decode(v: &Value) -> Option<Value> {
    match v {
        Value::String(s) => serde_json::from_str(s).ok(),
        other => Some(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_decode_nested_strings() {
        let v = Value::String(r#"["{\"P\":{\"A\":[\"x.com\"]}}"]"#.into());
        let path = [
            JsonStep::Index(0),
            JsonStep::Key("P".into()),
            JsonStep::Key("A".into()),
        ];
        let d = Decoded::default();
        assert_eq!(d.follow(&v, &path), Some(serde_json::json!(["x.com"])));
        assert_eq!(d.follow(&v, &[JsonStep::Index(1)]), None);
        // The inner text is decoded once for the record, like the outer.
        assert_eq!(
            d.follow(&v, &path[..2]),
            Some(serde_json::json!({"A": ["x.com"]}))
        );
        assert_eq!(d.json.borrow().len(), 2, "the outer and the inner text");
        let other = Value::String("not json".into());
        assert_eq!(Decoded::default().follow(&other, &path), None);
    }
}
