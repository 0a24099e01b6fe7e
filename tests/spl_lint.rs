//! SPL lint (issue 12): every built Splunk search, as its `.spl` file and as its
//! savedsearches.conf stanza, is shaped for the indexers:
//! - every activity the rule (or a correlation's stage rule) tests with a case-insensitive
//!   equality, outside `not` and quantifiers, is a search term before the first pipe;
//! - the run's time bounds (`earliest`, `latest`, `_index_earliest`, `_index_latest`) are in
//!   that base search;
//! - no subsearch (`[...]`) and no command that combines searches (`append`, `join`, …);
//! - no array is expanded (`spath`, `mvexpand`) before the activity is filtered;
//! - `streamstats`/`eventstats` run only after every filter on the record's own fields.
//!
//! The lint reads the text only; `lint_rejects_badly_shaped_searches` feeds it broken searches.

mod common;

use rulepack::ir::{Case, Cond, Op, StrOp};
use rulepack::model::{Logic, Rule};
use std::collections::BTreeMap;

const BOUNDS: &[&str] = &["earliest", "latest", "_index_earliest", "_index_latest"];
const COMBINING: &[&str] = &[
    "append",
    "appendcols",
    "appendpipe",
    "join",
    "selfjoin",
    "union",
    "multisearch",
    "map",
];

/// The search field and the eval expression of the neutral `activity` field, from the shipped
/// Splunk mapping.
struct Activity {
    term: String,
    eval: String,
}

fn activity() -> Activity {
    let text = std::fs::read_to_string(common::repo().join("templates/splunk/fields.yml")).unwrap();
    let yaml: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    Activity {
        term: yaml["search_fields"]["activity"]
            .as_str()
            .unwrap()
            .to_string(),
        eval: yaml["fields"]["activity"].as_str().unwrap().to_string(),
    }
}

/// The search split at its top-level pipes (outside strings, field quotes, macros and
/// brackets), and whether a `[` opened a subsearch anywhere.
fn segments(spl: &str) -> (Vec<String>, bool) {
    let mut out = vec![String::new()];
    let mut depth = 0usize;
    let mut bracket = false;
    let mut chars = spl.chars();
    while let Some(c) = chars.next() {
        let cur = out.last_mut().unwrap();
        cur.push(c);
        match c {
            '"' => {
                while let Some(n) = chars.next() {
                    cur.push(n);
                    match n {
                        '\\' => cur.extend(chars.next()),
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '\'' | '`' => {
                for n in chars.by_ref() {
                    cur.push(n);
                    if n == c {
                        break;
                    }
                }
            }
            '[' => {
                bracket = true;
                depth += 1;
            }
            '(' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '|' if depth == 0 => {
                cur.pop();
                out.push(String::new());
            }
            _ => {}
        }
    }
    (out, bracket)
}

/// The values a base search tests `field` against: `field="v"` and `field IN ("v", …)`.
fn base_values(base: &str, field: &str) -> Vec<String> {
    let mut values = Vec::new();
    for (i, _) in base.match_indices(field) {
        let rest = &base[i + field.len()..];
        let list = if let Some(r) = rest.strip_prefix("=\"") {
            &rest[..r.find('"').map_or(0, |e| e + 3)]
        } else if let Some(r) = rest.strip_prefix(" IN (") {
            r.split(')').next().unwrap_or("")
        } else {
            continue;
        };
        values.extend(list.split('"').skip(1).step_by(2).map(str::to_string));
    }
    values
}

/// A value a search term can spell; the others stay in `where` by design.
fn sayable(v: &str) -> bool {
    !v.is_empty()
        && v.trim() == v
        && v.chars()
            .all(|c| (c.is_ascii_graphic() || c == ' ') && !matches!(c, '"' | '\\' | '*' | '`'))
}

/// Every lint problem of one search; `activities` are the values the base search must hold.
fn lint(spl: &str, activities: &[String], act: &Activity) -> Vec<String> {
    let mut problems = Vec::new();
    let (segs, bracket) = segments(spl);
    let base = &segs[0];
    if bracket {
        problems.push("a subsearch bracket `[`".to_string());
    }
    let words: Vec<&str> = base.split_whitespace().collect();
    for b in BOUNDS {
        if !words.iter().any(|w| w.starts_with(&format!("{b}="))) {
            problems.push(format!("no `{b}=` in the base search"));
        }
    }
    let in_base = base_values(base, &act.term);
    let missing: Vec<&String> = activities
        .iter()
        .filter(|v| sayable(v) && !in_base.contains(v))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "activity {missing:?} is not a term of the base search"
        ));
    }
    // Where the activity is filtered: the base search, or the first `where` that reads it.
    let act_at = if missing.is_empty() {
        0
    } else {
        segs.iter()
            .position(|s| command(s) == "where" && s.contains(&act.eval))
            .unwrap_or(usize::MAX)
    };
    let is_record_filter = |s: &str| command(s) == "where" && s.contains("'") && !s.contains("rp_");
    let first_stats = segs
        .iter()
        .position(|s| ["streamstats", "eventstats"].contains(&command(s)));
    for (i, s) in segs.iter().enumerate().skip(1) {
        let cmd = command(s);
        if COMBINING.contains(&cmd) {
            problems.push(format!("`{cmd}` combines searches"));
        }
        if ["spath", "mvexpand"].contains(&cmd) && i < act_at {
            problems.push(format!("`{cmd}` expands arrays before the activity filter"));
        }
        if first_stats.is_some_and(|f| f < i) && is_record_filter(s) {
            problems.push(format!(
                "streamstats/eventstats run before the filter `{}`",
                s.trim()
            ));
        }
    }
    problems
}

