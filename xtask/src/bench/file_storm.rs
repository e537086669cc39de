//! The file storm: what file events cost with the whole Defend for
//! Containers ruleset loaded, with and without the in-kernel prefilter.
//!
//! The workload runs in a directory under the workspace's `target/` (a
//! tmpfs mounted for the bench: disk writeback is not measured), a path
//! no D4C rule names, like an application's data directory: the driver
//! (this program, `file-storm-driver`) creates and writes, reopens for
//! append, renames and unlinks `--files` files (4 file events each), by
//! absolute path or plain name; or `tar -xf` of a real tree; or `git
//! checkout` of a commit holding it. (Under `/tmp` every creation and
//! deletion would be a candidate of the cradle sequence rules.) Each round
//! runs bare, the sensor with the prefilter, the sensor with
//! `--file-prefilter off`, and the sensor with the D4C rules minus the one
//! rule that forces every open, creation and rename through (what the
//! prefilter does when every rule reduces), interleaved with the order
//! rotating. Figures are medians over rounds; wall overheads are medians
//! of the per-round ratios to that round's bare storm.

use std::fs::OpenOptions;
use std::io::Write as _;

use super::*;

pub(super) const FILE_BEGIN_MARKER: &str = "<!-- file-storm:begin -->";
pub(super) const FILE_END_MARKER: &str = "<!-- file-storm:end -->";
pub(super) const FILE_SECTION_HEADING: &str = "## File storm (cargo xtask bench --file-storm-only)";
/// Issue #12's wall-time target.
const TARGET_FILE_WALL_PCT: f64 = 5.0;
/// The D4C rule with no file condition (`process.name == "chmod"` on any
/// file or process event): its file branch reduces to process names, so
/// the set without it is a control (same verdicts for a driver named
/// otherwise).
const PASS_ALL_RULE: &str =
    "execution_suspicious_file_made_executable_via_chmod_inside_a_container.toml";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum FileConfig {
    Bare,
    Prefilter,
    PrefilterOff,
    Reducible,
}

impl FileConfig {
    fn label(self) -> &'static str {
        match self {
            FileConfig::Bare => "bare (no sensor)",
            FileConfig::Prefilter => "sensor, D4C rules, prefilter on (default)",
            FileConfig::PrefilterOff => "sensor, D4C rules, --file-prefilter off",
            FileConfig::Reducible => "sensor, D4C rules without the chmod rule, prefilter on",
        }
    }
}

#[derive(Clone, Debug, Default)]
struct FileSample {
    wall_s: f64,
    /// User+system CPU of the storm's process (getrusage of the reaped
    /// child): what the eBPF programs cost in its context lands here.
    storm_cpu_s: f64,
    ops: u64,
    /// The sensor's eBPF programs' run time during the storm (every
    /// program, every process), per storm file operation, in ns.
    bpf_ns_per_op: Option<f64>,
    /// Sensor CPU (utime+stime) from storm start to idle.
    cpu_s: Option<f64>,
    lost: Option<u64>,
    /// File records the sensor handled (every process's).
    handled: Option<u64>,
    /// Prefilter verdicts summed over operations: (crossed, filtered).
    verdicts: Option<(u64, u64)>,
}

/// The file storm's workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FileWorkload {
    /// `--files` × (create+write, reopen+append, rename, unlink), by
    /// absolute path.
    Small,
    /// The same from inside the directory, by plain name (as `rm -r`,
    /// `mv a b` or a program working in its cwd pass them).
    SmallRelative,
    /// `tar -xf` of a tar of /usr/share/doc (or /usr/lib/python3).
    Tar,
    /// `git checkout` of a commit holding the same tree, from an empty
    /// one.
    Git,
}

/// What one storm runs: the driver (a process of its own, started after
/// the sensor, as any workload is: a process older than the sensor has no
/// process-name verdict and passes every file event) or `tar`.
pub(super) enum Workload {
    Small { files: u64, relative: bool },
    Tar { archive: PathBuf, files: u64 },
    Git { repo: PathBuf, files: u64 },
}

