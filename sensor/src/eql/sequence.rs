//! EQL sequences, evaluated as a stream with Elasticsearch's results.
//!
//! `sequence [by k...] [with maxspan=N] [q1] [by ...] [q2] ... [until [q]]`
//! is compiled into one [`CompiledQuery`] per step plus its join keys; a
//! [`SequenceEngine`] holds the state of one rule and is fed events in
//! ordinal order (see [`Ordinal`]). The same engine serves `sensor replay`
//! (events sorted by `@timestamp`, then input order) and the live sensor
//! (events released from a bounded reorder window by kernel time).
//!
//! # Semantics (Elasticsearch `x-pack/plugin/eql/.../execution/sequence/`)
//!
//! * **Order.** Events are ordered by `@timestamp` in milliseconds (a `date`
//!   field), then by an implicit tiebreaker: input order in replay, kernel
//!   time then arrival in the live sensor (Elasticsearch's `Ordinal`:
//!   timestamp, tiebreaker, implicit tiebreaker). An event without a
//!   parseable `@timestamp` takes no part in sequences (Elasticsearch
//!   requires the timestamp field).
//! * **Which partial sequence an event extends.** For a key, an event
//!   matching step *s* takes the most recent partial sequence waiting at
//!   step *s−1* (`OrdinalGroup.trimBefore`: the latest one before the event;
//!   every older one is dropped with it). Because events arrive in order,
//!   "latest before" is always the last one stored, so each (key, step)
//!   holds ONE partial sequence: a newer one at the same step replaces it.
//!   With `[A] [B]` and events `A1 A2 B1` the result is `[A2, B1]`; with
//!   `A1 B1 B2` it is `[A1, B1]` only (B2 finds no waiting sequence).
//! * **A step matching again / an event matching several steps.** One event
//!   is offered to every step, from the last to the first, so it never
//!   extends a sequence it started itself (Elasticsearch compares ordinals
//!   strictly). An event matching step 1 and step 2 may both extend a
//!   sequence at step 1 and start a new one.
//! * **maxspan.** A step is rejected when its timestamp minus the first
//!   step's is GREATER than maxspan (`SequenceMatcher.exceedsMaxSpan`):
//!   exactly maxspan apart still matches. The rejected partial sequence is
//!   consumed (it was taken from its step before the check). A partial
//!   sequence that can no longer be extended in time is expired.
//! * **until.** An event matching `until` ends every partial sequence of its
//!   key, including one it extended or started itself (`Ordinal.between` is
//!   inclusive); a sequence it completes is still reported.
//! * **Keys.** Each step's keys are the sequence's `by` fields followed by
//!   the step's own; they are compared by position and type: the keyword
//!   `"1"` and the number `1` are different keys, as are `1` and `1.0`
//!   (Java `equals` on the values Elasticsearch extracts). A step whose key
//!   field has no value does not match (Elasticsearch adds an `exists`
//!   filter for every non-optional key); with `?field` the key is `null`,
//!   and `null` joins `null`. A multi-valued key field gives one key per
//!   value (the cartesian product for several, at most
//!   [`MAX_KEY_COMBINATIONS`]).
//! * **runs=N** repeats a step N times.
//! * **Missing events `![q]`** (also `-[q]`). The positive steps form
//!   sequences as above; a completed one is then checked against the
//!   events of the missing steps with its key the way Elasticsearch does it
//!   (see `voided`): each missing step on its own, by millisecond
//!   timestamps. An event strictly between two positive steps voids; a
//!   leading (trailing) step finds the latest (earliest) event before the
//!   first (after the last) step, and voids only within maxspan of the
//!   positive events, or, with both, of each other when both are found. A
//!   sequence with a trailing missing step is decided once time passes
//!   `first + maxspan` (or at the end of a replay). Leading and trailing
//!   missing steps require `maxspan`. The most recent
//!   [`MAX_MISSING_HISTORY`] events per key and missing step are kept.
//!
//! # Bounded state
//!
//! Per rule at most `cap` partial sequences (default
//! [`DEFAULT_MAX_PENDING`]) are held, counting sequences awaiting a
//! trailing missing-event check, and missing-event history for at most
//! `cap` keys. The partial sequences are counted per **partition** (a
//! tenant: the live sensor and replay use the event's container, see
//! `rules::sequences`). Adding one more to a full rule evicts the oldest of
//! the partition holding the most (the adding partition itself when it is
//! among them): a tenant flooding a rule's first step evicts only its own
//! partial sequences, never those of a tenant holding fewer. With one
//! partition this is the oldest overall. Every expiry, eviction and
//! rejection is counted
//! in [`SequenceStats`]. A pending sequence costs
//! `size_of::<Partial>` + one payload pointer per matched step + its key
//! (see [`SequenceEngine::approx_bytes`]); payloads are shared
//! (`Arc`) and cloned only when an event matches a step.

