//! `build` compiles a rule without reading its tests: the top-level `tests:` section is most of
//! a rule file's bytes. It is found by its key line and, when it comes last, cut off before
//! parsing; otherwise it is blanked: each of its lines becomes a comment of the same length (`#`
//! at column 0, then spaces), so every other value keeps its byte offset, line and column. Either
//! way every diagnostic outside the tests reads exactly as a full read would give it. Comments,
//! not spaces: lines of spaces after a block scalar (`description: |`) would be read as part of
//! its text.
//!
//! Finding the section must never guess: a line that begins with `tests:` may sit inside a
//! quoted scalar or a flow collection that an earlier line opened. So the whole file is followed
//! token by token, just far enough to know, at every line that begins at column 0, whether it
//! starts a top-level key: quoted scalars, flow brackets, comments and block scalars are tracked;
//! values are never built. Whatever this scan does not follow for certain (explicit keys,
//! directives, several documents, quoted top-level keys, a second `tests` key, a quote or bracket
//! still open at column 0, line breaks other than LF and CRLF; anchors and aliases unless the
//! tests come last) makes it give up, and the file is read whole: correctness first, speed where
//! it is certain.

use std::borrow::Cow;

/// The reader's budgets count the tests too: when rule keys follow the tests, a breach caused by
/// the tests could fall on them. So such files are read whole when they are larger than this, or
/// hold anchors or aliases (an anchor in the tests could also be used below them). Without
/// aliases a node takes at least one byte and an event two, so below this size neither the node
/// budget (100,000) nor the event budget (1,000,000) can be reached. When the tests come last,
/// any breach they cause falls inside them, where `check` reports it.
const MAX_SCANNED: usize = 96 * 1024;

/// The text with its top-level `tests:` section blanked; unchanged when it has none or when the
/// section cannot be located for certain.
pub fn blank(text: &str) -> Cow<'_, str> {
    match section(text) {
        Some(range) => blank_range(text, range),
        None => Cow::Borrowed(text),
    }
}

/// What `build` reads of a rule file, and where its tests start when they run to the end of the
/// file. Tests that come last are cut off rather than blanked: nothing after them needs its
/// offset kept, and the reader then never walks their bytes (most of a rule file's). Elsewhere
/// they are blanked; without a located section the text is unchanged.
pub fn rule_part(text: &str) -> (Cow<'_, str>, Option<usize>) {
    match section(text) {
        Some((start, end)) if end == text.len() => (Cow::Borrowed(&text[..start]), Some(start)),
        Some(range) => (blank_range(text, range), None),
        None => (Cow::Borrowed(text), None),
    }
}

/// The text with the lines in `start..end` (a range `section` gave) blanked.
pub fn blank_range(text: &str, (start, end): (usize, usize)) -> Cow<'_, str> {
    let mut bytes = text.as_bytes().to_vec();
    // Byte for byte, so a multi-byte character becomes as many bytes as it had.
    let mut line_start = true;
    for b in &mut bytes[start..end] {
        let was = *b;
        if was != b'\n' && was != b'\r' {
            *b = if line_start { b'#' } else { b' ' };
        }
        line_start = was == b'\n';
    }
    // Every byte of the section became ASCII, so the text stays UTF-8; were it not, the file
    // would be read whole.
    String::from_utf8(bytes).map_or(Cow::Borrowed(text), Cow::Owned)
}

