//! What the integration tests share: where Elastic's larger rule catalogues
//! are, when the machine has them; a rule file written from a query; an
//! in-memory writer for alert output. Each test crate uses some of them.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The environment variable naming Elastic's Linux and cross-platform
/// catalogues: a directory with `linux/` and `cross-platform/` in it (the
/// `rules/` directory of a detection-rules checkout). `cargo xtask test`
/// sets it when the shared rule corpus (`rules/elastic`) is beside the
/// workspace, as on CI.
pub const CATALOGUE_VAR: &str = "SENSOR_ELASTIC_RULES";

/// The catalogue directory, or `None` when the variable is unset: the test
/// then returns without checking anything (`cargo xtask test` says in one
/// line that these tests did not run). With `CI=true` an unset variable
/// fails the test instead, and a set variable that does not name a
/// catalogue always does.
pub fn elastic_catalogue() -> Option<PathBuf> {
    let Some(dir) = std::env::var_os(CATALOGUE_VAR).map(PathBuf::from) else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "{CATALOGUE_VAR} is not set: CI runs the catalogue tests"
        );
        eprintln!("{CATALOGUE_VAR} is not set: catalogue test not run");
        return None;
    };
    for sub in ["linux", "cross-platform"] {
        assert!(
            dir.join(sub).is_dir(),
            "{CATALOGUE_VAR}={} has no {sub}/ directory",
            dir.display()
        );
    }
    Some(dir)
}

/// A rule file in the detection-rules format named `name`, with `query` as
/// its query, written into `dir`.
pub fn rule_file(dir: &Path, name: &str, query: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "[metadata]\ncreation_date = \"2026/01/01\"\nmaturity = \"production\"\n\
         updated_date = \"2026/01/01\"\n\n[rule]\nauthor = [\"t\"]\ndescription = \"d\"\n\
         name = \"{name}\"\nrisk_score = 1\nrule_id = \"{name}\"\nseverity = \"low\"\n\
         type = \"eql\"\nlanguage = \"eql\"\nquery = '''\n{query}\n'''\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A writer whose bytes the test reads back (alerts written in memory).
#[derive(Clone, Default)]
pub struct Shared(pub Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The alerts `sensor replay --config` writes for `events` (JSON lines)
/// with `config` (TOML), each parsed; the files go into `dir`.
pub fn replay_with_config(dir: &Path, config: &str, events: &[String]) -> Vec<serde_json::Value> {
    let cfg = dir.join("sensor.toml");
    std::fs::write(&cfg, config).unwrap();
    let input = dir.join("events.jsonl");
    std::fs::write(&input, events.join("\n") + "\n").unwrap();
    let alerts = dir.join("alerts.jsonl");
    let _ = std::fs::remove_file(&alerts);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sensor"))
        .args(["replay", "--config"])
        .arg(&cfg)
        .arg("--alerts")
        .arg(&alerts)
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::read_to_string(&alerts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