use std::collections::{HashMap, VecDeque};

use super::ast::{Field, SequenceQuery, SequenceStep};
use super::compile::{compile as compile_query, CompiledQuery};
use super::dates::DateFormat;
use super::document::{Document, FieldRef, Value};
use super::error::EqlError;

/// Default cap on pending partial sequences per rule.
pub const DEFAULT_MAX_PENDING: usize = 10_000;

/// The partition of events that belong to no tenant in particular (the
/// host's own processes; replayed events without one).
pub const NO_PARTITION: u64 = 0;

/// Most keys one event may produce from multi-valued key fields.
pub const MAX_KEY_COMBINATIONS: usize = 64;

/// Which step queries of one rule an event matches, by position in the
/// rule's `step_queries()` ([`CompiledSequence::step_queries`]: positive
/// steps, missing steps, then `until`; [`CompiledSample::step_queries`]:
/// the filters).
///
/// [`CompiledSample::step_queries`]: super::sample::CompiledSample::step_queries
#[derive(Debug, Clone, Copy)]
pub enum StepMatches<'a> {
    /// Not known: the engine evaluates each step's query.
    Evaluate,
    /// Known (from the rule index, which evaluated every step that can
    /// match): step `k` matches exactly when `base + k` is in `ids`
    /// (ascending).
    Known {
        /// Matching step ids, ascending.
        ids: &'a [u32],
        /// The id of the rule's step 0.
        base: u32,
    },
}

impl StepMatches<'_> {
    /// Whether step `k` (whose query is `q`) matches `doc`.
    #[inline]
    pub(crate) fn test<D: Document + ?Sized>(&self, k: usize, q: &CompiledQuery, doc: &D) -> bool {
        match *self {
            StepMatches::Evaluate => q.matches(doc),
            StepMatches::Known { ids, base } => u32::try_from(k)
                .ok()
                .and_then(|k| base.checked_add(k))
                .is_some_and(|id| ids.binary_search(&id).is_ok()),
        }
    }
}

/// An event's position in the stream: `@timestamp` in milliseconds, then
/// the implicit tiebreaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ordinal {
    /// `@timestamp`, epoch milliseconds.
    pub ms: i64,
    /// Nanoseconds within the millisecond, when `@timestamp` has them (the
    /// sensor's kernel times do); 0 otherwise.
    pub sub_ns: u32,
    /// The implicit tiebreaker: input order (replay) or arrival (live).
    pub tie: u64,
}

impl Ordinal {
    /// The ordinal of `doc` (`@timestamp` as a `date`), with `tie`; `None`
    /// when it has no parseable `@timestamp`.
    pub fn of<D: Document + ?Sized>(doc: &D, tie: u64) -> Option<Ordinal> {
        let mut found = None;
        doc.visit(&FieldRef::new("@timestamp"), &mut |v| {
            found = match v {
                Value::Int(i) => Some(Ordinal {
                    ms: i,
                    sub_ns: 0,
                    tie,
                }),
                Value::Float(x) if x.is_finite() => Some(Ordinal {
                    ms: x.floor() as i64,
                    sub_ns: 0,
                    tie,
                }),
                Value::Str(s) => super::dates::parse_millis(s).map(|ms| Ordinal {
                    ms,
                    sub_ns: sub_millis_nanos(s),
                    tie,
                }),
                _ => None,
            };
            true
        });
        found
    }
}

/// The digits of a date string's fraction after the milliseconds, as
/// nanoseconds (`...:33.123456789Z` → 456789).
fn sub_millis_nanos(s: &str) -> u32 {
    let Some(t) = s.find('T') else { return 0 };
    let Some(dot) = s[t..].find('.').map(|i| t + i + 1) else {
        return 0;
    };
    let digits: Vec<u8> = s.as_bytes()[dot..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    let mut n = 0u32;
    for i in 3..9 {
        n = n * 10 + u32::from(digits.get(i).map_or(0, |d| d - b'0'));
    }
    n
}

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

/// Where a missing-event step sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MissingAt {
    /// Before the first positive step.
    Leading(usize),
    /// After positive step `i` (index in the positive steps) and before the
    /// next one.
    After(usize),
    /// After the last positive step.
    Trailing,
}

