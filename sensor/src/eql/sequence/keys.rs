//! Join keys: the values of a step's `by` fields, compared by type and
//! value, and the compiled step that carries them.

use super::MAX_KEY_COMBINATIONS;
use crate::eql::ast::{Field, SequenceStep};
use crate::eql::compile::{compile as compile_query, CompiledQuery};
use crate::eql::dates::DateFormat;
use crate::eql::document::{Document, FieldRef, Value};
use crate::eql::error::EqlError;

/// One value of a join key. Types are kept apart (`"1"` ≠ `1` ≠ `1.0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyValue {
    /// An optional (`?field`) key without value.
    Null,
    /// A string.
    Str(Box<str>),
    /// An integer.
    Int(i64),
    /// A floating-point number (its bits).
    Float(u64),
    /// A boolean.
    Bool(bool),
}

impl KeyValue {
    fn from_value(v: Value<'_>) -> KeyValue {
        match v {
            Value::Str(s) => KeyValue::Str(s.into()),
            Value::Int(i) => KeyValue::Int(i),
            Value::Float(x) => KeyValue::Float(x.to_bits()),
            Value::Bool(b) => KeyValue::Bool(b),
        }
    }

    /// The value as JSON (for alerts).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            KeyValue::Null => serde_json::Value::Null,
            KeyValue::Str(s) => serde_json::Value::String(s.to_string()),
            KeyValue::Int(i) => (*i).into(),
            KeyValue::Float(b) => serde_json::Number::from_f64(f64::from_bits(*b))
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            KeyValue::Bool(b) => (*b).into(),
        }
    }
}

/// A join key: one value per key field.
pub type Key = Box<[KeyValue]>;

#[derive(Debug, Clone)]
pub(crate) struct KeyField {
    field: FieldRef,
    optional: bool,
    /// A `date` field (an index mapping says so): its values are read as
    /// epoch milliseconds through the mapping's format, as Elasticsearch
    /// stores them, so `17-12-2022` and `1671235200000` are one key.
    date: Option<std::sync::Arc<DateFormat>>,
}

impl KeyField {
    /// Reads this key as a `date` of `format` when `format_of` gives one
    /// for its field.
    pub(crate) fn type_as_date(&mut self, format_of: &dyn Fn(&str) -> Option<DateFormat>) {
        self.date = format_of(self.field.path()).map(std::sync::Arc::new);
    }
}

/// One step (or `sample` filter): its query and its join key fields (the
/// statement's `by` fields followed by its own).
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) query: CompiledQuery,
    pub(crate) keys: Vec<KeyField>,
}

fn key_fields(seq_by: &[Field], step_by: &[Field]) -> Vec<KeyField> {
    seq_by
        .iter()
        .chain(step_by)
        .map(|f| KeyField {
            field: FieldRef::new(&f.path),
            optional: f.optional,
            date: None,
        })
        .collect()
}

pub(crate) fn compile_step(by: &[Field], s: &SequenceStep) -> Result<Step, EqlError> {
    Ok(Step {
        query: compile_query(&s.query)?,
        keys: key_fields(by, &s.by),
    })
}

/// The keys of `doc` for `fields` (empty when a non-optional key field has
/// no value).
pub(crate) fn keys_of<D: Document + ?Sized>(doc: &D, fields: &[KeyField]) -> Vec<Key> {
    let mut combos: Vec<Vec<KeyValue>> = vec![Vec::with_capacity(fields.len())];
    for kf in fields {
        let mut values: Vec<KeyValue> = Vec::new();
        doc.visit(&kf.field, &mut |v| {
            let kv = match (&kf.date, v) {
                (Some(f), Value::Str(s)) => f
                    .parse_millis(s)
                    .map_or_else(|| KeyValue::Str(s.into()), KeyValue::Int),
                (Some(_), Value::Float(x)) => KeyValue::Int(x.trunc() as i64),
                (_, v) => KeyValue::from_value(v),
            };
            if !values.contains(&kv) {
                values.push(kv);
            }
            false
        });
        if values.is_empty() {
            if !kf.optional {
                return Vec::new();
            }
            values.push(KeyValue::Null);
        }
        let mut next = Vec::with_capacity(combos.len() * values.len());
        'outer: for c in &combos {
            for v in &values {
                if next.len() == MAX_KEY_COMBINATIONS {
                    break 'outer;
                }
                let mut c = c.clone();
                c.push(v.clone());
                next.push(c);
            }
        }
        combos = next;
    }
    combos.into_iter().map(Vec::into_boxed_slice).collect()
}
