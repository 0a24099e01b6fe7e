//! `rulepack replay` on hostile input (issue 15): each case the fuzzing campaign found, replayed
//! through the CLI (a panic is exit 101, so every case checks the exit status).

mod common;

use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A record from the pack's tests that several rules match (an external user invited by a user).
fn invitation() -> Value {
    json!({
        "id": "Invited Users_e7d580a6_YNUMP_C0001",
        "category": "UserManagement",
        "correlationId": "e7d580a6-eaac-4f82-843c-40b0b5f3cf99",
        "result": "success",
        "activityDisplayName": "Invite external user",
        "activityDateTime": "2026-11-02T10:00:00.0000000+00:00",
        "loggedByService": "Invited Users",
        "operationType": "Add",
        "initiatedBy": {"user": {"id": "728989f4-eb3d-45c2-8741-2f2af4e485ce", "userPrincipalName": "guest_admin@contoso.com#EXT#@contoso.onmicrosoft.com", "ipAddress": "40.126.4.40"}},
        "targetResources": [{"id": "f416526a-17ee-4129-8ca9-f5ee55f69f34", "displayName": "oops", "type": "User", "userPrincipalName": "oops360_gmail.com#EXT#@contoso.onmicrosoft.com", "modifiedProperties": []}],
        "additionalDetails": [{"key": "invitedUserEmailAddress", "value": "oops360@gmail.com"}]
    })
}

fn replay(file: &Path, extra: &[&str]) -> Output {
    common::run(
        Command::new(env!("CARGO_BIN_EXE_rulepack"))
            .current_dir(common::repo())
            .arg("replay")
            .args(extra)
            .arg("--events")
            .arg(file),
    )
}