/// Byte range of the top-level `tests` entry: from the start of its key's line to the start of
/// the next top-level key's line (or the end). `None` when there is none or when unsure.
pub fn section(text: &str) -> Option<(usize, usize)> {
    if !plain_line_breaks(text) {
        return None;
    }
    let mut scan = Scan::default();
    let mut seen_key = false;
    let (mut start, mut end) = (None, None);
    let mut offset = 0;
    // Where the quote or bracket open now was opened.
    let mut opened_at = 0;
    for raw in text.split_inclusive('\n') {
        let here = offset;
        offset += raw.len();
        if !scan.open() {
            opened_at = here;
        }
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let line = line.strip_suffix('\r').unwrap_or(line).as_bytes();
        if scan.in_block_scalar(line) {
            continue;
        }
        let first = line.first().copied();
        if scan.open() {
            // A quoted scalar or flow collection goes on: only indented lines are followed.
            if first.is_some_and(|c| c != b' ') {
                return None;
            }
            scan.line(line)?;
            continue;
        }
        match first {
            None | Some(b'#') => {}
            Some(b' ') => {
                let rest = trim_spaces(line);
                if rest.is_empty() || rest[0] == b'#' {
                    continue;
                }
                if !seen_key {
                    return None;
                }
                scan.line(line)?;
            }
            // A compact sequence at column 0: the value of the key above it.
            Some(b'-') if seen_key && line.get(1).is_none_or(|c| matches!(c, b' ' | b'\t')) => {
                scan.line(line)?;
            }
            Some(c) if c.is_ascii_alphanumeric() || c == b'_' => {
                let key = scan.line(line)?.filter(|k| k.start == 0)?;
                seen_key = true;
                if trim_end(&line[..key.colon]) == b"tests" {
                    if start.is_some() {
                        return None;
                    }
                    // Nothing below can be a top-level key: the tests run to the end, and
                    // their bytes (most of the file) need not be followed token by token.
                    if no_key_below(&text.as_bytes()[offset..]) {
                        return Some((here, text.len()));
                    }
                    start = Some(here);
                } else if start.is_some() && end.is_none() {
                    end = Some(here);
                }
            }
            _ => return None,
        }
    }
    let start = start?;
    match end {
        // Still open at the end: the reader's error is inside the tests when they opened it.
        None if scan.open() => (opened_at >= start).then_some((start, text.len())),
        None => Some((start, text.len())),
        Some(_) if scan.open() || scan.anchors || text.len() > MAX_SCANNED => None,
        Some(end) => Some((start, end)),
    }
}

/// Whether every line break is LF or CRLF, and no character that YAML 1.1 readers take for a
/// line break (NEL, LS, PS) occurs: then lines split at `\n` are the reader's lines.
fn plain_line_breaks(text: &str) -> bool {
    let b = text.as_bytes();
    memchr::memchr3_iter(b'\r', 0xC2, 0xE2, b).all(|i| match b[i] {
        b'\r' => b.get(i + 1) == Some(&b'\n'),
        0xC2 => b.get(i + 1) != Some(&0x85),
        _ => !matches!(b.get(i + 1..i + 3), Some([0x80, 0xA8 | 0xA9])),
    })
}

/// Whether no line of `rest` (which starts a line) begins at column 0 with anything but a
/// space, a comment or a compact sequence entry: then none of them starts a top-level key or a
/// document, whatever quote, bracket or block scalar is open above them.
fn no_key_below(rest: &[u8]) -> bool {
    let starts = std::iter::once(0).chain(memchr::memchr_iter(b'\n', rest).map(|i| i + 1));
    starts.into_iter().all(|i| match rest.get(i) {
        None | Some(b' ' | b'\n' | b'\r' | b'#') => true,
        Some(b'-') => matches!(rest.get(i + 1), None | Some(b' ' | b'\t' | b'\n' | b'\r')),
        Some(_) => false,
    })
}

fn trim_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|c| matches!(c, b' ' | b'\t')).count();
    &s[n..]
}

fn trim_end(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .rev()
        .take_while(|c| matches!(c, b' ' | b'\t'))
        .count();
    &s[..s.len() - n]
}

/// An implicit key found on a line in block context: its first byte and its `:` indicator.
#[derive(Clone, Copy, Debug)]
struct Key {
    start: usize,
    colon: usize,
}

/// What stays open from one line to the next.
#[derive(Default)]
struct Scan {
    /// Depth of open flow collections (`[`, `{`).
    flow: usize,
    /// The quote of a quoted scalar that goes on to the next line.
    quote: Option<u8>,
    /// A block scalar's content: the indentation of the collection it belongs to, and its
    /// content's indentation once its first non-empty line is seen.
    block: Option<(usize, Option<usize>)>,
    /// Whether an anchor or an alias was seen.
    anchors: bool,
}

/// Whether `c` ends a token as whitespace does (the line's end counts too).
fn is_blank(c: Option<&u8>) -> bool {
    c.is_none_or(|c| matches!(c, b' ' | b'\t'))
}

impl Scan {
    fn open(&self) -> bool {
        self.flow > 0 || self.quote.is_some()
    }

