//! `cargo xtask bench`: what the sensor costs the host, against an exec
//! storm, next to the tools a user would run instead.
//!
//! One run, as root, from the workspace root:
//! 1. builds the sensor (`crate::build`);
//! 2. fires storms of `--execs` spawn+exec+wait of /bin/true from `--workers`
//!    threads in each configuration — bare, the sensor (alerts only), the
//!    sensor writing every event, a bpftrace exec one-liner, auditd with an
//!    execve rule — interleaved (the order rotates each round) and repeated
//!    `--rounds` times; figures are medians, overheads are medians of the
//!    per-round ratios to that round's bare storm;
//! 3. measures the watcher's CPU time (utime+stime from /proc/PID/stat,
//!    before the storm and once it is idle again after it), its peak RSS
//!    (VmHWM) and the events it lost;
//! 4. a paced storm at `--rate` exec/s for `--paced-secs` with the sensor:
//!    its CPU as % of one core;
//! 5. `--live-procs` sleeping processes started before the sensor (so it
//!    seeds them all), then a storm: peak RSS.
//!
//! Targets are reported, not asserted. Every process started here (sensor,
//! bpftrace, auditd, sleepers) and the audit rule are removed on every exit
//! path, including errors and Ctrl-C. Nothing here uses the network; the
//! only package-manager use is installing bpftrace/auditd when missing
//! (skipped with `--no-install`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::storm::{self, Spawner, StormResult, StormSpec};

/// Targets from issue #6 (reported against, not asserted).
mod alert_storm;
mod catalogue;
mod conn_storm;
mod file_storm;
mod procstat;
mod report;
mod watchers;

use alert_storm::*;
pub use file_storm::file_storm_driver;
use file_storm::*;
use procstat::*;
use report::*;
use watchers::*;

const TARGET_WALL_OVERHEAD_PCT: f64 = 5.0;
const TARGET_PACED_CPU_PCT: f64 = 3.0;
const TARGET_RSS_MIB: f64 = 64.0;

const BEGIN_MARKER: &str = "<!-- bench:begin -->";
const END_MARKER: &str = "<!-- bench:end -->";
const SECTION_HEADING: &str = "## Overhead: exec storm (cargo xtask bench)";