/// A compiled sequence query.
#[derive(Debug, Clone)]
pub struct CompiledSequence {
    positive: Vec<Step>,
    missing: Vec<(Step, MissingAt)>,
    until: Option<Step>,
    maxspan_ms: Option<u64>,
    trailing: bool,
}

impl CompiledSequence {
    /// Steps that must match (missing-event steps excluded).
    pub fn positive_steps(&self) -> usize {
        self.positive.len()
    }

    /// The queries of every step (positive, missing, then `until`): an
    /// event matching none of them is of no interest to the sequence.
    pub fn step_queries(&self) -> impl Iterator<Item = &CompiledQuery> {
        self.positive
            .iter()
            .chain(self.missing.iter().map(|(s, _)| s))
            .chain(self.until.as_ref())
            .map(|s| &s.query)
    }

    /// `maxspan` in milliseconds.
    pub fn maxspan_ms(&self) -> Option<u64> {
        self.maxspan_ms
    }

    /// How many steps (positive, missing, `until`) match the document,
    /// every one evaluated (what the engine may evaluate for one event;
    /// benchmarks use it to see what that evaluation builds).
    pub fn matching_steps<D: Document + ?Sized>(&self, doc: &D) -> usize {
        self.positive
            .iter()
            .chain(self.missing.iter().map(|(s, _)| s))
            .chain(self.until.iter())
            .filter(|s| s.query.matches(doc))
            .count()
    }

