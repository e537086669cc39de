//! Alert documents and the JSON-lines alert writer.
//!
//! An alert is the triggering event plus the rule that fired (see
//! docs/ecs.md):
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

use serde_json::{json, Map, Value};

use crate::rules::{RuleMeta, Threat};

pub use super::template::{AlertTemplate, NativeScratch};
pub use super::writer::AlertWriter;

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

/// The alerts of one completed sequence, shaped like the Kibana detection
/// engine's EQL sequence alerts: first the shell alert, then one
/// building-block alert per event, in sequence order, all sharing
/// `kibana.alert.group.id`.
///
/// * Building block `i`: [`build_alert`] of event `i`, plus
///   `kibana.alert.building_block_type: "default"`,
///   `kibana.alert.group.id`, `kibana.alert.group.index: i` and
///   `kibana.alert.ancestors: [{id: <event.id>, type: "event", depth: 0}]`.
/// * Shell: the fields whose value is the same in every event (Kibana's
///   `objectPairIntersection`), as an alert of the rule, plus
///   `kibana.alert.group.id`, `kibana.alert.ancestors` (every event),
///   `kibana.alert.original_time` (the first event's `@timestamp`) and
///   `@timestamp` set to the last event's (Kibana writes the wall-clock
///   time of the rule run; the last event's time keeps live and replay
///   byte-identical).
///
/// The group id is a hash of the rule id and each event's `event.id` and
/// `@timestamp`: the same sequence gives the same id, live or replayed.
pub fn build_sequence_alerts(events: &[&Value], rule: &RuleMeta) -> Vec<Value> {
    let normalized: Vec<Value> = events.iter().map(|e| normalize(e)).collect();
    let field = |v: &Value, path: &[&str]| -> Value {
        let mut cur = v;
        for p in path {
            match cur.get(p) {
                Some(next) => cur = next,
                None => return Value::Null,
            }
        }
        cur.clone()
    };
    let mut hash_input = String::new();
    hash_input.push_str(&rule.rule_id);
    for e in &normalized {
        hash_input.push('\u{1}');
        hash_input.push_str(&field(e, &["event", "id"]).to_string());
        hash_input.push('\u{1}');
        hash_input.push_str(&field(e, &["@timestamp"]).to_string());
    }
    let group_id = format!(
        "{:016x}{:016x}",
        fnv1a(hash_input.as_bytes(), 0xcbf2_9ce4_8422_2325),
        fnv1a(hash_input.as_bytes(), 0x6c62_272e_07bb_0142)
    );
    let ancestors: Vec<Value> = normalized
        .iter()
        .map(|e| json!({"id": field(e, &["event", "id"]), "type": "event", "depth": 0}))
        .collect();
    let mut out = Vec::with_capacity(events.len() + 1);
    let mut common = normalized
        .first()
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    for e in normalized.iter().skip(1) {
        common = intersect(&common, e).unwrap_or(Value::Object(Map::new()));
    }
    let mut shell = match build_alert(&common, rule) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    set_path(
        &mut shell,
        &["kibana", "alert", "group", "id"],
        json!(group_id),
    );
    set_path(
        &mut shell,
        &["kibana", "alert", "ancestors"],
        Value::Array(ancestors.clone()),
    );
    if let Some(first) = normalized.first() {
        set_path(
            &mut shell,
            &["kibana", "alert", "original_time"],
            field(first, &["@timestamp"]),
        );
    }
    if let Some(last) = normalized.last() {
        shell.insert("@timestamp".into(), field(last, &["@timestamp"]));
    }
    out.push(Value::Object(shell));
    for (i, e) in normalized.iter().enumerate() {
        let mut block = match build_alert(e, rule) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        set_path(
            &mut block,
            &["kibana", "alert", "building_block_type"],
            json!("default"),
        );
        set_path(
            &mut block,
            &["kibana", "alert", "group", "id"],
            json!(group_id),
        );
        set_path(&mut block, &["kibana", "alert", "group", "index"], json!(i));
        set_path(
            &mut block,
            &["kibana", "alert", "ancestors"],
            Value::Array(vec![ancestors[i].clone()]),
        );
        out.push(Value::Object(block));
    }
    out
}

