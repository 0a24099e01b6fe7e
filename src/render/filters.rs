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
    // Tera hands a filter the undefined value a path that leads nowhere gives (`r.primray`), so
    // that `default` can replace it; written as JSON it would be `null`, a misspelling turned
    // into output. Only a defined value is written (a none, such as a rule's `agg`, is `null`).
    tera.register_filter(
        "json",
        |v: &tera::Value, _: Kwargs, _: &State| -> tera::TeraResult<String> {
            if v.is_undefined() {
                return Err(tera::Error::message(
                    "`json` was given an undefined value: a name misspelt, or one this \
                     template does not see",
                ));
            }
            Ok(serde_json::to_string(v).unwrap_or_default())
        },
    );
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
    // The text without the lines that begin with a prefix (the .kql's `//` header, which the
    // deployed query leaves out), in one pass rather than a split, filter and join per line.
    tera.register_filter(
        "drop_lines",
        |s: &str, kwargs: Kwargs, _: &State| -> tera::TeraResult<String> {
            let prefix: &str = kwargs.must_get("starting_with")?;
            Ok(drop_lines(s, prefix))
        },
    );
    // A comment must stay on one line whatever the text holds.
    tera.register_filter("one_line", |s: &str, _: Kwargs, _: &State| {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    });
}

/// `text` without its lines that begin with `prefix`; the others joined by `\n`, exactly as
/// `split(pat="\n")`, a filter and `join(sep="\n")` would give them.
fn drop_lines(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut first = true;
    for line in text.split('\n').filter(|l| !l.starts_with(prefix)) {
        if !first {
            out.push('\n');
        }
        first = false;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    /// Every text of up to five pieces: as the template's split, filter and join read it.
    #[test]
    fn drop_lines_is_split_filter_join() {
        let pieces = ["", "\n", "//", "// a", "x", " //", "\r\n", "é/"];
        let mut texts = vec![String::new()];
        for _ in 0..5 {
            texts = texts
                .iter()
                .flat_map(|t| pieces.iter().map(move |p| format!("{t}{p}")))
                .collect();
            for t in &texts {
                for prefix in ["//", "", "x"] {
                    let expected: Vec<&str> =
                        t.split('\n').filter(|l| !l.starts_with(prefix)).collect();
                    assert_eq!(super::drop_lines(t, prefix), expected.join("\n"), "{t:?}");
                }
            }
        }
    }
}
