//! Issue #9 end to end: the attacks an attacker on the node would try
//! against the exec path, each replayed against the real sensor. Every test
//! here failed on the sensor before the fix it names.
//!
//! The "web server" is a small compiled stand-in ([`tests::fake_server`])
//! named `nginx`, in a containerd-shaped cgroup, doing what a compromised
//! server can do: rename itself, take a terminal, pad its commands.
//! Nothing here touches the network.

#![allow(clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tests::cgroup::cri_container;
use tests::fake_server::{self, FakeServer};
use tests::{args_of, get, marker, read_lines, skip_or_fail, start_or_skip, Sensor};

const RULE_ID: &str = "497a7091-0ebd-44d7-88c4-367ab4d4d852";
const WAIT: Duration = Duration::from_secs(15);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn alerts_with(sensor: &Sensor, m: &str) -> Vec<Value> {
    read_lines(&sensor.alerts_path())
        .into_iter()
        .filter(|v| get(v, "kibana.alert.rule.rule_id") == RULE_ID)
        .filter(|v| {
            get(v, "process.command_line")
                .as_str()
                .is_some_and(|c| c.contains(m))
        })
        .collect()
}

/// Waits for the exec event of the shell running marker `m`, then gives
/// the sensor a moment to write any alert for it.
fn shell_event(sensor: &mut Sensor, m: &str) -> Value {
    let ev = sensor
        .wait_event(WAIT, |v| {
            get(v, "event.action") == "exec"
                && tests::is_shell(get(v, "process.name"))
                && args_of(v).iter().any(|a| a.contains(m))
        })
        .unwrap_or_else(|e| panic!("no exec event for the shell running {m}: {e:#}"));
    std::thread::sleep(Duration::from_millis(300));
    ev
}

/// Builds the stand-in as `dir/name`, or says why the test cannot run.
fn build(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    if !is_root() {
        skip_or_fail("needs root (cgroups, eBPF)");
        return None;
    }
    match fake_server::build(dir, name) {
        Ok(bin) => Some(bin),
        Err(e) => {
            skip_or_fail(&format!("cannot build the fake server: {e:#}"));
            None
        }
    }
}

/// Attack 1: a server renames itself (`prctl(PR_SET_NAME, "kworker")`) and
/// waits for the sensor to restart; its name then came from `comm`, and
/// the attack that followed raised nothing. Now the name is the
/// executable's, however the sensor learnt of the process.
#[test]
fn renamed_server_older_than_the_sensor_still_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(bin) = build(dir.path(), "nginx") else {
        return;
    };
    let (_cg, cgroup, id, _) = cri_container().expect("a cgroup2 test hierarchy");
    let mut server = FakeServer::start(&bin, Some(&cgroup)).expect("fake nginx");
    server.send("RENAME kworker/0:1").expect("rename");
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let m = marker("renamed");
    server
        .send(&format!("SH cat /etc/passwd >/dev/null # {m}"))
        .expect("attack");
    let ev = shell_event(&mut sensor, &m);
    assert_eq!(get(&ev, "process.parent.name"), "nginx", "{ev}");
    assert_eq!(get(&ev, "container.id"), id.as_str(), "{ev}");
    let alerts = alerts_with(&sensor, &m);
    sensor.stop().expect("clean stop");
    assert_eq!(alerts.len(), 1, "exactly one alert: {alerts:?}");
}

/// The other way round: any process that names itself `nginx` was a web
/// server to the sensor after a restart. Now it is what it executed.
#[test]
fn process_renamed_to_nginx_is_not_a_web_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(bin) = build(dir.path(), "backup-agent") else {
        return;
    };
    let (_cg, cgroup, _, _) = cri_container().expect("a cgroup2 test hierarchy");
    let mut server = FakeServer::start(&bin, Some(&cgroup)).expect("fake agent");
    server.send("RENAME nginx").expect("rename");
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let m = marker("impostor");
    server
        .send(&format!("SH cat /etc/passwd >/dev/null # {m}"))
        .expect("command");
    let ev = shell_event(&mut sensor, &m);
    assert_eq!(get(&ev, "process.parent.name"), "backup-agent", "{ev}");
    let alerts = alerts_with(&sensor, &m);
    sensor.stop().expect("clean stop");
    assert!(alerts.is_empty(), "no alert: {alerts:?}");
}

