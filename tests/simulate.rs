//! `rulepack simulate` and hunting queries: a rule that a backend ships as a hunting query (its
//! `fields.yml` declares the rule's kind in `hunting_kinds`) has no schedule, so the simulation
//! leaves it out and names it in its summary. Which rules those are comes from the declaration:
//! the same rule, with a templates overlay that declares no hunting kind, is scheduled again.

mod common;

use common::{repo, report, run};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// An invitation (a match of `guest_invited`, the `first` stage of the pack's absence) that is
/// never redeemed, ingested a minute after its event.
const INVITE: &str = r#"{"id": "Invited Users_e7d580a6_1", "category": "UserManagement", "result": "success", "activityDisplayName": "Invite external user", "activityDateTime": "2026-11-02T09:14:03.0000000+00:00", "ingestionTime": "2026-11-02T09:15:03.0000000+00:00", "loggedByService": "Invited Users", "operationType": "Add", "initiatedBy": {"user": {"id": "5b1e8f0c-3d2a-4c6b-9e7f-1a2b3c4d5e6f", "userPrincipalName": "helpdesk@contoso.com", "ipAddress": "203.0.113.24"}}, "targetResources": [{"id": "8e0d7c6b-5a49-4838-a726-150493827160", "displayName": "Mallory", "type": "User", "userPrincipalName": "mallory_evil.example#EXT#@contoso.onmicrosoft.com", "modifiedProperties": []}], "additionalDetails": [{"key": "invitedUserEmailAddress", "value": "mallory@evil.example"}]}"#;

/// `rulepack simulate` of the shipped pack over the one invitation, with `extra` arguments.
fn simulate(dir: &Path, extra: &[&str]) -> Output {
    let events = dir.join("events.jsonl");
    std::fs::write(&events, format!("{INVITE}\n")).unwrap();
    run(Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .current_dir(repo())
        .arg("simulate")
        .args(extra)
        .arg("--events")
        .arg(&events))
}

/// The rules of the alert lines on stdout.
fn alerted(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            v["rule"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn hunting_queries_are_left_out_of_the_schedule_and_named() {
    let hunting = common::compile_pack().hunting;
    // The pack ships its absence as a hunting query, and the invitation is its `first` stage.
    assert!(
        hunting.contains_key("guest_invite_not_redeemed"),
        "{hunting:?}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = simulate(tmp.path(), &[]);
    let ctx = report("rulepack simulate", &out);
    assert!(out.status.success(), "{ctx}");
    let rules = alerted(&out);
    // The scheduled rule that the invitation matches still alerts: the stream did reach the pack.
    assert!(rules.iter().any(|r| r == "guest_invited"), "{ctx}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One line per rule, hunting ones included, in pack order: by name, as a reader looks up.
    let listed: Vec<&str> = stderr
        .lines()
        .filter(|l| l.ends_with(" lost to lateness") || l.contains(": not scheduled: "))
        .filter_map(|l| l.strip_prefix("  ")?.split_once(": ").map(|(r, _)| r))
        .collect();
    let mut by_name = listed.clone();
    by_name.sort_unstable();
    assert_eq!(listed, by_name, "{ctx}");
    assert!(listed.len() > hunting.len() + 1, "{ctx}");
    for (rule, backends) in &hunting {
        assert!(listed.contains(&rule.as_str()), "{rule} not listed\n{ctx}");
        assert!(!rules.contains(rule), "{rule} alerted on a schedule\n{ctx}");
        let line = format!(
            "  {rule}: not scheduled: a hunting query on {} (`hunting_kinds` in their fields.yml)",
            backends.join(", ")
        );
        assert!(
            stderr.lines().any(|l| l.starts_with(&line)),
            "expected `{line}`\n{ctx}"
        );
        assert!(
            !stderr.contains(&format!("  {rule}: 0 alerts")),
            "{rule} counted as scheduled\n{ctx}"
        );
    }
}

#[test]
fn a_rule_is_scheduled_when_no_backend_declares_its_kind_hunting() {
    let tmp = tempfile::tempdir().unwrap();
    let overlay = tmp.path().join("templates");
    for backend in ["sentinel", "splunk"] {
        let shipped = repo().join("templates").join(backend).join("fields.yml");
        let text = std::fs::read_to_string(&shipped).unwrap();
        assert!(text.contains("hunting_kinds: [absence]"), "{backend}");
        std::fs::create_dir_all(overlay.join(backend)).unwrap();
        std::fs::write(
            overlay.join(backend).join("fields.yml"),
            text.replace("hunting_kinds: [absence]", "hunting_kinds: []"),
        )
        .unwrap();
    }
    let out = simulate(tmp.path(), &["--templates", overlay.to_str().unwrap()]);
    let ctx = report("rulepack simulate --templates", &out);
    assert!(out.status.success(), "{ctx}");
    // Seven days pass without a redemption: the absence, scheduled now, alerts.
    let rules = alerted(&out);
    assert!(
        rules.iter().any(|r| r == "guest_invite_not_redeemed"),
        "{ctx}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not scheduled"));
}
