//! Source files and positions. Spans are byte ranges into a file held by the `SourceMap`, so every
//! stage can point back at what the user wrote without carrying the text around.

use std::path::{Path, PathBuf};

/// Index of a file in the `SourceMap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub usize);

/// A byte range in one source file.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

/// Spans never take part in equality, so IR values compare by meaning only.
impl PartialEq for Span {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Span {}

#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn add(&mut self, path: &Path, text: String) -> FileId {
        self.files.push(SourceFile {
            path: path.to_path_buf(),
            text,
        });
        FileId(self.files.len() - 1)
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0]
    }

    /// Forgets a file's text from `len` on (a line start that nothing read later points at or
    /// after): `build` keeps only the rule part of each file, not its tests.
    pub fn truncate(&mut self, id: FileId, len: usize) {
        let text = &mut self.files[id.0].text;
        if text.is_char_boundary(len) {
            text.truncate(len);
            text.shrink_to_fit();
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, file: FileId, offset: usize) -> (usize, usize) {
        let text = &self.get(file).text;
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = text[line_start..offset].chars().count() + 1;
        (line, col)
    }

    /// Byte offset of a 1-based line and character column; clamps to the text.
    pub fn offset_of(&self, file: FileId, line: usize, col: usize) -> usize {
        let text = &self.get(file).text;
        let mut offset = 0;
        for (i, l) in text.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                let within: usize = l
                    .chars()
                    .take(col.saturating_sub(1))
                    .map(char::len_utf8)
                    .sum();
                return offset + within;
            }
            offset += l.len();
        }
        text.len()
    }

    /// A span as a byte range that starts and ends on character boundaries of its file and
    /// stays inside it: spans from the YAML reader or from a column may end inside a multibyte
    /// character, and slicing there panics.
    pub fn char_range(&self, span: Span) -> std::ops::Range<usize> {
        let text = &self.get(span.file).text;
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let mut end = span.end.max(start).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        start..end
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}
