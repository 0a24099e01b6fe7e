//! The pinned third-party engines `rulepack verify` runs, installed on first use into a per-user
//! cache. The pin files and driver scripts are compiled into the binary (from `tools/`) and
//! written into the engine's folder, so an installed binary works from any folder. Each engine
//! lives in `<root>/<name>-<hash>`, the hash covering everything that shapes it (pins, scripts,
//! interpreter), so a changed pin installs beside the old one instead of mutating it. An install
//! is built in a temporary folder and renamed into place: an interrupted one is never used.

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How an engine is installed.
enum Kind {
    /// A Python venv with `requirements.txt` (the whole closure, pinned) installed `--no-deps`.
    Python,
    /// `npm ci` of `package.json` and `package-lock.json` (integrity-checked).
    Npm,
}

pub struct Engine {
    pub name: &'static str,
    kind: Kind,
    /// (file name in the engine folder, text) written before installing.
    files: &'static [(&'static str, &'static str)],
}

const AUDITLOGS: (&str, &str) = (
    "auditlogs.py",
    include_str!("../../tools/engines/auditlogs.py"),
);

/// duckdb-kql: executes the Sentinel KQL over the tests' events.
pub const DUCKDB_KQL: Engine = Engine {
    name: "duckdb-kql",
    kind: Kind::Python,
    files: &[
        (
            "requirements.txt",
            include_str!("../../tools/duckdb-kql/requirements.txt"),
        ),
        (
            "kql_replay.py",
            include_str!("../../tools/engines/kql_replay.py"),
        ),
        (
            "scheduled.py",
            include_str!("../../tools/engines/scheduled.py"),
        ),
        AUDITLOGS,
    ],
};

/// pySigma's SQLite backend: executes the Sigma rules over the tests' events.
pub const SIGMA_SQLITE: Engine = Engine {
    name: "sigma-sqlite",
    kind: Kind::Python,
    files: &[
        (
            "requirements.txt",
            include_str!("../../tools/sigma-sqlite/requirements.txt"),
        ),
        (
            "sigma_replay.py",
            include_str!("../../tools/engines/sigma_replay.py"),
        ),
        AUDITLOGS,
    ],
};

/// sigma-cli: `sigma check` over every Sigma file.
pub const SIGMA_CLI: Engine = Engine {
    name: "sigma-cli",
    kind: Kind::Python,
    files: &[(
        "requirements.txt",
        include_str!("../../tools/sigma-cli/requirements.txt"),
    )],
};

/// Microsoft's Kusto.Language (parser and binder) over every KQL file.
pub const KUSTO: Engine = Engine {
    name: "kusto-language",
    kind: Kind::Npm,
    files: &[
        ("package.json", include_str!("../../tools/kql/package.json")),
        (
            "package-lock.json",
            include_str!("../../tools/kql/package-lock.json"),
        ),
        ("check-kql.js", include_str!("../../tools/kql/check-kql.js")),
    ],
};

pub const ALL: [&Engine; 4] = [&DUCKDB_KQL, &SIGMA_SQLITE, &SIGMA_CLI, &KUSTO];

/// An engine ready to run.
pub struct Installed {
    pub dir: PathBuf,
}

