//! EQL `sample`, with Elasticsearch's results in batch and a bounded,
//! documented streaming form for the live sensor.
//!
//! `sample [by k...] [q1] [by ...] [q2] [by ...] ...` asks for events that
//! share a join key, one per filter, in any order and at any distance in
//! time. Elasticsearch (`x-pack/plugin/eql/.../execution/sample/
//! SampleIterator.java`, `assembler/SampleQueryRequest.java`) runs it as:
//!
//! * **Keys.** A composite aggregation over the join keys of each filter
//!   finds the keys present in every filter; a non-optional key field
//!   without value gives no bucket (no match), an optional one (`?field`)
//!   is a `null` key (`missing_bucket`), and `null` joins `null`. A
//!   multi-valued field gives one key per value (terms source). Key values
//!   compare by type and value, as in sequences.
//! * **Events.** For each key, each filter's query (with the key's term
//!   filters) fetches at most `filters + max_samples_per_key − 1` events
//!   (`size = terminate_after`, no sort), and a
//!   backtracking search (`matchSample`) picks one event per filter, in
//!   filter order, all distinct: the first combination found, trying each
//!   filter's candidates in order. An event may match several filters but
//!   fills only one. No combination, no sample.
//! * **`max_samples_per_key` samples per key** (1 by default): the
//!   backtracking goes on past the first choice, in the same order, up to
//!   that many (`matchSamples`; samples of a key may share events),
//!   reported in key order (the composite aggregation's), each with its
//!   events in filter order. A key on a `date` field is the stored instant
//!   (epoch milliseconds), whatever format the value was written in
//!   ([`CompiledSample::type_date_keys`]). No ordering between the
//!   filters' events and no time bound: only the search's time range (a
//!   detection rule's look-back, `from`) limits what can be sampled.
//!
//! Here, in both modes, candidates are taken in [`Ordinal`] order (the
//! input's `@timestamp`, then input order; Elasticsearch's hits come in
//! index order, which it does not promise), at most `filters` per filter
//! and key, and matched with the same backtracking.
//!
//! * [`SampleMode::Batch`] (`sensor replay`): samples are decided at the
//!   end of the input, up to `max_samples_per_key` per key
//!   ([`SampleEngine::with_max_samples_per_key`]), reported in key order: Elasticsearch's
//!   result over the same events.
//! * [`SampleMode::Stream`] (live): a key's sample is reported as soon as
//!   every filter has a candidate and a distinct choice exists, with the
//!   candidates seen so far; then the key is closed for `window_ms`
//!   counted from its first event, so one burst gives one alert, as one
//!   rule run gives one sample per key. Candidates of a key whose first
//!   event is older than `window_ms` (the rule's look-back) are dropped
//!   (counted as expired): Kibana would never search them together. The
//!   difference from Elasticsearch: when an event matches several filters,
//!   the stream may pick a different (earlier-complete) set of events than
//!   the batch would once later events exist; the key and the fact that a
//!   sample exists are the same.
//!
//! # Bounded state
//!
//! At most `cap` keys are held (keys with candidates and keys closed after
//! their sample); one more evicts the oldest, counted in
//! [`SequenceStats::evicted`]. Each key holds at most `filters²`
//! candidates (an ordinal and a shared payload each; `filters × (filters +
//! max_samples_per_key − 1)` in batch).

use std::collections::{HashMap, VecDeque};

use super::ast::SampleQuery;
use super::compile::CompiledQuery;
use super::dates::DateFormat;
use super::document::Document;
use super::error::EqlError;
use super::sequence::{
    compile_step, keys_of, Key, Ordinal, SequenceMatch, SequenceStats, Step, StepMatches,
};

/// A compiled `sample`.
#[derive(Debug, Clone)]
pub struct CompiledSample {
    filters: Vec<Step>,
}

impl CompiledSample {
    /// Number of filters.
    pub fn filters(&self) -> usize {
        self.filters.len()
    }

    /// The queries of the filters: an event matching none of them is of no
    /// interest to the sample.
    pub fn step_queries(&self) -> impl Iterator<Item = &CompiledQuery> {
        self.filters.iter().map(|s| &s.query)
    }

