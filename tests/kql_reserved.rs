//! Output column names against the real KQL parser: rulepack's list of reserved KQL keywords is
//! exactly what the pinned Kusto.Language refuses as a bare column name; every other plain-name
//! keyword, used as an output column of an event rule, an aggregation and a correlation, gives
//! KQL that Kusto.Language accepts; a reserved name, a table column, or a column rulepack adds is
//! refused with R060 at the output's line.

mod common;

use common::{report, run};
use rulepack::source::SourceMap;
use rulepack::validate::reserved::KQL_KEYWORDS;
use std::process::Command;

fn keywords(flag: Option<&str>) -> Vec<String> {
    let out = run(Command::new("node")
        .arg(common::repo().join("tools/kql/reserved-columns.js"))
        .args(flag)
        .arg("--modules")
        .arg(common::repo().join(".tools/kql/node_modules")));
    assert!(
        out.status.success(),
        "{}",
        report("reserved-columns.js", &out)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_reserved_list_is_what_kusto_language_refuses() {
    let refused = keywords(None);
    assert!(refused.len() > 100, "{refused:?}");
    assert_eq!(KQL_KEYWORDS, refused.as_slice());
}

const RULES: &[&str] = &[
    "guest_invited.yml",
    "guest_invitation_burst.yml",
    "guest_deleted_soon_after_invite.yml",
    "guest_invite_not_redeemed.yml",
];

/// The shipped rules with `lines` added under the `output:` of the rules in RULES (the rules a
/// correlation names come along; no lock, so the changed rules build with W110 only).
fn pack_with_outputs(dir: &std::path::Path, lines: &str) {
    for e in std::fs::read_dir(common::repo().join("rules")).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !name.ends_with(".yml") {
            continue;
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        if RULES.contains(&name.as_str()) {
            text = text.replacen("\noutput:\n", &format!("\noutput:\n{lines}"), 1);
        }
        std::fs::write(dir.join(name), text).unwrap();
    }
}

#[test]
fn every_other_keyword_is_a_column_kusto_language_accepts() {
    let allowed = keywords(Some("--allowed"));
    assert!(allowed.len() > 30, "{allowed:?}");
    let lines: String = allowed
        .iter()
        .map(|k| format!("  '{k}': {{ field: initiator.upn }}\n"))
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    pack_with_outputs(&rules, &lines);
    let out = tmp.path().join("out");
    let mut sources = SourceMap::default();
    if let Err(rulepack::BuildError::Rules(d)) =
        rulepack::build(&common::paths(&rules), &mut sources, &out)
    {
        let text: Vec<String> = d
            .iter()
            .map(|d| rulepack::diag::render_human(d, &sources, false))
            .collect();
        panic!("{}", text.join("\n"));
    }
    let kql: Vec<_> = RULES
        .iter()
        .map(|r| out.join("sentinel").join(r.replace(".yml", ".kql")))
        .collect();
    for f in &kql {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            allowed.iter().all(|k| text.contains(&format!(" {k} = "))),
            "{} lacks an output",
            f.display()
        );
    }
    common::real::kql(&kql).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn reserved_names_are_refused_at_the_output() {
    let cases = [
        ("guest_invited.yml", "search"),
        ("guest_invited.yml", "project"),
        ("guest_invited.yml", "Id"),
        ("guest_deleted_soon_after_invite.yml", "TimeGenerated"),
        ("guest_deleted_soon_after_invite.yml", "FirstTime"),
        ("guest_invitation_burst.yml", "EventCount"),
        ("guest_invitation_burst.yml", "where"),
    ];
    for (rule, column) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(common::repo().join("rules").join(rule))
            .unwrap()
            .replacen(
                "\noutput:\n",
                &format!("\noutput:\n  {column}: {{ field: initiator.upn }}\n"),
                1,
            );
        let line = text
            .lines()
            .position(|l| l.starts_with(&format!("  {column}: ")))
            .unwrap()
            + 1;
        std::fs::write(tmp.path().join(rule), &text).unwrap();
        let mut sources = SourceMap::default();
        let file = sources.add(&tmp.path().join(rule), text.clone());
        let raw =
            rulepack::load::yaml::parse::<rulepack::load::raw::RawRule>(&sources, file).unwrap();
        let logsources =
            rulepack::load_logsources(&rulepack::templates::Templates::default(), &mut sources)
                .unwrap();
        let diags = rulepack::validate::validate(&raw, file, &text, &logsources)
            .err()
            .unwrap_or_else(|| panic!("{rule}: output `{column}` was accepted"));
        let at: Vec<(String, usize)> = diags
            .iter()
            .map(|d| {
                let s = d.span.unwrap();
                (
                    d.code.as_str().to_string(),
                    sources.line_col(s.file, s.start).0,
                )
            })
            .collect();
        assert_eq!(
            at,
            [("R060".to_string(), line)],
            "{rule} `{column}`: {diags:?}"
        );
    }
}
