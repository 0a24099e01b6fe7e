//! The `rulepack` command line. Diagnostics are rendered here, once, at the edge.

use clap::{Args, Parser, Subcommand, ValueEnum};
use rulepack::diag::{self, Diagnostic};
use rulepack::source::SourceMap;
use rulepack::{BuildError, Paths, TestEvents, compile, write};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes, one per class of outcome (documented in the README).
const EXIT_RULE_ERRORS: u8 = 1;
const EXIT_STALE: u8 = 3;
const EXIT_IO: u8 = 4;
const EXIT_ENGINES: u8 = 5;

/// Inputs at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_BYTES: u64 = 64 << 20;

#[derive(Parser)]
#[command(
    name = "rulepack",
    version,
    about = "Compile vendor-neutral YAML detection rules to Sentinel KQL, Splunk SPL and Sigma"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build every rule into the output folder (all or nothing).
    Build {
        #[command(flatten)]
        input: Input,
        /// Output folder; replaced as a whole on success, untouched on failure.
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Build in memory and fail (exit 3) when the output folder differs, listing the files.
        #[arg(long)]
        check: bool,
    },
    /// Validate every rule and template; write nothing.
    Check {
        #[command(flatten)]
        input: Input,
    },
    /// Run every rule's tests through the reference evaluator and check that the tests can
    /// tell each rule from broken copies of it.
    Test {
        #[command(flatten)]
        input: Input,
        /// Only these rules (by name); all rules when none are given.
        rules_filter: Vec<String>,
    },
    /// Record every rule's id, name, version and logic hash in rules/versions.lock. Refuses when
    /// a rule's logic changed without a version bump, or an id changed or was reused.
    Lock {
        #[command(flatten)]
        input: Input,
    },
    /// Summarise, per rule, what changed in the built pack against a base (an output folder or
    /// a git revision), as Markdown for a pull-request comment.
    Diff {
        #[command(flatten)]
        input: Input,
        /// An output folder, or a git revision whose output folder is compared.
        base: String,
        /// The output folder's path in the repository (for git revisions).
        #[arg(long, default_value = "out")]
        out: PathBuf,
    },
    /// Make the release files from a built output folder: Splunk app packages, the Sigma
    /// rules archive, the Sentinel pack template. Same bytes on every machine.
    Package {
        #[arg(long, default_value = "out")]
        out: PathBuf,
        #[arg(long, default_value = "dist")]
        dist: PathBuf,
    },
    /// Judge the pack with engines rulepack does not control: every test through duckdb-kql
    /// (KQL) and pySigma's SQLite backend (Sigma), Kusto.Language over every KQL file,
    /// `sigma check` over every Sigma file, structural checks over every SPL search. The pinned
    /// engines install on first use.
    Verify {
        #[command(flatten)]
        input: Input,
        /// The engines folder [default: $RULEPACK_ENGINES, else $XDG_CACHE_HOME/rulepack/engines,
        /// else ~/.cache/rulepack/engines].
        #[arg(long, value_name = "DIR")]
        engines: Option<PathBuf>,
        /// Install the engines and stop (to prepare a cache, e.g. for offline use or CI).
        #[arg(long)]
        install_only: bool,
    },
    /// Print the JSON Schema (draft-07) of the rule format.
    Schema,
    /// Print every rule's tests, artifacts and Sigma approximations as JSON, for the
    /// independent engines that replay the tests against the built queries.
    ExportTests {
        #[command(flatten)]
        input: Input,
    },
    /// Replay exported Entra audit records (JSON Lines or a JSON array, in the Graph,
    /// diagnostic-settings or Log Analytics shape) through every rule, aggregation windows
    /// included; one JSON line per hit on stdout, a summary on stderr.
    #[command(mut_arg("format", |a| a.long("diagnostics")))]
    Replay {
        #[command(flatten)]
        input: Input,
        /// Files of exported records (`-`: standard input), replayed in this order as one stream.
        #[arg(long, required = true, num_args = 1..)]
        events: Vec<PathBuf>,
        /// The records' shape; `auto` decides per record from its keys.
        #[arg(long = "format", id = "shape", value_enum, default_value_t = ShapeArg::Auto)]
        shape: ShapeArg,
        /// Benchmark baseline: only parse the records (JSON Lines) with serde_json.
        #[arg(long, hide = true)]
        parse_only: bool,
        /// Worker threads (default: one per core).
        #[arg(long, hide = true)]
        workers: Option<usize>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ShapeArg {
    Auto,
    Graph,
    Diagnostic,
    Loganalytics,
}

#[derive(Args)]
struct Input {
    /// Folder of rule files (*.yml), searched recursively.
    #[arg(long, default_value = "rules")]
    rules: PathBuf,
    /// Your own templates: files here override the shipped ones (same layout as templates/).
    #[arg(long)]
    templates: Option<PathBuf>,
    /// The shipped templates, field mappings and log sources.
    #[arg(long, default_value = "templates", hide = true)]
    shipped_templates: PathBuf,
    /// How diagnostics are printed.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Human,
    Json,
    Github,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Schema => {
            print_out(&rulepack::schema::rule_schema());
            ExitCode::SUCCESS
        }
        Command::ExportTests { input } => {
            let mut sources = SourceMap::default();
            match compile(&paths(&input), &mut sources, TestEvents::Keep) {
                Ok(c) => {
                    print_out(&rulepack::tests_manifest(&c, &sources));
                    ExitCode::SUCCESS
                }
                Err(diags) => fail(&diags, &sources, input.format),
            }
        }
        Command::Verify {
            input,
            engines,
            install_only,
        } => verify(&input, engines.as_deref(), install_only),
        Command::Replay {
            input,
            events,
            shape,
            parse_only,
            workers,
        } => replay(&input, &events, shape, parse_only, workers),
        Command::Test {
            input,
            rules_filter,
        } => {
            let mut sources = SourceMap::default();
            let (rules, logsources) =
                match rulepack::check(&paths(&input), &mut sources, TestEvents::Keep) {
                    Ok(r) => r,
                    Err(diags) => return fail(&diags, &sources, input.format),
                };
            let unknown: Vec<&String> = rules_filter
                .iter()
                .filter(|n| !rules.iter().any(|r| r.name.0 == **n))
                .collect();
            if !unknown.is_empty() {
                eprintln!("error: no rule named {unknown:?}");
                return ExitCode::from(EXIT_RULE_ERRORS);
            }
            let selected: Vec<_> = rules
                .into_iter()
                .filter(|r| rules_filter.is_empty() || rules_filter.contains(&r.name.0))
                .collect();
            let report = rulepack::prove::run(&selected, &logsources, &sources);
            let mut out = std::io::stdout().lock();
            for o in &report.outcomes {
                let verdict = |m: bool| if m { "match" } else { "no match" };
                let _ = if o.expected == o.got {
                    writeln!(out, "ok   {}: {}", o.rule, o.test)
                } else {
                    writeln!(
                        out,
                        "FAIL {}: {} ({}): expected {}, got {}",
                        o.rule,
                        o.test,
                        o.position,
                        verdict(o.expected),
                        verdict(o.got)
                    )
                };
            }
            for (position, what) in &report.weak {
                let _ = writeln!(out, "WEAK {position}: {what}");
            }
            let failed = report.failed() + report.weak.len();
            let _ = writeln!(
                out,
                "rules: {} passed, {failed} failed",
                report.outcomes.len() - report.failed()
            );
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_RULE_ERRORS)
            }
        }
        Command::Lock { input } => {
            let mut sources = SourceMap::default();
            let paths = paths(&input);
            let existing = match rulepack::lock::read(&paths.rules) {
                Ok(l) => l.unwrap_or_default(),
                Err(d) => return fail(&[d], &sources, input.format),
            };
            let lock_path = rulepack::lock::path(&paths.rules);
            let (rules, logsources) =
                match rulepack::check_unlocked(&paths, &mut sources, TestEvents::Skip) {
                    Ok(r) => r,
                    Err(diags) => return fail(&diags, &sources, input.format),
                };
            match rulepack::lock::update(&rules, &logsources, &existing) {
                Ok(lock) => match std::fs::write(&lock_path, rulepack::lock::render(&lock)) {
                    Ok(()) => {
                        eprintln!("locked {} rules in {}", rules.len(), lock_path.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: cannot write {}: {e}", lock_path.display());
                        ExitCode::from(EXIT_IO)
                    }
                },
                Err(diags) => fail(&diags, &sources, input.format),
            }
        }
        Command::Diff { input, base, out } => {
            let mut sources = SourceMap::default();
            let compiled = match compile(&paths(&input), &mut sources, TestEvents::Skip) {
                Ok(c) => c,
                Err(diags) => return fail(&diags, &sources, input.format),
            };
            match rulepack::diff::base_files(&base, &out) {
                Ok(files) => {
                    let names: Vec<String> =
                        compiled.rules.iter().map(|r| r.name.0.clone()).collect();
                    print_out(&rulepack::diff::markdown(
                        &base,
                        &files,
                        &compiled.artifacts,
                        &names,
                    ));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_IO)
                }
            }
        }
        Command::Package { out, dist } => match rulepack::package::release(&out, &dist) {
            Ok(files) => {
                for f in &files {
                    eprintln!("wrote {}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot package {}: {e}", out.display());
                ExitCode::from(EXIT_IO)
            }
        },
        Command::Check { input } => {
            let mut sources = SourceMap::default();
            let paths = paths(&input);
            match compile(&paths, &mut sources, TestEvents::Skip) {
                Ok(c) => {
                    report(&c.warnings, &sources, input.format);
                    eprintln!(
                        "checked {} rules: {} artifacts, {} warnings",
                        c.rules.len(),
                        c.artifacts.len(),
                        c.warnings.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(diags) => fail(&diags, &sources, input.format),
            }
        }
        Command::Build { input, out, check } => {
            let mut sources = SourceMap::default();
            let paths = paths(&input);
            if !check {
                return match rulepack::build(&paths, &mut sources, &out) {
                    Ok(built) => {
                        report(&built.warnings, &sources, input.format);
                        eprintln!(
                            "built {} rules into {} ({} files)",
                            built.rules,
                            out.display(),
                            built.files
                        );
                        ExitCode::SUCCESS
                    }
                    Err(BuildError::Rules(diags)) => fail(&diags, &sources, input.format),
                    Err(BuildError::Io(e, warnings)) => {
                        report(&warnings, &sources, input.format);
                        eprintln!(
                            "error: cannot write {}: {e} (the previous output is unchanged)",
                            out.display()
                        );
                        ExitCode::from(EXIT_IO)
                    }
                };
            }
            let compiled = match compile(&paths, &mut sources, TestEvents::Skip) {
                Ok(c) => c,
                Err(diags) => return fail(&diags, &sources, input.format),
            };
            report(&compiled.warnings, &sources, input.format);
            match write::differences(&out, &compiled.artifacts) {
                Ok(d) if d.is_empty() => {
                    eprintln!(
                        "{} is up to date ({} files)",
                        out.display(),
                        compiled.artifacts.len()
                    );
                    ExitCode::SUCCESS
                }
                Ok(d) => {
                    for (path, what) in &d {
                        eprintln!("stale: {}: {what}", out.join(path).display());
                    }
                    eprintln!(
                        "{} is stale: {} files differ; run `rulepack build` and commit the result",
                        out.display(),
                        d.len()
                    );
                    ExitCode::from(EXIT_STALE)
                }
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", out.display());
                    ExitCode::from(EXIT_IO)
                }
            }
        }
    }
}

