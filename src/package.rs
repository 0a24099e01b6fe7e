//! `rulepack package`: release archives that are the same bytes on every machine. Entries are
//! sorted, owned by root, dated at the epoch, files 0600 and folders 0700 (what Splunk AppInspect
//! requires), and the gzip header carries no name or time.

use crate::manifest::Manifest;
use flate2::{Compression, GzBuilder};
use std::io::{self, Write};
use std::path::Path;

/// Release files from a built output folder into `dist`, named from the pack manifest: the
/// Splunk app as `<app_id>-<version>.tar.gz`, the Sigma rules as `<name>-<version>-sigma.tar.gz`,
/// the Sentinel pack ARM template as `<name>-<version>-sentinel.arm.json`. Everything is read
/// before anything is written. Returns the files written.
pub fn release(out: &Path, dist: &Path, pack: &Manifest) -> io::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let app = out.join("splunk").join(&pack.splunk.app_id);
    if app.is_dir() {
        files.push((
            format!("{}-{}.tar.gz", pack.splunk.app_id, pack.version),
            tar_gz(&app, &pack.splunk.app_id)?,
        ));
    }
    let stem = format!("{}-{}", pack.name, pack.version);
    let sigma = out.join("sigma");
    if sigma.is_dir() {
        files.push((
            format!("{stem}-sigma.tar.gz"),
            tar_gz(&sigma, &format!("{stem}-sigma"))?,
        ));
    }
    let arm = out.join("sentinel/rulepack.arm.json");
    if arm.is_file() {
        files.push((format!("{stem}-sentinel.arm.json"), std::fs::read(arm)?));
    }
    if files.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no built pack in it: run `rulepack build` first",
        ));
    }
    std::fs::create_dir_all(dist)?;
    let mut written = Vec::new();
    for (name, bytes) in files {
        let p = dist.join(name);
        std::fs::write(&p, bytes)?;
        written.push(p);
    }
    Ok(written)
}

/// A `.tar.gz` of `dir`, whose entries sit under `prefix/` (the app folder name).
pub fn tar_gz(dir: &Path, prefix: &str) -> io::Result<Vec<u8>> {
    let mut entries = Vec::new();
    collect(dir, Path::new(prefix), &mut entries)?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut tar = Vec::new();
    tar.extend(header(&format!("{prefix}/"), 0, true)?);
    for (name, content) in &entries {
        match content {
            None => tar.extend(header(&format!("{name}/"), 0, true)?),
            Some(bytes) => {
                tar.extend(header(name, bytes.len(), false)?);
                tar.extend(bytes);
                tar.resize(tar.len().div_ceil(512) * 512, 0);
            }
        }
    }
    tar.resize(tar.len() + 1024, 0);
    let mut gz = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    gz.write_all(&tar)?;
    gz.finish()
}

type Entry = (String, Option<Vec<u8>>);

fn collect(dir: &Path, prefix: &Path, out: &mut Vec<Entry>) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let name = prefix.join(p.file_name().unwrap_or_default());
        let name_str = name.to_string_lossy().replace('\\', "/");
        if p.is_dir() {
            out.push((name_str, None));
            collect(&p, &name, out)?;
        } else {
            out.push((name_str, Some(std::fs::read(&p)?)));
        }
    }
    Ok(())
}

/// A ustar header block.
fn header(name: &str, size: usize, dir: bool) -> io::Result<[u8; 512]> {
    let mut h = [0u8; 512];
    let (prefix, name) = split_name(name)?;
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], if dir { 0o700 } else { 0o600 });
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size as u64);
    octal(&mut h[136..148], 0);
    h[156] = if dir { b'5' } else { b'0' };
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    octal(&mut h[148..155], sum);
    h[155] = b' ';
    Ok(h)
}

/// ustar keeps names up to 100 bytes, or 155 + 100 split at a slash.
fn split_name(name: &str) -> io::Result<(&str, &str)> {
    if name.len() <= 100 {
        return Ok(("", name));
    }
    let too_long = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path too long for a tar header: {name}"),
        )
    };
    let cut = name[..name.len().min(156)]
        .rfind('/')
        .ok_or_else(too_long)?;
    let (p, n) = (&name[..cut], &name[cut + 1..]);
    if p.len() > 155 || n.len() > 100 || n.is_empty() {
        return Err(too_long());
    }
    Ok((p, n))
}

fn octal(field: &mut [u8], value: u64) {
    let digits = format!("{:0width$o}", value, width = field.len() - 1);
    field[..digits.len()].copy_from_slice(digits.as_bytes());
    field[field.len() - 1] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_every_time_and_readable_by_tar() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("default")).unwrap();
        std::fs::write(dir.path().join("default/app.conf"), "[package]\nid = x\n").unwrap();
        std::fs::write(dir.path().join("README.txt"), "hello\n").unwrap();
        let a = tar_gz(dir.path(), "x").unwrap();
        let b = tar_gz(dir.path(), "x").unwrap();
        assert_eq!(a, b);
        let file = dir.path().join("x.tgz");
        std::fs::write(&file, &a).unwrap();
        let listing = std::process::Command::new("tar")
            .arg("-tvzf")
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&listing.stdout);
        assert!(
            listing.status.success(),
            "{}",
            String::from_utf8_lossy(&listing.stderr)
        );
        assert!(
            text.contains("drwx------ 0/0")
                && text.contains("-rw------- 0/0")
                && text.contains("x/default/app.conf"),
            "{text}"
        );
        assert!(text.contains("1970-01-01"), "{text}");
    }
}
