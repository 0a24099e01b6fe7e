//! Warnings a rule acknowledges (`expect_warnings`), as Rust's `#[expect(lint)]`: the warning is
//! kept but marked with the rule's reason, so the commands print only what nobody has reviewed
//! and count the rest; an acknowledgement whose warning no longer happens is a warning itself
//! (`W104`), so a stale one cannot hide the next real problem.

use crate::diag::{Code, Diagnostic};
use crate::model::Rule;
use std::collections::{HashMap, HashSet};

/// Where in the pipeline a warning is found. Each stage settles the expectations of its own
/// codes, once its warnings are all known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Validation: slow regexes (`W102`), deprecated keys (`W103`).
    Validate,
    /// Rendering: Sigma approximations (`W100`), outputs a backend omits (`W101`).
    Render,
}

impl Stage {
    fn codes(self) -> &'static [Code] {
        match self {
            Stage::Validate => &[Code::SlowRegex, Code::Deprecated],
            Stage::Render => &[Code::Approximation, Code::Omitted],
        }
    }
}

/// Marks each warning of `stage` that its rule expects with the rule's reason. When `judged`
/// (the stage ran in full: every backend rendered), each expectation of the stage that met no
/// warning becomes a `W104` warning at its entry; otherwise (`build --backend`) an unmet
/// expectation says nothing, since its warning may belong to a backend left out.
pub fn settle(rules: &[Rule], warnings: &mut Vec<Diagnostic>, stage: Stage, judged: bool) {
    let codes = stage.codes();
    // A rule's warnings point into its file (its condition, a key), one rule per file.
    let by_file: HashMap<_, &Rule> = rules
        .iter()
        .filter(|r| r.expected.iter().any(|e| codes.contains(&e.code)))
        .map(|r| (r.file, r))
        .collect();
    if by_file.is_empty() {
        return;
    }
    let mut met = HashSet::new();
    for w in warnings.iter_mut() {
        if w.is_error() || !codes.contains(&w.code) {
            continue;
        }
        let Some(rule) = w.span.and_then(|s| by_file.get(&s.file)) else {
            continue;
        };
        if let Some(e) = rule.expected.iter().find(|e| e.code == w.code) {
            met.insert((rule.file, e.code));
            let reason = e.reason.clone();
            w.set_expected(reason);
        }
    }
    if !judged {
        return;
    }
    for rule in rules {
        for e in &rule.expected {
            if codes.contains(&e.code) && !met.contains(&(rule.file, e.code)) {
                warnings.push(stale(rule, e));
            }
        }
    }
}

fn stale(rule: &Rule, e: &crate::model::Expectation) -> Diagnostic {
    let code = e.code.as_str();
    Diagnostic::warning(
        Code::StaleExpectation,
        format!(
            "`{}` expects warning {code}, which it no longer gets",
            rule.name.0
        ),
    )
    .at(e.at)
    .label("expected here")
    .help(format!(
        "delete the {code} entry of `expect_warnings`, and any text that explains the warning \
         (description, Sigma notes) if it no longer holds"
    ))
}
