//! Input generator for the benchmarks (`tools/bench/run`, project issue 7). Not a timing harness:
//! `tools/bench/run` times the release binary with `/usr/bin/time -v`. Run through cargo:
//!
//! ```text
//! cargo bench --bench generate -- rules N RULES_DIR OUT_DIR    N rules varied from the shipped ones
//! cargo bench --bench generate -- records N RULES_DIR OUT_FILE  N Graph records, JSON Lines
//! ```
//!
//! Everything is deterministic: the same arguments give the same bytes.

use rulepack::Paths;
use rulepack::source::SourceMap;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    // cargo bench appends `--bench`.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["rules", n, src, out] => rules(parse(n), Path::new(src), Path::new(out)),
        ["records", n, src, out] => records(parse(n), Path::new(src), Path::new(out)),
        [] => {
            eprintln!(
                "the benchmarks run with tools/bench/run (this target only generates inputs)"
            );
            return ExitCode::SUCCESS;
        }
        _ => Err("usage: generate rules|records N RULES_DIR OUT".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("generate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(n: &str) -> usize {
    n.replace('_', "").parse().unwrap_or(0)
}

/// A deterministic pseudo-random number (splitmix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A lower-case UUID (version 4 layout) derived from `seed`.
fn uuid(seed: u64) -> String {
    let (a, b) = (mix(seed), mix(seed ^ 0x5555_5555_5555_5555));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        8 + (b >> 62),
        (b >> 48) & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no rules in {}", dir.display()));
    }
    Ok(files)
}

/// `n` rules: the shipped ones in turn, each with its own id, name, title and condition values.
fn rules(n: usize, src: &Path, out: &Path) -> Result<(), String> {
    let mut templates = Vec::new();
    for f in rule_files(src)? {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let v: Value =
            serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        templates.push(v);
    }
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let t = templates.len();
    if n < t {
        return Err(format!(
            "generate at least {t} rules (one of each shipped rule)"
        ));
    }
    let names: Vec<String> = templates
        .iter()
        .map(|v| v["name"].as_str().unwrap_or("rule").to_string())
        .collect();
    // The variant of the shipped rule `stage` in the same round as rule `i`, or in the round
    // before when the last round stops short of it.
    let variant = |stage: &str, i: usize| -> Option<String> {
        let at = names.iter().position(|n| n == stage)?;
        let round = i / t * t;
        let j = if round + at < n {
            round + at
        } else {
            round - t + at
        };
        Some(format!("{stage}_g{j:05}"))
    };
    for i in 0..n {
        let mut v = templates[i % t].clone();
        let name = format!("{}_g{i:05}", v["name"].as_str().unwrap_or("rule"));
        // A correlation names the variants generated next to it.
        if let Some(c) = v.get_mut("correlation") {
            if let Some(then) = c["then"].as_str().and_then(|s| variant(s, i)) {
                c["then"] = Value::String(then);
            }
            if let Some(Value::Array(first)) = c.get_mut("first") {
                for f in first.iter_mut() {
                    if let Some(s) = f.as_str().and_then(|s| variant(s, i)) {
                        *f = Value::String(s);
                    }
                }
            }
        }
        v["id"] = Value::String(uuid(i as u64));
        v["name"] = Value::String(name.clone());
        if let Some(t) = v["title"].as_str() {
            v["title"] = Value::String(format!("{t} Variant {i}"));
        }
        if let Some(c) = v.get_mut("condition") {
            vary(c, i);
        }
        let text = serde_saphyr::to_string(&v).map_err(|e| e.to_string())?;
        std::fs::write(out.join(format!("{name}.yml")), text).map_err(|e| e.to_string())?;
    }
    eprintln!(
        "generate: {n} rules from {} shipped ones in {}",
        templates.len(),
        out.display()
    );
    Ok(())
}

/// Appends the rule number to every string a string operator compares with.
fn vary(c: &mut Value, i: usize) {
    match c {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                match (k.as_str(), v) {
                    ("equals" | "contains" | "starts_with" | "ends_with", Value::String(s)) => {
                        s.push_str(&format!(" {i}"));
                    }
                    ("one_of", Value::Array(items)) => {
                        for s in items.iter_mut() {
                            if let Value::String(s) = s {
                                s.push_str(&format!(" {i}"));
                            }
                        }
                    }
                    (_, v) => vary(v, i),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|x| vary(x, i)),
        _ => {}
    }
}