/// The storm directory, a tmpfs of its own for the whole bench (so disk
/// writeback, which varies several-fold between runs on a shared machine,
/// is not what is measured); unmounted when dropped.
pub(super) struct StormMount {
    dir: PathBuf,
}

impl StormMount {
    pub(super) fn new(dir: &Path) -> Result<StormMount> {
        let _ = Command::new("umount")
            .arg(dir)
            .stderr(Stdio::null())
            .status();
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2g", "xtask-file-storm"])
            .arg(dir)
            .status()
            .context("running mount")?;
        if !status.success() {
            bail!("mounting a tmpfs on {} failed: {status}", dir.display());
        }
        Ok(StormMount {
            dir: dir.to_owned(),
        })
    }
}

impl Drop for StormMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Empties `dir` (or, for git, checks out the empty commit) before a run,
/// and before any sensor starts: the removals are not part of the storm
/// (a process older than the sensor has no process-name verdict, and its
/// file events would all cross).
pub(super) fn prepare(dir: &Path, w: &Workload) -> Result<()> {
    if let Workload::Git { repo, .. } = w {
        return git(repo, &["checkout", "-q", "-f", "empty"])
            .and_then(|()| git(repo, &["clean", "-fdxq"]));
    }
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = entry?.path();
        if p.is_dir() {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        }
        .with_context(|| format!("removing {}", p.display()))?;
    }
    Ok(())
}

fn git(repo: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .status()
        .context("running git")?;
    if !status.success() {
        bail!(
            "git {} in {} failed: {status}",
            args.join(" "),
            repo.display()
        );
    }
    Ok(())
}

/// The kernel's eBPF run-time statistics (`kernel.bpf_stats_enabled`),
/// on for the bench and set back when dropped.
struct BpfStats {
    before: Option<String>,
}

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl BpfStats {
    fn enable() -> BpfStats {
        let before = fs::read_to_string(BPF_STATS).ok();
        if fs::write(BPF_STATS, "1").is_err() {
            say("file storm: kernel.bpf_stats_enabled cannot be set: no eBPF run times");
        }
        BpfStats { before }
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        if let Some(b) = &self.before {
            let _ = fs::write(BPF_STATS, b.trim());
        }
    }
}

/// Run time and runs of the eBPF programs `pid` holds (its fdinfo):
/// (nanoseconds, runs), summed.
fn prog_run_time(pid: i32) -> (u64, u64) {
    let (mut ns, mut runs) = (0u64, 0u64);
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return (0, 0);
    };
    for entry in dir.flatten() {
        let Ok(text) = fs::read_to_string(entry.path()) else {
            continue;
        };
        if !text.contains("prog_type:") {
            continue;
        }
        for line in text.lines() {
            let field = |name: &str| {
                line.strip_prefix(name)
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            if let Some(v) = field("run_time_ns:") {
                ns += v;
            }
            if let Some(v) = field("run_cnt:") {
                runs += v;
            }
        }
    }
    (ns, runs)
}

/// One storm in `dir` (prepared): (wall seconds, storm CPU seconds, file
/// operations).
pub(super) fn storm(dir: &Path, w: &Workload) -> Result<(f64, f64, u64)> {
    let mut cmd = match w {
        Workload::Small { files, relative } => {
            let mut c = Command::new(std::env::current_exe().context("xtask's own path")?);
            if *relative {
                c.arg("file-storm-driver")
                    .arg(".")
                    .arg(files.to_string())
                    .current_dir(dir);
            } else {
                c.arg("file-storm-driver").arg(dir).arg(files.to_string());
            }
            c
        }
        Workload::Tar { archive, .. } => {
            let mut c = Command::new("tar");
            c.arg("-xf").arg(archive).arg("-C").arg(dir);
            c
        }
        Workload::Git { repo, .. } => {
            let mut c = Command::new("git");
            c.arg("-C").arg(repo).args(["checkout", "-q", "full"]);
            c
        }
    };
    let cpu0 = children_cpu_s();
    let started = Instant::now();
    let status = cmd.status().context("starting the storm")?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = children_cpu_s() - cpu0;
    if !status.success() {
        bail!("the storm failed: {status}");
    }
    let ops = match w {
        Workload::Small { files, .. } => files * 4,
        Workload::Tar { files, .. } | Workload::Git { files, .. } => *files,
    };
    Ok((wall, cpu, ops))
}

