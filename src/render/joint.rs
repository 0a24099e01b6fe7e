//! A correlation as one search over all its stages' records, for backends whose correlations
//! must not run subsearches (Splunk: `append`/`join` subsearches hit time and row limits and
//! truncate silently). The base search admits a record of any stage; the stages' quantifier
//! steps run once over every row (each folds back to one row per record, so they compose), and
//! each stage's whole condition becomes a test the template turns into the row's stage tag.

use super::backend::Backend;
use super::error::RenderError;
use super::query::{QueryPlan, Walker, any_search};
use crate::ir::Cond;
use crate::model::{Output, Rule};
use crate::taxonomy::LogSource;
use serde::Serialize;

#[derive(Serialize)]
pub struct JointStage {
    pub rule: String,
    /// The stage's whole condition as one expression over the row (after `steps`).
    pub test: String,
}

#[derive(Serialize)]
pub struct JointView {
    /// Base-search terms admitting a record of any stage (none when a stage has no terms).
    pub search: Option<String>,
    /// Tests before any step: a record passes some stage's filters the terms do not say.
    pub prefilter: Option<String>,
    /// Every stage's quantifier steps, flags numbered across stages.
    pub steps: Vec<String>,
    pub first: Vec<JointStage>,
    pub then: JointStage,
    /// Steps computing the correlation key as column `rp_key`.
    pub key: Vec<String>,
    /// Steps computing the rule's output columns.
    pub outputs: Vec<String>,
}

pub fn joint(
    b: &Backend,
    ls: &LogSource,
    first: &[(&Rule, Cond)],
    then: (&Rule, &Cond),
    key: &(Output, Option<Cond>),
    outputs: &[(Output, Option<Cond>)],
) -> Result<JointView, RenderError> {
    let syn = &b.config.syntax;
    // One walker for every stage: flag columns and the record numbering are shared.
    let mut w = Walker::new(b, ls, &then.0.name.0);
    let mut plans: Vec<(String, QueryPlan)> = Vec::new();
    for (r, cond) in first.iter().map(|(r, c)| (*r, c)).chain([then]) {
        w.set_rule(&r.name.0);
        plans.push((r.name.0.clone(), w.plan(cond, &[], &r.parameters)?));
    }
    let refs: Vec<&QueryPlan> = plans.iter().map(|(_, p)| p).collect();
    let search = any_search(b, &refs);
    let group = |t: &str| syn.group.replace("{}", t);
    // Worth a step when the terms leave a stage's filter untested, and possible when every
    // stage has filters (a stage without any admits every record).
    let needed = search.is_none() || refs.iter().any(|p| !p.unsearched.is_empty());
    let prefilter = (needed && refs.iter().all(|p| !p.filters.is_empty())).then(|| {
        refs.iter()
            .map(|p| group(&p.filters.join(&syn.and)))
            .collect::<Vec<_>>()
            .join(&syn.or)
    });
    let mut steps = Vec::new();
    let mut stages: Vec<JointStage> = Vec::new();
    for (rule, plan) in plans {
        steps.extend(plan.steps);
        let parts: Vec<String> = plan
            .filters
            .iter()
            .chain(&plan.residual)
            .map(|t| group(t))
            .collect();
        stages.push(JointStage {
            rule,
            test: parts.join(&syn.and),
        });
    }
    let then = stages.pop().expect("the then stage was planned last");
    Ok(JointView {
        search,
        prefilter,
        steps,
        first: stages,
        then,
        key: w.outputs(std::slice::from_ref(key))?,
        outputs: w.outputs(outputs)?,
    })
}