const BPFTRACE_PROGRAM: &str = r#"BEGIN { printf("bench-ready\n"); } tracepoint:syscalls:sys_enter_execve { printf("%s\n", str(args->filename)); }"#;
const AUDIT_KEY: &str = "xtask-bench";

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Execs per storm.
    #[arg(long, default_value_t = 20_000)]
    pub execs: u64,
    /// Rounds; every configuration runs once per round, order rotating.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Storm worker threads [default: number of CPUs].
    #[arg(long)]
    pub workers: Option<usize>,
    /// How the storm starts each /bin/true (posix_spawn: the lightest
    /// driver; compare with --spawners).
    #[arg(long, value_enum, default_value_t = Spawner::Spawn)]
    pub spawner: Spawner,
    /// Paced storm rate (exec/s) for the sensor-CPU figure; 0 skips it.
    #[arg(long, default_value_t = 1600.0)]
    pub rate: f64,
    /// Length of each paced storm, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub paced_secs: f64,
    /// Sleeping processes alive while the sensor starts (RSS figure); 0 skips it.
    #[arg(long, default_value_t = 10_000)]
    pub live_procs: usize,
    /// Skip the bpftrace and auditd comparisons.
    #[arg(long)]
    pub no_alternatives: bool,
    /// Never call apt-get: missing bpftrace/auditd are reported unavailable.
    #[arg(long)]
    pub no_install: bool,
    /// Use this sensor binary instead of building it.
    #[arg(long, value_name = "PATH")]
    pub sensor: Option<PathBuf>,
    /// Also write the results into BENCHMARKS.md (between the bench markers).
    #[arg(long)]
    pub write: bool,
    /// Only compare the storm spawners (fork, posix_spawn, Command), bare.
    #[arg(long)]
    pub spawners: bool,
    /// Execs per alert storm (every one raises an alert); 0 skips it.
    #[arg(long, default_value_t = 20_000)]
    pub alert_execs: u64,
    /// Run only the alert storm.
    #[arg(long)]
    pub alert_storm_only: bool,
    /// Run only the file storm (the D4C rules, prefilter on/off).
    #[arg(long)]
    pub file_storm_only: bool,
    /// Files per file storm (4 file operations each).
    #[arg(long, default_value_t = 20_000)]
    pub files: u64,
    /// The file storm's workload: `small` (create, append, rename, unlink
    /// `--files` files by absolute path), `small-relative` (the same by
    /// plain name, from inside the directory), `tar` (unpack a tar of
    /// /usr/share/doc) or `git` (check out a commit of the same tree).
    #[arg(long, value_enum, default_value_t = FileWorkload::Small)]
    pub file_storm_workload: FileWorkload,
    /// File storm: turn on the kernel's eBPF run-time statistics
    /// (`kernel.bpf_stats_enabled`) and report the programs' time per file
    /// operation. Timing every program run costs time of its own: the
    /// wall and storm-CPU overheads of such a run are inflated.
    #[arg(long)]
    pub bpf_stats: bool,
    /// Also run the alert storm (and, with `--rules`, the whole-catalogue
    /// storms) with this sensor binary (e.g. one built before a change),
    /// interleaved with the current one: before/after ratios from the same
    /// run.
    #[arg(long, value_name = "PATH")]
    pub baseline_sensor: Option<PathBuf>,
    /// Run only the whole-catalogue bench: one rule set per `--rules`
    /// (repeatable): `seed` (the embedded rule) or comma-separated rule
    /// paths for the sensor's `--rules` (`builtin:d4c`, directories,
    /// files), optionally named `LABEL=paths`. Each set gets an exec storm
    /// and the file storms (`tar` and `git`, each in a directory under the
    /// workspace and one under /tmp) per round, and with
    /// `--baseline-sensor` the same again with that binary; see
    /// BENCHMARKS.md "Whole catalogue".
    #[arg(long, value_name = "SET")]
    pub rules: Vec<String>,
    /// Run only the connection storm: this many TCP connections to a
    /// local server, bare and with a sensor per `--rules` set (`seed` when
    /// none); see BENCHMARKS.md "Connection storm".
    #[arg(long, value_name = "N")]
    pub conn_storm: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Config {
    Bare,
    Sensor,
    SensorEvents,
    Bpftrace,
    Auditd,
}

impl Config {
    fn label(self) -> &'static str {
        match self {
            Config::Bare => "bare (no watcher)",
            Config::Sensor => "sensor --alerts /dev/null",
            Config::SensorEvents => "sensor --alerts /dev/null --events /dev/null",
            Config::Bpftrace => "bpftrace execve one-liner > file",
            Config::Auditd => "auditd + execve rule",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Config::Bare => "bare",
            Config::Sensor => "sensor",
            Config::SensorEvents => "sensor+events",
            Config::Bpftrace => "bpftrace",
            Config::Auditd => "auditd",
        }
    }
}

/// One storm under one configuration.
#[derive(Clone, Debug, Default)]
struct Sample {
    wall_s: f64,
    rate: f64,
    execs: u64,
    failures: u64,
    /// CPU seconds of the storm: driver threads plus every /bin/true, which
    /// includes the kernel-side work done in their context (eBPF programs
    /// on the tracepoints, audit records).
    storm_cpu_s: f64,
    /// CPU seconds of the watcher (user+system) from storm start to idle.
    cpu_s: Option<f64>,
    hwm_kib: Option<u64>,
    /// RssAnon when the storm is over.
    anon_kib: Option<u64>,
    lost: Option<u64>,
    /// Exec events the watcher reported (all execs on the host for the
    /// sensor; `/bin/true` lines for bpftrace; EXECVE records for auditd).
    seen: Option<u64>,
}

impl Sample {
    fn cpu_pct(&self) -> Option<f64> {
        self.cpu_s.map(|c| 100.0 * c / self.wall_s.max(1e-9))
    }
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if !crate::setup::is_root() {
        bail!("the bench loads eBPF programs and audit rules: run it as root");
    }
    install_stop_handler();
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let spec = StormSpec {
        execs: args.execs.max(1),
        workers,
        rate: None,
        spawner: args.spawner,
    };
    let work = TempDir::new()?;