/// The driver process (`cargo xtask file-storm-driver DIR FILES`): `files`
/// × (create+write, reopen+append, rename, unlink) in `dir` (`.`: by
/// plain names, in the working directory).
pub fn file_storm_driver(dir: &Path, files: u64) -> Result<()> {
    for i in 0..files {
        if i % 1024 == 0 {
            check_stop()?;
        }
        let (a, b) = if dir == Path::new(".") {
            (
                PathBuf::from(format!("data-{i}.db")),
                PathBuf::from(format!("data-{i}.db.old")),
            )
        } else {
            (
                dir.join(format!("data-{i}.db")),
                dir.join(format!("data-{i}.db.old")),
            )
        };
        fs::write(&a, b"0123456789abcdef").with_context(|| format!("creating {}", a.display()))?;
        let mut f = OpenOptions::new()
            .append(true)
            .open(&a)
            .with_context(|| format!("reopening {}", a.display()))?;
        f.write_all(b"more")?;
        drop(f);
        fs::rename(&a, &b).with_context(|| format!("renaming {}", a.display()))?;
        fs::remove_file(&b).with_context(|| format!("removing {}", b.display()))?;
    }
    Ok(())
}

/// The real tree the tar and git workloads hold.
fn source_tree() -> Result<&'static Path> {
    ["/usr/share/doc", "/usr/lib/python3"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_dir())
        .context("neither /usr/share/doc nor /usr/lib/python3 exists to copy")
}

/// A git repository in `dir` with two branches: `full` (a commit of the
/// source tree's regular files) and `empty` (checked out): (repository,
/// files `full` holds).
pub(super) fn make_repo(dir: &Path) -> Result<(PathBuf, u64)> {
    let repo = dir.join("repo");
    fs::create_dir_all(&repo)?;
    let run = |args: &[&str]| git(&repo, args);
    run(&["init", "-q", "-b", "full"])?;
    run(&["config", "user.email", "bench@localhost"])?;
    run(&["config", "user.name", "bench"])?;
    run(&["config", "core.fsync", "none"])?;
    let status = Command::new("cp")
        .arg("-r")
        .arg(source_tree()?)
        .arg(repo.join("tree"))
        .status()
        .context("running cp")?;
    if !status.success() {
        bail!("copying the source tree failed: {status}");
    }
    run(&["add", "-A"])?;
    run(&["commit", "-q", "-m", "full"])?;
    run(&["checkout", "-q", "--orphan", "empty"])?;
    run(&["rm", "-rq", "--cached", "."])?;
    run(&["clean", "-fdxq"])?;
    run(&["commit", "-q", "--allow-empty", "-m", "empty"])?;
    let out = Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["ls-tree", "-r", "--name-only", "full"])
        .output()
        .context("listing the commit")?;
    let files = out.stdout.iter().filter(|b| **b == b'\n').count() as u64;
    Ok((repo, files))
}

/// A tar of a real tree (every regular file one creation when unpacked):
/// (archive, regular files in it).
pub(super) fn make_archive(work: &Path) -> Result<(PathBuf, u64)> {
    let src = source_tree()?;
    let archive = work.join("file-storm.tar");
    let status = Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(src.parent().unwrap_or(Path::new("/")))
        .arg(src.file_name().unwrap_or_default())
        .status()
        .context("running tar")?;
    if !status.success() {
        bail!("tar -cf {} failed: {status}", archive.display());
    }
    let out = Command::new("tar")
        .arg("-tvf")
        .arg(&archive)
        .output()
        .context("listing the tar")?;
    let files = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('-'))
        .count() as u64;
    Ok((archive, files))
}

