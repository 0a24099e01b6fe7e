//! `rulepack package`: release archives that are the same bytes on every machine. Entries are
//! sorted, owned by root, dated at the epoch, files 0600 and folders 0700 (what Splunk AppInspect
//! requires), and the gzip header carries no name or time.

use crate::load::files;
use crate::manifest::Manifest;
use crate::write::Staging;
use flate2::{Compression, GzBuilder};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// No file a build writes comes near this; a larger one is not packaged.
const MAX_FILE: u64 = 256 << 20;

/// Release files from a built output folder into `dist`, named from the pack manifest: the
/// Splunk app as `<app_id>-<version>.tar.gz`, the Sigma rules as `<name>-<version>-sigma.tar.gz`,
/// the Sentinel pack ARM template as `<name>-<version>-sentinel.arm.json`. All or nothing:
/// every file is made in memory, written to a staging folder beside `dist` and swapped in as a
/// whole, so a failure leaves `dist` as it was. Links and special files under `out` are
/// refused: a link could ship a file from outside the output. Returns the files written.
pub fn release(out: &Path, dist: &Path, pack: &Manifest) -> io::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(out).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("no built output folder ({e}); run `rulepack build` first"),
        )
    })?;
    if !meta.is_dir() {
        return Err(invalid(format!("not a folder but {}", files::kind(&meta))));
    }
    crate::out_folder::check(dist, &[out])?;
    let release = release_files(out, pack)?;
    if release.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no built pack in it: run `rulepack build` first",
        ));
    }
    let staging = Staging::new(dist)?;
    for (name, bytes) in &release {
        staging.write_file(Path::new(name), bytes)?;
    }
    staging.commit()?;
    Ok(release.iter().map(|(name, _)| dist.join(name)).collect())
}

/// Each release file's name and bytes.
fn release_files(out: &Path, pack: &Manifest) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut release = Vec::new();
    let app_id = &pack.splunk.app_id;
    let app = out.join("splunk").join(app_id);
    if is_real_dir(&out.join("splunk"))? && is_real_dir(&app)? {
        release.push((
            format!("{app_id}-{}.tar.gz", pack.version),
            tar_gz(&app, app_id)?,
        ));
    }
    let stem = format!("{}-{}", pack.name, pack.version);
    let sigma = out.join("sigma");
    if is_real_dir(&sigma)? {
        release.push((
            format!("{stem}-sigma.tar.gz"),
            tar_gz(&sigma, &format!("{stem}-sigma"))?,
        ));
    }
    let arm = out.join("sentinel/rulepack.arm.json");
    if std::fs::symlink_metadata(&arm).is_ok() {
        release.push((format!("{stem}-sentinel.arm.json"), read_regular(&arm)?));
    }
    Ok(release)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Whether `p` is a folder (not a link to one); a link or special file there is an error.
fn is_real_dir(p: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => Ok(true),
        Ok(m) => Err(refused(p, &m)),
    }
}

fn refused(p: &Path, meta: &std::fs::Metadata) -> io::Error {
    invalid(format!(
        "{} is {}: only regular files and folders are packaged (a build writes no other kind); remove it and run `rulepack build`",
        p.display(),
        files::kind(meta)
    ))
}

/// A regular file, not through a link.
fn read_regular(p: &Path) -> io::Result<Vec<u8>> {
    let meta = std::fs::symlink_metadata(p)?;
    if !meta.is_file() {
        return Err(refused(p, &meta));
    }
    Ok(files::read_bounded(p, MAX_FILE)?)
}

/// A `.tar.gz` of `dir`, whose entries sit under `prefix/` (the app folder name). Links and
/// special files are refused.
pub fn tar_gz(dir: &Path, prefix: &str) -> io::Result<Vec<u8>> {
    archive(prefix, &collect(dir)?)
}

/// A `.tar.gz` of `entries` (named relative to their folder), all under `prefix/` (the app
/// folder name).
fn archive(prefix: &str, entries: &[Entry]) -> io::Result<Vec<u8>> {
    let mut tar = Vec::new();
    append(&mut tar, &format!("{prefix}/"), None);
    for (name, content) in entries {
        match content {
            None => append(&mut tar, &format!("{prefix}/{name}/"), None),
            Some(bytes) => append(&mut tar, &format!("{prefix}/{name}"), Some(bytes)),
        }
    }
    tar.resize(tar.len() + 1024, 0);
    let mut gz = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    gz.write_all(&tar)?;
    gz.finish()
}

/// A folder entry (`None`) or a file with its bytes, by `/`-separated name; sorted by name.
type Entry = (String, Option<Vec<u8>>);

