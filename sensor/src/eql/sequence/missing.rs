//! Missing-event steps (`![q]`): the events seen for them, and whether
//! they void a positive sequence.

use super::*;

impl<P: Clone> SequenceEngine<P> {
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
    pub(super) fn voided(&self, seq: &CompiledSequence, key: &Key, ords: &[Ordinal]) -> bool {
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
    pub(super) fn note_missing(
        &mut self,
        seq: &CompiledSequence,
        key: Key,
        m: usize,
        ord: Ordinal,
    ) {
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
}
