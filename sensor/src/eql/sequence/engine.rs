//! Feeding a [`SequenceEngine`]: steps extend partial sequences, time
//! expires them, `until` ends them, completed ones are reported.

use super::*;

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

    pub(super) fn next_gen(&mut self) -> u64 {
        self.gen += 1;
        self.gen
    }

    pub(super) fn expired(seq: &CompiledSequence, start: Ordinal, now: Ordinal) -> bool {
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

    pub(super) fn complete(
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
    pub(super) fn report(
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
        let shortcuts = matches!(steps, StepMatches::Known { .. });
        for i in (0..seq.positive.len()).rev() {
            let step = &seq.positive[i];
            if !steps.test(i, &step.query, doc) {
                continue;
            }
            // A later step only extends a partial sequence of its key:
            // with none held there is nothing to look up (and no key to
            // build). The reference path (`Evaluate`) looks anyway, so the
            // exactness tests compare the shortcut with the full work.
            if i > 0 && shortcuts && self.keys.is_empty() {
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
            // `until` only ends partial sequences: with none held it has
            // nothing to end.
            if !(shortcuts && self.keys.is_empty())
                && steps.test(positives + seq.missing.len(), &until.query, doc)
            {
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
