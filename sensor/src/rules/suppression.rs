//! Alert suppression (Kibana's `alert_suppression` for EQL rules): the
//! alerts of a rule that share the values of its `group_by` fields (1 to 3)
//! within `duration` of the group's first alert make one alert. The first
//! is written at once; the later ones are counted into it, and when the
//! window closes (an alert of the group after it, the once-a-second tick,
//! or the sensor stopping) the alert is written again, the same
//! `kibana.alert.uuid`, with the count: Kibana's
//! `kibana.alert.suppression.docs_count` (the alerts suppressed, the first
//! not included), `.start` and `.end` (the first and last alert's event
//! time) and `.terms` (`[{field, value}]`, `value` the field's values or
//! `null` when missing).
//!
//! `missing_fields_strategy`: `suppress` (Kibana's default) groups the
//! alerts missing a field together (its value `null`); `doNotSuppress`
//! writes each of them on its own, without suppression fields. Without a
//! `duration` Kibana suppresses per rule execution; a streaming sensor has
//! no executions, so the rule's `interval` (default 5 minutes) is the
//! window. Only single-event rules are suppressed (Kibana added sequence
//! suppression later): a sequence rule's `alert_suppression` is reported
//! and not applied.
//!
//! State is bounded: at most [`MAX_GROUPS_PER_RULE`] open groups per rule;
//! a new group beyond it closes the oldest early (its alert is written with
//! its count so far, counted as `evicted`): an alert is never lost.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::eql::{Document, FieldRef};

/// Most open groups per rule.
pub const MAX_GROUPS_PER_RULE: usize = 1024;
/// Values of one `group_by` field kept in a group's key and terms.
pub const MAX_VALUES_PER_FIELD: usize = 16;
/// Longest window accepted.
pub const MAX_DURATION_MS: i64 = 7 * 24 * 3600 * 1000;

/// `[rule.alert_suppression]` as written (rule file or configuration).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct SuppressionSpec {
    /// The fields whose values make a group (1 to 3).
    pub group_by: Vec<String>,
    /// The window; absent: the rule's `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationSpec>,
    /// `suppress` (default) or `doNotSuppress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_fields_strategy: Option<String>,
}

/// `duration`: `{ value = 5, unit = "m" }` (`s`, `m`, `h`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct DurationSpec {
    /// How many units.
    pub value: u64,
    /// `s`, `m` or `h`.
    pub unit: String,
}

/// A checked suppression.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppression {
    /// The fields.
    pub group_by: Vec<FieldRef>,
    /// The window, milliseconds.
    pub duration_ms: i64,
    /// Whether alerts missing a field are grouped (`suppress`).
    pub suppress_missing: bool,
}

impl SuppressionSpec {
    /// Checks the spec; `interval` is the rule's (`5m`), used when no
    /// duration is given.
    pub fn compile(&self, interval: Option<&str>) -> Result<Suppression, String> {
        if self.group_by.is_empty() || self.group_by.len() > 3 {
            return Err(format!(
                "group_by has {} fields, Kibana allows 1 to 3",
                self.group_by.len()
            ));
        }
        if let Some(f) = self.group_by.iter().find(|f| f.trim().is_empty()) {
            return Err(format!("group_by names an empty field {f:?}"));
        }
        let duration_ms = match &self.duration {
            Some(d) => {
                let unit: i64 = match d.unit.as_str() {
                    "s" => 1000,
                    "m" => 60_000,
                    "h" => 3_600_000,
                    other => return Err(format!("duration unit {other:?} is not s, m or h")),
                };
                i64::try_from(d.value)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(unit)
            }
            None => interval
                .and_then(|i| humantime::parse_duration(i).ok())
                .map_or(300_000, |d| {
                    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
                }),
        };
        if !(1..=MAX_DURATION_MS).contains(&duration_ms) {
            return Err(format!(
                "duration of {duration_ms} ms is outside 1 ms..7 days"
            ));
        }
        let suppress_missing = match self.missing_fields_strategy.as_deref() {
            None | Some("suppress") => true,
            Some("doNotSuppress") => false,
            Some(other) => {
                return Err(format!(
                    "missing_fields_strategy {other:?} is not \"suppress\" or \"doNotSuppress\""
                ))
            }
        };
        Ok(Suppression {
            group_by: self.group_by.iter().map(|f| FieldRef::new(f)).collect(),
            duration_ms,
            suppress_missing,
        })
    }
}

