//! Alert documents and the JSON-lines alert writer.
//!
//! An alert is the triggering event plus the rule that fired (see
//! `shared/docs/ecs-fields.md`, "Alert documents"):
//!
//! - the event's fields, normalised to nested objects (`{"process.name": x}`
//!   becomes `{"process": {"name": x}}`; where a dotted key collides with a
//!   non-object value the dotted key is kept as is, and where both spellings
//!   hold values for the same field the values are merged into an array, so
//!   nothing is lost), `event.id` included;
//! - `event.kind: "alert"`;
//! - `kibana.alert.rule.rule_id`, `kibana.alert.rule.name`,
//!   `kibana.alert.severity`, `kibana.alert.risk_score`;
//! - the rule's MITRE ATT&CK mapping twice, because one shape cannot serve
//!   both readers: `kibana.alert.rule.threat` is the rule's `[[rule.threat]]`
//!   list verbatim (framework, tactic {id, name, reference}, technique [{id,
//!   name, reference, subtechnique [...]}]) — the shape Kibana stores and the
//!   only one that keeps which technique belongs to which tactic — and the
//!   ECS `threat.*` fields, flattened to arrays of distinct values
//!   (`threat.framework`, `threat.tactic.id`/`name`/`reference`,
//!   `threat.technique.id`/`name`/`reference`,
//!   `threat.technique.subtechnique.id`/`name`/`reference`) for ECS queries
//!   such as `threat.tactic.id : "TA0003"`.
//!
//! Output is deterministic: `serde_json` objects are ordered maps, so the
//! same event and rule always serialise to the same bytes. The live sensor
//! converts its native event to `serde_json::Value` and calls the same
//! [`build_alert`] and [`AlertWriter`], so replaying a live event line gives
//! byte-identical alerts.

use std::collections::HashMap;
use std::io::{self, Write};

use serde_json::{json, Map, Value};

use crate::output::JsonLines;
use crate::rules::{RuleMeta, Threat};

/// Builds the alert document for `event` matched by `rule`.
pub fn build_alert(event: &Value, rule: &RuleMeta) -> Value {
    let mut doc = match normalize(event) {
        Value::Object(m) => m,
        // Not an object: keep it visible rather than dropping it.
        other => {
            let mut m = Map::new();
            m.insert("event".into(), json!({ "original": other.to_string() }));
            m
        }
    };
    set_path(&mut doc, &["event", "kind"], json!("alert"));
    set_path(
        &mut doc,
        &["kibana", "alert", "rule", "rule_id"],
        json!(rule.rule_id),
    );
    set_path(
        &mut doc,
        &["kibana", "alert", "rule", "name"],
        json!(rule.name),
    );
    set_path(
        &mut doc,
        &["kibana", "alert", "rule", "threat"],
        serde_json::to_value(&rule.threat).unwrap_or(Value::Array(Vec::new())),
    );
    set_path(
        &mut doc,
        &["kibana", "alert", "severity"],
        json!(rule.severity),
    );
    set_path(
        &mut doc,
        &["kibana", "alert", "risk_score"],
        json!(rule.risk_score),
    );
    if !rule.threat.is_empty() {
        doc.insert("threat".into(), ecs_threat(&rule.threat));
    }
    Value::Object(doc)
}

fn push_distinct(v: &mut Vec<Value>, s: &str) {
    if !v.iter().any(|x| x.as_str() == Some(s)) {
        v.push(Value::String(s.to_string()));
    }
}

/// ECS `threat.*`: arrays of distinct values, in rule order.
fn ecs_threat(threat: &[Threat]) -> Value {
    let mut framework = Vec::new();
    let (mut ta_id, mut ta_name, mut ta_ref) = (Vec::new(), Vec::new(), Vec::new());
    let (mut te_id, mut te_name, mut te_ref) = (Vec::new(), Vec::new(), Vec::new());
    let (mut st_id, mut st_name, mut st_ref) = (Vec::new(), Vec::new(), Vec::new());
    for t in threat {
        push_distinct(&mut framework, &t.framework);
        push_distinct(&mut ta_id, &t.tactic.id);
        push_distinct(&mut ta_name, &t.tactic.name);
        push_distinct(&mut ta_ref, &t.tactic.reference);
        for te in &t.technique {
            push_distinct(&mut te_id, &te.id);
            push_distinct(&mut te_name, &te.name);
            push_distinct(&mut te_ref, &te.reference);
            for st in &te.subtechnique {
                push_distinct(&mut st_id, &st.id);
                push_distinct(&mut st_name, &st.name);
                push_distinct(&mut st_ref, &st.reference);
            }
        }
    }
    let framework = if framework.len() == 1 {
        framework.pop().unwrap_or(Value::Null)
    } else {
        Value::Array(framework)
    };
    let mut technique = json!({ "id": te_id, "name": te_name, "reference": te_ref });
    if !st_id.is_empty() {
        if let Value::Object(m) = &mut technique {
            m.insert(
                "subtechnique".into(),
                json!({ "id": st_id, "name": st_name, "reference": st_ref }),
            );
        }
    }
    json!({
        "framework": framework,
        "tactic": { "id": ta_id, "name": ta_name, "reference": ta_ref },
        "technique": technique,
    })
}

