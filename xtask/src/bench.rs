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
    /// Also run the alert storm with this sensor binary (e.g. one built
    /// before a change), interleaved with the current one: before/after
    /// ratios from the same run.
    #[arg(long, value_name = "PATH")]
    pub baseline_sensor: Option<PathBuf>,
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

fn clk_tck() -> f64 {
    procfs::ticks_per_second() as f64
}

/// utime+stime (clock ticks) of a process, all its threads included
/// (`/proc/<pid>/stat`, parsed by the procfs crate: our own children, whose
/// stat lines the kernel writes).
fn proc_ticks(pid: i32) -> Option<u64> {
    let stat = procfs::process::Process::new(pid).ok()?.stat().ok()?;
    Some(stat.utime + stat.stime)
}

fn cpu_ticks(pids: &[i32]) -> u64 {
    pids.iter().filter_map(|&p| proc_ticks(p)).sum()
}

fn status_kib(pid: i32, key: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, key)
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix(':')?;
        v.split_whitespace().next()?.parse().ok()
    })
}

fn vm_hwm_kib(pid: i32) -> Option<u64> {
    status_kib(pid, "VmHWM")
}

/// The current RSS split as the kernel counts it (anonymous, file-backed,
/// shared memory such as mmapped BPF maps), in MiB.
fn rss_breakdown(pid: i32) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mib = |k| {
        parse_status_kib(&status, k).map_or("?".to_owned(), |v| format!("{:.1}", v as f64 / 1024.0))
    };
    Some(format!(
        "RssAnon {}, RssFile {}, RssShmem {} MiB",
        mib("RssAnon"),
        mib("RssFile"),
        mib("RssShmem")
    ))
}

/// `2026-11-26 09:01 UTC`.
fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ------------------------------------------------------------ child guard

/// A child process in its own process group, killed (TERM, then KILL) when
/// dropped if still running.
struct ChildGuard {
    name: &'static str,
    child: Child,
}

impl ChildGuard {
    fn spawn(name: &'static str, cmd: &mut Command) -> Result<ChildGuard> {
        let child = cmd
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(ChildGuard { name, child })
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `sig`, waits up to `grace`, then SIGKILLs; returns the status.
    fn stop(&mut self, sig: libc::c_int, grace: Duration) -> Result<ExitStatus> {
        if let Some(s) = self.exited() {
            return Ok(s);
        }
        // SAFETY: kill(2) on our own, not yet reaped, child.
        unsafe { libc::kill(self.pid(), sig) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(s) = self.exited() {
                return Ok(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let s = self.child.wait()?;
        say(&format!(
            "warning: {} did not stop within {grace:?} of signal {sig}; killed",
            self.name
        ));
        Ok(s)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.stop(libc::SIGTERM, Duration::from_secs(5));
        }
    }
}

/// Lines a child writes to a pipe, collected by a thread.
struct Lines {
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn new(r: impl std::io::Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a line satisfying `pred`; Err on EOF or timeout.
    fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            check_stop()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("timed out after {timeout:?}");
            }
            match self.rx.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(line) => {
                    let hit = pred(&line);
                    self.seen.push(line);
                    if hit {
                        return Ok(());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("output closed"),
            }
        }
    }

    fn drain(&mut self, settle: Duration) {
        let deadline = Instant::now() + settle;
        while let Ok(l) = self
            .rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(l);
        }
    }

    fn tail(&self, n: usize) -> String {
        let start = self.seen.len().saturating_sub(n);
        self.seen[start..].join("\n")
    }
}

// ------------------------------------------------------------------ sensor

struct SensorRun {
    child: ChildGuard,
    stderr: Lines,
}

impl SensorRun {
    fn start(bin: &Path, events: bool) -> Result<SensorRun> {
        let mut args = vec!["--alerts", "/dev/null"];
        if events {
            args.extend(["--events", "/dev/null"]);
        }
        SensorRun::start_with(bin, &args)
    }

