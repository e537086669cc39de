//! File events, live: one test per Defend-for-Containers file rule, each
//! giving exactly one alert carrying the container's id, and benign file
//! activity giving none. The whole D4C ruleset is loaded in every test.
//!
//! Nothing on the host is touched: each scenario runs in a private mount
//! namespace (`unshare -m`, private propagation) with tmpfs over the
//! directories it writes to (`/etc`, `/run`, `/var/lib`), or in a temporary
//! directory. The set-up (mounts, seed files) runs before the shell moves
//! itself into a containerd-shaped cgroup; only the attack itself runs "in
//! the container", with shell built-ins where possible so no other rule
//! sees an exec to match.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tests::cgroup::cri_container;
use tests::{get, marker, read_lines, skip_or_fail, start_or_skip, Sensor};

const WAIT: Duration = Duration::from_secs(20);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Elastic's Defend-for-Containers rules, as the repository carries them
/// (`rules/defend-for-containers`, the `builtin:d4c` pack's files).
fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/defend-for-containers")
}

fn start() -> Option<Sensor> {
    start_with(&[])
}

/// [`start`] with more sensor arguments.
fn start_with(more: &[&str]) -> Option<Sensor> {
    if !is_root() {
        skip_or_fail("needs root (cgroups, eBPF)");
        return None;
    }
    let rules = rules_dir();
    let mut args = vec!["--rules", rules.to_str().expect("utf-8 path")];
    args.extend_from_slice(more);
    let sensor = start_or_skip(&args)?;
    if sensor
        .stderr
        .iter()
        .any(|l| l.starts_with("sensor: file events unavailable"))
    {
        skip_or_fail(&format!(
            "no file events on this kernel:\n{}",
            sensor.stderr.join("\n")
        ));
        return None;
    }
    Some(sensor)
}

/// Runs `setup` (outside the container) then `inside` (after the shell
/// moved itself into a fresh containerd-shaped cgroup), in a private mount
/// namespace; then writes a marker file from inside and waits for its
/// event, so every earlier event has been handled. Returns the alerts for
/// that container.
fn scenario(sensor: &mut Sensor, setup: &str, inside: &str) -> (String, Vec<Value>) {
    let (_cg, cgroup, id, _) = cri_container().expect("a cgroup2 test hierarchy");
    let tmp = tempfile::tempdir().expect("tempdir");
    let done = tmp.path().join(marker("done"));
    let script = format!(
        "set -e; {setup}; echo $$ > {procs}; {inside}; echo done > {done}",
        procs = cgroup.join("cgroup.procs").display(),
        done = done.display(),
    );
    let status = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("T", tmp.path())
        .status()
        .expect("unshare");
    assert!(status.success(), "scenario failed: {script}");
    let done_path = done.to_string_lossy().into_owned();
    sensor
        .wait_event(WAIT, |v| {
            get(v, "file.path").as_str() == Some(done_path.as_str())
        })
        .unwrap_or_else(|e| panic!("no file event for the marker {done_path}: {e:#}"));
    std::thread::sleep(Duration::from_millis(500));
    let alerts = read_lines(&sensor.alerts_path())
        .into_iter()
        .filter(|a| get(a, "container.id").as_str() == Some(id.as_str()))
        .collect();
    (id, alerts)
}

/// Exactly one alert, from the rule named `rule`, on a file event whose
/// path is `path`, in container `id`.
fn assert_one(alerts: &[Value], rule: &str, path: Option<&str>, id: &str) {
    let names: Vec<String> = alerts
        .iter()
        .map(|a| {
            format!(
                "{} ({} {})",
                get(a, "kibana.alert.rule.name"),
                get(a, "event.action"),
                get(a, "file.path")
            )
        })
        .collect();
    assert_eq!(alerts.len(), 1, "alerts for container {id}: {names:#?}");
    let a = &alerts[0];
    let name = get(a, "kibana.alert.rule.name").as_str().unwrap_or("");
    assert!(name.contains(rule), "alert from {name}, expected {rule}");
    assert_eq!(get(a, "container.id").as_str(), Some(id));
    if let Some(path) = path {
        assert_eq!(get(a, "event.category")[0], "file");
        assert_eq!(get(a, "file.path").as_str(), Some(path), "{a}");
    }
}