fn command(segment: &str) -> &str {
    segment.split_whitespace().next().unwrap_or("")
}

/// Activity values of a condition's equality tests reachable through `all`/`any` only.
fn activities_of(c: &Cond, into: &mut Vec<String>) {
    match c {
        Cond::All(cs) | Cond::Any(cs) => cs.iter().for_each(|c| activities_of(c, into)),
        Cond::Pred(p) if p.field.0 == "activity" && p.json.is_empty() => {
            if let Op::Str {
                op: StrOp::Equals,
                values,
                case: Case::Insensitive,
                ..
            } = &p.op
            {
                into.extend(values.iter().cloned());
            }
        }
        _ => {}
    }
}

/// The activities a rule's search must filter in its base search: its own, or its stages'.
fn rule_activities(rule: &Rule, rules: &[Rule]) -> Vec<String> {
    let mut out = Vec::new();
    match &rule.logic {
        Logic::Events { condition, .. } => activities_of(condition, &mut out),
        Logic::Correlation(c) => {
            for s in c.first.iter().chain([&c.then]) {
                let stage = rules.iter().find(|r| r.name == s.rule).expect("stage rule");
                activities_of(stage.condition().expect("a single-record stage"), &mut out);
            }
        }
    }
    out
}

/// `search` of each savedsearches.conf stanza, continuations joined, by detection id.
fn stanza_searches(conf: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let (mut id, mut search): (Option<String>, Option<String>) = (None, None);
    let mut continuing = false;
    for line in conf.lines() {
        if continuing {
            let s = search.as_mut().unwrap();
            s.push('\n');
            continuing = line.ends_with(" \\");
            s.push_str(line.trim_end_matches(" \\"));
        } else if let Some(v) = line.strip_prefix("search = ") {
            continuing = v.ends_with(" \\");
            search = Some(v.trim_end_matches(" \\").to_string());
        } else if let Some(v) = line.strip_prefix("action.correlationsearch.metadata = ") {
            let meta: serde_json::Value = serde_json::from_str(v).unwrap();
            id = meta["detection_id"].as_str().map(str::to_string);
        } else if line.starts_with('[') {
            id = None;
            search = None;
        }
        if let (false, Some(i), Some(s)) = (continuing, &id, &search) {
            out.insert(i.clone(), s.clone());
        }
    }
    out
}