    if args.spawners {
        return compare_spawners(&spec, args.rounds.max(1));
    }

    let sensor_bin = match &args.sensor {
        Some(p) => p.clone(),
        None => crate::build().context("building the sensor")?,
    };
    if args.alert_storm_only {
        return alert_storm(args, &spec, &sensor_bin, &work);
    }
    if args.file_storm_only {
        return file_storm(args, &sensor_bin, &work);
    }
    if let Some(n) = args.conn_storm {
        return conn_storm::conn_storm(args, n.max(1), workers, &sensor_bin);
    }
    if !args.rules.is_empty() {
        return catalogue::catalogue(args, &spec, &sensor_bin, &work);
    }
    let mut configs = vec![Config::Bare, Config::Sensor, Config::SensorEvents];
    let mut unavailable: BTreeMap<Config, String> = BTreeMap::new();
    if !args.no_alternatives {
        for (cfg, probe) in [
            (Config::Bpftrace, probe_bpftrace as fn(bool) -> Result<()>),
            (Config::Auditd, probe_auditd),
        ] {
            match probe(args.no_install) {
                Ok(()) => configs.push(cfg),
                Err(e) => {
                    say(&format!("{} unavailable: {e:#}", cfg.short()));
                    unavailable.insert(cfg, format!("{e:#}"));
                }
            }
        }
    }

    let started = Instant::now();
    let load_before = loadavg();
    say(&format!(
        "storm: {} execs of /bin/true per run, {} workers, {}; {} rounds of {}",
        spec.execs,
        workers,
        spec.spawner.name(),
        args.rounds,
        configs
            .iter()
            .map(|c| c.short())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // Warm-up: page cache, dentries, the storm's own first-touch costs.
    let warm = storm::run(&StormSpec {
        execs: (spec.execs / 10).max(500),
        ..spec
    })?;
    say(&format!("warm-up: {:.0} exec/s", warm.rate()));

    let mut samples: BTreeMap<Config, Vec<Option<Sample>>> = BTreeMap::new();
    let rounds = args.rounds.max(1);
    for round in 0..rounds {
        let mut order = configs.clone();
        let n = order.len();
        order.rotate_left(round % n);
        for cfg in order {
            if unavailable.contains_key(&cfg) {
                samples.entry(cfg).or_default().push(None);
                continue;
            }
            match measure(cfg, &spec, &sensor_bin, &work) {
                Ok(s) => {
                    say(&format!(
                        "round {}/{rounds} {:<14} {:>6} execs in {:6.2} s = {:6.0} exec/s, storm CPU {:.2} s{}{}",
                        round + 1,
                        cfg.short(),
                        s.execs,
                        s.wall_s,
                        s.rate,
                        s.storm_cpu_s,
                        s.cpu_s
                            .map(|c| format!(", watcher CPU {c:.2} s"))
                            .unwrap_or_default(),
                        s.lost
                            .map(|l| format!(", lost {l}, seen {}", s.seen.unwrap_or(0)))
                            .unwrap_or_default()
                    ));
                    samples.entry(cfg).or_default().push(Some(s));
                }
                Err(e) if storm::stopped() => return Err(e),
                Err(e) if matches!(cfg, Config::Bpftrace | Config::Auditd) => {
                    say(&format!(
                        "{} failed, dropped from the bench: {e:#}",
                        cfg.short()
                    ));
                    unavailable.insert(cfg, format!("{e:#}"));
                    samples.entry(cfg).or_default().push(None);
                }
                Err(e) => return Err(e.context(format!("storm with {}", cfg.short()))),
            }
        }
    }

    // Before the live-process phase: mass-spawning and killing thousands of
    // processes spikes the load average.
    let load_after = loadavg();
    let mut paced = Vec::new();
    if args.rate > 0.0 && args.paced_secs > 0.0 {
        let pspec = StormSpec {
            execs: (args.rate * args.paced_secs).round().max(1.0) as u64,
            rate: Some(args.rate),
            // Spare workers: one slow spawn must not make the pacer fall behind.
            workers: spec.workers * 2,
            ..spec
        };
        for round in 0..rounds {
            let s = measure(Config::Sensor, &pspec, &sensor_bin, &work)
                .context("paced storm with the sensor")?;
            say(&format!(
                "paced {}/{rounds}: {} execs in {:.2} s = {:.0} exec/s, sensor CPU {:.2} s = {:.2}% of a core",
                round + 1,
                s.execs,
                s.wall_s,
                s.rate,
                s.cpu_s.unwrap_or(0.0),
                s.cpu_pct().unwrap_or(0.0)
            ));
            paced.push(s);
        }
    }

    let live = if args.live_procs > 0 {
        match measure_live(args.live_procs, &spec, &sensor_bin) {
            Ok(l) => Some(Ok(l)),
            Err(e) if storm::stopped() => return Err(e),
            Err(e) => {
                say(&format!("live-process RSS run failed: {e:#}"));
                Some(Err(format!("{e:#}")))
            }
        }
    } else {
        None
    };

    let report = Report {
        args: args.clone(),
        spec,
        configs,
        samples,
        unavailable,
        paced,
        live,
        elapsed: started.elapsed(),
        load_before,
        load_after,
    };
    let md = report.markdown();
    println!("{md}");
    if args.write {
        let path = crate::workspace_root().join("BENCHMARKS.md");
        write_section(&path, &md)?;
        say(&format!("updated {}", path.display()));
    }
    if args.alert_execs > 0 {
        alert_storm(args, &spec, &sensor_bin, &work)?;
    }
    Ok(())
}

fn say(msg: &str) {
    eprintln!("xtask bench: {msg}");
}

extern "C" fn on_stop_signal(_: libc::c_int) {
    storm::STOP.store(true, Ordering::Relaxed);
}

/// Ctrl-C / SIGTERM stop the storm; the bench then unwinds through its
/// guards (children run in their own process groups, so the terminal's
/// SIGINT reaches only us and cleanup stays in order).
fn install_stop_handler() {
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    unsafe {
        let h = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, h);
        libc::signal(libc::SIGTERM, h);
        libc::signal(libc::SIGHUP, h);
    }
}

fn check_stop() -> Result<()> {
    if storm::stopped() {
        bail!("interrupted");
    }
    Ok(())
}

/// Sleeps in small steps, returning early (Err) on Ctrl-C.
fn nap(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        check_stop()?;
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
    }
    check_stop()
}