    /// Whether any step, missing step or `until` matches the document: the
    /// only events the engine needs to see (besides time advancing).
    pub fn interested<D: Document + ?Sized>(&self, doc: &D) -> bool {
        self.positive.iter().any(|s| s.query.matches(doc))
            || self.missing.iter().any(|(s, _)| s.query.matches(doc))
            || self.until.as_ref().is_some_and(|s| s.query.matches(doc))
    }
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

/// Compiles a parsed sequence.
pub fn compile(q: &SequenceQuery) -> Result<CompiledSequence, EqlError> {
    let mut positive = Vec::new();
    let mut missing = Vec::new();
    let (mut leading, mut trailing) = (0, false);
    for s in &q.steps {
        let step = compile_step(&q.by, s)?;
        if s.missing {
            let at = if positive.is_empty() {
                leading += 1;
                MissingAt::Leading(leading - 1)
            } else {
                MissingAt::After(positive.len() - 1)
            };
            missing.push((step, at, s.span));
        } else {
            positive.push(step);
        }
    }
    let last = positive.len().saturating_sub(1);
    let missing: Vec<(Step, MissingAt)> = missing
        .into_iter()
        .map(|(step, at, span)| {
            let at = match at {
                MissingAt::After(i) if i == last => {
                    trailing = true;
                    MissingAt::Trailing
                }
                at => at,
            };
            if matches!(at, MissingAt::Leading(_) | MissingAt::Trailing) && q.maxspan_ms.is_none() {
                return Err(EqlError::syntax(
                    "a missing event before the first or after the last step needs `with maxspan`",
                    span,
                ));
            }
            Ok((step, at))
        })
        .collect::<Result<_, _>>()?;
    if positive.len() < 2 && missing.is_empty() {
        return Err(EqlError::syntax(
            "a sequence needs at least two steps",
            q.span,
        ));
    }
    Ok(CompiledSequence {
        positive,
        missing,
        until: q
            .until
            .as_ref()
            .map(|s| compile_step(&q.by, s))
            .transpose()?,
        maxspan_ms: q.maxspan_ms,
        trailing,
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

/// A completed sequence: the events of its positive steps, in order.
#[derive(Debug, Clone)]
pub struct SequenceMatch<P> {
    /// The join key.
    pub key: Key,
    /// One payload per positive step.
    pub events: Vec<P>,
}

/// Counters of one rule's engine (or a sum of several).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SequenceStats {
    /// Sequences completed (reported).
    pub completed: u64,
    /// Extensions rejected because the step fell beyond maxspan.
    pub rejected_maxspan: u64,
    /// Partial sequences ended by an `until` event.
    pub dropped_until: u64,
    /// Partial (or completed, awaiting check) sequences voided by a
    /// missing-event step.
    pub dropped_missing: u64,
    /// Partial sequences expired by maxspan before any step could extend
    /// them.
    pub expired: u64,
    /// Partial sequences evicted because the rule's cap was reached.
    pub evicted: u64,
    /// Partial sequences held now.
    pub pending: u64,
    /// Most partial sequences held at once.
    pub peak_pending: u64,
}

impl SequenceStats {
    /// Adds `o`'s counters (gauges add too: the sum over rules).
    pub fn add(&mut self, o: &SequenceStats) {
        self.completed += o.completed;
        self.rejected_maxspan += o.rejected_maxspan;
        self.dropped_until += o.dropped_until;
        self.dropped_missing += o.dropped_missing;
        self.expired += o.expired;
        self.evicted += o.evicted;
        self.pending += o.pending;
        self.peak_pending += o.peak_pending;
    }

    /// Everything that was dropped for lack of room.
    pub fn evictions(&self) -> u64 {
        self.evicted
    }
}

#[derive(Debug)]
struct Partial<P> {
    /// The tenant whose event started it.
    partition: u64,
    start: Ordinal,
    /// The ordinal of each matched positive step.
    ords: Vec<Ordinal>,
    events: Vec<P>,
    gen: u64,
}

#[derive(Debug)]
struct KeyState<P> {
    /// Partial sequences waiting at positive step `i` (the last positive
    /// step never waits).
    slots: Vec<Option<Partial<P>>>,
}

impl<P> KeyState<P> {
    fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }
}

/// Most recent events kept per key and missing-event step.
pub const MAX_MISSING_HISTORY: usize = 64;

/// What an entry of the age queue points at.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Partial(usize),
    Trailing,
}

#[derive(Debug)]
struct AwaitingTrailing<P> {
    partition: u64,
    m: SequenceMatch<P>,
    ords: Vec<Ordinal>,
    gen: u64,
}

/// The state of one sequence rule.
#[derive(Debug)]
pub struct SequenceEngine<P> {
    keys: HashMap<Key, KeyState<P>>,
    /// Entries in insertion order: (generation, key, slot); stale entries
    /// (consumed, replaced) are skipped when popped.
    age: VecDeque<(u64, Key, Slot)>,
    /// The same entries per partition, for evicting within one.
    partition_age: HashMap<u64, VecDeque<(u64, Key, Slot)>>,
    /// Partial sequences (and sequences awaiting their trailing check)
    /// held per partition; a partition holding none is absent.
    held_by: HashMap<u64, usize>,
    trailing: VecDeque<AwaitingTrailing<P>>,
    /// Recent events of each missing-event step, by key.
    missing: HashMap<Key, Vec<VecDeque<Ordinal>>>,
    held: usize,
    cap: usize,
    gen: u64,
    stats: SequenceStats,
}

impl<P: Clone> SequenceEngine<P> {
    /// An engine holding at most `cap` partial sequences.
    pub fn new(cap: usize) -> SequenceEngine<P> {
        SequenceEngine {
            keys: HashMap::new(),
            age: VecDeque::new(),
            partition_age: HashMap::new(),
            held_by: HashMap::new(),
            trailing: VecDeque::new(),
            missing: HashMap::new(),
            held: 0,
            cap: cap.max(1),
            gen: 0,
            stats: SequenceStats::default(),
        }
    }

    /// Counters, with the `pending` gauge current.
    pub fn stats(&self) -> SequenceStats {
        SequenceStats {
            pending: self.held as u64,
            ..self.stats
        }
    }

    /// Partial sequences held.
    pub fn pending(&self) -> usize {
        self.held
    }

    /// Estimated heap bytes of the state (partial sequences, keys, queue),
    /// not counting the shared payloads themselves.
    pub fn approx_bytes(&self) -> usize {
        let mut n = (self.age.capacity()
            + self
                .partition_age
                .values()
                .map(VecDeque::capacity)
                .sum::<usize>())
            * std::mem::size_of::<(u64, Key, Slot)>()
            + self.held_by.capacity() * std::mem::size_of::<(u64, usize)>();
        for (k, st) in &self.keys {
            n += std::mem::size_of::<(Key, KeyState<P>)>()
                + k.len() * std::mem::size_of::<KeyValue>()
                + k.iter()
                    .map(|v| match v {
                        KeyValue::Str(s) => s.len(),
                        _ => 0,
                    })
                    .sum::<usize>();
            n += st.slots.capacity() * std::mem::size_of::<Option<Partial<P>>>();
            for p in st.slots.iter().flatten() {
                n += p.events.capacity() * std::mem::size_of::<P>()
                    + p.ords.capacity() * std::mem::size_of::<Ordinal>();
            }
        }
        for (k, h) in &self.missing {
            n += std::mem::size_of::<(Key, Vec<VecDeque<Ordinal>>)>()
                + k.len() * std::mem::size_of::<KeyValue>()
                + h.iter()
                    .map(|d| d.capacity() * std::mem::size_of::<Ordinal>())
                    .sum::<usize>();
        }
        n + self.trailing.len() * std::mem::size_of::<AwaitingTrailing<P>>()
    }

