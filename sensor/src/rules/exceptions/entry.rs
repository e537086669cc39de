//! One exception entry, compiled, and how it matches an event: the
//! semantics of the Elasticsearch query Kibana builds from it (Kibana's
//! `build_exception_filter`, read for its behaviour):
//!
//! | type | `included` (is / is one of / matches / exists / is in list) |
//! | --- | --- |
//! | `match` | some value of the field is exactly `value` (a `match_phrase` on a keyword: case-sensitive, whole value) |
//! | `match_any` | some value of the field is exactly one of `value` |
//! | `wildcard` | some value matches the pattern: a `wildcard` query without `case_insensitive`, so case-sensitive; `*` any run, `?` one character, `\` escapes the next character |
//! | `exists` | the field has a value (not missing, not null, not `[]`) |
//! | `list` | some value is in the value list (keyword: exact; ip: the same address; ip_range: inside a CIDR block or an `a-b` range) |
//! | `nested` | one object of the array at `field` satisfies every sub-entry (fields relative to it), like a `nested` query |
//!
//! `excluded` is the negation of the whole condition (Kibana wraps the
//! clause in `must_not`): `is not x` also holds when the field is missing.
//! A number or boolean in the event is compared with `value` as the text
//! Elasticsearch would index for a keyword (`42`, `true`), and a number
//! also numerically (`"042"` is 42, as `match_phrase` on a long field).

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::Value as Json;

use super::value_list::ValueList;
use crate::eql::wildcard::WildcardPattern;
use crate::eql::{Document, FieldRef, Value};

/// What an exception is evaluated against: an event, as the rules see it,
/// and as JSON (for `nested` entries, which need its objects).
pub trait Subject: Document {
    /// The event as JSON.
    fn as_json(&self) -> &Json;
}

impl Subject for Json {
    fn as_json(&self) -> &Json {
        self
    }
}

impl Subject for crate::ecs::EcsEvent {
    fn as_json(&self) -> &Json {
        self.to_json()
    }
}

/// A compiled entry.
#[derive(Debug, Clone)]
pub enum Entry {
    /// `match`.
    Match {
        field: FieldRef,
        value: String,
        negate: bool,
    },
    /// `match_any`.
    MatchAny {
        field: FieldRef,
        values: Vec<String>,
        negate: bool,
    },
    /// `wildcard`.
    Wildcard {
        field: FieldRef,
        pattern: WildcardPattern,
        negate: bool,
    },
    /// `exists`.
    Exists { field: FieldRef, negate: bool },
    /// `list`.
    List {
        field: FieldRef,
        list: Arc<ValueList>,
        negate: bool,
    },
    /// `nested`: the array of objects at `path`, and what one of them must
    /// satisfy.
    Nested { path: String, entries: Vec<Entry> },
}

impl Entry {
    /// Whether the event satisfies the entry.
    pub fn matches<S: Subject + ?Sized>(&self, subject: &S) -> bool {
        match self {
            Entry::Nested { path, entries } => {
                let mut objects = Vec::new();
                objects_at(subject.as_json(), path, &mut objects);
                objects
                    .into_iter()
                    .any(|o| entries.iter().all(|e| e.matches(o)))
            }
            Entry::Match {
                field,
                value,
                negate,
            } => negate ^ subject.visit(field, &mut |v| equals(v, value)),
            Entry::MatchAny {
                field,
                values,
                negate,
            } => {
                negate ^ subject.visit(field, &mut |v| values.iter().any(|value| equals(v, value)))
            }
            Entry::Wildcard {
                field,
                pattern,
                negate,
            } => {
                negate
                    ^ subject.visit(field, &mut |v| {
                        as_text(v, &mut String::new()).is_some_and(|t| pattern.is_match(t))
                    })
            }
            Entry::Exists { field, negate } => negate ^ subject.visit(field, &mut |_| true),
            Entry::List {
                field,
                list,
                negate,
            } => {
                negate
                    ^ subject.visit(field, &mut |v| {
                        as_text(v, &mut String::new()).is_some_and(|t| list.contains(t))
                    })
            }
        }
    }
}