/// A group's key: each field's values (`None`: missing).
type Key = Vec<Option<Vec<String>>>;

/// One open group.
#[derive(Debug, Clone)]
struct Group {
    /// The first alert, as written (with its suppression fields).
    alert: Value,
    start_ms: i64,
    end_ms: i64,
    /// Alerts counted into it.
    count: u64,
    /// Opening order, for eviction.
    seq: u64,
}

/// What to do with an alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// The first of a new group: write it with these suppression fields
    /// (merge them into the alert, then [`Suppressor::opened`] it).
    Open(Value),
    /// Counted into an open group: write nothing now.
    Suppressed,
    /// Not suppressed (a field is missing and the strategy is
    /// `doNotSuppress`): write it as usual.
    Unsuppressed,
}

/// Counters of one rule's suppression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SuppressionStats {
    /// Alerts counted into a group (not written on their own).
    pub suppressed: u64,
    /// Groups opened.
    pub opened: u64,
    /// Groups closed early because the rule had [`MAX_GROUPS_PER_RULE`].
    pub evicted: u64,
    /// Groups open now.
    pub open: u64,
}

/// One rule's suppression state.
#[derive(Debug, Clone)]
pub struct Suppressor {
    rule_id: String,
    spec: Suppression,
    groups: HashMap<Key, Group>,
    cap: usize,
    next_seq: u64,
    stats: SuppressionStats,
}

impl Suppressor {
    /// The state of `rule_id` under `spec`.
    pub fn new(rule_id: &str, spec: Suppression) -> Suppressor {
        Suppressor::with_cap(rule_id, spec, MAX_GROUPS_PER_RULE)
    }

    /// With another group cap (tests).
    pub fn with_cap(rule_id: &str, spec: Suppression, cap: usize) -> Suppressor {
        Suppressor {
            rule_id: rule_id.to_owned(),
            spec,
            groups: HashMap::new(),
            cap: cap.max(1),
            next_seq: 0,
            stats: SuppressionStats::default(),
        }
    }

    /// The checked spec.
    pub fn spec(&self) -> &Suppression {
        &self.spec
    }

    /// Its counters.
    pub fn stats(&self) -> SuppressionStats {
        SuppressionStats {
            open: self.groups.len() as u64,
            ..self.stats
        }
    }

    /// Decides for an alert on `event` at `now_ms`. Groups whose window has
    /// closed by then are pushed to `closed` (their final alerts) first.
    pub fn admit<D: Document + ?Sized>(
        &mut self,
        event: &D,
        now_ms: i64,
        closed: &mut Vec<Value>,
    ) -> Admission {
        self.close_until(now_ms, closed);
        let key = self.key(event);
        if !self.spec.suppress_missing && key.iter().any(Option::is_none) {
            return Admission::Unsuppressed;
        }
        if let Some(g) = self.groups.get_mut(&key) {
            g.count += 1;
            g.end_ms = g.end_ms.max(now_ms);
            self.stats.suppressed += 1;
            return Admission::Suppressed;
        }
        if self.groups.len() >= self.cap {
            if let Some(oldest) = self
                .groups
                .iter()
                .min_by_key(|(_, g)| g.seq)
                .map(|(k, _)| k.clone())
            {
                if let Some(g) = self.groups.remove(&oldest) {
                    self.stats.evicted += 1;
                    closed.extend(final_alert(g));
                }
            }
        }
        let fields = self.fields(&key, now_ms);
        self.stats.opened += 1;
        self.next_seq += 1;
        self.groups.insert(
            key,
            Group {
                alert: Value::Null,
                start_ms: now_ms,
                end_ms: now_ms,
                count: 0,
                seq: self.next_seq,
            },
        );
        Admission::Open(fields)
    }

    /// Keeps the alert written for the group just opened for `event`.
    pub fn opened<D: Document + ?Sized>(&mut self, event: &D, alert: Value) {
        let key = self.key(event);
        if let Some(g) = self.groups.get_mut(&key) {
            g.alert = alert;
        }
    }