    /// Whether any filter matches the document: the only events the
    /// engine needs to see.
    pub fn interested<D: Document + ?Sized>(&self, doc: &D) -> bool {
        self.filters.iter().any(|f| f.query.matches(doc))
    }

    /// Reads the join keys on `date` fields (those `format_of` gives a
    /// format for, from an index mapping) as epoch milliseconds, as
    /// Elasticsearch's composite aggregation gives them: values written in
    /// different formats are one key.
    pub fn type_date_keys(&mut self, format_of: &dyn Fn(&str) -> Option<DateFormat>) {
        for f in &mut self.filters {
            for k in &mut f.keys {
                k.type_as_date(format_of);
            }
        }
    }
}

/// Compiles a parsed sample.
pub fn compile(q: &SampleQuery) -> Result<CompiledSample, EqlError> {
    let filters = q
        .filters
        .iter()
        .map(|f| compile_step(&q.by, f))
        .collect::<Result<Vec<_>, _>>()?;
    if filters.len() < 2 {
        return Err(EqlError::syntax(
            "a sample needs at least two filters",
            q.span,
        ));
    }
    Ok(CompiledSample { filters })
}

/// When samples are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleMode {
    /// At the end of the input, one per key, in key order (replay).
    Batch,
    /// As soon as one exists; a key is closed for, and its candidates kept
    /// at most, `window_ms` from its first event (live).
    Stream {
        /// The rule's look-back, in milliseconds.
        window_ms: u64,
    },
}

#[derive(Debug)]
struct KeyState<P> {
    /// The ordinal of the key's first candidate (stream expiry).
    first: Ordinal,
    /// Candidates per filter, in ordinal order, at most `filters` each.
    candidates: Vec<Vec<(Ordinal, P)>>,
    /// Closed after its sample (stream): no more candidates until the
    /// window from `first` has passed.
    closed: bool,
    gen: u64,
}

/// The state of one sample rule.
#[derive(Debug)]
pub struct SampleEngine<P> {
    mode: SampleMode,
    keys: HashMap<Key, KeyState<P>>,
    /// Keys in insertion order (generation, key); stale entries skipped.
    age: VecDeque<(u64, Key)>,
    cap: usize,
    /// Most samples per key (batch; Elasticsearch's `max_samples_per_key`).
    per_key: usize,
    gen: u64,
    stats: SequenceStats,
}

impl<P: Clone> SampleEngine<P> {
    /// An engine holding at most `cap` keys.
    pub fn new(mode: SampleMode, cap: usize) -> SampleEngine<P> {
        SampleEngine {
            mode,
            keys: HashMap::new(),
            age: VecDeque::new(),
            cap: cap.max(1),
            per_key: 1,
            gen: 0,
            stats: SequenceStats::default(),
        }
    }

    /// Up to `n` samples per key in batch mode (Elasticsearch's
    /// `max_samples_per_key`, 1 by default): each filter then keeps
    /// `filters + n − 1` candidates per key (what Elasticsearch fetches,
    /// `SampleQueryRequest.singleKeyPair`), and the distinct combinations
    /// are enumerated in order up to `n` (`SampleIterator.matchSamples`;
    /// two samples of a key may share events). The stream gives one.
    pub fn with_max_samples_per_key(mut self, n: usize) -> SampleEngine<P> {
        if self.mode == SampleMode::Batch {
            self.per_key = n.max(1);
        }
        self
    }

    /// Counters (`pending`: keys holding candidates of an incomplete
    /// sample).
    pub fn stats(&self) -> SequenceStats {
        SequenceStats {
            pending: self.keys.values().filter(|k| !k.closed).count() as u64,
            ..self.stats
        }
    }

    /// Estimated heap bytes of the state, not counting shared payloads.
    pub fn approx_bytes(&self) -> usize {
        let mut n = self.age.capacity() * std::mem::size_of::<(u64, Key)>();
        for (k, st) in &self.keys {
            n += std::mem::size_of::<(Key, KeyState<P>)>()
                + std::mem::size_of_val(&**k)
                + k.iter()
                    .map(|v| match v {
                        super::sequence::KeyValue::Str(s) => s.len(),
                        _ => 0,
                    })
                    .sum::<usize>()
                + st.candidates.capacity() * std::mem::size_of::<Vec<(Ordinal, P)>>()
                + st.candidates
                    .iter()
                    .map(|c| c.capacity() * std::mem::size_of::<(Ordinal, P)>())
                    .sum::<usize>();
        }
        n
    }