#[test]
fn ld_so_preload_write_alerts_once() {
    let Some(mut sensor) = start() else { return };
    let (id, alerts) = scenario(
        &mut sensor,
        "mount -t tmpfs none /etc",
        "echo /tmp/evil.so > /etc/ld.so.preload",
    );
    assert_one(
        &alerts,
        "Dynamic Linker Modification",
        Some("/etc/ld.so.preload"),
        &id,
    );
    let _ = sensor.stop();
}

#[test]
fn release_agent_write_alerts_once() {
    let Some(mut sensor) = start() else { return };
    let (id, alerts) = scenario(
        &mut sensor,
        ": > $T/release_agent",
        "echo /tmp/x > $T/release_agent",
    );
    assert_one(&alerts, "release_agent", None, &id);
    assert_eq!(get(&alerts[0], "event.action"), "open");
    assert_eq!(get(&alerts[0], "event.type")[0], "change");
    let _ = sensor.stop();
}

#[test]
fn notify_on_release_write_alerts_once() {
    let Some(mut sensor) = start() else { return };
    let (id, alerts) = scenario(
        &mut sensor,
        ": > $T/notify_on_release",
        "echo 1 > $T/notify_on_release",
    );
    assert_one(&alerts, "notify_on_release", None, &id);
    let _ = sensor.stop();
}

#[test]
fn authorized_keys_creation_alerts_once() {
    let Some(mut sensor) = start() else { return };
    let (id, alerts) = scenario(
        &mut sensor,
        "mkdir $T/.ssh",
        "echo 'ssh-ed25519 AAAA test' >> $T/.ssh/authorized_keys",
    );
    assert_one(&alerts, "SSH Authorized Key File", None, &id);
    assert_eq!(get(&alerts[0], "file.name"), "authorized_keys");
    let _ = sensor.stop();
}

#[test]
fn cron_file_creation_alerts_once() {
    let Some(mut sensor) = start() else { return };
    let (id, alerts) = scenario(
        &mut sensor,
        "mount -t tmpfs none /etc/cron.d",
        "echo '* * * * * root id' > /etc/cron.d/job",
    );
    assert_one(
        &alerts,
        "Persistence Relevant Files",
        Some("/etc/cron.d/job"),
        &id,
    );
    assert_eq!(get(&alerts[0], "event.action"), "creation");
    let _ = sensor.stop();
}

#[test]
fn cron_file_renamed_into_place_alerts_once() {
    let Some(mut sensor) = start() else { return };
    let (id, alerts) = scenario(
        &mut sensor,
        "mount -t tmpfs none /etc/cron.d; echo '* * * * * root id' > /etc/cron.d/.staged",
        "mv /etc/cron.d/.staged /etc/cron.d/job",
    );
    assert_one(
        &alerts,
        "Persistence Relevant Files",
        Some("/etc/cron.d/job"),
        &id,
    );
    assert_eq!(get(&alerts[0], "event.action"), "rename");
    assert_eq!(
        get(&alerts[0], "file.Ext.original.path"),
        "/etc/cron.d/.staged"
    );
    let _ = sensor.stop();
}

#[test]
fn bash_history_deletion_alerts_once() {
    let Some(mut sensor) = start() else { return };
    // `unlink`, not `rm`: `rm .bash_history` is also the rule's process
    // branch, and this test is about the file event.
    let (id, alerts) = scenario(
        &mut sensor,
        "echo ls > $T/.bash_history",
        "cd $T && unlink .bash_history",
    );
    assert_one(&alerts, "History", None, &id);
    assert_eq!(get(&alerts[0], "event.action"), "deletion");
    assert_eq!(get(&alerts[0], "file.name"), ".bash_history");
    let _ = sensor.stop();
}