fn set_path(doc: &mut Map<String, Value>, path: &[&str], v: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = doc;
    for p in parents {
        let slot = cur
            .entry((*p).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(next) = slot else { return };
        cur = next;
    }
    cur.insert((*last).to_string(), v);
}

/// Expands dotted keys into nested objects, recursively (see module docs).
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, child) in m {
                insert_dotted(&mut out, k, normalize(child));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn insert_dotted(map: &mut Map<String, Value>, key: &str, v: Value) {
    if let Some((head, rest)) = key.split_once('.') {
        if !head.is_empty() && !rest.is_empty() {
            let slot = map
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(child) = slot {
                insert_dotted(child, rest, v);
                return;
            }
            // `head` already holds a non-object value: keep the dotted key.
        }
    }
    merge(map, key, v);
}

fn merge(map: &mut Map<String, Value>, key: &str, v: Value) {
    match map.get_mut(key) {
        None => {
            map.insert(key.to_string(), v);
        }
        Some(Value::Object(existing)) if v.is_object() => {
            if let Value::Object(new) = v {
                for (k, child) in new {
                    insert_dotted(existing, &k, child);
                }
            }
        }
        Some(existing) => {
            let mut items = match existing.take() {
                Value::Array(a) => a,
                x => vec![x],
            };
            match v {
                Value::Array(a) => items.extend(a),
                x => items.push(x),
            }
            *existing = Value::Array(items);
        }
    }
}

/// What an alert adds to its event for one rule, rendered once: the
/// `kibana` object and the ECS `threat` object as JSON text, spliced into
/// the event's own JSON as it is written. The result is byte-identical to
/// serialising [`build_alert`] (same keys, same order, same escaping); the
/// rule's metadata is not re-serialised, and the event is not copied or
/// normalised, for every alert.
#[derive(Debug, Clone)]
pub struct AlertTemplate {
    /// The fields of the rule the rendering depends on (to check a cached
    /// template still fits the rule it is used for).
    rule_id: String,
    name: String,
    severity: String,
    risk_score: i64,
    threat: Vec<Threat>,
    /// `kibana` value, JSON.
    kibana_json: String,
    /// ECS `threat` value, JSON, when the rule maps any technique.
    threat_json: Option<String>,
}

impl AlertTemplate {
    pub fn new(rule: &RuleMeta) -> AlertTemplate {
        // The static parts are what `build_alert` adds to an empty event:
        // the same code decides them, once.
        let skeleton = build_alert(&Value::Object(Map::new()), rule);
        let json = |key: &str| {
            skeleton
                .get(key)
                .map(|v| serde_json::to_string(v).unwrap_or_default())
        };
        AlertTemplate {
            rule_id: rule.rule_id.clone(),
            name: rule.name.clone(),
            severity: rule.severity.clone(),
            risk_score: rule.risk_score,
            threat: rule.threat.clone(),
            kibana_json: json("kibana").unwrap_or_else(|| "{}".to_owned()),
            threat_json: json("threat"),
        }
    }

    /// Whether this template renders alerts of `rule`.
    pub fn fits(&self, rule: &RuleMeta) -> bool {
        self.rule_id == rule.rule_id
            && self.name == rule.name
            && self.severity == rule.severity
            && self.risk_score == rule.risk_score
            && self.threat == rule.threat
    }

    /// Appends the alert document for `event` (no newline): the same bytes
    /// as `serde_json::to_writer(out, &build_alert(event, rule))`.
    pub fn render(
        &self,
        event: &Value,
        rule: &RuleMeta,
        out: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        match event {
            Value::Object(map) if !map.contains_key("kibana") && is_plain(event) => {
                self.splice(map, out)
            }
            // Dotted keys to normalise, a `kibana` object to merge into,
            // not an object at all: the general path.
            _ => serde_json::to_writer(out, &build_alert(event, rule)),
        }
    }

    /// `event` with `event.kind`, `kibana` and (when the rule maps threats)
    /// `threat` set, keys in order. `event` holds no dotted key, its keys
    /// are in order and it has no `kibana` key.
    fn splice(&self, event: &Map<String, Value>, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let mut extra: Vec<(&str, Extra<'_>)> = Vec::with_capacity(3);
        match event.get("event") {
            Some(Value::Object(inner)) => extra.push(("event", Extra::EventObject(inner))),
            _ => extra.push(("event", Extra::Raw("{\"kind\":\"alert\"}"))),
        }
        extra.push(("kibana", Extra::Raw(&self.kibana_json)));
        if let Some(threat) = &self.threat_json {
            extra.push(("threat", Extra::Raw(threat)));
        }
        out.push(b'{');
        let mut first = true;
        let mut extra = extra.into_iter().peekable();
        let mut keys = event.iter().peekable();
        loop {
            let take_extra = match (keys.peek(), extra.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((k, _)), Some((x, _))) => k.as_str() >= *x,
            };
            if !first {
                out.push(b',');
            }
            first = false;
            if take_extra {
                let Some((key, value)) = extra.next() else {
                    break;
                };
                // The extra replaces the event's own value under that key.
                if keys.peek().is_some_and(|(k, _)| k.as_str() == key) {
                    keys.next();
                }
                write_key(out, key)?;
                match value {
                    Extra::Raw(json) => out.extend_from_slice(json.as_bytes()),
                    Extra::EventObject(inner) => write_event_object(inner, out)?,
                }
            } else {
                let Some((key, value)) = keys.next() else {
                    break;
                };
                write_key(out, key)?;
                serde_json::to_writer(&mut *out, value)?;
            }
        }
        out.push(b'}');
        Ok(())
    }
}

enum Extra<'a> {
    Raw(&'a str),
    /// The event's `event` object, written with `kind: "alert"`.
    EventObject(&'a Map<String, Value>),
}

fn write_key(out: &mut Vec<u8>, key: &str) -> serde_json::Result<()> {
    serde_json::to_writer(&mut *out, key)?;
    out.push(b':');
    Ok(())
}

/// The `event` object with `kind` set to `"alert"`, keys in order.
fn write_event_object(inner: &Map<String, Value>, out: &mut Vec<u8>) -> serde_json::Result<()> {
    out.push(b'{');
    let mut kind_done = false;
    let mut first = true;
    let kind = |out: &mut Vec<u8>, first: &mut bool| {
        if !*first {
            out.push(b',');
        }
        *first = false;
        out.extend_from_slice(b"\"kind\":\"alert\"");
    };
    for (key, value) in inner {
        if !kind_done && key.as_str() >= "kind" {
            kind(out, &mut first);
            kind_done = true;
            if key == "kind" {
                continue;
            }
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_key(out, key)?;
        serde_json::to_writer(&mut *out, value)?;
    }
    if !kind_done {
        kind(out, &mut first);
    }
    out.push(b'}');
    Ok(())
}

/// No dotted key anywhere (normalising would change nothing) and every
/// object's keys in sorted order (what the splice relies on).
fn is_plain(v: &Value) -> bool {
    match v {
        Value::Object(m) => {
            let mut prev: Option<&str> = None;
            m.iter().all(|(k, child)| {
                let ordered = prev.is_none_or(|p| p < k.as_str());
                prev = Some(k);
                ordered && !dotted(k) && is_plain(child)
            })
        }
        Value::Array(items) => items.iter().all(is_plain),
        _ => true,
    }
}

/// Whether `normalize` would split this key (`a.b`, both sides non-empty).
fn dotted(k: &str) -> bool {
    k.split_once('.')
        .is_some_and(|(head, rest)| !head.is_empty() && !rest.is_empty())
}

/// The alerts output: the shared JSON-lines writer, so the live sensor and
/// `replay` write alerts through the same code, with each rule's static
/// part rendered once.
pub struct AlertWriter {
    lines: JsonLines,
    templates: HashMap<String, AlertTemplate>,
    doc: Vec<u8>,
}

impl std::fmt::Debug for AlertWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertWriter")
            .field("lines", &self.lines)
            .field("templates", &self.templates.len())
            .finish_non_exhaustive()
    }
}

impl AlertWriter {
    pub fn new(out: Box<dyn Write + Send>) -> AlertWriter {
        AlertWriter {
            lines: JsonLines::new(out),
            templates: HashMap::new(),
            doc: Vec::with_capacity(8192),
        }
    }

    /// Builds and writes the alert for `event` matched by `rule`.
    pub fn write_alert(&mut self, event: &Value, rule: &RuleMeta) -> io::Result<()> {
        let template = match self.templates.get(&rule.rule_id) {
            Some(t) if t.fits(rule) => t,
            _ => {
                self.templates
                    .insert(rule.rule_id.clone(), AlertTemplate::new(rule));
                self.templates
                    .get(&rule.rule_id)
                    .ok_or_else(|| io::Error::other("alert template cache"))?
            }
        };
        self.doc.clear();
        if let Err(e) = template.render(event, rule, &mut self.doc) {
            return self.lines.write_raw_failed(io::Error::other(e));
        }
        self.lines.write_raw(&self.doc)
    }

    /// Flushes the output (a failure is counted).
    pub fn flush(&mut self) -> io::Result<()> {
        self.lines.flush()
    }

    /// Alerts written successfully.
    pub fn written(&self) -> u64 {
        self.lines.written()
    }

    /// Failed writes and flushes.
    pub fn errors(&self) -> u64 {
        self.lines.errors()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn normalize_expands_and_merges() {
        let v = json!({"a.b": 1, "a": {"c": 2}, "x": 1, "x.y": 2, "p.q": [ {"r.s": 3} ], "d": {"e": 1}, "d.e": 2});
        assert_eq!(
            normalize(&v),
            json!({"a": {"b": 1, "c": 2}, "x": 1, "x.y": 2, "p": {"q": [{"r": {"s": 3}}]}, "d": {"e": [1, 2]}})
        );
    }

    fn rules() -> Vec<RuleMeta> {
        let set = crate::rules::RuleSet::embedded_default().unwrap();
        let with_threat = set.rules()[0].meta.clone();
        let mut without = with_threat.clone();
        without.threat.clear();
        without.rule_id = "no-threat".into();
        let mut escaped = with_threat.clone();
        escaped.name = "quote \" backslash \\ tab \t é \u{1}".into();
        escaped.rule_id = "escaped".into();
        vec![with_threat, without, escaped]
    }

    fn slow(event: &Value, rule: &RuleMeta) -> Vec<u8> {
        serde_json::to_vec(&build_alert(event, rule)).unwrap()
    }

    fn fast(event: &Value, rule: &RuleMeta) -> Vec<u8> {
        let mut out = Vec::new();
        AlertTemplate::new(rule)
            .render(event, rule, &mut out)
            .unwrap();
        out
    }

    #[test]
    fn template_is_byte_identical_to_build_alert() {
        let events = [
            json!({}),
            json!({"event": {"kind": "event", "action": "exec", "type": ["start"]}, "process": {"name": "sh"}}),
            json!({"event": {"action": "exec"}}),
            json!({"event": {"zzz": 1}}),
            json!({"event": {"kind": "x"}}),
            json!({"event": {"ingested": "t", "kind": "event", "kinder": 2, "kin": 1}}),
            json!({"event": "not an object", "a": 1}),
            json!({"event": null}),
            json!({"@timestamp": "t", "a": 1, "kib": 2, "kibanaa": 3, "thr": 4, "threat": {"x": 1}, "threats": 5, "user": {"id": "0"}}),
            json!({"kibana": {"alert": {"custom": true}}, "event": {"kind": "event"}}),
            json!({"process.name": "sh", "event": {"kind": "event"}}),
            json!({"process": {"parent.name": "nginx"}}),
            json!({"a.": 1, ".b": 2, "c": [{"d.e": 1}]}),
            json!({"weird \" key \n": "v\u{7f}\u{2028}", "é": ["ü", 1.5, -3, null, true]}),
            json!([1, 2]),
            json!("just a string"),
        ];
        for rule in rules() {
            for event in &events {
                assert_eq!(
                    String::from_utf8(fast(event, &rule)).unwrap(),
                    String::from_utf8(slow(event, &rule)).unwrap(),
                    "{event}"
                );
            }
        }
    }

    #[test]
    fn template_matches_build_alert_over_the_golden_corpus() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/seed_rule_corpus.jsonl"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let rules = rules();
        let mut n = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let case: Value = serde_json::from_str(line).unwrap();
            for rule in &rules {
                assert_eq!(
                    fast(&case["event"], rule),
                    slow(&case["event"], rule),
                    "{line}"
                );
            }
            n += 1;
        }
        assert!(n >= 300);
    }

    #[test]
    fn writer_uses_the_template_of_the_rule_it_is_given() {
        #[derive(Clone, Default)]
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let buf = Shared::default();
        let mut w = AlertWriter::new(Box::new(buf.clone()));
        let event = json!({"event": {"kind": "event"}, "process": {"name": "sh"}});
        let mut expected = Vec::new();
        let mut rules = rules();
        // Same rule_id, different metadata: the cached template is rebuilt.
        let mut renamed = rules[0].clone();
        renamed.name = "renamed".into();
        rules.push(renamed);
        for rule in rules.iter().chain(rules.iter()) {
            w.write_alert(&event, rule).unwrap();
            expected.extend(slow(&event, rule));
            expected.push(b'\n');
        }
        w.flush().unwrap();
        assert_eq!(*buf.0.lock().unwrap(), expected);
        assert_eq!((w.written(), w.errors()), (8, 0));
    }
}
