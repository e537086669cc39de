//! Keeping the table bounded: garbage collection against `/proc`, then
//! least-recently-used eviction.

use crate::context::procfs::{start_ticks, ProcStart};

use super::ProcessTable;

impl ProcessTable {
    /// GC (at most once per `capacity / 8` inserts: it costs a `stat` read
    /// per entry), then, if still full, LRU eviction of a batch of
    /// `capacity / 64` (at least 1) so the next inserts do not each pay an
    /// O(n) selection.
    pub(super) fn make_room(&mut self) {
        let gc_interval = (self.capacity / 8).max(1);
        if self.stats.gc_runs == 0 || self.inserts_since_gc >= gc_interval {
            self.gc();
        }
        if self.entries.len() < self.capacity {
            return;
        }
        let target = self.capacity - (self.capacity / 64).max(1);
        let remove = self.entries.len().saturating_sub(target);
        if remove == 0 {
            return;
        }
        let mut ages: Vec<u64> = self.entries.values().map(|e| e.last_used).collect();
        if remove > ages.len() {
            return;
        }
        // `last_used` values are unique, so exactly `remove` entries are at
        // or below the cutoff.
        let cutoff = *ages.select_nth_unstable(remove - 1).1;
        let before = self.entries.len();
        self.entries.retain(|_, e| e.last_used > cutoff);
        self.stats.evicted += (before - self.entries.len()) as u64;
    }

    /// Removes entries whose pid is gone from `/proc` or belongs to another
    /// start time. Skipped when `proc_root` is not a directory (no `/proc`
    /// mounted must not empty the table).
    fn gc(&mut self) {
        self.stats.gc_runs += 1;
        self.inserts_since_gc = 0;
        if !self.proc_root.is_dir() {
            return;
        }
        let root = &self.proc_root;
        let before = self.entries.len();
        self.entries.retain(|&pid, e| match start_ticks(root, pid) {
            ProcStart::Ticks(t) => t == e.info.start_ticks,
            ProcStart::Gone => false,
            ProcStart::Unknown => true,
        });
        self.stats.gc_removed += (before - self.entries.len()) as u64;
    }
}
