//! Running the sequence (and `sample`) rules of a [`RuleSet`]: one
//! [`SequenceEngine`] or [`SampleEngine`] per rule, fed in [`Ordinal`]
//! order, shared by `sensor replay` and the live sensor. The live sensor
//! puts a bounded reorder window ([`ReorderWindow`]) in front, because
//! events from different CPUs reach the ring buffer slightly out of order.
//!
//! Events are kept as they come (`Rc<E>`, [`SequenceEvent`]): the live
//! sensor's typed event, whose field lookups are a `match` and whose JSON
//! is built only when a sequence completes (or a rule reads a field the
//! typed event does not model); replay's JSON documents. Nothing is copied
//! for the engines: an event no step needs is never held.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;

use serde_json::Value;

use super::{RuleSet, SequenceRule};
use crate::eql::sample::{lookback_ms, SampleMode, DEFAULT_LOOKBACK_MS};
use crate::eql::sequence::{
    Ordinal, SequenceMatch, StepMatches, DEFAULT_MAX_PENDING, NO_PARTITION,
};
use crate::eql::{
    CompiledQuery, CompiledSample, CompiledSequence, Document, FieldRef, SampleEngine,
    SequenceEngine, SequenceStats, Value as FieldValue,
};

/// What a sequence rule evaluates: an ordered `sequence` or an unordered
/// `sample`.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per rule, built once at load
pub enum Correlation {
    /// `sequence ...`.
    Sequence(CompiledSequence),
    /// `sample ...`.
    Sample(CompiledSample),
}

impl Correlation {
    /// Whether any step, missing step, `until` or filter matches the
    /// document: the only events the rule's engine needs to see.
    pub fn interested<D: Document + ?Sized>(&self, doc: &D) -> bool {
        match self {
            Correlation::Sequence(q) => q.interested(doc),
            Correlation::Sample(q) => q.interested(doc),
        }
    }

    /// The queries whose match makes an event interesting to the rule
    /// (what [`Correlation::interested`] evaluates).
    pub fn step_queries(&self) -> Box<dyn Iterator<Item = &CompiledQuery> + '_> {
        match self {
            Correlation::Sequence(q) => Box::new(q.step_queries()),
            Correlation::Sample(q) => Box::new(q.step_queries()),
        }
    }

    /// The `k`th of [`Correlation::step_queries`], without allocating.
    pub fn step_query(&self, k: usize) -> Option<&CompiledQuery> {
        match self {
            Correlation::Sequence(q) => q.step_queries().nth(k),
            Correlation::Sample(q) => q.step_queries().nth(k),
        }
    }
}

/// An event as the sequence engines keep it: evaluated as a [`Document`],
/// written as JSON when a sequence completes.
pub trait SequenceEvent: Document {
    /// The event's ECS JSON (for the alerts).
    fn json(&self) -> &Value;
}

impl SequenceEvent for Value {
    fn json(&self) -> &Value {
        self
    }
}

impl SequenceEvent for crate::ecs::EcsEvent {
    fn json(&self) -> &Value {
        self.to_json()
    }
}

/// A shared event, as sequences keep it.
pub type Payload<E> = Rc<E>;

#[derive(Debug)]
enum Engine<E> {
    Sequence(SequenceEngine<Payload<E>>),
    Sample(SampleEngine<Payload<E>>),
}

/// The engines of every sequence rule of a rule set.
#[derive(Debug)]
pub struct SequenceRunner<E> {
    engines: Vec<Engine<E>>,
    out: Vec<SequenceMatch<Payload<E>>>,
    /// Step ids an event matches, reused from event to event.
    hits: Vec<u32>,
    /// `container.id`, which names an event's tenant ([`tenant_of`]).
    tenant_field: FieldRef,
}

/// Where the runner is used: it decides when samples are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// `sensor replay`: samples at the end, Elasticsearch's batch result.
    Replay,
    /// The live sensor: samples as soon as they exist, within the rule's
    /// look-back.
    Live,
}

