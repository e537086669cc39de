//! The bounded state of a [`SequenceEngine`]: holding, replacing and
//! evicting partial sequences per partition (see "Bounded state" in the
//! module documentation).

use super::*;

impl<P: Clone> SequenceEngine<P> {
    /// One held entry of `partition` is gone.
    pub(super) fn release(&mut self, partition: u64) {
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
    pub(super) fn hold(&mut self, partition: u64, gen: u64, key: &Key, slot: Slot) {
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
    pub(super) fn remove(&mut self, key: &Key, slot: Slot) {
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
    pub(super) fn make_room(&mut self, partition: u64) {
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
    pub(super) fn evict_oldest_of(&mut self, partition: u64) -> bool {
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

    pub(super) fn compact_age(&mut self) {
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

    pub(super) fn state<'a>(
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

    pub(super) fn store(&mut self, seq: &CompiledSequence, key: &Key, i: usize, mut p: Partial<P>) {
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
}
