//! The filters and functions rulepack adds to tera: escaping (through `escape`, the only place
//! values are escaped), schedule texts, and the budgeted `range`.

use super::{budget, escape, schedule};
use tera::{Kwargs, State, Tera};

/// Registers them on `tera`.
pub(super) fn register(tera: &mut Tera) {
    // Charged to the artifact's budget, so nested loops cannot spin without end.
    tera.register_function("range", budget::range);
    tera.register_filter("kql_string", |s: &str, _: Kwargs, _: &State| {
        escape::kql_string(s)
    });
    tera.register_filter("spl_string", |s: &str, _: Kwargs, _: &State| {
        escape::spl_string(s)
    });
    tera.register_filter("yaml", |s: &str, _: Kwargs, _: &State| {
        escape::yaml_string(s)
    });
    tera.register_filter("sigma_value", |s: &str, _: Kwargs, _: &State| {
        escape::sigma_value(s)
    });
    tera.register_filter("json", |v: tera::Value, _: Kwargs, _: &State| {
        serde_json::to_string(&v).unwrap_or_default()
    });
    tera.register_filter("conf_text", |s: &str, _: Kwargs, _: &State| {
        escape::conf_text(s)
    });
    tera.register_filter("conf_value", |s: &str, _: Kwargs, _: &State| {
        escape::conf_value(s).map_err(tera::Error::message)
    });
    tera.register_filter("iso_duration", |m: i64, _: Kwargs, _: &State| {
        schedule::iso_duration(m)
    });
    tera.register_filter("cron", |m: i64, _: Kwargs, _: &State| schedule::cron(m));
    // A comment must stay on one line whatever the text holds.
    tera.register_filter("one_line", |s: &str, _: Kwargs, _: &State| {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    });
}
