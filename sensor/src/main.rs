//! The `sensor` command line. Thin: every subcommand is a call into the
//! library; this file only parses arguments, opens files and maps results to
//! exit codes. Errors are printed as one clean message (no panic, no
//! backtrace) and give a non-zero exit status.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use sensor::output::alert::AlertWriter;
use sensor::output::jsonl::OutputTarget;
use sensor::rules::tuning::RuleOverride;
use sensor::rules::{self, RuleSet};
use sensor::service::config::{self, ConfigFile, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "sensor",
    version,
    about = "Linux host security sensor with native Elastic EQL rules"
)]
struct Cli {
    /// Without a subcommand the sensor runs live with its defaults
    /// (embedded seed rule, alerts on stdout).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with Elastic detection-rule files.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Evaluate rules over ECS events (JSON lines) and write alerts.
    Replay(ReplayArgs),
    /// Run the live sensor (the default): load the eBPF programs, watch
    /// every exec, write alerts (and optionally events). Needs root.
    Run(RunArgs),
    /// Check a configuration and print the effective settings.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the config file with flags and environment on top; print
    /// the effective settings (TOML) or the first error, exit non-zero on error.
    Check(RunArgs),
}

/// Settings of the live sensor. Each flag can also come from its `SENSOR_*`
/// environment variable and from the config file; flag > environment >
/// file > default.
#[derive(Debug, Args, Default)]
struct RunArgs {
    /// TOML config file.
    #[arg(long, value_name = "FILE", env = "SENSOR_CONFIG")]
    config: Option<PathBuf>,
    /// Rule file or directory (repeatable); default: the embedded seed rule.
    #[arg(
        long = "rules",
        value_name = "PATH",
        env = "SENSOR_RULES",
        value_delimiter = ','
    )]
    rules: Vec<PathBuf>,
    /// Where to write alerts (JSON lines); `-` is standard output [default: -].
    #[arg(long, value_name = "FILE|-", env = "SENSOR_ALERTS")]
    alerts: Option<String>,
    /// Also write every event (JSON lines) here; `-` is standard output.
    #[arg(long, value_name = "FILE|-", env = "SENSOR_EVENTS")]
    events: Option<String>,
    /// Also write `fork` and `end` events to the events output.
    #[arg(long, env = "SENSOR_LIFECYCLE_EVENTS")]
    lifecycle_events: bool,
    /// Kernel ring buffer size in MiB, a power of two [default: 8].
    #[arg(long, value_name = "MIB", env = "SENSOR_RING_BUFFER_MIB")]
    ring_buffer_mib: Option<u32>,
    /// Most processes the process table keeps [default: 65536].
    #[arg(long, value_name = "N", env = "SENSOR_TABLE_CAPACITY")]
    table_capacity: Option<usize>,
    /// Metrics and health endpoint, host:port; "" disables it [default: 127.0.0.1:9100].
    #[arg(long, value_name = "ADDR", env = "SENSOR_METRICS_ADDR")]
    metrics_addr: Option<String>,
    /// Rotate file outputs at this size in MiB; 0 never [default: 0].
    #[arg(long, value_name = "MIB", env = "SENSOR_ROTATE_MIB")]
    rotate_mib: Option<u64>,
    /// Rotated files kept per output [default: 5].
    #[arg(long, value_name = "N", env = "SENSOR_ROTATE_KEEP")]
    rotate_keep: Option<u32>,
    /// Read kernel records in batches at most this many ms apart; 0 wakes
    /// per record (lowest latency, most CPU) [default: 10].
    #[arg(long, value_name = "MS", env = "SENSOR_BATCH_MS")]
    batch_ms: Option<u64>,
    /// Permission bits of created output files: 0600 or 0640 [default: 0600].
    #[arg(long, value_name = "MODE", env = "SENSOR_OUTPUT_MODE")]
    output_mode: Option<String>,
    /// Where the node's root is for container runtime state (docker,
    /// containerd, CRI-O files); `/host` in the DaemonSet (its hostPath mounts); "" disables
    /// container metadata [default: /].
    #[arg(long, value_name = "PATH", env = "SENSOR_RUNTIME_ROOT")]
    runtime_root: Option<String>,
    /// `on`: only file events a loaded rule could match leave the kernel
    /// (and reach --events); `off`: every one [default: on].
    #[arg(long, value_name = "on|off", env = "SENSOR_FILE_PREFILTER")]
    file_prefilter: Option<String>,
    /// Do not evaluate this rule (repeatable, by rule_id); replaces the
    /// config file's `disabled_rules`.
    #[arg(
        long = "disable-rule",
        value_name = "RULE_ID",
        env = "SENSOR_DISABLE_RULES",
        value_delimiter = ','
    )]
    disable_rules: Vec<String>,
    /// Override a rule's severity: RULE_ID=low|medium|high|critical (repeatable).
    #[arg(
        long = "rule-severity",
        value_name = "RULE_ID=LEVEL",
        env = "SENSOR_RULE_SEVERITY",
        value_delimiter = ','
    )]
    rule_severity: Vec<String>,
    /// Override a rule's risk score: RULE_ID=0..100 (repeatable).
    #[arg(
        long = "rule-risk-score",
        value_name = "RULE_ID=N",
        env = "SENSOR_RULE_RISK_SCORE",
        value_delimiter = ','
    )]
    rule_risk_score: Vec<String>,
    /// Exception lists: a Kibana NDJSON export, a TOML file or a directory
    /// of them (repeatable); replaces the config file's `exceptions`.
    #[arg(
        long = "exceptions",
        value_name = "PATH",
        env = "SENSOR_EXCEPTIONS",
        value_delimiter = ','
    )]
    exceptions: Vec<PathBuf>,
    /// Apply this exception list (by list_id) to every rule (repeatable).
    #[arg(
        long = "global-exceptions",
        value_name = "LIST_ID",
        env = "SENSOR_GLOBAL_EXCEPTIONS",
        value_delimiter = ','
    )]
    global_exceptions: Vec<String>,
    /// Load this eBPF object instead of the embedded one.
    #[arg(long, value_name = "PATH", env = "SENSOR_EBPF_OBJECT_PATH")]
    ebpf_object: Option<PathBuf>,
    /// Kernel BTF file to take struct offsets from, for kernels without
    /// /sys/kernel/btf/vmlinux (e.g. a BTFHub file for this exact kernel).
    #[arg(long, value_name = "PATH", env = "SENSOR_BTF")]
    btf: Option<PathBuf>,
}

