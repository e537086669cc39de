//! Issue 21, exec naming (all file mechanisms): a process is named after
//! the file the kernel executed (`binprm->file`, as Elastic's exec probe
//! names it), never the name it was executed by. Before, `ln -s /bin/sh
//! /tmp/w; /tmp/w -c …` from a web server was `process.name: w`, and
//! `exec /dev/stdin` with a shell on stdin `stdin`: the seed rule and
//! every `process.name` rule missed them, and the kernel's process-name
//! verdicts followed the fake name. Each test here failed then.
//!
//! The web server is the compiled stand-in ([`tests::fake_server`]) named
//! `nginx`, in a containerd-shaped cgroup.

#![allow(clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tests::cgroup::cri_container;
use tests::fake_server::{self, FakeServer};
use tests::{args_of, get, marker, read_lines, skip_or_fail, start_or_skip, Sensor};

const SEED_RULE_ID: &str = "497a7091-0ebd-44d7-88c4-367ab4d4d852";
const WAIT: Duration = Duration::from_secs(15);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `/bin/sh` as the kernel resolves it (`/usr/bin/dash` on Debian 12).
fn real_shell() -> (String, String) {
    let path = std::fs::canonicalize("/bin/sh").expect("/bin/sh");
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a name")
        .to_owned();
    (path.to_string_lossy().into_owned(), name)
}

/// Builds the stand-in as `dir/name`, or says why the test cannot run.
fn build(dir: &Path, name: &str) -> Option<PathBuf> {
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

/// The exec event of the shell running marker `m`, after giving the sensor
/// a moment to write any alert for it.
fn shell_event(sensor: &mut Sensor, m: &str) -> Value {
    let ev = sensor
        .wait_event(WAIT, |v| {
            get(v, "event.action") == "exec" && args_of(v).iter().any(|a| a.contains(m))
        })
        .unwrap_or_else(|e| panic!("no exec event for the shell running {m}: {e:#}"));
    std::thread::sleep(Duration::from_millis(300));
    ev
}

fn seed_alerts(sensor: &Sensor, m: &str) -> Vec<Value> {
    read_lines(&sensor.alerts_path())
        .into_iter()
        .filter(|v| get(v, "kibana.alert.rule.rule_id") == SEED_RULE_ID)
        .filter(|v| {
            get(v, "process.command_line")
                .as_str()
                .is_some_and(|c| c.contains(m))
        })
        .collect()
}

/// The web server runs its shell through a symlink under another name, and
/// as `/dev/stdin` with the shell on stdin: each is named after the shell,
/// keeps the filename it was run by in `process.Ext.execve_filename`, and
/// the seed rule fires once for each.
#[test]
fn a_shell_run_by_another_name_is_named_after_the_shell_and_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(bin) = build(dir.path(), "nginx") else {
        return;
    };
    let link = dir.path().join("w");
    std::os::unix::fs::symlink("/bin/sh", &link).expect("symlink");
    let (_cg, cgroup, id, _) = cri_container().expect("a cgroup2 test hierarchy");
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let mut server = FakeServer::start(&bin, Some(&cgroup)).expect("fake nginx");
    let (shell_path, shell_name) = real_shell();
    let link_s = link.to_string_lossy().into_owned();
    for (how, command, filename) in [
        ("symlink", format!("EXEC {link_s}"), link_s.as_str()),
        ("stdin", "STDIN /bin/sh".to_owned(), "/dev/stdin"),
    ] {
        let m = marker(how);
        server
            .send(&format!("{command} cat /etc/passwd >/dev/null # {m}"))
            .expect("attack");
        let ev = shell_event(&mut sensor, &m);
        assert_eq!(get(&ev, "process.name"), shell_name.as_str(), "{how}: {ev}");
        assert_eq!(
            get(&ev, "process.executable"),
            shell_path.as_str(),
            "{how}: {ev}"
        );
        assert_eq!(
            get(&ev, "process.Ext.execve_filename"),
            filename,
            "{how}: {ev}"
        );
        assert_eq!(get(&ev, "process.parent.name"), "nginx", "{how}: {ev}");
        assert_eq!(get(&ev, "container.id"), id.as_str(), "{how}: {ev}");
        let alerts = seed_alerts(&sensor, &m);
        assert_eq!(alerts.len(), 1, "{how}: exactly one alert: {alerts:?}");
    }
    sensor.stop().expect("clean stop");
}

