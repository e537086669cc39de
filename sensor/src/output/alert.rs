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

use std::io;

use serde_json::{json, Map, Value};

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

/// The alerts output: the shared JSON-lines writer, so the live sensor and
/// `replay` write alerts through the same code.
pub use crate::output::jsonl::JsonLines as AlertWriter;

impl AlertWriter {
    /// Builds and writes the alert for `event` matched by `rule`.
    pub fn write_alert(&mut self, event: &Value, rule: &RuleMeta) -> io::Result<()> {
        self.write(&build_alert(event, rule))
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
}