    /// Closes the groups whose window ended by `now_ms`, pushing the final
    /// alert of each that suppressed any.
    pub fn close_until(&mut self, now_ms: i64, closed: &mut Vec<Value>) {
        let d = self.spec.duration_ms;
        let mut due: Vec<(u64, Key)> = self
            .groups
            .iter()
            .filter(|(_, g)| g.start_ms.saturating_add(d) <= now_ms)
            .map(|(k, g)| (g.seq, k.clone()))
            .collect();
        due.sort();
        for (_, k) in due {
            if let Some(g) = self.groups.remove(&k) {
                closed.extend(final_alert(g));
            }
        }
    }

    /// Closes every group (the sensor stops).
    pub fn close_all(&mut self, closed: &mut Vec<Value>) {
        let mut all: Vec<Group> = self.groups.drain().map(|(_, g)| g).collect();
        all.sort_by_key(|g| g.seq);
        closed.extend(all.into_iter().filter_map(final_alert));
    }

    fn key<D: Document + ?Sized>(&self, event: &D) -> Key {
        self.spec
            .group_by
            .iter()
            .map(|f| {
                let mut values = Vec::new();
                event.visit(f, &mut |v| {
                    values.push(match v {
                        crate::eql::Value::Str(s) => s.to_owned(),
                        crate::eql::Value::Int(i) => i.to_string(),
                        crate::eql::Value::Float(x) => x.to_string(),
                        crate::eql::Value::Bool(b) => b.to_string(),
                    });
                    values.len() >= MAX_VALUES_PER_FIELD
                });
                (!values.is_empty()).then_some(values)
            })
            .collect()
    }

    /// The suppression fields of a new group: `kibana.alert.suppression`,
    /// `kibana.alert.instance.id` (the group: rule and terms) and
    /// `kibana.alert.uuid` (this alert: group and start).
    fn fields(&self, key: &Key, now_ms: i64) -> Value {
        let terms: Vec<Value> = self
            .spec
            .group_by
            .iter()
            .zip(key)
            .map(|(f, v)| json!({"field": f.path(), "value": v}))
            .collect();
        let terms = Value::Array(terms);
        let instance = hash_hex(&format!("{}\u{1}{terms}", self.rule_id));
        let uuid = hash_hex(&format!("{instance}\u{1}{now_ms}"));
        let at = iso_ms(now_ms);
        json!({
            "instance": {"id": instance},
            "uuid": uuid,
            "suppression": {"docs_count": 0, "start": at, "end": at, "terms": terms},
        })
    }
}

/// The group's alert with its final count, when it suppressed any.
fn final_alert(g: Group) -> Option<Value> {
    if g.count == 0 {
        return None;
    }
    let mut alert = g.alert;
    let s = alert
        .get_mut("kibana")
        .and_then(|k| k.get_mut("alert"))
        .and_then(|a| a.get_mut("suppression"))?;
    s["docs_count"] = json!(g.count);
    s["end"] = json!(iso_ms(g.end_ms));
    Some(alert)
}

