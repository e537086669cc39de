//! `cargo xtask bench --rules SET [--rules SET ...]`: what the rules a user
//! loads cost the agent. Each `--rules` value is one rule set: `seed` (the
//! embedded rule), or comma-separated rule paths passed to the sensor as
//! `--rules` each (`builtin:d4c`, a directory, a file), optionally named
//! `LABEL=paths`. Every round runs, for each set in rotating order, one
//! exec storm (`--execs` /bin/true) and one file storm (`tar -xf` of
//! /usr/share/doc into a tmpfs) with a sensor started for it, and reads the
//! agent's CPU (utime+stime from /proc, storm start to idle), the records it
//! lost, and the rule load time it printed. Figures are medians over the
//! rounds; the ratios compare each set with the first (exec) and the second
//! (file) set, the targets (#22: everything loaded at most 1.5× the
//! seed rule per exec and 1.5× D4C per file operation).

use super::file_storm::{make_archive, prepare, storm as file_storm_run, StormMount, Workload};
use super::*;

const CATALOGUE_BEGIN_MARKER: &str = "<!-- catalogue:begin -->";
const CATALOGUE_END_MARKER: &str = "<!-- catalogue:end -->";
const CATALOGUE_HEADING: &str = "## Whole catalogue (cargo xtask bench --rules ...)";

/// One `--rules` value.
struct RuleSetArg {
    label: String,
    /// Empty: the embedded seed rule.
    paths: Vec<String>,
}

impl RuleSetArg {
    fn parse(v: &str) -> RuleSetArg {
        let (label, list) = match v.split_once('=') {
            Some((l, rest)) => (l.to_owned(), rest),
            None => (v.to_owned(), v),
        };
        let paths = if list == "seed" {
            Vec::new()
        } else {
            list.split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()
        };
        RuleSetArg { label, paths }
    }

    fn sensor_args(&self) -> Vec<&str> {
        let mut a = vec!["--alerts", "/dev/null"];
        for p in &self.paths {
            a.extend(["--rules", p.as_str()]);
        }
        a
    }
}

/// One round of one set.
#[derive(Default, Clone)]
struct CatalogueSample {
    rules: Option<u64>,
    load_ms: Option<f64>,
    exec_cpu_us: f64,
    lost_exec: u64,
    file_cpu_ms_per_k: f64,
    lost_file: u64,
}

/// `sensor: rules: N loaded[ (embedded default)] in M ms` → (N, M).
fn load_line(seen: &[String]) -> (Option<u64>, Option<f64>) {
    for l in seen {
        if let Some(rest) = l.strip_prefix("sensor: rules: ") {
            let n = rest.split_whitespace().next().and_then(|n| n.parse().ok());
            let ms = rest
                .rsplit_once(" in ")
                .and_then(|(_, t)| t.strip_suffix(" ms"))
                .and_then(|t| t.parse().ok());
            return (n, ms);
        }
    }
    (None, None)
}

fn exec_round(
    set: &RuleSetArg,
    spec: &StormSpec,
    bin: &Path,
    s: &mut CatalogueSample,
) -> Result<()> {
    let mut sensor = SensorRun::start_with(bin, &set.sensor_args())?;
    (s.rules, s.load_ms) = load_line(&sensor.stderr.seen);
    nap(Duration::from_millis(500))?;
    let pids = vec![sensor.child.pid()];
    let cpu0 = cpu_ticks(&pids);
    let result = storm::run(spec)?;
    let cpu1 = wait_idle(&pids)?;
    let (lost, _) = sensor.finish(&result)?;
    let cpu_s = cpu1.saturating_sub(cpu0) as f64 / clk_tck();
    s.exec_cpu_us = 1e6 * cpu_s / result.execs.max(1) as f64;
    s.lost_exec = lost.unwrap_or(0);
    Ok(())
}

fn file_round(
    set: &RuleSetArg,
    bin: &Path,
    dir: &Path,
    workload: &Workload,
    s: &mut CatalogueSample,
) -> Result<()> {
    prepare(dir, workload)?;
    let mut sensor = SensorRun::start_with(bin, &set.sensor_args())?;
    nap(Duration::from_millis(500))?;
    let pids = vec![sensor.child.pid()];
    let cpu0 = cpu_ticks(&pids);
    let (_, _, ops) = file_storm_run(dir, workload)?;
    let cpu1 = wait_idle(&pids)?;
    let summary = sensor.stop()?;
    let cpu_s = cpu1.saturating_sub(cpu0) as f64 / clk_tck();
    s.file_cpu_ms_per_k = 1e6 * cpu_s / ops.max(1) as f64;
    s.lost_file = summary.get("lost_file").copied().unwrap_or(0);
    Ok(())
}

