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

use std::collections::HashMap;
use std::io::{self, Write};

use serde_json::{json, Map, Value};

use crate::ecs::EcsEvent;
use crate::output::jsonl::JsonLines;
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

/// A `serde` serializer that writes compact JSON with every object's keys
/// in sorted order: the bytes `serde_json::to_value` followed by
/// `serde_json::to_writer` would give, without building the `Value` tree
/// (a map node per object and a `String` per string). It refuses (errors
/// out on) what the alert splice cannot take as is — dotted keys, the same
/// key twice, non-string map keys — and the caller then takes the general
/// path.
mod sorted {
    use std::borrow::Cow;
    use std::ops::Range;

    use serde::ser::{self, Serialize};
    use serde_json::Error;

    fn refuse(why: &str) -> Error {
        <Error as ser::Error>::custom(why)
    }

    pub type Fields = Vec<(Cow<'static, str>, Range<usize>)>;

    /// Buffers kept from one event to the next (no allocation per object
    /// once warm).
    #[derive(Debug, Default)]
    pub struct Pool {
        bufs: Vec<Vec<u8>>,
        fields: Vec<Fields>,
    }

    /// Serialises `value`, which must be a struct or map, and returns its
    /// fields, sorted: (key, byte range of the value's JSON in `buf`).
    pub fn fields<T: Serialize + ?Sized>(
        value: &T,
        buf: &mut Vec<u8>,
        pool: &mut Pool,
    ) -> Result<Fields, Error> {
        let mut fields = Fields::new();
        value.serialize(TopLevel {
            buf,
            fields: &mut fields,
            key: None,
            pool,
        })?;
        sort_fields(&mut fields)?;
        Ok(fields)
    }

    fn dotted(k: &str) -> bool {
        k.split_once('.')
            .is_some_and(|(head, rest)| !head.is_empty() && !rest.is_empty())
    }

    fn push_field<T: Serialize + ?Sized>(
        buf: &mut Vec<u8>,
        fields: &mut Fields,
        key: Cow<'static, str>,
        value: &T,
        top_level: bool,
        pool: &mut Pool,
    ) -> Result<(), Error> {
        if dotted(&key) {
            return Err(refuse("dotted key"));
        }
        let alert_kind = top_level && key == "event";
        let start = buf.len();
        // The `event` object gets `kind: "alert"` as it is written.
        value.serialize(Writer(buf, alert_kind, pool))?;
        fields.push((key, start..buf.len()));
        Ok(())
    }

    fn sort_fields(fields: &mut Fields) -> Result<(), Error> {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        if fields.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(refuse("duplicate key"));
        }
        Ok(())
    }

    /// Writes one value; `.1`: an object written gets `kind: "alert"`.
    struct Writer<'o>(&'o mut Vec<u8>, bool, &'o mut Pool);