/// Every entry under `dir`, named relative to it, sorted. Links and special files are refused.
fn collect(dir: &Path) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<Entry>) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let base = p.file_name().unwrap_or_default().to_string_lossy();
        let name = if prefix.is_empty() {
            base.into_owned()
        } else {
            format!("{prefix}/{base}")
        };
        let meta = std::fs::symlink_metadata(&p)?;
        if meta.is_dir() {
            out.push((name.clone(), None));
            walk(&p, &name, out)?;
        } else {
            out.push((name, Some(read_regular(&p)?)));
        }
    }
    Ok(())
}

/// Appends one entry: a ustar header (with a pax `path` record first when the name does not
/// fit ustar's fields), then the content padded to whole blocks.
fn append(tar: &mut Vec<u8>, name: &str, content: Option<&[u8]>) {
    let dir = content.is_none();
    let size = content.map_or(0, <[u8]>::len);
    let (prefix, short) = match split_name(name) {
        Some(split) => split,
        None => {
            let record = pax_record("path", name);
            let pax_name = format!("PaxHeader/{}", truncate(name.trim_end_matches('/'), 90));
            tar.extend(header("", &pax_name, record.len(), b'x'));
            tar.extend(record.as_bytes());
            pad(tar);
            ("", truncate(name, 100))
        }
    };
    tar.extend(header(prefix, short, size, if dir { b'5' } else { b'0' }));
    if let Some(bytes) = content {
        tar.extend(bytes);
        pad(tar);
    }
}

fn pad(tar: &mut Vec<u8>) {
    tar.resize(tar.len().div_ceil(512) * 512, 0);
}

/// A pax record: `<length> <key>=<value>\n`, the length counting itself.
fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() > len {
        len += 1;
    }
    format!("{len}{body}")
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A ustar header block, owned by root, dated at the epoch.
fn header(prefix: &str, name: &str, size: usize, kind: u8) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], if kind == b'5' { 0o700 } else { 0o600 });
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size as u64);
    octal(&mut h[136..148], 0);
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    octal(&mut h[148..155], sum);
    h[155] = b' ';
    h
}

/// ustar keeps names up to 100 bytes, or 155 + 100 split at a slash (always a character
/// boundary); `None` when neither fits.
fn split_name(name: &str) -> Option<(&str, &str)> {
    if name.len() <= 100 {
        return Some(("", name));
    }
    // A folder's trailing slash stays with the last name.
    let body = name.strip_suffix('/').unwrap_or(name);
    body.match_indices('/').map(|(i, _)| i).find_map(|cut| {
        let (p, n) = (&name[..cut], &name[cut + 1..]);
        (p.len() <= 155 && n.len() <= 100 && !n.is_empty()).then_some((p, n))
    })
}

fn octal(field: &mut [u8], value: u64) {
    let digits = format!("{:0width$o}", value, width = field.len() - 1);
    field[..digits.len()].copy_from_slice(digits.as_bytes());
    field[field.len() - 1] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[Entry]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.tgz");
        let a = archive("x", entries).unwrap();
        assert_eq!(a, archive("x", entries).unwrap());
        std::fs::write(&file, &a).unwrap();
        let listing = std::process::Command::new("tar")
            .arg("-tvzf")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            listing.status.success(),
            "{}",
            String::from_utf8_lossy(&listing.stderr)
        );
        String::from_utf8_lossy(&listing.stdout).into_owned()
    }

    #[test]
    fn same_bytes_every_time_and_readable_by_tar() {
        let text = list(&[
            ("README.txt".into(), Some(b"hello\n".to_vec())),
            ("default".into(), None),
            ("default/app.conf".into(), Some(b"[package]\n".to_vec())),
        ]);
        assert!(
            text.contains("drwx------ 0/0")
                && text.contains("-rw------- 0/0")
                && text.contains("x/default/app.conf"),
            "{text}"
        );
        assert!(text.contains("1970-01-01"), "{text}");
    }

    #[test]
    fn long_non_ascii_names_survive_whole() {
        let long = "é".repeat(120);
        let deep = format!("{}/{}", "漢".repeat(40), "🙂".repeat(30));
        let text = list(&[
            (long.clone(), Some(b"a".to_vec())),
            (deep.clone(), Some(b"b".to_vec())),
        ]);
        assert!(
            text.contains(&format!("x/{long}")) && text.contains(&format!("x/{deep}")),
            "{text}"
        );
    }

    #[test]
    fn pax_lengths_count_themselves() {
        for n in [1, 89, 90, 91, 995, 996, 997, 9_990] {
            let r = pax_record("path", &"a".repeat(n));
            let (len, _) = r.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), r.len(), "{n}");
        }
    }
}