/// The summary's `file_prefilter` verdicts: (crossed, filtered).
fn verdicts(summary_line: &str) -> Option<(u64, u64)> {
    let v: serde_json::Value = serde_json::from_str(summary_line).ok()?;
    let mut crossed = 0;
    let mut filtered = 0;
    for c in v.get("file_prefilter")?.as_array()? {
        let n = c.get("count")?.as_u64()?;
        if c.get("verdict")?.as_str()? == "filtered" {
            filtered += n;
        } else {
            crossed += n;
        }
    }
    Some((crossed, filtered))
}

fn measure(
    cfg: FileConfig,
    bin: &Path,
    rules: &Path,
    reducible: &Path,
    dir: &Path,
    workload: &Workload,
) -> Result<FileSample> {
    prepare(dir, workload)?;
    if cfg == FileConfig::Bare {
        let (wall_s, storm_cpu_s, ops) = storm(dir, workload)?;
        return Ok(FileSample {
            wall_s,
            storm_cpu_s,
            ops,
            ..FileSample::default()
        });
    }
    let rules = if cfg == FileConfig::Reducible {
        reducible
    } else {
        rules
    };
    let mut args = vec![
        "--rules",
        rules.to_str().context("rules path")?,
        "--alerts",
        "/dev/null",
    ];
    if cfg == FileConfig::PrefilterOff {
        args.extend(["--file-prefilter", "off"]);
    }
    let mut sensor = SensorRun::start_with(bin, &args)?;
    nap(Duration::from_millis(500))?;
    let pids = vec![sensor.child.pid()];
    let cpu0 = cpu_ticks(&pids);
    let bpf0 = prog_run_time(sensor.child.pid());
    let (wall_s, storm_cpu_s, ops) = storm(dir, workload)?;
    let bpf1 = prog_run_time(sensor.child.pid());
    let cpu1 = wait_idle(&pids)?;
    let summary = sensor.stop()?;
    let line = sensor
        .stderr
        .seen
        .iter()
        .find_map(|l| l.strip_prefix("sensor: summary "))
        .unwrap_or("{}");
    Ok(FileSample {
        wall_s,
        storm_cpu_s,
        ops,
        bpf_ns_per_op: (bpf1.1 > bpf0.1)
            .then(|| bpf1.0.saturating_sub(bpf0.0) as f64 / ops.max(1) as f64),
        cpu_s: Some(cpu1.saturating_sub(cpu0) as f64 / clk_tck()),
        lost: Some(summary.get("lost_file").copied().unwrap_or(0)),
        handled: summary.get("file").copied(),
        verdicts: verdicts(line),
    })
}

