//! The benchmark's report: medians, the markdown tables, and the sections
//! spliced into BENCHMARKS.md.

use super::*;

pub(super) fn median(v: &[f64]) -> Option<f64> {
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

pub(super) struct Report {
    pub(super) args: BenchArgs,
    pub(super) spec: StormSpec,
    pub(super) configs: Vec<Config>,
    pub(super) samples: BTreeMap<Config, Vec<Option<Sample>>>,
    pub(super) unavailable: BTreeMap<Config, String>,
    pub(super) paced: Vec<Sample>,
    pub(super) live: Option<std::result::Result<LiveResult, String>>,
    pub(super) elapsed: Duration,
    pub(super) load_before: String,
    pub(super) load_after: String,
}

impl Report {
    pub(super) fn ok_samples(&self, cfg: Config) -> Vec<&Sample> {
        self.samples
            .get(&cfg)
            .map(|v| v.iter().flatten().collect())
            .unwrap_or_default()
    }

    /// Median over rounds of wall(cfg)/wall(bare) in the same round.
    pub(super) fn ratio(&self, cfg: Config) -> Option<f64> {
        self.paired(cfg, |m, b| m.wall_s / b.wall_s)
    }

    /// Median over rounds of f(cfg sample, bare sample of the same round).
    pub(super) fn paired(&self, cfg: Config, f: impl Fn(&Sample, &Sample) -> f64) -> Option<f64> {
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
    pub(super) fn cpu_ratio(&self, cfg: Config) -> Option<f64> {
        self.paired(cfg, |m, b| m.storm_cpu_s / b.storm_cpu_s.max(1e-9))
    }

    /// (storm CPU + watcher CPU) over bare storm CPU: the whole host's cost.
    pub(super) fn host_cpu_ratio(&self, cfg: Config) -> Option<f64> {
        self.paired(cfg, |m, b| {
            (m.storm_cpu_s + m.cpu_s.unwrap_or(0.0)) / b.storm_cpu_s.max(1e-9)
        })
    }

    pub(super) fn med(&self, cfg: Config, f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> = self.ok_samples(cfg).into_iter().filter_map(f).collect();
        median(&v)
    }

    pub(super) fn markdown(&self) -> String {
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

pub(super) fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "–".into())
}

/// Replaces the text between the bench markers in BENCHMARKS.md, adding the
/// section (or the file) when missing.
pub(super) fn write_section(path: &Path, body: &str) -> Result<()> {
    update_benchmarks(path, |old| splice_section(old, body))
}

/// Replaces one bench mode's section of the workspace's BENCHMARKS.md
/// (between its `markers`, or appended under `heading`) and says so.
pub(super) fn write_mode_section(body: &str, markers: [&str; 2], heading: &str) -> Result<()> {
    let path = crate::workspace_root().join("BENCHMARKS.md");
    update_benchmarks(&path, |old| splice_between(old, body, markers, heading))?;
    say(&format!("updated {}", path.display()));
    Ok(())
}

pub(super) fn update_benchmarks(path: &Path, edit: impl FnOnce(&str) -> String) -> Result<()> {
    let old = match fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n".to_owned(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    fs::write(path, edit(&old)).with_context(|| format!("writing {}", path.display()))
}

pub(super) fn splice_section(old: &str, body: &str) -> String {
    splice_between(old, body, [BEGIN_MARKER, END_MARKER], SECTION_HEADING)
}

/// Replaces the text between `markers` in `old`; appends `heading` and the
/// block when the markers are missing.
pub(super) fn splice_between(old: &str, body: &str, markers: [&str; 2], heading: &str) -> String {
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