    /// Moves time to `now` (stream): drops keys whose window has passed.
    pub fn advance(&mut self, now: Ordinal) {
        let SampleMode::Stream { window_ms } = self.mode else {
            return;
        };
        let horizon = now.ms.saturating_sub(window_ms as i64);
        while let Some((gen, key)) = self.age.front() {
            let live = self.keys.get(key).filter(|st| st.gen == *gen);
            match live {
                None => {
                    self.age.pop_front();
                }
                Some(st) if st.first.ms < horizon => {
                    if !st.closed {
                        self.stats.expired += 1;
                    }
                    if let Some((_, key)) = self.age.pop_front() {
                        self.keys.remove(&key);
                    }
                }
                // Keys enter the queue in ordinal order of their first
                // event: the rest are younger.
                Some(_) => break,
            }
        }
    }

    fn make_room(&mut self) {
        while self.keys.len() >= self.cap {
            let Some((gen, key)) = self.age.pop_front() else {
                return;
            };
            if self.keys.get(&key).is_some_and(|st| st.gen == gen) {
                if let Some(st) = self.keys.remove(&key) {
                    if !st.closed {
                        self.stats.evicted += 1;
                    }
                }
            }
        }
    }

    /// Feeds one event (in [`Ordinal`] order). `payload` is called at most
    /// once, when the event becomes a candidate.
    pub fn process<D: Document + ?Sized>(
        &mut self,
        sample: &CompiledSample,
        doc: &D,
        ord: Ordinal,
        payload: &mut dyn FnMut() -> P,
        out: &mut Vec<SequenceMatch<P>>,
    ) {
        self.process_steps(sample, doc, ord, StepMatches::Evaluate, payload, out);
    }

    /// Whether the engine holds keys that time alone can drop (stream
    /// mode): an engine holding none ignores an event no filter matches,
    /// so [`SampleEngine::advance`] on it changes nothing.
    pub fn holds_state(&self) -> bool {
        matches!(self.mode, SampleMode::Stream { .. }) && !self.keys.is_empty()
    }

    /// [`SampleEngine::process`] with the filters the event matches given
    /// (`steps`), or evaluated ([`StepMatches::Evaluate`]). For an event no
    /// filter matches this is [`SampleEngine::advance`] to its ordinal.
    pub fn process_steps<D: Document + ?Sized>(
        &mut self,
        sample: &CompiledSample,
        doc: &D,
        ord: Ordinal,
        steps: StepMatches<'_>,
        payload: &mut dyn FnMut() -> P,
        out: &mut Vec<SequenceMatch<P>>,
    ) {
        self.advance(ord);
        let n = sample.filters.len();
        let mut cached: Option<P> = None;
        let mut touched: Vec<Key> = Vec::new();
        for (i, filter) in sample.filters.iter().enumerate() {
            if !steps.test(i, &filter.query, doc) {
                continue;
            }
            for key in keys_of(doc, &filter.keys) {
                if !self.keys.contains_key(&key) {
                    self.make_room();
                    self.gen += 1;
                    self.keys.insert(
                        key.clone(),
                        KeyState {
                            first: ord,
                            candidates: vec![Vec::new(); n],
                            closed: false,
                            gen: self.gen,
                        },
                    );
                    self.age.push_back((self.gen, key.clone()));
                }
                let Some(st) = self.keys.get_mut(&key) else {
                    continue;
                };
                if st.closed || st.candidates[i].len() >= n.saturating_add(self.per_key - 1) {
                    continue;
                }
                let p = cached.get_or_insert_with(&mut *payload).clone();
                st.candidates[i].push((ord, p));
                if !touched.contains(&key) {
                    touched.push(key);
                }
            }
        }
        let pending = self.keys.values().filter(|k| !k.closed).count() as u64;
        self.stats.peak_pending = self.stats.peak_pending.max(pending);
        if matches!(self.mode, SampleMode::Stream { .. }) {
            for key in touched {
                let Some(st) = self.keys.get_mut(&key) else {
                    continue;
                };
                if let Some(events) = choose(&st.candidates) {
                    st.closed = true;
                    st.candidates = Vec::new();
                    self.stats.completed += 1;
                    out.push(SequenceMatch { key, events });
                }
            }
        }
    }