    /// The end of an anchor, alias or tag that starts at `from`: the next blank, or in flow
    /// context the next flow indicator.
    fn property_end(&self, line: &[u8], from: usize) -> usize {
        let stop = |c: &u8| {
            matches!(c, b' ' | b'\t')
                || (self.flow > 0 && matches!(c, b',' | b'[' | b']' | b'{' | b'}'))
        };
        line[from..]
            .iter()
            .position(stop)
            .map_or(line.len(), |n| from + n)
    }

    /// Whether `line` belongs to the open block scalar (ending it when it does not).
    fn in_block_scalar(&mut self, line: &[u8]) -> bool {
        let Some((parent, content)) = &mut self.block else {
            return false;
        };
        let indent = line.iter().take_while(|c| **c == b' ').count();
        if indent == line.len() {
            return true;
        }
        match content {
            None if indent > *parent => {
                *content = Some(indent);
                true
            }
            Some(c) if indent >= *c => true,
            _ => {
                self.block = None;
                false
            }
        }
    }

    /// Follows one line's tokens from the state the previous lines left. Returns the first
    /// implicit key of the line in block context, `None` inside for a line it cannot follow.
    fn line(&mut self, line: &[u8]) -> Option<Option<Key>> {
        let mut i = 0;
        // A quoted scalar closed on this line is a node like any other (see `json_like`).
        let resumed = self.quote.is_some();
        if let Some(q) = self.quote {
            match close_quote(line, 0, q) {
                Some(j) => {
                    self.quote = None;
                    i = j;
                }
                None => return Some(None),
            }
        }
        let mut first_key = None;
        // At the start of a node (where a quote or bracket opens something), or inside one.
        let mut node_start = i == 0;
        // Where the current node began, and whether it was quoted or a closed flow collection
        // (after which `:` is an indicator even without a space, in flow context).
        let mut node: Option<usize> = None;
        let mut json_like = resumed;
        // Indentation of the innermost block collection opened on this line.
        let mut parent: Option<usize> = None;
        let mut after_blank = true;
        while i < line.len() {
            // Inside a plain scalar in block context only `: ` and ` #` mean anything: jump.
            if !node_start && self.flow == 0 && !json_like {
                let Some(n) = memchr::memchr2(b':', b'#', &line[i..]) else {
                    break;
                };
                if n > 0 {
                    i += n;
                    after_blank = matches!(line[i - 1], b' ' | b'\t');
                }
            }
            let c = line[i];
            let next = line.get(i + 1);
            if matches!(c, b' ' | b'\t') {
                after_blank = true;
                i += 1;
                continue;
            }
            if c == b'#' && after_blank {
                break;
            }
            after_blank = false;
            if node_start {
                match c {
                    b'"' | b'\'' => {
                        node = Some(i);
                        json_like = true;
                        node_start = false;
                        match close_quote(line, i + 1, c) {
                            Some(j) => i = j,
                            None => {
                                self.quote = Some(c);
                                return Some(first_key);
                            }
                        }
                        continue;
                    }
                    b'[' | b'{' => self.flow += 1,
                    b']' | b'}' if self.flow > 0 => {
                        self.flow -= 1;
                        json_like = true;
                        node_start = false;
                    }
                    b',' if self.flow > 0 => {}
                    b'|' | b'>' if self.flow == 0 => {
                        if !block_header(&line[i + 1..]) {
                            return None;
                        }
                        self.block = Some((parent?, None));
                        return Some(first_key);
                    }
                    b'-' if self.flow == 0 && is_blank(next) => parent = Some(i),
                    // Node properties: the node follows.
                    b'&' | b'!' => {
                        self.anchors |= c == b'&';
                        i = self.property_end(line, i);
                        continue;
                    }
                    b'*' => {
                        self.anchors = true;
                        node = Some(i);
                        json_like = false;
                        node_start = false;
                        i = self.property_end(line, i);
                        continue;
                    }
                    b'#' | b'%' | b'@' | b'`' | b'?' | b':' | b'|' | b'>' | b']' | b'}' | b',' => {
                        return None;
                    }
                    _ => {
                        node = Some(i);
                        json_like = false;
                        node_start = false;
                    }
                }
                i += 1;
                continue;
            }
            match c {
                b':' if is_blank(next)
                    || (self.flow > 0
                        && (json_like || next.is_some_and(|n| b",[]{}".contains(n)))) =>
                {
                    if self.flow == 0 {
                        let start = node?;
                        parent = Some(start);
                        first_key.get_or_insert(Key { start, colon: i });
                    }
                    node_start = true;
                }
                // In block context a quoted key needs a space after its `:`.
                b':' if json_like && self.flow == 0 => return None,
                b',' if self.flow > 0 => node_start = true,
                b']' | b'}' if self.flow > 0 => {
                    self.flow -= 1;
                    json_like = true;
                }
                b'[' | b'{' if self.flow > 0 => return None,
                _ if json_like && self.flow == 0 => return None,
                _ => {}
            }
            i += 1;
        }
        Some(first_key)
    }
}