    /// `sensor run --metrics-addr 127.0.0.1:0` plus `args`.
    fn start_with(bin: &Path, args: &[&str]) -> Result<SensorRun> {
        let mut cmd = Command::new(bin);
        cmd.args(["run", "--metrics-addr", "127.0.0.1:0"])
            .args(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = ChildGuard::spawn("sensor", &mut cmd)?;
        let pipe = child.child.stderr.take().context("sensor stderr")?;
        let mut run = SensorRun {
            child,
            stderr: Lines::new(pipe),
        };
        if let Err(e) = run
            .stderr
            .wait_for(Duration::from_secs(60), |l| l == "sensor: ready")
        {
            run.stderr.drain(Duration::from_millis(300));
            bail!(
                "sensor did not become ready ({e}):\n{}",
                run.stderr.tail(20)
            );
        }
        Ok(run)
    }

    /// SIGTERM, wait for the summary line, return it as key → number.
    fn stop(&mut self) -> Result<BTreeMap<String, u64>> {
        let status = self.child.stop(libc::SIGTERM, Duration::from_secs(15))?;
        self.stderr.drain(Duration::from_millis(500));
        if !status.success() {
            bail!("sensor exited with {status}:\n{}", self.stderr.tail(20));
        }
        let line = self
            .stderr
            .seen
            .iter()
            .find_map(|l| l.strip_prefix("sensor: summary "))
            .ok_or_else(|| anyhow!("no summary line from the sensor:\n{}", self.stderr.tail(20)))?;
        Ok(parse_flat_json_numbers(line))
    }

    fn seeded(&self) -> Option<u64> {
        self.stderr.seen.iter().find_map(|l| {
            let rest = l.strip_prefix("sensor: process table seeded with ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
    }
}

impl Watcher for SensorRun {
    fn cpu_pids(&self) -> Vec<i32> {
        vec![self.child.pid()]
    }
    fn rss_pid(&self) -> Option<i32> {
        Some(self.child.pid())
    }
    fn finish(&mut self, _storm: &StormResult) -> Result<(Option<u64>, Option<u64>)> {
        let s = self.stop()?;
        let lost = ["lost_exec", "lost_fork", "lost_exit"]
            .iter()
            .map(|k| s.get(*k).copied().unwrap_or(0))
            .sum();
        Ok((Some(lost), s.get("exec").copied()))
    }
}

/// `{"a":1,"b":2}` → {a: 1, b: 2}; non-numeric values are skipped.
fn parse_flat_json_numbers(s: &str) -> BTreeMap<String, u64> {
    let body = s.trim().trim_start_matches('{').trim_end_matches('}');
    body.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once(':')?;
            Some((
                k.trim().trim_matches('"').to_owned(),
                v.trim().parse().ok()?,
            ))
        })
        .collect()
}

// ---------------------------------------------------------------- bpftrace

fn probe_bpftrace(no_install: bool) -> Result<()> {
    if which("bpftrace").is_none() {
        if no_install {
            bail!("bpftrace is not installed (--no-install)");
        }
        crate::setup::Apt::default().install(&["bpftrace"])?;
    }
    let out = Command::new("bpftrace")
        .arg("--version")
        .output()
        .context("running bpftrace --version")?;
    if !out.status.success() {
        bail!(
            "bpftrace --version failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

struct BpftraceRun {
    child: ChildGuard,
    out: PathBuf,
    err: PathBuf,
}

impl BpftraceRun {
    fn start(work: &Path) -> Result<BpftraceRun> {
        let out = work.join("bpftrace.out");
        let err = work.join("bpftrace.err");
        let mut cmd = Command::new("bpftrace");
        cmd.args(["-e", BPFTRACE_PROGRAM])
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out)?)
            .stderr(fs::File::create(&err)?);
        let mut run = BpftraceRun {
            child: ChildGuard::spawn("bpftrace", &mut cmd)?,
            out,
            err,
        };
        // BEGIN fires once every probe is attached.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = fs::read_to_string(&run.out).unwrap_or_default();
            if text.lines().any(|l| l == "bench-ready") {
                return Ok(run);
            }
            if let Some(status) = run.child.exited() {
                bail!(
                    "bpftrace exited with {status} before attaching: {}",
                    last_lines(&fs::read_to_string(&run.err).unwrap_or_default(), 5)
                );
            }
            if Instant::now() > deadline {
                bail!("bpftrace did not attach within 60 s");
            }
            nap(Duration::from_millis(50))?;
        }
    }
}

impl Watcher for BpftraceRun {
    fn cpu_pids(&self) -> Vec<i32> {
        vec![self.child.pid()]
    }
    fn rss_pid(&self) -> Option<i32> {
        Some(self.child.pid())
    }
    fn finish(&mut self, _storm: &StormResult) -> Result<(Option<u64>, Option<u64>)> {
        self.child.stop(libc::SIGINT, Duration::from_secs(10))?;
        let out = fs::read(&self.out).unwrap_or_default();
        let err = fs::read_to_string(&self.err).unwrap_or_default();
        let seen = out
            .split(|b| *b == b'\n')
            .filter(|l| *l == b"/bin/true")
            .count() as u64;
        // bpftrace reports perf-buffer overflows as "Lost N events".
        let text = String::from_utf8_lossy(&out);
        let lost = text
            .lines()
            .chain(err.lines())
            .filter_map(|l| {
                let rest = l.trim().strip_prefix("Lost ")?;
                rest.strip_suffix(" events")?.trim().parse::<u64>().ok()
            })
            .sum();
        let _ = fs::remove_file(&self.out);
        Ok((Some(lost), Some(seen)))
    }
}

// ------------------------------------------------------------------ auditd

fn probe_auditd(no_install: bool) -> Result<()> {
    if which("auditd").is_none() || which("auditctl").is_none() {
        if no_install {
            bail!("auditd is not installed (--no-install)");
        }
        crate::setup::Apt::default().install(&["auditd"])?;
    }
    let st = audit_status()?;
    if let Some(pid) = st.get("pid").filter(|p| **p != 0) {
        bail!("an audit daemon already runs (pid {pid}); the bench does not touch it");
    }
    Ok(())
}

/// `auditctl -s` as key → number.
fn audit_status() -> Result<BTreeMap<String, u64>> {
    let out = Command::new("auditctl")
        .arg("-s")
        .output()
        .context("running auditctl -s")?;
    if !out.status.success() {
        bail!(
            "auditctl -s failed (no audit support or no CAP_AUDIT_CONTROL?): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect())
}

fn auditctl(args: &[&str]) -> Result<()> {
    let out = Command::new("auditctl")
        .args(args)
        .output()
        .context("running auditctl")?;
    if !out.status.success() {
        bail!(
            "auditctl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// auditd in the foreground with its log in the bench's temporary
/// directory, Debian's default backlog settings, and one execve rule.
/// Dropping it removes the rule, stops auditd and restores the kernel's
/// audit settings as found.
struct AuditRun {
    saved: BTreeMap<String, u64>,
    child: Option<ChildGuard>,
    rule_added: bool,
    dir: PathBuf,
    lost_before: u64,
}

impl AuditRun {
    fn start(work: &Path) -> Result<AuditRun> {
        let saved = audit_status()?;
        if let Some(pid) = saved.get("pid").filter(|p| **p != 0) {
            bail!("an audit daemon already runs (pid {pid})");
        }
        let dir = work.join("audit");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        let base = fs::read_to_string("/etc/audit/auditd.conf").unwrap_or_default();
        fs::write(
            dir.join("auditd.conf"),
            auditd_conf(&base, &dir.join("audit.log")),
        )?;
        fs::set_permissions(
            dir.join("auditd.conf"),
            std::os::unix::fs::PermissionsExt::from_mode(0o640),
        )?;
        let mut run = AuditRun {
            lost_before: saved.get("lost").copied().unwrap_or(0),
            saved,
            child: None,
            rule_added: false,
            dir: dir.clone(),
        };
        let mut cmd = Command::new("auditd");
        cmd.arg("-n")
            .arg("-c")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.join("auditd.stdout"))?)
            .stderr(fs::File::create(dir.join("auditd.stderr"))?);
        let child = ChildGuard::spawn("auditd", &mut cmd)?;
        let pid = child.pid() as u64;
        run.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if audit_status()?.get("pid") == Some(&pid) {
                break;
            }
            if let Some(status) = run.child.as_mut().and_then(ChildGuard::exited) {
                bail!(
                    "auditd exited with {status}: {}",
                    last_lines(
                        &fs::read_to_string(dir.join("auditd.stderr")).unwrap_or_default(),
                        5
                    )
                );
            }
            if Instant::now() > deadline {
                bail!("auditd did not register with the kernel within 15 s");
            }
            nap(Duration::from_millis(50))?;
        }
        auditctl(&["-b", "8192", "--backlog_wait_time", "60000"])?;
        run.rule_added = true; // set first: a half-added rule is still removed
        auditctl(&[
            "-a",
            "always,exit",
            "-F",
            "arch=b64",
            "-S",
            "execve",
            "-k",
            AUDIT_KEY,
        ])?;
        run.lost_before = audit_status()?.get("lost").copied().unwrap_or(0);
        Ok(run)
    }

    fn cleanup(&mut self) -> Result<()> {
        let mut errors = Vec::new();
        if self.rule_added {
            if let Err(e) = auditctl(&["-D", "-k", AUDIT_KEY]) {
                errors.push(format!("{e:#}"));
            } else {
                self.rule_added = false;
            }
        }
        if let Some(mut c) = self.child.take() {
            if let Err(e) = c.stop(libc::SIGTERM, Duration::from_secs(10)) {
                errors.push(format!("{e:#}"));
            }
        }
        let mut restore: Vec<String> = Vec::new();
        for (key, flag) in [
            ("backlog_limit", "-b"),
            ("backlog_wait_time", "--backlog_wait_time"),
            ("enabled", "-e"),
        ] {
            if let Some(v) = self.saved.get(key) {
                restore.push(flag.to_owned());
                restore.push(v.to_string());
            }
        }
        if !restore.is_empty() {
            let r: Vec<&str> = restore.iter().map(String::as_str).collect();
            if let Err(e) = auditctl(&r) {
                errors.push(format!("{e:#}"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            bail!("audit cleanup: {}", errors.join("; "))
        }
    }
}

fn auditd_conf(base: &str, log: &Path) -> String {
    let mut out = String::new();
    let mut have_log = false;
    for line in base.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        match key {
            "log_file" => {
                have_log = true;
                let _ = writeln!(out, "log_file = {}", log.display());
            }
            // One storm's records in one file, to count them.
            "max_log_file" => out.push_str("max_log_file = 1024\n"),
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if !have_log {
        let _ = writeln!(out, "log_file = {}", log.display());
        out.push_str("log_format = ENRICHED\nflush = INCREMENTAL_ASYNC\nfreq = 50\n");
    }
    out
}

impl Watcher for AuditRun {
    fn cpu_pids(&self) -> Vec<i32> {
        // The daemon and the kernel thread that feeds it.
        let mut p: Vec<i32> = self.child.iter().map(ChildGuard::pid).collect();
        p.extend(pid_of_comm("kauditd"));
        p
    }
    fn rss_pid(&self) -> Option<i32> {
        self.child.as_ref().map(ChildGuard::pid)
    }
    fn finish(&mut self, _storm: &StormResult) -> Result<(Option<u64>, Option<u64>)> {
        let lost_after = audit_status()?.get("lost").copied().unwrap_or(0);
        self.cleanup()?;
        let log = fs::read(self.dir.join("audit.log")).unwrap_or_default();
        let seen = log
            .split(|b| *b == b'\n')
            .filter(|l| l.starts_with(b"type=EXECVE ") && contains(l, b"a0=\"true\""))
            .count() as u64;
        let _ = fs::remove_dir_all(&self.dir);
        Ok((
            Some(lost_after.saturating_sub(self.lost_before)),
            Some(seen),
        ))
    }
}

impl Drop for AuditRun {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            say(&format!("warning: {e:#}"));
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn pid_of_comm(comm: &str) -> Option<i32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let c = fs::read_to_string(e.path().join("comm")).ok()?;
        (c.trim() == comm).then_some(pid)
    })
}

fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

fn last_lines(s: &str, n: usize) -> String {
    let v: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    v[v.len().saturating_sub(n)..].join(" | ")
}

// ---------------------------------------------------- live processes (RSS)

/// Sleeping processes in one process group; all SIGKILLed and reaped when
/// dropped.
struct Sleepers {
    pgid: i32,
    children: Vec<Child>,
}

impl Sleepers {
    fn start(n: usize) -> Result<Sleepers> {
        let mut s = Sleepers {
            pgid: 0,
            children: Vec::with_capacity(n),
        };
        for _ in 0..n {
            check_stop()?;
            let child = Command::new("sleep")
                .arg("600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(s.pgid)
                .spawn()
                .with_context(|| format!("starting sleeper #{}", s.children.len() + 1))?;
            if s.pgid == 0 {
                s.pgid = child.id() as i32;
            }
            s.children.push(child);
        }
        Ok(s)
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        if self.pgid > 0 {
            // SAFETY: the group holds only the sleepers started here.
            unsafe { libc::killpg(self.pgid, libc::SIGKILL) };
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
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

const ALERT_BEGIN_MARKER: &str = "<!-- alert-storm:begin -->";
const ALERT_END_MARKER: &str = "<!-- alert-storm:end -->";
const ALERT_SECTION_HEADING: &str = "## Alert storm (cargo xtask bench --alert-storm-only)";
/// Issue #9's target for the agent CPU one alert costs.
const TARGET_US_PER_ALERT: f64 = 10.0;
const QUERY_OPEN: &str = "query = '''\n";
const QUERY_CLOSE: &str = "\n'''";

/// The seed rule (its metadata and ATT&CK mapping, so alert documents have
/// their real size) with `query` replaced.
fn storm_rule(name: &str, rule_id: &str, query: &str) -> Result<String> {
    let seed_path = crate::workspace_root()
        .join("rules/persistence_suspicious_webserver_child_process_execution.toml");
    let seed = fs::read_to_string(&seed_path)
        .with_context(|| format!("reading {}", seed_path.display()))?;
    let body = seed.find(QUERY_OPEN).context("seed rule: no query")? + QUERY_OPEN.len();
    let end = body
        + seed[body..]
            .find(QUERY_CLOSE)
            .context("seed rule: unterminated query")?;
    let with_query = format!("{}{query}{}", &seed[..body], &seed[end..]);
    Ok(with_query
        .replace("497a7091-0ebd-44d7-88c4-367ab4d4d852", rule_id)
        .replace(
            "Web Server Exploitation Detected via Defend for Containers",
            name,
        ))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum AlertConfig {
    /// A rule matching none of the storm's execs.
    Quiet,
    /// A rule matching every exec of the storm.
    Alerting,
}

#[derive(Clone, Debug, Default)]
struct AlertSample {
    wall_s: f64,
    execs: u64,
    cpu_s: f64,
    alerts: u64,
    lost: u64,
    output_errors: u64,
}

fn measure_alert_storm(
    bin: &Path,
    rules: &Path,
    alerts_out: &Path,
    spec: &StormSpec,
) -> Result<AlertSample> {
    let _ = fs::remove_file(alerts_out);
    let mut sensor = SensorRun::start_with(
        bin,
        &[
            "--rules",
            rules.to_str().context("rules path")?,
            "--alerts",
            alerts_out.to_str().context("alerts path")?,
        ],
    )?;
    nap(Duration::from_millis(500))?;
    let pids = sensor.cpu_pids();
    let cpu0 = cpu_ticks(&pids);
    let result = storm::run(spec)?;
    let cpu1 = wait_idle(&pids)?;
    let summary = sensor.stop()?;
    let _ = fs::remove_file(alerts_out);
    let get = |k: &str| summary.get(k).copied().unwrap_or(0);
    Ok(AlertSample {
        wall_s: result.wall.as_secs_f64(),
        execs: result.execs,
        cpu_s: cpu1.saturating_sub(cpu0) as f64 / clk_tck(),
        alerts: get("alerts"),
        lost: get("lost_exec") + get("lost_fork") + get("lost_exit"),
        output_errors: get("output_errors"),
    })
}

/// Storms where every exec raises an alert, next to the same storm with a
/// rule that matches nothing: the sensor's CPU per alert and alerts/s, for
/// this sensor and optionally a baseline binary, interleaved.
fn alert_storm(
    args: &BenchArgs,
    spec: &StormSpec,
    sensor_bin: &Path,
    work: &TempDir,
) -> Result<()> {
    let spec = StormSpec {
        execs: args.alert_execs.max(1),
        ..*spec
    };
    let quiet = work.path.join("quiet.toml");
    let alerting = work.path.join("alerting.toml");
    fs::write(
        &quiet,
        storm_rule(
            "Bench: matches nothing",
            "00000000-0000-4000-8000-00000000b001",
            "process where event.type == \"start\" and process.name == \"xtask-bench-no-such-name\"",
        )?,
    )?;
    fs::write(
        &alerting,
        storm_rule(
            "Bench: every /bin/true exec",
            "00000000-0000-4000-8000-00000000b002",
            "process where event.type == \"start\" and process.name == \"true\"",
        )?,
    )?;
    let alerts_out = work.path.join("alerts.jsonl");
    let mut binaries = vec![("current", sensor_bin.to_path_buf())];
    if let Some(b) = &args.baseline_sensor {
        binaries.push(("baseline", b.clone()));
    }
    let runs: Vec<(&str, AlertConfig)> = binaries
        .iter()
        .flat_map(|(label, _)| {
            [
                (*label, AlertConfig::Quiet),
                (*label, AlertConfig::Alerting),
            ]
        })
        .collect();
    let rounds = args.rounds.max(1);
    say(&format!(
        "alert storm: {} execs of /bin/true per run, {} workers, {rounds} rounds of {}",
        spec.execs,
        spec.workers,
        runs.len()
    ));
    let mut samples: BTreeMap<(&str, AlertConfig), Vec<AlertSample>> = BTreeMap::new();
    for round in 0..rounds {
        let mut order = runs.clone();
        let n = order.len();
        order.rotate_left(round % n);
        for (label, cfg) in order {
            let bin = binaries
                .iter()
                .find(|(l, _)| *l == label)
                .map(|(_, b)| b.as_path())
                .context("binary")?;
            let rules = match cfg {
                AlertConfig::Quiet => &quiet,
                AlertConfig::Alerting => &alerting,
            };
            let s = measure_alert_storm(bin, rules, &alerts_out, &spec)
                .with_context(|| format!("alert storm with the {label} sensor"))?;
            say(&format!(
                "alert round {}/{rounds} {label:<8} {:<8} {} execs in {:.2} s, {} alerts, sensor CPU {:.2} s, lost {}, output errors {}",
                round + 1,
                format!("{cfg:?}").to_lowercase(),
                s.execs,
                s.wall_s,
                s.alerts,
                s.cpu_s,
                s.lost,
                s.output_errors
            ));
            samples.entry((label, cfg)).or_default().push(s);
        }
    }
    let md = alert_markdown(args, &spec, &binaries, &samples);
    println!("{md}");
    if args.write {
        let path = crate::workspace_root().join("BENCHMARKS.md");
        update_benchmarks(&path, |old| {
            splice_between(
                old,
                &md,
                [ALERT_BEGIN_MARKER, ALERT_END_MARKER],
                ALERT_SECTION_HEADING,
            )
        })?;
        say(&format!("updated {}", path.display()));
    }
    Ok(())
}

/// Median over rounds of the alerting run's CPU beyond the quiet run's
/// (scaled to the same exec count), per alert, in µs.
fn marginal_us_per_alert(quiet: &[AlertSample], alerting: &[AlertSample]) -> Option<f64> {
    median(
        &quiet
            .iter()
            .zip(alerting)
            .filter(|(_, a)| a.alerts > 0)
            .map(|(q, a)| {
                let quiet_cpu = q.cpu_s * a.execs as f64 / q.execs.max(1) as f64;
                1e6 * (a.cpu_s - quiet_cpu) / a.alerts as f64
            })
            .collect::<Vec<_>>(),
    )
}

fn alert_markdown(
    args: &BenchArgs,
    spec: &StormSpec,
    binaries: &[(&str, PathBuf)],
    samples: &BTreeMap<(&str, AlertConfig), Vec<AlertSample>>,
) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Run {} on {} CPUs; load average {}.\n",
        utc_now(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    let mut cmd = format!(
        "cargo xtask bench --alert-storm-only --alert-execs {} --rounds {}",
        spec.execs, args.rounds
    );
    if args.baseline_sensor.is_some() {
        cmd.push_str(" --baseline-sensor <sensor built before the change>");
    }
    if args.write {
        cmd.push_str(" --write");
    }
    let _ = writeln!(md, "```sh\n{cmd}\n```\n");
    let _ = writeln!(
        md,
        "{} × `/bin/true` (posix_spawn + waitpid) from {} workers per run. The sensor runs one rule — the seed rule's metadata and ATT&CK mapping, its query replaced — that matches every exec of the storm (alerting) or none (quiet); alerts go to a file. Sensor CPU = utime+stime from storm start until idle. CPU per alert = (alerting − quiet CPU, scaled to the same execs) / alerts, paired within a round; medians over rounds; runs interleaved, order rotating.\n",
        spec.execs, spec.workers
    );
    let _ = writeln!(
        md,
        "| sensor | rule | storm exec/s | alerts | alerts/s | sensor CPU (s) | % of a core | CPU per exec (µs) | CPU per alert (µs) | lost |"
    );
    let _ = writeln!(
        md,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut per_alert: Vec<Option<f64>> = Vec::new();
    let none = Vec::new();
    for (label, _) in binaries {
        let quiet = samples.get(&(*label, AlertConfig::Quiet)).unwrap_or(&none);
        let alerting = samples
            .get(&(*label, AlertConfig::Alerting))
            .unwrap_or(&none);
        let marginal = marginal_us_per_alert(quiet, alerting);
        per_alert.push(marginal);
        for (cfg, runs) in [
            (AlertConfig::Quiet, quiet),
            (AlertConfig::Alerting, alerting),
        ] {
            let med =
                |f: &dyn Fn(&AlertSample) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
            let _ = writeln!(
                md,
                "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                match cfg {
                    AlertConfig::Quiet => "quiet (no match)",
                    AlertConfig::Alerting => "alerting (every exec)",
                },
                fmt(med(&|s| s.execs as f64 / s.wall_s.max(1e-9)), 0),
                fmt(med(&|s| s.alerts as f64), 0),
                fmt(med(&|s| s.alerts as f64 / s.wall_s.max(1e-9)), 0),
                fmt(med(&|s| s.cpu_s), 2),
                fmt(med(&|s| 100.0 * s.cpu_s / s.wall_s.max(1e-9)), 1),
                fmt(med(&|s| 1e6 * s.cpu_s / s.execs.max(1) as f64), 1),
                match cfg {
                    AlertConfig::Alerting => fmt(marginal, 1),
                    AlertConfig::Quiet => "–".into(),
                },
                runs.iter().map(|s| s.lost).max().unwrap_or(0),
            );
        }
    }
    let _ = writeln!(md);
    if let [Some(now), Some(before)] = per_alert.as_slice() {
        let _ = writeln!(
            md,
            "CPU per alert: {now:.1} µs now, {before:.1} µs with the baseline binary (baseline/now = {:.2}).\n",
            before / now.max(1e-9)
        );
    }
    if let Some(Some(now)) = per_alert.first() {
        let _ = writeln!(
            md,
            "| target (issue #9) | measured | met |\n| --- | ---: | :---: |\n| agent CPU per alert ≤ {TARGET_US_PER_ALERT} µs | {now:.1} µs | {} |",
            if *now <= TARGET_US_PER_ALERT { "yes" } else { "no" }
        );
    }
    md
}

// ------------------------------------------------------------ spawners

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
    let mut total = 0.0;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: getrusage writes into the zeroed struct.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut ru) } == 0 {
            total += ru.ru_utime.tv_sec as f64
                + ru.ru_utime.tv_usec as f64 / 1e6
                + ru.ru_stime.tv_sec as f64
                + ru.ru_stime.tv_usec as f64 / 1e6;
        }
    }
    total
}

// ----------------------------------------------------------------- report

fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

struct Report {
    args: BenchArgs,
    spec: StormSpec,
    configs: Vec<Config>,
    samples: BTreeMap<Config, Vec<Option<Sample>>>,
    unavailable: BTreeMap<Config, String>,
    paced: Vec<Sample>,
    live: Option<std::result::Result<LiveResult, String>>,
    elapsed: Duration,
    load_before: String,
    load_after: String,
}

impl Report {
    fn ok_samples(&self, cfg: Config) -> Vec<&Sample> {
        self.samples
            .get(&cfg)
            .map(|v| v.iter().flatten().collect())
            .unwrap_or_default()
    }

    /// Median over rounds of wall(cfg)/wall(bare) in the same round.
    fn ratio(&self, cfg: Config) -> Option<f64> {
        self.paired(cfg, |m, b| m.wall_s / b.wall_s)
    }

    /// Median over rounds of f(cfg sample, bare sample of the same round).
    fn paired(&self, cfg: Config, f: impl Fn(&Sample, &Sample) -> f64) -> Option<f64> {
        let bare = self.samples.get(&Config::Bare)?;
        let mine = self.samples.get(&cfg)?;
        let r: Vec<f64> = bare
            .iter()
            .zip(mine)
            .filter_map(|(b, m)| Some(f(m.as_ref()?, b.as_ref()?)))
            .collect();
        median(&r)
    }

    /// Storm CPU with the watcher over bare storm CPU (kernel-side cost in
    /// the traced processes; far less sensitive to other load than wall time).
    fn cpu_ratio(&self, cfg: Config) -> Option<f64> {
        self.paired(cfg, |m, b| m.storm_cpu_s / b.storm_cpu_s.max(1e-9))
    }

    /// (storm CPU + watcher CPU) over bare storm CPU: the whole host's cost.
    fn host_cpu_ratio(&self, cfg: Config) -> Option<f64> {
        self.paired(cfg, |m, b| {
            (m.storm_cpu_s + m.cpu_s.unwrap_or(0.0)) / b.storm_cpu_s.max(1e-9)
        })
    }

    fn med(&self, cfg: Config, f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> = self.ok_samples(cfg).into_iter().filter_map(f).collect();
        median(&v)
    }

    fn markdown(&self) -> String {
        let mut md = String::new();
        let date = utc_now();
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned();
        let cpu = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| {
                c.lines().find_map(|l| {
                    l.strip_prefix("model name")
                        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
                })
            })
            .unwrap_or_default();
        let mem_gib = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| parse_status_kib(&m, "MemTotal"))
            .map_or(0.0, |k| k as f64 / 1024.0 / 1024.0);
        let ncpu = std::thread::available_parallelism().map_or(0, |n| n.get());
        let a = &self.args;
        let mut cmd = format!(
            "cargo xtask bench --execs {} --rounds {}",
            a.execs, a.rounds
        );
        if a.workers.is_some() {
            let _ = write!(cmd, " --workers {}", self.spec.workers);
        }
        if a.spawner != Spawner::Spawn {
            let _ = write!(cmd, " --spawner {}", a.spawner.arg());
        }
        let _ = write!(
            cmd,
            " --rate {} --paced-secs {} --live-procs {}",
            a.rate, a.paced_secs, a.live_procs
        );
        if a.no_alternatives {
            cmd.push_str(" --no-alternatives");
        }
        if a.write {
            cmd.push_str(" --write");
        }

        let _ = writeln!(md, "Run {date} on {ncpu} CPUs ({cpu}), {mem_gib:.0} GiB, kernel {kernel}; load average {} before, {} after the storms; {:.0} s in all.", self.load_before, self.load_after, self.elapsed.as_secs_f64());
        let _ = writeln!(md);
        let _ = writeln!(md, "```sh\n{cmd}\n```");
        let _ = writeln!(md);
        let _ = writeln!(
            md,
            "Storm: {} × `/bin/true` ({} + waitpid) from {} workers, {} rounds, configurations interleaved (order rotates each round). Medians over rounds; every \"vs bare\" is the median of per-round ratios to that round's bare storm. Storm CPU = user+system time of the storm driver and all its /bin/true children (getrusage): the kernel-side work done in the traced processes' context (eBPF programs on the tracepoints, audit records) lands here, and it is much less sensitive to other load on a shared machine than wall time. Watcher CPU = utime+stime of the watcher's processes (auditd: auditd + kauditd) from storm start until idle again; per 1,000 exec/s = that % of one core scaled from the storm's rate to 1,000 exec/s. Peak RSS = VmHWM (anon = RssAnon at the end; the rest is file-backed, including the mmapped BPF ring buffer).",
            self.spec.execs,
            self.spec.spawner.name(),
            self.spec.workers,
            self.args.rounds
        );
        let _ = writeln!(md);
        let _ = writeln!(md, "| configuration | storm wall (s) | exec/s | wall vs bare | storm CPU (s) | storm CPU vs bare | storm+watcher CPU vs bare | watcher CPU (% of a core) | watcher CPU per 1,000 exec/s | peak RSS (MiB) | lost | execs seen |");
        let _ = writeln!(
            md,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for &cfg in self.configs.iter().chain(
            self.unavailable
                .keys()
                .filter(|c| !self.configs.contains(c)),
        ) {
            let n_ok = self.ok_samples(cfg).len();
            if n_ok == 0 {
                let why = self
                    .unavailable
                    .get(&cfg)
                    .map(String::as_str)
                    .unwrap_or("no sample");
                let _ = writeln!(
                    md,
                    "| {} | unavailable: {} | | | | | | | | | | |",
                    cfg.label(),
                    why.replace('|', "/").replace('\n', " ")
                );
                continue;
            }
            let wall = self.med(cfg, |s| Some(s.wall_s));
            let rate = self.med(cfg, |s| Some(s.rate));
            let ratio = if cfg == Config::Bare {
                Some(1.0)
            } else {
                self.ratio(cfg)
            };
            let cpu = self.med(cfg, Sample::cpu_pct);
            let per_k = self.med(cfg, |s| Some(s.cpu_pct()? * 1000.0 / s.rate));
            let rss = self.med(cfg, |s| Some(s.hwm_kib? as f64 / 1024.0));
            let anon = self.med(cfg, |s| Some(s.anon_kib? as f64 / 1024.0));
            let storm_cpu = self.med(cfg, |s| Some(s.storm_cpu_s));
            let pct = |r: Option<f64>| {
                r.map(|r| format!("{r:.3} ({:+.1}%)", (r - 1.0) * 100.0))
                    .unwrap_or_else(|| "–".into())
            };
            let (cpu_ratio, host_ratio) = if cfg == Config::Bare {
                (Some(1.0), Some(1.0))
            } else {
                (self.cpu_ratio(cfg), self.host_cpu_ratio(cfg))
            };
            let lost: Vec<u64> = self.ok_samples(cfg).iter().filter_map(|s| s.lost).collect();
            let seen = self.med(cfg, |s| Some(s.seen? as f64));
            let partial = if n_ok < self.args.rounds {
                format!(" ({n_ok}/{} rounds)", self.args.rounds)
            } else {
                String::new()
            };
            let _ = writeln!(
                md,
                "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cfg.label(),
                partial,
                fmt(wall, 2),
                fmt(rate, 0),
                pct(ratio),
                fmt(storm_cpu, 2),
                pct(cpu_ratio),
                pct(host_ratio),
                fmt(cpu, 1),
                fmt(per_k, 2),
                match (rss, anon) {
                    (Some(r), Some(a)) => format!("{r:.1} (anon {a:.1})"),
                    (r, _) => fmt(r, 1),
                },
                if lost.is_empty() {
                    "–".into()
                } else {
                    format!("{}", lost.iter().max().copied().unwrap_or(0))
                },
                fmt(seen, 0),
            );
        }
        let _ = writeln!(md);
        let failed: u64 = self
            .samples
            .values()
            .flatten()
            .flatten()
            .map(|s| s.failures)
            .sum();
        if failed > 0 {
            let _ = writeln!(md, "Warning: {failed} `/bin/true` runs did not exit 0.");
            let _ = writeln!(md);
        }
        let _ = writeln!(md, "\"lost\" is the largest count over rounds (sensor: lost_exec+lost_fork+lost_exit from its summary; bpftrace: its \"Lost N events\"; auditd: the kernel's audit lost counter). \"execs seen\": sensor — every exec on the host during its run (the storm plus anything else running); bpftrace — `/bin/true` lines; auditd — EXECVE records of `true`.");
        let _ = writeln!(md);

        // Paced and live figures.
        let paced_cpu = median(
            &self
                .paced
                .iter()
                .filter_map(Sample::cpu_pct)
                .collect::<Vec<_>>(),
        );
        let paced_rate = median(&self.paced.iter().map(|s| s.rate).collect::<Vec<_>>());
        if !self.paced.is_empty() {
            let _ = writeln!(
                md,
                "Paced: the sensor (alerts only) under {} storms of {:.0} exec/s for {:.0} s: achieved {} exec/s, sensor CPU {}% of one core (median; runs: {}).",
                self.paced.len(),
                self.args.rate,
                self.args.paced_secs,
                fmt(paced_rate, 0),
                fmt(paced_cpu, 2),
                self.paced.iter().filter_map(Sample::cpu_pct).map(|c| format!("{c:.2}%")).collect::<Vec<_>>().join(", ")
            );
            let _ = writeln!(md);
        }
        match &self.live {
            Some(Ok(l)) => {
                let _ = writeln!(
                    md,
                    "Live processes: {} sleeping processes started before the sensor (table seeded with {}), then a {}-exec storm ({:.0} exec/s): sensor peak RSS (VmHWM) {:.1} MiB ({} MiB after seeding, before the storm; at the end: {}); lost {}.",
                    l.procs,
                    l.seeded.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
                    l.storm.execs,
                    l.storm.rate(),
                    l.hwm_kib as f64 / 1024.0,
                    l.hwm_idle_kib.map(|k| format!("{:.1}", k as f64 / 1024.0)).unwrap_or_else(|| "?".into()),
                    l.rss_split.as_deref().unwrap_or("?"),
                    l.lost
                );
                let _ = writeln!(md);
            }
            Some(Err(e)) => {
                let _ = writeln!(md, "Live processes: not measured: {e}");
                let _ = writeln!(md);
            }
            None => {}
        }

        // Targets.
        let _ = writeln!(md, "| target (issue #6) | measured | met |");
        let _ = writeln!(md, "| --- | ---: | :---: |");
        let yes = |b: bool| if b { "yes" } else { "**no**" };
        for cfg in [Config::Sensor, Config::SensorEvents] {
            if let Some(r) = self.ratio(cfg) {
                let o = (r - 1.0) * 100.0;
                let _ = writeln!(md, "| storm wall-time overhead ≤ {TARGET_WALL_OVERHEAD_PCT}% ({}) | {o:+.1}% | {} |", cfg.short(), yes(o <= TARGET_WALL_OVERHEAD_PCT));
            }
            if let Some(r) = self.cpu_ratio(cfg) {
                let o = (r - 1.0) * 100.0;
                let _ = writeln!(
                    md,
                    "| (same, measured as storm CPU, {}) | {o:+.1}% | {} |",
                    cfg.short(),
                    yes(o <= TARGET_WALL_OVERHEAD_PCT)
                );
            }
        }
        for cfg in [Config::Sensor, Config::SensorEvents] {
            let lost: Vec<u64> = self.ok_samples(cfg).iter().filter_map(|s| s.lost).collect();
            if !lost.is_empty() {
                let total: u64 = lost.iter().sum();
                let rate = self.med(cfg, |s| Some(s.rate)).unwrap_or(0.0);
                let _ = writeln!(md, "| zero lost events at the storm's rate ({}, ~{rate:.0} exec/s) | {total} over {} storms | {} |", cfg.short(), lost.len(), yes(total == 0));
            }
        }
        if let (Some(c), Some(r)) = (paced_cpu, paced_rate) {
            // Below the asked rate (a busy machine), scale linearly to it.
            let (c, how) = if r < 0.97 * self.args.rate {
                (
                    c * self.args.rate / r,
                    format!(" (scaled from {r:.0} exec/s achieved)"),
                )
            } else {
                (c, String::new())
            };
            let _ = writeln!(md, "| sensor CPU ≤ {TARGET_PACED_CPU_PCT}% of one core at {:.0} exec/s | {c:.2}%{how} | {} |", self.args.rate, yes(c <= TARGET_PACED_CPU_PCT));
        }
        if let Some(Ok(l)) = &self.live {
            let mib = l.hwm_kib as f64 / 1024.0;
            let _ = writeln!(
                md,
                "| peak RSS ≤ {TARGET_RSS_MIB} MiB with {} live processes | {mib:.1} MiB | {} |",
                l.procs,
                yes(mib <= TARGET_RSS_MIB)
            );
        }
        md
    }
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "–".into())
}

/// Replaces the text between the bench markers in BENCHMARKS.md, adding the
/// section (or the file) when missing.
fn write_section(path: &Path, body: &str) -> Result<()> {
    update_benchmarks(path, |old| splice_section(old, body))
}

fn update_benchmarks(path: &Path, edit: impl FnOnce(&str) -> String) -> Result<()> {
    let old = match fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n".to_owned(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    fs::write(path, edit(&old)).with_context(|| format!("writing {}", path.display()))
}

fn splice_section(old: &str, body: &str) -> String {
    splice_between(old, body, [BEGIN_MARKER, END_MARKER], SECTION_HEADING)
}

/// Replaces the text between `markers` in `old`; appends `heading` and the
/// block when the markers are missing.
fn splice_between(old: &str, body: &str, markers: [&str; 2], heading: &str) -> String {
    let [begin, end] = markers;
    let block = format!("{begin}\n{}\n{end}", body.trim_end());
    if let (Some(b), Some(e)) = (old.find(begin), old.find(end)) {
        if b < e {
            return format!("{}{block}{}", &old[..b], &old[e + end.len()..]);
        }
    }
    let mut out = old.trim_end().to_owned();
    if !out.contains(heading) {
        let _ = write!(out, "\n\n{heading}\n");
    }
    let _ = writeln!(out, "\n{block}");
    out
}

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
