//! Reading fields: the name tables resolved once per evaluator, and the search of a record's
//! (small) objects by key.

use serde_json::Value;
use std::hash::Hasher;

/// Where a field (or array) is read from: the record, the bound element of an array (by its
/// index in the taxonomy), or nowhere (it names an array the taxonomy lacks: always absent).
#[derive(Clone, Copy)]
pub(super) enum Base {
    Record,
    Element(usize),
    Missing,
}

/// FNV-1a, for the evaluator's name tables: the names are short and come from the pack, never
/// from records, so a keyed hash buys nothing there.
pub(super) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// Follows a Graph path (split at its dots).
pub(super) fn walk<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| member(v, k))
}

/// Objects up to this many keys are searched key by key rather than through their hash table.
const LINEAR_KEYS: usize = 32;

/// `v[k]` when `v` is an object that has key `k` (see [`map_member`]).
pub(super) fn member<'v>(v: &'v Value, k: &str) -> Option<&'v Value> {
    match v {
        Value::Object(m) => map_member(m, k),
        other => other.get(k),
    }
}

/// `m[k]`. A record's objects are small (a Graph record has about 15 keys): comparing the keys,
/// lengths first, costs less than hashing `k` with the map's SipHash, which every field read did.
/// Keys are unique, so both find the same member.
pub(crate) fn map_member<'m>(m: &'m serde_json::Map<String, Value>, k: &str) -> Option<&'m Value> {
    if m.len() <= LINEAR_KEYS {
        m.iter().find(|(key, _)| key.as_str() == k).map(|(_, v)| v)
    } else {
        m.get(k)
    }
}

pub(super) fn walk_mut<'v>(v: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    path.iter().try_fold(v, |v, k| v.get_mut(k))
}