/// A server started through a symlink before the sensor (named from
/// `/proc/<pid>/exe`) and the same server started through it after (named
/// from the kernel's walk at exec) have the same name, the file's; the
/// shells of both alert.
#[test]
fn a_server_started_through_a_symlink_is_named_alike_seeded_and_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(bin) = build(dir.path(), "nginx") else {
        return;
    };
    let link = dir.path().join("web");
    std::os::unix::fs::symlink(&bin, &link).expect("symlink");
    let (_cg, cgroup, _, _) = cri_container().expect("a cgroup2 test hierarchy");
    let mut older = FakeServer::start(&link, Some(&cgroup)).expect("server before the sensor");
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let mut newer = FakeServer::start(&link, Some(&cgroup)).expect("server after the sensor");
    let bin_s = bin.to_string_lossy().into_owned();
    for (when, server) in [("seeded", &mut older), ("live", &mut newer)] {
        let m = marker(when);
        server
            .send(&format!("SH cat /etc/passwd >/dev/null # {m}"))
            .expect("attack");
        let ev = shell_event(&mut sensor, &m);
        assert_eq!(get(&ev, "process.parent.name"), "nginx", "{when}: {ev}");
        assert_eq!(
            get(&ev, "process.parent.executable"),
            bin_s.as_str(),
            "{when}: {ev}"
        );
        let alerts = seed_alerts(&sensor, &m);
        assert_eq!(alerts.len(), 1, "{when}: exactly one alert: {alerts:?}");
    }
    sensor.stop().expect("clean stop");
}

/// The kernel's process-name verdict (file prefilter) follows the executed
/// file too: with a rule on creations by the shell's name, a file created
/// by the shell run through a symlink crosses the kernel and alerts, and
/// one created by a copy of the shell under another name is filtered.
#[test]
fn the_kernels_name_verdict_follows_the_executed_file() {
    if !is_root() {
        skip_or_fail("needs root (eBPF)");
        return;
    }
    let (_, shell_name) = real_shell();
    let rules = tempfile::tempdir().expect("tempdir");
    let rule = rules.path().join("by-name.toml");
    std::fs::write(
        &rule,
        format!(
            "[metadata]\ncreation_date = \"2026/12/07\"\nmaturity = \"production\"\n\
             updated_date = \"2026/12/07\"\n\n[rule]\nauthor = [\"test\"]\n\
             description = \"Creations by the shell.\"\nlanguage = \"eql\"\n\
             license = \"Elastic License v2\"\nname = \"Created By The Shell\"\n\
             risk_score = 21\nrule_id = \"00000000-0000-4000-8000-0000000000fd\"\n\
             severity = \"low\"\ntype = \"eql\"\nquery = '''\n\
             file where event.type == \"creation\" and process.name == \"{shell_name}\"\n'''\n"
        ),
    )
    .expect("rule file");
    let Some(mut sensor) = start_or_skip(&["--rules", rule.to_str().expect("utf-8")]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("w");
    std::os::unix::fs::symlink("/bin/sh", &link).expect("symlink");
    let copy = dir.path().join("other");
    std::fs::copy("/bin/sh", &copy).expect("copy");
    let by_copy = marker("by-copy");
    let by_link = marker("by-link");
    for (shell, name) in [(&copy, &by_copy), (&link, &by_link)] {
        let status = std::process::Command::new(shell)
            .arg("-c")
            .arg(format!(": > {}/{name}", dir.path().display()))
            .status()
            .expect("run");
        assert!(status.success());
    }
    let ev = sensor
        .wait_event(WAIT, |v| {
            get(v, "file.name").as_str() == Some(by_link.as_str())
        })
        .expect("the creation by the linked shell crosses the kernel");
    assert_eq!(get(&ev, "process.name"), shell_name.as_str(), "{ev}");
    std::thread::sleep(Duration::from_millis(300));
    let names: Vec<String> = read_lines(&sensor.events_path())
        .iter()
        .filter_map(|v| get(v, "file.name").as_str().map(str::to_owned))
        .filter(|n| *n == by_copy || *n == by_link)
        .collect();
    assert_eq!(
        names,
        std::slice::from_ref(&by_link),
        "the copy's creation is filtered"
    );
    let alerts: Vec<Value> = read_lines(&sensor.alerts_path())
        .into_iter()
        .filter(|a| get(a, "file.name").as_str() == Some(by_link.as_str()))
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    sensor.stop().expect("clean stop");
}
