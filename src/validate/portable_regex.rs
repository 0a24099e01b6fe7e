//! The portable regex subset (docs/rule-format.md, "Regular expressions"). A rule's regex runs in
//! RE2 (KQL), PCRE (SPL) and Python's `re` (pySigma and its backends); the `regex` crate, which
//! checks the syntax, accepts more than those share. Walking its syntax tree, everything outside
//! the common subset is refused at the value with what to write instead, and nested quantifiers,
//! which make backtracking engines (PCRE, Python) take exponential time, are warned about.

use regex_syntax::ast::{
    self, Assertion, AssertionKind, Ast, ClassSet, ClassSetItem, Flag, FlagsItemKind, GroupKind,
    HexLiteralKind, LiteralKind, RepetitionKind, RepetitionRange,
};

/// What is wrong with a pattern: where (character offset), what, and what to write instead.
#[derive(Debug, PartialEq, Eq)]
pub struct Finding {
    pub at: usize,
    pub message: String,
    pub help: &'static str,
}

/// The refusals (first) and the nested-quantifier warnings of `pattern`, or the parse error.
pub fn check(pattern: &str) -> Result<(Vec<Finding>, Vec<Finding>), String> {
    let ast = ast::parse::Parser::new()
        .parse(pattern)
        .map_err(|e| e.kind().to_string())?;
    let mut w = Walk {
        pattern,
        refused: Vec::new(),
        slow: Vec::new(),
    };
    w.ast(&ast);
    Ok((w.refused, w.slow))
}

struct Walk<'a> {
    pattern: &'a str,
    refused: Vec<Finding>,
    slow: Vec<Finding>,
}

impl Walk<'_> {
    fn refuse(&mut self, span: &ast::Span, what: &str, help: &'static str) {
        let text = &self.pattern[span.start.offset..span.end.offset];
        self.refused.push(Finding {
            at: self.pattern[..span.start.offset].chars().count(),
            message: format!("`{text}` ({what}) is not read the same by RE2, PCRE and Python"),
            help,
        });
    }

    fn ast(&mut self, a: &Ast) {
        match a {
            Ast::Empty(_) | Ast::Dot(_) | Ast::ClassPerl(_) => {}
            Ast::Flags(f) => {
                // Python takes global flags only at the very start, and no negation there.
                if f.span.start.offset != 0
                    || f.flags
                        .items
                        .iter()
                        .any(|i| i.kind == FlagsItemKind::Negation)
                {
                    self.refuse(
                        &f.span,
                        "flags after the start",
                        "put `(?i)` first, or scope the flag to a group: `(?i:…)`",
                    );
                }
                self.flags(&f.flags);
            }
            Ast::Literal(l) => self.literal(l),
            Ast::Assertion(x) => self.assertion(x),
            Ast::ClassUnicode(c) => self.refuse(
                &c.span,
                "a Unicode class",
                "list the characters in brackets, e.g. `[A-Za-zÀ-ÿ]`, or use `\\w`",
            ),
            Ast::ClassBracketed(c) => self.class_set(&c.kind, true),
            Ast::Repetition(r) => {
                if repeats(&r.op.kind) && contains_unbounded(&r.ast) {
                    self.slow.push(Finding {
                        at: self.pattern[..r.span.start.offset].chars().count(),
                        message: format!(
                            "`{}` repeats a part that itself repeats without bound: backtracking engines (PCRE in Splunk, Python) can take exponential time on a near miss",
                            &self.pattern[r.span.start.offset..r.span.end.offset]
                        ),
                        help: "quantify once (`a+` rather than `(a+)+`), or make the inner part fixed-length",
                    });
                }
                self.ast(&r.ast);
            }
            Ast::Group(g) => {
                match &g.kind {
                    GroupKind::CaptureIndex(_) => {}
                    GroupKind::CaptureName { .. } => self.refuse(
                        &g.span,
                        "a named group",
                        "use a plain group `( … )` or `(?: … )`: rules never read group names",
                    ),
                    GroupKind::NonCapturing(flags) => self.flags(flags),
                }
                self.ast(&g.ast);
            }
            Ast::Alternation(x) => x.asts.iter().for_each(|a| self.ast(a)),
            Ast::Concat(x) => x.asts.iter().for_each(|a| self.ast(a)),
        }
    }

    fn flags(&mut self, f: &ast::Flags) {
        for item in &f.items {
            if let FlagsItemKind::Flag(flag) = &item.kind
                && !matches!(
                    flag,
                    Flag::CaseInsensitive | Flag::MultiLine | Flag::DotMatchesNewLine
                )
            {
                self.refuse(
                    &item.span,
                    "a flag other than i, m and s",
                    "use only the flags i, m and s; for U write lazy quantifiers (`*?`)",
                );
            }
        }
    }

    fn literal(&mut self, l: &ast::Literal) {
        match &l.kind {
            LiteralKind::HexBrace(_) => self.refuse(
                &l.span,
                "a braced escape",
                "write `\\xHH` for a character below U+0100, else the character itself",
            ),
            LiteralKind::HexFixed(HexLiteralKind::UnicodeShort | HexLiteralKind::UnicodeLong) => {
                self.refuse(&l.span, "a \\u or \\U escape", "write the character itself")
            }
            LiteralKind::Octal => self.refuse(&l.span, "an octal escape", "write `\\xHH`"),
            _ => {}
        }
    }

    fn assertion(&mut self, x: &Assertion) {
        let help = match x.kind {
            AssertionKind::StartLine
            | AssertionKind::EndLine
            | AssertionKind::WordBoundary
            | AssertionKind::NotWordBoundary => return,
            AssertionKind::StartText | AssertionKind::EndText => "use `^` and `$`",
            _ => "use `\\b`",
        };
        self.refuse(&x.span, "an assertion", help);
    }

    fn class_set(&mut self, set: &ClassSet, top: bool) {
        match set {
            ClassSet::BinaryOp(op) => self.refuse(
                &op.span,
                "a class set operation",
                "list the characters that remain, e.g. `[0-35-9]` for `[\\d--4]`",
            ),
            ClassSet::Item(item) => self.class_item(item, top),
        }
    }

    fn class_item(&mut self, item: &ClassSetItem, top: bool) {
        match item {
            ClassSetItem::Empty(_) | ClassSetItem::Perl(_) | ClassSetItem::Range(_) => {}
            ClassSetItem::Literal(l) => self.literal(l),
            ClassSetItem::Ascii(a) => self.refuse(
                &a.span,
                "a POSIX class",
                "list the characters, e.g. `[A-Za-z]` for `[[:alpha:]]`",
            ),
            ClassSetItem::Unicode(u) => self.refuse(
                &u.span,
                "a Unicode class",
                "list the characters in brackets, e.g. `[A-Za-zÀ-ÿ]`, or use `\\w`",
            ),
            ClassSetItem::Bracketed(b) => {
                if top {
                    self.refuse(
                        &b.span,
                        "a class inside a class",
                        "write one class listing every character, e.g. `[abc]` for `[a[bc]]`",
                    );
                }
                self.class_set(&b.kind, false);
            }
            ClassSetItem::Union(u) => u.items.iter().for_each(|i| self.class_item(i, top)),
        }
    }
}

