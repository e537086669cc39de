//! Helpers for the end-to-end tests: start the real sensor binary as root,
//! wait until it is attached, read what it wrote, stop it cleanly.
//!
//! With `CI=true` a sensor that cannot start (not root, programs rejected,
//! binary built without its eBPF object) fails the test; elsewhere the test
//! says why it is skipped and returns.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

pub mod cgroup;
pub mod container;
pub mod engine;
pub mod fake_server;
pub mod netns;
pub mod pty;
pub mod webserver;
pub mod yaml;

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The sensor binary: `$SENSOR_BIN` (set by `cargo xtask test`), else the
/// workspace's release build.
pub fn sensor_bin() -> PathBuf {
    std::env::var_os("SENSOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/sensor"))
}

/// A running sensor with its outputs in a temporary directory.
pub struct Sensor {
    child: Child,
    pub dir: tempfile::TempDir,
    stderr_lines: mpsc::Receiver<String>,
    pub stderr: Vec<String>,
}

/// The `host:port` of the metrics endpoint from the start-up lines.
fn metrics_addr_from(stderr: &[String]) -> Option<String> {
    stderr.iter().find_map(|l| {
        let rest = l.strip_prefix("sensor: metrics and health on http://")?;
        rest.split('/').next().map(str::to_owned)
    })
}

/// Why a sensor could not be started: fatal in CI, a skip elsewhere.
pub fn skip_or_fail(why: &str) {
    assert!(!in_ci(), "CI=true: {why}");
    eprintln!("skipping: {why}");
}

/// Starts a sensor for a test, or — when it cannot start — fails under
/// `CI=true` and skips (returns `None`) elsewhere.
pub fn start_or_skip(extra: &[&str]) -> Option<Sensor> {
    match Sensor::start(extra) {
        Ok(s) => Some(s),
        Err(e) => {
            skip_or_fail(&format!("cannot start the sensor: {e:#}"));
            None
        }
    }
}

impl Sensor {
    /// Starts `sensor run --events <dir>/events.jsonl --alerts <dir>/alerts.jsonl`
    /// plus `extra` (which may replace either output), and waits for its
    /// `sensor: ready` line.
    pub fn start(extra: &[&str]) -> Result<Sensor> {
        let bin = sensor_bin();
        if !bin.is_file() {
            bail!(
                "no sensor binary at {} (run `cargo xtask test`)",
                bin.display()
            );
        }
        let dir = tempfile::tempdir()?;
        let events = dir.path().join("events.jsonl");
        let alerts = dir.path().join("alerts.jsonl");
        let mut cmd = Command::new(&bin);
        cmd.arg("run");
        if !extra.contains(&"--events") {
            cmd.arg("--events").arg(&events);
        }
        if !extra.contains(&"--alerts") {
            cmd.arg("--alerts").arg(&alerts);
        }
        // Tests run sensors side by side: each takes an ephemeral port.
        if !extra.contains(&"--metrics-addr") {
            cmd.args(["--metrics-addr", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stderr = child.stderr.take().context("sensor stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut sensor = Sensor {
            child,
            dir,
            stderr_lines: rx,
            stderr: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match sensor.stderr_lines.recv_timeout(left) {
                Ok(line) => {
                    let ready = line == "sensor: ready";
                    sensor.stderr.push(line);
                    if ready {
                        return Ok(sensor);
                    }
                }
                Err(_) => {
                    let _ = sensor.child.kill();
                    let _ = sensor.child.wait();
                    sensor.collect_stderr();
                    bail!("sensor did not become ready:\n{}", sensor.stderr.join("\n"));
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `host:port` of the metrics/health endpoint, if enabled.
    pub fn metrics_addr(&self) -> Option<String> {
        metrics_addr_from(&self.stderr)
    }

    pub fn events_path(&self) -> PathBuf {
        self.dir.path().join("events.jsonl")
    }

    pub fn alerts_path(&self) -> PathBuf {
        self.dir.path().join("alerts.jsonl")
    }

    fn collect_stderr(&mut self) {
        while let Ok(line) = self.stderr_lines.try_recv() {
            self.stderr.push(line);
        }
    }

    /// Whether the sensor process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until some event satisfies `pred`, returning it.
    pub fn wait_event(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        wait_line(&self.events_path(), timeout, pred)
    }

    /// SIGTERM, then wait (at most 10 s); returns the summary JSON.
    pub fn stop(&mut self) -> Result<Value> {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("sensor did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // Give the reader thread a moment to see EOF.
        std::thread::sleep(Duration::from_millis(100));
        self.collect_stderr();
        if !status.success() {
            bail!("sensor exited with {status}:\n{}", self.stderr.join("\n"));
        }
        let summary = self
            .stderr
            .iter()
            .find_map(|l| l.strip_prefix("sensor: summary "))
            .ok_or_else(|| anyhow!("no summary line:\n{}", self.stderr.join("\n")))?;
        Ok(serde_json::from_str(summary)?)
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Every JSON line of a file written so far (a torn last line is ignored).
pub fn read_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read(path).unwrap_or_default();
    text.split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}

/// Replays through `sensor replay --rules RULE` the lines of `events` that
/// contain `marker` (written to `dir/events.jsonl`), and returns the alert
/// lines it prints, for comparison with the live ones.
pub fn replay_marked(events: &Path, marker: &str, rule: &Path, dir: &Path) -> Vec<String> {
    let lines: String = std::fs::read_to_string(events)
        .expect("events")
        .lines()
        .filter(|l| l.contains(marker))
        .map(|l| format!("{l}\n"))
        .collect();
    let input = dir.join("events.jsonl");
    std::fs::write(&input, lines).expect("events");
    let out = Command::new(sensor_bin())
        .arg("replay")
        .arg("--rules")
        .arg(rule)
        .arg(&input)
        .output()
        .expect("sensor replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Polls a JSON-lines file until a line satisfies `pred`.
pub fn wait_line(path: &Path, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = read_lines(path).into_iter().find(|v| pred(v)) {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("no matching line in {} within {timeout:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `v[a][b]...` by a dotted path.
pub fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

/// Whether a `process.name` is a POSIX shell's: `/bin/sh` is named after
/// the file it leads to (`dash` on Debian, `busybox` on Alpine), as the
/// kernel executed it.
pub fn is_shell(name: &Value) -> bool {
    name.as_str()
        .is_some_and(|n| ["sh", "dash", "bash", "busybox"].contains(&n))
}

/// The event's `process.args` as strings.
pub fn args_of(v: &Value) -> Vec<String> {
    get(v, "process.args")
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A marker unique to this test run.
pub fn marker(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{name}-{}-{nanos:x}", std::process::id())
}

/// An ECS RFC 3339 UTC timestamp (`2026-01-02T03:04:05.123456789Z`) as
/// nanoseconds since the epoch.
pub fn rfc3339_ns(s: &str) -> Option<i128> {
    let t = humantime::parse_rfc3339(s).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(d.as_nanos() as i128)
}
