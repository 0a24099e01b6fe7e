//! `build` compiles a rule without reading its tests: the top-level `tests:` section is most of
//! a rule file's bytes. It is found by its key line and blanked (every byte but line ends becomes
//! a space) before parsing, so every other value keeps its byte offset, line and column, and every
//! diagnostic outside the tests reads exactly as a full read would give it.

use std::borrow::Cow;

/// The text with its top-level `tests:` section blanked, or unchanged when it has none.
///
/// The section starts at a line that begins with the key `tests` at column 0 and ends before the
/// next line that begins with another top-level key or a document marker. Indented lines, blank
/// lines, comments and `- ` entries at column 0 (YAML's compact sequences) belong to it.
pub fn blank(text: &str) -> Cow<'_, str> {
    let Some((start, end)) = section(text) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..start]);
    // Byte for byte, so a multi-byte character becomes as many spaces as it had bytes.
    out.extend(text.as_bytes()[start..end].iter().map(|&b| match b {
        b'\n' | b'\r' => b as char,
        _ => ' ',
    }));
    out.push_str(&text[end..]);
    Cow::Owned(out)
}

/// Byte range of the section, line starts included.
fn section(text: &str) -> Option<(usize, usize)> {
    let mut offset = 0;
    let mut start = None;
    for line in text.split_inclusive('\n') {
        match start {
            None if is_tests_key(line) => start = Some(offset),
            Some(s) if ends_section(line) => return Some((s, offset)),
            _ => {}
        }
        offset += line.len();
    }
    start.map(|s| (s, text.len()))
}

fn is_tests_key(line: &str) -> bool {
    let rest = line
        .strip_prefix("tests")
        .or_else(|| line.strip_prefix("\"tests\""))
        .or_else(|| line.strip_prefix("'tests'"));
    rest.and_then(|r| r.trim_start_matches([' ', '\t']).strip_prefix(':'))
        .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t', '\n', '\r']))
}

fn ends_section(line: &str) -> bool {
    match line.as_bytes().first() {
        None | Some(b' ' | b'\t' | b'\n' | b'\r' | b'#') => false,
        Some(b'-') => line.starts_with("---"),
        Some(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::blank;

    #[test]
    fn blanks_only_the_tests_section_and_keeps_offsets() {
        let text = "name: a\ntests:\n- name: t\n  event: {x: 1}\n# note\nstatus: stable\n";
        let out = blank(text);
        assert_eq!(out.len(), text.len());
        assert!(out.starts_with("name: a\n"));
        assert!(out.ends_with("\nstatus: stable\n"));
        assert!(!out.contains("tests") && !out.contains("event"));
        assert_eq!(out.matches('\n').count(), text.matches('\n').count());
    }

    #[test]
    fn keeps_text_without_a_top_level_tests_key() {
        for text in [
            "name: a\n",
            "x:\n  tests: 1\n",
            "testsuite: 1\n",
            "tests_x: 1\n",
        ] {
            assert_eq!(blank(text), text);
        }
    }

    #[test]
    fn blanks_to_the_end_and_keeps_multibyte_lengths() {
        let text = "a: 1\ntests: # é\n  - x: \"ü\"\n";
        let out = blank(text);
        assert_eq!(out.len(), text.len());
        assert!(out.starts_with("a: 1\n"));
        assert!(out[5..].chars().all(char::is_whitespace));
    }
}