/// Whether a quantifier lets its part occur more than once.
fn repeats(kind: &RepetitionKind) -> bool {
    match kind {
        RepetitionKind::ZeroOrOne => false,
        RepetitionKind::ZeroOrMore | RepetitionKind::OneOrMore => true,
        RepetitionKind::Range(RepetitionRange::Exactly(n)) => *n > 1,
        RepetitionKind::Range(RepetitionRange::AtLeast(_)) => true,
        RepetitionKind::Range(RepetitionRange::Bounded(_, m)) => *m > 1,
    }
}

/// Whether `a` holds a quantifier without an upper bound.
fn contains_unbounded(a: &Ast) -> bool {
    match a {
        Ast::Repetition(r) => {
            matches!(
                r.op.kind,
                RepetitionKind::ZeroOrMore
                    | RepetitionKind::OneOrMore
                    | RepetitionKind::Range(RepetitionRange::AtLeast(_))
            ) || contains_unbounded(&r.ast)
        }
        Ast::Group(g) => contains_unbounded(&g.ast),
        Ast::Alternation(x) => x.asts.iter().any(contains_unbounded),
        Ast::Concat(x) => x.asts.iter().any(contains_unbounded),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    /// Refused by the walk, or already by the parser (as `a{,3}` is).
    fn refused(p: &str) -> bool {
        check(p).map_or(true, |(r, _)| !r.is_empty())
    }

    #[test]
    fn rust_only_syntax_is_refused() {
        for p in [
            r"\p{L}",
            r"\pL",
            r"a\z",
            r"\Aa",
            r"\x{263a}",
            r"(?<n>x)",
            r"(?P<n>x)",
            r"(?U)a+",
            r"a(?i)b",
            r"(?-i)a",
            r"(?x)a b",
            r"[\d--4]",
            r"[a&&b]",
            r"[a[bc]]",
            r"[[:alpha:]]",
            r"[\p{Greek}]",
            r"\b{start}x",
            r"\<x",
            r"a{,3}",
            r"\u263a",
        ] {
            assert!(refused(p), "{p}");
        }
    }

    #[test]
    fn the_common_subset_is_accepted() {
        for p in [
            r"^Invite (external )?user$",
            r"(?i)^a.b\.c[^x-z]\d+\s*\w{2,5}$",
            r"(?i:abc)|(?s:x.y)|(?-i:Z)",
            r"\bword\b\B",
            r"\x41\t\n[\x00-\x1f]",
            r"a{0,3}?b*?c+?",
            r"[]a]|[-a]|[a-]",
        ] {
            assert_eq!(check(p).unwrap().0, vec![], "{p}");
        }
    }

    #[test]
    fn nested_quantifiers_warn() {
        for p in [
            r"(a+)+$",
            r"(a*)*",
            r"(?:a|b+){2,}",
            r"((ab)*c)+",
            r"(x+y?){1,10}",
        ] {
            assert_eq!(check(p).unwrap().1.len(), 1, "{p}");
        }
        for p in [r"a+b+", r"(ab)+", r"(a+)?", r"(a{2}){3}", r"(a+){1}"] {
            assert!(check(p).unwrap().1.is_empty(), "{p}");
        }
    }
}