    /// End of input: in batch mode, one sample per key that has one, in
    /// key order.
    pub fn finish(&mut self, out: &mut Vec<SequenceMatch<P>>) {
        if self.mode != SampleMode::Batch {
            return;
        }
        let mut keys: Vec<(Key, KeyState<P>)> = self.keys.drain().collect();
        self.age.clear();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, st) in keys {
            for events in choose_all(&st.candidates, self.per_key) {
                self.stats.completed += 1;
                out.push(SequenceMatch {
                    key: key.clone(),
                    events,
                });
            }
        }
    }
}

/// One candidate per filter, all distinct (by ordinal), the first
/// combination in filter order trying each filter's candidates in order
/// (Elasticsearch's `SampleIterator.matchSample`); `None` when a filter has
/// no candidate or no distinct choice exists.
fn choose<P: Clone>(candidates: &[Vec<(Ordinal, P)>]) -> Option<Vec<P>> {
    if candidates.iter().any(Vec::is_empty) {
        return None;
    }
    let mut picked: Vec<usize> = Vec::with_capacity(candidates.len());
    if pick(candidates, &mut picked) {
        Some(
            picked
                .iter()
                .enumerate()
                .map(|(f, &c)| candidates[f][c].1.clone())
                .collect(),
        )
    } else {
        None
    }
}

/// Up to `max` combinations of one candidate per filter, all distinct
/// within a combination, in the order [`choose`]'s search meets them
/// (Elasticsearch's `SampleIterator.matchSamples`).
fn choose_all<P: Clone>(candidates: &[Vec<(Ordinal, P)>], max: usize) -> Vec<Vec<P>> {
    let mut found = Vec::new();
    if max == 0 || candidates.iter().any(Vec::is_empty) {
        return found;
    }
    let mut picked: Vec<usize> = Vec::with_capacity(candidates.len());
    enumerate(candidates, &mut picked, max, &mut found);
    found
}

fn enumerate<P: Clone>(
    candidates: &[Vec<(Ordinal, P)>],
    picked: &mut Vec<usize>,
    max: usize,
    found: &mut Vec<Vec<P>>,
) {
    let f = picked.len();
    if f == candidates.len() {
        found.push(
            picked
                .iter()
                .enumerate()
                .map(|(g, &c)| candidates[g][c].1.clone())
                .collect(),
        );
        return;
    }
    for (c, (ord, _)) in candidates[f].iter().enumerate() {
        if found.len() == max {
            return;
        }
        let taken = picked
            .iter()
            .enumerate()
            .any(|(g, &d)| candidates[g][d].0 == *ord);
        if taken {
            continue;
        }
        picked.push(c);
        enumerate(candidates, picked, max, found);
        picked.pop();
    }
}

fn pick<P>(candidates: &[Vec<(Ordinal, P)>], picked: &mut Vec<usize>) -> bool {
    let f = picked.len();
    if f == candidates.len() {
        return true;
    }
    for (c, (ord, _)) in candidates[f].iter().enumerate() {
        let taken = picked
            .iter()
            .enumerate()
            .any(|(g, &d)| candidates[g][d].0 == *ord);
        if taken {
            continue;
        }
        picked.push(c);
        if pick(candidates, picked) {
            return true;
        }
        picked.pop();
    }
    false
}