impl Installed {
    /// The venv's interpreter (Python engines).
    pub fn python(&self) -> PathBuf {
        self.dir.join("venv/bin/python")
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `sigma check` from this sigma-cli engine, offline. The console script has its venv's
    /// build path in its first line and the venv was moved into place after installing, so the
    /// CLI starts through the interpreter; attacktag and d3_fendtag download MITRE data on
    /// first use, so they are excluded.
    pub fn sigma_check(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(self.python());
        cmd.args([
            "-c",
            "import sys; from sigma.cli.main import main; sys.argv[0] = 'sigma'; main()",
            "check",
            "-x",
            "attacktag",
            "-x",
            "d3_fendtag",
        ]);
        cmd
    }
}

/// The folder engines live in: `--engines`, else `RULEPACK_ENGINES`, else
/// `$XDG_CACHE_HOME/rulepack/engines`, else `~/.cache/rulepack/engines`.
pub fn root(flag: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = env("RULEPACK_ENGINES") {
        return Ok(dir);
    }
    if let Some(cache) = env("XDG_CACHE_HOME") {
        return Ok(cache.join("rulepack/engines"));
    }
    match env("HOME") {
        Some(home) => Ok(home.join(".cache/rulepack/engines")),
        None => Err(
            "no cache folder for the engines: HOME is not set; pass --engines DIR or set \
                     RULEPACK_ENGINES"
                .into(),
        ),
    }
}

/// The engine, installed into `root` unless it already is.
pub fn ensure(engine: &Engine, root: &Path) -> Result<Installed, String> {
    let hash = fingerprint(engine)?;
    let dir = root.join(format!("{}-{}", engine.name, &hash[..16]));
    if stamped(&dir, &hash) {
        return Ok(Installed { dir });
    }
    std::fs::create_dir_all(root)
        .map_err(|e| format!("cannot create the engines folder {}: {e}", root.display()))?;
    // A folder of its own per install: two installs of one engine may run at once, from two
    // processes or from two threads of one (parallel tests).
    let tmp = tempfile::Builder::new()
        .prefix(&format!(
            ".{}-{}.partial-{}-",
            engine.name,
            &hash[..16],
            std::process::id()
        ))
        .tempdir_in(root)
        .map_err(|e| format!("cannot create a folder in {}: {e}", root.display()))?
        .keep();
    eprintln!(
        "rulepack: installing {} into {}",
        engine.name,
        dir.display()
    );
    let installed = install(engine, &tmp, &hash);
    if let Err(e) = installed {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another rulepack finished the same install first: use its copy.
        if !stamped(&dir, &hash) {
            return Err(format!(
                "cannot move the engine into {}: {e}",
                dir.display()
            ));
        }
    }
    Ok(Installed { dir })
}

fn stamped(dir: &Path, hash: &str) -> bool {
    std::fs::read_to_string(dir.join(".stamp")).is_ok_and(|s| s.trim() == hash)
}

/// SHA-256 over the engine's files and, for a venv, the interpreter it is bound to.
fn fingerprint(engine: &Engine) -> Result<String, String> {
    let mut h = Sha256::new();
    h.update(engine.name);
    for (name, text) in engine.files {
        h.update([0]);
        h.update(name);
        h.update([0]);
        h.update(text);
    }
    if matches!(engine.kind, Kind::Python) {
        h.update(tool_version("python3", engine)?);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn tool_version(program: &str, engine: &Engine) -> Result<String, String> {
    let out = Command::new(program)
        .arg("--version")
        .output()
        .map_err(|e| {
            format!(
                "cannot run `{program}` for the {} engine: {e}; install it (Python 3.10 or newer \
                 with venv, Node.js 18 or newer with npm) and put it on PATH",
                engine.name
            )
        })?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn install(engine: &Engine, tmp: &Path, hash: &str) -> Result<(), String> {
    std::fs::create_dir_all(tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    for (name, text) in engine.files {
        std::fs::write(tmp.join(name), text)
            .map_err(|e| format!("cannot write {}: {e}", tmp.join(name).display()))?;
    }
    match engine.kind {
        Kind::Python => install_python(engine, tmp)?,
        Kind::Npm => install_npm(engine, tmp)?,
    }
    std::fs::write(tmp.join(".stamp"), format!("{hash}\n"))
        .map_err(|e| format!("cannot write the stamp in {}: {e}", tmp.display()))
}

fn install_python(engine: &Engine, tmp: &Path) -> Result<(), String> {
    let venv = tmp.join("venv");
    let out = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "python3 -m venv failed for the {} engine (on Debian/Ubuntu: apt-get install \
             python3-venv): {}",
            engine.name,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let python = venv.join("bin/python");
    // --no-deps: the file pins the whole closure, so nothing unpinned can slip in; pip check
    // then proves the closure is complete and consistent.
    let mut child = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--no-input",
            "--disable-pip-version-check",
            "--no-deps",
            "--progress-bar",
            "off",
            "-r",
        ])
        .arg(tmp.join("requirements.txt"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let mut stderr = child.stderr.take().expect("piped stderr");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // One line per package, as pip reaches it: the last one named is the one that failed.
    let mut current = None;
    for line in BufReader::new(child.stdout.take().expect("piped stdout"))
        .lines()
        .map_while(Result::ok)
    {
        if let Some(spec) = line.strip_prefix("Collecting ") {
            let spec = spec
                .split(" (from")
                .next()
                .unwrap_or(spec)
                .trim()
                .to_string();
            eprintln!("rulepack:   {}: {spec}", engine.name);
            current = Some(spec);
        }
    }
    let status = child.wait().map_err(|e| format!("pip: {e}"))?;
    let errors = errors.join().unwrap_or_default();
    if !status.success() {
        // pip names the package it gave up on; else the last one it was collecting failed.
        let named = errors
            .lines()
            .find_map(|l| l.split("No matching distribution found for ").nth(1))
            .map(|p| p.trim().to_string());
        let package = named
            .or(current)
            .unwrap_or_else(|| "the pinned packages".into());
        return Err(offline_help(engine, &package, &errors, "pip"));
    }
    let check = Command::new(&python)
        .args(["-m", "pip", "check", "--disable-pip-version-check"])
        .output()
        .map_err(|e| format!("pip check: {e}"))?;
    if !check.status.success() {
        return Err(format!(
            "the pinned packages of the {} engine are inconsistent (pip check): {}",
            engine.name,
            String::from_utf8_lossy(&check.stdout).trim()
        ));
    }
    Ok(())
}

fn install_npm(engine: &Engine, tmp: &Path) -> Result<(), String> {
    let lock = engine
        .files
        .iter()
        .find(|(n, _)| *n == "package-lock.json")
        .map(|(_, t)| *t)
        .unwrap_or_default();
    let lock: serde_json::Value = serde_json::from_str(lock).unwrap_or_default();
    let mut packages = Vec::new();
    if let Some(map) = lock["packages"].as_object() {
        for (key, p) in map {
            if let Some(name) = key.strip_prefix("node_modules/") {
                let spec = format!("{name}@{}", p["version"].as_str().unwrap_or("?"));
                eprintln!("rulepack:   {}: {spec}", engine.name);
                packages.push(spec);
            }
        }
    }
    // npm ci installs exactly the lock file (integrity-checked) and fails if it is stale.
    let out = Command::new("npm")
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--no-update-notifier",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(tmp)
        .output()
        .map_err(|e| {
            format!(
                "cannot run `npm` for the {} engine: {e}; install Node.js 18 or newer with npm",
                engine.name
            )
        })?;
    if !out.status.success() {
        let errors = String::from_utf8_lossy(&out.stderr);
        return Err(offline_help(engine, &packages.join(", "), &errors, "npm"));
    }
    Ok(())
}

/// The error of a failed download: which package, why, and the two ways around it.
fn offline_help(engine: &Engine, package: &str, errors: &str, tool: &str) -> String {
    let last: Vec<&str> = errors
        .lines()
        .filter(|l| !l.trim().is_empty())
        .rev()
        .take(3)
        .collect();
    let why: Vec<&str> = last.into_iter().rev().collect();
    let index = if tool == "pip" {
        "a Python package index with PIP_INDEX_URL (pip's own setting)"
    } else {
        "an npm registry with npm_config_registry (npm's own setting)"
    };
    format!(
        "could not install {package} for the {} engine ({tool}: {})\n\
         help: offline? Point rulepack at an engines folder installed elsewhere with `--engines \
         DIR` or RULEPACK_ENGINES (make one with `rulepack verify --install-only --engines DIR` on \
         a machine with the same python3 and network), or at {index}",
        engine.name,
        why.join(" | ")
    )
}