    /// An object: its fields written into a scratch buffer, then sorted
    /// into `out`.
    struct Nested<'o> {
        out: &'o mut Vec<u8>,
        pool: &'o mut Pool,
        scratch: Vec<u8>,
        fields: Fields,
        key: Option<String>,
        /// `{"variant":` written before, `}` after (struct variants).
        variant: bool,
        /// Set `kind` to `"alert"` (the alert's `event` object).
        alert_kind: bool,
    }

    impl<'o> Nested<'o> {
        fn new(
            out: &'o mut Vec<u8>,
            pool: &'o mut Pool,
            variant: bool,
            alert_kind: bool,
        ) -> Nested<'o> {
            let scratch = pool.bufs.pop().unwrap_or_default();
            let fields = pool.fields.pop().unwrap_or_default();
            Nested {
                out,
                pool,
                scratch,
                fields,
                key: None,
                variant,
                alert_kind,
            }
        }

        fn field<T: Serialize + ?Sized>(
            &mut self,
            key: Cow<'static, str>,
            value: &T,
        ) -> Result<(), Error> {
            push_field(
                &mut self.scratch,
                &mut self.fields,
                key,
                value,
                false,
                self.pool,
            )
        }

        fn finish(mut self) -> Result<(), Error> {
            if self.alert_kind {
                self.fields.retain(|(k, _)| k != "kind");
                let start = self.scratch.len();
                self.scratch.extend_from_slice(b"\"alert\"");
                self.fields.push(("kind".into(), start..self.scratch.len()));
            }
            sort_fields(&mut self.fields)?;
            self.out.push(b'{');
            for (i, (k, r)) in self.fields.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                serde_json::to_writer(&mut *self.out, k.as_ref())?;
                self.out.push(b':');
                self.out.extend_from_slice(&self.scratch[r.clone()]);
            }
            self.out.push(b'}');
            if self.variant {
                self.out.push(b'}');
            }
            let (mut scratch, mut fields) = (self.scratch, self.fields);
            scratch.clear();
            fields.clear();
            self.pool.bufs.push(scratch);
            self.pool.fields.push(fields);
            Ok(())
        }
    }

    /// A sequence: elements written one after the other.
    struct Seq<'o> {
        out: &'o mut Vec<u8>,
        pool: &'o mut Pool,
        first: bool,
        variant: bool,
    }

    impl Seq<'_> {
        fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
            if !self.first {
                self.out.push(b',');
            }
            self.first = false;
            v.serialize(Writer(self.out, false, self.pool))
        }

        fn finish(self) -> Result<(), Error> {
            self.out.push(b']');
            if self.variant {
                self.out.push(b'}');
            }
            Ok(())
        }
    }

    macro_rules! via_json {
        ($($f:ident: $t:ty),*) => {$(
            fn $f(self, v: $t) -> Result<(), Error> {
                serde_json::to_writer(&mut *self.0, &v)
            }
        )*};
    }

    impl<'o> ser::Serializer for Writer<'o> {
        type Ok = ();
        type Error = Error;
        type SerializeSeq = Seq<'o>;
        type SerializeTuple = Seq<'o>;
        type SerializeTupleStruct = Seq<'o>;
        type SerializeTupleVariant = Seq<'o>;
        type SerializeMap = Nested<'o>;
        type SerializeStruct = Nested<'o>;
        type SerializeStructVariant = Nested<'o>;

        via_json!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16,
            serialize_i32: i32, serialize_i64: i64, serialize_u8: u8, serialize_u16: u16,
            serialize_u32: u32, serialize_u64: u64, serialize_f64: f64, serialize_char: char,
            serialize_str: &str, serialize_bytes: &[u8]);

        fn serialize_i128(self, v: i128) -> Result<(), Error> {
            serde_json::to_writer(&mut *self.0, &serde_json::to_value(v)?)
        }
        fn serialize_u128(self, v: u128) -> Result<(), Error> {
            serde_json::to_writer(&mut *self.0, &serde_json::to_value(v)?)
        }
        fn serialize_f32(self, v: f32) -> Result<(), Error> {
            // As `to_value` does: widened to f64 first.
            serde_json::to_writer(&mut *self.0, &f64::from(v))
        }
        fn serialize_none(self) -> Result<(), Error> {
            self.0.extend_from_slice(b"null");
            Ok(())
        }
        fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
            v.serialize(self)
        }
        fn serialize_unit(self) -> Result<(), Error> {
            self.serialize_none()
        }
        fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
            self.serialize_none()
        }
        fn serialize_unit_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
        ) -> Result<(), Error> {
            self.serialize_str(variant)
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            v: &T,
        ) -> Result<(), Error> {
            v.serialize(self)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
            v: &T,
        ) -> Result<(), Error> {
            let mut obj = Nested::new(self.0, self.2, false, false);
            obj.field(variant.into(), v)?;
            obj.finish()
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'o>, Error> {
            self.0.push(b'[');
            Ok(Seq {
                out: self.0,
                pool: self.2,
                first: true,
                variant: false,
            })
        }
        fn serialize_tuple(self, n: usize) -> Result<Seq<'o>, Error> {
            self.serialize_seq(Some(n))
        }
        fn serialize_tuple_struct(self, _: &'static str, n: usize) -> Result<Seq<'o>, Error> {
            self.serialize_seq(Some(n))
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
            _: usize,
        ) -> Result<Seq<'o>, Error> {
            open_variant(self.0, variant)?;
            self.0.push(b'[');
            Ok(Seq {
                out: self.0,
                pool: self.2,
                first: true,
                variant: true,
            })
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Nested<'o>, Error> {
            Ok(Nested::new(self.0, self.2, false, self.1))
        }
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Nested<'o>, Error> {
            self.serialize_map(None)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
            _: usize,
        ) -> Result<Nested<'o>, Error> {
            open_variant(self.0, variant)?;
            Ok(Nested::new(self.0, self.2, true, false))
        }
    }

    /// `{"variant":` (closed by the variant's sequence or object).
    fn open_variant(out: &mut Vec<u8>, variant: &str) -> Result<(), Error> {
        if dotted(variant) {
            return Err(refuse("dotted key"));
        }
        out.push(b'{');
        serde_json::to_writer(&mut *out, variant)?;
        out.push(b':');
        Ok(())
    }

    macro_rules! seq_impl {
        ($($tr:ident: $f:ident),*) => {$(
            impl ser::$tr for Seq<'_> {
                type Ok = ();
                type Error = Error;
                fn $f<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                    self.element(v)
                }
                fn end(self) -> Result<(), Error> {
                    self.finish()
                }
            }
        )*};
    }
    seq_impl!(SerializeSeq: serialize_element, SerializeTuple: serialize_element,
        SerializeTupleStruct: serialize_field, SerializeTupleVariant: serialize_field);

    /// A map key as the string `to_value` would use.
    fn key_string<T: Serialize + ?Sized>(key: &T) -> Result<String, Error> {
        match serde_json::to_value(key)? {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(refuse("non-string map key")),
        }
    }

    /// Struct-like objects, for the two kinds of objects (`field`, `finish`).
    macro_rules! struct_impl {
        ($($ty:ident: $tr:ident),*) => {$(
            impl ser::$tr for $ty<'_> {
                type Ok = ();
                type Error = Error;
                fn serialize_field<T: Serialize + ?Sized>(
                    &mut self,
                    key: &'static str,
                    v: &T,
                ) -> Result<(), Error> {
                    self.field(key.into(), v)
                }
                fn end(self) -> Result<(), Error> {
                    self.finish()
                }
            }
        )*};
    }
    struct_impl!(Nested: SerializeStruct, Nested: SerializeStructVariant, TopLevel: SerializeStruct);

    /// Maps, for the two kinds of objects.
    macro_rules! map_impl {
        ($($ty:ident),*) => {$(
            impl ser::SerializeMap for $ty<'_> {
                type Ok = ();
                type Error = Error;
                fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
                    self.key = Some(key_string(key)?);
                    Ok(())
                }
                fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                    let key = self.key.take().ok_or_else(|| refuse("value without key"))?;
                    self.field(key.into(), v)
                }
                fn end(self) -> Result<(), Error> {
                    self.finish()
                }
            }
        )*};
    }
    map_impl!(Nested, TopLevel);

    macro_rules! not_an_object {
        ($($f:ident: $t:ty),*) => {$(
            fn $f(self, _: $t) -> Result<(), Error> {
                Err(refuse("not an object"))
            }
        )*};
    }

    /// The top level: a struct or map whose fields are collected, not
    /// emitted (anything else is refused).
    struct TopLevel<'a> {
        buf: &'a mut Vec<u8>,
        fields: &'a mut Fields,
        key: Option<String>,
        pool: &'a mut Pool,
    }

    impl ser::Serializer for TopLevel<'_> {
        type Ok = ();
        type Error = Error;
        type SerializeSeq = ser::Impossible<(), Error>;
        type SerializeTuple = ser::Impossible<(), Error>;
        type SerializeTupleStruct = ser::Impossible<(), Error>;
        type SerializeTupleVariant = ser::Impossible<(), Error>;
        type SerializeMap = Self;
        type SerializeStruct = Self;
        type SerializeStructVariant = ser::Impossible<(), Error>;

        fn serialize_map(self, _: Option<usize>) -> Result<Self, Error> {
            Ok(self)
        }
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Error> {
            Ok(self)
        }
        fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
            v.serialize(self)
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            v: &T,
        ) -> Result<(), Error> {
            v.serialize(self)
        }

        not_an_object!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16,
            serialize_i32: i32, serialize_i64: i64, serialize_u8: u8, serialize_u16: u16,
            serialize_u32: u32, serialize_u64: u64, serialize_f32: f32, serialize_f64: f64,
            serialize_char: char, serialize_str: &str, serialize_bytes: &[u8],
            serialize_unit_struct: &'static str);
        fn serialize_none(self) -> Result<(), Error> {
            Err(refuse("not an object"))
        }
        fn serialize_unit(self) -> Result<(), Error> {
            Err(refuse("not an object"))
        }
        fn serialize_unit_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
        ) -> Result<(), Error> {
            Err(refuse("not an object"))
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<(), Error> {
            Err(refuse("not an object"))
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
            Err(refuse("not an object"))
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
            Err(refuse("not an object"))
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, Error> {
            Err(refuse("not an object"))
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Error> {
            Err(refuse("not an object"))
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Error> {
            Err(refuse("not an object"))
        }
    }

    impl TopLevel<'_> {
        fn field<T: Serialize + ?Sized>(
            &mut self,
            key: Cow<'static, str>,
            value: &T,
        ) -> Result<(), Error> {
            push_field(self.buf, self.fields, key, value, true, self.pool)
        }

        fn finish(self) -> Result<(), Error> {
            Ok(())
        }
    }
}

/// The alerts output: the shared JSON-lines writer, so the live sensor and
/// `replay` write alerts through the same code, with each rule's static
/// part rendered once.
pub struct AlertWriter {
    lines: JsonLines,
    templates: HashMap<String, AlertTemplate>,
    doc: Vec<u8>,
    scratch: NativeScratch,
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
        AlertWriter::with_lines(JsonLines::new(out))
    }

    /// Alerts through `lines` (e.g. a [`JsonLines::background`] writer).
    pub fn with_lines(lines: JsonLines) -> AlertWriter {
        AlertWriter {
            lines,
            templates: HashMap::new(),
            doc: Vec::with_capacity(8192),
            scratch: NativeScratch::default(),
        }
    }

    /// Builds and writes the alert for `event` matched by `rule`.
    pub fn write_alert(&mut self, event: &Value, rule: &RuleMeta) -> io::Result<()> {
        self.template(rule)?;
        let template = self
            .templates
            .get(&rule.rule_id)
            .ok_or_else(|| io::Error::other("alert template cache"))?;
        self.doc.clear();
        if let Err(e) = template.render(event, rule, &mut self.doc) {
            return self.lines.write_raw_failed(io::Error::other(e));
        }
        self.lines.write_raw(&self.doc)
    }

    /// Builds and writes the alert for the live sensor's `event` matched by
    /// `rule`: the same bytes as [`write_alert`](Self::write_alert) with
    /// `event.to_json()`, without building that `Value` when the event's
    /// shape allows.
    pub fn write_alert_native(&mut self, event: &EcsEvent, rule: &RuleMeta) -> io::Result<()> {
        self.template(rule)?;
        let template = self
            .templates
            .get(&rule.rule_id)
            .ok_or_else(|| io::Error::other("alert template cache"))?;
        self.doc.clear();
        if template
            .render_native(event, &mut self.doc, &mut self.scratch)
            .is_err()
        {
            self.doc.clear();
            if let Err(e) = template.render(event.to_json(), rule, &mut self.doc) {
                return self.lines.write_raw_failed(io::Error::other(e));
            }
        }
        self.lines.write_raw(&self.doc)
    }

    /// Writes the alerts of one completed sequence (see
    /// [`build_sequence_alerts`]); returns how many lines.
    pub fn write_sequence(&mut self, events: &[&Value], rule: &RuleMeta) -> io::Result<usize> {
        let docs = build_sequence_alerts(events, rule);
        let mut result = Ok(docs.len());
        for d in &docs {
            if let Err(e) = self.lines.write(d) {
                result = Err(e);
            }
        }
        result
    }

    /// Makes sure the cached template of `rule` fits it.
    fn template(&mut self, rule: &RuleMeta) -> io::Result<()> {
        if !self
            .templates
            .get(&rule.rule_id)
            .is_some_and(|t| t.fits(rule))
        {
            self.templates
                .insert(rule.rule_id.clone(), AlertTemplate::new(rule));
        }
        Ok(())
    }

    /// Flushes the output (a failure is counted).
    pub fn flush(&mut self) -> io::Result<()> {
        self.lines.flush()
    }

    /// Flushes and waits until every alert is written (see
    /// [`JsonLines::close`]).
    pub fn close(&mut self) {
        self.lines.close();
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
