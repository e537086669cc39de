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

use sensor::alert::AlertWriter;
use sensor::output::OutputTarget;
use sensor::rules::{self, RuleSet};

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
}

#[derive(Debug, Args, Default)]
struct RunArgs {
    /// Rule file or directory (repeatable); default: the embedded seed rule.
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// Where to write alerts (JSON lines); `-` is standard output.
    #[arg(long, value_name = "FILE|-", default_value = "-")]
    alerts: String,
    /// Also write every event (JSON lines) here; `-` is standard output.
    #[arg(long, value_name = "FILE|-")]
    events: Option<String>,
    /// Also write `fork` and `end` events to the events output.
    #[arg(long)]
    lifecycle_events: bool,
    /// Kernel ring buffer size in MiB (a power of two).
    #[arg(long, value_name = "MIB", default_value_t = 16, value_parser = parse_ring_mib)]
    ring_buffer_mib: u32,
    /// Most processes the process table keeps.
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    table_capacity: usize,
    /// Load this eBPF object instead of the embedded one.
    #[arg(long, value_name = "PATH")]
    ebpf_object: Option<PathBuf>,
}

fn parse_ring_mib(s: &str) -> Result<u32, String> {
    let v: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if v == 0 || !v.is_power_of_two() || v > 1024 {
        return Err(format!("{v} is not a power of two between 1 and 1024"));
    }
    Ok(v)
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Report, per rule, whether the engine evaluates it; exit non-zero if
    /// any file is malformed.
    Check {
        /// Rule files or directories (non-recursive, *.toml).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// Rule file or directory (repeatable); default: the embedded seed rule.
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// Where to write alerts (JSON lines); `-` is standard output.
    #[arg(long, value_name = "FILE|-", default_value = "-")]
    alerts: String,
    /// ECS events, one JSON object per line; `-` is standard input.
    #[arg(value_name = "EVENTS.jsonl|-")]
    events: String,
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
    match cli.command.unwrap_or(Command::Run(RunArgs {
        alerts: "-".to_owned(),
        ring_buffer_mib: 16,
        table_capacity: 65_536,
        ..RunArgs::default()
    })) {
        Command::Run(args) => live(args),
        Command::Rules {
            command: RulesCommand::Check { paths },
        } => {
            let stdout = io::stdout();
            let mut out = stdout.lock();
            let ok = rules::check_paths(&paths, &mut out)?;
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

/// Loads the rule set for `--rules` (or the embedded default), reporting
/// skipped rules on stderr.
fn load_rules(paths: &[PathBuf]) -> anyhow::Result<RuleSet> {
    if paths.is_empty() {
        return RuleSet::embedded_default().context("loading the embedded default rule");
    }
    let report = RuleSet::load_paths(paths).map_err(|e| anyhow::anyhow!("loading rules:\n{e}"))?;
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
    Ok(report.ruleset)
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn live(args: RunArgs) -> anyhow::Result<ExitCode> {
    let rules = load_rules(&args.rules)?;
    eprintln!(
        "sensor: rules: {} loaded{}",
        rules.len(),
        if args.rules.is_empty() { " (embedded default)" } else { "" }
    );
    let opts = sensor::live::LiveOptions {
        rules,
        alerts: OutputTarget::parse(&args.alerts),
        events: args.events.as_deref().map(OutputTarget::parse),
        lifecycle_events: args.lifecycle_events,
        ring_buffer_bytes: args.ring_buffer_mib * 1024 * 1024,
        ebpf_object: args.ebpf_object,
        table_capacity: args.table_capacity,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let stats = runtime.block_on(sensor::live::run(opts))?;
    eprintln!(
        "sensor: summary {}",
        serde_json::to_string(&stats).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let rules = load_rules(&args.rules)?;
    let target = OutputTarget::parse(&args.alerts);
    let out = target
        .open()
        .with_context(|| format!("opening alerts output {}", target.describe()))?;
    let mut writer = AlertWriter::new(out);
    let stderr = io::stderr();
    let mut diag = stderr.lock();
    let stats = if args.events == "-" {
        sensor::replay::replay(io::stdin().lock(), &rules, &mut writer, &mut diag)
    } else {
        let f = File::open(&args.events)
            .with_context(|| format!("opening events file {}", args.events))?;
        sensor::replay::replay(BufReader::new(f), &rules, &mut writer, &mut diag)
    }
    .with_context(|| format!("reading events from {}", args.events))?;
    eprintln!("replay: {stats}");
    Ok(if stats.write_errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
