//! Reading what a user's folders hold without trusting it. Only regular files are read (a FIFO
//! blocks forever, `/dev/zero` never ends), never more than a limit (enforced while reading, not
//! after), and folder walks stop at symlink loops and at links that leave the folder.

use std::collections::HashSet;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Why a file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// A FIFO, device, socket or folder where a file was expected: what it is.
    NotRegular(&'static str),
    /// Longer than the limit (in bytes).
    TooLarge(u64),
    Io(io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NotRegular(kind) => write!(f, "not a regular file but {kind}"),
            ReadError::TooLarge(limit) => write!(f, "file is over the {limit} byte limit"),
            ReadError::Io(e) => write!(f, "cannot read file: {e}"),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

impl From<ReadError> for io::Error {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

/// What a file is, in words, for diagnostics.
pub fn kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a folder"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

/// Reads a regular file (following links) of at most `limit` bytes. The type is checked before
/// opening, so a FIFO is never opened, and again on the open handle, so a file swapped in
/// between is caught; the reader stops one byte past the limit.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind(&meta)));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge(limit));
    }
    let file = open_nonblocking(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind(&meta)));
    }
    let mut bytes = Vec::with_capacity(meta.len().min(limit) as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(bytes)
}

/// Opening a FIFO swapped in after the type check must not block: O_NONBLOCK makes `open`
/// return at once, and the handle's type check then refuses it.
fn open_nonblocking(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// Checks that `rel` (a path a user's file names, e.g. a template in `backend.yml`) is a plain
/// relative path: no `..`, no root, no drive, not empty.
pub fn check_relative(rel: &str) -> Result<(), &'static str> {
    let path = Path::new(rel);
    if rel.is_empty() || path.components().next().is_none() {
        return Err("is empty");
    }
    if path.is_absolute() || path.has_root() {
        return Err("is absolute");
    }
    if path.components().any(|c| {
        !matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    }) {
        return Err("leaves its folder (`..`)");
    }
    Ok(())
}

/// `root/rel`, refused when `rel` is not plain (see `check_relative`) or when the file exists
/// and a symbolic link on the way takes it out of `root`.
pub fn inside(root: &Path, rel: &str) -> Result<PathBuf, String> {
    check_relative(rel).map_err(String::from)?;
    let path = root.join(rel);
    if let (Ok(real_root), Ok(real)) = (std::fs::canonicalize(root), std::fs::canonicalize(&path))
        && !real.starts_with(&real_root)
    {
        return Err("is a symbolic link to a place outside its folder".into());
    }
    Ok(path)
}

/// Whether a folder entry's file name starts with the prefix of rulepack's own staging and
/// scratch folders; such entries are never read as input.
pub fn is_scratch(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.starts_with(crate::write::SCRATCH_PREFIX))
}

/// A problem found while walking a folder: the path it is about, and what is wrong.
#[derive(Debug)]
pub struct WalkProblem {
    pub path: PathBuf,
    pub what: String,
    pub help: &'static str,
}

/// The files under `root` whose name passes `wanted`, recursively, sorted; and the problems
/// found on the way. Symbolic links are followed only when they stay inside `root`; a folder
/// reached a second time (a link loop, or two links to one folder) is reported once per link
/// and not entered again; special files that pass `wanted` are reported, not returned.
/// rulepack's own scratch folders (`.rulepack-*`) are skipped. Only an unreadable `root` is an
/// error.
pub fn walk(
    root: &Path,
    wanted: &dyn Fn(&Path) -> bool,
) -> io::Result<(Vec<PathBuf>, Vec<WalkProblem>)> {
    let real_root = std::fs::canonicalize(root)?;
    let mut walk = Walk {
        real_root,
        seen: HashSet::new(),
        files: Vec::new(),
        problems: Vec::new(),
        wanted,
    };
    let meta = std::fs::metadata(root)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("not a folder but {}", kind(&meta)),
        ));
    }
    walk.seen.insert(identity(&meta));
    walk.dir(root)?;
    walk.files.sort();
    walk.problems.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((walk.files, walk.problems))
}

struct Walk<'a> {
    real_root: PathBuf,
    /// Folders entered, by device and inode (by canonical path where there are none).
    seen: HashSet<Identity>,
    files: Vec<PathBuf>,
    problems: Vec<WalkProblem>,
    wanted: &'a dyn Fn(&Path) -> bool,
}

#[cfg(unix)]
type Identity = (u64, u64);
#[cfg(not(unix))]
type Identity = PathBuf;

#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> Identity {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

impl Walk<'_> {
    fn dir(&mut self, dir: &Path) -> io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            if is_scratch(&entry.file_name()) {
                continue;
            }
            let path = entry.path();
            let link = std::fs::symlink_metadata(&path)?;
            let meta = if link.file_type().is_symlink() {
                match self.inside(&path) {
                    Ok(meta) => meta,
                    Err(what) => {
                        if meta_is_dir(&path) || (self.wanted)(&path) {
                            self.problem(&path, what, LINK_HELP);
                        }
                        continue;
                    }
                }
            } else {
                link
            };
            if meta.is_dir() {
                #[cfg(unix)]
                let id = identity(&meta);
                #[cfg(not(unix))]
                let id = std::fs::canonicalize(&path)?;
                if !self.seen.insert(id) {
                    self.problem(
                        &path,
                        "leads to a folder already read (a symbolic link loop or a second link to one folder); not entered again".into(),
                        LINK_HELP,
                    );
                    continue;
                }
                if let Err(e) = self.dir(&path) {
                    self.problem(
                        &path,
                        format!("cannot read folder: {e}"),
                        "check its permissions",
                    );
                }
            } else if (self.wanted)(&path) {
                if meta.is_file() {
                    self.files.push(path);
                } else {
                    self.problem(
                        &path,
                        format!("not a regular file but {}; not read", kind(&meta)),
                        "rule and template files must be regular files",
                    );
                }
            }
        }
        Ok(())
    }

    /// The metadata a link leads to, if it resolves inside the root.
    fn inside(&self, path: &Path) -> Result<std::fs::Metadata, String> {
        let target = std::fs::canonicalize(path)
            .map_err(|e| format!("is a symbolic link that cannot be followed: {e}"))?;
        if !target.starts_with(&self.real_root) {
            return Err("is a symbolic link to a place outside the folder; not read".into());
        }
        std::fs::metadata(path)
            .map_err(|e| format!("is a symbolic link that cannot be followed: {e}"))
    }

    fn problem(&mut self, path: &Path, what: String, help: &'static str) {
        self.problems.push(WalkProblem {
            path: path.to_path_buf(),
            what,
            help,
        });
    }
}

fn meta_is_dir(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_dir())
}

const LINK_HELP: &str = "replace the link with the file or folder itself, inside the folder";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced_while_reading() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_bounded(&p, 5).unwrap(), b"12345");
        assert!(matches!(read_bounded(&p, 4), Err(ReadError::TooLarge(4))));
        assert!(matches!(
            read_bounded(dir.path(), 4),
            Err(ReadError::NotRegular("a folder"))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn devices_are_refused_before_reading() {
        assert!(matches!(
            read_bounded(Path::new("/dev/zero"), 10),
            Err(ReadError::NotRegular("a device"))
        ));
    }
}
