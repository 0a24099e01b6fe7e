//! The control-character policy (docs/rule-format.md, "Text and control characters"). A control
//! character (U+0000–U+001F, U+007F–U+009F) cannot be carried the same way by every backend: a
//! Sigma string value holding one is flagged by `sigma check` (ControlCharacterIssue, high), KQL
//! engines disagree on `\u` escapes, and a line break ends a Splunk `.conf` line. So one rule for
//! all backends: a value a query compares with holds none (a regex says `\xHH` instead), and free
//! text holds none but tab and line breaks, which are folded wherever a target needs one line.

use super::Ctx;
use crate::diag::Code;
use crate::load::raw::S;

/// The first control character of `s` and its character index.
fn first_control(s: &str, allowed: &[char]) -> Option<(usize, char)> {
    s.chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !allowed.contains(c))
}

/// A value a query compares with (a string operator's value, a parameter value, a regex), `s`
/// written at `v`: refused when it holds any control character.
pub(super) fn value_ok<T>(cx: &mut Ctx, v: &S<T>, s: &str) -> bool {
    let Some((i, c)) = first_control(s, &[]) else {
        return true;
    };
    cx.err(
        v,
        Code::ControlCharacter,
        format!(
            "this value holds the control character U+{:04X} (character {})",
            c as u32,
            i + 1
        ),
        format!(
            "values hold no control characters (Sigma flags them, and audit values do not carry them); to match one, use `regex:` with `\\x{:02x}`",
            c as u32
        ),
    );
    false
}

/// Free text (title, description, author, false positives): tab, CR and LF are allowed and
/// folded where one line is needed; any other control character is refused.
pub(super) fn text_ok(cx: &mut Ctx, v: &S<String>) -> bool {
    let Some((i, c)) = first_control(&v.value, &['\t', '\n', '\r']) else {
        return true;
    };
    cx.err(
        v,
        Code::ControlCharacter,
        format!(
            "this text holds the control character U+{:04X} (character {})",
            c as u32,
            i + 1
        ),
        "remove it: free text may hold tabs and line breaks, no other control characters",
    );
    false
}

#[cfg(test)]
mod tests {
    use super::first_control;

    #[test]
    fn finds_c0_del_and_c1_but_not_separators() {
        assert_eq!(first_control("ab\u{1}", &[]), Some((2, '\u{1}')));
        assert_eq!(first_control("é\u{7f}", &[]), Some((1, '\u{7f}')));
        assert_eq!(first_control("\u{85}", &[]), Some((0, '\u{85}')));
        assert_eq!(first_control("a\u{2028}b", &[]), None);
        assert_eq!(first_control("a\tb\r\n", &['\t', '\n', '\r']), None);
    }
}
