//! Diagnostics: every problem found in any stage, with a stable code, a position and a hint.
//! Rendering happens once, at the CLI edge.

use crate::source::{SourceMap, Span};
use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// Stable diagnostic codes. The number never changes meaning; new problems get new numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    Io,
    NotUtf8,
    YamlSyntax,
    DuplicateKey,
    UnknownKey,
    WrongType,
    MissingField,
    InvalidId,
    InvalidName,
    DuplicateId,
    DuplicateName,
    UnknownField,
    BadPredicate,
    InvalidRegex,
    ControlCharacter,
    EmptyCondition,
    NotAnArray,
    BadJsonPath,
    BadAttackId,
    BadTrrId,
    BadAtrmId,
    BadDuration,
    BadThreshold,
    BadOutput,
    BadEntity,
    BadTest,
    BadCorrelation,
    BadMetadata,
    Template,
    Taxonomy,
    Approximation,
    Omitted,
    SlowRegex,
    Deprecated,
    StaleExpectation,
    Manifest,
    Unlocked,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Io => "R001",
            Code::NotUtf8 => "R002",
            Code::YamlSyntax => "R010",
            Code::DuplicateKey => "R011",
            Code::UnknownKey => "R012",
            Code::WrongType => "R013",
            Code::MissingField => "R014",
            Code::InvalidId => "R020",
            Code::InvalidName => "R021",
            Code::DuplicateId => "R022",
            Code::DuplicateName => "R023",
            Code::BadMetadata => "R024",
            Code::UnknownField => "R030",
            Code::BadPredicate => "R031",
            Code::InvalidRegex => "R032",
            Code::ControlCharacter => "R036",
            Code::EmptyCondition => "R033",
            Code::NotAnArray => "R034",
            Code::BadJsonPath => "R035",
            Code::BadAttackId => "R040",
            Code::BadTrrId => "R041",
            Code::BadAtrmId => "R042",
            Code::BadDuration => "R050",
            Code::BadThreshold => "R051",
            Code::BadOutput => "R060",
            Code::BadEntity => "R061",
            Code::BadTest => "R070",
            Code::BadCorrelation => "R071",
            Code::Template => "R090",
            Code::Taxonomy => "R091",
            Code::Approximation => "W100",
            Code::Omitted => "W101",
            Code::SlowRegex => "W102",
            Code::Deprecated => "W103",
            Code::StaleExpectation => "W104",
            Code::Manifest => "R080",
            Code::Unlocked => "W110",
        }
    }

    /// The warnings a rule may acknowledge in `expect_warnings`: what it knowingly carries.
    /// Not `W104` (a stale acknowledgement is fixed by deleting it) nor `W110` (the lock is the
    /// pack's state, not the rule's: `rulepack lock` settles it).
    pub const EXPECTABLE: &'static [Code] = &[
        Code::Approximation,
        Code::Omitted,
        Code::SlowRegex,
        Code::Deprecated,
    ];

    /// The code written `text` (`W100`), if it is one.
    pub fn parse(text: &str) -> Option<Code> {
        ALL.iter().copied().find(|c| c.as_str() == text)
    }
}

/// Every code, for `Code::parse`; a new code goes here too.
const ALL: &[Code] = &[
    Code::Io,
    Code::NotUtf8,
    Code::YamlSyntax,
    Code::DuplicateKey,
    Code::UnknownKey,
    Code::WrongType,
    Code::MissingField,
    Code::InvalidId,
    Code::InvalidName,
    Code::DuplicateId,
    Code::DuplicateName,
    Code::UnknownField,
    Code::BadPredicate,
    Code::InvalidRegex,
    Code::ControlCharacter,
    Code::EmptyCondition,
    Code::NotAnArray,
    Code::BadJsonPath,
    Code::BadAttackId,
    Code::BadTrrId,
    Code::BadAtrmId,
    Code::BadDuration,
    Code::BadThreshold,
    Code::BadOutput,
    Code::BadEntity,
    Code::BadTest,
    Code::BadCorrelation,
    Code::BadMetadata,
    Code::Template,
    Code::Taxonomy,
    Code::Approximation,
    Code::Omitted,
    Code::SlowRegex,
    Code::Deprecated,
    Code::StaleExpectation,
    Code::Manifest,
    Code::Unlocked,
];

/// Boxed so that `Result<T, Diagnostic>` stays small on the happy path.
#[derive(Clone, Debug)]
pub struct Diagnostic(Box<DiagnosticData>);

