//! Hit lines: one JSON line per firing.

use super::pack::PackRule;
use crate::eval::OutCol;
use crate::model::Severity;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

#[derive(Serialize)]
struct HitLine<'a> {
    rule_id: &'a str,
    rule: &'a str,
    severity: Severity,
    file: &'a str,
    record: u64,
    time: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<String>,
    entities: EntityObject<'a>,
}

/// The `entities` object of a hit or an alert line.
pub(crate) enum EntityObject<'p> {
    /// A rule's entity columns with the values read from a record (absent: null), written
    /// straight from them: a map built per hit, its keys copied and hashed, was a twentieth of
    /// replay's instructions, on the thread that writes the hits. The columns are unique
    /// (see [`crate::replay::pack::Pack::new`]).
    Columns(&'p [OutCol], Vec<Option<String>>),
    /// An aggregation's group-by values and count.
    Map(Map<String, Value>),
}

impl<'p> EntityObject<'p> {
    pub(crate) fn columns(pr: &'p PackRule, values: Vec<Option<String>>) -> Self {
        EntityObject::Columns(&pr.entities, values)
    }
}

impl Serialize for EntityObject<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            EntityObject::Columns(cols, values) => {
                let mut m = s.serialize_map(Some(cols.len().min(values.len())))?;
                for (c, v) in cols.iter().zip(values) {
                    m.serialize_entry(&c.column, v)?;
                }
                m.end()
            }
            EntityObject::Map(map) => map.serialize(s),
        }
    }
}

/// One hit as a JSON line in `line`; `at` is the record's (file, index).
pub(super) fn hit_line(
    line: &mut Vec<u8>,
    pr: &PackRule,
    at: (&str, u64),
    time: Option<&str>,
    window: Option<String>,
    entities: EntityObject,
) {
    let hit = HitLine {
        rule_id: &pr.rule.id.0,
        rule: &pr.rule.name.0,
        severity: pr.rule.severity,
        file: at.0,
        record: at.1,
        time,
        window,
        entities,
    };
    line.clear();
    // Serialising plain strings and numbers cannot fail.
    let _ = serde_json::to_writer(&mut *line, &hit);
    line.push(b'\n');
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch.
pub(crate) fn iso_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::parse_time;

    #[test]
    fn iso_times_round_trip() {
        for t in [0i64, 1_689_208_199, 951_782_400, -86_400] {
            assert_eq!(parse_time(&iso_time(t)), Some(t), "{}", iso_time(t));
        }
        assert_eq!(iso_time(1_689_206_400), "2023-07-13T00:00:00Z");
    }
}
