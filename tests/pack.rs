//! rulepack as a tool for any pack: the manifest and how the pack root is found, `init`, `new`,
//! `templates export`, and diagnostics for the templates compiled into the binary.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn rulepack(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rulepack"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_bad_manifest_is_an_error_at_its_value_and_nothing_is_written() {
    insta::glob!("fixtures/manifests", "*/rulepack.yml", |path| {
        let dir = path.parent().unwrap();
        let rel = dir.strip_prefix(common::repo()).unwrap().to_str().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let o = rulepack(
            &common::repo(),
            &[
                "--pack",
                rel,
                "build",
                "--rules",
                "rules",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{rel}: {err}");
        assert!(
            err.contains(&format!("--> {rel}/rulepack.yml:")),
            "{rel}: no position: {err}"
        );
        assert!(!out.exists(), "{rel}: nothing may be written");
        insta::with_settings!({ prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!("manifest", err);
        });
    });
}

#[test]
fn without_a_manifest_it_says_where_it_looked_and_what_to_run() {
    let tmp = tempfile::tempdir().unwrap();
    let o = rulepack(tmp.path(), &["build"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "error[R080]: no rulepack.yml in {} or any folder above it",
            tmp.path().display()
        )),
        "{err}"
    );
    assert!(err.contains("run `rulepack init`"), "{err}");
    assert!(
        common::tree_names(tmp.path()).is_empty(),
        "nothing may be written"
    );
    let o = rulepack(tmp.path(), &["--pack", "nowhere", "check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no rulepack.yml in the pack folder nowhere"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_pack_root_is_found_from_a_subfolder() {
    let o = rulepack(&common::repo().join("rules"), &["check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rules = std::fs::read_dir(common::repo().join("rules"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "yml")
        })
        .count();
    assert!(
        stderr(&o).contains(&format!("checked {rules} rules")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn init_writes_a_pack_whose_example_passes_its_tests() {
    let tmp = tempfile::tempdir().unwrap();
    let o = rulepack(tmp.path(), &["init", "my-pack", "--author", "Blue Team"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let pack = tmp.path().join("my-pack");
    assert_eq!(
        common::tree_names(&pack),
        [
            ".github/workflows/rulepack.yml",
            ".gitignore",
            ".vscode/rule.schema.json",
            ".vscode/settings.json",
            "rulepack.yml",
            "rules/role_member_added.yml",
            "rules/versions.lock",
        ]
    );
    let manifest = std::fs::read_to_string(pack.join("rulepack.yml")).unwrap();
    assert!(
        manifest.contains("name: my-pack\n")
            && manifest.contains("author: Blue Team\n")
            && manifest.contains("app_id: my_pack\n"),
        "{manifest}"
    );
    let rule = std::fs::read_to_string(pack.join("rules/role_member_added.yml")).unwrap();
    assert!(
        rule.starts_with("# yaml-language-server: $schema=../.vscode/rule.schema.json\n"),
        "{rule}"
    );
    let workflow = std::fs::read_to_string(pack.join(".github/workflows/rulepack.yml")).unwrap();
    for step in [
        "rulepack check",
        "rulepack test",
        "rulepack build --check",
        "rulepack diff",
        "rulepack package",
        "--tag \"${{ vars.RULEPACK_TAG }}\"",
    ] {
        assert!(workflow.contains(step), "{step} not in the workflow");
    }
    // The example is locked, its tests pass and tell it from every mutant.
    let o = rulepack(&pack, &["test"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(
        !out.contains("WEAK") && out.contains("ok   role_member_added"),
        "{out}"
    );
    assert!(!stderr(&o).contains("W110"), "{}", stderr(&o));
    assert!(rulepack(&pack, &["build"]).status.success());
    let o = rulepack(&pack, &["build", "--check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(pack.join("out/splunk/my_pack/default/app.conf").is_file());

    // A second init in the same folder is refused and changes nothing.
    let before = common::tree_names(&pack);
    let o = rulepack(&pack, &["init"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("already holds a pack"),
        "{}",
        stderr(&o)
    );
    assert_eq!(common::tree_names(&pack), before);
}

#[test]
fn new_writes_a_fresh_rule_or_a_copy_and_refuses_bad_names() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(
        rulepack(tmp.path(), &["init", "--name", "p1", "--author", "A"])
            .status
            .success()
    );
    let dir = tmp.path();
    let o = rulepack(dir, &["new", "mfa_disabled"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let skeleton = std::fs::read_to_string(dir.join("rules/mfa_disabled.yml")).unwrap();
    let example = std::fs::read_to_string(dir.join("rules/role_member_added.yml")).unwrap();
    let id = |t: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix("id: "))
            .unwrap()
            .to_string()
    };
    assert_ne!(id(&skeleton), id(&example), "a fresh id");
    assert!(
        skeleton.contains("author: \"A\"\n") && skeleton.contains("version: 0.1.0\n"),
        "{skeleton}"
    );

    let o = rulepack(dir, &["new", "mfa_copy", "--from", "role_member_add"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no rule named `role_member_add` to copy")
            && stderr(&o).contains("did you mean `role_member_added`?"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.join("rules/mfa_copy.yml").exists());

    let o = rulepack(dir, &["new", "Bad-Name"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("invalid rule name `Bad-Name`"),
        "{}",
        stderr(&o)
    );
    let o = rulepack(dir, &["new", "mfa_disabled"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));

    let o = rulepack(dir, &["new", "mfa_copy", "--from", "role_member_added"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let copy = std::fs::read_to_string(dir.join("rules/mfa_copy.yml")).unwrap();
    let after = |t: &str, key: &str| t[t.find(key).unwrap()..].to_string();
    assert_eq!(
        after(&copy, "condition:"),
        after(&example, "condition:"),
        "logic and tests copied"
    );
    assert_ne!(id(&copy), id(&example));
    assert!(copy.contains("name: mfa_copy\n") && copy.contains("status: experimental\n"));
    // The new rules run, unlocked, with a warning; `lock` records them.
    let o = rulepack(dir, &["test"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning[W110]: version 0.1.0 of `mfa_copy` is not in the lock"));
    assert!(rulepack(dir, &["lock"]).status.success());
    assert!(!stderr(&rulepack(dir, &["check"])).contains("W110"));
}

#[test]
fn templates_export_writes_the_shipped_set_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mine");
    let o = rulepack(tmp.path(), &["templates", "export", "mine"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shipped = common::repo().join("templates");
    let names = common::tree_names(&shipped);
    assert_eq!(common::tree_names(&dir), names);
    for n in &names {
        assert_eq!(
            std::fs::read(dir.join(n)).unwrap(),
            std::fs::read(shipped.join(n)).unwrap(),
            "{n}"
        );
    }
    std::fs::write(dir.join("sentinel/rule.kql"), "edited\n").unwrap();
    let o = rulepack(tmp.path(), &["templates", "export", "mine"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("pass --force"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.join("sentinel/rule.kql")).unwrap(),
        "edited\n"
    );
    let o = rulepack(tmp.path(), &["templates", "export", "mine", "--force"]);
    assert!(o.status.success());
    // The exported set as an overlay builds the same pack.
    let out = tmp.path().join("out");
    let o = rulepack(
        &common::repo(),
        &[
            "build",
            "--templates",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let committed = common::repo().join("out");
    assert_eq!(common::tree_names(&out), common::tree_names(&committed));
    for n in common::tree_names(&out) {
        assert_eq!(
            std::fs::read(out.join(&n)).unwrap(),
            std::fs::read(committed.join(&n)).unwrap(),
            "{n}"
        );
    }
}

#[test]
fn a_shipped_template_is_named_by_a_stable_builtin_path() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("splunk")).unwrap();
    // An overlay field table without the `macro` constant the shipped rule.spl reads.
    let fields =
        std::fs::read_to_string(common::repo().join("templates/splunk/fields.yml")).unwrap();
    let without: String = fields
        .lines()
        .filter(|l| !l.starts_with("  macro: "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(tmp.path().join("splunk/fields.yml"), without).unwrap();
    let o = rulepack(
        &common::repo(),
        &["check", "--templates", tmp.path().to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1));
    let line = std::fs::read_to_string(common::repo().join("templates/splunk/rule.spl"))
        .unwrap()
        .lines()
        .position(|l| l.contains("c.macro"))
        .unwrap()
        + 1;
    assert!(
        stderr(&o).contains(&format!("--> <builtin>/splunk/rule.spl:{line}:")),
        "{}",
        stderr(&o)
    );
    // A broken overlay file is reported at its own file and line.
    std::fs::write(
        tmp.path().join("splunk/fields.yml"),
        "logsource: entra_audit\nconstants:\n  macro: [x\n",
    )
    .unwrap();
    let o = rulepack(
        &common::repo(),
        &["check", "--templates", tmp.path().to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!(
            "--> {}:3:10",
            tmp.path().join("splunk/fields.yml").display()
        )),
        "{}",
        stderr(&o)
    );
}