pub(super) fn file_storm(args: &BenchArgs, sensor_bin: &Path, work: &TempDir) -> Result<()> {
    // The built-in pack's files, as the repository carries them.
    let d4c = crate::workspace_root().join("rules/defend-for-containers");
    // The D4C rules without the pass-all rule, copied to the bench's
    // temporary directory.
    let reducible = work.path.join("d4c-reducible");
    fs::create_dir_all(&reducible)?;
    for entry in fs::read_dir(&d4c)? {
        let p = entry?.path();
        if p.extension().is_some_and(|e| e == "toml")
            && p.file_name().is_some_and(|n| n != PASS_ALL_RULE)
        {
            if let Some(name) = p.file_name() {
                fs::copy(&p, reducible.join(name))?;
            }
        }
    }
    let dir = crate::workspace_root().join("target/xtask-file-storm");
    let _mount = StormMount::new(&dir)?;
    let _stats = args.bpf_stats.then(BpfStats::enable);
    let files = args.files.max(1);
    let workload = match args.file_storm_workload {
        FileWorkload::Small => Workload::Small {
            files,
            relative: false,
        },
        FileWorkload::SmallRelative => Workload::Small {
            files,
            relative: true,
        },
        FileWorkload::Tar => {
            let (archive, files) = make_archive(&work.path)?;
            Workload::Tar { archive, files }
        }
        FileWorkload::Git => {
            let (repo, files) = make_repo(&dir)?;
            Workload::Git { repo, files }
        }
    };
    let rounds = args.rounds.max(1);
    let configs = vec![
        FileConfig::Bare,
        FileConfig::Prefilter,
        FileConfig::PrefilterOff,
        FileConfig::Reducible,
    ];
    let what = match &workload {
        Workload::Small { files, relative } => format!(
            "{files} files × (create+write, append, rename, unlink){}",
            if *relative { " by plain name" } else { "" }
        ),
        Workload::Tar { archive, files } => {
            format!("tar -xf {} ({files} files)", archive.display())
        }
        Workload::Git { repo, files } => {
            format!("git checkout in {} ({files} files)", repo.display())
        }
    };
    say(&format!(
        "file storm: {what} in {}, {rounds} rounds of {}",
        dir.display(),
        configs.len()
    ));
    prepare(&dir, &workload)?;
    storm(&dir, &workload)?; // warm-up: dentries, page cache
    let mut samples: BTreeMap<FileConfig, Vec<FileSample>> = BTreeMap::new();
    for round in 0..rounds {
        let mut order = configs.to_vec();
        order.rotate_left(round % configs.len());
        for cfg in order {
            let s = measure(cfg, sensor_bin, &d4c, &reducible, &dir, &workload)
                .with_context(|| format!("file storm: {}", cfg.label()))?;
            say(&format!(
                "file round {}/{rounds} {:<55} {} ops in {:.2} s{}{}{}",
                round + 1,
                cfg.label(),
                s.ops,
                s.wall_s,
                s.cpu_s
                    .map(|c| format!(", sensor CPU {c:.2} s"))
                    .unwrap_or_default(),
                s.verdicts
                    .map(|(c, f)| format!(", crossed {c}, filtered {f}"))
                    .unwrap_or_default(),
                s.lost.map(|l| format!(", lost {l}")).unwrap_or_default(),
            ));
            samples.entry(cfg).or_default().push(s);
        }
    }
    let md = file_markdown(args, &workload, rounds, &configs, &samples);
    println!("{md}");
    if args.write {
        write_mode_section(
            &md,
            [FILE_BEGIN_MARKER, FILE_END_MARKER],
            FILE_SECTION_HEADING,
        )?;
    }
    Ok(())
}

/// The median over rounds of a figure's overhead (%) against the same
/// round's bare storm.
fn vs_bare(
    runs: &[FileSample],
    bare: &[FileSample],
    f: impl Fn(&FileSample) -> f64,
) -> Option<f64> {
    median(
        &runs
            .iter()
            .zip(bare)
            .map(|(s, b)| 100.0 * (f(s) / f(b).max(1e-9) - 1.0))
            .collect::<Vec<_>>(),
    )
}

