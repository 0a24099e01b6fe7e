//! The `rulepack` command line. Diagnostics are rendered here, once, at the edge.

mod cli;

use clap::Parser;
use cli::{Cli, Command, Format, Input, ShapeArg, TemplatesCommand};
use rulepack::diag::{self, Diagnostic};
use rulepack::source::SourceMap;
use rulepack::templates::Templates;
use rulepack::{BuildError, LockPolicy, Paths, TestEvents, compile, write};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Many small, short-lived allocations (parsed records, rule values, template output): see the
/// mimalloc line in Cargo.toml for what it measured.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes, one per class of outcome (documented in the README).
const EXIT_RULE_ERRORS: u8 = 1;
const EXIT_STALE: u8 = 3;
const EXIT_IO: u8 = 4;
const EXIT_ENGINES: u8 = 5;

/// Inputs at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_BYTES: u64 = 64 << 20;

/// A pack opened for a command: its root, inputs, and the files read so far.
struct Pack {
    root: PathBuf,
    paths: Paths,
    sources: SourceMap,
    format: Format,
    /// Print the warnings rules expect too (`--show-expected`).
    show_expected: bool,
}

impl Pack {
    /// Finds the pack root (`--pack`, or upward from the current folder) and reads its
    /// manifest; `--rules` and `--templates` are taken as given, the default rules folder is
    /// the root's `rules/`.
    fn open(pack: Option<&Path>, input: &Input) -> Result<Pack, ExitCode> {
        let mut sources = SourceMap::default();
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let root = rulepack::manifest::find_root(pack, &cwd)
            .map_err(|d| fail(&[d], &sources, input.format))?;
        // Paths below the current folder are shown as the user would type them.
        let root = root
            .strip_prefix(&cwd)
            .map(Path::to_path_buf)
            .unwrap_or(root);
        let manifest = rulepack::manifest::load(&root, &mut sources)
            .map_err(|ds| fail(&ds, &sources, input.format))?;
        let rules = input.rules.clone().unwrap_or_else(|| root.join("rules"));
        Ok(Pack {
            paths: Paths {
                rules,
                templates: Templates::new(input.templates.clone()),
                manifest,
                backends: Vec::new(),
            },
            root,
            sources,
            format: input.format,
            show_expected: input.show_expected,
        })
    }

    /// A path option, or its default under the pack root.
    fn or_root(&self, given: Option<PathBuf>, default: &str) -> PathBuf {
        given.unwrap_or_else(|| self.root.join(default))
    }

    fn fail(&self, diags: &[Diagnostic]) -> ExitCode {
        fail(&self.shown(diags), &self.sources, self.format)
    }

    /// Prints the warnings, those the rules expect only with `--show-expected`; returns how
    /// many the rules expect, for the command's summary line.
    fn report(&self, diags: &[Diagnostic]) -> usize {
        report(&self.shown(diags), &self.sources, self.format);
        diags.iter().filter(|d| d.expected.is_some()).count()
    }

    /// `report`, for a command whose summary goes to stdout: the count of expected warnings
    /// gets its own line on stderr.
    fn report_noting(&self, diags: &[Diagnostic]) {
        let expected = self.report(diags);
        if expected > 0 {
            eprintln!("{}", expected_note(expected, self.show_expected));
        }
    }

    fn shown(&self, diags: &[Diagnostic]) -> Vec<Diagnostic> {
        diags
            .iter()
            .filter(|d| self.show_expected || d.expected.is_none())
            .cloned()
            .collect()
    }
}

/// How many warnings the rules expect, and how to list them (or that they were listed).
fn expected_note(expected: usize, shown: bool) -> String {
    let what = if expected == 1 {
        "1 warning expected by its rule".to_string()
    } else {
        format!("{expected} warnings expected by rules")
    };
    if shown {
        format!("{what} (listed above)")
    } else {
        format!("{what} (--show-expected lists them)")
    }
}

