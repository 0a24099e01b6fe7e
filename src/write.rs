//! Stage 5, write: artifacts → the output folder, all or nothing. The new tree is built in a
//! temporary folder beside the old one and swapped in with renames, so a failed or interrupted
//! build leaves the previous `out/` exactly as it was.

use crate::load::files;
use crate::render::{Artifact, PackSink};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// Every scratch folder rulepack makes starts with this, beside the folder it replaces; the
/// loaders never read such a folder, and `init`'s `.gitignore` lists `.rulepack-*`.
pub const SCRATCH_PREFIX: &str = ".rulepack-";
const STAGING: &str = ".rulepack-staging-";
const OLD: &str = ".rulepack-old-";

/// Staging folders of this process not yet committed: what an interrupt removes. Commits hold
/// the lock through their renames, so an interrupt never lands between them.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The new content of `out`, written file by file (from any thread) into a staging folder
/// beside it (`.rulepack-staging-<pid>-…`); `commit` swaps it in. Dropped without `commit`, it
/// removes itself and `out` is untouched. A process killed outright leaves its staging folder,
/// and the next `Staging::new` beside the same folder removes it.
pub struct Staging {
    out: PathBuf,
    parent: PathBuf,
    dir: Option<PathBuf>,
}

impl Staging {
    pub fn new(out: &Path) -> io::Result<Staging> {
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)?;
        recover_stale(&parent, out)?;
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::Builder::new()
            .prefix(&format!("{STAGING}{}-", std::process::id()))
            .tempdir_in(&parent)?
            .keep();
        live.push(dir.clone());
        Ok(Staging {
            out: out.to_path_buf(),
            parent,
            dir: Some(dir),
        })
    }

    fn root(&self) -> &Path {
        self.dir.as_deref().unwrap_or(Path::new(""))
    }

    /// Writes each artifact at its path, creating folders as needed.
    pub fn write(&self, artifacts: &[Artifact]) -> io::Result<()> {
        for a in artifacts {
            self.write_file(&a.path, a.content.as_bytes())?;
        }
        Ok(())
    }

    /// Writes one file at `rel`, creating the folders below the staging folder as needed.
    pub fn write_file(&self, rel: &Path, content: &[u8]) -> io::Result<()> {
        self.in_folders(rel, |path| std::fs::write(path, content))
    }

    /// Runs `make` on the path of `rel` in the staging folder, creating the folders below the
    /// staging folder as needed but never the staging folder itself: once an interrupt removed
    /// it, writes fail instead of bringing it back.
    fn in_folders<T>(&self, rel: &Path, make: impl Fn(&Path) -> io::Result<T>) -> io::Result<T> {
        check_relative(rel)?;
        let path = self.root().join(rel);
        // Folders are few and files many: create a folder only when a write needs it.
        match make(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut dir = self.root().to_path_buf();
                for c in rel.parent().into_iter().flat_map(Path::components) {
                    dir.push(c);
                    match std::fs::create_dir(&dir) {
                        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                        _ => {}
                    }
                }
                make(&path)
            }
            r => r,
        }
    }

    /// Replaces `out` with what was written.
    pub fn commit(mut self) -> io::Result<()> {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = self.dir.take().unwrap_or_default();
        live.retain(|d| *d != fresh);
        let result = swap(&fresh, &self.out, &self.parent);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&fresh);
        }
        result
    }
}

/// A pack artifact streams into its staging file as it renders.
impl PackSink for Staging {
    type File = io::BufWriter<std::fs::File>;
    /// Files written.
    type Done = usize;

    fn create(&self, path: &Path) -> io::Result<Self::File> {
        let file = self.in_folders(path, |p| std::fs::File::create(p))?;
        Ok(io::BufWriter::with_capacity(1 << 16, file))
    }