    fn next_gen(&mut self) -> u64 {
        self.gen += 1;
        self.gen
    }

    fn expired(seq: &CompiledSequence, start: Ordinal, now: Ordinal) -> bool {
        seq.maxspan_ms
            .is_some_and(|span| now.ms.saturating_sub(start.ms) > span as i64)
    }

    /// Moves time to `now`: expires what maxspan no longer allows and
    /// reports sequences whose trailing missing-event window has closed.
    pub fn advance(
        &mut self,
        seq: &CompiledSequence,
        now: Ordinal,
        out: &mut Vec<SequenceMatch<P>>,
    ) {
        if seq.trailing && !self.trailing.is_empty() {
            let mut i = 0;
            while i < self.trailing.len() {
                if Self::expired(seq, self.trailing[i].ords[0], now) {
                    if let Some(t) = self.trailing.remove(i) {
                        self.release(t.partition);
                        self.report(seq, t.m, &t.ords, out);
                    }
                } else {
                    i += 1;
                }
            }
        }
        if seq.maxspan_ms.is_none() {
            return;
        }
        // The queue is in insertion order; an entry's start is at most its
        // insertion time, so the front is expired first (mostly).
        while let Some((gen, key, slot)) = self.age.front() {
            let (gen, slot) = (*gen, *slot);
            let state = self.keys.get(key);
            let live_start = match (slot, state) {
                (Slot::Partial(i), Some(st)) => st.slots[i]
                    .as_ref()
                    .filter(|p| p.gen == gen)
                    .map(|p| p.start),
                _ => None,
            };
            match live_start {
                None if matches!(slot, Slot::Trailing) => {
                    if self.trailing.iter().any(|t| t.gen == gen) {
                        break;
                    }
                    self.age.pop_front();
                }
                None => {
                    self.age.pop_front();
                }
                Some(start) if Self::expired(seq, start, now) => {
                    if let Some((_, key, slot)) = self.age.pop_front() {
                        if let Slot::Partial(_) = slot {
                            self.stats.expired += 1;
                        }
                        self.remove(&key, slot);
                    }
                }
                Some(_) => break,
            }
        }
    }

    /// One held entry of `partition` is gone.
    fn release(&mut self, partition: u64) {
        self.held -= 1;
        if let Some(n) = self.held_by.get_mut(&partition) {
            *n -= 1;
            if *n == 0 {
                self.held_by.remove(&partition);
                self.partition_age.remove(&partition);
            }
        }
    }

    /// One more held entry of `partition`, filed in both age queues.
    fn hold(&mut self, partition: u64, gen: u64, key: &Key, slot: Slot) {
        self.held += 1;
        *self.held_by.entry(partition).or_insert(0) += 1;
        self.age.push_back((gen, key.clone(), slot));
        self.partition_age
            .entry(partition)
            .or_default()
            .push_back((gen, key.clone(), slot));
        self.stats.peak_pending = self.stats.peak_pending.max(self.held as u64);
    }

    /// Removes a slot (it is live); drops an emptied key.
    fn remove(&mut self, key: &Key, slot: Slot) {
        let mut released = None;
        if let Some(st) = self.keys.get_mut(key) {
            if let Slot::Partial(i) = slot {
                released = st.slots[i].take().map(|p| p.partition);
            }
            if st.is_empty() {
                self.keys.remove(key);
            }
        }
        if let Some(partition) = released {
            self.release(partition);
        }
    }

    /// Makes room for one more entry of `partition`: while the rule holds
    /// `cap`, evicts the oldest live entry of the partition holding the
    /// most (`partition` itself when it is among them).
    fn make_room(&mut self, partition: u64) {
        while self.held >= self.cap {
            let most = self.held_by.values().copied().max().unwrap_or(0);
            let victim = if self.held_by.get(&partition) == Some(&most) {
                Some(partition)
            } else {
                self.held_by
                    .iter()
                    .filter(|(_, n)| **n == most)
                    .map(|(p, _)| *p)
                    .min()
            };
            let Some(victim) = victim else {
                return;
            };
            if !self.evict_oldest_of(victim) {
                return;
            }
        }
    }

