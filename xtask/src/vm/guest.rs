//! The end-to-end core, run inside the VM as `/bin/xtask vm-guest` by the
//! initramfs's `/init` (after proc, sysfs, devtmpfs, devpts, tracefs and
//! bpffs are mounted). It mounts the cgroup layout named on the kernel
//! command line, starts the release sensor, drives the scenario and prints
//! one machine-readable line per check on the console:
//!
//! ```text
//! VMTEST <check> <pass|fail|info> <detail>
//! ```
//!
//! ending with `VMTEST end info -`. The host ([`super`]) decides which
//! checks are required for the cell.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::Layout;

mod network;
mod pty;
use network::{connect_once, net_rule, network_check, NET_RULE_ID};
use pty::spawn_on_pty;

/// Prefix of every result line.
pub const PREFIX: &str = "VMTEST";
/// The seed rule's id (rules/defend-for-containers/persistence_suspicious_webserver_child_process_execution.toml).
const WEBSERVER_RULE_ID: &str = "497a7091-0ebd-44d7-88c4-367ab4d4d852";
const EVENTS: &str = "/tmp/events.json";
/// The rules the guest's sensor loads: the seed rule and one naming the
/// `file_events` check's files (so the in-kernel prefilter, on as by
/// default, lets exactly those through).
const RULES_DIR: &str = "/tmp/vm-rules";
/// The id of the rule naming the guest's files (its alerts are not the
/// seed rule's business).
const FILE_RULE_ID: &str = "00000000-0000-4000-8000-00000000f11e";
const SEED_RULE: &str =
    include_str!("../../../rules/defend-for-containers/persistence_suspicious_webserver_child_process_execution.toml");
const ALERTS: &str = "/tmp/alerts.json";
const SENSOR_LOG: &str = "/tmp/sensor.log";

fn line(check: &str, status: &str, detail: &str) {
    let detail = detail.replace(['\n', '\r'], " ");
    let detail = if detail.is_empty() {
        "-".to_owned()
    } else {
        detail
    };
    println!("{PREFIX} {check} {status} {detail}");
}

fn report(check: &str, ok: bool, detail: &str) {
    line(check, if ok { "pass" } else { "fail" }, detail);
}

fn info(check: &str, detail: &str) {
    line(check, "info", detail);
}

/// Entry point of `xtask vm-guest`: never fails, reports instead.
pub fn run() -> Result<()> {
    if let Err(e) = scenario() {
        report("guest", false, &format!("{e:#}"));
        dump_sensor_log();
    }
    line("end", "info", "-");
    Ok(())
}

fn param<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

fn sh(script: &str) -> Result<()> {
    let out = Command::new("/bin/sh")
        .args(["-c", script])
        .output()
        .with_context(|| format!("running {script}"))?;
    if !out.status.success() {
        bail!(
            "`{script}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A random-enough hex string (the VM has no other entropy we need).
fn hex_id(len: usize) -> String {
    let mut bytes = vec![0u8; len.div_ceil(2)];
    let ok = fs::File::open("/dev/urandom")
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !ok {
        let seed = Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id());
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(37);
        }
    }
    let mut s: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    s.truncate(len);
    s
}

/// The container cgroup made for this run.
struct ContainerCgroup {
    id: String,
    /// The `cgroup.procs` files a process writes itself into.
    procs: Vec<PathBuf>,
    /// Path of the container cgroup, relative to a hierarchy's root.
    path: String,
}

/// v1 controllers a container is put into (cpuset is left out: it needs
/// cpus and mems set before a task may join).
const CONTAINER_CONTROLLERS: &[&str] = &[
    "cpu", "cpuacct", "memory", "pids", "devices", "freezer", "blkio", "systemd",
];

fn mount_v1_controllers() -> Result<Vec<String>> {
    sh("mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup")?;
    let table = fs::read_to_string("/proc/cgroups").context("reading /proc/cgroups")?;
    let mut mounted = Vec::new();
    for l in table.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 4 || f[3] != "1" {
            continue;
        }
        let c = f[0];
        match sh(&format!(
            "mkdir -p /sys/fs/cgroup/{c} && mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c}"
        )) {
            Ok(()) => mounted.push(c.to_owned()),
            Err(e) => {
                let _ = fs::remove_dir(format!("/sys/fs/cgroup/{c}"));
                info("cgroup_v1_controller_unavailable", &format!("{c}: {e:#}"));
            }
        }
    }
    // systemd's named hierarchy, as on every v1 or hybrid systemd host.
    sh("mkdir -p /sys/fs/cgroup/systemd && mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd")?;
    mounted.push("systemd".to_owned());
    Ok(mounted)
}