fn replay(
    input: &Input,
    events: &[PathBuf],
    shape: ShapeArg,
    parse_only: bool,
    workers: Option<usize>,
) -> ExitCode {
    use rulepack::replay::{self, Options, Shape};
    if parse_only {
        let start = std::time::Instant::now();
        return match replay::parse_only(events) {
            Ok((values, bad)) => {
                eprintln!(
                    "parse-only: {values} values, {bad} malformed lines, {:.3} s",
                    start.elapsed().as_secs_f64()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot read the events: {e}");
                ExitCode::from(EXIT_IO)
            }
        };
    }
    let mut sources = SourceMap::default();
    let (rules, logsources) = match rulepack::check(&paths(input), &mut sources, TestEvents::Skip) {
        Ok(r) => r,
        Err(diags) => return fail(&diags, &sources, input.format),
    };
    let pack = replay::Pack::new(&rules, &logsources);
    let size: u64 = events
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let opts = Options {
        shape: match shape {
            ShapeArg::Auto => Shape::Auto,
            ShapeArg::Graph => Shape::Graph,
            ShapeArg::Diagnostic => Shape::Diagnostic,
            ShapeArg::Loganalytics => Shape::LogAnalytics,
        },
        workers: workers.unwrap_or_else(|| Options::default().workers),
        progress: std::io::stderr().is_terminal() && size >= PROGRESS_BYTES,
    };
    let mut out = std::io::stdout().lock();
    match replay::run(&pack, events, &opts, &mut out) {
        Ok(summary) => {
            eprint!("{}", summary.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_IO)
        }
    }
}

fn verify(input: &Input, engines: Option<&std::path::Path>, install_only: bool) -> ExitCode {
    use rulepack::verify::{self, Style};
    let installed = match verify::install::root(engines).and_then(|r| {
        let installed = verify::install_all(&r)?;
        Ok((r, installed))
    }) {
        Ok((root, installed)) if install_only => {
            eprintln!("{} engines ready in {}", installed.len(), root.display());
            return ExitCode::SUCCESS;
        }
        Ok((_, installed)) => installed,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_ENGINES);
        }
    };
    let mut sources = SourceMap::default();
    let paths = paths(input);
    let compiled = match compile(&paths, &mut sources, TestEvents::Keep) {
        Ok(c) => c,
        Err(diags) => return fail(&diags, &sources, input.format),
    };
    let splunk = match splunk_files(&paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_IO);
        }
    };
    let report = match verify::run(&compiled, &sources, &splunk, &installed) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_ENGINES);
        }
    };
    let style = match input.format {
        Format::Human => Style::Human,
        Format::Json => Style::Json,
        Format::Github => Style::Github,
    };
    let mut out = std::io::stdout().lock();
    for f in &report.failures {
        let _ = writeln!(out, "{}", verify::render(f, style));
    }
    for t in &report.tallies {
        let _ = writeln!(out, "{}: {} passed, {} failed", t.check, t.passed, t.failed);
    }
    let _ = writeln!(
        out,
        "{} passed, {} failed",
        report.passed(),
        report.failures.len()
    );
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_RULE_ERRORS)
    }
}