/// The summary line's tail for `expected` warnings: nothing when there are none.
fn expected_tail(expected: usize, shown: bool) -> String {
    match expected {
        0 => String::new(),
        n => format!("; {}", expected_note(n, shown)),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    on_interrupt();
    let pack = cli.pack.as_deref();
    let result = match cli.command {
        Command::Schema { templates } => return schema(templates),
        Command::Templates {
            command: TemplatesCommand::Export { dir, force },
        } => return export_templates(&dir, force),
        Command::Init { dir, name, author } => {
            return init(&dir, name.as_deref(), author.as_deref());
        }
        Command::Verify {
            install_only: true,
            engines,
            ..
        } => return install_engines(engines.as_deref()).map_or_else(|c| c, |_| ExitCode::SUCCESS),
        Command::Replay {
            events,
            parse_only: true,
            ..
        } => return parse_only(&events),
        Command::New { input, name, from } => {
            Pack::open(pack, &input).map(|p| new_rule(p, &name, from.as_deref()))
        }
        Command::ExportTests { input } => Pack::open(pack, &input).map(export_tests),
        Command::Replay {
            input,
            events,
            shape,
            workers,
            ..
        } => Pack::open(pack, &input).map(|p| replay(p, &events, shape, workers)),
        Command::Simulate {
            input,
            events,
            shape,
            delay,
        } => Pack::open(pack, &input).map(|p| simulate(p, &events, shape, delay.as_deref())),
        Command::Test {
            input,
            rules_filter,
        } => Pack::open(pack, &input).map(|p| test(p, &rules_filter)),
        Command::Lock {
            input,
            bump,
            release,
        } => Pack::open(pack, &input).map(|p| lock(p, bump, release)),
        Command::Diff { input, base, out } => {
            Pack::open(pack, &input).map(|p| diff(p, &base, out.as_deref()))
        }
        Command::Package { input, out, dist } => {
            Pack::open(pack, &input).map(|p| package(p, out, dist))
        }
        Command::Check { input } => Pack::open(pack, &input).map(check),
        Command::Verify { input, engines, .. } => {
            Pack::open(pack, &input).map(|p| verify(p, engines.as_deref()))
        }
        Command::Build {
            input,
            out,
            check,
            backends,
        } => Pack::open(pack, &input).map(|mut p| {
            p.paths.backends = backends;
            build(p, out, check)
        }),
    };
    result.unwrap_or_else(|code| code)
}

/// The rule schema, its field names from the shipped log sources and the overlay's.
fn schema(templates: Option<PathBuf>) -> ExitCode {
    let mut sources = SourceMap::default();
    match rulepack::load_logsources(&Templates::new(templates), &mut sources) {
        Ok(logsources) => {
            print_out(&rulepack::schema::rule_schema(&logsources));
            ExitCode::SUCCESS
        }
        Err(diags) => fail(&diags, &sources, Format::Human),
    }
}

fn export_templates(dir: &Path, force: bool) -> ExitCode {
    match rulepack::templates::export(dir, force) {
        Ok(files) => {
            eprintln!(
                "wrote the {} shipped templates into {}; pass it with --templates and keep only the files you change",
                files.len(),
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_IO)
        }
    }
}

fn init(dir: &Path, name: Option<&str>, author: Option<&str>) -> ExitCode {
    match rulepack::scaffold::init(dir, name, author) {
        Ok(files) => {
            for f in &files {
                eprintln!("created {}", f.display());
            }
            eprintln!(
                "initialised the pack in {}; next: `rulepack new NAME`, `rulepack test`, `rulepack build`",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_RULE_ERRORS)
        }
    }
}

fn new_rule(mut p: Pack, name: &str, from: Option<&str>) -> ExitCode {
    match rulepack::scaffold::new_rule(&p.paths, &mut p.sources, name, from) {
        Ok(file) => {
            eprintln!(
                "created {}; write its condition and tests, then `rulepack test {name}`",
                file.display()
            );
            ExitCode::SUCCESS
        }
        Err(diags) => p.fail(&diags),
    }
}

fn export_tests(mut p: Pack) -> ExitCode {
    match compile(&p.paths, &mut p.sources, TestEvents::Keep, LockPolicy::Edit) {
        Ok(c) => {
            print_out(&rulepack::tests_manifest(&c, &p.sources));
            p.report_noting(&c.warnings);
            ExitCode::SUCCESS
        }
        Err(diags) => p.fail(&diags),
    }
}

fn test(mut p: Pack, rules_filter: &[String]) -> ExitCode {
    let checked =
        match rulepack::check(&p.paths, &mut p.sources, TestEvents::Keep, LockPolicy::Edit) {
            Ok(c) => c,
            Err(diags) => return p.fail(&diags),
        };
    p.report_noting(&checked.warnings);
    let unknown: Vec<&String> = rules_filter
        .iter()
        .filter(|n| !checked.rules.iter().any(|r| r.name.0 == **n))
        .collect();
    if !unknown.is_empty() {
        eprintln!("error: no rule named {unknown:?}");
        return ExitCode::from(EXIT_RULE_ERRORS);
    }
    let selected: Vec<_> = checked
        .rules
        .into_iter()
        .filter(|r| rules_filter.is_empty() || rules_filter.contains(&r.name.0))
        .collect();
    let report = rulepack::prove::run(&selected, &checked.logsources, &p.sources);
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

fn lock(mut p: Pack, bump: bool, release: bool) -> ExitCode {
    use rulepack::lock;
    let existing = match lock::read(&p.paths.rules) {
        Ok(l) => l.unwrap_or_default(),
        Err(d) => return p.fail(&[d]),
    };
    let lock_path = lock::path(&p.paths.rules);
    let (rules, logsources) =
        match rulepack::check_unlocked(&p.paths, &mut p.sources, TestEvents::Skip) {
            Ok(r) => r,
            Err(diags) => return p.fail(&diags),
        };
    let (new_lock, bumps) = match lock::update(&rules, &logsources, &existing, bump, release) {
        Ok(r) => r,
        Err(diags) => return p.fail(&diags),
    };
    let mut writes = lock::bumped_files(&bumps, &p.sources);
    writes.push((lock_path.clone(), lock::render(&new_lock)));
    for (path, text) in &writes {
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(EXIT_IO);
        }
    }
    for b in &bumps {
        eprintln!("bumped {} {} -> {}", b.rule, b.from, b.to);
    }
    let released = if release { " and marked released" } else { "" };
    eprintln!(
        "locked {} rules in {}{released}",
        rules.len(),
        lock_path.display()
    );
    ExitCode::SUCCESS
}

fn diff(mut p: Pack, base: &str, out: Option<&Path>) -> ExitCode {
    let compiled = match compile(&p.paths, &mut p.sources, TestEvents::Skip, LockPolicy::Edit) {
        Ok(c) => c,
        Err(diags) => return p.fail(&diags),
    };
    p.report_noting(&compiled.warnings);
    let out = out.unwrap_or(Path::new("out"));
    let root = if p.root.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &p.root
    };
    match rulepack::diff::base_files(base, root, out) {
        Ok(files) => {
            let names: Vec<String> = compiled.rules.iter().map(|r| r.name.0.clone()).collect();
            print_out(&rulepack::diff::markdown(
                base,
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

/// A release: refuses rules the lock does not cover and an output folder that is not what the
/// rules build, then writes the release files.
fn package(mut p: Pack, out: Option<PathBuf>, dist: Option<PathBuf>) -> ExitCode {
    let out = p.or_root(out, "out");
    let dist = p.or_root(dist, "dist");
    if !out.is_dir() {
        eprintln!(
            "error: cannot package {}: no built output folder there; run `rulepack build` first",
            out.display()
        );
        return ExitCode::from(EXIT_IO);
    }
    // dist/ is replaced as a whole: never the rules, the overlay or what holds them.
    let inputs: Vec<&Path> = [out.as_path(), p.paths.rules.as_path()]
        .into_iter()
        .chain(p.paths.templates.overlay.as_deref())
        .collect();
    if let Err(e) = rulepack::out_folder::check(&dist, &inputs) {
        eprintln!("error: cannot package into {}: {e}", dist.display());
        return ExitCode::from(EXIT_IO);
    }
    match up_to_date(&mut p, &out) {
        Err(code) => return code,
        Ok((_, 0)) => {}
        Ok((_, expected)) => eprintln!("{}", expected_note(expected, p.show_expected)),
    }
    match rulepack::package::release(&out, &dist, &p.paths.manifest) {
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
    }
}

fn check(mut p: Pack) -> ExitCode {
    // `check` keeps the events, so they are checked against the log source's record shape.
    match compile(&p.paths, &mut p.sources, TestEvents::Keep, LockPolicy::Edit) {
        Ok(c) => {
            let expected = p.report(&c.warnings);
            eprintln!(
                "checked {} rules: {} artifacts, {} warnings{}",
                c.rules.len(),
                c.artifacts.len(),
                c.warnings.len() - expected,
                expected_tail(expected, p.show_expected)
            );
            ExitCode::SUCCESS
        }
        Err(diags) => p.fail(&diags),
    }
}

fn build(mut p: Pack, out: Option<PathBuf>, check: bool) -> ExitCode {
    let out = p.or_root(out, "out");
    if check {
        return match up_to_date(&mut p, &out) {
            Ok((files, expected)) => {
                eprintln!(
                    "{} is up to date ({files} files){}",
                    out.display(),
                    expected_tail(expected, p.show_expected)
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        };
    }
    match rulepack::build(&p.paths, &mut p.sources, &out) {
        Ok(built) => {
            let expected = p.report(&built.warnings);
            eprintln!(
                "built {} rules into {} ({} files){}",
                built.rules,
                out.display(),
                built.files,
                expected_tail(expected, p.show_expected)
            );
            ExitCode::SUCCESS
        }
        Err(BuildError::Rules(diags)) => p.fail(&diags),
        Err(BuildError::Io(e, warnings)) => {
            p.report_noting(&warnings);
            eprintln!(
                "error: cannot write {}: {e} (the previous output is unchanged)",
                out.display()
            );
            ExitCode::from(EXIT_IO)
        }
    }
}

/// The release-point check: rules locked as they are, `out` exactly what they build. Returns
/// the number of files and of the warnings the rules expect.
fn up_to_date(p: &mut Pack, out: &Path) -> Result<(usize, usize), ExitCode> {
    let compiled = compile(
        &p.paths,
        &mut p.sources,
        TestEvents::Omit,
        LockPolicy::Release,
    )
    .map_err(|diags| p.fail(&diags))?;
    let expected = p.report(&compiled.warnings);
    match write::differences(out, &compiled.artifacts) {
        Ok(d) if d.is_empty() => Ok((compiled.artifacts.len(), expected)),
        Ok(d) => {
            for (path, what) in &d {
                eprintln!("stale: {}: {what}", out.join(path).display());
            }
            eprintln!(
                "{} is stale: {} files differ; run `rulepack build` and commit the result",
                out.display(),
                d.len()
            );
            Err(ExitCode::from(EXIT_STALE))
        }
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", out.display());
            Err(ExitCode::from(EXIT_IO))
        }
    }
}

/// The benchmark baseline: the records parsed by serde_json on one thread, no rules.
fn parse_only(events: &[PathBuf]) -> ExitCode {
    let start = std::time::Instant::now();
    match rulepack::replay::parse_only(events) {
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
    }
}

fn replay(mut p: Pack, events: &[PathBuf], shape: ShapeArg, workers: Option<usize>) -> ExitCode {
    use rulepack::replay::{self, Options, Shape};
    let checked =
        match rulepack::check(&p.paths, &mut p.sources, TestEvents::Skip, LockPolicy::Edit) {
            Ok(c) => c,
            Err(diags) => return p.fail(&diags),
        };
    p.report_noting(&checked.warnings);
    let pack = replay::Pack::new(&checked.rules, &checked.logsources);
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

/// The engines of `verify`, installed unless they are (progress on stderr).
fn install_engines(
    engines: Option<&Path>,
) -> Result<Vec<rulepack::verify::install::Installed>, ExitCode> {
    use rulepack::verify;
    let installed = verify::install::root(engines).and_then(|root| {
        let installed = verify::install_all(&root)?;
        eprintln!("{} engines ready in {}", installed.len(), root.display());
        Ok(installed)
    });
    installed.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_ENGINES)
    })
}

fn verify(mut p: Pack, engines: Option<&Path>) -> ExitCode {
    use rulepack::verify::{self, Style};
    let installed = match install_engines(engines) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let compiled = match compile(&p.paths, &mut p.sources, TestEvents::Keep, LockPolicy::Edit) {
        Ok(c) => c,
        Err(diags) => return p.fail(&diags),
    };
    p.report_noting(&compiled.warnings);
    let splunk = match splunk_files(&p.paths.templates) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_IO);
        }
    };
    let declared = &p.paths.manifest.not_executable;
    let report = match verify::run(&compiled, &p.sources, &splunk, &installed, declared) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_ENGINES);
        }
    };
    let style = match p.format {
        Format::Human => Style::Human,
        Format::Json => Style::Json,
        Format::Github => Style::Github,
    };
    let mut out = std::io::stdout().lock();
    for f in &report.failures {
        let _ = writeln!(out, "{}", verify::render(f, style));
    }
    for t in &report.tallies {
        let _ = write!(out, "{}: {} passed, {} failed", t.check, t.passed, t.failed);
        if !t.not_executable.is_empty() {
            let _ = write!(
                out,
                " (not executable, as rulepack.yml declares: {})",
                t.not_executable.join(", ")
            );
        }
        let _ = writeln!(out);
    }
    let _ = write!(
        out,
        "{} passed, {} failed",
        report.passed(),
        report.failures.len()
    );
    match report.not_executable() {
        0 => {}
        n => {
            let _ = write!(out, ", {n} not executable (declared)");
        }
    }
    let _ = writeln!(out);
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_RULE_ERRORS)
    }
}

