//! One snapshot per rule per artifact (and of its IR): a changed output fails until a reviewer
//! has read it (`cargo insta review`).

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
            insta::assert_yaml_snapshot!("ir", lower(&rule.condition, ls));
        });
        let mut seen = 0;
        for a in pack.artifacts.iter().filter(|a| {
            a.path
                .file_stem()
                .unwrap()
                .to_str()
                .unwrap()
                .ends_with(name)
        }) {
            let backend = a
                .path
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_str()
                .unwrap()
                .to_string();
            seen += 1;
            insta::with_settings!({ prepend_module_to_snapshot => false }, {
                insta::assert_snapshot!(backend.as_str(), a.content.as_str());
            });
        }
        assert_eq!(
            seen,
            rulepack::render::BACKENDS.len(),
            "{name}: one artifact per backend"
        );
    });
}
