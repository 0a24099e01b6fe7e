//! Fuzzing `package`: generated output folders (long and non-ASCII names, deep folders, links
//! in and out, FIFOs, empty folders) packaged in process. For every case: no
//! panic, no hang (per-case time limit), no `.rulepack-*` left; a package that succeeds holds
//! exactly the files under `out/` (read back with a tar reader, and with GNU tar in the short
//! run); one that fails leaves `dist/` byte-identical.
//! Cases: RULEPACK_FUZZ_CASES (default 60); the long run is in the README.

#![cfg(unix)]

mod common;

use common::fuzz::{self, NON_ASCII, Rng, strays, tree};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A file or folder name of up to 255 bytes (the usual file-system limit).
fn name(rng: &mut Rng) -> String {
    const ASCII: &[&str] = &["a", "Z", "0", " ", "-", "_", ".", "%", "\\", "\n", ":", ","];
    let mut s = String::new();
    let longest = if rng.below(3) == 0 { 250 } else { 20 };
    let target = 1 + rng.below(longest);
    while s.len() < target {
        let piece = if rng.below(2) == 0 {
            *rng.pick(NON_ASCII)
        } else {
            *rng.pick(ASCII)
        };
        if s.len() + piece.len() > 250 {
            break;
        }
        s.push_str(piece);
    }
    if s.is_empty() || s == "." || s == ".." || s.starts_with(".rulepack-") {
        s = "x".into();
    }
    s
}

/// Fills `dir` with a random tree; returns whether anything non-packageable was added.
fn fill(dir: &Path, rng: &mut Rng, depth: usize, secret: &Path) -> bool {
    let mut hostile = false;
    for _ in 0..rng.below(4) {
        let p = dir.join(name(rng));
        if p.as_os_str().len() > 3000 {
            continue;
        }
        match rng.below(12) {
            0..=5 => drop(std::fs::write(&p, name(rng))),
            6 | 7 if depth < 6 && std::fs::create_dir(&p).is_ok() => {
                hostile |= fill(&p, rng, depth + 1, secret);
            }
            8 => hostile |= std::os::unix::fs::symlink(secret, &p).is_ok(),
            9 => hostile |= std::os::unix::fs::symlink(".", &p).is_ok(),
            10 => {
                hostile |= std::process::Command::new("mkfifo")
                    .arg(&p)
                    .status()
                    .is_ok_and(|s| s.success());
            }
            _ => {}
        }
    }
    hostile
}

/// Every entry of a `.tar.gz`: name (pax `path` applied, ustar prefix joined) → content, with
/// folders as `None`.
fn read_tar(bytes: &[u8]) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut tar)
        .unwrap();
    let field = |h: &[u8]| {
        let end = h.iter().position(|b| *b == 0).unwrap_or(h.len());
        String::from_utf8(h[..end].to_vec()).unwrap()
    };
    let mut out = BTreeMap::new();
    let (mut at, mut pax_path) = (0, None);
    while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|b| *b != 0) {
        let h = &tar[at..at + 512];
        let size = usize::from_str_radix(field(&h[124..135]).trim(), 8).unwrap();
        let body = tar[at + 512..at + 512 + size].to_vec();
        at += 512 + size.div_ceil(512) * 512;
        let (prefix, short) = (field(&h[345..500]), field(&h[..100]));
        let full = if prefix.is_empty() {
            short
        } else {
            format!("{prefix}/{short}")
        };
        match h[156] {
            b'x' => {
                let text = String::from_utf8(body).unwrap();
                let (_, record) = text.split_once(' ').unwrap();
                let value = record.strip_prefix("path=").unwrap();
                pax_path = Some(value.strip_suffix('\n').unwrap().to_string());
            }
            kind => {
                let name = pax_path.take().unwrap_or(full);
                let name = name.trim_end_matches('/').to_string();
                out.insert(name, (kind == b'0').then_some(body));
            }
        }
    }
    out
}

/// What an archive of `dir` under `prefix` must hold.
fn expected(dir: &Path, prefix: &str) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out: BTreeMap<String, Option<Vec<u8>>> = tree(dir)
        .into_iter()
        .map(|(p, c)| (format!("{prefix}/{}", p.to_str().unwrap()), c))
        .collect();
    out.insert(prefix.to_string(), None);
    out
}

#[test]
fn generated_output_folders_package_exactly_or_not_at_all() {
    let n = fuzz::cases(60);
    let mut rng = Rng(0x5eed_0f9a_c4a9_e5a1);
    let (mut packaged, mut refused) = (0, 0);
    let manifest = common::manifest();
    let stem = format!("{}-{}", manifest.name, manifest.version);
    for i in 0..n {
        let work = tempfile::tempdir().unwrap();
        let secret = work.path().join("secret");
        std::fs::write(&secret, "SECRET").unwrap();
        let out = work.path().join("out");
        let app = out.join("splunk/rulepack_entra_guest");
        std::fs::create_dir_all(app.join("default")).unwrap();
        let version = match rng.below(4) {
            0 => name(&mut rng),
            _ => "1.2.3".into(),
        };
        std::fs::write(
            app.join("default/app.conf"),
            format!("[launcher]\nversion = {version}\n"),
        )
        .unwrap();
        std::fs::create_dir_all(out.join("sigma")).unwrap();
        let mut hostile = fill(&app, &mut rng, 0, &secret);
        hostile |= fill(&out.join("sigma"), &mut rng, 0, &secret);
        let dist = work.path().join("dist");
        std::fs::create_dir(&dist).unwrap();
        std::fs::write(dist.join("earlier"), format!("case {i}")).unwrap();
        let before = tree(&dist);
        let (o, d, pack) = (out.clone(), dist.clone(), manifest.clone());
        let result = fuzz::within(
            Duration::from_secs(60),
            &format!("package case {i}"),
            move || rulepack::package::release(&o, &d, &pack).map_err(|e| e.to_string()),
        );
        match result {
            Ok(files) => {
                assert!(!hostile, "case {i}: packaged a link or special file");
                packaged += 1;
                let by_name = |start: &str| -> PathBuf {
                    files
                        .iter()
                        .find(|f| f.file_name().unwrap().to_string_lossy().starts_with(start))
                        .unwrap()
                        .clone()
                };
                let sigma = std::fs::read(by_name(&format!("{stem}-sigma"))).unwrap();
                assert_eq!(
                    read_tar(&sigma),
                    expected(&out.join("sigma"), &format!("{stem}-sigma"))
                );
                let splunk =
                    std::fs::read(by_name(&format!("{}-", manifest.splunk.app_id))).unwrap();
                assert_eq!(read_tar(&splunk), expected(&app, "rulepack_entra_guest"));
                if i < 20 {
                    let listed = std::process::Command::new("tar")
                        .arg("-tzf")
                        .arg(by_name(&format!("{stem}-sigma")))
                        .output()
                        .unwrap();
                    assert!(
                        listed.status.success(),
                        "case {i}: GNU tar refuses the archive"
                    );
                }
            }
            Err(e) => {
                refused += 1;
                assert_eq!(
                    tree(&dist),
                    before,
                    "case {i}: a failed package changed dist/ ({e})"
                );
            }
        }
        let left = strays(work.path());
        assert!(left.is_empty(), "case {i}: left {left:?}");
    }
    println!(
        "package: {n} cases, {packaged} packaged, {refused} refused; 0 panics, 0 hangs, 0 stray files"
    );
}
