//! Issue #9, items 4 and 5, end to end against the real sensor: output files
//! a local user planted are refused, new ones are 0600, and the metrics and
//! health endpoint keeps answering under a flood of idle connections.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tests::{skip_or_fail, start_or_skip, Sensor};

/// Raises this process's open-file limit to at least `want` (up to the hard
/// limit); returns the soft limit in force.
fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// GET `path` the way the kubelet probes: a 2 s timeout for everything.
fn probe(addr: SocketAddr, path: &str) -> Result<String, String> {
    let timeout = Duration::from_secs(2);
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").map_err(|e| format!("send: {e}"))?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| format!("response: {e}"))?;
    Ok(text)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn healthz_answers_through_two_thousand_idle_connections() {
    // The sensor starts with the default 1,024-fd limit (started before
    // this process raises its own).
    let Some(sensor) = start_or_skip(&[]) else {
        return;
    };
    let addr: SocketAddr = sensor
        .metrics_addr()
        .expect("metrics address")
        .parse()
        .expect("socket address");
    let limit = raise_nofile(8192);
    let most = (limit.saturating_sub(100) as usize).min(4_000);
    assert!(most >= 2_000, "fd limit {limit} too low for the test");
    // The flood: idle connections opened one after the other and kept
    // open, 2,000 before the first probe, more while probing.
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let flood = {
        let (stop, opened) = (stop.clone(), opened.clone());
        std::thread::spawn(move || {
            let mut idle = Vec::with_capacity(most);
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && idle.len() < most && Instant::now() < deadline {
                if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                    idle.push(s);
                    opened.store(idle.len(), Ordering::Relaxed);
                }
            }
            // Held until the probes are done.
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            idle.len()
        })
    };
    // Probing starts with 2,000 connections open, or after 1.5 s: an
    // endpoint that holds every connection stops accepting near its fd
    // limit, and the flood then opens only as fast as it lets go of them.
    let started = Instant::now();
    while opened.load(Ordering::Relaxed) < 2_000 && started.elapsed() < Duration::from_millis(1_500)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "flood: {} idle connections open after {:?}",
        opened.load(Ordering::Relaxed),
        started.elapsed()
    );
    let mut failures = Vec::new();
    for round in 0..5 {
        match probe(addr, "/healthz") {
            Ok(answer) if answer.starts_with("HTTP/1.1 200 OK") => {}
            Ok(answer) => failures.push(format!("probe {round}: {answer}")),
            Err(e) => failures.push(format!("probe {round}: {e}")),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let fds = open_fds(sensor.pid());
    let metrics = probe(addr, "/metrics");
    stop.store(true, Ordering::Relaxed);
    let total = flood.join().expect("flood thread");
    assert!(
        failures.is_empty(),
        "/healthz under the flood: {failures:?}"
    );
    assert!(total >= 2_000, "only {total} connections opened");
    let metrics = metrics.expect("/metrics under the flood");
    let evicted = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("sensor_http_connections_closed_total{reason=\"evicted\"} ")?
                .parse::<u64>()
                .ok()
        })
        .expect("eviction counter");
    eprintln!("{total} idle connections in all; the sensor holds {fds} fds; {evicted} evicted");
    assert!(evicted >= 1_900, "{evicted} evicted");
    assert!(fds < 300, "the sensor holds {fds} fds under the flood");
    drop(sensor);
}

/// `sensor run` with `extra`; the error text when it refuses to start.
fn start_refused(extra: &[&str]) -> Option<String> {
    match Sensor::start(extra) {
        Ok(_) => None,
        Err(e) => Some(format!("{e:#}")),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn outputs_refuse_planted_links_and_foreign_files_and_are_created_0600() {
    if !is_root() {
        skip_or_fail("the sensor needs root");
        return;
    }
    // First, a sensor that starts at all (else skip like the other tests).
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    // The SIGTERM handler is installed just after `sensor: ready`.
    std::thread::sleep(Duration::from_millis(500));
    sensor.stop().expect("clean stop");
    for out in [sensor.alerts_path(), sensor.events_path()] {
        let mode = std::fs::metadata(&out).expect("output").mode() & 0o777;
        assert_eq!(mode, 0o600, "{} created {mode:o}", out.display());
    }

    let dir = tempfile::tempdir().expect("tempdir");
    // A root-only file a local user points a link at.
    let victim = dir.path().join("shadow");
    std::fs::write(&victim, "root:secret\n").expect("victim");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let link = dir.path().join("alerts.jsonl");
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).expect("lchown");
    let err = start_refused(&["--alerts", link.to_str().expect("utf8")])
        .expect("a symlinked alerts output must be refused");
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "root:secret\n"
    );

    // A dangling link must not create its target.
    let target = dir.path().join("created-by-root");
    let dangling = dir.path().join("events.jsonl");
    std::os::unix::fs::symlink(&target, &dangling).expect("symlink");
    let err = start_refused(&["--events", dangling.to_str().expect("utf8")])
        .expect("a dangling symlink must be refused");
    assert!(err.contains("symbolic link"), "{err}");
    assert!(!target.exists(), "the link's target was created");

    // A file planted by another user.
    let planted = dir.path().join("planted.jsonl");
    std::fs::write(&planted, "").expect("planted");
    std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).expect("chown");
    let err = start_refused(&["--alerts", planted.to_str().expect("utf8")])
        .expect("a file owned by another user must be refused");
    assert!(err.contains("owned by uid 65534"), "{err}");
    assert_eq!(std::fs::metadata(&planted).expect("planted").len(), 0);
}

/// The seed rule (metadata, ATT&CK mapping) with `query` replaced.
fn rule_with_query(query: &str) -> String {
    let seed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rules/defend-for-containers/persistence_suspicious_webserver_child_process_execution.toml"
    ))
    .expect("seed rule");
    let open = "query = '''\n";
    let body = seed.find(open).expect("query") + open.len();
    let end = body + seed[body..].find("\n'''").expect("end of query");
    format!("{}{query}{}", &seed[..body], &seed[end..])
}

#[test]
fn live_alerts_are_byte_identical_to_replaying_their_events() {
    // Alerts are rendered from the native event (issue #9); replay renders
    // them from the event's JSON line. Both must give the same bytes.
    let dir = tempfile::tempdir().expect("tempdir");
    let rule = dir.path().join("rule.toml");
    let m = tests::marker("alert-bytes");
    std::fs::write(
        &rule,
        rule_with_query(&format!(
            "process where event.type == \"start\" and process.args == \"{m}\""
        )),
    )
    .expect("rule");
    let Some(mut sensor) = start_or_skip(&["--rules", rule.to_str().expect("utf8")]) else {
        return;
    };
    for _ in 0..5 {
        std::process::Command::new("/bin/true")
            .arg(&m)
            .status()
            .expect("run");
    }
    let has_marker = |v: &serde_json::Value| tests::args_of(v).iter().any(|a| a == &m);
    tests::wait_line(&sensor.alerts_path(), Duration::from_secs(10), has_marker).expect("an alert");
    std::thread::sleep(Duration::from_millis(300));
    sensor.stop().expect("clean stop");
    let live: Vec<String> = std::fs::read_to_string(sensor.alerts_path())
        .expect("alerts")
        .lines()
        .map(str::to_owned)
        .collect();
    let replayed = tests::replay_marked(&sensor.events_path(), &m, &rule, dir.path());
    assert_eq!(live.len(), 5, "one alert per exec");
    assert_eq!(live, replayed);
}