/// The wall clock, epoch milliseconds.
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Epoch milliseconds as `2026-03-01T10:00:00.000Z`.
pub fn iso_ms(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// 32 hex digits of two FNV-1a hashes.
fn hash_hex(text: &str) -> String {
    let h = |seed: u64| {
        text.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    format!(
        "{:016x}{:016x}",
        h(0xcbf2_9ce4_8422_2325),
        h(0x6c62_272e_07bb_0142)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(group_by: &[&str], secs: u64, missing: Option<&str>) -> Suppression {
        SuppressionSpec {
            group_by: group_by.iter().map(|s| s.to_string()).collect(),
            duration: Some(DurationSpec {
                value: secs,
                unit: "s".into(),
            }),
            missing_fields_strategy: missing.map(str::to_owned),
        }
        .compile(None)
        .unwrap()
    }

    fn alert_with(fields: &Value) -> Value {
        json!({"kibana": {"alert": fields}})
    }

    /// Admits and, for a new group, keeps its alert; returns the admission.
    fn admit(s: &mut Suppressor, ev: &Value, t: i64, closed: &mut Vec<Value>) -> Admission {
        let a = s.admit(ev, t, closed);
        if let Admission::Open(f) = &a {
            s.opened(ev, alert_with(f));
        }
        a
    }

    #[test]
    fn groups_by_values_count_within_the_window_and_close_after_it() {
        let mut s = Suppressor::new("r", spec(&["host.name"], 60, None));
        let (a, b) = (
            json!({"host": {"name": "a"}}),
            json!({"host": {"name": "b"}}),
        );
        let mut closed = Vec::new();
        assert!(matches!(
            admit(&mut s, &a, 0, &mut closed),
            Admission::Open(_)
        ));
        assert_eq!(
            admit(&mut s, &a, 10_000, &mut closed),
            Admission::Suppressed
        );
        assert!(matches!(
            admit(&mut s, &b, 20_000, &mut closed),
            Admission::Open(_)
        ));
        assert_eq!(
            admit(&mut s, &a, 59_999, &mut closed),
            Admission::Suppressed
        );
        assert!(closed.is_empty());
        // 60 s after a's first alert: a's window is closed, a new one opens.
        assert!(matches!(
            admit(&mut s, &a, 60_000, &mut closed),
            Admission::Open(_)
        ));
        assert_eq!(closed.len(), 1, "b suppressed nothing: no second document");
        let s1 = &closed[0]["kibana"]["alert"]["suppression"];
        assert_eq!(s1["docs_count"], json!(2));
        assert_eq!(s1["start"], json!("1970-01-01T00:00:00.000Z"));
        assert_eq!(s1["end"], json!("1970-01-01T00:00:59.999Z"));
        assert_eq!(s1["terms"], json!([{"field": "host.name", "value": ["a"]}]));
        assert_eq!(
            s.stats(),
            SuppressionStats {
                suppressed: 2,
                opened: 3,
                evicted: 0,
                open: 2
            }
        );
    }

    #[test]
    fn missing_fields_are_one_group_or_not_suppressed() {
        let none = json!({"x": 1});
        let mut closed = Vec::new();
        let mut s = Suppressor::new("r", spec(&["host.name", "user.name"], 60, None));
        let Admission::Open(f) = admit(&mut s, &none, 0, &mut closed) else {
            panic!("open")
        };
        assert_eq!(
            f["suppression"]["terms"],
            json!([{"field": "host.name", "value": null}, {"field": "user.name", "value": null}])
        );
        assert_eq!(admit(&mut s, &none, 1, &mut closed), Admission::Suppressed);
        let mut s = Suppressor::new("r", spec(&["host.name"], 60, Some("doNotSuppress")));
        assert_eq!(
            admit(&mut s, &none, 0, &mut closed),
            Admission::Unsuppressed
        );
        assert_eq!(
            admit(&mut s, &none, 1, &mut closed),
            Admission::Unsuppressed
        );
    }

    #[test]
    fn a_full_rule_closes_its_oldest_group_early_and_counts_it() {
        let mut s = Suppressor::with_cap("r", spec(&["n"], 3600, None), 2);
        let mut closed = Vec::new();
        for (n, t) in [("a", 0), ("a", 1), ("b", 2), ("c", 3)] {
            admit(&mut s, &json!({"n": n}), t, &mut closed);
        }
        assert_eq!(closed.len(), 1);
        assert_eq!(
            closed[0]["kibana"]["alert"]["suppression"]["docs_count"],
            json!(1)
        );
        assert_eq!(s.stats().evicted, 1);
        assert_eq!(s.stats().open, 2);
        s.close_all(&mut closed);
        assert_eq!(closed.len(), 1, "b and c suppressed nothing");
    }

    #[test]
    fn specs_are_checked() {
        let bad = |group_by: &[&str], unit: &str, missing: Option<&str>| {
            SuppressionSpec {
                group_by: group_by.iter().map(|s| s.to_string()).collect(),
                duration: Some(DurationSpec {
                    value: 5,
                    unit: unit.into(),
                }),
                missing_fields_strategy: missing.map(str::to_owned),
            }
            .compile(None)
            .unwrap_err()
        };
        assert!(bad(&[], "m", None).contains("1 to 3"));
        assert!(bad(&["a", "b", "c", "d"], "m", None).contains("1 to 3"));
        assert!(bad(&["a"], "d", None).contains("not s, m or h"));
        assert!(bad(&["a"], "m", Some("drop")).contains("doNotSuppress"));
        let no_duration = SuppressionSpec {
            group_by: vec!["a".into()],
            duration: None,
            missing_fields_strategy: None,
        };
        assert_eq!(
            no_duration.compile(Some("10m")).unwrap().duration_ms,
            600_000
        );
        assert_eq!(no_duration.compile(None).unwrap().duration_ms, 300_000);
    }
}
