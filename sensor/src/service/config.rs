//! Configuration: a TOML file, with environment variables and command-line
//! flags on top (flag > environment > file > default), every value checked
//! at start with a message that names the setting and where it came from.
//!
//! The command line (clap) already merges flags with their `SENSOR_*`
//! environment variables; what it hands over has the file's shape
//! ([`ConfigFile`], every value optional), so a value set in neither place
//! falls through to the file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::output::jsonl::OutputTarget;
use crate::rules::exceptions::ValueListSpec;
use crate::rules::tuning::{RuleOverride, Tuning};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid setting `{setting}` ({origin}): {message}")]
    Invalid {
        setting: &'static str,
        origin: String,
        message: String,
    },
}

/// The config file as written. Every key optional; unknown keys are errors
/// (a typo must not silently fall back to a default).
#[derive(Debug, Default, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub rules: Option<Vec<PathBuf>>,
    pub alerts: Option<String>,
    pub events: Option<String>,
    pub lifecycle_events: Option<bool>,
    pub ring_buffer_mib: Option<u32>,
    pub table_capacity: Option<usize>,
    /// `host:port`, or `""` to disable the endpoint.
    pub metrics_addr: Option<String>,
    /// Rotate file outputs when they reach this many MiB (0 = never).
    pub rotate_mib: Option<u64>,
    /// Rotated files kept per output.
    pub rotate_keep: Option<u32>,
    /// Read the kernel's records in batches at most this many milliseconds
    /// apart (one wake-up per batch, not per exec); 0 wakes per record.
    pub batch_ms: Option<u64>,
    /// Permission bits of created output files, octal: `"0600"` (default)
    /// or `"0640"` (group-readable, for a log shipper in the file's group).
    pub output_mode: Option<String>,
    /// Where the node's root is, for the container runtimes' state files
    /// (`run/containerd`, `var/lib/docker`, ...): `/` on a host,
    /// `/host` in the DaemonSet (hostPath mounts of the runtimes' directories); `""` disables container metadata.
    pub runtime_root: Option<String>,
    /// `"on"` (default): only file events some loaded rule could match
    /// cross to userspace (and reach `events`); `"off"`: every one.
    pub file_prefilter: Option<String>,
    /// Rules not evaluated, by `rule_id`.
    pub disabled_rules: Option<Vec<String>>,
    /// Exception files or directories: Kibana NDJSON exports, TOML.
    pub exceptions: Option<Vec<PathBuf>>,
    /// Exception lists (`list_id`s) applied to every rule.
    pub global_exceptions: Option<Vec<String>>,
    /// `[[value_lists]]`: id, type and file of each value list that
    /// exception `list` entries name.
    pub value_lists: Option<Vec<ValueListSpec>>,
    /// Per-rule tuning: `[rule_overrides."<rule_id>"]` with `enabled`,
    /// `severity`, `risk_score`, `exceptions_list` (see
    /// [`crate::rules::tuning`]).
    pub rule_overrides: Option<BTreeMap<String, RuleOverride>>,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<ConfigFile, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string().trim_end().to_owned(),
        })
    }
}

/// Effective, validated settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// Empty: the embedded default rule.
    pub rules: Vec<PathBuf>,
    pub alerts: String,
    pub events: Option<String>,
    pub lifecycle_events: bool,
    pub ring_buffer_mib: u32,
    pub table_capacity: usize,
    pub metrics_addr: Option<SocketAddr>,
    pub rotate_mib: u64,
    pub rotate_keep: u32,
    pub batch_ms: u64,
    /// Permission bits of file outputs (0o600 or 0o640).
    pub output_mode: u32,
    /// Root under which runtime state files are read; `None`: no container
    /// metadata.
    pub runtime_root: Option<PathBuf>,
    /// The in-kernel file prefilter derived from the rules is loaded
    /// (shown as the config file spells it: `"on"` / `"off"`).
    #[serde(serialize_with = "on_off")]
    pub file_prefilter: bool,
    /// Rule tuning (disabled rules, severity and risk-score overrides).
    #[serde(flatten)]
    pub tuning: Tuning,
}

fn on_off<S: serde::Serializer>(on: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if *on { "on" } else { "off" })
}

pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9100";