/// The Splunk backend's files (name, text): the shipped ones, an overlay's replacing them by name.
fn splunk_files(templates: &Templates) -> Result<Vec<(String, String)>, String> {
    let mut files = std::collections::BTreeMap::new();
    for (path, text) in rulepack::templates::SHIPPED {
        if let Some(name) = path.strip_prefix("splunk/") {
            files.insert(name.to_string(), (*text).to_string());
        }
    }
    if let Some(dir) = templates.overlay.as_ref().map(|o| o.join("splunk"))
        && let Ok(entries) = std::fs::read_dir(&dir)
    {
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

/// Ctrl-C or SIGTERM removes this process's staging folders before it exits, so an interrupted
/// build or package leaves the previous output as it was and nothing beside it.
fn on_interrupt() {
    // Without a handler (none can be installed) the default action still ends the process; the
    // next build removes what it left.
    let _ = ctrlc::set_handler(|| {
        rulepack::write::abandon_all();
        std::process::exit(130);
    });
}

fn simulate(mut p: Pack, events: &[PathBuf], shape: ShapeArg, delay: Option<&str>) -> ExitCode {
    use rulepack::replay::Shape;
    use rulepack::simulate::{self, Options};
    use std::io::Read;
    let fixed_delay = match delay.map(|d| (d, rulepack::model::Duration::parse(d))) {
        None => None,
        Some((_, Some(d))) => Some(d.minutes as i64 * 60),
        Some((d, None)) => {
            eprintln!("error: --delay `{d}` is not a duration such as 5m, 2h or 1d");
            return ExitCode::from(EXIT_RULE_ERRORS);
        }
    };
    let checked =
        match rulepack::check(&p.paths, &mut p.sources, TestEvents::Skip, LockPolicy::Edit) {
            Ok(c) => c,
            Err(diags) => return p.fail(&diags),
        };
    p.report_noting(&checked.warnings);
    // The backends' hunting declarations (`hunting_kinds`), read where the templates read them.
    let renderer = match rulepack::render::Renderer::load(
        &p.paths.templates,
        &mut p.sources,
        &checked.logsources,
        &p.paths.manifest,
    ) {
        Ok(r) => r,
        Err(diags) => return p.fail(&diags),
    };
    let hunting = checked
        .rules
        .iter()
        .map(|r| (r.name.0.clone(), renderer.hunting_backends(r)))
        .filter(|(_, b)| !b.is_empty())
        .collect();
    let pack = rulepack::replay::Pack::new(&checked.rules, &checked.logsources);
    let opts = Options {
        shape: match shape {
            ShapeArg::Auto => Shape::Auto,
            ShapeArg::Graph => Shape::Graph,
            ShapeArg::Diagnostic => Shape::Diagnostic,
            ShapeArg::Loganalytics => Shape::LogAnalytics,
        },
        fixed_delay,
        hunting,
    };
    // The files are one stream, read in order.
    let mut stream: Box<dyn Read> = Box::new(std::io::empty());
    for path in events {
        let file: Box<dyn Read> = if path == Path::new("-") {
            Box::new(std::io::stdin())
        } else {
            match std::fs::File::open(path) {
                Ok(f) => Box::new(f),
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", path.display());
                    return ExitCode::from(EXIT_IO);
                }
            }
        };
        stream = Box::new(stream.chain(file));
    }
    let mut reader = std::io::BufReader::with_capacity(1 << 20, stream);
    let mut out = std::io::stdout().lock();
    let settings = p.paths.manifest.settings.clone();
    match simulate::run(&pack, &settings, &opts, &mut reader, &mut out) {
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

fn fail(diags: &[Diagnostic], sources: &SourceMap, format: Format) -> ExitCode {
    report(diags, sources, format);
    let errors = diags.iter().filter(|d| d.is_error()).count();
    eprintln!("error: {errors} problem(s) found; nothing was written");
    ExitCode::from(EXIT_RULE_ERRORS)
}

fn report(diags: &[Diagnostic], sources: &SourceMap, format: Format) {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let render = |d: &Diagnostic| match format {
        Format::Human => diag::render_human(d, sources, color),
        Format::Json => diag::render_json(d, sources),
        Format::Github => diag::render_github(d, sources),
    };
    // One write per buffer, not three per diagnostic: a large pack prints thousands. Laying
    // out a snippet costs more than writing it, so each batch is rendered on every core.
    let mut err = std::io::BufWriter::with_capacity(1 << 16, std::io::stderr().lock());
    for batch in diags.chunks(1024) {
        use rayon::prelude::*;
        let texts: Vec<String> = rulepack::parallel(|| batch.par_iter().map(render).collect());
        for text in texts {
            let _ = writeln!(err, "{text}");
            if matches!(format, Format::Human) {
                let _ = writeln!(err);
            }
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) is a normal end, not a panic.
fn print_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
