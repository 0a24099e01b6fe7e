//! `expect_warnings`: the warnings a rule acknowledges, each with its reason. Only warnings a
//! rule can knowingly carry may be listed, and the reason must say something, so an entry is a
//! reviewed decision and not a way to mute the build.

use super::Ctx;
use crate::diag::Code;
use crate::load::raw::{RawRule, TestEvent};
use crate::model::Expectation;

/// A reason longer than this belongs in the description.
const MAX_REASON: usize = 500;

pub(super) fn expectations<E: TestEvent>(cx: &mut Ctx, raw: &RawRule<E>) -> Vec<Expectation> {
    let expectable: Vec<&str> = Code::EXPECTABLE.iter().map(|c| c.as_str()).collect();
    let mut out = Vec::new();
    for (key, reason) in &raw.expect_warnings {
        let written = key.value.trim();
        let code = match Code::parse(written) {
            Some(c) if Code::EXPECTABLE.contains(&c) => Some(c),
            Some(c) if c.as_str().starts_with('R') => {
                cx.err(
                    key,
                    Code::BadMetadata,
                    format!("`{written}` is an error code; only warnings can be expected"),
                    "fix the error instead: an error stops the build whatever the rule says",
                );
                None
            }
            Some(c) => {
                cx.err(
                    key,
                    Code::BadMetadata,
                    format!("warning `{written}` cannot be expected"),
                    match c {
                        Code::Unlocked => {
                            "W110 is about the lock, not the rule: run `rulepack lock` to record its version".to_string()
                        }
                        _ => "delete the stale entry: the warning it named no longer happens"
                            .to_string(),
                    },
                );
                None
            }
            None => {
                let mut help = format!("a rule can expect {}", expectable.join(", "));
                if let Some(c) = crate::diag::did_you_mean(written, expectable.iter().copied()) {
                    help.push_str(&format!("; did you mean `{c}`?"));
                }
                cx.err(
                    key,
                    Code::BadMetadata,
                    format!("`{written}` is not a warning code"),
                    help,
                );
                None
            }
        };
        super::text::text_ok(cx, reason);
        let text = reason.value.trim();
        if text.is_empty() {
            cx.err(
                reason,
                Code::BadMetadata,
                format!("the reason for expecting `{written}` is empty"),
                "say why the rule carries this warning and why it is acceptable, e.g. \
                 \"Sigma cannot decode the JSON in modified.new; the Sigma file says so\"",
            );
        } else if text.chars().count() > MAX_REASON {
            cx.err(
                reason,
                Code::BadMetadata,
                format!(
                    "the reason for expecting `{written}` is longer than {MAX_REASON} characters"
                ),
                "keep the reason to a sentence or two; the description holds the details",
            );
        }
        if let Some(code) = code {
            out.push(Expectation {
                code,
                reason: text.to_string(),
                at: cx.span(key),
            });
        }
    }
    out
}