impl Settings {
    pub fn alerts_target(&self) -> OutputTarget {
        OutputTarget::parse(&self.alerts)
    }

    pub fn events_target(&self) -> Option<OutputTarget> {
        self.events.as_deref().map(OutputTarget::parse)
    }
}

/// Where a value came from, for error messages.
fn origin<T>(flag: &Option<T>, file: &Option<T>, file_path: Option<&Path>) -> String {
    if flag.is_some() {
        "from the command line or environment".to_owned()
    } else if file.is_some() {
        format!(
            "from {}",
            file_path.map_or_else(|| "the config file".to_owned(), |p| p.display().to_string())
        )
    } else {
        "default".to_owned()
    }
}

/// Merges flag/env > file > default and validates the result.
pub fn resolve(
    file: &ConfigFile,
    file_path: Option<&Path>,
    over: &ConfigFile,
) -> Result<Settings, ConfigError> {
    let invalid = |setting: &'static str, origin: String, message: String| ConfigError::Invalid {
        setting,
        origin,
        message,
    };
    let rules = over
        .rules
        .clone()
        .or_else(|| file.rules.clone())
        .unwrap_or_default();
    for r in &rules {
        let problem = match crate::rules::builtin::pack_named(r) {
            Some(Ok(_)) => None,
            Some(Err(name)) => Some(crate::rules::builtin::unknown_pack(&name)),
            None => (!r.exists()).then(|| format!("{} does not exist", r.display())),
        };
        if let Some(message) = problem {
            return Err(invalid(
                "rules",
                origin(&over.rules, &file.rules, file_path),
                message,
            ));
        }
    }

    let ring_buffer_mib = over.ring_buffer_mib.or(file.ring_buffer_mib).unwrap_or(8);
    if !(1..=1024).contains(&ring_buffer_mib) || !ring_buffer_mib.is_power_of_two() {
        return Err(invalid(
            "ring_buffer_mib",
            origin(&over.ring_buffer_mib, &file.ring_buffer_mib, file_path),
            format!("{ring_buffer_mib} is not a power of two between 1 and 1024"),
        ));
    }
    let table_capacity = over
        .table_capacity
        .or(file.table_capacity)
        .unwrap_or(65_536);
    if !(1_024..=4_194_304).contains(&table_capacity) {
        return Err(invalid(
            "table_capacity",
            origin(&over.table_capacity, &file.table_capacity, file_path),
            format!("{table_capacity} is outside 1024..=4194304"),
        ));
    }
    let metrics_text = over
        .metrics_addr
        .clone()
        .or_else(|| file.metrics_addr.clone())
        .unwrap_or_else(|| DEFAULT_METRICS_ADDR.to_owned());
    let metrics_addr = if metrics_text.is_empty() {
        None
    } else {
        Some(metrics_text.parse::<SocketAddr>().map_err(|e| {
            invalid(
                "metrics_addr",
                origin(&over.metrics_addr, &file.metrics_addr, file_path),
                format!("{metrics_text:?} is not host:port ({e}); use \"\" to disable"),
            )
        })?)
    };
    let alerts = over
        .alerts
        .clone()
        .or_else(|| file.alerts.clone())
        .unwrap_or_else(|| "-".to_owned());
    let events = over.events.clone().or_else(|| file.events.clone());
    for (setting, value, flag, in_file) in [
        ("alerts", Some(&alerts), &over.alerts, &file.alerts),
        ("events", events.as_ref(), &over.events, &file.events),
    ] {
        let Some(value) = value else { continue };
        if value.is_empty() {
            return Err(invalid(
                setting,
                origin(flag, in_file, file_path),
                "empty path (use - for stdout)".into(),
            ));
        }
        if value != "-" {
            let parent = Path::new(value)
                .parent()
                .filter(|p| !p.as_os_str().is_empty());
            if let Some(dir) = parent {
                if !dir.is_dir() {
                    return Err(invalid(
                        setting,
                        origin(flag, in_file, file_path),
                        format!("directory {} does not exist", dir.display()),
                    ));
                }
            }
        }
    }
    if events.as_deref() == Some("-") && alerts == "-" {
        return Err(invalid(
            "events",
            origin(&over.events, &file.events, file_path),
            "events and alerts cannot both go to stdout".into(),
        ));
    }
    let rotate_keep = over.rotate_keep.or(file.rotate_keep).unwrap_or(5);
    if !(1..=100).contains(&rotate_keep) {
        return Err(invalid(
            "rotate_keep",
            origin(&over.rotate_keep, &file.rotate_keep, file_path),
            format!("{rotate_keep} is outside 1..=100"),
        ));
    }
    let batch_ms = over.batch_ms.or(file.batch_ms).unwrap_or(10);
    if batch_ms > 1_000 {
        return Err(invalid(
            "batch_ms",
            origin(&over.batch_ms, &file.batch_ms, file_path),
            format!("{batch_ms} is above 1000 (alerts would wait up to that long)"),
        ));
    }
    let output_mode = match over.output_mode.as_ref().or(file.output_mode.as_ref()) {
        None => crate::output::jsonl::DEFAULT_MODE,
        Some(text) => parse_output_mode(text).ok_or_else(|| {
            invalid(
                "output_mode",
                origin(&over.output_mode, &file.output_mode, file_path),
                format!(
                    "{text:?} is not \"0600\" or \"0640\" (output files are never world-readable)"
                ),
            )
        })?,
    };
    let runtime_root = match over
        .runtime_root
        .as_deref()
        .or(file.runtime_root.as_deref())
        .unwrap_or("/")
    {
        "" => None,
        root => {
            let path = PathBuf::from(root);
            if !path.is_absolute() || !path.is_dir() {
                return Err(invalid(
                    "runtime_root",
                    origin(&over.runtime_root, &file.runtime_root, file_path),
                    format!("{root:?} is not an absolute path to a directory"),
                ));
            }
            Some(path)
        }
    };
    let file_prefilter = match over
        .file_prefilter
        .as_deref()
        .or(file.file_prefilter.as_deref())
    {
        None | Some("on") => true,
        Some("off") => false,
        Some(other) => {
            return Err(invalid(
                "file_prefilter",
                origin(&over.file_prefilter, &file.file_prefilter, file_path),
                format!("{other:?} is not \"on\" or \"off\""),
            ))
        }
    };
    let tuning = resolve_tuning(file, file_path, over)?;
    Ok(Settings {
        tuning,
        runtime_root,
        file_prefilter,
        batch_ms,
        output_mode,
        rules,
        alerts,
        events,
        lifecycle_events: over
            .lifecycle_events
            .or(file.lifecycle_events)
            .unwrap_or(false),
        ring_buffer_mib,
        table_capacity,
        metrics_addr,
        rotate_mib: over.rotate_mib.or(file.rotate_mib).unwrap_or(0),
        rotate_keep,
    })
}