/// Attack 3: argv padding. `sh -c '<33 KiB of spaces>; cat /etc/passwd'`
/// lost its payload past the 32 KiB capture; so did a payload behind
/// hundreds of KiB of padding arguments. Argv is now captured whole, up to
/// the kernel's own bound.
#[test]
fn padded_commands_still_alert_with_their_whole_argv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(bin) = build(dir.path(), "nginx") else {
        return;
    };
    let (_cg, cgroup, _, _) = cri_container().expect("a cgroup2 test hierarchy");
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let mut server = FakeServer::start(&bin, Some(&cgroup)).expect("fake nginx");

    let m1 = marker("pad-script");
    let pad = " ".repeat(33 * 1024);
    let script = format!("{pad}; cat /etc/passwd >/dev/null # {m1}");
    server.send(&format!("SH {script}")).expect("padded script");
    let ev = shell_event(&mut sensor, &m1);
    assert_eq!(args_of(&ev).get(2), Some(&script), "the whole script");
    assert!(
        get(&ev, "process.args_truncated").is_null(),
        "{}",
        get(&ev, "process.args_count")
    );

    // The payload in the script, then 8 arguments of 120 KiB: ~1 MiB.
    let m2 = marker("pad-args");
    server
        .send(&format!("PAD 8 122880 cat /etc/passwd >/dev/null # {m2}"))
        .expect("padded args");
    let ev2 = sensor
        .wait_event(WAIT, |v| {
            get(v, "event.action") == "exec" && args_of(v).iter().any(|a| a.contains(&m2))
        })
        .expect("exec of the padded shell");
    let args = args_of(&ev2);
    assert_eq!(args.len(), 11, "sh -c script + 8 pads");
    assert!(args[3..].iter().all(|a| a.len() == 122_880));
    // Now a payload *after* the padding: argv[0..] = sh -c 'eval "$9"' pads… payload.
    let m3 = marker("pad-tail");
    server
        .send(&format!(
            "PAD 8 122880 eval \"$(echo cat /etc/passwd) >/dev/null\" # {m3}"
        ))
        .expect("padded args, payload last");
    std::thread::sleep(Duration::from_millis(500));
    let a1 = alerts_with(&sensor, &m1);
    let a2 = alerts_with(&sensor, &m2);
    let a3 = alerts_with(&sensor, &m3);
    let summary = sensor.stop().expect("clean stop");
    assert_eq!(a1.len(), 1, "33 KiB of padding in the script: {a1:?}");
    assert_eq!(a2.len(), 1, "1 MiB of padding arguments");
    assert_eq!(a3.len(), 1, "payload behind 1 MiB of padding");
    assert_eq!(summary["args_truncated"], 0, "{summary}");
    assert_eq!(summary["lost_args_chunks"], 0, "{summary}");
}

/// Attack 6: the server calls `setsid` and takes a pty as its controlling
/// terminal; `process.parent.interactive`, read live at the child's exec,
/// turned true and the rule went quiet. Now it is the parent's value at
/// its start, and the change is an event of its own.
#[test]
fn server_that_takes_a_terminal_still_alerts_and_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(bin) = build(dir.path(), "nginx") else {
        return;
    };
    let (_cg, cgroup, id, _) = cri_container().expect("a cgroup2 test hierarchy");
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let mut server = FakeServer::start(&bin, Some(&cgroup)).expect("fake nginx");
    let m0 = marker("before-pty");
    server
        .send(&format!("SH true # {m0}"))
        .expect("benign child");
    shell_event(&mut sensor, &m0);
    server.send("TAKE-PTY").expect("take a pty");
    let m = marker("pty");
    server
        .send(&format!("SH cat /etc/passwd >/dev/null # {m}"))
        .expect("attack");
    let ev = shell_event(&mut sensor, &m);
    assert_eq!(get(&ev, "process.parent.interactive"), false, "{ev}");
    let pid = u64::from(server.pid());
    let changed = sensor
        .wait_event(WAIT, |v| {
            get(v, "event.action") == "became_interactive"
                && get(v, "process.pid").as_u64() == Some(pid)
        })
        .expect("a became_interactive event for the server");
    assert_eq!(get(&changed, "event.type")[0], "change", "{changed}");
    assert_eq!(get(&changed, "process.name"), "nginx", "{changed}");
    assert_eq!(get(&changed, "process.interactive"), true, "{changed}");
    assert_eq!(get(&changed, "container.id"), id.as_str(), "{changed}");
    let alerts = alerts_with(&sensor, &m);
    let summary = sensor.stop().expect("clean stop");
    assert_eq!(alerts.len(), 1, "exactly one alert: {alerts:?}");
    assert_eq!(summary["became_interactive"], 1, "{summary}");
}