#[test]
fn service_account_token_write_alerts_once() {
    let Some(mut sensor) = start() else { return };
    let dir = "/run/secrets/kubernetes.io/serviceaccount";
    let (id, alerts) = scenario(
        &mut sensor,
        &format!("mount -t tmpfs none /run; mkdir -p {dir}; : > {dir}/token"),
        &format!("echo stolen > {dir}/token"),
    );
    assert_one(
        &alerts,
        "Service Account",
        Some(&format!("{dir}/token")),
        &id,
    );
    let _ = sensor.stop();
}

#[test]
fn kubelet_pki_write_alerts_once() {
    let Some(mut sensor) = start() else { return };
    let dir = "/var/lib/kubelet/pki";
    let (id, alerts) = scenario(
        &mut sensor,
        &format!("mount -t tmpfs none /var/lib; mkdir -p {dir}; : > {dir}/kubelet.key"),
        &format!("echo x > {dir}/kubelet.key"),
    );
    assert_one(
        &alerts,
        "Kubelet Certificate",
        Some(&format!("{dir}/kubelet.key")),
        &id,
    );
    let _ = sensor.stop();
}

#[test]
fn chmod_of_a_downloaded_file_alerts_once() {
    let Some(mut sensor) = start() else { return };
    let (id, alerts) = scenario(
        &mut sensor,
        "true",
        "echo '#!/bin/sh' > $T/payload && chmod +x $T/payload",
    );
    assert_one(&alerts, "File Execution Permission Modification", None, &id);
    let _ = sensor.stop();
}

/// With the prefilter off, so that every event of the scenario reaches
/// the rules (and `--events`): the rules themselves find nothing.
#[test]
fn benign_file_activity_gives_no_alert() {
    let Some(mut sensor) = start_with(&["--file-prefilter", "off"]) else {
        return;
    };
    let (id, alerts) = scenario(
        &mut sensor,
        "mkdir $T/app",
        "echo data > $T/app/out.log; echo more >> $T/app/out.log; \
         mv $T/app/out.log $T/app/out.1; unlink $T/app/out.1; echo x > $T/app/.profile.bak",
    );
    assert!(alerts.is_empty(), "container {id}: {alerts:#?}");
    // The events themselves are there, shaped like D4C's.
    let events = read_lines(&sensor.events_path());
    let mine: Vec<&Value> = events
        .iter()
        .filter(|v| get(v, "container.id").as_str() == Some(id.as_str()))
        .filter(|v| get(v, "event.category")[0] == "file")
        .collect();
    let actions: Vec<&str> = mine
        .iter()
        .filter_map(|v| get(v, "event.action").as_str())
        .collect();
    for want in ["creation", "open", "rename", "deletion"] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    let summary = sensor.stop().expect("summary");
    assert_eq!(summary["lost_file"], 0);
}

