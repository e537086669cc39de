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

use super::file_storm::{
    make_archive, make_repo, prepare, storm as file_storm_run, StormMount, Workload,
};
use super::*;

const CATALOGUE_BEGIN_MARKER: &str = "<!-- catalogue:begin -->";
const CATALOGUE_END_MARKER: &str = "<!-- catalogue:end -->";
const CATALOGUE_HEADING: &str = "## Whole catalogue (cargo xtask bench --rules ...)";

/// One `--rules` value.
pub(super) struct RuleSetArg {
    pub(super) label: String,
    /// Empty: the embedded seed rule.
    pub(super) paths: Vec<String>,
}

impl RuleSetArg {
    pub(super) fn parse(v: &str) -> RuleSetArg {
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

    pub(super) fn sensor_args(&self) -> Vec<&str> {
        let mut a = vec!["--alerts", "/dev/null"];
        for p in &self.paths {
            a.extend(["--rules", p.as_str()]);
        }
        a
    }
}

/// One file storm of the bench: a workload in a directory.
struct FileStorm {
    label: String,
    dir: PathBuf,
    workload: Workload,
}

/// One round of one set with one binary.
#[derive(Default, Clone)]
struct CatalogueSample {
    rules: Option<u64>,
    load_ms: Option<f64>,
    exec_cpu_us: f64,
    lost_exec: u64,
    /// Per file storm: agent CPU per 1,000 file operations (ms).
    file_cpu_ms_per_k: Vec<f64>,
    /// File records lost over the set's file storms.
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

/// Every file storm with one sensor: each storm's directory is emptied
/// (or its checkout reset) first, and the agent's CPU is read from the
/// storm's start until it is idle again.
fn file_rounds(
    set: &RuleSetArg,
    bin: &Path,
    storms: &[FileStorm],
    s: &mut CatalogueSample,
) -> Result<()> {
    let mut sensor = SensorRun::start_with(bin, &set.sensor_args())?;
    nap(Duration::from_millis(500))?;
    let pids = vec![sensor.child.pid()];
    for fs in storms {
        prepare(&fs.dir, &fs.workload)?;
        wait_idle(&pids)?;
        let cpu0 = cpu_ticks(&pids);
        let (_, _, ops) = file_storm_run(&fs.dir, &fs.workload)?;
        let cpu1 = wait_idle(&pids)?;
        let cpu_s = cpu1.saturating_sub(cpu0) as f64 / clk_tck();
        s.file_cpu_ms_per_k.push(1e6 * cpu_s / ops.max(1) as f64);
    }
    let summary = sensor.stop()?;
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
    let mut bins: Vec<(&str, &Path)> = vec![("now", sensor_bin)];
    if let Some(b) = &args.baseline_sensor {
        bins.push(("baseline", b.as_path()));
    }
    // The same storms under the workspace (a directory no rule names) and
    // under /tmp (which rules name: D4C's sequences watch files created
    // there), each a tmpfs of its own.
    let roots = [
        (
            "workspace",
            crate::workspace_root().join("target/xtask-catalogue-storm"),
        ),
        ("/tmp", PathBuf::from("/tmp/xtask-catalogue-storm")),
    ];
    let mut mounts = Vec::new();
    let (archive, tar_files) = make_archive(&work.path)?;
    let mut storms = Vec::new();
    for (where_, root) in &roots {
        mounts.push(StormMount::new(root)?);
        let tar_dir = root.join("tar");
        fs::create_dir_all(&tar_dir)?;
        storms.push(FileStorm {
            label: format!("tar, {where_}"),
            dir: tar_dir,
            workload: Workload::Tar {
                archive: archive.clone(),
                files: tar_files,
            },
        });
        let git_dir = root.join("git");
        fs::create_dir_all(&git_dir)?;
        let (repo, files) = make_repo(&git_dir)?;
        storms.push(FileStorm {
            label: format!("git, {where_}"),
            dir: git_dir,
            workload: Workload::Git { repo, files },
        });
    }
    let rounds = args.rounds.max(1);
    say(&format!(
        "whole catalogue: {} rule sets ({}) × {} binaries, {rounds} rounds of {} execs and file storms ({})",
        sets.len(),
        sets.iter().map(|s| s.label.as_str()).collect::<Vec<_>>().join(", "),
        bins.len(),
        spec.execs,
        storms.iter().map(|s| s.label.as_str()).collect::<Vec<_>>().join("; ")
    ));
    // Warm-up: page cache, dentries, the storms' first-touch costs.
    storm::run(&StormSpec {
        execs: (spec.execs / 10).max(500),
        ..*spec
    })?;
    for fs in &storms {
        prepare(&fs.dir, &fs.workload)?;
        file_storm_run(&fs.dir, &fs.workload)?;
    }
    let cells: Vec<(usize, usize)> = (0..bins.len())
        .flat_map(|b| (0..sets.len()).map(move |i| (b, i)))
        .collect();
    let mut samples: Vec<Vec<CatalogueSample>> = vec![Vec::new(); cells.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..cells.len()).collect();
        order.rotate_left(round % cells.len().max(1));
        for c in order {
            let (b, i) = cells[c];
            let (bin_label, bin) = bins[b];
            let set = &sets[i];
            let mut s = CatalogueSample::default();
            exec_round(set, spec, bin, &mut s)
                .with_context(|| format!("exec storm with {} ({bin_label})", set.label))?;
            file_rounds(set, bin, &storms, &mut s)
                .with_context(|| format!("file storms with {} ({bin_label})", set.label))?;
            say(&format!(
                "round {}/{rounds} {} ({bin_label}): {} rules loaded in {} ms; {:.1} µs agent CPU per exec (lost {}); ms per 1,000 file ops: {} (lost {})",
                round + 1,
                set.label,
                s.rules.map_or("?".into(), |n| n.to_string()),
                s.load_ms.map_or("?".into(), |m| format!("{m:.0}")),
                s.exec_cpu_us,
                s.lost_exec,
                s.file_cpu_ms_per_k
                    .iter()
                    .map(|x| format!("{x:.1}"))
                    .collect::<Vec<_>>()
                    .join(" / "),
                s.lost_file
            ));
            samples[c].push(s);
        }
    }
    drop(mounts);
    let md = catalogue_markdown(args, spec, &sets, &bins, &storms, &cells, &samples);
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
    sets: &[RuleSetArg],
    bins: &[(&str, &Path)],
    storms: &[FileStorm],
    cells: &[(usize, usize)],
    samples: &[Vec<CatalogueSample>],
) -> String {
    let med = |c: usize, f: &dyn Fn(&CatalogueSample) -> f64| {
        median(&samples[c].iter().map(f).collect::<Vec<_>>())
    };
    let cell = |b: usize, i: usize| cells.iter().position(|&x| x == (b, i));
    let ratio = |x: Option<f64>, base: Option<f64>| match (x, base) {
        (Some(x), Some(b)) if b > 0.0 => format!("{:.2}×", x / b),
        _ => "–".into(),
    };
    let fmt = |x: Option<f64>, digits: usize| x.map_or("–".into(), |x| format!("{x:.digits$}"));
    let mut md = String::new();
    let _ = writeln!(
        md,
        "{}\n\n`cargo xtask bench --rounds {} --execs {} {}{}` — {} rounds, interleaved (the order of the (binary, rule set) pairs rotates each round); per round, rule set and binary one exec storm ({} × /bin/true, {} workers, {}) with a sensor of its own, then, with one more sensor, the file storms ({}), each into a tmpfs of its own, emptied (or reset) before it. Agent CPU is utime+stime of the sensor from the storm's start until it is idle; figures are medians over the rounds. The exec ratio compares with the first rule set, the file ratios with the second (of the same binary).\n",
        run_header(),
        args.rounds,
        spec.execs,
        args.rules
            .iter()
            .map(|r| format!("--rules '{r}'"))
            .collect::<Vec<_>>()
            .join(" "),
        args.baseline_sensor
            .as_ref()
            .map(|b| format!(" --baseline-sensor {}", b.display()))
            .unwrap_or_default(),
        args.rounds.max(1),
        spec.execs,
        spec.workers,
        spec.spawner.name(),
        storms
            .iter()
            .map(|s| match &s.workload {
                Workload::Tar { files, .. } => format!("{}: `tar -xf` of /usr/share/doc, {files} files", s.label),
                Workload::Git { files, .. } => format!("{}: `git checkout` of the same tree, {files} files", s.label),
                Workload::Small { .. } => s.label.clone(),
            })
            .collect::<Vec<_>>()
            .join("; "),
    );
    md.push_str("| rules | binary | loaded | load time (ms) | agent CPU per exec (µs) | × first | execs lost |");
    for s in storms {
        let _ = write!(md, " {} (ms per 1,000 ops) | × second |", s.label);
    }
    md.push_str(" file records lost |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for _ in storms {
        md.push_str(" ---: | ---: |");
    }
    md.push_str(" ---: |\n");
    for (b, (bin_label, _)) in bins.iter().enumerate() {
        let exec_base = cell(b, 0).and_then(|c| med(c, &|s| s.exec_cpu_us));
        let file_base = |k: usize| {
            cell(b, if sets.len() > 1 { 1 } else { 0 }).and_then(|c| {
                med(c, &|s| {
                    s.file_cpu_ms_per_k.get(k).copied().unwrap_or(f64::NAN)
                })
            })
        };
        for (i, set) in sets.iter().enumerate() {
            let Some(c) = cell(b, i) else { continue };
            let exec = med(c, &|s| s.exec_cpu_us);
            let lost_exec: u64 = samples[c].iter().map(|s| s.lost_exec).max().unwrap_or(0);
            let lost_file: u64 = samples[c].iter().map(|s| s.lost_file).max().unwrap_or(0);
            let _ = write!(
                md,
                "| {} | {bin_label} | {} | {} | {} | {} | {} (max) |",
                set.label,
                samples[c]
                    .first()
                    .and_then(|s| s.rules)
                    .map_or("?".into(), |n| n.to_string()),
                fmt(med(c, &|s| s.load_ms.unwrap_or(f64::NAN)), 0),
                fmt(exec, 1),
                ratio(exec, exec_base),
                lost_exec,
            );
            for k in 0..storms.len() {
                let x = med(c, &|s| {
                    s.file_cpu_ms_per_k.get(k).copied().unwrap_or(f64::NAN)
                });
                let _ = write!(md, " {} | {} |", fmt(x, 1), ratio(x, file_base(k)));
            }
            let _ = writeln!(md, " {lost_file} (max) |");
        }
    }
    md
}