/// Whether one value of the event equals an entry's `value`.
fn equals(v: Value<'_>, value: &str) -> bool {
    match v {
        Value::Str(s) => s == value,
        Value::Int(i) => value.trim().parse::<i64>() == Ok(i),
        Value::Float(f) => value.trim().parse::<f64>() == Ok(f),
        Value::Bool(b) => value == if b { "true" } else { "false" },
    }
}

/// The value as the text a keyword field would index.
fn as_text<'a>(v: Value<'a>, buf: &'a mut String) -> Option<&'a str> {
    use std::fmt::Write;
    match v {
        Value::Str(s) => Some(s),
        Value::Int(i) => {
            let _ = write!(buf, "{i}");
            Some(buf)
        }
        Value::Float(f) => {
            let _ = write!(buf, "{f}");
            Some(buf)
        }
        Value::Bool(b) => Some(if b { "true" } else { "false" }),
    }
}

/// Collects the objects at a dotted `path` (nested objects, dotted keys or
/// a mix; arrays of objects give each element).
fn objects_at<'a>(v: &'a Json, path: &str, out: &mut Vec<&'a Json>) {
    match v {
        Json::Array(items) => items.iter().for_each(|i| objects_at(i, path, out)),
        Json::Object(map) => {
            if let Some(found) = map.get(path) {
                push_objects(found, out);
            }
            for (i, _) in path.match_indices('.') {
                let (head, rest) = (&path[..i], &path[i + 1..]);
                if let Some(child) = map.get(head) {
                    objects_at(child, rest, out);
                }
            }
        }
        _ => {}
    }
}

fn push_objects<'a>(v: &'a Json, out: &mut Vec<&'a Json>) {
    match v {
        Json::Object(_) => out.push(v),
        Json::Array(items) => items.iter().for_each(|i| push_objects(i, out)),
        _ => {}
    }
}

/// Whether `text` is an IP address inside `range`: a CIDR block
/// (`10.0.0.0/8`), an `a-b` range, or one address.
pub(super) fn ip_in_range(addr: IpAddr, range: &IpRange) -> bool {
    match (range, addr) {
        (IpRange::Cidr(IpAddr::V4(net), bits), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(*bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(*net) & mask
        }
        (IpRange::Cidr(IpAddr::V6(net), bits), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(*bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(*net) & mask
        }
        (IpRange::Span(IpAddr::V4(lo), IpAddr::V4(hi)), IpAddr::V4(a)) => {
            (u32::from(*lo)..=u32::from(*hi)).contains(&u32::from(a))
        }
        (IpRange::Span(IpAddr::V6(lo), IpAddr::V6(hi)), IpAddr::V6(a)) => {
            (u128::from(*lo)..=u128::from(*hi)).contains(&u128::from(a))
        }
        _ => false,
    }
}

/// One line of an `ip_range` value list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpRange {
    /// Network address and prefix length.
    Cidr(IpAddr, u8),
    /// First and last address.
    Span(IpAddr, IpAddr),
}

impl IpRange {
    /// Parses `a.b.c.d/n`, `a-b` or one address.
    pub fn parse(text: &str) -> Option<IpRange> {
        let text = text.trim();
        if let Some((net, bits)) = text.split_once('/') {
            let net: IpAddr = net.trim().parse().ok()?;
            let bits: u8 = bits.trim().parse().ok()?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            return (bits <= max).then_some(IpRange::Cidr(net, bits));
        }
        if let Some((lo, hi)) = text.split_once('-') {
            let (lo, hi): (IpAddr, IpAddr) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
            return (lo.is_ipv4() == hi.is_ipv4() && lo <= hi).then_some(IpRange::Span(lo, hi));
        }
        let one: IpAddr = text.parse().ok()?;
        Some(IpRange::Cidr(one, if one.is_ipv4() { 32 } else { 128 }))
    }
}