#[test]
fn process_end_is_seen_by_rules() {
    if !is_root() {
        skip_or_fail("needs root (cgroups, eBPF)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let rule = dir.path().join("end.toml");
    std::fs::write(
        &rule,
        r#"[metadata]
creation_date = "2026/11/26"
maturity = "production"
updated_date = "2026/11/26"

[rule]
author = ["test"]
description = "A container process ended with exit code 42."
from = "now-6m"
index = ["logs-cloud_defend.process*"]
language = "eql"
license = "Elastic License v2"
name = "Container Process Exit 42"
risk_score = 21
rule_id = "00000000-0000-4000-8000-000000000042"
severity = "low"
type = "eql"
query = '''
process where event.type == "end" and event.action == "end" and process.exit_code == 42 and container.id like "?*"
'''
"#,
    )
    .expect("rule file");
    let Some(mut sensor) = start_or_skip(&["--rules", rule.to_str().expect("utf-8")]) else {
        return;
    };
    let (_cg, cgroup, id, _) = cri_container().expect("a cgroup2 test hierarchy");
    let script = format!(
        "echo $$ > {}; sh -c 'exit 42'; true",
        cgroup.join("cgroup.procs").display()
    );
    let status = Command::new("sh")
        .args(["-c", &script])
        .status()
        .expect("sh");
    assert!(status.success());
    let alerts = tests::wait_line(&sensor.alerts_path(), WAIT, |a| {
        get(a, "container.id").as_str() == Some(id.as_str())
    })
    .expect("an alert for the end event");
    assert_eq!(get(&alerts, "process.exit_code"), 42);
    assert_eq!(get(&alerts, "event.type")[0], "end");
    let _ = sensor.stop();
}

/// A query that names one file: the only event of `event_type` it needs.
fn name_query(event_type: &str, name: &str) -> String {
    format!(r#"file where event.type == "{event_type}" and file.name == "{name}""#)
}

/// The sensor (with `more` arguments) loading one rule of this query; the
/// directory returned holds the rule file (keep it with the sensor).
/// `None`: skipped.
fn start_with_query(query: &str, more: &[&str]) -> Option<(tempfile::TempDir, Sensor)> {
    let rules = tempfile::tempdir().expect("tempdir");
    let rule = write_query_rule(rules.path(), query);
    let mut args = vec!["--rules", rule.to_str().expect("utf-8")];
    args.extend_from_slice(more);
    let sensor = start_or_skip(&args)?;
    Some((rules, sensor))
}

/// A rule with this query.
fn write_query_rule(dir: &Path, query: &str) -> PathBuf {
    let rule = dir.join("candidate.toml");
    std::fs::write(
        &rule,
        format!(
            r#"[metadata]
creation_date = "2026/11/26"
maturity = "production"
updated_date = "2026/11/26"

[rule]
author = ["test"]
description = "One file by name."
from = "now-6m"
index = ["logs-cloud_defend.file*"]
language = "eql"
license = "Elastic License v2"
name = "Prefilter Candidate"
risk_score = 21
rule_id = "00000000-0000-4000-8000-0000000000fe"
severity = "low"
type = "eql"
query = '''
{query}
'''
"#
        ),
    )
    .expect("rule file");
    rule
}

/// Creates `other` then `candidate` (one thread: their records reach the
/// ring in this order), waits for the candidate's event, and returns the
/// file names of this test's events.
fn create_pair(sensor: &mut Sensor, dir: &Path, other: &str, candidate: &str) -> Vec<String> {
    std::fs::write(dir.join(other), b"x").expect("write");
    std::fs::write(dir.join(candidate), b"x").expect("write");
    sensor
        .wait_event(WAIT, |v| get(v, "file.name").as_str() == Some(candidate))
        .expect("the candidate's creation event");
    read_lines(&sensor.events_path())
        .iter()
        .filter_map(|v| get(v, "file.name").as_str().map(str::to_owned))
        .filter(|n| n == other || n == candidate)
        .collect()
}

fn prefilter_count(summary: &Value, op: &str, verdict: &str) -> u64 {
    summary["file_prefilter"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["op"] == op && c["verdict"] == verdict)
        .and_then(|c| c["count"].as_u64())
        .unwrap_or(0)
}

/// The kernel drops a creation no loaded rule could match (it never
/// reaches `--events`) and sends the one a rule names; the summary counts
/// both verdicts.
#[test]
fn prefilter_drops_non_candidates_in_the_kernel() {
    if !is_root() {
        skip_or_fail("needs root (eBPF)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let candidate = marker("prefilter-candidate");
    let other = marker("prefilter-other");
    let Some((_rules, mut sensor)) = start_with_query(&name_query("creation", &candidate), &[])
    else {
        return;
    };
    assert!(
        sensor
            .stderr
            .iter()
            .any(|l| l == "sensor: file prefilter: open: none needed; creation: 1 atoms; deletion: none needed; rename: none needed"),
        "{:?}",
        sensor.stderr
    );
    let names = create_pair(&mut sensor, dir.path(), &other, &candidate);
    assert_eq!(
        names.as_slice(),
        std::slice::from_ref(&candidate),
        "only the candidate crosses"
    );
    let summary = sensor.stop().expect("summary");
    assert!(
        prefilter_count(&summary, "creation", "passed") >= 1,
        "{summary}"
    );
    assert!(
        prefilter_count(&summary, "creation", "filtered") >= 1,
        "{summary}"
    );
    assert_eq!(summary["lost_file"], 0);
}

/// A prefix ending mid-component (`/<marker>*`) is checked in the kernel
/// on the path's first component: a file under `/<marker>…/` crosses, one
/// elsewhere with the same name is filtered.
#[test]
fn prefilter_checks_first_component_prefixes() {
    if !is_root() {
        skip_or_fail("needs root (eBPF)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = marker("pf-first");
    let root_dir = tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in("/")
        .expect("a directory under /");
    let query = format!(r#"file where event.type == "creation" and file.path like "/{prefix}*""#);
    let Some((_rules, mut sensor)) = start_with_query(&query, &[]) else {
        return;
    };
    let name = marker("pf-first-file");
    let other = dir.path().join(&name);
    let candidate = root_dir.path().join(&name);
    std::fs::write(&other, b"x").expect("write");
    std::fs::write(&candidate, b"x").expect("write");
    let candidate = candidate.to_str().expect("utf-8").to_owned();
    sensor
        .wait_event(WAIT, |v| {
            get(v, "file.path").as_str() == Some(candidate.as_str())
        })
        .expect("the candidate's creation event");
    let paths: Vec<String> = read_lines(&sensor.events_path())
        .iter()
        .filter(|v| get(v, "file.name").as_str() == Some(name.as_str()))
        .filter_map(|v| get(v, "file.path").as_str().map(str::to_owned))
        .collect();
    assert_eq!(paths, [candidate], "only the file under /{prefix}… crosses");
    let summary = sensor.stop().expect("summary");
    assert!(
        prefilter_count(&summary, "creation", "filtered") >= 1,
        "{summary}"
    );
    assert_eq!(summary["lost_file"], 0);
}

/// Case-insensitive atoms (`:` on `file.name`) are checked in the kernel
/// on ASCII-folded hashes: a file whose name equals the rule's value up
/// to case crosses, another one is filtered and counted.
#[test]
fn prefilter_folds_case_insensitive_names() {
    if !is_root() {
        skip_or_fail("needs root (eBPF)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let candidate = marker("pf-fold-candidate");
    let other = marker("pf-fold-other");
    let query = format!(
        r#"file where event.type == "creation" and file.name : "{}""#,
        candidate.to_ascii_uppercase()
    );
    let Some((_rules, mut sensor)) = start_with_query(&query, &[]) else {
        return;
    };
    assert!(
        sensor.stderr.iter().any(|l| l
            == "sensor: file prefilter: open: none needed; creation: 1 atoms; deletion: none needed; rename: none needed"),
        "{:?}",
        sensor.stderr
    );
    let names = create_pair(&mut sensor, dir.path(), &other, &candidate);
    assert_eq!(
        names.as_slice(),
        std::slice::from_ref(&candidate),
        "only the candidate crosses"
    );
    let summary = sensor.stop().expect("summary");
    assert!(
        prefilter_count(&summary, "creation", "passed") >= 1,
        "{summary}"
    );
    assert!(
        prefilter_count(&summary, "creation", "filtered") >= 1,
        "{summary}"
    );
    assert_eq!(summary["lost_file"], 0);
}

/// Whether some four-byte window of `path` shares a bit of the kernel's
/// gram bitmap with some four-byte window of `run` (whichever of them the
/// agent keeps as the gram): a bloom-filter collision would let the path
/// through (never a loss, but not what a test of filtering wants).
fn gram_collides(path: &str, run: &str) -> bool {
    use sensor_common::prefilter::gram_bit_of;
    let bits = |s: &str| -> Vec<usize> {
        s.as_bytes()
            .windows(4)
            .filter_map(|w| <[u8; 4]>::try_from(w).ok())
            .map(|w| gram_bit_of(&w))
            .collect()
    };
    let want = bits(run);
    bits(path).iter().any(|b| want.contains(b))
}

/// A wildcard inside a name (`*.<marker>.*`, case-insensitive) is checked
/// in the kernel as a gram (four bytes of its literal run) over the walk:
/// a file whose name holds the run, in another case, crosses; one that
/// does not is filtered and counted.
#[test]
fn prefilter_checks_grams_inside_names() {
    if !is_root() {
        skip_or_fail("needs root (eBPF)");
        return;
    }
    let run = marker("pfgram");
    let candidate = format!("lib.{run}.so");
    let literal = format!(".{run}.");
    // A directory and a name (letters only: the run holds this process's
    // pid and digits) with no window sharing a bit with the run's.
    let (dir, other) = (0..100)
        .map(|i: u32| {
            let dir = tempfile::tempdir().expect("tempdir");
            let letters: String = i
                .to_string()
                .bytes()
                .map(|d| char::from(b'k' + (d - b'0')))
                .collect();
            (dir, format!("unrelated{letters}"))
        })
        .find(|(dir, o)| !gram_collides(&format!("{}/{o}", dir.path().display()), &literal))
        .expect("a path without a colliding window");
    let query = format!(
        r#"file where event.type == "creation" and file.name like~ "*.{}.*""#,
        run.to_ascii_uppercase()
    );
    let Some((_rules, mut sensor)) = start_with_query(&query, &[]) else {
        return;
    };
    let names = create_pair(&mut sensor, dir.path(), &other, &candidate);
    assert_eq!(
        names.as_slice(),
        std::slice::from_ref(&candidate),
        "only the candidate crosses"
    );
    let summary = sensor.stop().expect("summary");
    assert!(
        prefilter_count(&summary, "creation", "filtered") >= 1,
        "{summary}"
    );
    assert_eq!(summary["lost_file"], 0);
}

/// `--file-prefilter off`: every file event crosses, and is counted as
/// passed without a check.
#[test]
fn prefilter_off_passes_every_file_event() {
    if !is_root() {
        skip_or_fail("needs root (eBPF)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let candidate = marker("prefilter-candidate");
    let other = marker("prefilter-other");
    let Some((_rules, mut sensor)) = start_with_query(
        &name_query("creation", &candidate),
        &["--file-prefilter", "off"],
    ) else {
        return;
    };
    let names = create_pair(&mut sensor, dir.path(), &other, &candidate);
    assert_eq!(names, [other.clone(), candidate.clone()]);
    let summary = sensor.stop().expect("summary");
    assert!(
        prefilter_count(&summary, "creation", "pass_all") >= 2,
        "{summary}"
    );
    assert_eq!(
        prefilter_count(&summary, "creation", "filtered"),
        0,
        "{summary}"
    );
}

/// With the whole D4C set, the chmod rule's file branch reduces to process
/// names, decided in the kernel at exec from the executed file's name: a
/// file written by a process named `chmod` (a copy of the shell under that
/// name, running a script) with `+x` crosses and alerts as a file event,
/// while the same write by a process named otherwise is filtered in the
/// kernel (never in `--events`, counted). Both are opens for writing of
/// files under /tmp (creations there are candidates of other rules).
#[test]
fn process_name_atoms_pass_chmod_and_filter_other_writers() {
    let Some(mut sensor) = start() else { return };
    assert!(
        sensor
            .stderr
            .iter()
            .any(|l| l.starts_with("sensor: file prefilter: open: ") && !l.contains("pass-all")),
        "no pass-all expected: {:?}",
        sensor.stderr
    );
    let bin = tempfile::tempdir().expect("tempdir");
    // Appends (opens for writing): no D4C file atom names a file under
    // /tmp opened for writing, so only the process name can pass it. The
    // writers are copies of the shell (a script would be named after its
    // interpreter) running one script: `<copy> append +x <file>`.
    let append = bin.path().join("append");
    std::fs::write(&append, "echo x >> \"$2\"\n").expect("script");
    for name in ["chmod", "writer"] {
        std::fs::copy("/bin/sh", bin.path().join(name)).expect("copy the shell");
    }
    let other = marker("written-by-writer");
    let mine = marker("written-by-chmod");
    let (id, alerts) = scenario(
        &mut sensor,
        &format!(": > $T/{other}; : > $T/{mine}"),
        &format!(
            "{w} {a} +x $T/{other}; {c} {a} +x $T/{mine}",
            w = bin.path().join("writer").display(),
            c = bin.path().join("chmod").display(),
            a = append.display(),
        ),
    );
    let file_alerts: Vec<&Value> = alerts
        .iter()
        .filter(|a| get(a, "event.category")[0] == "file")
        .filter(|a| get(a, "event.action").as_str() == Some("open"))
        .collect();
    assert!(
        file_alerts.iter().any(|a| {
            get(a, "file.name").as_str() == Some(mine.as_str())
                && get(a, "process.name").as_str() == Some("chmod")
                && get(a, "kibana.alert.rule.name")
                    .as_str()
                    .is_some_and(|n| n.contains("File Execution Permission Modification"))
        }),
        "container {id}: {alerts:#?}"
    );
    let events = read_lines(&sensor.events_path());
    // The opens for writing (the setup's creations, by the scenario's
    // `sh`, cross: `sh` is a name the rule lists).
    let names: Vec<String> = events
        .iter()
        .filter(|v| get(v, "event.action").as_str() == Some("open"))
        .filter_map(|v| {
            Some(format!(
                "{} by {}",
                get(v, "file.name").as_str()?,
                get(v, "process.name").as_str().unwrap_or("?")
            ))
        })
        .filter(|n| n.starts_with(&other) || n.starts_with(&mine))
        .collect();
    assert!(names.contains(&format!("{mine} by chmod")), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with(&other)),
        "the writer's open crossed: {names:?}"
    );
    let summary = sensor.stop().expect("summary");
    assert!(
        prefilter_count(&summary, "open", "filtered") >= 1,
        "{summary}"
    );
}

/// Deletions by plain name (`rm name` in the directory: on the syscall
/// tracepoints the record carries the name as passed): the kernel joins
/// it to the walked directory and checks it, so the one no rule names is
/// filtered and the candidate crosses. (Under BPF LSM or fentry the path
/// is walked whole and checked as always.)
#[test]
fn prefilter_checks_deletions_by_plain_name() {
    if !is_root() {
        skip_or_fail("needs root (eBPF)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let candidate = marker("prefilter-deleted");
    let other = marker("prefilter-kept-out");
    let Some((_rules, mut sensor)) = start_with_query(&name_query("deletion", &candidate), &[])
    else {
        return;
    };
    std::fs::write(dir.path().join(&other), b"x").expect("write");
    std::fs::write(dir.path().join(&candidate), b"x").expect("write");
    let status = Command::new("rm")
        .arg(&other)
        .arg(&candidate)
        .current_dir(dir.path())
        .status()
        .expect("rm");
    assert!(status.success());
    sensor
        .wait_event(WAIT, |v| {
            get(v, "file.name").as_str() == Some(candidate.as_str())
                && get(v, "event.action").as_str() == Some("deletion")
        })
        .expect("the candidate's deletion event");
    let deleted: Vec<String> = read_lines(&sensor.events_path())
        .iter()
        .filter(|v| get(v, "event.action").as_str() == Some("deletion"))
        .filter_map(|v| get(v, "file.name").as_str().map(str::to_owned))
        .filter(|n| *n == other || *n == candidate)
        .collect();
    assert_eq!(
        deleted.as_slice(),
        std::slice::from_ref(&candidate),
        "only the candidate crosses"
    );
    let summary = sensor.stop().expect("summary");
    assert!(
        prefilter_count(&summary, "deletion", "filtered") >= 1,
        "{summary}"
    );
}

/// The first-component gate (the kernel's check before any path is
/// walked) judges a name the process passed as the agent will join it:
/// an absolute name outside every atom is dropped, while names whose `..`
/// lead into an atom's directory (relative or absolute), and a plain
/// absolute name inside it, all cross.
#[test]
fn gate_drops_names_outside_the_atoms_and_keeps_dotdot_names_into_them() {
    if !is_root() {
        skip_or_fail("needs root (eBPF)");
        return;
    }
    let cwd = tempfile::tempdir().expect("tempdir");
    let top = tempfile::Builder::new()
        .prefix(&marker("gate-top"))
        .tempdir_in("/")
        .expect("a directory under /");
    let top_name = top
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .expect("utf-8 name")
        .to_owned();
    let query =
        format!(r#"file where event.type == "deletion" and file.path like "/{top_name}/*""#);
    let Some((_rules, mut sensor)) = start_with_query(&query, &[]) else {
        return;
    };
    let outside = cwd.path().join(marker("gate-outside"));
    let files: Vec<PathBuf> = (1..=3)
        .map(|i| top.path().join(marker(&format!("gate-in-{i}"))))
        .collect();
    for f in files.iter().chain([&outside]) {
        std::fs::write(f, b"x").expect("write");
    }
    let ups = "../".repeat(cwd.path().components().count() - 1);
    let name = |f: &Path| {
        f.file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8")
            .to_owned()
    };
    let names = [
        outside.to_str().expect("utf-8").to_owned(),
        format!("{ups}{top_name}/{}", name(&files[0])),
        format!("/tmp/../{top_name}/{}", name(&files[1])),
        files[2].to_str().expect("utf-8").to_owned(),
    ];
    for n in &names {
        let status = Command::new("unlink")
            .arg(n)
            .current_dir(cwd.path())
            .status()
            .expect("unlink");
        assert!(status.success(), "unlink {n}");
    }
    let last = files[2].to_str().expect("utf-8").to_owned();
    sensor
        .wait_event(WAIT, |v| {
            get(v, "file.path").as_str() == Some(last.as_str())
        })
        .expect("the last deletion's event");
    let deleted: Vec<String> = read_lines(&sensor.events_path())
        .iter()
        .filter(|v| get(v, "event.action").as_str() == Some("deletion"))
        .filter_map(|v| get(v, "file.path").as_str().map(str::to_owned))
        .filter(|p| p.contains("gate-"))
        .collect();
    let want: Vec<String> = files
        .iter()
        .map(|f| f.to_str().expect("utf-8").to_owned())
        .collect();
    assert_eq!(deleted, want, "names: {names:?}");
    let summary = sensor.stop().expect("summary");
    assert!(
        prefilter_count(&summary, "deletion", "filtered") >= 1,
        "{summary}"
    );
    assert_eq!(summary["lost_file"], 0);
}

/// A file bind-mounted over another is named by its mount point, as the
/// walk names it, not by its own dentry's name: the gate does not judge
/// it by the wrong basename (a name atom on the mount point's name still
/// sees the write).
#[test]
fn gate_keeps_a_bind_mounted_file_named_by_its_mount_point() {
    if !is_root() {
        skip_or_fail("needs root (eBPF)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let candidate = marker("gate-mounted");
    let source = dir.path().join(marker("gate-source"));
    let target = dir.path().join(&candidate);
    std::fs::write(&source, b"x").expect("write");
    std::fs::write(&target, b"x").expect("write");
    let Some((_rules, mut sensor)) = start_with_query(&name_query("change", &candidate), &[])
    else {
        return;
    };
    let script = format!(
        "mount --bind {src} {dst} && echo more >> {dst}",
        src = source.display(),
        dst = target.display()
    );
    let status = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .status()
        .expect("unshare");
    assert!(status.success(), "{script}");
    let want = target.to_str().expect("utf-8").to_owned();
    sensor
        .wait_event(WAIT, |v| {
            get(v, "file.path").as_str() == Some(want.as_str())
                && get(v, "event.action").as_str() == Some("open")
        })
        .expect("the write through the bind mount, named by its mount point");
    let summary = sensor.stop().expect("summary");
    assert_eq!(summary["lost_file"], 0);
}