/// Rule tuning: `disabled_rules` from the flags replaces the file's list;
/// `rule_overrides` merge rule by rule and key by key (a flag's key wins).
fn resolve_tuning(
    file: &ConfigFile,
    file_path: Option<&Path>,
    over: &ConfigFile,
) -> Result<Tuning, ConfigError> {
    let disabled_rules = over
        .disabled_rules
        .clone()
        .or_else(|| file.disabled_rules.clone())
        .unwrap_or_default();
    if let Some(empty) = disabled_rules.iter().find(|id| id.trim().is_empty()) {
        return Err(ConfigError::Invalid {
            setting: "disabled_rules",
            origin: origin(&over.disabled_rules, &file.disabled_rules, file_path),
            message: format!("{empty:?} is not a rule_id"),
        });
    }
    let mut rule_overrides = file.rule_overrides.clone().unwrap_or_default();
    for (id, o) in over.rule_overrides.iter().flatten() {
        let merged = rule_overrides
            .get(id)
            .map_or_else(|| o.clone(), |f| f.merged_with(o));
        rule_overrides.insert(id.clone(), merged);
    }
    for (id, o) in &rule_overrides {
        o.validate().map_err(|message| {
            let from_flag = over
                .rule_overrides
                .as_ref()
                .is_some_and(|m| m.contains_key(id));
            ConfigError::Invalid {
                setting: "rule_overrides",
                origin: if from_flag {
                    "from the command line or environment".to_owned()
                } else {
                    origin(&None::<()>, &Some(()), file_path)
                },
                message: format!("rule {id}: {message}"),
            }
        })?;
    }
    let exceptions = over
        .exceptions
        .clone()
        .or_else(|| file.exceptions.clone())
        .unwrap_or_default();
    if let Some(missing) = exceptions.iter().find(|p| !p.exists()) {
        return Err(ConfigError::Invalid {
            setting: "exceptions",
            origin: origin(&over.exceptions, &file.exceptions, file_path),
            message: format!("{} does not exist", missing.display()),
        });
    }
    let value_lists = over
        .value_lists
        .clone()
        .or_else(|| file.value_lists.clone())
        .unwrap_or_default();
    Ok(Tuning {
        disabled_rules,
        exceptions,
        global_exceptions: over
            .global_exceptions
            .clone()
            .or_else(|| file.global_exceptions.clone())
            .unwrap_or_default(),
        value_lists,
        rule_overrides,
    })
}