impl<E: SequenceEvent> SequenceRunner<E> {
    /// One engine per sequence rule of `rules`, each holding at most `cap`
    /// partial sequences (or sample keys).
    pub fn new(rules: &RuleSet, cap: usize, mode: RunMode) -> SequenceRunner<E> {
        SequenceRunner {
            tenant_field: FieldRef::new("container.id"),
            engines: rules
                .sequences()
                .iter()
                .map(|r| match &r.query {
                    Correlation::Sequence(_) => Engine::Sequence(SequenceEngine::new(cap)),
                    Correlation::Sample(_) => {
                        let mode = match mode {
                            RunMode::Replay => SampleMode::Batch,
                            RunMode::Live => SampleMode::Stream {
                                window_ms: r
                                    .meta
                                    .from
                                    .as_deref()
                                    .and_then(lookback_ms)
                                    .unwrap_or(DEFAULT_LOOKBACK_MS),
                            },
                        };
                        Engine::Sample(SampleEngine::new(mode, cap))
                    }
                })
                .collect(),
            out: Vec::new(),
            hits: Vec::new(),
        }
    }

    /// With the default cap ([`DEFAULT_MAX_PENDING`]).
    pub fn with_default_cap(rules: &RuleSet, mode: RunMode) -> SequenceRunner<E> {
        SequenceRunner::new(rules, DEFAULT_MAX_PENDING, mode)
    }

    /// Feeds one event, in ordinal order; `emit` gets every completed
    /// sequence with its rule. The rule index names the steps the event
    /// matches ([`RuleIndex::step_hits`](super::RuleIndex::step_hits));
    /// see [`SequenceRunner::process_hits`].
    pub fn process(
        &mut self,
        rules: &RuleSet,
        ev: &Payload<E>,
        ord: Ordinal,
        emit: &mut dyn FnMut(&SequenceRule, &[&Value]),
    ) {
        let mut hits = std::mem::take(&mut self.hits);
        let doc: &E = ev;
        rules.index().step_hits(rules.sequences(), doc, &mut hits);
        self.process_hits(rules, ev, ord, &hits, emit);
        self.hits = hits;
    }

    /// Feeds one event whose matching steps are known: `hits`, the step ids
    /// of [`RuleIndex::step_hits`](super::RuleIndex::step_hits) for it.
    /// Only the engines of the rules with a step among them see the event,
    /// and they evaluate no step again; an engine none of whose steps
    /// matches is only moved to the event's time, and only when it holds
    /// state that time can change (otherwise the event would change
    /// nothing in it). The results, their order included, are those of
    /// [`SequenceRunner::process_exhaustive`].
    pub fn process_hits(
        &mut self,
        rules: &RuleSet,
        ev: &Payload<E>,
        ord: Ordinal,
        hits: &[u32],
        emit: &mut dyn FnMut(&SequenceRule, &[&Value]),
    ) {
        let doc: &E = ev;
        let partition = if hits.is_empty() {
            NO_PARTITION
        } else {
            tenant_of(doc, &self.tenant_field)
        };
        let index = rules.index();
        let mut rest = hits;
        for (r, (rule, engine)) in rules.sequences().iter().zip(&mut self.engines).enumerate() {
            let ids = index.step_ids(r);
            let n = rest.iter().take_while(|&&h| h < ids.end).count();
            let (mine, tail) = rest.split_at(n);
            rest = tail;
            if mine.is_empty() {
                match (&rule.query, engine) {
                    (Correlation::Sequence(q), Engine::Sequence(e)) if e.holds_state() => {
                        e.advance(q, ord, &mut self.out)
                    }
                    (_, Engine::Sample(e)) if e.holds_state() => e.advance(ord),
                    _ => continue,
                }
            } else {
                let steps = StepMatches::Known {
                    ids: mine,
                    base: ids.start,
                };
                match (&rule.query, engine) {
                    (Correlation::Sequence(q), Engine::Sequence(e)) => e.process_steps(
                        q,
                        doc,
                        ord,
                        partition,
                        steps,
                        &mut || ev.clone(),
                        &mut self.out,
                    ),
                    (Correlation::Sample(q), Engine::Sample(e)) => {
                        e.process_steps(q, doc, ord, steps, &mut || ev.clone(), &mut self.out)
                    }
                    _ => {}
                }
            }
            Self::drain(&mut self.out, rule, emit);
        }
    }

