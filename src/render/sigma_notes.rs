//! What a Sigma file says about itself when it cannot say what the rule says: its
//! approximations (in the description and the build's warnings), the rule's tests it is known to
//! match as well, and the lower level that follows.

use super::sigma;
use crate::diag::{Code, Diagnostic};
use crate::model::{Rule, Severity};

/// A Sigma detection's approximations go into the file's description and the build's warnings.
pub(super) fn note_approximations(
    rule: &Rule,
    det: &sigma::Detection,
    description: &mut String,
    warnings: &mut Vec<Diagnostic>,
) {
    for a in &det.approximations {
        warnings.push(
            Diagnostic::warning(
                Code::Approximation,
                format!("Sigma output of `{}` is approximate: {a}", rule.name.0),
            )
            .at(rule.spans.condition)
            .help(
                "the Sigma file states this in its description; the KQL and SPL outputs are exact",
            ),
        );
        description.push_str(" Sigma approximation: ");
        description.push_str(a);
    }
}

/// Names the rule's tests that the Sigma rule matches although the rule does not, so a Sigma
/// user (and the conversion proof) can see each known over-match.
pub(super) fn note_over_matches(rule: &Rule, description: &mut String) {
    if rule.sigma_over_matches.is_empty() {
        return;
    }
    let names: Vec<String> = rule
        .sigma_over_matches
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect();
    description.push_str(&format!(
        " Of the rule's own tests, the Sigma rule also matches {}, which the rule does not.",
        names.join(", ")
    ));
}

/// The Sigma file's level and false positives. An approximate Sigma rule matches records the
/// rule does not, so it is one level lower than the rule and says why in `falsepositives`.
pub(super) fn sigma_meta(rule: &Rule, approximate: bool) -> (Severity, Vec<String>) {
    let mut fps = rule.falsepositives.clone();
    if !approximate {
        return (rule.severity, fps);
    }
    let level = match rule.severity {
        Severity::High => Severity::Medium,
        Severity::Medium => Severity::Low,
        Severity::Low | Severity::Informational => Severity::Informational,
    };
    let mut why = String::from(
        "Records the original rule excludes: Sigma cannot decode JSON text or bind conditions \
         to one array element (details in the description), so this rule is one level below it",
    );
    if !rule.sigma_over_matches.is_empty() {
        let names: Vec<String> = rule
            .sigma_over_matches
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect();
        why.push_str(&format!(
            "; of the rule's own tests it also matches {}",
            names.join(", ")
        ));
    }
    fps.push(why);
    (level, fps)
}