/// The index just past the quote that closes a scalar opened before `from`, if on this line.
fn close_quote(line: &[u8], from: usize, quote: u8) -> Option<usize> {
    let mut i = from;
    // Test events are mostly quoted text: jump from quote to quote (or escape).
    while let Some(n) = memchr::memchr2(quote, b'\\', line.get(i..)?) {
        i += n;
        match line[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && line.get(i + 1) == Some(&b'\'') => i += 2,
            c if c == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Whether the rest of a block scalar's header line is a chomping indicator at most, then a
/// comment at most. An indentation indicator is not followed: the scan gives up.
fn block_header(rest: &[u8]) -> bool {
    let rest = rest
        .strip_prefix(b"+")
        .or(rest.strip_prefix(b"-"))
        .unwrap_or(rest);
    let after = trim_spaces(rest);
    after.is_empty() || (after[0] == b'#' && after.len() < rest.len())
}

#[cfg(test)]
mod tests {
    use super::{blank, section};

    #[test]
    fn blanks_only_the_tests_section_and_keeps_offsets() {
        let text = "name: a\ntests:\n- name: t\n  event: {x: 1}\n# note\nstatus: stable\n";
        let out = blank(text);
        assert_eq!(out.len(), text.len());
        assert!(out.starts_with("name: a\n"));
        assert!(out.ends_with("\nstatus: stable\n"));
        assert!(!out.contains("tests") && !out.contains("event"));
        assert!(out.contains("\n#     \n#        \n"));
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
        assert!(out[5..].starts_with('#'));
        assert!(out[6..].chars().all(|c| c.is_whitespace() || c == '#'));
    }

    #[test]
    fn gives_up_where_a_line_at_column_0_may_not_start_a_key() {
        for text in [
            // Inside a quoted scalar and a flow collection opened above.
            "a: \"x\ntests: 1\"\n",
            "a: [x,\ntests: 1]\n",
            // A quoted scalar inside the tests that runs past column 0.
            "tests:\n- a: 'x\nb: y'\n",
            // An anchor in the tests used below them; explicit keys, several documents, a
            // second tests key.
            "tests: &t\n- 1\nb: *t\n",
            "? a\ntests: 1\n",
            "---\ntests: 1\n",
            "tests: 1\ntests: 2\n",
            "\"tests\": 1\n",
            // A lone CR is a line break to the reader.
            "a: 1\rtests: 2\n",
        ] {
            assert_eq!(section(text), None, "{text:?}");
        }
    }

    #[test]
    fn tests_that_come_last_may_hold_anchors_and_stay_open() {
        for text in [
            "a: !!str x\ntests: &t\n- 1\n- *t\n",
            "a: 1\ntests:\n- {b: [1, 2}\n",
            "a: 1\ntests:\n- 'x\n",
        ] {
            assert_eq!(
                section(text),
                Some((text.find("tests").unwrap(), text.len()))
            );
        }
        assert_eq!(section("a: [1,\ntests: 1\n"), None);
    }

    #[test]
    fn follows_block_scalars_quotes_and_flow_across_lines() {
        let text = "a: |\n  \"x\n  [y\nb: \"p\n  q\" # c\ntests:\n- {e: \"[\",\n  f: 1}\nc: 2\n";
        let s = text.find("tests").unwrap();
        let e = text.find("c: 2").unwrap();
        assert_eq!(section(text), Some((s, e)));
    }
}
