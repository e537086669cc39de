//! `sensor rules check --config` shows the active set: its version (a hash
//! that changes with the rules, the tuning, the exception files and the
//! suppression, and only with them), its load time, and each rule's
//! exceptions and suppression.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

const SEED: &str = "497a7091-0ebd-44d7-88c4-367ab4d4d852";

fn check(dir: &Path, config: &str) -> String {
    let cfg = dir.join("sensor.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sensor"))
        .args(["rules", "check", "--config"])
        .arg(&cfg)
        .arg(dir.join("rules"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (_, active) = stdout
        .split_once("active rule set ")
        .expect("an active set section");
    active.to_owned()
}

fn version(report: &str) -> String {
    report[..16].to_owned()
}

#[test]
fn rules_check_shows_the_version_load_time_exceptions_and_suppression() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("seed.toml"), sensor::rules::builtin::seed_text()).unwrap();
    let lists = dir.path().join("lists.toml");
    let list = |value: &str| {
        format!("[[list]]\nlist_id = \"web\"\n[[list.item]]\nentries = [{{ field = \"user.name\", operator = \"included\", type = \"match\", value = \"{value}\" }}]\n")
    };
    std::fs::write(&lists, list("probe")).unwrap();

    let plain = check(dir.path(), "");
    assert!(
        version(&plain).chars().all(|c| c.is_ascii_hexdigit()),
        "{plain}"
    );
    assert!(
        plain[16..].starts_with(": 1 rules (0 with exceptions, 0 with suppression), loaded at "),
        "{plain}"
    );
    assert!(plain.trim_end().ends_with(" ms"), "{plain}");
    assert_eq!(
        version(&check(dir.path(), "")),
        version(&plain),
        "same inputs, same version"
    );

    let config = format!(
        "exceptions = [\"{}\"]\n[rule_overrides.\"{SEED}\"]\nexceptions_list = [\"web\"]\n[rule_overrides.\"{SEED}\".alert_suppression]\ngroup_by = [\"host.name\"]\nduration = {{ value = 5, unit = \"m\" }}\n",
        lists.display()
    );
    let tuned = check(dir.path(), &config);
    assert!(
        tuned[16..].starts_with(": 1 rules (1 with exceptions, 1 with suppression)"),
        "{tuned}"
    );
    let rule_line = tuned.lines().nth(1).unwrap();
    assert_eq!(
        rule_line,
        format!("{SEED}\tWeb Server Exploitation Detected via Defend for Containers\texceptions: web (config)\tsuppression: group_by host.name for 300s, missing fields: suppress")
    );
    assert_ne!(version(&tuned), version(&plain));

    // The list's content is part of the version; the same content is not a change.
    std::fs::write(&lists, list("deploy")).unwrap();
    let changed = check(dir.path(), &config);
    assert_ne!(version(&changed), version(&tuned));
    std::fs::write(&lists, list("probe")).unwrap();
    assert_eq!(version(&check(dir.path(), &config)), version(&tuned));
    // So are severity overrides.
    let low = check(
        dir.path(),
        &format!("[rule_overrides.\"{SEED}\"]\nseverity = \"low\"\n"),
    );
    assert_ne!(version(&low), version(&plain));
}