/// Attack 2: a working directory deeper than the kernel walk, in a process
/// gone before /proc could be read, carried the parent's stale directory,
/// and a relative exec was resolved against it. Now the directory is left
/// out unless known, and the executable is the file the kernel mapped.
#[test]
fn unknown_working_directory_is_left_out_never_guessed() {
    if !is_root() {
        skip_or_fail("needs root (eBPF)");
        return;
    }
    let top = tempfile::tempdir().expect("tempdir");
    let mut deep = top.path().to_path_buf();
    for i in 0..60 {
        deep.push(format!("d{i}"));
    }
    std::fs::create_dir_all(&deep).expect("deep directory");
    std::fs::copy("/bin/true", deep.join("tool")).expect("copy true");
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let m = marker("deep");
    // The shell's cwd is `top`; its child changes into the deep directory
    // and execs a relative path there.
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"cd "$1" && exec ./tool "$2""#)
        .arg("sh")
        .arg(&deep)
        .arg(&m)
        .current_dir(top.path())
        .status()
        .expect("run");
    assert!(status.success());
    let ev = sensor
        .wait_event(WAIT, |v| {
            get(v, "event.action") == "exec" && args_of(v).get(1).is_some_and(|a| *a == m)
        })
        .expect("exec event of ./tool");
    sensor.stop().expect("clean stop");
    let deep_s = deep.to_string_lossy().into_owned();
    let cwd = get(&ev, "process.working_directory");
    assert!(
        cwd.is_null() || cwd == deep_s.as_str(),
        "working directory must be the real one or absent, never a stale one: {cwd}"
    );
    let exe = get(&ev, "process.executable");
    assert!(
        exe.is_null() || exe == format!("{deep_s}/tool").as_str(),
        "executable must be the real file or absent: {exe}"
    );
    assert_eq!(get(&ev, "process.name"), "tool", "{ev}");
}

/// Minor findings: an applet re-exec through `/proc/self/exe` showed that
/// link as the executable, and a memfd payload showed `/dev/fd/N` or
/// `/memfd:…` depending on timing. Both now name the file the kernel
/// mapped, from the kernel.
#[test]
fn memfd_and_proc_self_exe_execs_name_the_real_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(bin) = build(dir.path(), "launcher") else {
        return;
    };
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let mut server = FakeServer::start(&bin, None).expect("launcher");
    let m1 = marker("memfd");
    server.send(&format!("MEMFD {m1}")).expect("memfd exec");
    let m2 = marker("reexec");
    server.send(&format!("REEXEC {m2}")).expect("re-exec");
    let find = |sensor: &mut Sensor, m: &str| {
        sensor
            .wait_event(WAIT, |v| {
                get(v, "event.action") == "exec" && args_of(v).get(1).is_some_and(|a| a == m)
            })
            .unwrap_or_else(|e| panic!("no exec event for {m}: {e:#}"))
    };
    let memfd = find(&mut sensor, &m1);
    let reexec = find(&mut sensor, &m2);
    sensor.stop().expect("clean stop");
    assert_eq!(
        get(&memfd, "process.executable"),
        "/memfd:payload",
        "{memfd}"
    );
    assert_eq!(get(&memfd, "process.name"), "memfd:payload", "{memfd}");
    let launcher = bin.to_string_lossy().into_owned();
    assert_eq!(
        get(&reexec, "process.executable"),
        launcher.as_str(),
        "{reexec}"
    );
    assert_eq!(get(&reexec, "process.name"), "launcher", "{reexec}");
}
