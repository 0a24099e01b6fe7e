//! Parsing a record into a `serde_json::Value` with a budget of values.
//!
//! A record's text is at most [`super::MAX_RECORD`] bytes, but its parsed `Value` can be far larger:
//! `[0,0,…]` spends two bytes of text per element and 32 bytes (plus the array's doubling growth)
//! per parsed element, so the text limit alone let six 60 MB records take 4.5 GB. Every value
//! parsed (scalar, array, object, object member) spends one unit of [`MAX_VALUES`]; a record
//! that runs out is skipped as too large, so one parse holds at most about `MAX_VALUES` × 100
//! bytes. Nesting is bounded by serde_json's recursion limit (128).

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::{Cell, RefCell};
use std::fmt;

/// Values one record may hold. A Graph `directoryAudit` record holds 50 to 300; a Graph page of
/// 999 records or an Event Hub message (at most 1 MB) fits with room to spare.
pub const MAX_VALUES: usize = 1 << 19;

/// The message of the error a record over budget gives (matched to count it as too large).
pub const OVER_BUDGET: &str = "more values than a record may hold";

/// Parses one JSON value from `bytes` (nothing but white space after it).
pub fn parse(bytes: &[u8]) -> serde_json::Result<Value> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_one(serde_json::Deserializer::from_str(text)),
        // Not UTF-8: serde_json reads the bytes and says where the text goes wrong.
        Err(_) => parse_one(serde_json::Deserializer::from_slice(bytes)),
    }
}

/// Text checked as UTF-8 once, as a whole, is read without serde_json checking each string again
/// (`from_slice` does: a fourteenth of replay's instructions went to it).
fn parse_one<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
) -> serde_json::Result<Value> {
    let budget = Cell::new(MAX_VALUES);
    let v = Node(&budget).deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Parses one JSON value from `text` without a budget: `serde_json::from_str`'s result, with each
/// object's map made at its final size (see [`MEMBERS`]). For `rulepack simulate`, which reads
/// lines whole and has never skipped a record for its size.
pub fn parse_whole(text: &str) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    // Spending one unit per value, this budget outlasts any input.
    let budget = Cell::new(usize::MAX);
    let v = Node(&budget).deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Parses every JSON value in `bytes` (JSON Lines: several values on a line), each with its own
/// budget; stops at the first error, which ends the list.
pub fn parse_all(bytes: &[u8]) -> Vec<serde_json::Result<Value>> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_each(serde_json::Deserializer::from_str(text)),
        Err(_) => parse_each(serde_json::Deserializer::from_slice(bytes)),
    }
}

fn parse_each<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
) -> Vec<serde_json::Result<Value>> {
    let mut out = Vec::with_capacity(1);
    while de.end().is_err() {
        let budget = Cell::new(MAX_VALUES);
        let v = Node(&budget).deserialize(&mut de);
        let stop = v.is_err();
        out.push(v);
        if stop {
            break;
        }
    }
    out
}

/// Whether a parse error is the budget running out.
pub fn over_budget(e: &serde_json::Error) -> bool {
    e.to_string().starts_with(OVER_BUDGET)
}

/// Lists larger than this are not kept for the next object: what a worker keeps stays small.
const KEPT_MEMBERS: usize = 256;

thread_local! {
    /// Member lists of the objects being read (one per open object), reused from record to
    /// record, so each object's map is made at its final size at once: growing it key by key
    /// reallocated and rehashed it up to four times per object, a tenth of replay's time.
    static MEMBERS: RefCell<Vec<Vec<(String, Value)>>> = const { RefCell::new(Vec::new()) };
}

/// One value, paid from the budget.
#[derive(Clone, Copy)]
struct Node<'b>(&'b Cell<usize>);

impl Node<'_> {
    fn spend<E: de::Error>(self) -> Result<(), E> {
        match self.0.get().checked_sub(1) {
            Some(left) => {
                self.0.set(left);
                Ok(())
            }
            None => Err(E::custom(format_args!("{OVER_BUDGET} ({MAX_VALUES})"))),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.spend()?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut members = MEMBERS.with_borrow_mut(Vec::pop).unwrap_or_default();
        let mut read = || -> Result<(), A::Error> {
            while let Some(k) = map.next_key::<String>()? {
                self.spend()?;
                let v = map.next_value_seed(self)?;
                members.push((k, v));
            }
            Ok(())
        };
        let object = read().map(|()| {
            // Inserted in order, so a repeated key keeps its first place and its last value.
            let mut m = Map::with_capacity(members.len());
            for (k, v) in members.drain(..) {
                m.insert(k, v);
            }
            Value::Object(m)
        });
        if members.capacity() <= KEPT_MEMBERS {
            members.clear();
            MEMBERS.with_borrow_mut(|free| free.push(members));
        }
        object
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_serde_json() {
        for text in [
            "null",
            "true",
            "-3",
            "18446744073709551615",
            "1.5e3",
            "\"é\\n\"",
            "[]",
            "{}",
            "{\"a\": [1, {\"b\": null}], \"a\": 2}",
            " [ [ [] ] ] ",
        ] {
            let want: Value = serde_json::from_str(text).unwrap();
            assert_eq!(parse(text.as_bytes()).unwrap(), want, "{text}");
            assert_eq!(parse_whole(text).unwrap(), want, "{text}");
        }
        for bad in ["", "[1,", "{\"a\" 1}", "1 2", "nul"] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
            assert!(parse_whole(bad).is_err(), "{bad}");
        }
        let all = parse_all(b"{\"a\":1} {\"b\":2}\n3 x 4");
        assert_eq!(all.len(), 4);
        assert!(all[..3].iter().all(Result::is_ok) && all[3].is_err());
        assert!(parse_all(b"  \n").is_empty());
    }

    #[test]
    fn text_and_bytes_parse_alike_and_bad_utf8_is_placed() {
        // Valid text takes the text path; the same value read as bytes must be the same.
        let text = "{\"a\":\"é\\u00e9\",\"b\":[1,{\"c\":\"x\\\"y\"}]}";
        let mut de = serde_json::Deserializer::from_slice(text.as_bytes());
        let budget = Cell::new(MAX_VALUES);
        let by_bytes = Node(&budget).deserialize(&mut de).unwrap();
        assert_eq!(parse(text.as_bytes()).unwrap(), by_bytes);
        assert_eq!(parse_all(text.as_bytes()).pop().unwrap().unwrap(), by_bytes);
        // Invalid UTF-8 in a string: the error names where, as serde_json's byte reader does.
        let bad = b"{\"a\":1,\n\"b\":\"\xff\"}";
        let e = parse(bad).unwrap_err();
        assert_eq!(
            (e.line(), e.to_string().contains("unicode")),
            (2, true),
            "{e}"
        );
        let all = parse_all(b"{\"a\":1} {\"b\":\"\xc3\"}");
        assert!(all[0].is_ok() && all[1].is_err(), "{all:?}");
    }

    #[test]
    fn a_record_over_budget_is_an_error_at_the_budget() {
        let fits = format!("[{}0]", "0,".repeat(MAX_VALUES - 2));
        assert!(parse(fits.as_bytes()).is_ok());
        let over = format!("[{}0]", "0,".repeat(MAX_VALUES - 1));
        let e = parse(over.as_bytes()).unwrap_err();
        assert!(over_budget(&e), "{e}");
        let members = format!("{{{}\"z\":0}}", "\"a\":0,".repeat(MAX_VALUES / 2));
        assert!(over_budget(&parse(members.as_bytes()).unwrap_err()));
    }
}