/// The hit lines without the file and the record index.
fn hits(out: &Output) -> Vec<Value> {
    assert!(out.status.success(), "{}", common::report("replay", out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut h: Value = serde_json::from_str(l).unwrap();
            let m = h.as_object_mut().unwrap();
            m.remove("file");
            m.remove("record");
            h
        })
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_broken_line_swallows_nothing_after_it() {
    let r = invitation();
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.jsonl");
    let broken = dir.path().join("broken.jsonl");
    let tail = format!("[{r},{r}]\n[{r}]\n{r}\n");
    std::fs::write(&clean, &tail).unwrap();
    // Issue 15's case: a truncated line, then an array of two records, a one-record array and a
    // plain record. Each kind of break: an open bracket, an open string, a dangling escape.
    for head in [
        "{\"activityDisplayName\": \"Invite external user\", \"targetResources\": [\n",
        "{\"activityDisplayName\": \"Invite ext\n",
        "{\"activityDisplayName\": \"Invite ext\\\n",
        "[{\"activityDisplayName\": {\n",
    ] {
        std::fs::write(&broken, format!("{head}{tail}")).unwrap();
        let (want, got) = (replay(&clean, &[]), replay(&broken, &[]));
        assert!(!hits(&want).is_empty());
        assert_eq!(hits(&got), hits(&want), "after {head:?}");
        let err = stderr(&got);
        assert!(
            err.contains("replay: 5 records read from 1 file, 4 evaluated, 1 skipped"),
            "after {head:?}:\n{err}"
        );
        assert!(err.contains("skipped: 1 malformed JSON"), "{err}");
        assert!(err.contains(": record 0 (line 1"), "{err}");
    }
}

#[test]
fn a_multibyte_character_in_a_time_is_a_skipped_record() {
    let mut r = invitation();
    r["activityDateTime"] = json!("2023-01-01T00:00:00é0:00");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("times.jsonl");
    std::fs::write(&file, format!("{r}\n{}\n", invitation())).unwrap();
    let out = replay(&file, &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{}", common::report("replay", &out));
    assert!(
        err.contains("replay: 2 records read from 1 file, 1 evaluated, 1 skipped"),
        "{err}"
    );
    assert!(
        err.contains("record 0 (line 1): unreadable time: `2023-01-01T00:00:00é0:00`"),
        "{err}"
    );
}

#[test]
fn a_huge_worker_count_is_refused_with_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.jsonl");
    std::fs::write(&file, format!("{}\n", invitation())).unwrap();
    for n in ["100000000000000", "18446744073709551615", "0", "257"] {
        let out = replay(&file, &["--workers", n]);
        assert_eq!(out.status.code(), Some(2), "{}", common::report(n, &out));
        assert!(stderr(&out).contains("1..=256"), "{}", stderr(&out));
    }
    assert!(replay(&file, &["--workers", "256"]).status.success());
}

#[test]
fn unknown_shape_keys_are_not_kept_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.jsonl");
    // 30 records, each with one 200,000-character key (multibyte, so a byte cut would panic).
    let key = "é".repeat(100_000) + &"k".repeat(100_000);
    let text: String = (0..30)
        .map(|i| format!("{}\n", json!({ format!("{i}{key}"): 1 })))
        .collect();
    std::fs::write(&file, text).unwrap();
    let out = replay(&file, &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{}", common::report("replay", &out));
    assert!(err.contains("skipped: 30 unknown shape"), "{err}");
    assert!(err.len() < 30 * 400, "{} bytes of summary", err.len());
}

#[test]
fn a_record_over_the_limit_is_skipped_and_the_next_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.jsonl");
    // Over the text limit, then a record, then under the text limit but over the budget of
    // parsed values (two bytes of text each: the amplification that took 4.5 GB).
    let text_limit = rulepack::replay::MAX_RECORD;
    let over_text = "0,".repeat(text_limit / 2 + 1);
    let over_values = "0,".repeat(1 << 20);
    assert!(over_values.len() < text_limit);
    let text = format!(
        "{{\"a\": [{over_text}0]}}\n{}\n{{\"a\": [{over_values}0]}}\n",
        invitation()
    );
    std::fs::write(&file, text).unwrap();
    let out = replay(&file, &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{}", common::report("replay", &out));
    assert!(
        err.contains("replay: 3 records read from 1 file, 1 evaluated, 2 skipped"),
        "{err}"
    );
    assert!(err.contains("skipped: 2 too large"), "{err}");
}

/// N invitations of one guest, then N redemptions stamped an hour earlier: each redemption closes
/// nothing, and used to walk every open window of the key (quadratic).
#[test]
fn out_of_order_absence_records_close_nothing() {
    let n = 2_000;
    let invite = invitation();
    let redeem = json!({
        "category": "UserManagement",
        "result": "success",
        "activityDisplayName": "Redeem external user invite",
        "activityDateTime": "2026-11-02T09:00:00Z",
        "loggedByService": "B2B Invitation",
        "operationType": "Update",
        "initiatedBy": {"user": {"userPrincipalName": "oops360@gmail.com"}},
        "targetResources": [{"id": "f416526a-17ee-4129-8ca9-f5ee55f69f34", "type": "User", "displayName": "UPN: oops360@gmail.com, Email: oops360@gmail.com"}],
        "additionalDetails": []
    });
    let mut text = String::new();
    for _ in 0..n {
        text.push_str(&format!("{invite}\n"));
    }
    for _ in 0..n {
        text.push_str(&format!("{redeem}\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("absence.jsonl");
    std::fs::write(&file, text).unwrap();
    let start = Instant::now();
    let out = replay(&file, &[]);
    let took = start.elapsed();
    let err = stderr(&out);
    assert!(out.status.success(), "{}", common::report("replay", &out));
    assert!(err.contains(&format!("{} records read", 2 * n)), "{err}");
    assert!(
        err.contains(&format!("{n} windows still open")),
        "a redemption an hour before an invitation redeems nothing: {err}"
    );
    // The cost itself is checked in replay::correlation's unit tests, without the JSON around.
    assert!(took < Duration::from_secs(120), "{took:?}");
}