fn setup_layout(layout: Layout) -> Result<ContainerCgroup> {
    let id = hex_id(64);
    let pod = format!(
        "{}-{}-{}-{}-{}",
        hex_id(8),
        hex_id(4),
        hex_id(4),
        hex_id(4),
        hex_id(12)
    );
    let (path, roots): (String, Vec<PathBuf>) = match layout {
        Layout::V2 => {
            sh("mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup")?;
            let pod_ = pod.replace('-', "_");
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{pod_}.slice/cri-containerd-{id}.scope"
                ),
                vec![PathBuf::from("/sys/fs/cgroup")],
            )
        }
        Layout::Hybrid | Layout::HybridV1Runtime => {
            let mounted = mount_v1_controllers()?;
            sh("mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup/unified")?;
            let mut roots: Vec<PathBuf> = mounted
                .iter()
                .filter(|c| CONTAINER_CONTROLLERS.contains(&c.as_str()))
                .map(|c| Path::new("/sys/fs/cgroup").join(c))
                .collect();
            if layout == Layout::Hybrid {
                roots.push(PathBuf::from("/sys/fs/cgroup/unified"));
            }
            // Kubelet's cgroupfs driver with containerd.
            (format!("/kubepods/besteffort/pod{pod}/{id}"), roots)
        }
        Layout::V1 => {
            let mounted = mount_v1_controllers()?;
            let roots = mounted
                .iter()
                .filter(|c| CONTAINER_CONTROLLERS.contains(&c.as_str()))
                .map(|c| Path::new("/sys/fs/cgroup").join(c))
                .collect();
            // Docker's cgroupfs driver (RHEL 7/8 style).
            (format!("/docker/{id}"), roots)
        }
    };
    let mut procs = Vec::new();
    for root in &roots {
        let dir = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        procs.push(dir.join("cgroup.procs"));
    }
    Ok(ContainerCgroup { id, procs, path })
}

fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn active_lsms() -> String {
    let path = "/sys/kernel/security/lsm";
    if !Path::new(path).exists() {
        let _ = sh("mount -t securityfs securityfs /sys/kernel/security");
    }
    fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| format!("unreadable ({e})"))
}

fn dump_sensor_log() {
    if let Ok(text) = fs::read_to_string(SENSOR_LOG) {
        for l in text.lines().take(60) {
            println!("sensor.log: {l}");
        }
    }
}