#[derive(Clone, Debug)]
pub struct DiagnosticData {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    pub span: Option<Span>,
    /// Shown as the label under the underlined text.
    pub label: Option<String>,
    pub help: Option<String>,
    /// For diagnostics about a file that is not in the source map (I/O, encoding, templates).
    pub path: Option<std::path::PathBuf>,
    /// 1-based line and column in `path`, when known.
    pub line_col: Option<(usize, usize)>,
    /// A warning the rule acknowledges (`expect_warnings`), with its reason: not printed unless
    /// asked for, counted in the summary.
    pub expected: Option<String>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Diagnostic(Box::new(DiagnosticData {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: None,
            label: None,
            help: None,
            path: None,
            line_col: None,
            expected: None,
        }))
    }

    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        let mut d = Diagnostic::error(code, message);
        d.0.severity = Severity::Warning;
        d
    }

    pub fn at(mut self, span: Span) -> Self {
        self.0.span = Some(span);
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.0.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.0.help = Some(help.into());
        self
    }

    pub fn in_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.0.path = Some(path.into());
        self
    }

    pub fn at_line(mut self, line: usize, column: usize) -> Self {
        self.0.line_col = Some((line, column));
        self
    }

    /// Marks the warning as acknowledged by its rule, for `reason`.
    pub fn set_expected(&mut self, reason: impl Into<String>) {
        self.0.expected = Some(reason.into());
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl std::ops::Deref for Diagnostic {
    type Target = DiagnosticData;
    fn deref(&self) -> &DiagnosticData {
        &self.0
    }
}

/// Where a diagnostic points, resolved against the source map.
#[derive(Debug, Serialize)]
pub struct Position {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

pub fn position(d: &Diagnostic, sources: &SourceMap) -> Option<Position> {
    match (d.span, &d.path) {
        (Some(span), _) => {
            let (line, column) = sources.line_col(span.file, span.start);
            Some(Position {
                file: sources.get(span.file).path.display().to_string(),
                line,
                column,
            })
        }
        (None, Some(path)) => {
            let (line, column) = d.line_col.unwrap_or((1, 1));
            Some(Position {
                file: path.display().to_string(),
                line,
                column,
            })
        }
        (None, None) => None,
    }
}

/// rustc-style text with the source line and a caret under the value.
pub fn render_human(d: &Diagnostic, sources: &SourceMap, color: bool) -> String {
    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let title = level.primary_title(d.message.as_str()).id(d.code.as_str());
    let mut group = annotate_snippets::Group::with_title(title);
    if let Some(span) = d.span {
        let file = sources.get(span.file);
        let range = sources.char_range(span);
        let path = file.path.display().to_string();
        group = group.element(
            Snippet::source(file.text.as_str())
                .path(path)
                .fold(true)
                .annotation(
                    AnnotationKind::Primary
                        .span(range)
                        .label(d.label.as_deref().unwrap_or("")),
                ),
        );
    } else if let Some(path) = &d.path {
        let mut origin = annotate_snippets::Origin::path(path.display().to_string());
        if let Some((line, column)) = d.line_col {
            origin = origin.line(line).char_column(column);
        }
        group = group.element(origin);
    }
    if let Some(help) = &d.help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    let expected = d
        .expected
        .as_ref()
        .map(|r| format!("expected by the rule: {r}"));
    if let Some(note) = &expected {
        group = group.element(Level::NOTE.message(note.as_str()));
    }
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    renderer.render(&[group])
}

/// One line per diagnostic for GitHub Actions annotations. A warning its rule expects (shown
/// only when asked for) is a notice, so it does not count among the run's warnings.
pub fn render_github(d: &Diagnostic, sources: &SourceMap) -> String {
    let kind = match (d.severity, &d.expected) {
        (Severity::Error, _) => "error",
        (Severity::Warning, None) => "warning",
        (Severity::Warning, Some(_)) => "notice",
    };
    let mut msg = format!("{}: {}", d.code.as_str(), d.message);
    if let Some(help) = &d.help {
        msg.push_str(" (help: ");
        msg.push_str(help);
        msg.push(')');
    }
    if let Some(reason) = &d.expected {
        msg.push_str(" (expected by the rule: ");
        msg.push_str(reason);
        msg.push(')');
    }
    let msg = github_data(&msg);
    match position(d, sources) {
        Some(p) => format!(
            "::{kind} file={},line={},col={}::{msg}",
            github_property(&p.file),
            p.line,
            p.column
        ),
        None => format!("::{kind}::{msg}"),
    }
}

/// A workflow command's message, escaped as GitHub's runner unescapes it, so no text of a rule
/// (or of a file name) can end the command and start another.
pub fn github_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: as data, and `:` and `,` that would end the property.
pub fn github_property(s: &str) -> String {
    github_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    severity: Severity,
    code: &'static str,
    message: &'a str,
    #[serde(flatten)]
    position: Option<Position>,
    help: Option<&'a str>,
    /// The rule's reason, for a warning it expects.
    #[serde(skip_serializing_if = "Option::is_none")]
    expected: Option<&'a str>,
}

pub fn render_json(d: &Diagnostic, sources: &SourceMap) -> String {
    serde_json::to_string(&JsonDiagnostic {
        severity: d.severity,
        code: d.code.as_str(),
        message: &d.message,
        position: position(d, sources),
        help: d.help.as_deref(),
        expected: d.expected.as_deref(),
    })
    .unwrap_or_default()
}

/// Closest candidate by edit distance, for "did you mean" hints.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
