//! Shared pieces of the fuzz tests: a deterministic generator, the case count, and a watchdog
//! that turns a hang into a failure naming the case.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// xorshift64: the same cases on every machine, no crate needed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Text that breaks byte-slicing code: multibyte characters of every width, combining marks,
/// line and paragraph separators, a BOM, control characters.
pub const NON_ASCII: &[&str] = &[
    "é", "ß", "漢", "🙂", "\u{301}", "\u{2028}", "\u{2029}", "\u{feff}", "\u{85}", "\u{7f}",
    "\u{1}", "Ω", "𝔘", "e\u{301}",
];

/// Cases per fuzz test: `RULEPACK_FUZZ_CASES`, or `default` (the short run of `cargo test`).
pub fn cases(default: usize) -> usize {
    std::env::var("RULEPACK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `f` on its own thread and fails the test if it takes longer than `limit`: a hang is a
/// defect like a panic. A panic inside `f` fails the test with `what` in the message.
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .unwrap();
    match rx.recv_timeout(limit) {
        Ok(t) => t,
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let _ = handle.join();
            panic!("case panicked: {what}")
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("case hung for {limit:?}: {what}"),
    }
}

/// Names under `dir` (not recursive) that a build or package left behind: staging and
/// old-output folders.
pub fn strays(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".rulepack-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs a command with a time limit; a command still running at the limit is killed and the
/// test fails, naming it.
pub fn run_for(cmd: &mut std::process::Command, limit: Duration) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // Drain both pipes on threads, so a chatty child cannot block on a full pipe.
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} hung for {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Every path under `dir` with its bytes (folders as `None`), links not followed: a snapshot
/// to compare a tree before and after a command.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Option<Vec<u8>>> {
    let mut out = std::collections::BTreeMap::new();
    fn walk(
        root: &Path,
        dir: &Path,
        out: &mut std::collections::BTreeMap<std::path::PathBuf, Option<Vec<u8>>>,
    ) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                out.insert(rel, None);
                walk(root, &p, out);
            } else if meta.is_file() {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            } else {
                out.insert(rel, Some(b"<special>".to_vec()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}
