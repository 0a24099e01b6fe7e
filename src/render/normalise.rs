//! The normal form of every artifact: LF line ends, no white space at the end of a line, exactly
//! one final newline; stable bytes for reviewers. Applied as the template writes, line by line,
//! so a pack artifact of tens of megabytes streams to its file and is never held whole. (A CR
//! before a line break is trailing white space, so trimming each line also turns CRLF into LF.)

use std::io::{self, Write};

/// A line that grows past this is written up to its last non-white character before its end
/// arrives, so one very long line is not held whole either.
const LONG_LINE: usize = 64 << 10;

pub struct Normalise<W: Write> {
    inner: W,
    /// The current line's bytes not yet written: when it grew past `LONG_LINE`, only its
    /// trailing white space and an unfinished character.
    line: Vec<u8>,
    /// Line breaks owed: they are written only when text follows, so blank lines at the end
    /// vanish and `finish` writes exactly one.
    breaks: usize,
    /// The held line's length at which the certain part is written next: white space that is
    /// held grows it, so a long run of it is not scanned again for every write.
    check_at: usize,
}

impl<W: Write> Normalise<W> {
    pub fn new(inner: W) -> Normalise<W> {
        Normalise {
            inner,
            line: Vec::new(),
            breaks: 0,
            check_at: LONG_LINE,
        }
    }

    /// Writes the last line and the final newline, and hands back the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let line = std::mem::take(&mut self.line);
        self.end_line(&line)?;
        self.inner.write_all(b"\n")?;
        Ok(self.inner)
    }

    /// Text, after the line breaks it owes.
    fn text(&mut self, text: &[u8]) -> io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        for _ in 0..self.breaks {
            self.inner.write_all(b"\n")?;
        }
        self.breaks = 0;
        self.inner.write_all(text)
    }

    /// The rest of a line, up to (not including) its break: trimmed, and written if any is left.
    fn end_line(&mut self, rest: &[u8]) -> io::Result<()> {
        // Lines of UTF-8 text split at `\n` are UTF-8 (a multi-byte character holds no `\n`), so
        // a lossy reading of each line equals that of the whole text.
        // Checking is much cheaper than the lossy reading, and templates write UTF-8.
        match std::str::from_utf8(rest) {
            Ok(text) => self.text(text.trim_end().as_bytes()),
            Err(_) => self.text(String::from_utf8_lossy(rest).trim_end().as_bytes()),
        }
    }

    /// Writes the held part of a long line that is certain: up to its last non-white character.
    /// The white space after it and an unfinished character stay held.
    fn write_certain(&mut self) -> io::Result<()> {
        let line = std::mem::take(&mut self.line);
        let split = line.len() - unfinished_char(&line);
        let head = String::from_utf8_lossy(&line[..split]);
        let kept = head.trim_end().len();
        let result = self.text(&head.as_bytes()[..kept]);
        self.line = head.as_bytes()[kept..].to_vec();
        self.line.extend_from_slice(&line[split..]);
        self.check_at = self.line.len() + LONG_LINE;
        result
    }
}

/// How many bytes at the end of `bytes` begin a character that is not finished yet.
fn unfinished_char(bytes: &[u8]) -> usize {
    // A character is at most four bytes: its first byte is at most three back from the end.
    for back in 1..=bytes.len().min(4) {
        let b = bytes[bytes.len() - back];
        if b & 0xC0 != 0x80 {
            let len = match b {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
            return if len > back { back } else { 0 };
        }
    }
    0
}

impl<W: Write> Write for Normalise<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            if self.line.is_empty() {
                self.end_line(&rest[..i])?;
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&rest[..i]);
                let result = self.end_line(&line);
                line.clear();
                self.line = line;
                result?;
            }
            self.breaks += 1;
            self.check_at = LONG_LINE;
            rest = &rest[i + 1..];
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > self.check_at {
            self.write_certain()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    /// The plain reading of the rule: CRLF to LF, each line trimmed, one final newline.
    fn reference(text: &str) -> String {
        let mut out: String = text
            .replace("\r\n", "\n")
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n");
        while out.ends_with('\n') {
            out.pop();
        }
        out.push('\n');
        out
    }

    /// `text` written in pieces of `step` bytes (splitting characters too), normalised.
    fn streamed(text: &str, step: usize) -> String {
        let mut n = super::Normalise::new(Vec::new());
        for piece in text.as_bytes().chunks(step) {
            n.write_all(piece).unwrap();
        }
        String::from_utf8(n.finish().unwrap()).unwrap()
    }

    #[test]
    fn normalised_as_the_rule_says_however_the_text_arrives() {
        let pieces = [
            "a", " ", "\t", "\r", "\n", "\r\n", "\u{a0}", "\u{3000}", "é", "漢", "\u{85}", "x y",
        ];
        // Every sequence of up to four pieces, plus a few longer texts.
        let mut texts = vec![String::new(), "a  \r\n\r\n b\t\n\n\n".to_string()];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    for d in pieces {
                        texts.push(format!("{a}{b}{c}{d}"));
                    }
                }
            }
        }
        for t in texts {
            for step in [1, 2, 3, 1000] {
                assert_eq!(
                    streamed(&t, step),
                    reference(&t),
                    "{t:?} in steps of {step}"
                );
            }
        }
    }

    /// Lines longer than the held part: text, white space and multi-byte characters across the
    /// point where the line is written early.
    #[test]
    fn long_lines_are_normalised_alike() {
        let long = super::LONG_LINE;
        let texts = [
            format!("{}\u{3000} \n{}  ", "x".repeat(long + 5), "漢".repeat(long)),
            format!("{}{}y \r\n\n", "a".repeat(long - 1), " ".repeat(long + 3)),
            format!("{} \u{a0}\n", "é".repeat(long)),
            " ".repeat(3 * long),
        ];
        for t in texts {
            for step in [1, 7, 4096, long + 1] {
                assert!(streamed(&t, step) == reference(&t), "step {step}");
            }
        }
    }

    /// Bytes that are not UTF-8 (templates write text, but the writer takes bytes) read as a
    /// lossy reading of the whole text does, also where a line is written early.
    #[test]
    fn invalid_bytes_read_as_a_lossy_reading() {
        let long = super::LONG_LINE;
        let mut texts: Vec<Vec<u8>> =
            vec![b"a\xff \n\xe6\xbc \n".to_vec(), b"\xf0\x9f\n\xc3".to_vec()];
        let mut big = vec![b'x'; long];
        big.extend_from_slice(b"\xff\xe6\xbc\xa2 \xe6");
        big.extend(vec![b'y'; long]);
        texts.push(big);
        for t in texts {
            let expected = reference(&String::from_utf8_lossy(&t));
            for step in [1, 2, 5, long + 2] {
                let mut n = super::Normalise::new(Vec::new());
                for piece in t.chunks(step) {
                    n.write_all(piece).unwrap();
                }
                assert!(n.finish().unwrap() == expected.as_bytes(), "step {step}");
            }
        }
    }
}
