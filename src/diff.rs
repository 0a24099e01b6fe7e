//! `rulepack diff BASE`: what a change does to the built pack, per rule, as Markdown for a
//! pull-request comment, so a reviewer sees the meaning of a change before the raw diff.

use crate::render::Artifact;
use similar::TextDiff;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Files of a built pack: path (relative to the output folder) → content.
pub type Files = BTreeMap<PathBuf, String>;

/// The base build: an output folder, or the output folder at a git revision.
pub fn base_files(base: &str, root: &Path, out: &Path) -> Result<Files, String> {
    let dir = Path::new(base);
    if dir.is_dir() {
        let tree = crate::write::read_tree(dir).map_err(|e| format!("cannot read {base}: {e}"))?;
        return Ok(tree
            .into_iter()
            .map(|(p, b)| (p, String::from_utf8_lossy(&b).into_owned()))
            .collect());
    }
    let prefix = out.to_string_lossy().trim_end_matches('/').to_string();
    let git = |args: &[&str]| -> Result<String, String> {
        let o = Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if o.status.success() {
            String::from_utf8(o.stdout).map_err(|e| e.to_string())
        } else {
            Err(format!(
                "`{base}` is neither a folder nor a git revision: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
    };
    let mut files = Files::new();
    for path in git(&["ls-tree", "-r", "--name-only", base, "--", &prefix])?.lines() {
        // `./` makes the path relative to the pack root, where `ls-tree` listed it.
        let content = git(&["show", &format!("{base}:./{path}")])?;
        let rel = Path::new(path)
            .strip_prefix(&prefix)
            .map_err(|e| e.to_string())?;
        files.insert(rel.to_path_buf(), content);
    }
    Ok(files)
}

/// The rule an artifact belongs to, by file name; pack-level files belong to "the pack".
fn owner(path: &Path, rule_names: &[String]) -> String {
    let stem = path.file_name().and_then(|s| s.to_str()).unwrap_or("");
    let stem = stem.split('.').next().unwrap_or("");
    let stem = stem.strip_prefix("azure_").unwrap_or(stem);
    rule_names
        .iter()
        .find(|n| *n == stem)
        .cloned()
        .unwrap_or_else(|| "the pack".into())
}

pub fn markdown(
    base_label: &str,
    base: &Files,
    head: &[Artifact],
    rule_names: &[String],
) -> String {
    let head: Files = head
        .iter()
        .map(|a| (a.path.clone(), a.content.clone()))
        .collect();
    let mut per_owner: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let paths: std::collections::BTreeSet<&PathBuf> = base.keys().chain(head.keys()).collect();
    let mut counts = (0, 0, 0);
    for path in paths {
        let shown = path.display();
        let entry = match (base.get(path), head.get(path)) {
            (None, Some(_)) => {
                counts.0 += 1;
                format!("- added `{shown}`")
            }
            (Some(_), None) => {
                counts.1 += 1;
                format!("- removed `{shown}`")
            }
            (Some(a), Some(b)) if a != b => {
                counts.2 += 1;
                let diff = TextDiff::from_lines(a, b);
                let body = diff.unified_diff().context_radius(1).to_string();
                let body: String = body
                    .lines()
                    .filter(|l| !l.starts_with("@@"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                format!("- changed `{shown}`\n\n```diff\n{body}```")
            }
            _ => continue,
        };
        per_owner
            .entry(owner(path, rule_names))
            .or_default()
            .push(entry);
    }
    let mut md = format!("## rulepack: changes against `{base_label}`\n\n");
    if per_owner.is_empty() {
        md.push_str("No artifact changed.\n");
        return md;
    }
    md.push_str(&format!(
        "{} added, {} removed, {} changed.\n",
        counts.0, counts.1, counts.2
    ));
    for (who, entries) in per_owner {
        md.push_str(&format!("\n### {who}\n\n{}\n", entries.join("\n\n")));
    }
    md
}