/// A rule that names the `file_events` check's files by name, for every
/// file operation.
fn file_rule() -> String {
    format!(
        r#"[metadata]
creation_date = "2026/11/26"
maturity = "production"
updated_date = "2026/11/26"

[rule]
author = ["vm-test"]
description = "The vm-test guest's own files."
from = "now-6m"
index = ["logs-cloud_defend.file*"]
language = "eql"
license = "Elastic License v2"
name = "VM test files"
risk_score = 21
rule_id = "{FILE_RULE_ID}"
severity = "low"
type = "eql"
query = '''
file where file.name in ("{}", "{}", "{}")
'''
"#,
        file_name(VM_FILE),
        file_name(VM_FILE_RENAMED),
        file_name(VM_MOUNTED),
    )
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn start_sensor() -> Result<Child> {
    fs::create_dir_all(RULES_DIR).context("creating the rules directory")?;
    fs::write(Path::new(RULES_DIR).join("seed.toml"), SEED_RULE)
        .context("writing the seed rule")?;
    fs::write(Path::new(RULES_DIR).join("files.toml"), file_rule())
        .context("writing the file rule")?;
    fs::write(Path::new(RULES_DIR).join("network.toml"), net_rule())
        .context("writing the network rule")?;
    let log = fs::File::create(SENSOR_LOG).context("creating the sensor log")?;
    let child = Command::new("/bin/sensor")
        .args([
            "run",
            "--rules",
            RULES_DIR,
            "--events",
            EVENTS,
            "--alerts",
            ALERTS,
            "--lifecycle-events",
            "--metrics-addr",
            "",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting /bin/sensor")?;
    Ok(child)
}

/// Waits for `sensor: ready`; on failure says why (exit or timeout).
fn wait_ready(sensor: &mut Child, limit: Duration) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let log = fs::read_to_string(SENSOR_LOG).unwrap_or_default();
        if log.lines().any(|l| l.trim() == "sensor: ready") {
            return Ok(start.elapsed());
        }
        if let Some(status) = sensor.try_wait()? {
            bail!("the sensor exited before ready ({status})");
        }
        if start.elapsed() > limit {
            bail!("the sensor was not ready after {}s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_json_lines(path: &str) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `a.b.c` in nested objects, or a flat dotted key.
fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
    let nested = path.split('.').fold(v, |v, k| &v[k]);
    if nested.is_null() {
        &v[path]
    } else {
        nested
    }
}

fn action(v: &Value) -> &str {
    get(v, "event.action").as_str().unwrap_or("")
}

fn pid_of(v: &Value, field: &str) -> Option<u32> {
    get(v, field).as_u64().and_then(|p| u32::try_from(p).ok())
}

/// The processes the scenario started, by pid.
struct Scenario {
    argv: Vec<String>,
    exec_pid: u32,
    fork_pid: u32,
    tty_pid: u32,
    nginx_pid: u32,
}

fn wait_child(mut child: Child, what: &str) -> Result<u32> {
    let pid = child.id();
    let status = child
        .wait()
        .with_context(|| format!("waiting for {what}"))?;
    let _ = status;
    Ok(pid)
}

/// The fake web server: busybox copied to `/usr/sbin/nginx` (so the exec
/// filename, hence `process.name`, is `nginx`) started with argv[0] `sh`
/// (so busybox runs its shell), joined to the container cgroup before exec.
/// Its shell forks `/bin/sh -c 'cat /etc/passwd'`: a web-shell child. (The
/// absolute path matters: busybox's standalone shell runs a bare `sh` as an
/// applet or re-execs /proc/self/exe, neither of which is an exec of `sh`.)
fn spawn_nginx(cg: &ContainerCgroup) -> Result<Child> {
    let procs: Vec<CString> = cg
        .procs
        .iter()
        .map(|p| CString::new(p.to_string_lossy().as_bytes()))
        .collect::<Result<_, _>>()
        .context("cgroup path with NUL")?;
    let mut cmd = Command::new("/usr/sbin/nginx");
    cmd.arg0("sh")
        .args(["-c", "/bin/sh -c 'cat /etc/passwd' >/dev/null; true"])
        .env("PATH", "/bin:/sbin:/usr/bin:/usr/sbin")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // SAFETY: open/write/close only, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for p in &procs {
                let fd = libc::open(p.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                let err = io::Error::last_os_error();
                libc::close(fd);
                if n != 1 {
                    return Err(err);
                }
            }
            Ok(())
        });
    }
    cmd.spawn().context("starting the fake nginx")
}

fn drive(cg: &ContainerCgroup) -> Result<Scenario> {
    let marker = hex_id(12);
    let argv: Vec<String> = vec![
        "/bin/echo".into(),
        format!("vm-argv-{marker}"),
        "two words".into(),
        String::new(),
        "x=1;y='z'".into(),
    ];
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .spawn()
        .context("exec probe")?;
    let exec_pid = wait_child(child, "the exec probe")?;

    let child = Command::new("/bin/sh")
        .args(["-c", "exit 3"])
        .spawn()
        .context("fork/exit probe")?;
    let fork_pid = wait_child(child, "the fork/exit probe")?;

    let (child, master) = spawn_on_pty(&["/bin/echo", &format!("vm-tty-{marker}")])?;
    let tty_pid = wait_child(child, "the pty probe")?;
    // SAFETY: closing our own fd once the child is gone.
    unsafe {
        libc::close(master);
    }

    let child = spawn_nginx(cg)?;
    let nginx_pid = wait_child(child, "the fake nginx")?;
    Ok(Scenario {
        argv,
        exec_pid,
        fork_pid,
        tty_pid,
        nginx_pid,
    })
}

/// Whether the events hold every record the scenario causes: the exec of
/// each probe, the fork and end of the fork probe, the web-shell child's exec.
fn all_records_in(s: &Scenario, events: &[Value]) -> bool {
    let has = |act: &str, field: &str, pid: u32| {
        events
            .iter()
            .any(|v| action(v) == act && pid_of(v, field) == Some(pid))
    };
    has("exec", "process.pid", s.exec_pid)
        && has("fork", "process.pid", s.fork_pid)
        && has("end", "process.pid", s.fork_pid)
        && has("exec", "process.pid", s.tty_pid)
        && has("exec", "process.pid", s.nginx_pid)
        && has("exec", "process.parent.pid", s.nginx_pid)
}

fn find(events: &[Value], pred: impl Fn(&Value) -> bool) -> Option<&Value> {
    events.iter().find(|v| pred(v))
}

/// Each check's outcome from the events and alerts seen so far.
fn evaluate(
    s: &Scenario,
    cg: &ContainerCgroup,
    events: &[Value],
    alerts: &[Value],
) -> Vec<(&'static str, bool, String)> {
    let mut out = Vec::new();
    let exec = find(events, |v| {
        action(v) == "exec" && pid_of(v, "process.pid") == Some(s.exec_pid)
    });
    out.push(match exec {
        None => (
            "exec_argv",
            false,
            format!("no exec event for pid {}", s.exec_pid),
        ),
        Some(v) => {
            let args: Vec<&str> = get(v, "process.args")
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let ok = args == s.argv.iter().map(String::as_str).collect::<Vec<_>>();
            ("exec_argv", ok, format!("args {args:?}"))
        }
    });

    let fork = find(events, |v| {
        action(v) == "fork" && pid_of(v, "process.pid") == Some(s.fork_pid)
    });
    let end = find(events, |v| {
        action(v) == "end" && pid_of(v, "process.pid") == Some(s.fork_pid)
    });
    let code = end.and_then(|v| get(v, "process.exit_code").as_i64());
    out.push((
        "fork_exit",
        fork.is_some() && code == Some(3),
        format!(
            "pid {}: fork {}, end {}",
            s.fork_pid,
            if fork.is_some() { "seen" } else { "missing" },
            match (end, code) {
                (None, _) => "missing".to_owned(),
                (Some(_), c) => format!("exit_code {c:?}"),
            }
        ),
    ));

    let tty = find(events, |v| {
        action(v) == "exec" && pid_of(v, "process.pid") == Some(s.tty_pid)
    });
    let nginx = find(events, |v| {
        action(v) == "exec" && pid_of(v, "process.pid") == Some(s.nginx_pid)
    });
    let tty_i = tty.map(|v| get(v, "process.interactive").clone());
    let nginx_i = nginx.map(|v| get(v, "process.interactive").clone());
    out.push((
        "interactive",
        tty_i == Some(Value::Bool(true)) && nginx_i == Some(Value::Bool(false)),
        format!("pty child interactive {tty_i:?}, daemon interactive {nginx_i:?}"),
    ));

    let cid = nginx.map(|v| get(v, "container.id").clone());
    let runtime = nginx.map(|v| get(v, "container.runtime").clone());
    out.push((
        "container_id",
        cid.as_ref().and_then(Value::as_str) == Some(cg.id.as_str()),
        format!(
            "cgroup {} -> container.id {} runtime {}",
            cg.path,
            cid.map_or("(no event)".to_owned(), |c| c.to_string()),
            runtime.map_or("-".to_owned(), |r| r.to_string())
        ),
    ));

    // A process is named after the file it executes: `/bin/sh` is a link
    // to busybox here.
    let sh_name = fs::canonicalize("/bin/sh")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "sh".to_owned());
    let child = find(events, |v| {
        action(v) == "exec"
            && pid_of(v, "process.parent.pid") == Some(s.nginx_pid)
            && get(v, "process.name").as_str() == Some(sh_name.as_str())
    });
    let ours: Vec<&Value> = alerts
        .iter()
        .filter(|a| get(a, "kibana.alert.rule.rule_id").as_str() == Some(WEBSERVER_RULE_ID))
        .collect();
    let on_child = child.is_some_and(|c| {
        ours.iter()
            .any(|a| pid_of(a, "process.pid") == pid_of(c, "process.pid"))
    });
    let not_files = alerts
        .iter()
        .filter(|a| {
            let id = get(a, "kibana.alert.rule.rule_id").as_str();
            id != Some(FILE_RULE_ID) && id != Some(NET_RULE_ID)
        })
        .count();
    out.push((
        "webserver_alert",
        not_files == 1 && ours.len() == 1 && on_child,
        format!(
            "{} alert(s) beside the file rule's, {} from the web-server rule, on the nginx child: {on_child} (child exec {})",
            not_files,
            ours.len(),
            if child.is_some() { "seen" } else { "missing" }
        ),
    ));
    out
}

