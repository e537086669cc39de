//! The alert storm: the agent's CPU per alert, with a rule that matches
//! every exec against one that matches none.

use super::*;

pub(super) const ALERT_BEGIN_MARKER: &str = "<!-- alert-storm:begin -->";
pub(super) const ALERT_END_MARKER: &str = "<!-- alert-storm:end -->";
pub(super) const ALERT_SECTION_HEADING: &str =
    "## Alert storm (cargo xtask bench --alert-storm-only)";
/// Issue #9's target for the agent CPU one alert costs.
pub(super) const TARGET_US_PER_ALERT: f64 = 10.0;
pub(super) const QUERY_OPEN: &str = "query = '''\n";
pub(super) const QUERY_CLOSE: &str = "\n'''";

/// The seed rule (its metadata and ATT&CK mapping, so alert documents have
/// their real size) with `query` replaced.
pub(super) fn storm_rule(name: &str, rule_id: &str, query: &str) -> Result<String> {
    let seed_path = crate::workspace_root().join(
        "rules/defend-for-containers/persistence_suspicious_webserver_child_process_execution.toml",
    );
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
pub(super) enum AlertConfig {
    /// A rule matching none of the storm's execs.
    Quiet,
    /// A rule matching every exec of the storm.
    Alerting,
}

#[derive(Clone, Debug, Default)]
pub(super) struct AlertSample {
    pub(super) wall_s: f64,
    pub(super) execs: u64,
    pub(super) cpu_s: f64,
    pub(super) alerts: u64,
    pub(super) lost: u64,
    pub(super) output_errors: u64,
}

pub(super) fn measure_alert_storm(
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
pub(super) fn alert_storm(
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
        write_mode_section(
            &md,
            [ALERT_BEGIN_MARKER, ALERT_END_MARKER],
            ALERT_SECTION_HEADING,
        )?;
    }
    Ok(())
}

/// Median over rounds of the alerting run's CPU beyond the quiet run's
/// (scaled to the same exec count), per alert, in µs.
pub(super) fn marginal_us_per_alert(
    quiet: &[AlertSample],
    alerting: &[AlertSample],
) -> Option<f64> {
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

pub(super) fn alert_markdown(
    args: &BenchArgs,
    spec: &StormSpec,
    binaries: &[(&str, PathBuf)],
    samples: &BTreeMap<(&str, AlertConfig), Vec<AlertSample>>,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "{}", run_header());
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