    fn finish(&self, _: PathBuf, file: Self::File) -> io::Result<usize> {
        file.into_inner().map_err(io::IntoInnerError::into_error)?;
        Ok(1)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
            live.retain(|d| *d != dir);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// Puts `fresh` in place of `out`. The previous `out` waits under a name the next build
/// recognises (`.rulepack-old-<pid>-<out>`), so a kill between the two renames loses nothing.
fn swap(fresh: &Path, out: &Path, parent: &Path) -> io::Result<()> {
    if std::fs::symlink_metadata(out).is_err() {
        return std::fs::rename(fresh, out);
    }
    let old = parent.join(old_name(std::process::id(), out));
    std::fs::rename(out, &old)?;
    if let Err(e) = std::fs::rename(fresh, out) {
        // Put the previous output back before reporting.
        std::fs::rename(&old, out)?;
        return Err(e);
    }
    std::fs::remove_dir_all(&old)
}

fn old_name(pid: u32, out: &Path) -> OsString {
    let mut name = OsString::from(format!("{OLD}{pid}-"));
    name.push(out.file_name().unwrap_or_default());
    name
}

/// Removes what killed builds left beside `out`: their staging folders, and a previous output
/// whose replacement was already in place; a previous output whose replacement never arrived
/// goes back to `out`. Folders of live processes are left alone.
fn recover_stale(parent: &Path, out: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(parent)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let (rest, staging) = match (name.strip_prefix(STAGING), name.strip_prefix(OLD)) {
            (Some(rest), _) => (rest, true),
            (_, Some(rest)) => (rest, false),
            _ => continue,
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if alive(pid) {
            continue;
        }
        let path = entry.path();
        if staging {
            std::fs::remove_dir_all(&path)?;
        } else if path.file_name() == Some(&old_name(pid, out)) {
            if std::fs::symlink_metadata(out).is_err() {
                std::fs::rename(&path, out)?;
            } else {
                std::fs::remove_dir_all(&path)?;
            }
        }
    }
    Ok(())
}

/// Whether a process with this id exists (conservatively yes where that cannot be asked).
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: kill with signal 0 only checks for the process; it sends nothing.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    true
}

/// Removes every staging folder of this process: called from the interrupt handler, which then
/// exits. Holds the lock until the process ends, so no commit starts meanwhile.
pub fn abandon_all() {
    let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    for dir in live.iter() {
        abandon(dir);
    }
    std::mem::forget(live);
}

/// Workers may still be writing into `dir`. Renaming it first stops new files appearing in it
/// (their paths name the old folder, and `write_file` never recreates it); removal then only
/// races with the writes already in flight, so it is retried until the folder is gone. The new
/// name keeps this process's staging prefix, so a kill meanwhile is cleaned up by the next build.
fn abandon(dir: &Path) {
    let mut dead = dir.as_os_str().to_owned();
    dead.push("-abandoned");
    let dead = PathBuf::from(dead);
    let target = if std::fs::rename(dir, &dead).is_ok() {
        dead
    } else {
        dir.to_path_buf()
    };
    let start = std::time::Instant::now();
    while std::fs::symlink_metadata(&target).is_ok()
        && std::fs::remove_dir_all(&target).is_err()
        && start.elapsed() < std::time::Duration::from_secs(5)
    {
        std::thread::yield_now();
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

/// An output file is at most this large; larger ones are not what a build writes.
const MAX_OUTPUT_FILE: u64 = 256 << 20;

/// Links are not followed (a loop would never end) and special files are not read: both are
/// errors, since a build writes neither.
fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            collect(root, &path, out)?;
        } else if meta.is_file() {
            let rel = path
                .strip_prefix(root)
                .map_err(io::Error::other)?
                .to_path_buf();
            out.insert(rel, files::read_bounded(&path, MAX_OUTPUT_FILE)?);
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is {}, which a build never writes",
                    path.display(),
                    files::kind(&meta)
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// The interrupt race: workers keep adding files in new subfolders while the folder is
    /// abandoned. Nothing may be left beside `out`, however the writes interleave.
    #[test]
    fn abandoning_while_workers_write_leaves_nothing() {
        for round in 0..20 {
            let parent = tempfile::tempdir().unwrap();
            let staging = Staging::new(&parent.path().join("out")).unwrap();
            let stop = AtomicBool::new(false);
            std::thread::scope(|s| {
                for worker in 0..4 {
                    let (staging, stop) = (&staging, &stop);
                    s.spawn(move || {
                        let mut i = 0;
                        while !stop.load(Ordering::Relaxed) {
                            let rel = format!("d{}/w{worker}/f{i}.txt", i % 7);
                            let _ = staging.write_file(Path::new(&rel), b"x");
                            i += 1;
                        }
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(5 + round));
                abandon(staging.root());
                // Writes that go on after the abandon must not bring anything back.
                std::thread::sleep(std::time::Duration::from_millis(5));
                stop.store(true, Ordering::Relaxed);
            });
            let left: Vec<_> = std::fs::read_dir(parent.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(left.is_empty(), "round {round}: {left:?}");
        }
    }
}