    /// Evicts the oldest live entry of `partition`; false when it has none.
    fn evict_oldest_of(&mut self, partition: u64) -> bool {
        loop {
            let Some((gen, key, slot)) = self
                .partition_age
                .get_mut(&partition)
                .and_then(VecDeque::pop_front)
            else {
                return false;
            };
            match slot {
                Slot::Trailing => {
                    if let Some(pos) = self.trailing.iter().position(|t| t.gen == gen) {
                        self.trailing.remove(pos);
                        self.stats.evicted += 1;
                        self.release(partition);
                        return true;
                    }
                }
                Slot::Partial(i) => {
                    let live = self
                        .keys
                        .get(&key)
                        .is_some_and(|st| st.slots[i].as_ref().is_some_and(|p| p.gen == gen));
                    if live {
                        self.stats.evicted += 1;
                        self.remove(&key, slot);
                        return true;
                    }
                }
            }
        }
    }

    fn compact_age(&mut self) {
        let keys = &self.keys;
        let trailing = &self.trailing;
        let live = |(gen, key, slot): &(u64, Key, Slot)| match slot {
            Slot::Partial(i) => keys
                .get(key)
                .is_some_and(|st| st.slots[*i].as_ref().is_some_and(|p| p.gen == *gen)),
            Slot::Trailing => trailing.iter().any(|t| t.gen == *gen),
        };
        if self.age.len() > 2 * self.cap + 64 {
            self.age.retain(live);
        }
        for (partition, queue) in &mut self.partition_age {
            let held = self.held_by.get(partition).copied().unwrap_or(0);
            if queue.len() > 2 * held + 64 {
                queue.retain(live);
            }
        }
    }

