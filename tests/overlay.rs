//! `--templates DIR` overlays the shipped templates file by file; a broken user template is
//! reported with its own file and position.

mod common;

use std::process::Command;

fn build(overlay: &std::path::Path, out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .current_dir(common::repo())
        .env("NO_COLOR", "1")
        .args(["build", "--templates"])
        .arg(overlay)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn a_team_template_overrides_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let overlay = tmp.path().join("mine");
    std::fs::create_dir_all(overlay.join("sentinel")).unwrap();
    let shipped =
        std::fs::read_to_string(common::repo().join("templates/sentinel/rule.kql")).unwrap();
    std::fs::write(
        overlay.join("sentinel/rule.kql"),
        format!("// reviewed by the SOC team\n{shipped}"),
    )
    .unwrap();
    let res = build(&overlay, &tmp.path().join("out"));
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let kql = std::fs::read_to_string(tmp.path().join("out/sentinel/guest_invited.kql")).unwrap();
    assert!(
        kql.starts_with("// reviewed by the SOC team\n// Entra ID External Guest User Invited"),
        "{kql}"
    );
    let spl = std::fs::read_to_string(tmp.path().join("out/splunk/guest_invited.spl")).unwrap();
    assert_eq!(
        spl,
        std::fs::read_to_string(common::repo().join("out/splunk/guest_invited.spl")).unwrap()
    );
}

#[test]
fn a_broken_team_template_names_its_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let overlay = tmp.path().join("mine");
    std::fs::create_dir_all(overlay.join("splunk")).unwrap();
    std::fs::write(
        overlay.join("splunk/rule.spl"),
        "`{{ c.macro }}`\n| where {{ rule.title | no_such_filter }}\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let res = build(&overlay, &out);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error[R090]") && stderr.contains("no_such_filter"),
        "{stderr}"
    );
    assert!(
        stderr.contains("mine/splunk/rule.spl:2:25"),
        "the template's own file, line and column: {stderr}"
    );
    assert!(!out.exists(), "nothing may be written");
}

/// A pack template sees of each rule only its pieces and the variables `pack_vars` names
/// (backend.yml). A team's pack template written when pack templates saw every rule variable
/// (here the Sentinel pack's loop as it was shipped before, which read each rule's query) is an
/// error naming its file and saying what a pack template can read, not a silent empty output.
#[test]
fn a_pack_template_reading_what_pack_templates_no_longer_see_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let overlay = tmp.path().join("mine");
    std::fs::create_dir_all(overlay.join("sentinel")).unwrap();
    let shipped =
        std::fs::read_to_string(common::repo().join("templates/sentinel/pack.arm.json")).unwrap();
    let before = "{%- set query = r.primary | drop_lines(starting_with=\"//\") %}\n    \
        {{ <sentinel_arm.resource rule={r.rule} c={c} query={query} agg={r.agg} sched={r.sched} \
        settings={r.settings} corr={r.corr}/> }}";
    assert!(shipped.contains("    {{ r.pieces.arm_resource }}"));
    std::fs::write(
        overlay.join("sentinel/pack.arm.json"),
        shipped.replace("    {{ r.pieces.arm_resource }}", before),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let res = build(&overlay, &out);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error[R090]")
            && stderr.contains("got `undefined`")
            && stderr.contains("mine/sentinel/pack.arm.json:")
            && stderr.contains(
                "a pack template sees only its `pieces` and the variables `pack_vars` names"
            ),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing may be written");

    // Printed as it is, the missing variable is named.
    std::fs::write(
        overlay.join("sentinel/pack.arm.json"),
        shipped.replace("{{ r.pieces.arm_resource }}", "{{ r.primary }}"),
    )
    .unwrap();
    let res = build(&overlay, &out);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Field `primary` is not defined. Available fields: pieces, rule, sched"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing may be written");
}

/// Tera gives a filter the undefined value of a path that leads nowhere (so that `default` can
/// replace it); `json` would write it as `null`. A misspelt name under `json` is an error at the
/// template's line instead, in a rule's template and in a pack template alike.
#[test]
fn a_misspelt_name_under_json_is_an_error_not_null() {
    let tmp = tempfile::tempdir().unwrap();
    let overlay = tmp.path().join("mine");
    std::fs::create_dir_all(overlay.join("sentinel")).unwrap();
    let out = tmp.path().join("out");
    for (file, from, to) in [
        (
            "rule.arm.json",
            "{{ c.arm.api_version | json }}",
            "{{ c.arm.api_versoin | json }}",
        ),
        (
            "pack.arm.json",
            "    {{ r.pieces.arm_resource }}",
            "    {{ r.primary | json }}",
        ),
    ] {
        let shipped =
            std::fs::read_to_string(common::repo().join("templates/sentinel").join(file)).unwrap();
        assert!(shipped.contains(from), "{from}");
        let text = shipped.replacen(from, to, 1);
        let line = text[..text.find(to).unwrap()].matches('\n').count() + 1;
        std::fs::write(overlay.join("sentinel").join(file), text).unwrap();
        let res = build(&overlay, &out);
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{file}: {stderr}");
        assert!(
            stderr.contains("error[R090]")
                && stderr.contains("`json` was given an undefined value")
                && stderr.contains(&format!("mine/sentinel/{file}:{line}:")),
            "{file}: {stderr}"
        );
        assert!(!out.exists(), "nothing may be written");
        std::fs::remove_file(overlay.join("sentinel").join(file)).unwrap();
    }
}
