//! Running the sequence rules of a [`RuleSet`]: one
//! [`SequenceEngine`] per rule, fed in [`Ordinal`] order, shared by
//! `sensor replay` and the live sensor. The live sensor puts a bounded
//! reorder window ([`ReorderWindow`]) in front, because events from
//! different CPUs reach the ring buffer slightly out of order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use serde_json::Value;

use super::{RuleSet, SequenceRule};
use crate::eql::sequence::{Ordinal, SequenceMatch, DEFAULT_MAX_PENDING};
use crate::eql::{Document, SequenceEngine, SequenceStats};

/// A shared event, as sequences keep it.
pub type Payload = Arc<Value>;

/// The engines of every sequence rule of a rule set.
#[derive(Debug)]
pub struct SequenceRunner {
    engines: Vec<SequenceEngine<Payload>>,
    out: Vec<SequenceMatch<Payload>>,
}

impl SequenceRunner {
    /// One engine per sequence rule of `rules`, each holding at most `cap`
    /// partial sequences.
    pub fn new(rules: &RuleSet, cap: usize) -> SequenceRunner {
        SequenceRunner {
            engines: rules
                .sequences()
                .iter()
                .map(|_| SequenceEngine::new(cap))
                .collect(),
            out: Vec::new(),
        }
    }

    /// With the default cap ([`DEFAULT_MAX_PENDING`]).
    pub fn with_default_cap(rules: &RuleSet) -> SequenceRunner {
        SequenceRunner::new(rules, DEFAULT_MAX_PENDING)
    }

    /// Whether any sequence rule needs to see this event.
    pub fn interested<D: Document + ?Sized>(rules: &RuleSet, doc: &D) -> bool {
        rules.sequences().iter().any(|r| r.query.interested(doc))
    }

    /// Feeds one event, in ordinal order; `emit` gets every completed
    /// sequence with its rule.
    pub fn process<D: Document + ?Sized>(
        &mut self,
        rules: &RuleSet,
        doc: &D,
        ord: Ordinal,
        payload: &mut dyn FnMut() -> Payload,
        emit: &mut dyn FnMut(&SequenceRule, &[&Value]),
    ) {
        for (rule, engine) in rules.sequences().iter().zip(&mut self.engines) {
            engine.process(&rule.query, doc, ord, payload, &mut self.out);
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
            engine.advance(&rule.query, now, &mut self.out);
            Self::drain(&mut self.out, rule, emit);
        }
    }

    /// End of input (replay): reports what only waited for more time.
    pub fn finish(&mut self, rules: &RuleSet, emit: &mut dyn FnMut(&SequenceRule, &[&Value])) {
        for (rule, engine) in rules.sequences().iter().zip(&mut self.engines) {
            engine.finish(&mut self.out);
            Self::drain(&mut self.out, rule, emit);
        }
    }

    fn drain(
        out: &mut Vec<SequenceMatch<Payload>>,
        rule: &SequenceRule,
        emit: &mut dyn FnMut(&SequenceRule, &[&Value]),
    ) {
        for m in out.drain(..) {
            let events: Vec<&Value> = m.events.iter().map(|e| &**e).collect();
            emit(rule, &events);
        }
    }

    /// Counters summed over the rules.
    pub fn stats(&self) -> SequenceStats {
        let mut s = SequenceStats::default();
        for e in &self.engines {
            s.add(&e.stats());
        }
        s
    }

    /// Estimated state bytes summed over the rules.
    pub fn approx_bytes(&self) -> usize {
        self.engines.iter().map(SequenceEngine::approx_bytes).sum()
    }
}

/// Events held until no earlier event can still arrive: an event is
/// released once an event at least `window_ms` later has been seen (or
/// when more than `max_events` are held, the oldest first; counted).
#[derive(Debug)]
pub struct ReorderWindow {
    heap: BinaryHeap<Reverse<(Ordinal, u64)>>,
    events: std::collections::HashMap<u64, Payload>,
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

impl ReorderWindow {
    /// A window of `window_ms` holding at most `max_events`.
    pub fn new(window_ms: u64, max_events: usize) -> ReorderWindow {
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
    pub fn push(&mut self, mut ord: Ordinal, event: Payload) {
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
    pub fn release(&mut self, all: bool, f: &mut dyn FnMut(Ordinal, Payload)) {
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
