//! Issue #6 end to end: how the sensor behaves as a service — metrics and
//! health endpoints, a closed output pipe, a restart in the middle of an
//! exec storm.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tests::{args_of, get, marker, read_lines, sensor_bin, skip_or_fail, start_or_skip, wait_line};

const WAIT: Duration = Duration::from_secs(10);

/// GET `path` from `addr` (loopback), returning (status line, body).
fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_and_health_endpoints_are_scrapeable() {
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let addr = sensor
        .metrics_addr()
        .expect("metrics address in the start-up lines");
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let m = marker("metrics");
    for _ in 0..5 {
        Command::new("/bin/true").arg(&m).status().expect("run");
    }
    // All five written out (records arrive in batches).
    let deadline = Instant::now() + WAIT;
    while read_lines(&sensor.events_path())
        .iter()
        .filter(|v| args_of(v).get(1).is_some_and(|a| *a == m))
        .count()
        < 5
    {
        assert!(
            Instant::now() < deadline,
            "five exec events within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(http_get(&addr, "/healthz").0, "HTTP/1.1 200 OK");
    assert_eq!(http_get(&addr, "/readyz").0, "HTTP/1.1 200 OK");
    assert_eq!(http_get(&addr, "/nope").0, "HTTP/1.1 404 Not Found");
    let (status, body) = http_get(&addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        metric(&body, "sensor_events_total{kind=\"exec\"}").unwrap_or(0.0) >= 5.0,
        "{body}"
    );
    assert_eq!(
        metric(&body, "sensor_events_lost_total{kind=\"exec\"}"),
        Some(0.0)
    );
    assert_eq!(metric(&body, "sensor_ready"), Some(1.0));
    assert!(metric(&body, "sensor_process_table_entries").unwrap_or(0.0) > 10.0);
    assert!(metric(&body, "sensor_rule_eval_seconds_count").unwrap_or(0.0) >= 5.0);
    assert_eq!(
        metric(
            &body,
            "sensor_alerts_total{rule_id=\"497a7091-0ebd-44d7-88c4-367ab4d4d852\",rule_name=\"Web Server Exploitation Detected via Defend for Containers\"}"
        ),
        Some(0.0)
    );
    sensor.stop().expect("clean stop");
}

#[test]
fn a_closed_events_pipe_is_counted_not_fatal() {
    let bin = sensor_bin();
    if !bin.is_file() {
        skip_or_fail(&format!("no sensor binary at {}", bin.display()));
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let alerts = dir.path().join("alerts.jsonl");
    let mut child = Command::new(&bin)
        .args(["run", "--events", "-", "--metrics-addr", "", "--alerts"])
        .arg(&alerts)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sensor");
    // Close the read end of stdout at once: every write gets EPIPE.
    drop(child.stdout.take());
    let stderr = child.stderr.take().expect("stderr");
    let lines = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::BufReader::new(stderr).read_to_string(&mut text);
        text
    });
    std::thread::sleep(Duration::from_secs(3));
    for _ in 0..50 {
        Command::new("/bin/true").status().expect("run");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        matches!(child.try_wait(), Ok(None)),
        "the sensor must survive a closed pipe"
    );
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    let text = lines.join().expect("stderr reader");
    if text.contains("cannot load") || !text.contains("sensor: ready") {
        skip_or_fail(&format!("sensor did not start:\n{text}"));
        return;
    }
    assert!(status.success(), "exit status {status}:\n{text}");
    let summary: serde_json::Value = text
        .lines()
        .find_map(|l| l.strip_prefix("sensor: summary "))
        .and_then(|s| serde_json::from_str(s).ok())
        .expect("summary line");
    assert!(summary["exec"].as_u64().unwrap_or(0) >= 50, "{summary}");
    assert!(
        summary["output_errors"].as_u64().unwrap_or(0) > 0,
        "{summary}"
    );
}

/// A web-server-shaped parent in a Kubernetes-shaped cgroup: a process
/// exec'd as `nginx` (a symlink to bash), not interactive, running
/// `sh -c 'cat /etc/passwd'` — the seed rule's "file access" pattern.
struct FakePod {
    cgroup: PathBuf,
    top: PathBuf,
    link_dir: tempfile::TempDir,
    id: String,
}

impl FakePod {
    fn new() -> FakePod {
        let id = format!(
            "{:0>64}",
            format!("{:x}", std::process::id() as u64 * 7919 + 0xfeed)
        );
        let uid = "0c8e7b4e-6a3c-4e26-9d67-3f0b2f3b6a11";
        let top = PathBuf::from(format!(
            "/sys/fs/cgroup/unified/sensor-ops-{}",
            std::process::id()
        ));
        let cgroup = top.join(format!("kubepods/besteffort/pod{uid}/{id}"));
        std::fs::create_dir_all(&cgroup).expect("create cgroup");
        let link_dir = tempfile::tempdir().expect("tempdir");
        // A copy, not a symlink: a process is named after the file it
        // executes, whatever name it was started by.
        std::fs::copy("/bin/bash", link_dir.path().join("nginx")).expect("copy of bash");
        FakePod {
            cgroup,
            top,
            link_dir,
            id,
        }
    }

    /// Runs one attack; returns the attacking shell's marker.
    fn attack(&self) -> String {
        let m = marker("restart-attack");
        let script = format!(
            // `; true`: keeps bash from exec'ing the last command in place,
            // so the shell's parent is the `nginx` process.
            "echo $$ > {}/cgroup.procs && /bin/sh -c 'cat /etc/passwd >/dev/null; echo {m} >/dev/null'; true",
            self.cgroup.display()
        );
        let status = Command::new(self.link_dir.path().join("nginx"))
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run attack");
        assert!(status.success());
        m
    }
}

impl Drop for FakePod {
    fn drop(&mut self) {
        // Leaf first; the processes have exited.
        let mut dir = self.cgroup.clone();
        while dir.starts_with(&self.top) {
            let _ = std::fs::remove_dir(&dir);
            if !dir.pop() {
                break;
            }
        }
    }
}

fn alert_for(alerts: &Path, m: &str) -> Option<serde_json::Value> {
    read_lines(alerts)
        .into_iter()
        .find(|a| args_of(a).iter().any(|x| x.contains(m)))
}

#[test]
fn restart_in_the_middle_of_a_storm_resumes_and_alerts() {
    let Some(mut first) = start_or_skip(&[]) else {
        return;
    };
    let pod = FakePod::new();
    // The fake pod's attack is detected before the restart...
    let m = pod.attack();
    let alerts = first.alerts_path();
    let alert = wait_line(&alerts, WAIT, |a| args_of(a).iter().any(|x| x.contains(&m)))
        .expect("alert before the restart");
    assert_eq!(get(&alert, "container.id").as_str(), Some(pod.id.as_str()));
    assert_eq!(get(&alert, "process.parent.name"), "nginx");

    // ...a storm runs while the sensor is killed (SIGKILL: no clean-up)...
    let stop = Arc::new(AtomicBool::new(false));
    let storm = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _ = Command::new("/bin/true").status();
                n += 1;
            }
            n
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: plain kill(2) on the sensor we started.
    unsafe { libc::kill(first.pid() as i32, libc::SIGKILL) };
    let deadline = Instant::now() + WAIT;
    while first.is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!first.is_running());

    // ...and a new sensor started mid-storm resumes and still alerts.
    let Some(mut second) = start_or_skip(&[]) else {
        stop.store(true, Ordering::Relaxed);
        let _ = storm.join();
        return;
    };
    std::thread::sleep(Duration::from_millis(500));
    let m2 = pod.attack();
    stop.store(true, Ordering::Relaxed);
    let execs = storm.join().expect("storm");
    let alert = wait_line(&second.alerts_path(), WAIT, |a| {
        args_of(a).iter().any(|x| x.contains(&m2))
    })
    .expect("alert after the restart");
    assert_eq!(get(&alert, "container.id").as_str(), Some(pod.id.as_str()));
    assert!(
        alert_for(&second.alerts_path(), &m).is_none(),
        "no replay of old alerts"
    );
    assert!(second
        .stderr
        .iter()
        .any(|l| l.starts_with("sensor: process table seeded with")));
    let summary = second.stop().expect("clean stop");
    assert!(summary["exec"].as_u64().unwrap_or(0) > 0);
    eprintln!("restart: storm of {execs} execs across the restart");
}

