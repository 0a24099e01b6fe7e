//! Stage 5, write: artifacts → the output folder, all or nothing. The new tree is built in a
//! temporary folder beside the old one and swapped in with renames, so a failed or interrupted
//! build leaves the previous `out/` exactly as it was.

use crate::render::Artifact;
use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

/// The new content of `out`, written file by file (from any thread) into a temporary folder
/// beside it; `commit` swaps it in. Dropped without `commit`, it removes itself and `out` is
/// untouched.
pub struct Staging {
    out: PathBuf,
    parent: PathBuf,
    dir: tempfile::TempDir,
}

impl Staging {
    pub fn new(out: &Path) -> io::Result<Staging> {
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)?;
        let dir = tempfile::Builder::new()
            .prefix(".rulepack-build-")
            .tempdir_in(&parent)?;
        Ok(Staging {
            out: out.to_path_buf(),
            parent,
            dir,
        })
    }

    /// Writes each artifact at its path, creating folders as needed.
    pub fn write(&self, artifacts: &[Artifact]) -> io::Result<()> {
        for a in artifacts {
            check_relative(&a.path)?;
            let path = self.dir.path().join(&a.path);
            // Folders are few and files many: create a folder only when a write needs it.
            match std::fs::write(&path, &a.content) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    std::fs::write(&path, &a.content)?;
                }
                r => r?,
            }
        }
        Ok(())
    }

    /// Replaces `out` with what was written.
    pub fn commit(self) -> io::Result<()> {
        let (out, parent) = (self.out, self.parent);
        let fresh = self.dir.keep();
        if out.exists() {
            let old = tempfile::Builder::new()
                .prefix(".rulepack-old-")
                .tempdir_in(&parent)?;
            let old_path = old.keep();
            std::fs::remove_dir(&old_path)?;
            std::fs::rename(&out, &old_path)?;
            if let Err(e) = std::fs::rename(&fresh, &out) {
                // Put the previous output back before reporting.
                std::fs::rename(&old_path, &out)?;
                let _ = std::fs::remove_dir_all(&fresh);
                return Err(e);
            }
            std::fs::remove_dir_all(&old_path)?;
        } else {
            std::fs::rename(&fresh, &out)?;
        }
        Ok(())
    }
}

/// Artifact paths come from validated slugs; refuse anything that could leave the folder anyway.
fn check_relative(path: &Path) -> io::Result<()> {
    let ok = path.components().all(|c| matches!(c, Component::Normal(_)))
        && path.components().count() > 0;
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "refusing to write outside the output folder: {}",
                path.display()
            ),
        ))
    }
}

/// How `out` differs from `artifacts`: (path, what) for every file added, changed or removed.
pub fn differences(out: &Path, artifacts: &[Artifact]) -> io::Result<Vec<(PathBuf, &'static str)>> {
    let mut on_disk = if out.exists() {
        read_tree(out)?
    } else {
        BTreeMap::new()
    };
    let mut diffs = Vec::new();
    for a in artifacts {
        match on_disk.remove(&a.path) {
            None => diffs.push((a.path.clone(), "missing")),
            Some(bytes) if bytes != a.content.as_bytes() => diffs.push((a.path.clone(), "differs")),
            Some(_) => {}
        }
    }
    diffs.extend(
        on_disk
            .into_keys()
            .map(|p| (p, "not produced by the rules")),
    );
    diffs.sort();
    Ok(diffs)
}

/// Every file under `root`, by path relative to it.
pub fn read_tree(root: &Path) -> io::Result<BTreeMap<PathBuf, Vec<u8>>> {
    let mut out = BTreeMap::new();
    collect(root, root, &mut out)?;
    Ok(out)
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else {
            let rel = path
                .strip_prefix(root)
                .map_err(io::Error::other)?
                .to_path_buf();
            out.insert(rel, std::fs::read(&path)?);
        }
    }
    Ok(())
}
