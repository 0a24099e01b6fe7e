//! Escaping, one function per backend context. Every rule value reaches a query only through
//! these, so a quote, backslash, pipe or newline in a value cannot change what a query does.

use std::fmt::Write;

/// A KQL string expression: a double-quoted literal. KQL documents only the `\t`, `\n`, `\"`
/// and `\\` escapes (engines differ on `\u`), so any other control character is spliced in as
/// decoded JSON, `tostring(parse_json("\"\\u0001\""))`, joined with `strcat`.
pub fn kql_string(s: &str) -> String {
    let special = |c: char| unicode_escaped(c) && !matches!(c, '\n' | '\r' | '\t');
    if !s.chars().any(special) {
        return double_quoted(s);
    }
    let mut parts = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        if special(c) {
            if !cur.is_empty() {
                parts.push(double_quoted(&std::mem::take(&mut cur)));
            }
            parts.push(format!(
                "tostring(parse_json(\"\\\"\\\\u{:04x}\\\"\"))",
                c as u32
            ));
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        parts.push(double_quoted(&cur));
    }
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        format!("strcat({})", parts.join(", "))
    }
}

/// Characters written as `\uXXXX` (or spliced, in KQL): control characters, and the Unicode
/// line and paragraph separators, which YAML 1.1 readers (PyYAML, so pySigma) fold into spaces.
fn unicode_escaped(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// `"…"` with backslash escapes for the quote, the backslash, `\n`, `\r`, `\t` and `\uXXXX` for
/// the other `unicode_escaped` characters: the common ground of KQL literals and YAML.
fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unicode_escaped(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An SPL eval string expression. Control characters cannot appear inside an SPL literal safely
/// (a newline would also break a .conf continuation), so they are spliced in with `urldecode`.
pub fn spl_string(s: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        if c.is_control() {
            if !cur.is_empty() {
                parts.push(format!("\"{cur}\""));
                cur.clear();
            }
            let mut buf = [0u8; 4];
            let hex: String = c
                .encode_utf8(&mut buf)
                .bytes()
                .map(|b| format!("%{b:02X}"))
                .collect();
            parts.push(format!("urldecode(\"{hex}\")"));
        } else {
            match c {
                '"' => cur.push_str("\\\""),
                '\\' => cur.push_str("\\\\"),
                c => cur.push(c),
            }
        }
    }
    if !cur.is_empty() || parts.is_empty() {
        parts.push(format!("\"{cur}\""));
    }
    parts.join(".")
}

/// A value as an SPL search-term literal, or `None` when a search term cannot say it exactly
/// (the test then stays in `where`). Search terms have no escape for `*` (always a wildcard);
/// quotes and backslashes are matched against the event's JSON text, where they are themselves
/// escaped; a backtick starts a macro even inside quotes; search compares values
/// case-insensitively for ASCII only, unlike eval's `lower()`; and an empty or space-padded value
/// is not a term. What is left (printable ASCII) is safe between double quotes.
pub fn spl_search_value(s: &str) -> Option<String> {
    let plain =
        |c: char| (c.is_ascii_graphic() || c == ' ') && !matches!(c, '"' | '\\' | '*' | '`');
    (!s.is_empty() && s.trim() == s && s.chars().all(plain)).then(|| format!("\"{s}\""))
}

/// Escapes regex metacharacters so the text matches itself (PCRE, RE2 and Python alike);
/// control characters become `\xHH` so the pattern stays printable.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$' => {
                out.push('\\');
                out.push(c);
            }
            // Two-digit `\xHH` (all control characters are below U+0100) is read the same by
            // RE2, PCRE and Python's re, unlike `\x{…}`.
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A Sigma string value: `*`, `?` and `\` are escaped so the value matches literally.
pub fn sigma_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A YAML scalar for a string: single-quoted when printable, double-quoted with escapes when it
/// holds control characters (single quotes would fold a newline into a space).
pub fn yaml_string(s: &str) -> String {
    if s.chars().any(unicode_escaped) {
        double_quoted(s)
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// Free text as a one-line .conf value (titles, descriptions, labels): every run of whitespace
/// and control characters (line breaks of every kind included) becomes one space, and a final
/// backslash, which Splunk would read as "the value continues on the next line", is followed by
/// ` .`. Trailing spaces would not help: Splunk and ksconf trim them before looking.
pub fn conf_text(s: &str) -> String {
    let t = s
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if t.ends_with('\\') { t + " ." } else { t }
}

/// A .conf setting value over several lines: each line but the last ends with ` \` (Splunk's
/// continuation). A line that itself ends in a backslash would swallow the line break (and
/// trailing whitespace is not kept), so such a value is refused rather than silently joined.
pub fn conf_value(s: &str) -> Result<String, String> {
    let lines: Vec<&str> = s.trim_end_matches('\n').lines().collect();
    if let Some(l) = lines.iter().find(|l| l.trim_end().ends_with('\\')) {
        return Err(format!(
            "a .conf value line ends with a backslash and would join the next line: {l}"
        ));
    }
    Ok(lines.join(" \\\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kql_escapes_quotes_backslashes_and_controls() {
        assert_eq!(kql_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(
            kql_string("x\ny\u{1}"),
            "strcat(\"x\\ny\", tostring(parse_json(\"\\\"\\\\u0001\\\"\")))"
        );
        assert_eq!(kql_string("#EXT#|*"), "\"#EXT#|*\"");
    }

    #[test]
    fn spl_splices_control_characters() {
        assert_eq!(spl_string("plain"), "\"plain\"");
        assert_eq!(spl_string(r#"q"b\"#), r#""q\"b\\""#);
        assert_eq!(spl_string("a\nb"), "\"a\".urldecode(\"%0A\").\"b\"");
        assert_eq!(spl_string("\n"), "urldecode(\"%0A\")");
        assert_eq!(spl_string(""), "\"\"");
    }

    #[test]
    fn spl_search_values_are_plain_or_refused() {
        assert_eq!(
            spl_search_value("Invite external user").as_deref(),
            Some("\"Invite external user\"")
        );
        assert_eq!(
            spl_search_value("a=b|c[d]").as_deref(),
            Some("\"a=b|c[d]\"")
        );
        for refused in ["", " x", "x ", "a*b", "a\"b", "a\\b", "`m`", "a\nb", "é"] {
            assert_eq!(spl_search_value(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn regex_escape_matches_literally() {
        let hostile = "a.b*c?(d)[e]{f}|g^h$i\\j#EXT#\nk";
        let re = regex::Regex::new(&format!("^{}$", regex_escape(hostile))).unwrap();
        assert!(re.is_match(hostile));
        assert!(!re.is_match("aXb*c?(d)[e]{f}|g^h$i\\j#EXT#\nk"));
    }

    #[test]
    fn conf_text_is_one_line_without_a_final_backslash() {
        assert_eq!(conf_text("  a\r\nb\u{2028}c\u{1}d  "), "a b c d");
        assert_eq!(conf_text("x \\ "), "x \\ .");
        assert_eq!(conf_text("x\\\\\n"), "x\\\\ .");
        assert_eq!(conf_text("x\\\nk = v"), "x\\ k = v");
    }

    #[test]
    fn conf_continuation_keeps_every_line() {
        assert_eq!(conf_value("a\n| b\n").unwrap(), "a \\\n| b");
        assert!(conf_value("x\\\ny").is_err());
        assert_eq!(conf_value("one").unwrap(), "one");
    }

    #[test]
    fn yaml_quoting() {
        assert_eq!(yaml_string("it's"), "'it''s'");
        assert_eq!(yaml_string("a\nb"), "\"a\\nb\"");
        assert_eq!(sigma_value(r"a*b?c\d"), r"a\*b\?c\\d");
    }
}