    fn state<'a>(
        keys: &'a mut HashMap<Key, KeyState<P>>,
        seq: &CompiledSequence,
        key: &Key,
    ) -> &'a mut KeyState<P> {
        keys.entry(key.clone()).or_insert_with(|| KeyState {
            slots: (0..seq.positive.len().saturating_sub(1))
                .map(|_| None)
                .collect(),
        })
    }

    fn store(&mut self, seq: &CompiledSequence, key: &Key, i: usize, mut p: Partial<P>) {
        // Replacing the partial sequence at the same step frees its room.
        let replaced = self
            .keys
            .get_mut(key)
            .and_then(|st| st.slots[i].take())
            .map(|old| old.partition);
        match replaced {
            Some(old) => self.release(old),
            None => self.make_room(p.partition),
        }
        let gen = self.next_gen();
        p.gen = gen;
        let partition = p.partition;
        let st = Self::state(&mut self.keys, seq, key);
        st.slots[i] = Some(p);
        self.hold(partition, gen, key, Slot::Partial(i));
        self.compact_age();
    }

    fn complete(
        &mut self,
        seq: &CompiledSequence,
        key: &Key,
        p: Partial<P>,
        out: &mut Vec<SequenceMatch<P>>,
    ) {
        let m = SequenceMatch {
            key: key.clone(),
            events: p.events,
        };
        if seq.trailing {
            self.make_room(p.partition);
            let gen = self.next_gen();
            self.trailing.push_back(AwaitingTrailing {
                partition: p.partition,
                m,
                ords: p.ords,
                gen,
            });
            self.hold(p.partition, gen, key, Slot::Trailing);
        } else {
            self.report(seq, m, &p.ords, out);
        }
    }

    /// Reports a positive sequence unless its missing-event steps can all
    /// be filled (see [`Self::voided`]).
    fn report(
        &mut self,
        seq: &CompiledSequence,
        m: SequenceMatch<P>,
        ords: &[Ordinal],
        out: &mut Vec<SequenceMatch<P>>,
    ) {
        if !seq.missing.is_empty() && self.voided(seq, &m.key, ords) {
            self.stats.dropped_missing += 1;
        } else {
            self.stats.completed += 1;
            out.push(m);
        }
    }

    /// Whether the events seen for the missing-event steps (same key) void
    /// the positive sequence `ords`, as Elasticsearch decides it
    /// (`TumblingWindow.prepareQueryForMissingEvents` and
    /// `doCheckMissingEvents`): every missing step is looked up on its own,
    /// by timestamp in milliseconds (the tiebreaker plays no part), with no
    /// ordering among missing steps:
    ///
    /// * between two positive steps: any event strictly between their
    ///   timestamps voids the sequence (so one event spoils every missing
    ///   step there, `runs=2` included);
    /// * before the first step: the latest event strictly before its
    ///   timestamp, the latest over all leading steps ("last leading");
    /// * after the last step: the earliest event strictly after its
    ///   timestamp, the earliest over all trailing steps ("first trailing").
    ///
    /// With leading and trailing steps the sequence is voided only when
    /// both are found and the first trailing is within maxspan of the last
    /// leading; with leading steps only, when the last leading is within
    /// maxspan of the last positive event; with trailing only, when the
    /// first trailing is within maxspan of the first positive event.
    fn voided(&self, seq: &CompiledSequence, key: &Key, ords: &[Ordinal]) -> bool {
        let Some(hist) = self.missing.get(key) else {
            return false;
        };
        let (first, last) = (ords[0].ms, ords[ords.len() - 1].ms);
        let (mut has_leading, mut has_trailing) = (false, false);
        let mut last_leading: Option<i64> = None;
        let mut first_trailing: Option<i64> = None;
        for (m, (_, at)) in seq.missing.iter().enumerate() {
            match *at {
                MissingAt::After(i) => {
                    let (lo, hi) = (ords[i].ms, ords[i + 1].ms);
                    if hist[m].iter().any(|o| o.ms > lo && o.ms < hi) {
                        return true;
                    }
                }
                MissingAt::Leading(_) => {
                    has_leading = true;
                    if let Some(o) = hist[m].iter().rev().find(|o| o.ms < first) {
                        last_leading = Some(last_leading.map_or(o.ms, |l| l.max(o.ms)));
                    }
                }
                MissingAt::Trailing => {
                    has_trailing = true;
                    if let Some(o) = hist[m].iter().find(|o| o.ms > last) {
                        first_trailing = Some(first_trailing.map_or(o.ms, |t| t.min(o.ms)));
                    }
                }
            }
        }
        // Elasticsearch's `exceedsMaxSpan`: false without a maxspan.
        let within = |from: i64, to: i64| {
            seq.maxspan_ms
                .is_none_or(|span| to.saturating_sub(from) <= span as i64)
        };
        match (has_leading, has_trailing) {
            (true, true) => match (last_leading, first_trailing) {
                (Some(l), Some(t)) => within(l, t),
                _ => false,
            },
            (true, false) => last_leading.is_some_and(|l| within(l, last)),
            (false, true) => first_trailing.is_some_and(|t| within(first, t)),
            (false, false) => false,
        }
    }

    /// Notes an event of missing-event step `m`: at most
    /// [`MAX_MISSING_HISTORY`] per key and step, and at most `cap` keys
    /// (those past twice maxspan go first, counted as expired; then the
    /// key with the oldest newest event, counted as evicted).
    fn note_missing(&mut self, seq: &CompiledSequence, key: Key, m: usize, ord: Ordinal) {
        if !self.missing.contains_key(&key) && self.missing.len() >= self.cap {
            let horizon = seq
                .maxspan_ms
                .map_or(i64::MIN, |span| ord.ms.saturating_sub(2 * span as i64));
            let before = self.missing.len();
            self.missing
                .retain(|_, h| h.iter().filter_map(|d| d.back()).any(|o| o.ms >= horizon));
            self.stats.expired += (before - self.missing.len()) as u64;
            if self.missing.len() >= self.cap {
                let oldest = self
                    .missing
                    .iter()
                    .min_by_key(|(_, h)| h.iter().filter_map(|d| d.back()).max().copied())
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.missing.remove(&k);
                    self.stats.evicted += 1;
                }
            }
        }
        let h = self
            .missing
            .entry(key)
            .or_insert_with(|| vec![VecDeque::new(); seq.missing.len()]);
        if h[m].len() == MAX_MISSING_HISTORY {
            h[m].pop_front();
        }
        h[m].push_back(ord);
    }

    /// Feeds one event (events must come in [`Ordinal`] order). `payload`
    /// is called at most once, when the event joins a sequence.
    pub fn process<D: Document + ?Sized>(
        &mut self,
        seq: &CompiledSequence,
        doc: &D,
        ord: Ordinal,
        payload: &mut dyn FnMut() -> P,
        out: &mut Vec<SequenceMatch<P>>,
    ) {
        self.process_in(seq, doc, ord, NO_PARTITION, payload, out);
    }

    /// [`SequenceEngine::process`] for an event of tenant `partition`: a
    /// sequence it starts is held in that partition's share.
    pub fn process_in<D: Document + ?Sized>(
        &mut self,
        seq: &CompiledSequence,
        doc: &D,
        ord: Ordinal,
        partition: u64,
        payload: &mut dyn FnMut() -> P,
        out: &mut Vec<SequenceMatch<P>>,
    ) {
        self.process_steps(
            seq,
            doc,
            ord,
            partition,
            StepMatches::Evaluate,
            payload,
            out,
        );
    }

    /// Whether the engine holds anything that time alone can change
    /// (partial sequences that may expire, sequences awaiting their
    /// trailing check): an engine holding nothing ignores an event none
    /// of its steps matches, so [`SequenceEngine::advance`] on it changes
    /// nothing.
    pub fn holds_state(&self) -> bool {
        self.held > 0
    }

    /// [`SequenceEngine::process_in`] with the steps the event matches
    /// given (`steps`), or evaluated ([`StepMatches::Evaluate`]). For an
    /// event no step matches this is [`SequenceEngine::advance`] to its
    /// ordinal.
    #[allow(clippy::too_many_arguments)]
    pub fn process_steps<D: Document + ?Sized>(
        &mut self,
        seq: &CompiledSequence,
        doc: &D,
        ord: Ordinal,
        partition: u64,
        steps: StepMatches<'_>,
        payload: &mut dyn FnMut() -> P,
        out: &mut Vec<SequenceMatch<P>>,
    ) {
        self.advance(seq, ord, out);
        let mut cached: Option<P> = None;
        let mut take =
            |cached: &mut Option<P>| -> P { cached.get_or_insert_with(&mut *payload).clone() };
        let last = seq.positive.len() - 1;
        for i in (0..seq.positive.len()).rev() {
            let step = &seq.positive[i];
            if !steps.test(i, &step.query, doc) {
                continue;
            }
            for key in keys_of(doc, &step.keys) {
                if i == 0 {
                    let p = Partial {
                        partition,
                        start: ord,
                        ords: vec![ord],
                        events: vec![take(&mut cached)],
                        gen: 0,
                    };
                    if last == 0 {
                        self.complete(seq, &key, p, out);
                    } else {
                        self.store(seq, &key, 0, p);
                    }
                    continue;
                }
                let Some(st) = self.keys.get_mut(&key) else {
                    continue;
                };
                let Some(mut p) = st.slots[i - 1].take() else {
                    continue;
                };
                if st.is_empty() {
                    self.keys.remove(&key);
                }
                self.release(p.partition);
                if Self::expired(seq, p.start, ord) {
                    self.stats.rejected_maxspan += 1;
                    continue;
                }
                p.events.push(take(&mut cached));
                p.ords.push(ord);
                if i == last {
                    self.complete(seq, &key, p, out);
                } else {
                    self.store(seq, &key, i, p);
                }
            }
        }
        let positives = seq.positive.len();
        for (m, (step, _)) in seq.missing.iter().enumerate() {
            if !steps.test(positives + m, &step.query, doc) {
                continue;
            }
            for key in keys_of(doc, &step.keys) {
                self.note_missing(seq, key, m, ord);
            }
        }
        if let Some(until) = &seq.until {
            if steps.test(positives + seq.missing.len(), &until.query, doc) {
                for key in keys_of(doc, &until.keys) {
                    if let Some(st) = self.keys.get_mut(&key) {
                        let ended: Vec<u64> = st
                            .slots
                            .iter_mut()
                            .filter_map(Option::take)
                            .map(|p| p.partition)
                            .collect();
                        if st.is_empty() {
                            self.keys.remove(&key);
                        }
                        self.stats.dropped_until += ended.len() as u64;
                        for partition in ended {
                            self.release(partition);
                        }
                    }
                }
            }
        }
        self.compact_age();
    }

    /// End of input: reports the sequences awaiting their trailing
    /// missing-event window (no event can void them any more).
    pub fn finish(&mut self, seq: &CompiledSequence, out: &mut Vec<SequenceMatch<P>>) {
        while let Some(t) = self.trailing.pop_front() {
            self.release(t.partition);
            self.report(seq, t.m, &t.ords, out);
        }
    }
}