// ---------------------------------------------------------------- measuring

/// A started watcher: which processes to charge CPU to, whose RSS to read.
trait Watcher {
    fn cpu_pids(&self) -> Vec<i32>;
    fn rss_pid(&self) -> Option<i32>;
    /// Stops it; returns (lost, seen) if it reports them.
    fn finish(&mut self, storm: &StormResult) -> Result<(Option<u64>, Option<u64>)>;
}

fn start_watcher(
    cfg: Config,
    sensor_bin: &Path,
    work: &TempDir,
) -> Result<Option<Box<dyn Watcher>>> {
    Ok(match cfg {
        Config::Bare => None,
        Config::Sensor => Some(Box::new(SensorRun::start(sensor_bin, false)?)),
        Config::SensorEvents => Some(Box::new(SensorRun::start(sensor_bin, true)?)),
        Config::Bpftrace => Some(Box::new(BpftraceRun::start(&work.path)?)),
        Config::Auditd => Some(Box::new(AuditRun::start(&work.path)?)),
    })
}

fn measure(cfg: Config, spec: &StormSpec, sensor_bin: &Path, work: &TempDir) -> Result<Sample> {
    let mut watcher = start_watcher(cfg, sensor_bin, work)?;
    // Same settle time for every configuration, bare included.
    nap(Duration::from_millis(500))?;
    let pids = watcher.as_ref().map(|w| w.cpu_pids()).unwrap_or_default();
    let cpu0 = cpu_ticks(&pids);
    let storm0 = self_cpu_s();
    let result = storm::run(spec)?;
    let storm_cpu_s = self_cpu_s() - storm0;
    let cpu1 = if pids.is_empty() {
        0
    } else {
        wait_idle(&pids)?
    };
    let mut sample = Sample {
        wall_s: result.wall.as_secs_f64(),
        rate: result.rate(),
        execs: result.execs,
        failures: result.failures,
        storm_cpu_s,
        ..Sample::default()
    };
    if let Some(w) = watcher.as_mut() {
        sample.cpu_s = Some(cpu1.saturating_sub(cpu0) as f64 / clk_tck());
        sample.hwm_kib = w.rss_pid().and_then(vm_hwm_kib);
        sample.anon_kib = w.rss_pid().and_then(|p| status_kib(p, "RssAnon"));
        let (lost, seen) = w.finish(&result)?;
        sample.lost = lost;
        sample.seen = seen;
    }
    if result.failures > 0 {
        say(&format!(
            "warning: {} of {} /bin/true runs failed",
            result.failures, result.execs
        ));
    }
    Ok(sample)
}