    /// [`SequenceRunner::process`] by feeding the event to every engine,
    /// each evaluating every one of its steps (the reference the index is
    /// tested against).
    pub fn process_exhaustive(
        &mut self,
        rules: &RuleSet,
        ev: &Payload<E>,
        ord: Ordinal,
        emit: &mut dyn FnMut(&SequenceRule, &[&Value]),
    ) {
        let doc: &E = ev;
        let partition = tenant_of(doc, &self.tenant_field);
        for (rule, engine) in rules.sequences().iter().zip(&mut self.engines) {
            match (&rule.query, engine) {
                (Correlation::Sequence(q), Engine::Sequence(e)) => {
                    e.process_in(q, doc, ord, partition, &mut || ev.clone(), &mut self.out)
                }
                (Correlation::Sample(q), Engine::Sample(e)) => {
                    e.process(q, doc, ord, &mut || ev.clone(), &mut self.out)
                }
                _ => {}
            }
            Self::drain(&mut self.out, rule, emit);
        }
    }

    /// Moves time forward without an event (expiry, trailing windows).
    pub fn advance(
        &mut self,
        rules: &RuleSet,
        now: Ordinal,
        emit: &mut dyn FnMut(&SequenceRule, &[&Value]),
    ) {
        for (rule, engine) in rules.sequences().iter().zip(&mut self.engines) {
            match (&rule.query, engine) {
                (Correlation::Sequence(q), Engine::Sequence(e)) => e.advance(q, now, &mut self.out),
                (_, Engine::Sample(e)) => e.advance(now),
                _ => {}
            }
            Self::drain(&mut self.out, rule, emit);
        }
    }

    /// End of input (replay): reports what only waited for more time, and
    /// the samples.
    pub fn finish(&mut self, rules: &RuleSet, emit: &mut dyn FnMut(&SequenceRule, &[&Value])) {
        for (rule, engine) in rules.sequences().iter().zip(&mut self.engines) {
            match (&rule.query, engine) {
                (Correlation::Sequence(q), Engine::Sequence(e)) => e.finish(q, &mut self.out),
                (_, Engine::Sample(e)) => e.finish(&mut self.out),
                _ => {}
            }
            Self::drain(&mut self.out, rule, emit);
        }
    }

    fn drain(
        out: &mut Vec<SequenceMatch<Payload<E>>>,
        rule: &SequenceRule,
        emit: &mut dyn FnMut(&SequenceRule, &[&Value]),
    ) {
        for m in out.drain(..) {
            let events: Vec<&Value> = m.events.iter().map(|e| e.json()).collect();
            emit(rule, &events);
        }
    }

    /// Counters summed over the rules.
    pub fn stats(&self) -> SequenceStats {
        let mut s = SequenceStats::default();
        for e in &self.engines {
            s.add(&match e {
                Engine::Sequence(e) => e.stats(),
                Engine::Sample(e) => e.stats(),
            });
        }
        s
    }

    /// Estimated state bytes summed over the rules.
    pub fn approx_bytes(&self) -> usize {
        self.engines
            .iter()
            .map(|e| match e {
                Engine::Sequence(e) => e.approx_bytes(),
                Engine::Sample(e) => e.approx_bytes(),
            })
            .sum()
    }
}

