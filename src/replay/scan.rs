//! The byte scanner that cuts a stream into JSON values without parsing them.

use super::{MAX_RECORD, SkipReason};
use std::ops::Range;

pub(super) struct Unit {
    pub(super) range: Range<usize>,
    /// 1-based line where the record starts.
    pub(super) line: u64,
    /// 0-based element index, for elements of a top-level array.
    pub(super) element: Option<u64>,
    /// Set when the reader already knows the record is skipped.
    pub(super) skip: Option<(SkipReason, String)>,
    /// A whole line that may hold several values.
    pub(super) multi: bool,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

pub(super) fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_ws(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_ws(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Where a top-level array stands between two elements.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Between {
    /// Just after `[`.
    #[default]
    First,
    /// Just after a `,`.
    Comma,
}

/// Cuts a byte stream into JSON values without parsing them: tracks strings and nesting only.
/// A top-level array is entered and each of its elements is one value; anything else at the top
/// level (objects, strings, bare words) is one value. A `{` or `[` at the start of a line while a
/// value is still open, or a newline inside a string, means that value was cut short (a truncated
/// line): it is closed there, so one broken record never swallows the next.
pub(super) struct Scan {
    in_array: bool,
    /// Brackets open, the top-level array's included.
    depth: u32,
    in_str: bool,
    /// The previous block ended on a backslash inside a string.
    esc: bool,
    /// Inside a bare top-level token (number, literal, garbage): ends at white space.
    bare: bool,
    /// A value (or array element) is open.
    open: bool,
    between: Between,
    /// Bytes of the open value from earlier blocks.
    cur: Vec<u8>,
    /// The open value grew past MAX_RECORD: its bytes are dropped.
    discarding: bool,
    newlines: u64,
    /// The previous byte was a newline (or the stream just started).
    bol: bool,
    start_line: u64,
    elements: u64,
    /// The open value is a whole line taken by the JSON Lines shortcut.
    line_value: bool,
}

impl Default for Scan {
    fn default() -> Self {
        Scan {
            in_array: false,
            depth: 0,
            in_str: false,
            esc: false,
            bare: false,
            open: false,
            between: Between::First,
            cur: Vec::new(),
            discarding: false,
            newlines: 0,
            bol: true,
            start_line: 1,
            elements: 0,
            line_value: false,
        }
    }
}

impl Scan {
    pub(super) fn scan(&mut self, block: &[u8], batch: &mut Vec<u8>, units: &mut Vec<Unit>) {
        let n = block.len();
        let mut seg = 0;
        let mut i = 0;
        if self.esc && n > 0 {
            self.esc = false;
            if block[0] == b'\n' {
                // An escaped newline is no JSON escape: the value was cut short there.
                self.emit(&[], batch, units);
                self.reset_after_cut();
            } else {
                i = 1;
            }
        }
        while i < n {
            let b = block[i];
            if self.in_str {
                let Some(k) = memchr::memchr3(b'"', b'\\', b'\n', &block[i..]) else {
                    break;
                };
                i += k;
                match block[i] {
                    b'"' => {
                        self.in_str = false;
                        i += 1;
                        if self.open && !self.in_array && self.depth == 0 {
                            self.emit(&block[seg..i], batch, units);
                        }
                    }
                    b'\\' if i + 1 < n && block[i + 1] != b'\n' => i += 2,
                    b'\\' if i + 1 < n => {
                        // An escaped newline is no JSON escape: cut as at a raw newline.
                        self.emit(&block[seg..=i], batch, units);
                        self.reset_after_cut();
                        i += 1;
                    }
                    b'\\' => {
                        self.esc = true;
                        i = n;
                    }
                    _ => {
                        // A JSON string never holds a raw newline: the value was cut short, and
                        // the next line is read afresh (JSON Lines resynchronise at a newline).
                        self.emit(&block[seg..i], batch, units);
                        self.reset_after_cut();
                    }
                }
                continue;
            }
            let bol = std::mem::replace(&mut self.bol, false);
            if is_ws(b) {
                if b == b'\n' {
                    self.newlines += 1;
                    self.bol = true;
                }
                if self.bare {
                    self.emit(&block[seg..i], batch, units);
                }
                i += 1;
                continue;
            }
            if self.bare {
                i += 1;
                continue;
            }
            if bol && b == b'{' && !self.open && !self.in_array {
                // JSON Lines shortcut: a line that starts with `{` and ends with `}` is taken as
                // one record without tracking its strings and brackets (the parse checks it, and
                // several values on the line are each a record). Pretty-printed values never end
                // their first line with `}`, so they take the general path.
                if let Some(k) = memchr::memchr(b'\n', &block[i..]) {
                    let line = &block[i..i + k];
                    if trim(line).ends_with(b"}") {
                        self.open = true;
                        self.line_value = true;
                        self.start_line = self.newlines + 1;
                        self.emit(line, batch, units);
                        i += k;
                        continue;
                    }
                }
            }
            let base = u32::from(self.in_array);
            // Pretty-printers indent what is inside a value, so a line that starts with `{` or `[`
            // while one is open starts a new record: the open one was cut short. In a top-level
            // array, a `[` there, or a `{` after a whole element with no comma, means the array
            // itself was cut short (a truncated JSON Lines array): the reader leaves it.
            if bol && matches!(b, b'{' | b'[') && self.open && (self.depth > base || self.in_array)
            {
                let array_cut = self.in_array && (b == b'[' || self.depth == base);
                self.emit(&block[seg..i], batch, units);
                self.reset_after_cut();
                if array_cut {
                    self.in_array = false;
                    self.depth = 0;
                }
            }
            if !self.open {
                if self.in_array {
                    match b {
                        b',' => {
                            self.empty_element(units);
                            self.between = Between::Comma;
                            i += 1;
                            continue;
                        }
                        b']' => {
                            if self.between == Between::Comma {
                                self.empty_element(units);
                            }
                            self.in_array = false;
                            self.depth = 0;
                            i += 1;
                            continue;
                        }
                        _ => {}
                    }
                } else if b == b'[' {
                    self.in_array = true;
                    self.depth = 1;
                    self.between = Between::First;
                    i += 1;
                    continue;
                }
                self.open = true;
                self.start_line = self.newlines + 1;
                seg = i;
                if !self.in_array && b != b'{' && b != b'"' {
                    self.bare = true;
                    i += 1;
                    continue;
                }
            }
            match b {
                b'"' => self.in_str = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' | b',' if self.in_array && self.depth == 1 => {
                    self.emit(&block[seg..i], batch, units);
                    if b == b',' {
                        self.between = Between::Comma;
                    } else {
                        self.in_array = false;
                        self.depth = 0;
                    }
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if !self.in_array && self.depth == 0 {
                        self.emit(&block[seg..=i], batch, units);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        if self.open && !self.discarding {
            self.cur.extend_from_slice(&block[seg.min(n)..]);
            if self.cur.len() > MAX_RECORD {
                self.discarding = true;
                self.cur = Vec::new();
            }
        }
    }

    /// After a value was cut short by a `{` at the start of a line.
    fn reset_after_cut(&mut self) {
        self.in_str = false;
        self.depth = u32::from(self.in_array);
    }

    fn empty_element(&mut self, units: &mut Vec<Unit>) {
        units.push(Unit {
            range: 0..0,
            line: self.newlines + 1,
            element: Some(self.elements),
            skip: Some((
                SkipReason::Malformed,
                "empty array element (extra comma)".into(),
            )),
            multi: false,
        });
        self.elements += 1;
    }

    /// Closes the open value, whose bytes are `cur` followed by `tail`.
    fn emit(&mut self, tail: &[u8], batch: &mut Vec<u8>, units: &mut Vec<Unit>) {
        let element = self.in_array.then_some(self.elements);
        if self.in_array {
            self.elements += 1;
        }
        let line = self.start_line;
        self.open = false;
        self.bare = false;
        if std::mem::take(&mut self.discarding) {
            self.line_value = false;
            self.cur.clear();
            units.push(Unit {
                range: 0..0,
                line,
                element,
                skip: Some((
                    SkipReason::TooLarge,
                    format!("a record larger than {} MiB", MAX_RECORD >> 20),
                )),
                multi: false,
            });
            return;
        }
        let start = batch.len();
        batch.extend_from_slice(&self.cur);
        batch.extend_from_slice(tail);
        self.cur.clear();
        units.push(Unit {
            range: start..batch.len(),
            line,
            element,
            skip: None,
            multi: std::mem::take(&mut self.line_value),
        });
    }

    /// End of input: a value still open is handed on as it is (its parse reports the
    /// truncation).
    pub(super) fn finish(&mut self, batch: &mut Vec<u8>, units: &mut Vec<Unit>) {
        if self.open {
            self.emit(&[], batch, units);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (text, line, element, skipped) of every value, scanning in blocks of `block` bytes.
    fn scan(input: &str, block: usize) -> Vec<(String, u64, Option<u64>, bool)> {
        let mut s = Scan::default();
        let mut batch = Vec::new();
        let mut units = Vec::new();
        for chunk in input.as_bytes().chunks(block) {
            s.scan(chunk, &mut batch, &mut units);
        }
        s.finish(&mut batch, &mut units);
        units
            .iter()
            .map(|u| {
                (
                    String::from_utf8_lossy(trim(&batch[u.range.clone()])).into_owned(),
                    u.line,
                    u.element,
                    u.skip.is_some(),
                )
            })
            .collect()
    }

    fn texts(input: &str, block: usize) -> Vec<String> {
        scan(input, block).into_iter().map(|u| u.0).collect()
    }

    #[test]
    fn scanner_splits_arrays_across_blocks() {
        let input = "[\n {\"a\": \"x,]}\\\"\"},\n [1, {\"b\": [2]}],\n 3\n]\n[{\"c\":1}]";
        for block in [1, 2, 3, 7, 1000] {
            assert_eq!(
                scan(input, block),
                vec![
                    ("{\"a\": \"x,]}\\\"\"}".to_string(), 2, Some(0), false),
                    ("[1, {\"b\": [2]}]".to_string(), 3, Some(1), false),
                    ("3".to_string(), 4, Some(2), false),
                    ("{\"c\":1}".to_string(), 6, Some(3), false),
                ],
                "block size {block}"
            );
        }
    }

    #[test]
    fn scanner_splits_lines_and_pretty_printed_values() {
        let input = "{\"a\":1}\n\n{\"b\":\n  {\"c\": \"}\"}\n}{\"d\":2} 42 \"s\" nul\n";
        for block in [1, 4, 1000] {
            assert_eq!(
                texts(input, block),
                vec![
                    "{\"a\":1}",
                    "{\"b\":\n  {\"c\": \"}\"}\n}",
                    "{\"d\":2}",
                    "42",
                    "\"s\"",
                    "nul"
                ],
                "block size {block}"
            );
        }
        let lines: Vec<u64> = scan(input, 3).iter().map(|u| u.1).collect();
        assert_eq!(lines, vec![1, 3, 5, 5, 5, 5]);
    }

    #[test]
    fn scanner_resyncs_after_a_truncated_line() {
        for block in [1, 5, 1000] {
            assert_eq!(
                texts("{\"a\": [1,\n{\"b\": \"unterminated\n{\"c\": 3}\n", block),
                vec!["{\"a\": [1,", "{\"b\": \"unterminated", "{\"c\": 3}"],
                "block size {block}"
            );
            assert_eq!(
                texts("[\n{\"a\": 1\n{\"b\": 2},\n{\"c\": 3}\n]", block),
                vec!["{\"a\": 1", "{\"b\": 2}", "{\"c\": 3}"]
            );
        }
    }

    #[test]
    fn scanner_reports_empty_elements_and_truncation() {
        let got = scan("[1,,2,] x [{\"a\":", 4);
        let skips: Vec<bool> = got.iter().map(|g| g.3).collect();
        assert_eq!(skips, vec![false, true, false, true, false, false]);
        assert_eq!(got[4].0, "x");
        assert_eq!(got[5].0, "{\"a\":");
        assert!(scan("[]", 1).is_empty());
        assert!(scan(" [ ] \n", 1).is_empty());
    }
}