impl RunArgs {
    /// The effective settings: flags/env over the config file over defaults.
    fn settings(&self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        let over = ConfigFile {
            rules: (!self.rules.is_empty()).then(|| self.rules.clone()),
            alerts: self.alerts.clone(),
            events: self.events.clone(),
            lifecycle_events: self.lifecycle_events.then_some(true),
            ring_buffer_mib: self.ring_buffer_mib,
            table_capacity: self.table_capacity,
            metrics_addr: self.metrics_addr.clone(),
            rotate_mib: self.rotate_mib,
            rotate_keep: self.rotate_keep,
            batch_ms: self.batch_ms,
            output_mode: self.output_mode.clone(),
            runtime_root: self.runtime_root.clone(),
            file_prefilter: self.file_prefilter.clone(),
            disabled_rules: (!self.disable_rules.is_empty()).then(|| self.disable_rules.clone()),
            rule_overrides: self.rule_overrides()?,
            exceptions: (!self.exceptions.is_empty()).then(|| self.exceptions.clone()),
            global_exceptions: (!self.global_exceptions.is_empty())
                .then(|| self.global_exceptions.clone()),
            value_lists: None,
        };
        Ok(config::resolve(&file, self.config.as_deref(), &over)?)
    }

    /// `--rule-severity` and `--rule-risk-score` as per-rule overrides.
    fn rule_overrides(
        &self,
    ) -> anyhow::Result<Option<std::collections::BTreeMap<String, RuleOverride>>> {
        let mut map = std::collections::BTreeMap::<String, RuleOverride>::new();
        for (flag, values) in [
            ("--rule-severity", &self.rule_severity),
            ("--rule-risk-score", &self.rule_risk_score),
        ] {
            for v in values {
                let Some((id, value)) = v.split_once('=') else {
                    anyhow::bail!("{flag} {v:?}: expected RULE_ID=VALUE");
                };
                let o = map.entry(id.trim().to_owned()).or_default();
                if flag == "--rule-severity" {
                    o.severity = Some(value.trim().to_owned());
                } else {
                    o.risk_score =
                        Some(value.trim().parse().map_err(|_| {
                            anyhow::anyhow!("{flag} {v:?}: {value:?} is not a number")
                        })?);
                }
            }
        }
        Ok((!map.is_empty()).then_some(map))
    }
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Report, per rule, whether the engine evaluates it; exit non-zero if
    /// any file is malformed.
    Check {
        /// Rule files or directories (non-recursive, *.toml).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Also apply this config file's tuning, exception lists and
        /// suppression to the rules, and print the active set: its version,
        /// load time, and each rule's exceptions and suppression.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// Rule file or directory (repeatable); default: the config file's
    /// `rules`, else the embedded seed rule.
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// The live sensor's TOML config file: its rules (unless `--rules`)
    /// and its rule tuning apply to the replay as they would live.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["query", "query_file"])]
    config: Option<PathBuf>,
    /// Where to write alerts (JSON lines); `-` is standard output.
    #[arg(long, value_name = "FILE|-", default_value = "-")]
    alerts: String,
    /// Instead of rules, answer one EQL query (event query or sequence,
    /// optionally `| head N` / `| tail N`) like an Elasticsearch EQL search:
    /// the matching events, or sequences, in order, on standard output.
    #[arg(long, value_name = "EQL", conflicts_with_all = ["rules", "query_file"])]
    query: Option<String>,
    /// Like `--query`, with the query read from a file.
    #[arg(long, value_name = "FILE", conflicts_with = "rules")]
    query_file: Option<PathBuf>,
    /// Query mode: the date field events are ordered by (epoch ms or a date string).
    #[arg(long, value_name = "FIELD", default_value = "@timestamp")]
    timestamp_field: String,
    /// Query mode: the field that orders events with equal timestamps
    /// (then input order).
    #[arg(long, value_name = "FIELD")]
    tiebreaker: Option<String>,
    /// Query mode: `ALIAS=TARGET` makes the field ALIAS read TARGET's
    /// values, like a mapping's alias field (repeatable).
    #[arg(long = "field-alias", value_name = "ALIAS=TARGET")]
    field_alias: Vec<String>,
    /// Query mode: an Elasticsearch index mapping (JSON: `{"properties": …}`
    /// or `{"mappings": {…}}`) of the events (repeatable): its aliases, its
    /// `null_value`s, and its fields — with the fields events have, the
    /// fields the query may name (another is an error, `?field` reads null).
    #[arg(long, value_name = "FILE")]
    mapping: Vec<PathBuf>,
    /// Query mode: most results returned (Elasticsearch's `size`,
    /// which defaults to 10 there) [default: all].
    #[arg(long, value_name = "N")]
    size: Option<usize>,
    /// Query mode: most samples per join key a `sample` query returns
    /// (Elasticsearch's `max_samples_per_key`) [default: 1].
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    max_samples_per_key: u64,
    /// Query mode: print each result as JSON (`events`: an event, or a
    /// sequence's events as an array) or as the value of `--id-field`
    /// (`ids`: a sequence's ids on one line, space-separated, `missing` for
    /// a missing-event step).
    #[arg(long, value_enum, default_value = "events")]
    output: QueryOutput,
    /// Query mode: the field `--output ids` prints.
    #[arg(long, value_name = "FIELD", required_if_eq("output", "ids"))]
    id_field: Option<String>,
    /// ECS events, one JSON object per line or one JSON array of objects;
    /// `-` is standard input.
    #[arg(value_name = "EVENTS|-")]
    events: String,
}

/// How `replay --query` prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum QueryOutput {
    /// One JSON document per result.
    Events,
    /// One line of ids per result.
    Ids,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
        Command::Run(args) => live(args),
        Command::Config {
            command: ConfigCommand::Check(args),
        } => {
            let settings = args.settings()?;
            // Rules are part of the configuration: load them too.
            let started = std::time::Instant::now();
            let rules = load_tuned_rules(&settings)?;
            let policy = alert_policy(&settings, &rules)?;
            let load_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            eprintln!(
                "{}",
                sensor::rules::active::ActiveSet::describe(&rules, &policy, load_ms).summary()
            );
            print!(
                "{}",
                toml::to_string(&settings).context("rendering settings")?
            );
            eprintln!("config ok: {} rules loaded", rules.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules {
            command: RulesCommand::Check { paths, config },
        } => {
            let stdout = io::stdout();
            let mut out = stdout.lock();
            let mut ok = rules::check_paths(&paths, &mut out)?;
            if let (Some(path), true) = (config, ok) {
                let started = std::time::Instant::now();
                let file = ConfigFile::load(&path)?;
                let over = ConfigFile {
                    rules: Some(paths.clone()),
                    metrics_addr: Some(String::new()),
                    ..ConfigFile::default()
                };
                let settings = config::resolve(&file, Some(&path), &over)?;
                match load_tuned_rules(&settings)
                    .and_then(|r| alert_policy(&settings, &r).map(|p| (r, p)))
                {
                    Ok((rules, policy)) => {
                        let load_ms =
                            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                        let active =
                            sensor::rules::active::ActiveSet::describe(&rules, &policy, load_ms);
                        write!(out, "active {}", active.report())?;
                    }
                    Err(e) => {
                        writeln!(out, "active rule set: error: {e:#}")?;
                        ok = false;
                    }
                }
            }
            out.flush()?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Replay(args) => replay(args),
    }
}

/// The configured rules with the configured tuning applied (disabled
/// rules left out, severity and risk-score overrides in their metadata).
fn load_tuned_rules(settings: &Settings) -> anyhow::Result<RuleSet> {
    let (rules, skipped) = load_rules_and_skipped(&settings.rules)?;
    let (rules, applied) = rules::tuning::apply(rules, &skipped, &settings.tuning)?;
    if !applied.disabled.is_empty() {
        eprintln!(
            "sensor: rules disabled by configuration: {}",
            applied.disabled.join(", ")
        );
    }
    if rules.is_empty() {
        anyhow::bail!("every loaded rule is disabled by configuration");
    }
    Ok(rules)
}

/// The exception lists and policy of the tuned rules, with a warning on
/// stderr for each rule reference to a list no file defines.
fn alert_policy(
    settings: &Settings,
    rules: &RuleSet,
) -> anyhow::Result<sensor::rules::policy::AlertPolicy> {
    let t = &settings.tuning;
    let catalogue =
        sensor::rules::exceptions::ExceptionCatalogue::load_paths(&t.exceptions, &t.value_lists)?;
    let (policy, warnings) = sensor::rules::policy::AlertPolicy::build(rules, &catalogue, t)
        .map_err(|e| anyhow::anyhow!("exceptions: {e}"))?;
    for w in warnings {
        eprintln!("sensor: warning: {w}");
    }
    Ok(policy)
}

/// Loads the rule set for `--rules` (or the embedded default), reporting
/// skipped rules on stderr.
fn load_rules(paths: &[PathBuf]) -> anyhow::Result<RuleSet> {
    Ok(load_rules_and_skipped(paths)?.0)
}

/// [`load_rules`], with the rules it recognised and skipped.
fn load_rules_and_skipped(
    paths: &[PathBuf],
) -> anyhow::Result<(RuleSet, Vec<sensor::rules::SkippedRule>)> {
    if paths.is_empty() {
        return Ok((
            RuleSet::embedded_default().context("loading the embedded default rule")?,
            Vec::new(),
        ));
    }
    // The rule error is already a rendered diagnostic (file:line:col and a
    // caret); `main` adds the one `error: ` prefix.
    let report = RuleSet::load_paths(paths).map_err(|e| {
        let text = e.to_string();
        anyhow::anyhow!(
            "{}",
            text.strip_prefix("error: ").unwrap_or(&text).to_owned()
        )
    })?;
    let without_prefix = |e: &sensor::rules::RuleError| {
        let text = e.to_string();
        text.strip_prefix("error: ").unwrap_or(&text).to_owned()
    };
    if report.ruleset.is_empty() && !report.errors.is_empty() {
        // Fatal: one `error:` line (added by `main`) says why, each file's
        // diagnostic follows it.
        let mut msg = format!("no rule could be loaded from {}", display_paths(paths));
        for e in &report.errors {
            msg.push('\n');
            msg.push_str(&without_prefix(e));
        }
        anyhow::bail!(msg);
    }
    // One bad file never stops the others: each is reported, the rest load.
    for e in &report.errors {
        eprintln!("warning: skipping a rule file: {}", without_prefix(e));
    }
    for s in &report.skipped {
        eprintln!(
            "warning: skipping rule {} ({}) from {}: {}",
            s.rule_id,
            s.name,
            s.path.display(),
            s.reason
        );
    }
    if report.ruleset.is_empty() {
        anyhow::bail!("no supported rules in {}", display_paths(paths));
    }
    Ok((report.ruleset, report.skipped))
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn live(args: RunArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings()?;
    let load_started = std::time::Instant::now();
    let rules = load_tuned_rules(&settings)?;
    let policy = alert_policy(&settings, &rules)?;
    let active = sensor::rules::active::ActiveSet::describe(
        &rules,
        &policy,
        u64::try_from(load_started.elapsed().as_millis()).unwrap_or(u64::MAX),
    );
    eprintln!("sensor: {}", active.summary());
    eprintln!(
        "sensor: rules: {} loaded{} in {} ms",
        rules.len(),
        if settings.rules.is_empty() {
            " (embedded default)"
        } else {
            ""
        },
        load_started.elapsed().as_millis()
    );
    let opts = sensor::service::live::LiveOptions {
        rules,
        policy,
        active,
        settings,
        ebpf_object: args.ebpf_object,
        btf: args.btf,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let stats = runtime.block_on(sensor::service::live::run(opts))?;
    eprintln!(
        "sensor: summary {}",
        serde_json::to_string(&stats).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    if args.query.is_some() || args.query_file.is_some() {
        return replay_query(args);
    }
    let (rules, policy) = match &args.config {
        Some(path) => {
            let file = ConfigFile::load(path)?;
            let over = ConfigFile {
                rules: (!args.rules.is_empty()).then(|| args.rules.clone()),
                // Replay opens no endpoint: the file's address is not checked.
                metrics_addr: Some(String::new()),
                ..ConfigFile::default()
            };
            let settings = config::resolve(&file, Some(path), &over)?;
            let rules = load_tuned_rules(&settings)?;
            let policy = alert_policy(&settings, &rules)?;
            (rules, policy)
        }
        None => (load_rules(&args.rules)?, Default::default()),
    };
    let target = OutputTarget::parse(&args.alerts);
    let out = target
        .open()
        .with_context(|| format!("opening alerts output {}", target.describe()))?;
    let mut writer = AlertWriter::new(out).with_policy(policy);
    let stderr = io::stderr();
    let mut diag = stderr.lock();
    let stats = if args.events == "-" {
        sensor::service::replay::replay(io::stdin().lock(), &rules, &mut writer, &mut diag)
    } else {
        let f = File::open(&args.events)
            .with_context(|| format!("opening events file {}", args.events))?;
        sensor::service::replay::replay(BufReader::new(f), &rules, &mut writer, &mut diag)
    }
    .with_context(|| format!("reading events from {}", args.events))?;
    eprintln!("replay: {stats}");
    Ok(if stats.write_errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `sensor replay --query`: one query's results on standard output.
/// A query file or mapping: text of at most the rule files' cap (4 MiB).
fn read_small_text(path: &std::path::Path, what: &str) -> anyhow::Result<String> {
    use sensor::rules::{read_text_capped, MAX_RULE_FILE_BYTES};
    read_text_capped(path, MAX_RULE_FILE_BYTES)
        .with_context(|| format!("reading the {what} {}", path.display()))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the {what} {} is larger than {} MiB",
                path.display(),
                MAX_RULE_FILE_BYTES / (1024 * 1024)
            )
        })
}

fn replay_query(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    use sensor::eql::EqlErrorKind;
    use sensor::service::replay::{run_query, QueryError, QueryOptions};
    let query = match (&args.query, &args.query_file) {
        (Some(q), _) => q.clone(),
        (None, Some(path)) => read_small_text(path, "query file")?,
        (None, None) => anyhow::bail!("replay: no query given"),
    };
    let mut opts = QueryOptions {
        timestamp_field: args.timestamp_field.clone(),
        tiebreaker: args.tiebreaker.clone(),
        size: args.size,
        max_samples_per_key: usize::try_from(args.max_samples_per_key).unwrap_or(usize::MAX),
        ..QueryOptions::default()
    };
    for path in &args.mapping {
        let text = read_small_text(path, "mapping")?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("parsing the mapping {}", path.display()))?;
        opts.mapping
            .add_json(&json, &mut opts.aliases)
            .map_err(|e| anyhow::anyhow!("the mapping {}: {e}", path.display()))?;
    }
    for spec in &args.field_alias {
        let Some((alias, target)) = spec.split_once('=') else {
            anyhow::bail!("--field-alias {spec:?}: expected ALIAS=TARGET");
        };
        let (alias, target) = (alias.trim(), target.trim());
        if alias.is_empty() || target.is_empty() {
            anyhow::bail!("--field-alias {spec:?}: expected ALIAS=TARGET");
        }
        opts.aliases.insert(alias, target);
    }
    let stderr = io::stderr();
    let mut diag = stderr.lock();
    let outcome = if args.events == "-" {
        run_query(io::stdin().lock(), &query, &opts, &mut diag)
    } else {
        let f = File::open(&args.events)
            .with_context(|| format!("opening events file {}", args.events))?;
        run_query(BufReader::new(f), &query, &opts, &mut diag)
    };
    let (results, stats) = match outcome {
        Ok(r) => r,
        Err(e) => {
            // Exit status 3: valid EQL this engine does not evaluate; 2: not
            // valid EQL; 1: anything else (as for every command).
            let code = match &e {
                QueryError::Eql(eql, _) if eql.kind == EqlErrorKind::Unsupported => 3,
                QueryError::Eql(..) => 2,
                QueryError::Io(_) => 1,
            };
            let text = e.to_string();
            eprintln!("error: {}", text.strip_prefix("error: ").unwrap_or(&text));
            return Ok(ExitCode::from(code));
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let id_field = args.id_field.as_deref().map(sensor::eql::FieldRef::new);
    let missing = serde_json::json!({"missing": true});
    for events in &results {
        match (args.output, &id_field) {
            (QueryOutput::Ids, Some(field)) => {
                let ids: Vec<String> = events
                    .iter()
                    .map(|e| match e {
                        Some(e) => id_of(e.as_ref(), field),
                        None => "missing".to_owned(),
                    })
                    .collect();
                writeln!(out, "{}", ids.join(" "))?;
            }
            _ => {
                let all: Vec<&serde_json::Value> = events
                    .iter()
                    .map(|e| e.as_deref().unwrap_or(&missing))
                    .collect();
                if let [one] = all.as_slice() {
                    serde_json::to_writer(&mut out, one)?;
                } else {
                    serde_json::to_writer(&mut out, &all)?;
                }
                writeln!(out)?;
            }
        }
    }
    out.flush().context("writing results")?;
    eprintln!("replay: {stats}");
    Ok(ExitCode::SUCCESS)
}

/// The first value of `field` in `event` as text (`null` when it has none).
fn id_of(event: &serde_json::Value, field: &sensor::eql::FieldRef) -> String {
    use sensor::eql::{Document, Value};
    let mut id = "null".to_owned();
    event.visit(field, &mut |v| {
        id = match v {
            Value::Str(s) => s.to_owned(),
            Value::Int(i) => i.to_string(),
            Value::Float(x) => x.to_string(),
            Value::Bool(b) => b.to_string(),
        };
        true
    });
    id
}
