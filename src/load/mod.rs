//! Stage 1, load: rule files → `RawRule`s with positions. Knows YAML, not SIEMs.

pub mod files;
pub mod raw;
pub mod tests_section;
pub mod yaml;

use crate::diag::{Code, Diagnostic};
use crate::source::{FileId, SourceMap};
use raw::RawRule;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Rule files under `dir`, recursively, in a stable order. Links that leave the folder, link
/// loops and special files are refused, one diagnostic each.
pub fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, Vec<Diagnostic>> {
    let yaml = |p: &Path| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml"));
    let (files, problems) = files::walk(dir, &yaml).map_err(|e| {
        vec![
            Diagnostic::error(Code::Io, format!("cannot read folder: {e}"))
                .in_file(dir)
                .help("pass an existing folder with --rules"),
        ]
    })?;
    if problems.is_empty() {
        return Ok(files);
    }
    Err(problems
        .into_iter()
        .map(|p| {
            Diagnostic::error(Code::Io, p.what)
                .in_file(p.path)
                .help(p.help)
        })
        .collect())
}

/// Reads a file into the source map, refusing special, non-UTF-8 and oversized files.
pub fn read_source(path: &Path, sources: &mut SourceMap) -> Result<FileId, Diagnostic> {
    read_text(path).map(|text| sources.add(path, text))
}

/// A file's text, without a leading BOM; refuses special, non-UTF-8 and oversized files.
fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let bytes = files::read_bounded(path, yaml::MAX_FILE_BYTES as u64).map_err(|e| {
        let d = |code| Diagnostic::error(code, e.to_string()).in_file(path);
        match e {
            // R010, as when the size was checked after reading: codes never change meaning.
            files::ReadError::TooLarge(_) => d(Code::YamlSyntax)
                .at_line(1, 1)
                .help("a rule is a page of YAML: split it into one rule per file"),
            files::ReadError::NotRegular(_) => d(Code::Io).help("replace it with a regular file"),
            files::ReadError::Io(_) => d(Code::Io),
        }
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..offset];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        Diagnostic::error(
            Code::NotUtf8,
            format!("file is not valid UTF-8 (byte {offset})"),
        )
        .in_file(path)
        .at_line(line, column)
        .help("save the file as UTF-8")
    })?;
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_string)
        .unwrap_or(text))
}

/// Reads every file into the source map (on every core: on a disk, reads wait); one diagnostic
/// per file that cannot be read.
pub fn read_sources(paths: &[PathBuf], sources: &mut SourceMap) -> (Vec<FileId>, Vec<Diagnostic>) {
    use rayon::prelude::*;
    let texts: Vec<Result<String, Diagnostic>> =
        crate::parallel(|| paths.par_iter().map(|p| read_text(p)).collect());
    let mut files = Vec::new();
    let mut diags = Vec::new();
    for (path, text) in paths.iter().zip(texts) {
        match text {
            Ok(text) => files.push(sources.add(path, text)),
            Err(d) => diags.push(d),
        }
    }
    (files, diags)
}

/// Parses each file as a rule and hands the result to `then`, on every core; results keep the
/// files' order. Parsing dominates loading and files are independent. With `omit_tests` the
/// top-level `tests:` section is not parsed at all (`tests_section::rule_part`), and each result
/// comes with where that section starts when it runs to the end of the file: all after it is
/// tests.
pub fn parse_each<E, T>(
    sources: &SourceMap,
    files: &[FileId],
    omit_tests: bool,
    then: impl Fn(FileId, Result<RawRule<E>, Diagnostic>) -> T + Sync + Send,
) -> Vec<(T, Option<usize>)>
where
    E: DeserializeOwned + Send,
    T: Send,
{
    use rayon::prelude::*;
    crate::parallel(|| {
        files
            .par_iter()
            .map(|&file| {
                let text = &sources.get(file).text;
                let (read, last) = match omit_tests {
                    true => tests_section::rule_part(text),
                    false => (std::borrow::Cow::Borrowed(text.as_str()), None),
                };
                let raw = yaml::parse_text::<RawRule<E>>(&read, sources, file);
                (then(file, raw), last)
            })
            .collect()
    })
}
