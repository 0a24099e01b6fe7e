//! One snapshot per rule per artifact (and of its IR), plus one per pack artifact: a changed
//! output fails until a reviewer has read it (`cargo insta review`).

mod common;

use rulepack::lower::lower;

#[test]
fn every_rule_every_artifact() {
    let pack = common::compile_pack();
    insta::glob!("../rules", "*.yml", |path| {
        let name = path.file_stem().unwrap().to_str().unwrap();
        let rule = pack
            .rules
            .iter()
            .find(|r| r.name.0 == name)
            .unwrap_or_else(|| panic!("{name}: file name and rule name differ"));
        let ls = pack
            .logsources
            .iter()
            .find(|l| l.name == rule.logsource)
            .unwrap();
        insta::with_settings!({ prepend_module_to_snapshot => false }, {
            match (rule.condition(), rule.correlation()) {
                (Some(c), _) => insta::assert_yaml_snapshot!("ir", lower(c, ls)),
                (None, Some(c)) => insta::assert_yaml_snapshot!("ir", c),
                (None, None) => unreachable!("a validated rule has one or the other"),
            }
        });
        let mut queries = 0;
        for a in pack
            .artifacts
            .iter()
            .filter(|a| a.rule.as_deref() == Some(name))
        {
            let backend = a
                .path
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_str()
                .unwrap();
            // The query keeps the backend's name; other files add what follows the rule name.
            let snapshot = if a.primary {
                queries += 1;
                backend.to_string()
            } else {
                let file = a.path.file_name().unwrap().to_str().unwrap();
                format!(
                    "{backend}-{}",
                    file.split_once(name)
                        .map_or(file, |(_, rest)| rest)
                        .trim_start_matches('.')
                )
            };
            insta::with_settings!({ prepend_module_to_snapshot => false }, {
                insta::assert_snapshot!(snapshot, a.content.as_str());
            });
        }
        // A backend that cannot express a rule leaves it out, and says so in a warning.
        let omitted = pack
            .warnings
            .iter()
            .filter(|w| {
                w.code == rulepack::diag::Code::Omitted && w.message.contains(&format!("`{name}`"))
            })
            .count();
        assert_eq!(
            queries + omitted,
            rulepack::render::BACKENDS.len(),
            "{name}: one query per backend that does not omit it"
        );
    });
}

#[test]
fn every_pack_artifact() {
    let pack = common::compile_pack();
    for a in pack.artifacts.iter().filter(|a| a.rule.is_none()) {
        let name = a.path.to_str().unwrap().replace(['/', '\\'], "__");
        insta::with_settings!({ prepend_module_to_snapshot => false, snapshot_path => "snapshots/pack" }, {
            insta::assert_snapshot!(name, a.content.as_str());
        });
    }
}