/// `"0600"`/`"600"`/`"0o600"` → 0o600; only 0600 and 0640 are allowed.
fn parse_output_mode(text: &str) -> Option<u32> {
    let digits = text.trim_start_matches("0o");
    let mode = u32::from_str_radix(digits, 8).ok()?;
    [0o600, 0o640].contains(&mode).then_some(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(text, Path::new("sensor.toml"))
    }

    #[test]
    fn defaults() {
        let s = resolve(&ConfigFile::default(), None, &ConfigFile::default()).expect("defaults");
        assert_eq!(s.alerts, "-");
        assert_eq!(s.ring_buffer_mib, 8);
        assert_eq!(
            s.metrics_addr,
            Some("127.0.0.1:9100".parse().expect("addr"))
        );
        assert!(s.rules.is_empty() && s.events.is_none() && !s.lifecycle_events);
        assert_eq!(s.output_mode, 0o600);
    }

    #[test]
    fn output_mode_is_0600_or_0640() {
        let f = file("output_mode = \"0640\"\n").expect("parse");
        let s = resolve(&f, None, &ConfigFile::default()).expect("valid");
        assert_eq!(s.output_mode, 0o640);
        for bad in ["0644", "0666", "rw", ""] {
            let over = ConfigFile {
                output_mode: Some(bad.into()),
                ..ConfigFile::default()
            };
            let e = resolve(&ConfigFile::default(), None, &over).expect_err(bad);
            assert!(e.to_string().contains("`output_mode`"), "{e}");
        }
    }

    #[test]
    fn file_prefilter_is_on_or_off() {
        let s = resolve(&ConfigFile::default(), None, &ConfigFile::default()).expect("valid");
        assert!(s.file_prefilter);
        let f = file("file_prefilter = \"off\"\n").expect("parse");
        assert!(
            !resolve(&f, None, &ConfigFile::default())
                .expect("valid")
                .file_prefilter
        );
        let over = ConfigFile {
            file_prefilter: Some("on".into()),
            ..ConfigFile::default()
        };
        assert!(resolve(&f, None, &over).expect("valid").file_prefilter);
        let over = ConfigFile {
            file_prefilter: Some("maybe".into()),
            ..ConfigFile::default()
        };
        let e = resolve(&f, None, &over).expect_err("invalid");
        assert!(e.to_string().contains("`file_prefilter`"), "{e}");
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let f = file("ring_buffer_mib = 32\ntable_capacity = 2048\nmetrics_addr = \"\"\n")
            .expect("parse");
        let over = ConfigFile {
            ring_buffer_mib: Some(64),
            ..ConfigFile::default()
        };
        let s = resolve(&f, Some(Path::new("sensor.toml")), &over).expect("valid");
        assert_eq!(s.ring_buffer_mib, 64);
        assert_eq!(s.table_capacity, 2048);
        assert_eq!(s.metrics_addr, None);
    }

    #[test]
    fn errors_name_the_setting_and_its_origin() {
        let f = file("ring_buffer_mib = 3\n").expect("parse");
        let e = resolve(
            &f,
            Some(Path::new("/etc/sensor.toml")),
            &ConfigFile::default(),
        )
        .expect_err("invalid");
        assert_eq!(
            e.to_string(),
            "invalid setting `ring_buffer_mib` (from /etc/sensor.toml): 3 is not a power of two between 1 and 1024"
        );
        let over = ConfigFile {
            metrics_addr: Some("nope".into()),
            ..ConfigFile::default()
        };
        let e = resolve(&ConfigFile::default(), None, &over).expect_err("invalid");
        assert!(e.to_string().starts_with(
            "invalid setting `metrics_addr` (from the command line or environment): \"nope\" is not host:port"
        ));
        let over = ConfigFile {
            rules: Some(vec![PathBuf::from("/nonexistent/rules")]),
            ..ConfigFile::default()
        };
        let e = resolve(&ConfigFile::default(), None, &over).expect_err("invalid");
        assert!(e.to_string().contains("/nonexistent/rules does not exist"));
        let over = ConfigFile {
            events: Some("-".into()),
            ..ConfigFile::default()
        };
        assert!(resolve(&ConfigFile::default(), None, &over).is_err());
    }

    #[test]
    fn unknown_keys_and_bad_types_are_rejected() {
        let e = file("ring_bufer_mib = 16\n").expect_err("typo");
        assert!(
            e.to_string().contains("unknown field `ring_bufer_mib`"),
            "{e}"
        );
        let e = file("ring_buffer_mib = \"big\"\n").expect_err("type");
        assert!(e.to_string().starts_with("config file sensor.toml:"), "{e}");
    }

    #[test]
    fn rule_tuning_merges_flags_over_the_file_key_by_key() {
        let f = file(
            "disabled_rules = [\"a\"]\n[rule_overrides.r1]\nseverity = \"low\"\nrisk_score = 5\n[rule_overrides.r2]\nenabled = false\n",
        )
        .expect("parse");
        let mut flags = BTreeMap::new();
        flags.insert(
            "r1".to_owned(),
            RuleOverride {
                risk_score: Some(50),
                ..RuleOverride::default()
            },
        );
        let over = ConfigFile {
            rule_overrides: Some(flags),
            disabled_rules: Some(vec!["b".into()]),
            ..ConfigFile::default()
        };
        let s = resolve(&f, None, &over).expect("valid");
        assert_eq!(s.tuning.disabled_rules, vec!["b".to_owned()]);
        let r1 = &s.tuning.rule_overrides["r1"];
        assert_eq!(
            (r1.severity.as_deref(), r1.risk_score),
            (Some("low"), Some(50))
        );
        assert!(s.tuning.is_disabled("r2") && s.tuning.is_disabled("b"));
        assert!(
            !s.tuning.is_disabled("a"),
            "the flag's list replaces the file's"
        );
        // `config check` prints the tuning back as TOML.
        let text = toml::to_string(&s).expect("toml");
        assert!(text.contains("disabled_rules = [\"b\"]"), "{text}");
        assert!(text.contains("[rule_overrides.r1]"), "{text}");
    }

    #[test]
    fn rule_tuning_values_are_checked_with_their_origin() {
        let f = file("[rule_overrides.r1]\nseverity = \"urgent\"\n").expect("parse");
        let e = resolve(
            &f,
            Some(Path::new("/etc/sensor.toml")),
            &ConfigFile::default(),
        )
        .expect_err("invalid");
        assert_eq!(
            e.to_string(),
            "invalid setting `rule_overrides` (from /etc/sensor.toml): rule r1: severity \"urgent\" is not one of low, medium, high, critical"
        );
        let e = file("[rule_overrides.r1]\nseverty = \"low\"\n").expect_err("typo");
        assert!(e.to_string().contains("unknown field `severty`"), "{e}");
    }

    #[test]
    fn runtime_root_defaults_to_slash_and_is_checked() {
        let s = resolve(&ConfigFile::default(), None, &ConfigFile::default()).expect("valid");
        assert_eq!(s.runtime_root, Some(PathBuf::from("/")));
        let f = file("runtime_root = \"\"\n").expect("parse");
        let s = resolve(&f, None, &ConfigFile::default()).expect("valid");
        assert_eq!(s.runtime_root, None, "\"\" turns container metadata off");
        for bad in ["relative/dir", "/nonexistent/root", "/etc/hostname"] {
            let over = ConfigFile {
                runtime_root: Some(bad.into()),
                ..ConfigFile::default()
            };
            let e = resolve(&ConfigFile::default(), None, &over).expect_err(bad);
            assert!(e.to_string().contains("`runtime_root`"), "{e}");
        }
    }
}