/// The Splunk backend's files (name, text), the overlay's replacing the shipped ones by name.
fn splunk_files(paths: &Paths) -> Result<Vec<(String, String)>, String> {
    let mut files = std::collections::BTreeMap::new();
    for root in [Some(&paths.templates), paths.overlay.as_ref()]
        .into_iter()
        .flatten()
    {
        let dir = root.join("splunk");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_file() {
                let text = std::fs::read_to_string(&path)
                    .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
                files.insert(e.file_name().to_string_lossy().into_owned(), text);
            }
        }
    }
    Ok(files.into_iter().collect())
}

fn paths(input: &Input) -> Paths {
    Paths {
        rules: input.rules.clone(),
        templates: input.shipped_templates.clone(),
        overlay: input.templates.clone(),
    }
}

fn fail(diags: &[Diagnostic], sources: &SourceMap, format: Format) -> ExitCode {
    report(diags, sources, format);
    let errors = diags.iter().filter(|d| d.is_error()).count();
    eprintln!("error: {errors} problem(s) found; nothing was written");
    ExitCode::from(EXIT_RULE_ERRORS)
}

fn report(diags: &[Diagnostic], sources: &SourceMap, format: Format) {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut err = std::io::stderr().lock();
    for d in diags {
        let text = match format {
            Format::Human => diag::render_human(d, sources, color),
            Format::Json => diag::render_json(d, sources),
            Format::Github => diag::render_github(d, sources),
        };
        let _ = writeln!(err, "{text}");
        if matches!(format, Format::Human) {
            let _ = writeln!(err);
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) is a normal end, not a panic.
fn print_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