#[test]
fn every_spl_search_is_shaped_for_the_indexers() {
    let pack = common::compile_pack();
    let act = activity();
    let content = |suffix: &str| {
        pack.artifacts
            .iter()
            .find(|a| a.path.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("no artifact {suffix}"))
            .content
            .clone()
    };
    let stanzas = stanza_searches(&content("default/savedsearches.conf"));
    let mut problems = Vec::new();
    for rule in &pack.rules {
        let activities = rule_activities(rule, &pack.rules);
        assert!(
            !activities.is_empty(),
            "{}: no activity to check",
            rule.name.0
        );
        let spl = content(&format!("splunk/{}.spl", rule.name.0));
        let stanza = stanzas.get(&rule.id.0).cloned().unwrap_or_else(|| {
            problems.push(format!("{}: no savedsearches.conf stanza", rule.name.0));
            String::new()
        });
        for (what, text) in [("spl", &spl), ("savedsearches.conf", &stanza)] {
            for p in lint(text, &activities, &act) {
                problems.push(format!("{} ({what}): {p}", rule.name.0));
            }
        }
    }
    println!(
        "spl-lint: {} rules, {} searches, {} problems",
        pack.rules.len(),
        pack.rules.len() * 2,
        problems.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The lint fails on each shape issue 12 found in the old searches.
#[test]
fn lint_rejects_badly_shaped_searches() {
    let act = activity();
    let acts = vec!["Invite external user".to_string()];
    let good = "`rulepack_entra_audit` properties.activityDisplayName=\"Invite external user\" \
                earliest=-70m@m latest=@m _index_earliest=-60m@m _index_latest=@m\n\
                | where match('properties.initiatedBy.user.userPrincipalName', \"(?i)#EXT#\")\n\
                | streamstats count AS rp_event\n\
                | spath path=properties.targetResources{} output=rp_target\n\
                | mvexpand rp_target\n\
                | eventstats max(rp_q1) AS rp_q1 BY rp_event\n\
                | table _time\n\
                | `guest_invited_filter`";
    assert_eq!(lint(good, &acts, &act), Vec::<String>::new());
    let moved = good
        .replacen(" properties.activityDisplayName=\"Invite external user\"", "", 1)
        .replacen(
            "| table _time",
            "| where lower('properties.activityDisplayName')==lower(\"Invite external user\")\n| table _time",
            1,
        );
    let broken = [
        (moved.clone(), "is not a term of the base search"),
        (moved, "`spath` expands arrays before the activity filter"),
        (
            good.replacen(" _index_earliest=-60m@m", "", 1),
            "no `_index_earliest=`",
        ),
        (
            good.replacen("latest=@m _index", "_index", 1),
            "no `latest=`",
        ),
        (
            good.replacen(
                "| table _time",
                "| append [search `rulepack_entra_audit`]\n| table _time",
                1,
            ),
            "`append` combines searches",
        ),
        (
            good.replacen(
                "| table _time",
                "| append [search `rulepack_entra_audit`]\n| table _time",
                1,
            ),
            "subsearch bracket",
        ),
        (
            good.replacen("| table _time", "| join rp_key x\n| table _time", 1),
            "`join` combines searches",
        ),
        (
            good.replacen("| streamstats count AS rp_event\n", "", 1)
                .replacen(
                    "| where match(",
                    "| streamstats count AS rp_event\n| where match(",
                    1,
                ),
            "streamstats/eventstats run before the filter",
        ),
    ];
    for (spl, expected) in broken {
        assert_ne!(spl, good);
        let problems = lint(&spl, &acts, &act);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "expected {expected:?} for\n{spl}\ngot {problems:?}"
        );
    }
    // A value search cannot spell stays in `where` and is not demanded in the base search.
    assert!(!sayable("Invite * user") && !sayable("a\"b") && sayable("Invite external user"));
}

#[test]
fn stanza_searches_join_continuations() {
    let conf = "[a]\naction.correlationsearch.metadata = {\"detection_id\": \"x\"}\n\
                search = `m` a=\"1\" \\\n| where b \\\n| table c\ndisabled = 1\n";
    let got = stanza_searches(conf);
    assert_eq!(got["x"], "`m` a=\"1\"\n| where b\n| table c");
}