/// `n` Graph records as JSON Lines, made from the pack's own test events: one in ten from a test
/// that expects a match, two in ten from near misses, the rest background (a test event whose
/// activity is renamed to an everyday one no rule looks for). Each record gets its own id and
/// correlation id, an event time 0.5 s after the previous record's and an ingestion time a
/// little later (`ingestion_delay_ms`), so `rulepack simulate` reads them as exported.
fn records(n: usize, rules_dir: &Path, out: &Path) -> Result<(), String> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut sources = SourceMap::default();
    let paths = Paths {
        rules: rules_dir.to_path_buf(),
        templates: rulepack::templates::Templates::default(),
        manifest: rulepack::manifest::load(&repo, &mut sources)
            .map_err(|d| format!("{} problems in rulepack.yml", d.len()))?,
        backends: Vec::new(),
    };
    let (rules, _) = rulepack::check_unlocked(&paths, &mut sources, rulepack::TestEvents::Keep)
        .map_err(|d| format!("{} problems in the rules", d.len()))?;
    let (mut hit, mut miss) = (Vec::new(), Vec::new());
    for r in &rules {
        for t in &r.tests {
            let pool = if t.expect_match { &mut hit } else { &mut miss };
            pool.extend(t.events.iter().cloned());
        }
    }
    if hit.is_empty() || miss.is_empty() {
        return Err("the rules need match and no_match tests".into());
    }
    let file = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut from_hit = 0usize;
    for i in 0..n {
        let r = mix(i as u64);
        let pick = (r >> 8) as usize;
        let mut v = match r % 10 {
            0 => {
                from_hit += 1;
                hit[pick % hit.len()].clone()
            }
            1 | 2 => miss[pick % miss.len()].clone(),
            _ => {
                let mut v = miss[pick % miss.len()].clone();
                v["activityDisplayName"] =
                    Value::String(BACKGROUND[(r >> 40) as usize % BACKGROUND.len()].into());
                v
            }
        };
        let ms = i as i64 * 500;
        v["activityDateTime"] = Value::String(iso(ms));
        v["ingestionTime"] = Value::String(iso(ms + ingestion_delay_ms(i as u64)));
        let corr = uuid(i as u64 + 1_000_000_007);
        v["id"] = Value::String(format!("Directory_{corr}_BENCH_{i}"));
        v["correlationId"] = Value::String(corr);
        serde_json::to_writer(&mut w, &v).map_err(|e| e.to_string())?;
        w.write_all(b"\n").map_err(|e| e.to_string())?;
    }
    w.flush().map_err(|e| e.to_string())?;
    eprintln!(
        "generate: {n} records ({from_hit} from match tests) from {} test events in {}",
        hit.len() + miss.len(),
        out.display()
    );
    Ok(())
}

/// How long after its event record `i` is ingested: mostly 20 s to 3 min, one in ten 5 to 9 min
/// (late, still inside the default tolerated delay of 10 min) and one in fifty 11 to 30 min
/// (lost to lateness by single-record rules), so the simulation meets every case.
fn ingestion_delay_ms(i: u64) -> i64 {
    let r = mix(i ^ 0xA5A5_A5A5_0000_0000);
    let spread = |lo: i64, hi: i64| lo + ((r >> 16) % ((hi - lo) as u64)) as i64;
    match r % 50 {
        0 => spread(660_000, 1_800_000),
        1..=5 => spread(300_000, 540_000),
        _ => spread(20_000, 180_000),
    }
}

/// The ISO 8601 time `ms` milliseconds after 2026-01-01T00:00:00Z, as Graph writes it; within
/// 2026 for up to ~63 million records.
fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (month, day) = month_day(days as u32);
    format!(
        "2026-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}0000+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// Everyday audit activities that no guest rule looks for.
const BACKGROUND: &[&str] = &[
    "Update user",
    "Add member to group",
    "Remove member from group",
    "Update group",
    "Add app role assignment to service principal",
    "Update application",
    "Change user password",
    "Reset user password",
    "Add registered owner to device",
    "Update device",
];

/// Month and day of the `days`-th day of 2026 (not a leap year).
fn month_day(mut days: u32) -> (u32, u32) {
    const LEN: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    for (m, len) in LEN.iter().enumerate() {
        if days < *len {
            return (m as u32 + 1, days + 1);
        }
        days -= len;
    }
    (12, 31)
}