fn file_markdown(
    args: &BenchArgs,
    workload: &Workload,
    rounds: usize,
    configs: &[FileConfig],
    samples: &BTreeMap<FileConfig, Vec<FileSample>>,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "{}", run_header());
    let (flags, what) = match workload {
        Workload::Small { files, relative } => (
            format!(
                "--files {files}{}",
                if *relative { " --file-storm-workload small-relative" } else { "" }
            ),
            format!(
                "{files} files × (create + write, reopen + append, rename, unlink) = {} file operations per run, by one driver process (`cargo xtask file-storm-driver`, started after the sensor), {}",
                files * 4,
                if *relative { "by plain name from inside the directory" } else { "by absolute path" }
            ),
        ),
        Workload::Tar { files, .. } => (
            "--file-storm-workload tar".to_owned(),
            format!("`tar -xf` of a tar of /usr/share/doc: {files} regular files (one creation each) per run"),
        ),
        Workload::Git { files, .. } => (
            "--file-storm-workload git".to_owned(),
            format!("`git checkout` of a commit holding /usr/share/doc, from an empty commit: {files} files (one creation each) per run, plus git's own index and lock files"),
        ),
    };
    let _ = writeln!(
        md,
        "```sh\ncargo xtask bench --file-storm-only {flags} --rounds {rounds}{}{}\n```\n",
        if args.bpf_stats { " --bpf-stats" } else { "" },
        if args.write { " --write" } else { "" }
    );
    let _ = writeln!(
        md,
        "{what}, in `target/xtask-file-storm` (a directory no rule names; a tmpfs mounted for the bench, so disk writeback is not measured; emptied before each run, before the sensor starts). Storm CPU = user+system time of the storm's process (getrusage): the eBPF programs run in its context. eBPF time per file op (with `--bpf-stats` only, which inflates the other overheads: timing each program run costs time) = the run time of the sensor's programs during the storm (`kernel.bpf_stats_enabled`; every program and process, exec and exit included) over the storm's file operations: the kernel-side cost, the least sensitive figure to other load. Sensor CPU = utime+stime from storm start until idle, per 1,000 of the storm's file operations. Crossed / filtered: the sensor's `file_prefilter` verdicts (every process's file records during the run, not only the storm's). Medians over {rounds} interleaved rounds; wall overhead = median of the per-round ratio to that round's bare storm.\n"
    );
    let _ = writeln!(
        md,
        "| configuration | wall (s) | wall vs bare | storm CPU (s) | storm CPU vs bare | eBPF time per file op (ns) | sensor CPU (s) | CPU per 1,000 file ops (ms) | file records handled | crossed | filtered | pass ratio | lost |"
    );
    let _ = writeln!(
        md,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let none = Vec::new();
    let bare = samples.get(&FileConfig::Bare).unwrap_or(&none);
    for cfg in configs {
        let runs = samples.get(cfg).unwrap_or(&none);
        let med = |f: &dyn Fn(&FileSample) -> Option<f64>| {
            median(&runs.iter().filter_map(f).collect::<Vec<_>>())
        };
        let overhead = vs_bare(runs, bare, |s| s.wall_s);
        let cpu_overhead = vs_bare(runs, bare, |s| s.storm_cpu_s);
        let ratio = med(&|s| {
            s.verdicts
                .and_then(|(c, f)| (c + f > 0).then(|| c as f64 / (c + f) as f64))
        });
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cfg.label(),
            fmt(med(&|s| Some(s.wall_s)), 3),
            if *cfg == FileConfig::Bare {
                "–".to_owned()
            } else {
                overhead.map_or("–".into(), |o| format!("{o:+.1}%"))
            },
            fmt(med(&|s| Some(s.storm_cpu_s)), 3),
            if *cfg == FileConfig::Bare {
                "–".to_owned()
            } else {
                cpu_overhead.map_or("–".into(), |o| format!("{o:+.1}%"))
            },
            fmt(med(&|s| s.bpf_ns_per_op), 0),
            fmt(med(&|s| s.cpu_s), 2),
            fmt(med(&|s| s.cpu_s.map(|c| 1e6 * c / s.ops.max(1) as f64)), 2),
            fmt(med(&|s| s.handled.map(|h| h as f64)), 0),
            fmt(med(&|s| s.verdicts.map(|v| v.0 as f64)), 0),
            fmt(med(&|s| s.verdicts.map(|v| v.1 as f64)), 0),
            ratio.map_or("–".into(), |r| format!("{:.1}%", 100.0 * r)),
            runs.iter()
                .filter_map(|s| s.lost)
                .max()
                .map_or("–".into(), |l| l.to_string()),
        );
    }
    let _ = writeln!(md);
    let wall = |cfg| vs_bare(samples.get(&cfg).unwrap_or(&none), bare, |s| s.wall_s);
    if let Some(o) = wall(FileConfig::Prefilter) {
        let _ = writeln!(
            md,
            "| target (issue #12) | measured | met |\n| --- | ---: | :---: |\n| wall overhead ≤ {TARGET_FILE_WALL_PCT}%, D4C rules, prefilter on | {o:+.1}% | {} |\n| lost = 0 | {} | {} |",
            if o <= TARGET_FILE_WALL_PCT { "yes" } else { "no" },
            samples
                .values()
                .flatten()
                .filter_map(|s| s.lost)
                .max()
                .unwrap_or(0),
            if samples.values().flatten().filter_map(|s| s.lost).all(|l| l == 0) {
                "yes"
            } else {
                "no"
            }
        );
    }
    md
}