/// The values equal in `a` and `b`: objects intersect key by key, other
/// values must be equal; `None` when nothing is common.
fn intersect(a: &Value, b: &Value) -> Option<Value> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut m = Map::new();
            for (k, va) in x {
                if let Some(vb) = y.get(k) {
                    if let Some(v) = intersect(va, vb) {
                        m.insert(k.clone(), v);
                    }
                }
            }
            (!m.is_empty()).then_some(Value::Object(m))
        }
        (x, y) if x == y => Some(x.clone()),
        _ => None,
    }
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut h = seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::{self, Write};

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

    #[test]
    fn writer_uses_the_template_of_the_rule_it_is_given() {
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

    #[derive(serde::Serialize)]
    struct Inner {
        #[serde(rename = "type")]
        kind: &'static str,
        z: f32,
        a: Option<u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
    }

    #[derive(serde::Serialize)]
    enum Mode {
        Plain,
        Wrapped(u32),
    }

    #[derive(serde::Serialize)]
    struct Sample {
        #[serde(rename = "@timestamp")]
        timestamp: String,
        event: Option<std::collections::BTreeMap<String, Value>>,
        zed: Vec<Inner>,
        mode: Mode,
        wrapped: Mode,
        pair: (i64, bool),
        map: HashMap<String, i32>,
        escaped: String,
        threat: Option<String>,
    }

    fn sample(event: Option<Value>, threat: Option<&str>) -> Sample {
        Sample {
            timestamp: "2026-11-26T00:00:00Z".into(),
            event: event.map(|v| serde_json::from_value(v).unwrap()),
            zed: vec![
                Inner {
                    kind: "t",
                    z: 0.1,
                    a: None,
                    skipped: None,
                },
                Inner {
                    kind: "u",
                    z: -2.5,
                    a: Some(7),
                    skipped: Some(1),
                },
            ],
            mode: Mode::Plain,
            wrapped: Mode::Wrapped(3),
            pair: (-9, true),
            map: [
                ("b".to_owned(), 2),
                ("a".to_owned(), 1),
                ("é".to_owned(), 3),
            ]
            .into(),
            escaped: "quote \" nl \n \u{1} \u{2028}".into(),
            threat: threat.map(str::to_owned),
        }
    }

    #[test]
    fn native_rendering_is_byte_identical_to_the_value_path() {
        let cases = [
            sample(
                Some(json!({"kind": "event", "action": "exec", "type": ["start"]})),
                None,
            ),
            sample(Some(json!({"action": "exec"})), Some("x")),
            sample(None, None),
        ];
        for rule in rules() {
            let template = AlertTemplate::new(&rule);
            for case in &cases {
                let value = serde_json::to_value(case).unwrap();
                let (mut out, mut scratch) = (Vec::new(), NativeScratch::default());
                template
                    .render_native(case, &mut out, &mut scratch)
                    .unwrap();
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    String::from_utf8(slow(&value, &rule)).unwrap()
                );
            }
        }
    }

    #[test]
    fn native_rendering_refuses_what_the_splice_cannot_take() {
        #[derive(serde::Serialize)]
        struct Dotted {
            #[serde(rename = "process.name")]
            name: &'static str,
        }
        #[derive(serde::Serialize)]
        struct Kibana {
            kibana: u8,
        }
        let template = AlertTemplate::new(&rules()[0]);
        let (mut out, mut scratch) = (Vec::new(), NativeScratch::default());
        assert!(template
            .render_native(&Dotted { name: "sh" }, &mut out, &mut scratch)
            .is_err());
        assert!(template
            .render_native(&Kibana { kibana: 1 }, &mut out, &mut scratch)
            .is_err());
        assert!(template
            .render_native(&[1, 2], &mut out, &mut scratch)
            .is_err());
    }

    #[test]
    fn live_events_render_natively_and_identically() {
        use crate::ecs::ContainerFields;
        let mut ev = crate::ecs::document::sample_exec_event(
            7,
            vec!["sh".into(), "-c".into(), "id; echo \"é\"".into()],
        );
        ev.container = Some(ContainerFields {
            id: "c".repeat(64),
            runtime: Some("containerd"),
            ..ContainerFields::default()
        });
        for rule in rules() {
            let template = AlertTemplate::new(&rule);
            let (mut out, mut scratch) = (Vec::new(), NativeScratch::default());
            template.render_native(&ev, &mut out, &mut scratch).unwrap();
            assert_eq!(out, slow(ev.to_json(), &rule));
            let buf = Shared::default();
            let mut w = AlertWriter::new(Box::new(buf.clone()));
            w.write_alert_native(&ev, &rule).unwrap();
            w.flush().unwrap();
            out.push(b'\n');
            assert_eq!(*buf.0.lock().unwrap(), out);
        }
    }
}