/// Polls until the processes' CPU time stops moving (two 100 ms samples in
/// a row, at most 10 s): the watcher has caught up with the storm.
fn wait_idle(pids: &[i32]) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = cpu_ticks(pids);
    let mut stable = 0;
    loop {
        nap(Duration::from_millis(100))?;
        let now = cpu_ticks(pids);
        if now == last {
            stable += 1;
            if stable >= 2 {
                return Ok(now);
            }
        } else {
            stable = 0;
            last = now;
        }
        if Instant::now() > deadline {
            return Ok(now);
        }
    }
}

struct LiveResult {
    procs: usize,
    seeded: Option<u64>,
    hwm_kib: u64,
    hwm_idle_kib: Option<u64>,
    rss_split: Option<String>,
    storm: StormResult,
    lost: u64,
}

fn measure_live(n: usize, spec: &StormSpec, sensor_bin: &Path) -> Result<LiveResult> {
    let pid_max: usize = fs::read_to_string("/proc/sys/kernel/pid_max")?
        .trim()
        .parse()?;
    let running = fs::read_dir("/proc")?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|s| s.parse::<u32>().is_ok())
        })
        .count();
    if running + n + 2_000 > pid_max {
        bail!("{n} more processes would come too close to pid_max {pid_max} ({running} running)");
    }
    let avail_kib = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| parse_status_kib(&m, "MemAvailable"))
        .unwrap_or(0);
    // A sleeping `sleep` costs ~200 KiB (kernel stack, page tables, private pages).
    if avail_kib < (n as u64) * 512 + 1024 * 1024 {
        bail!(
            "not enough memory for {n} sleepers ({} MiB available)",
            avail_kib / 1024
        );
    }
    let t = Instant::now();
    let sleepers = Sleepers::start(n)?;
    say(&format!(
        "started {n} sleeping processes in {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    let mut sensor = SensorRun::start(sensor_bin, false)?;
    let pid = sensor.child.pid();
    nap(Duration::from_millis(500))?;
    let hwm_idle_kib = vm_hwm_kib(pid);
    let storm = storm::run(spec)?;
    wait_idle(&[pid])?;
    let hwm_kib = vm_hwm_kib(pid).context("reading the sensor's VmHWM")?;
    let rss_split = rss_breakdown(pid);
    let summary = sensor.stop()?;
    let seeded = sensor.seeded();
    drop(sleepers);
    let lost = ["lost_exec", "lost_fork", "lost_exit"]
        .iter()
        .map(|k| summary.get(*k).copied().unwrap_or(0))
        .sum();
    say(&format!(
        "{n} live processes (seeded {}): sensor VmHWM {:.1} MiB after a {}-exec storm",
        seeded.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
        hwm_kib as f64 / 1024.0,
        storm.execs
    ));
    Ok(LiveResult {
        procs: n,
        seeded,
        hwm_kib,
        hwm_idle_kib,
        rss_split,
        storm,
        lost,
    })
}

// ------------------------------------------------------------ alert storm

/// `--spawners`: the storm's own cost per spawner, bare, interleaved.
fn compare_spawners(spec: &StormSpec, rounds: usize) -> Result<()> {
    let all = [Spawner::Fork, Spawner::Spawn, Spawner::Command];
    let mut walls: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut cpu: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    storm::run(&StormSpec {
        execs: 1000,
        ..*spec
    })?;
    for round in 0..rounds {
        let mut order = all.to_vec();
        order.rotate_left(round % all.len());
        for sp in order {
            let before = self_cpu_s();
            let r = storm::run(&StormSpec {
                spawner: sp,
                ..*spec
            })?;
            let used = self_cpu_s() - before;
            say(&format!(
                "{:<12} {} execs in {:.2} s = {:.0} exec/s, storm driver CPU {:.2} s",
                sp.name(),
                r.execs,
                r.wall.as_secs_f64(),
                r.rate(),
                used
            ));
            walls
                .entry(sp.name())
                .or_default()
                .push(r.wall.as_secs_f64());
            cpu.entry(sp.name()).or_default().push(used);
        }
    }
    println!("| spawner | median wall (s) | exec/s | driver CPU (s) | spread (max/min wall) |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for sp in all {
        let w = &walls[sp.name()];
        let m = median(w).unwrap_or(0.0);
        println!(
            "| {} | {:.2} | {:.0} | {:.2} | {:.2} |",
            sp.name(),
            m,
            spec.execs as f64 / m.max(1e-9),
            median(&cpu[sp.name()]).unwrap_or(0.0),
            w.iter().cloned().fold(f64::MIN, f64::max) / w.iter().cloned().fold(f64::MAX, f64::min)
        );
    }
    Ok(())
}

/// CPU seconds of this process (the storm driver threads) and its reaped
/// children (the /bin/true runs).
fn self_cpu_s() -> f64 {
    rusage_cpu_s(libc::RUSAGE_SELF) + children_cpu_s()
}

/// CPU seconds of this process's reaped children.
fn children_cpu_s() -> f64 {
    rusage_cpu_s(libc::RUSAGE_CHILDREN)
}

/// User+system CPU seconds of `getrusage(who)` (0 when it fails).
fn rusage_cpu_s(who: libc::c_int) -> f64 {
    // SAFETY: getrusage writes into the zeroed struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return 0.0;
    }
    ru.ru_utime.tv_sec as f64
        + ru.ru_utime.tv_usec as f64 / 1e6
        + ru.ru_stime.tv_sec as f64
        + ru.ru_stime.tv_usec as f64 / 1e6
}