/// The file the `file_events` check creates, rewrites, renames and deletes.
const VM_FILE: &str = "/tmp/vmtest-file.txt";
const VM_FILE_RENAMED: &str = "/tmp/vmtest-file.conf";
/// A file no rule names, put through the same operations: the prefilter
/// drops every one of them in the kernel (`file_prefilter` check).
const VM_OTHER: &str = "/tmp/vmtest-other.txt";
const VM_OTHER_RENAMED: &str = "/tmp/vmtest-other.conf";
/// A file bind-mounted over one the rule names (`VM_MOUNTED`, from
/// `VM_MOUNT_SOURCE`, whose own name no rule names): written through the
/// mount, it is named by its mount point, and crosses.
const VM_MOUNTED: &str = "/tmp/vmtest-mounted.txt";
const VM_MOUNT_SOURCE: &str = "/tmp/vmtest-mount-source";

/// Bind-mounts `source` over `target` (both existing files).
fn bind_mount(source: &str, target: &str) -> io::Result<()> {
    let (src, dst) = (CString::new(source)?, CString::new(target)?);
    // SAFETY: valid NUL-terminated paths; no filesystem type or data for a
    // bind mount.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A boot with `lsm=<asked>`: the check it calls for and whether the
/// active list agrees (`bpf` active exactly when `asked` names it).
fn lsm_boot_check(asked: &str, active: &str) -> (&'static str, bool) {
    let has_bpf = |list: &str| list.split(',').any(|l| l == "bpf");
    let named = has_bpf(asked);
    let check = if named {
        "lsm_with_bpf"
    } else {
        "lsm_without_bpf"
    };
    (check, has_bpf(active) == named)
}

fn scenario() -> Result<()> {
    let cmdline = fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?;
    let layout = param(&cmdline, "vmtest_layout")
        .and_then(Layout::parse)
        .unwrap_or(Layout::V2);
    info("kernel", &kernel_release());
    info("layout", layout.as_str());
    let lsm = active_lsms();
    info("lsm", &lsm);
    if let Some(asked) = param(&cmdline, "lsm") {
        let (check, ok) = lsm_boot_check(asked, &lsm);
        report(
            check,
            ok,
            &format!("booted with lsm={asked}, active: {lsm}"),
        );
    }
    info(
        "btf",
        if Path::new("/sys/kernel/btf/vmlinux").exists() {
            "/sys/kernel/btf/vmlinux"
        } else {
            "absent"
        },
    );

    let cg = setup_layout(layout).context("setting up the cgroup layout")?;
    report(
        "cgroup_layout",
        true,
        &format!(
            "{} with container cgroup {} in {} hierarchies",
            layout.as_str(),
            cg.path,
            cg.procs.len()
        ),
    );

    let mut sensor = start_sensor()?;
    match wait_ready(&mut sensor, Duration::from_secs(120)) {
        Ok(t) => {
            let log = fs::read_to_string(SENSOR_LOG).unwrap_or_default();
            let attached = log
                .lines()
                .find(|l| l.contains("attached"))
                .unwrap_or("")
                .to_owned();
            report(
                "sensor_start",
                true,
                &format!("ready in {:.1}s: {attached}", t.as_secs_f64()),
            );
            // The sensor must say which container-identity mode it uses.
            let want = match layout {
                Layout::V1 => "container identity: cgroup v1",
                Layout::V2 => "container identity: cgroup2",
                Layout::Hybrid | Layout::HybridV1Runtime => "container identity: hybrid",
            };
            let said = log.lines().find(|l| l.contains("container identity"));
            report(
                "identity_mode",
                said.is_some_and(|l| l.contains(want)),
                &format!("want `{want}`, sensor said {said:?}"),
            );
            // File events: BPF LSM where `bpf` is an active LSM, else
            // fentry on the security_* functions (a kernel without BPF
            // LSM, as Ubuntu's default list is).
            let want = if lsm.split(',').any(|l| l == "bpf") {
                "file events via BPF LSM"
            } else {
                "file events via fentry"
            };
            let said = log.lines().find(|l| l.contains("file events"));
            report(
                "file_mechanism",
                said.is_some_and(|l| l.contains(want)),
                &format!("want `{want}`, sensor said {said:?}"),
            );
            // Network events: the tracepoints on every kernel.
            let want = "network events via tracepoints";
            let said = log.lines().find(|l| l.contains("network events"));
            report(
                "net_mechanism",
                said.is_some_and(|l| l.contains(want)),
                &format!("want `{want}`, sensor said {said:?}"),
            );
            for l in log
                .lines()
                .filter(|l| l.contains("warning") || l.contains("container"))
            {
                info("sensor_says", l);
            }
        }
        Err(e) => {
            report("sensor_start", false, &format!("{e:#}"));
            dump_sensor_log();
            let _ = sensor.kill();
            return Ok(());
        }
    }

    let s = drive(&cg)?;
    // A file created, opened for writing, renamed and deleted.
    let file_ops = (|| -> std::io::Result<()> {
        for (file, renamed) in [(VM_OTHER, VM_OTHER_RENAMED), (VM_FILE, VM_FILE_RENAMED)] {
            fs::write(file, "x")?;
            fs::write(file, "y")?;
            fs::rename(file, renamed)?;
            fs::remove_file(renamed)?;
        }
        fs::write(VM_MOUNT_SOURCE, "x")?;
        fs::write(VM_MOUNTED, "x")?;
        bind_mount(VM_MOUNT_SOURCE, VM_MOUNTED)?;
        io::Write::write_all(
            &mut fs::OpenOptions::new().append(true).open(VM_MOUNTED)?,
            b"more",
        )
    })();
    let connected = connect_once();
    // Records are batched (10 ms); under TCG give them time, then stop the
    // sensor so its outputs are flushed and the alert count is final.
    // Every record the scenario makes is in once the last one is: stop
    // waiting then, whatever the checks say (a missing field never comes).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if all_records_in(&s, &read_json_lines(EVENTS)) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(sensor.id() as libc::pid_t, libc::SIGTERM);
    }
    let stop = Instant::now();
    let status = loop {
        if let Some(st) = sensor.try_wait()? {
            break Some(st);
        }
        if stop.elapsed() > Duration::from_secs(30) {
            let _ = sensor.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    report(
        "sensor_stop",
        status.is_some_and(|s| s.success()),
        &format!("{status:?} after SIGTERM"),
    );
    let events = read_json_lines(EVENTS);
    let alerts = read_json_lines(ALERTS);
    let mut results = evaluate(&s, &cg, &events, &alerts);
    let file_actions: Vec<String> = events
        .iter()
        .filter(|e| {
            get(e, "event.category")[0] == "file"
                && [VM_FILE, VM_FILE_RENAMED].contains(&get(e, "file.path").as_str().unwrap_or(""))
        })
        .map(|e| {
            format!(
                "{}:{}",
                action(e),
                get(e, "file.path").as_str().unwrap_or("")
            )
        })
        .collect();
    let want = [
        format!("creation:{VM_FILE}"),
        format!("open:{VM_FILE}"),
        format!("rename:{VM_FILE_RENAMED}"),
        format!("deletion:{VM_FILE_RENAMED}"),
    ];
    results.push((
        "file_events",
        file_ops.is_ok() && want.iter().all(|w| file_actions.contains(w)),
        format!("{file_ops:?}; saw {file_actions:?}"),
    ));
    results.push(prefilter_check(&events));
    results.push(network_check(&events, &connected));
    let failed = results.iter().any(|(_, ok, _)| !ok);
    for (check, ok, detail) in results {
        report(check, ok, &detail);
    }
    info(
        "events",
        &format!("{} events, {} alerts", events.len(), alerts.len()),
    );
    if failed {
        dump_sensor_log();
    }
    Ok(())
}

/// The in-kernel prefilter under this kernel's mechanism: the files no
/// rule names never cross (and the summary counts them filtered), the
/// bind-mounted file crosses under its mount point's name.
fn prefilter_check(events: &[Value]) -> (&'static str, bool, String) {
    let crossed_other: Vec<String> = events
        .iter()
        .filter_map(|e| get(e, "file.path").as_str().map(str::to_owned))
        .filter(|p| *p == VM_OTHER || *p == VM_OTHER_RENAMED || *p == VM_MOUNT_SOURCE)
        .collect();
    let mounted = events
        .iter()
        .any(|e| get(e, "file.path").as_str() == Some(VM_MOUNTED) && action(e) == "open");
    let log = fs::read_to_string(SENSOR_LOG).unwrap_or_default();
    let filtered: u64 = log
        .lines()
        .find_map(|l| l.strip_prefix("sensor: summary "))
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
        .and_then(|v| {
            v["file_prefilter"].as_array().map(|counts| {
                counts
                    .iter()
                    .filter(|c| c["verdict"] == "filtered")
                    .filter_map(|c| c["count"].as_u64())
                    .sum()
            })
        })
        .unwrap_or(0);
    (
        "file_prefilter",
        crossed_other.is_empty() && mounted && filtered >= 4,
        format!(
            "filtered {filtered} (want >= 4: the other file's creation, open, rename, deletion); crossed that should not: {crossed_other:?}; bind-mounted write seen: {mounted}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_lsm_boot_checks_that_bpf_is_active_exactly_when_asked() {
        let without = "landlock,lockdown,yama,integrity,apparmor";
        let with = "lockdown,yama,integrity,apparmor,bpf";
        assert_eq!(
            lsm_boot_check(without, "lockdown,capability,landlock,yama,apparmor"),
            ("lsm_without_bpf", true)
        );
        assert_eq!(
            lsm_boot_check(without, "lockdown,capability,bpf"),
            ("lsm_without_bpf", false)
        );
        assert_eq!(
            lsm_boot_check(with, "lockdown,capability,yama,apparmor,bpf"),
            ("lsm_with_bpf", true)
        );
        // 5.10's default list has no `bpf`: asking for it and not getting it fails.
        assert_eq!(
            lsm_boot_check(with, "lockdown,capability,yama,apparmor,tomoyo"),
            ("lsm_with_bpf", false)
        );
        assert_eq!(lsm_boot_check("bpfx", "bpf"), ("lsm_without_bpf", false));
    }

    #[test]
    fn kernel_parameters_are_found_by_key() {
        let c = "console=ttyS0 vmtest_layout=hybrid lsm=lockdown,yama quiet";
        assert_eq!(param(c, "vmtest_layout"), Some("hybrid"));
        assert_eq!(param(c, "lsm"), Some("lockdown,yama"));
        assert_eq!(param(c, "quiet"), None);
        assert_eq!(param(c, "layout"), None);
    }

    #[test]
    fn dotted_paths_read_nested_or_flat_keys() {
        let v: Value = serde_json::json!({"process": {"pid": 7}, "kibana.alert.rule.rule_id": "x"});
        assert_eq!(pid_of(&v, "process.pid"), Some(7));
        assert_eq!(get(&v, "kibana.alert.rule.rule_id"), "x");
    }

    #[test]
    fn hex_ids_have_the_asked_length() {
        let id = hex_id(64);
        assert_eq!(id.len(), 64);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
}
