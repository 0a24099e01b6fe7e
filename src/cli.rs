//! The command-line grammar. Every flag is documented in `--help`; none is hidden.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "rulepack",
    version,
    about = "Compile vendor-neutral YAML detection rules to Sentinel KQL, Splunk SPL and Sigma"
)]
pub struct Cli {
    /// The pack's root folder (the one holding rulepack.yml). Default: the current folder or
    /// the nearest folder above it with a rulepack.yml.
    #[arg(long, global = true)]
    pub pack: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create a new pack: rulepack.yml, rules/ with an example rule and its tests,
    /// rules/versions.lock, .gitignore, editor schema wiring and a CI workflow.
    Init {
        /// The pack folder (created if missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The pack name (default: the folder's name).
        #[arg(long)]
        name: Option<String>,
        /// The default author of the pack's rules (default: `git config user.name`).
        #[arg(long)]
        author: Option<String>,
    },
    /// Write rules/NAME.yml: a rule skeleton with a fresh id, or a copy of RULE's logic and
    /// tests (`--from`).
    New {
        #[command(flatten)]
        input: Input,
        /// The new rule's name: lower-case letters, digits and `_`.
        name: String,
        /// An existing rule whose logic and tests the new rule starts from.
        #[arg(long)]
        from: Option<String>,
    },
    /// Build every rule into the output folder (all or nothing).
    Build {
        #[command(flatten)]
        input: Input,
        /// Output folder; replaced as a whole on success, untouched on failure.
        /// Default: out/ in the pack root.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Release check: fail when a rule is not locked as it is, or (exit 3) when the output
        /// folder differs from the build, listing the files.
        #[arg(long)]
        check: bool,
        /// Build only this backend's output (repeatable), as sigma-cli's `-t` does; every
        /// backend when none is given. With --check, the output folder must hold exactly that.
        #[arg(long = "backend", value_name = "NAME",
              value_parser = clap::builder::PossibleValuesParser::new(rulepack::render::BACKENDS))]
        backends: Vec<String>,
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
    /// Record every rule's id, name, version and logic hash in rules/versions.lock. An
    /// unreleased version is re-locked as it is; a released one whose logic changed needs
    /// `--bump`.
    Lock {
        #[command(flatten)]
        input: Input,
        /// Bump the minor version of every rule whose logic changed since its released version
        /// (correlations whose stage rules changed included), in the rule files, and record them.
        #[arg(long)]
        bump: bool,
        /// Mark every locked version as released: from then on its logic is frozen. Run it in
        /// the commit you tag.
        #[arg(long)]
        release: bool,
    },
    /// Summarise, per rule, what changed in the built pack against a base (an output folder or
    /// a git revision), as Markdown for a pull-request comment.
    Diff {
        #[command(flatten)]
        input: Input,
        /// An output folder, or a git revision whose output folder is compared.
        base: String,
        /// The output folder's path relative to the pack root (for git revisions). Default: out.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Make the release files from the built output folder: the Splunk app package, the Sigma
    /// rules archive, the Sentinel pack template, named from rulepack.yml. Same bytes on every
    /// machine. Refuses rules that are not locked and an output folder that is stale.
    Package {
        #[command(flatten)]
        input: Input,
        /// The built output folder. Default: out/ in the pack root.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where the release files go. Default: dist/ in the pack root.
        #[arg(long)]
        dist: Option<PathBuf>,
    },
    /// Print the JSON Schema (draft-07) of the rule format, for editors: `field:` and `some:`
    /// list the log sources' names.
    Schema {
        /// Your own templates: log sources here add their fields (same layout as `rulepack
        /// templates export` writes).
        #[arg(long)]
        templates: Option<PathBuf>,
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
    /// The shipped templates and log sources.
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
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
        /// Worker threads that evaluate the rules (default: one per core; at most 256).
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
            .range(1..=rulepack::replay::MAX_WORKERS as u64))]
        workers: Option<usize>,
        /// Benchmark baseline: only parse the records (JSON Lines) with serde_json on one
        /// thread, run no rule, and print the time (tools/bench/run compares replay with it).
        #[arg(long)]
        parse_only: bool,
    },
    /// Run every rule on its schedule over records that carry an event time and an ingestion
    /// time (docs/semantics.md): one JSON line per alert with the run that raises it on stdout,
    /// alerts, duplicates and records lost to lateness per rule on stderr.
    #[command(mut_arg("format", |a| a.long("diagnostics")))]
    Simulate {
        #[command(flatten)]
        input: Input,
        /// JSON Lines files of exported records (`-`: standard input), read in this order.
        #[arg(long, required = true, num_args = 1..)]
        events: Vec<PathBuf>,
        /// The records' shape; `auto` decides per record from its keys.
        #[arg(long = "format", id = "shape", value_enum, default_value_t = ShapeArg::Auto)]
        shape: ShapeArg,
        /// Ingestion delay of records without `ingestionTime`/`IngestionTime`/`_indextime`
        /// (e.g. `2m`); without it such records are skipped.
        #[arg(long)]
        delay: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum TemplatesCommand {
    /// Write the shipped templates and log sources into DIR, as a starting point for
    /// `--templates DIR`. Refuses to replace existing files unless `--force`.
    Export {
        dir: PathBuf,
        #[arg(long)]
        force: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ShapeArg {
    Auto,
    Graph,
    Diagnostic,
    Loganalytics,
}

#[derive(Args)]
pub struct Input {
    /// Folder of rule files (*.yml), searched recursively. Default: rules/ in the pack root.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Your own templates: files here override the shipped ones one by one (same layout as
    /// `rulepack templates export` writes).
    #[arg(long)]
    pub templates: Option<PathBuf>,
    /// How diagnostics are printed.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Also print the warnings rules expect (`expect_warnings`), each with its rule's reason.
    #[arg(long)]
    pub show_expected: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Github,
}