/// The tenant an event belongs to, for the sequence engines' eviction
/// (`eql::sequence`, "Bounded state"): its `container.id` (`field`),
/// hashed, or [`NO_PARTITION`] for the host's own processes. The container
/// id comes from the cgroup path's outermost container segment
/// (`context::container_id`), which a process cannot choose.
pub fn tenant_of<D: Document + ?Sized>(doc: &D, field: &FieldRef) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut tenant = NO_PARTITION;
    doc.visit(field, &mut |v| {
        if let FieldValue::Str(id) = v {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            id.hash(&mut h);
            // 0 stays the host's.
            tenant = h.finish().max(1);
        }
        true
    });
    tenant
}

/// Whether any sequence rule needs to see this event (one indexed check
/// for all of them, [`RuleSet::interested`]).
pub fn interested<D: Document + ?Sized>(rules: &RuleSet, doc: &D) -> bool {
    rules.interested(doc)
}

/// Events held until no earlier event can still arrive: an event is
/// released once an event at least `window_ms` later has been seen (or
/// when more than `max_events` are held, the oldest first; counted).
#[derive(Debug)]
pub struct ReorderWindow<T> {
    heap: BinaryHeap<Reverse<(Ordinal, u64)>>,
    events: std::collections::HashMap<u64, T>,
    window_ms: i64,
    max_events: usize,
    newest: Option<Ordinal>,
    seq: u64,
    /// Events released early because the window was full.
    pub forced: u64,
    /// Events that arrived after an event more than `window_ms` later had
    /// been released (processed late, in arrival order).
    pub late: u64,
    released_up_to: Option<Ordinal>,
}

impl<T> ReorderWindow<T> {
    /// A window of `window_ms` holding at most `max_events`.
    pub fn new(window_ms: u64, max_events: usize) -> ReorderWindow<T> {
        ReorderWindow {
            heap: BinaryHeap::new(),
            events: std::collections::HashMap::new(),
            window_ms: window_ms as i64,
            max_events: max_events.max(1),
            newest: None,
            seq: 0,
            forced: 0,
            late: 0,
            released_up_to: None,
        }
    }

    /// Events held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Notes that time reached `ord` (every event, kept or not).
    pub fn observe(&mut self, ord: Ordinal) {
        if self.newest.is_none_or(|n| ord > n) {
            self.newest = Some(ord);
        }
    }

    /// Holds an event.
    pub fn push(&mut self, mut ord: Ordinal, event: T) {
        self.observe(ord);
        if self.released_up_to.is_some_and(|r| ord < r) {
            // Too late for its place: it goes right after what was released.
            self.late += 1;
            if let Some(r) = self.released_up_to {
                ord = Ordinal { tie: r.tie, ..r };
            }
        }
        self.seq += 1;
        self.heap.push(Reverse((ord, self.seq)));
        self.events.insert(self.seq, event);
    }

    /// Releases, in order, the events the window no longer needs to hold
    /// (all of them when `all`).
    pub fn release(&mut self, all: bool, f: &mut dyn FnMut(Ordinal, T)) {
        let limit = self.newest.map(|n| n.ms.saturating_sub(self.window_ms));
        while let Some(Reverse((ord, seq))) = self.heap.peek().copied() {
            let due = all || limit.is_some_and(|l| ord.ms <= l);
            let full = self.heap.len() > self.max_events;
            if !due && !full {
                break;
            }
            if full && !due {
                self.forced += 1;
            }
            self.heap.pop();
            if let Some(ev) = self.events.remove(&seq) {
                self.released_up_to = Some(ord);
                f(ord, ev);
            }
        }
    }

    /// The time up to which everything was released (for expiry).
    pub fn watermark(&self) -> Option<Ordinal> {
        self.newest.map(|n| Ordinal {
            ms: n.ms.saturating_sub(self.window_ms),
            sub_ns: 0,
            tie: 0,
        })
    }
}

/// How long the live sensor holds events for sequences before feeding them
/// in kernel-time order (events from different CPUs reach the ring buffer
/// out of order by far less than this).
pub const LIVE_REORDER_WINDOW_MS: u64 = 100;

/// Most events the live reorder window holds (only events a sequence rule
/// is interested in are held); beyond it the oldest is released early and
/// counted.
pub const LIVE_REORDER_MAX_EVENTS: usize = 65_536;

