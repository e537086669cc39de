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

mod engine;
mod keys;
mod missing;
mod ordinal;
mod room;

pub(crate) use keys::{compile_step, keys_of, Step};
pub use keys::{Key, KeyValue};
pub use ordinal::Ordinal;

use std::collections::{HashMap, VecDeque};

use super::ast::SequenceQuery;
use super::compile::CompiledQuery;
use super::document::Document;
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
