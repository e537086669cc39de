//! Which rules an event reaches: the [`QueryIndex`] of the single-event
//! rules and the one of every sequence and sample step, built once when a
//! [`RuleSet`](super::RuleSet) is assembled.
//!
//! [`RuleIndex::for_each_match`] evaluates only the rules the index names
//! for the event (each in full, so the verdicts are those of evaluating
//! every rule: [`RuleIndex::for_each_match_exhaustive`] is kept for the
//! tests that prove it); [`RuleIndex::step_hits`] is the one interest check
//! of all sequence and sample rules: it names every step (of every rule)
//! the event matches, so that the sequence runner feeds an engine only the
//! events one of its steps matches and no engine evaluates a step again.
//! Neither allocates once the thread's candidate buffer (and the caller's
//! hit buffer) has grown to the largest list seen.

use std::cell::RefCell;

use super::{Rule, SequenceRule};
use crate::eql::{Document, FieldRef, IndexStats, QueryIndex};

thread_local! {
    /// Candidate ids, reused from event to event.
    static CANDIDATES: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// The indexes of a rule set.
#[derive(Debug, Clone, Default)]
pub struct RuleIndex {
    rules: QueryIndex,
    steps: QueryIndex,
    /// For each indexed step: its rule and its position among the rule's
    /// step queries.
    step_owner: Vec<(u32, u32)>,
    /// The id of each sequence rule's first step (step ids are assigned
    /// rule after rule, in step order), then the number of steps.
    step_base: Vec<u32>,
}

impl RuleIndex {
    /// Indexes the rules' queries and the sequences' step queries.
    pub fn build(rules: &[Rule], sequences: &[SequenceRule]) -> RuleIndex {
        let mut step_owner = Vec::new();
        let mut step_base = Vec::with_capacity(sequences.len() + 1);
        for (r, s) in sequences.iter().enumerate() {
            step_base.push(to_u32(step_owner.len()));
            for (k, _) in s.query.step_queries().enumerate() {
                step_owner.push((to_u32(r), to_u32(k)));
            }
        }
        step_base.push(to_u32(step_owner.len()));
        RuleIndex {
            rules: QueryIndex::build_with(rules.iter().map(|r| &r.query), &answered_natively),
            steps: QueryIndex::build_with(
                sequences.iter().flat_map(|s| s.query.step_queries()),
                &answered_natively,
            ),
            step_owner,
            step_base,
        }
    }

    /// The index of the single-event rules (ids are positions in
    /// [`RuleSet::rules`](super::RuleSet::rules)).
    pub fn single_event(&self) -> &QueryIndex {
        &self.rules
    }

    /// How the single-event rules and the sequence steps were filed.
    pub fn stats(&self) -> (IndexStats, IndexStats) {
        (self.rules.stats(), self.steps.stats())
    }

    /// Calls `f` with each rule the event matches, in load order,
    /// evaluating only the rules the index names for it.
    pub fn for_each_match<'r, D: Document + ?Sized>(
        &self,
        rules: &'r [Rule],
        doc: &D,
        f: &mut dyn FnMut(&'r Rule),
    ) {
        with_candidates(|ids| {
            self.rules.candidates(doc, ids);
            for &i in ids.iter() {
                if let Some(r) = rules.get(i as usize) {
                    if r.matches(doc) {
                        f(r);
                    }
                }
            }
        });
    }

    /// [`RuleIndex::for_each_match`] by evaluating every rule.
    pub fn for_each_match_exhaustive<'r, D: Document + ?Sized>(
        rules: &'r [Rule],
        doc: &D,
        f: &mut dyn FnMut(&'r Rule),
    ) {
        for r in rules {
            if r.matches(doc) {
                f(r);
            }
        }
    }

    /// Whether any step of any sequence or sample rule matches the event.
    pub fn interested<D: Document + ?Sized>(&self, sequences: &[SequenceRule], doc: &D) -> bool {
        if sequences.is_empty() {
            return false;
        }
        with_candidates(|ids| {
            self.steps.candidates(doc, ids);
            ids.iter()
                .any(|&i| self.step(sequences, i).is_some_and(|q| q.matches(doc)))
        })
    }

    /// Sets `hits` to the ids of every step (of every sequence and sample
    /// rule) the event matches, ascending: the steps the index names for
    /// it, each evaluated once. [`RuleIndex::step_ids`] tells which ids
    /// are a rule's. Allocates only when `hits` must grow.
    pub fn step_hits<D: Document + ?Sized>(
        &self,
        sequences: &[SequenceRule],
        doc: &D,
        hits: &mut Vec<u32>,
    ) {
        hits.clear();
        if sequences.is_empty() {
            return;
        }
        with_candidates(|ids| {
            self.steps.candidates(doc, ids);
            for &i in ids.iter() {
                if self.step(sequences, i).is_some_and(|q| q.matches(doc)) {
                    hits.push(i);
                }
            }
        });
    }

    /// [`RuleIndex::step_hits`] by evaluating every step of every rule.
    pub fn step_hits_exhaustive<D: Document + ?Sized>(
        sequences: &[SequenceRule],
        doc: &D,
        hits: &mut Vec<u32>,
    ) {
        hits.clear();
        let mut id = 0u32;
        for r in sequences {
            for q in r.query.step_queries() {
                if q.matches(doc) {
                    hits.push(id);
                }
                id = id.saturating_add(1);
            }
        }
    }

    /// The step ids of sequence rule `r` (its step `k` is `start + k`).
    pub fn step_ids(&self, r: usize) -> std::ops::Range<u32> {
        let start = self.step_base.get(r).copied().unwrap_or(0);
        let end = self.step_base.get(r + 1).copied().unwrap_or(start);
        start..end
    }

    fn step<'s>(
        &self,
        sequences: &'s [SequenceRule],
        i: u32,
    ) -> Option<&'s crate::eql::CompiledQuery> {
        let &(r, k) = self.step_owner.get(i as usize)?;
        sequences.get(r as usize)?.query.step_query(k as usize)
    }

    /// [`RuleIndex::interested`] by evaluating every step.
    pub fn interested_exhaustive<D: Document + ?Sized>(
        sequences: &[SequenceRule],
        doc: &D,
    ) -> bool {
        sequences.iter().any(|r| r.query.interested(doc))
    }
}

/// Whether the live sensor's event answers `field` without building its
/// JSON form (asked of an event with every field set: a field it does not
/// model is looked up in the JSON, which visiting builds).
fn answered_natively(field: &FieldRef) -> bool {
    let probe = crate::ecs::every_field_example();
    probe.visit(field, &mut |_| false);
    !probe.json_built()
}

fn to_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Runs `f` with the thread's candidate buffer, or a fresh one when it is
/// in use (a callback that evaluates rules again).
fn with_candidates<T>(f: impl FnOnce(&mut Vec<u32>) -> T) -> T {
    CANDIDATES.with(|c| match c.try_borrow_mut() {
        Ok(mut ids) => f(&mut ids),
        Err(_) => f(&mut Vec::new()),
    })
}