/// An event held in the live reorder window, with the steps it matches
/// (decided once, when it arrived).
#[derive(Debug)]
struct Held<E> {
    event: Payload<E>,
    steps: Box<[u32]>,
}

/// The live sensor's sequence path: a [`ReorderWindow`] in front of a
/// [`SequenceRunner`]. Every event advances time; only the events some
/// sequence rule is interested in are held, as they are (no copy).
#[derive(Debug)]
pub struct LiveSequences<E> {
    runner: SequenceRunner<E>,
    window: ReorderWindow<Held<E>>,
    /// Step ids of the event at hand, reused from event to event.
    hits: Vec<u32>,
    arrivals: u64,
    /// Events a sequence rule needed but without a usable `@timestamp`.
    pub no_timestamp: u64,
}

impl<E: SequenceEvent> LiveSequences<E> {
    /// `None` when the rule set has no sequence rule.
    pub fn new(rules: &RuleSet) -> Option<LiveSequences<E>> {
        (!rules.sequences().is_empty()).then(|| LiveSequences {
            runner: SequenceRunner::with_default_cap(rules, RunMode::Live),
            window: ReorderWindow::new(LIVE_REORDER_WINDOW_MS, LIVE_REORDER_MAX_EVENTS),
            hits: Vec::new(),
            arrivals: 0,
            no_timestamp: 0,
        })
    }

    /// One live event: the interest check ([`RuleIndex::step_hits`]:
    /// which steps of which rules it matches) runs on it as it is; held
    /// (moved, not copied) with those steps if a sequence rule needs it,
    /// then whatever the window releases is fed to the engines whose steps
    /// it matched.
    ///
    /// [`RuleIndex::step_hits`]: super::RuleIndex::step_hits
    pub fn on_event(
        &mut self,
        rules: &RuleSet,
        ev: E,
        emit: &mut dyn FnMut(&SequenceRule, &[&Value]),
    ) {
        self.arrivals += 1;
        rules
            .index()
            .step_hits(rules.sequences(), &ev, &mut self.hits);
        let wanted = !self.hits.is_empty();
        match Ordinal::of(&ev, self.arrivals) {
            Some(ord) if wanted => self.window.push(
                ord,
                Held {
                    event: Rc::new(ev),
                    steps: self.hits.as_slice().into(),
                },
            ),
            Some(ord) => self.window.observe(ord),
            None if wanted => self.no_timestamp += 1,
            None => {}
        }
        self.release(rules, false, emit);
    }

    /// Time passes without events (wall clock, epoch milliseconds).
    pub fn tick(
        &mut self,
        rules: &RuleSet,
        now_ms: i64,
        emit: &mut dyn FnMut(&SequenceRule, &[&Value]),
    ) {
        self.window.observe(Ordinal {
            ms: now_ms,
            sub_ns: 0,
            tie: 0,
        });
        self.release(rules, false, emit);
    }

    /// Releases what the window holds (all of it at shutdown).
    pub fn release(
        &mut self,
        rules: &RuleSet,
        all: bool,
        emit: &mut dyn FnMut(&SequenceRule, &[&Value]),
    ) {
        let runner = &mut self.runner;
        self.window.release(all, &mut |ord, held| {
            runner.process_hits(rules, &held.event, ord, &held.steps, emit);
        });
        if let Some(w) = self.window.watermark() {
            self.runner.advance(rules, w, emit);
        }
    }

    /// The engines' counters.
    pub fn stats(&self) -> SequenceStats {
        self.runner.stats()
    }

    /// Events held in the reorder window now.
    pub fn held(&self) -> usize {
        self.window.len()
    }

    /// (events released early because the window was full, events that
    /// arrived later than the window).
    pub fn reorder_counts(&self) -> (u64, u64) {
        (self.window.forced, self.window.late)
    }

    /// Estimated bytes of sequence state (not the held events).
    pub fn approx_bytes(&self) -> usize {
        self.runner.approx_bytes()
    }
}