/// The first line of every bench section: when, on how many CPUs, under
/// what load.
fn run_header() -> String {
    format!(
        "Run {} on {} CPUs; load average {}.\n",
        utc_now(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    )
}

// ----------------------------------------------------------------- report

/// A private directory under $TMPDIR, removed when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<TempDir> {
        let path = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_summary() {
        let st = "Name:\tsensor\nVmPeak:\t  100 kB\nVmHWM:\t   23456 kB\n";
        assert_eq!(parse_status_kib(st, "VmHWM"), Some(23456));
        assert_eq!(parse_status_kib(st, "VmRSS"), None);
        let s = parse_flat_json_numbers(
            r#"{"exec":20011,"fork":20040,"exit":20031,"decode_errors":0,"lost_exec":0}"#,
        );
        assert_eq!(s.get("exec"), Some(&20011));
        assert_eq!(s.get("lost_exec"), Some(&0));
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn splices_benchmarks_section() {
        let fresh = splice_section("# Benchmarks\n", "A");
        assert!(fresh.contains(SECTION_HEADING));
        assert!(fresh.contains(&format!("{BEGIN_MARKER}\nA\n{END_MARKER}")));
        let again = splice_section(&format!("{fresh}\n## Other\nkeep\n"), "B");
        assert!(again.contains(&format!("{BEGIN_MARKER}\nB\n{END_MARKER}")));
        assert!(!again.contains("\nA\n"));
        assert!(again.contains("## Other\nkeep"));
        assert_eq!(again.matches(SECTION_HEADING).count(), 1);
    }

    #[test]
    fn auditd_conf_redirects_the_log() {
        let c = auditd_conf(
            "log_file = /var/log/audit/audit.log\nmax_log_file = 8\nflush = INCREMENTAL_ASYNC\n",
            Path::new("/tmp/x/audit.log"),
        );
        assert!(c.contains("log_file = /tmp/x/audit.log\n"));
        assert!(c.contains("max_log_file = 1024\n"));
        assert!(c.contains("flush = INCREMENTAL_ASYNC\n"));
    }
}
