//! The fast path of the one alert renderer: [`AlertTemplate`] renders a
//! rule's static part (what [`build_alert`] adds to an empty event) once and
//! splices it into each event's JSON, giving the bytes of serialising
//! [`build_alert`]'s document without building it. [`build_alert`] stays the
//! definition; the template is proven byte-identical to it (tests in
//! `output::alert`, and the golden corpus).

use serde_json::{Map, Value};

use super::alert::build_alert;
use super::sorted_json as sorted;
use crate::rules::{RuleMeta, Threat};

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
                let fields: Vec<(&str, Piece<'_>)> = map
                    .iter()
                    .map(|(k, v)| (k.as_str(), Piece::Value(v)))
                    .collect();
                let event = match map.get("event") {
                    Some(Value::Object(inner)) => Some(Extra::EventObject(inner)),
                    _ => None,
                };
                self.splice(&fields, event, out)
            }
            // Dotted keys to normalise, a `kibana` object to merge into,
            // not an object at all: the general path.
            _ => serde_json::to_writer(out, &build_alert(event, rule)),
        }
    }

    /// Like [`render`](Self::render) for the event as
    /// `serde_json::to_value(event)` would give it, without building that
    /// `Value`: the event is serialised straight to JSON with sorted keys.
    /// `Err` when the event has a shape the splice does not take (dotted
    /// keys, a `kibana` field, not an object): the caller then renders
    /// from its `Value`.
    pub fn render_native<T: serde::Serialize + ?Sized>(
        &self,
        event: &T,
        out: &mut Vec<u8>,
        scratch: &mut NativeScratch,
    ) -> serde_json::Result<()> {
        scratch.buf.clear();
        let fields = sorted::fields(event, &mut scratch.buf, &mut scratch.pool)?;
        let scratch = &scratch.buf;
        if fields.iter().any(|(k, _)| k == "kibana") {
            return Err(<serde_json::Error as serde::ser::Error>::custom(
                "kibana field",
            ));
        }
        let pieces: Vec<(&str, Piece<'_>)> = fields
            .iter()
            .map(|(k, r)| (k.as_ref(), Piece::Json(&scratch[r.clone()])))
            .collect();
        // The `event` object was written with its `kind` set already.
        let event = pieces.iter().find_map(|(k, p)| match p {
            Piece::Json(json) if *k == "event" && json.first() == Some(&b'{') => {
                Some(Extra::Json(json))
            }
            _ => None,
        });
        self.splice(&pieces, event, out)
    }

    /// The event's fields (`fields`, sorted, no `kibana`, no dotted key)
    /// with `event.kind`, `kibana` and (when the rule maps threats)
    /// `threat` set. `event`: the alert's `event` object when the event has
    /// one (else it is `{"kind":"alert"}`).
    fn splice(
        &self,
        fields: &[(&str, Piece<'_>)],
        event: Option<Extra<'_>>,
        out: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        let mut extra: Vec<(&str, Extra<'_>)> = Vec::with_capacity(3);
        extra.push(("event", event.unwrap_or(Extra::Raw("{\"kind\":\"alert\"}"))));
        extra.push(("kibana", Extra::Raw(&self.kibana_json)));
        if let Some(threat) = &self.threat_json {
            extra.push(("threat", Extra::Raw(threat)));
        }
        out.push(b'{');
        let mut first = true;
        let mut extra = extra.into_iter().peekable();
        let mut keys = fields.iter().peekable();
        loop {
            let take_extra = match (keys.peek(), extra.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((k, _)), Some((x, _))) => k >= x,
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
                if keys.peek().is_some_and(|(k, _)| *k == key) {
                    keys.next();
                }
                write_key(out, key)?;
                match value {
                    Extra::Raw(json) => out.extend_from_slice(json.as_bytes()),
                    Extra::Json(json) => out.extend_from_slice(json),
                    Extra::EventObject(inner) => write_event_object(inner, out)?,
                }
            } else {
                let Some((key, value)) = keys.next() else {
                    break;
                };
                write_key(out, key)?;
                match value {
                    Piece::Value(v) => serde_json::to_writer(&mut *out, v)?,
                    Piece::Json(json) => out.extend_from_slice(json),
                }
            }
        }
        out.push(b'}');
        Ok(())
    }
}

/// Buffers [`AlertTemplate::render_native`] reuses from one event to the
/// next.
#[derive(Debug, Default)]
pub struct NativeScratch {
    buf: Vec<u8>,
    pool: sorted::Pool,
}

/// One field of the event: a `Value`, or its JSON already written.
enum Piece<'a> {
    Value(&'a Value),
    Json(&'a [u8]),
}

enum Extra<'a> {
    Raw(&'a str),
    Json(&'a [u8]),
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