/// A rule's look-back (`from`, e.g. `now-9m`) in milliseconds; `None` when
/// it is not of the form `now-<N><s|m|h|d>`.
pub fn lookback_ms(from: &str) -> Option<u64> {
    let rest = from.trim().strip_prefix("now-")?;
    let split = rest.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = rest.split_at(split);
    let n: u64 = n.parse().ok()?;
    let unit = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// Kibana's default look-back (`now-6m`), when a rule gives none.
pub const DEFAULT_LOOKBACK_MS: u64 = 6 * 60_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eql::ast::Statement;
    use crate::eql::parser::parse_statement;
    use serde_json::{json, Value};

    fn compiled(src: &str) -> CompiledSample {
        match parse_statement(src).expect("parses") {
            Statement::Sample(s) => compile(&s).expect("compiles"),
            other => panic!("not a sample: {other:?}"),
        }
    }

    /// Runs `events` (id, timestamp ms, document) through an engine; returns
    /// the samples as lists of event ids.
    fn run(
        src: &str,
        mode: SampleMode,
        cap: usize,
        events: &[Value],
    ) -> (Vec<Vec<u64>>, SequenceStats) {
        let q = compiled(src);
        let mut e: SampleEngine<u64> = SampleEngine::new(mode, cap);
        let mut out = Vec::new();
        for (i, ev) in events.iter().enumerate() {
            let ord = Ordinal::of(ev, i as u64).expect("timestamp");
            let id = ev["id"].as_u64().expect("id");
            e.process(&q, ev, ord, &mut || id, &mut out);
        }
        e.finish(&mut out);
        (out.into_iter().map(|m| m.events).collect(), e.stats())
    }

    fn ev(id: u64, t: i64, fields: Value) -> Value {
        let mut v = json!({"id": id, "@timestamp": t, "event": {"category": ["process"]}});
        if let (Some(o), Some(f)) = (v.as_object_mut(), fields.as_object()) {
            o.extend(f.clone());
        }
        v
    }

    const BATCH: SampleMode = SampleMode::Batch;

    #[test]
    fn one_sample_per_key_in_key_order_any_order_any_distance() {
        let q = "sample by host [any where a == 1] [any where b == 1]";
        let events = [
            ev(1, 10, json!({"host": "z", "b": 1})),
            ev(2, 20, json!({"host": "a", "a": 1})),
            ev(3, 9_000_000, json!({"host": "z", "a": 1})),
            ev(4, 9_000_001, json!({"host": "a", "b": 1})),
            ev(5, 9_000_002, json!({"host": "a", "a": 1})),
            ev(6, 9_000_003, json!({"host": "a", "b": 1})),
        ];
        let (got, st) = run(q, BATCH, 100, &events);
        // Key order ("a" before "z"), events in filter order, the first
        // candidates; the second pair of host "a" is no second sample.
        assert_eq!(got, vec![vec![2, 4], vec![3, 1]]);
        assert_eq!(st.completed, 2);
    }

    #[test]
    fn an_event_fills_one_filter_only() {
        let q = "sample by host [any where a == 1] [any where a == 1]";
        let one = [ev(1, 10, json!({"host": "h", "a": 1}))];
        assert!(run(q, BATCH, 100, &one).0.is_empty());
        let two = [
            ev(1, 10, json!({"host": "h", "a": 1})),
            ev(2, 20, json!({"host": "h", "a": 1})),
        ];
        assert_eq!(run(q, BATCH, 100, &two).0, vec![vec![1, 2]]);
    }

    #[test]
    fn backtracking_picks_the_first_distinct_combination() {
        // Filters A, B, C; e1 matches A and B, e2 C, e3 A: A=e1 leaves B
        // nothing, so A=e3, B=e1, C=e2 (SampleIterator's doc example shape).
        let q = "sample by h [any where a == 1] [any where b == 1] [any where c == 1]";
        let events = [
            ev(1, 1, json!({"h": 1, "a": 1, "b": 1})),
            ev(2, 2, json!({"h": 1, "c": 1})),
            ev(3, 3, json!({"h": 1, "a": 1})),
        ];
        assert_eq!(run(q, BATCH, 100, &events).0, vec![vec![3, 1, 2]]);
    }

    #[test]
    fn max_samples_per_key_enumerates_distinct_combinations_in_order() {
        let q = "sample by h [any where a == 1] [any where b == 1]";
        let events = [
            ev(1, 1, json!({"h": 1, "a": 1, "b": 1})),
            ev(2, 2, json!({"h": 1, "a": 1})),
            ev(3, 3, json!({"h": 1, "b": 1})),
            ev(4, 4, json!({"h": 1, "a": 1})),
            ev(5, 5, json!({"h": 2, "a": 1})),
            ev(6, 6, json!({"h": 2, "b": 1})),
        ];
        let run_n = |n: usize| {
            let s = compiled(q);
            let mut e: SampleEngine<u64> =
                SampleEngine::new(BATCH, 100).with_max_samples_per_key(n);
            let mut out = Vec::new();
            for (i, v) in events.iter().enumerate() {
                let ord = Ordinal::of(v, i as u64).expect("timestamp");
                let id = v["id"].as_u64().expect("id");
                e.process(&s, v, ord, &mut || id, &mut out);
            }
            e.finish(&mut out);
            out.into_iter().map(|m| m.events).collect::<Vec<_>>()
        };
        // Key 1: a-candidates 1, 2 (then 4), b-candidates 1, 3: with 2+n-1
        // candidates each, [1,3], [2,1], [2,3] (never [1,1]); samples of a
        // key share events; key 2 has one.
        assert_eq!(run_n(1), vec![vec![1, 3], vec![5, 6]]);
        assert_eq!(run_n(2), vec![vec![1, 3], vec![2, 1], vec![5, 6]]);
        assert_eq!(
            run_n(3),
            vec![vec![1, 3], vec![2, 1], vec![2, 3], vec![5, 6]]
        );
        assert_eq!(
            run_n(10),
            vec![
                vec![1, 3],
                vec![2, 1],
                vec![2, 3],
                vec![4, 1],
                vec![4, 3],
                vec![5, 6]
            ]
        );
        // The stream gives one per window whatever is asked.
        let s = compiled(q);
        let e: SampleEngine<u64> = SampleEngine::new(SampleMode::Stream { window_ms: 10 }, 100)
            .with_max_samples_per_key(5);
        assert_eq!(e.per_key, 1);
        assert!(s.filters() == 2);
    }

    #[test]
    fn missing_keys_do_not_match_optional_keys_join_null() {
        let q = "sample by x [any where a == 1] [any where b == 1]";
        let events = [ev(1, 1, json!({"a": 1})), ev(2, 2, json!({"b": 1}))];
        assert!(run(q, BATCH, 100, &events).0.is_empty());
        let q = "sample by ?x [any where a == 1] [any where b == 1]";
        assert_eq!(run(q, BATCH, 100, &events).0, vec![vec![1, 2]]);
    }

    #[test]
    fn per_filter_keys_and_types() {
        // Different key fields per filter; "1" and 1 are different keys.
        let q = "sample [any where a == 1] by ip [any where b == 1] by host_ip";
        let events = [
            ev(1, 1, json!({"a": 1, "ip": "10.0.0.1"})),
            ev(2, 2, json!({"b": 1, "host_ip": "10.0.0.1"})),
            ev(3, 3, json!({"a": 1, "ip": 1})),
            ev(4, 4, json!({"b": 1, "host_ip": "1"})),
        ];
        assert_eq!(run(q, BATCH, 100, &events).0, vec![vec![1, 2]]);
    }

    #[test]
    fn multi_valued_keys_give_one_key_per_value() {
        let q = "sample by tag [any where a == 1] [any where b == 1]";
        let events = [
            ev(1, 1, json!({"a": 1, "tag": ["p", "q"]})),
            ev(2, 2, json!({"b": 1, "tag": "q"})),
            ev(3, 3, json!({"b": 1, "tag": "p"})),
        ];
        assert_eq!(run(q, BATCH, 100, &events).0, vec![vec![1, 3], vec![1, 2]]);
    }

    #[test]
    fn stream_reports_at_completion_once_per_window() {
        let q = "sample by h [any where a == 1] [any where b == 1]";
        let events = [
            ev(1, 0, json!({"h": 1, "b": 1})),
            ev(2, 100, json!({"h": 1, "a": 1})),
            // Same key within the window: closed, no second sample.
            ev(3, 200, json!({"h": 1, "a": 1})),
            ev(4, 300, json!({"h": 1, "b": 1})),
            // After the window from the first event: a new sample.
            ev(5, 1_100, json!({"h": 1, "a": 1})),
            ev(6, 1_200, json!({"h": 1, "b": 1})),
        ];
        let (got, st) = run(q, SampleMode::Stream { window_ms: 1_000 }, 100, &events);
        assert_eq!(got, vec![vec![2, 1], vec![5, 6]]);
        assert_eq!(st.completed, 2);
        assert_eq!(st.expired, 0);
    }

    #[test]
    fn stream_drops_candidates_past_the_window() {
        let q = "sample by h [any where a == 1] [any where b == 1]";
        let events = [
            ev(1, 0, json!({"h": 1, "a": 1})),
            ev(2, 1_001, json!({"h": 1, "b": 1})),
        ];
        let (got, st) = run(q, SampleMode::Stream { window_ms: 1_000 }, 100, &events);
        assert!(got.is_empty());
        assert_eq!(st.expired, 1);
        // Exactly the window apart still samples.
        let events = [
            ev(1, 0, json!({"h": 1, "a": 1})),
            ev(2, 1_000, json!({"h": 1, "b": 1})),
        ];
        let (got, _) = run(q, SampleMode::Stream { window_ms: 1_000 }, 100, &events);
        assert_eq!(got, vec![vec![1, 2]]);
    }

    #[test]
    fn the_cap_holds_and_evictions_are_counted() {
        let q = "sample by h [any where a == 1] [any where b == 1]";
        let events: Vec<Value> = (0..1_000)
            .map(|i| ev(i, i as i64, json!({"h": i, "a": 1})))
            .collect();
        let mut e: SampleEngine<u64> =
            SampleEngine::new(SampleMode::Stream { window_ms: 60_000 }, 10);
        let s = compiled(q);
        let mut out = Vec::new();
        for (i, v) in events.iter().enumerate() {
            let ord = Ordinal::of(v, i as u64).expect("timestamp");
            e.process(&s, v, ord, &mut || i as u64, &mut out);
            assert!(e.keys.len() <= 10);
        }
        assert_eq!(e.stats().evicted, 990);
        assert_eq!(e.stats().pending, 10);
        assert_eq!(e.stats().peak_pending, 10);
        // The newest key still completes.
        let last = ev(5_000, 5_000, json!({"h": 999, "b": 1}));
        let ord = Ordinal::of(&last, 5_000).expect("timestamp");
        e.process(&s, &last, ord, &mut || 5_000, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].events, vec![999, 5_000]);
    }

    #[test]
    fn candidates_per_filter_are_bounded() {
        let q = "sample by h [any where a == 1] [any where b == 1]";
        let events: Vec<Value> = (0..100)
            .map(|i| ev(i, i as i64, json!({"h": 1, "a": 1})))
            .collect();
        let mut e: SampleEngine<u64> = SampleEngine::new(BATCH, 10);
        let s = compiled(q);
        let mut out = Vec::new();
        for (i, v) in events.iter().enumerate() {
            let ord = Ordinal::of(v, i as u64).expect("timestamp");
            e.process(&s, v, ord, &mut || i as u64, &mut out);
        }
        let st = e.keys.values().next().expect("one key");
        assert_eq!(st.candidates[0].len(), 2);
    }

    #[test]
    fn lookback_parses_rule_from() {
        assert_eq!(lookback_ms("now-9m"), Some(540_000));
        assert_eq!(lookback_ms("now-30s"), Some(30_000));
        assert_eq!(lookback_ms("now-2h"), Some(7_200_000));
        assert_eq!(lookback_ms("now"), None);
        assert_eq!(lookback_ms("now-9x"), None);
        assert_eq!(lookback_ms("2024-01-01"), None);
    }

    #[test]
    fn syntax() {
        for bad in [
            "sample [any where true] [any where true]",
            "sample by x [any where true]",
            "sample by x [any where true] by y [any where true]",
            "sample by x [any where true] with runs=2 [any where true]",
            "sample by x with maxspan=1s [any where true] [any where true]",
            "sample by x [any where true] ![any where true]",
            "sample by x [any where true] [any where true] until [any where true]",
        ] {
            assert!(parse_statement(bad).is_err(), "{bad}");
        }
        let six = format!("sample by x {}", "[any where true] ".repeat(6));
        let e = parse_statement(&six).expect_err("six filters");
        assert_eq!(e.kind, crate::eql::EqlErrorKind::Unsupported);
        assert!(parse_statement("sample by x [any where true] [any where true] | head 1").is_err());
        let ok =
            compiled("sample by host, ?x [process where a == 1] by y [file where b == 1] by z");
        assert_eq!(ok.filters(), 2);
    }
}