pub(super) fn catalogue(
    args: &BenchArgs,
    spec: &StormSpec,
    sensor_bin: &Path,
    work: &TempDir,
) -> Result<()> {
    let sets: Vec<RuleSetArg> = args.rules.iter().map(|v| RuleSetArg::parse(v)).collect();
    let dir = crate::workspace_root().join("target/xtask-catalogue-storm");
    let _mount = StormMount::new(&dir)?;
    let (archive, files) = make_archive(&work.path)?;
    let workload = Workload::Tar {
        archive: archive.clone(),
        files,
    };
    let rounds = args.rounds.max(1);
    say(&format!(
        "whole catalogue: {} rule sets ({}), {rounds} rounds of {} execs and tar -xf {} ({files} files)",
        sets.len(),
        sets.iter().map(|s| s.label.as_str()).collect::<Vec<_>>().join(", "),
        spec.execs,
        archive.display()
    ));
    // Warm-up: page cache, dentries, the storms' first-touch costs.
    storm::run(&StormSpec {
        execs: (spec.execs / 10).max(500),
        ..*spec
    })?;
    prepare(&dir, &workload)?;
    file_storm_run(&dir, &workload)?;
    let mut samples: Vec<Vec<CatalogueSample>> = vec![Vec::new(); sets.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..sets.len()).collect();
        order.rotate_left(round % sets.len().max(1));
        for i in order {
            let set = &sets[i];
            let mut s = CatalogueSample::default();
            exec_round(set, spec, sensor_bin, &mut s)
                .with_context(|| format!("exec storm with {}", set.label))?;
            file_round(set, sensor_bin, &dir, &workload, &mut s)
                .with_context(|| format!("file storm with {}", set.label))?;
            say(&format!(
                "round {}/{rounds} {}: {} rules loaded in {} ms; {:.1} µs agent CPU per exec (lost {}), {:.1} ms per 1,000 file ops (lost {})",
                round + 1,
                set.label,
                s.rules.map_or("?".into(), |n| n.to_string()),
                s.load_ms.map_or("?".into(), |m| format!("{m:.0}")),
                s.exec_cpu_us,
                s.lost_exec,
                s.file_cpu_ms_per_k,
                s.lost_file
            ));
            samples[i].push(s);
        }
    }
    let md = catalogue_markdown(args, spec, files, &sets, &samples);
    println!("{md}");
    if args.write {
        write_mode_section(
            &md,
            [CATALOGUE_BEGIN_MARKER, CATALOGUE_END_MARKER],
            CATALOGUE_HEADING,
        )?;
    }
    Ok(())
}

fn catalogue_markdown(
    args: &BenchArgs,
    spec: &StormSpec,
    files: u64,
    sets: &[RuleSetArg],
    samples: &[Vec<CatalogueSample>],
) -> String {
    let med = |i: usize, f: &dyn Fn(&CatalogueSample) -> f64| {
        median(&samples[i].iter().map(f).collect::<Vec<_>>())
    };
    let exec_base = med(0, &|s| s.exec_cpu_us);
    let file_base = if sets.len() > 1 {
        med(1, &|s| s.file_cpu_ms_per_k)
    } else {
        med(0, &|s| s.file_cpu_ms_per_k)
    };
    let ratio = |x: Option<f64>, base: Option<f64>| match (x, base) {
        (Some(x), Some(b)) if b > 0.0 => format!("{:.2}×", x / b),
        _ => "–".into(),
    };
    let fmt = |x: Option<f64>, digits: usize| x.map_or("–".into(), |x| format!("{x:.digits$}"));
    let mut md = String::new();
    let _ = writeln!(
        md,
        "{}\n\n`cargo xtask bench --rounds {} --execs {} {}` — {} rounds, interleaved (the order rotates each round); per round and rule set one exec storm ({} × /bin/true, {} workers, {}) and one file storm (`tar -xf` of /usr/share/doc, {files} files, into a tmpfs), each with a sensor of its own (`--alerts /dev/null`). Agent CPU is utime+stime of the sensor from the storm's start until it is idle; figures are medians over the rounds. The exec ratio compares with the first rule set, the file ratio with the second.\n",
        run_header(),
        args.rounds,
        spec.execs,
        args.rules
            .iter()
            .map(|r| format!("--rules '{r}'"))
            .collect::<Vec<_>>()
            .join(" "),
        args.rounds.max(1),
        spec.execs,
        spec.workers,
        spec.spawner.name(),
    );
    md.push_str("| rules | loaded | load time (ms) | agent CPU per exec (µs) | × first | execs lost | agent CPU per 1,000 file ops (ms) | × second | file records lost |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (i, set) in sets.iter().enumerate() {
        let exec = med(i, &|s| s.exec_cpu_us);
        let file = med(i, &|s| s.file_cpu_ms_per_k);
        let lost_exec: u64 = samples[i].iter().map(|s| s.lost_exec).max().unwrap_or(0);
        let lost_file: u64 = samples[i].iter().map(|s| s.lost_file).max().unwrap_or(0);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} (max) | {} | {} | {} (max) |",
            set.label,
            samples[i]
                .first()
                .and_then(|s| s.rules)
                .map_or("?".into(), |n| n.to_string()),
            fmt(med(i, &|s| s.load_ms.unwrap_or(f64::NAN)), 0),
            fmt(exec, 1),
            ratio(exec, exec_base),
            lost_exec,
            fmt(file, 1),
            ratio(file, file_base),
            lost_file,
        );
    }
    md
}