/// Runs the sensor binary with `args` (as `user` when given); returns
/// (exit code, stderr).
fn run_sensor(user: Option<&str>, args: &[&str]) -> Option<(i32, String)> {
    let bin = sensor_bin();
    if !bin.is_file() {
        skip_or_fail(&format!("no sensor binary at {}", bin.display()));
        return None;
    }
    let mut cmd = match user {
        Some(u) => {
            let mut c = Command::new("runuser");
            c.args(["-u", u, "--"]).arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sensor");
    Some((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn assert_clean_failure(code: i32, stderr: &str, needle: &str) {
    assert_ne!(code, 0, "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
}

#[test]
fn fatal_conditions_give_one_clear_line_and_a_non_zero_exit() {
    // Not root: no eBPF for an unprivileged user.
    let Some((code, err)) = run_sensor(Some("nobody"), &["run", "--metrics-addr", ""]) else {
        return;
    };
    assert_clean_failure(code, &err, "not enough privilege to load eBPF programs");
    // Not an eBPF object.
    let Some((code, err)) = run_sensor(
        None,
        &[
            "run",
            "--metrics-addr",
            "",
            "--ebpf-object",
            "/etc/hostname",
        ],
    ) else {
        return;
    };
    assert_clean_failure(code, &err, "loading the eBPF object failed");
    // No kernel BTF (as on a kernel built without it), and garbage BTF.
    let Some((code, err)) = run_sensor(
        None,
        &["run", "--metrics-addr", "", "--btf", "/nonexistent/vmlinux"],
    ) else {
        return;
    };
    assert_clean_failure(code, &err, "cannot read kernel BTF at /nonexistent/vmlinux");
    let Some((code, err)) = run_sensor(
        None,
        &["run", "--metrics-addr", "", "--btf", "/etc/hostname"],
    ) else {
        return;
    };
    assert_clean_failure(code, &err, "malformed BTF");
    // tracefs missing and not mountable: a private mount namespace where
    // /sys/kernel is an empty tmpfs (BTF taken from a copy).
    let dir = tempfile::tempdir().expect("tempdir");
    let btf = dir.path().join("vmlinux");
    std::fs::copy("/sys/kernel/btf/vmlinux", &btf).expect("copy kernel BTF");
    let script = format!(
        "mount -t tmpfs none /sys/kernel && exec {} run --metrics-addr '' --btf {}",
        sensor_bin().display(),
        btf.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .expect("unshare");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_clean_failure(
        out.status.code().unwrap_or(-1),
        &err,
        "tracefs is not mounted and mounting it at /sys/kernel/tracing failed",
    );
    // A malformed rule: file, line and column, and a caret under the text.
    let dir = tempfile::tempdir().expect("tempdir");
    let rule = dir.path().join("bad.toml");
    let seed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rules/defend-for-containers/persistence_suspicious_webserver_child_process_execution.toml"
    ))
    .expect("seed rule");
    std::fs::write(
        &rule,
        seed.replace("process.name in (", "process.name inn ("),
    )
    .expect("write");
    let rule_arg = rule.to_str().expect("utf8");
    let Some((code, err)) = run_sensor(None, &["run", "--metrics-addr", "", "--rules", rule_arg])
    else {
        return;
    };
    assert_clean_failure(code, &err, "bad.toml");
    assert!(err.contains('^'), "caret under the offending text: {err}");
    // A bad setting names itself and where it came from.
    let Some((code, err)) = run_sensor(None, &["run", "--ring-buffer-mib", "3"]) else {
        return;
    };
    assert_clean_failure(
        code,
        &err,
        "invalid setting `ring_buffer_mib` (from the command line or environment)",
    );
    // A taken metrics port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let Some((code, err)) = run_sensor(None, &["run", "--metrics-addr", &addr]) else {
        return;
    };
    assert_clean_failure(code, &err, "binding the metrics endpoint");
}

#[test]
fn a_full_disk_is_counted_not_fatal() {
    // A 512 KiB tmpfs for the events output fills within a hundred-odd
    // events (~2.5 KiB each with the session model; 300 are written per
    // half, and a busy machine adds its own); a filler file takes half of
    // it, to be freed halfway through.
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).expect("mkdir");
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(&mnt)
        .status()
        .expect("mount");
    if !status.success() {
        skip_or_fail("cannot mount a tmpfs (needs root)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let filler = mnt.join("filler");
    std::fs::write(&filler, vec![b'x'; 256 * 1024]).expect("filler");
    let events = mnt.join("events.jsonl");
    let Some(mut sensor) = start_or_skip(&["--events", events.to_str().expect("utf8")]) else {
        return;
    };
    let full = marker("full-disk");
    for _ in 0..300 {
        Command::new("/bin/true").arg(&full).status().expect("run");
    }
    std::thread::sleep(Duration::from_millis(500));
    // Space comes back: writing resumes with whole lines, and no fragment
    // of a line dropped at the fill point is written later.
    std::fs::remove_file(&filler).expect("free space");
    let freed = marker("freed");
    for _ in 0..300 {
        Command::new("/bin/true").arg(&freed).status().expect("run");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(sensor.is_running(), "the sensor must survive a full disk");
    let summary = sensor.stop().expect("clean stop");
    assert!(summary["exec"].as_u64().unwrap_or(0) >= 600, "{summary}");
    assert!(
        summary["output_errors"].as_u64().unwrap_or(0) > 0,
        "{summary}"
    );
    let text = std::fs::read(&events).expect("events file");
    assert!(text.ends_with(b"\n"), "the file ends with a whole line");
    let mut with_marker = [0usize; 2];
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(line).unwrap_or_else(|e| {
            panic!(
                "line {} is not whole JSON ({e}): {:?}",
                i + 1,
                String::from_utf8_lossy(&line[..line.len().min(200)])
            )
        });
        for (n, m) in [&full, &freed].into_iter().enumerate() {
            if args_of(&v).iter().any(|a| a == m) {
                with_marker[n] += 1;
            }
        }
    }
    assert!(
        with_marker[0] > 0 && with_marker[1] > 0,
        "lines before the disk filled and after space was freed: {with_marker:?}"
    );
}
