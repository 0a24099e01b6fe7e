//! The templates and log sources rulepack renders with: the shipped set compiled into the
//! binary (by `build.rs`, from `templates/`), with a team's folder (`--templates DIR`) laid over
//! it file by file. Shipped files are named `<builtin>/…` in diagnostics, a stable path that
//! does not depend on where the binary was built.

use crate::diag::{Code, Diagnostic};
use crate::load::read_source;
use crate::source::{FileId, SourceMap};
use std::path::{Path, PathBuf};

/// Every shipped file: its path relative to `templates/`, and its text.
pub const SHIPPED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/shipped_templates.rs"));

/// How shipped files are named in diagnostics and the source map.
pub const BUILTIN: &str = "<builtin>";

/// The shipped set, optionally overlaid by a team's folder.
#[derive(Clone, Debug, Default)]
pub struct Templates {
    pub overlay: Option<PathBuf>,
}

impl Templates {
    pub fn new(overlay: Option<PathBuf>) -> Templates {
        Templates { overlay }
    }

    /// The file `rel` (e.g. `sentinel/rule.kql`): the overlay's copy when it has one, else the
    /// shipped one.
    pub fn read(&self, rel: &str, sources: &mut SourceMap) -> Result<FileId, Diagnostic> {
        if let Some(dir) = &self.overlay {
            // Names and links that lead out of the overlay are refused, never read.
            let p = crate::load::files::inside(dir, rel).map_err(|why| {
                Diagnostic::error(Code::Template, format!("`{rel}` {why}"))
                    .in_file(dir.join(rel))
                    .help("keep every overlay file inside the overlay folder, as a regular file")
            })?;
            if std::fs::symlink_metadata(&p).is_ok() {
                return read_source(&p, sources);
            }
        }
        match SHIPPED.iter().find(|(path, _)| *path == rel) {
            Some((_, text)) => Ok(sources.add(&builtin_path(rel), (*text).to_string())),
            None => Err(Diagnostic::error(
                Code::Template,
                format!("no template `{rel}`, shipped or in the overlay"),
            )
            .in_file(self.overlay_or_builtin().join(rel))
            .help("every file named in backend.yml must exist in the backend folder")),
        }
    }

    /// The `*.yml` files directly under `dir` (e.g. `logsources`), shipped and overlaid, by name.
    pub fn list(&self, dir: &str) -> Result<Vec<String>, Diagnostic> {
        let prefix = format!("{dir}/");
        let mut names: Vec<String> = SHIPPED
            .iter()
            .filter_map(|(p, _)| p.strip_prefix(&prefix))
            .filter(|n| !n.contains('/') && is_yaml(n))
            .map(|n| format!("{prefix}{n}"))
            .collect();
        if let Some(over) = &self.overlay {
            let folder = over.join(dir);
            if folder.is_dir() {
                let entries = std::fs::read_dir(&folder).map_err(|e| {
                    Diagnostic::error(Code::Io, format!("cannot read the overlay folder: {e}"))
                        .in_file(&folder)
                })?;
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if e.path().is_file() && is_yaml(&name) {
                        names.push(format!("{prefix}{name}"));
                    }
                }
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn overlay_or_builtin(&self) -> PathBuf {
        self.overlay
            .clone()
            .unwrap_or_else(|| PathBuf::from(BUILTIN))
    }
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yml") || name.ends_with(".yaml")
}

/// `<builtin>/sentinel/rule.kql`.
pub fn builtin_path(rel: &str) -> PathBuf {
    Path::new(BUILTIN).join(rel)
}

/// Writes the shipped set under `dir` (`rulepack templates export`). Refuses, before writing
/// anything, when a file would be replaced and `force` is off. Returns the files written.
pub fn export(dir: &Path, force: bool) -> Result<Vec<PathBuf>, String> {
    let targets: Vec<(PathBuf, &str)> = SHIPPED
        .iter()
        .map(|(rel, text)| (dir.join(rel), *text))
        .collect();
    if !force {
        let existing: Vec<String> = targets
            .iter()
            .filter(|(p, _)| p.exists())
            .map(|(p, _)| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(format!(
                "{} file(s) already exist, e.g. {}; nothing was written (pass --force to replace them)",
                existing.len(),
                existing[0]
            ));
        }
    }
    let mut written = Vec::new();
    for (p, text) in targets {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        written.push(p);
    }
    Ok(written)
}
