//! Counts by record kind, one counter per kind of the registry
//! (`sensor_common::KINDS`, indexed by `sensor_common::lost_index`), named
//! the same way in the metrics, the shutdown summary and the warnings:
//! records handled ([`HandledCounts`]) and records the kernel lost to a
//! full ring buffer ([`LostCounts`], from `LOST`).

use sensor_common::{KindInfo, KINDS};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// Lost-record counts since load, indexed by `sensor_common::lost_index`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LostCounts([u64; KINDS.len()]);

impl LostCounts {
    /// Counts in `lost_index` order.
    pub fn from_counts(counts: [u64; KINDS.len()]) -> LostCounts {
        LostCounts(counts)
    }

    /// The count of one kind (`sensor_common::lost_index::*`); 0 for an
    /// index no kind has.
    pub fn get(&self, lost_index: u32) -> u64 {
        self.0.get(lost_index as usize).copied().unwrap_or(0)
    }

    /// Every kind with its count, in registry order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static KindInfo, u64)> + '_ {
        KINDS.iter().zip(self.0.iter().copied())
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `exec 0, fork 2, ...`: the counts as the warning names them.
    pub fn describe(&self) -> String {
        self.iter()
            .map(|(k, n)| format!("{} {n}", k.warning))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The summary's keys (`lost_exec`, ...), one per kind.
impl Serialize for LostCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(KINDS.len()))?;
        for (kind, n) in self.iter() {
            map.serialize_entry(kind.summary_key, &n)?;
        }
        map.end()
    }
}

/// Records handled, by kind (only the kinds the registry marks `handled`
/// are shown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandledCounts([u64; KINDS.len()]);

impl HandledCounts {
    /// One more record of the kind at `lost_index`.
    pub fn add(&mut self, lost_index: u32) {
        if let Some(n) = self.0.get_mut(lost_index as usize) {
            *n += 1;
        }
    }

    pub fn get(&self, lost_index: u32) -> u64 {
        self.0.get(lost_index as usize).copied().unwrap_or(0)
    }
}

/// The summary's keys: each handled kind's name (`exec`, `fork`, ...).
impl Serialize for HandledCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (kind, n) in KINDS.iter().zip(&self.0).filter(|(k, _)| k.handled) {
            map.serialize_entry(kind.name, n)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_common::lost_index;

    #[test]
    fn named_by_the_registry_everywhere() {
        let mut counts = [0; KINDS.len()];
        counts[lost_index::FORK as usize] = 2;
        counts[lost_index::ARGS_CHUNK as usize] = 5;
        let lost = LostCounts::from_counts(counts);
        assert_eq!(lost.total(), 7);
        assert_eq!(lost.get(lost_index::ARGS_CHUNK), 5);
        assert_eq!(lost.get(u32::MAX), 0);
        assert_eq!(
            lost.describe(),
            "exec 0, fork 2, exit 0, cgroup 0, argv continuation 5, file 0, network 0"
        );
        assert_eq!(
            serde_json::to_string(&lost).ok().as_deref(),
            Some(
                r#"{"lost_exec":0,"lost_fork":2,"lost_exit":0,"lost_cgroup_mkdir":0,"lost_args_chunks":5,"lost_file":0,"lost_net":0}"#
            )
        );
    }

    #[test]
    fn handled_shows_the_handled_kinds() {
        let mut handled = HandledCounts::default();
        handled.add(lost_index::EXEC);
        handled.add(lost_index::FILE);
        handled.add(lost_index::FILE);
        handled.add(lost_index::CGROUP_MKDIR);
        handled.add(u32::MAX);
        assert_eq!(handled.get(lost_index::FILE), 2);
        assert_eq!(
            serde_json::to_string(&handled).ok().as_deref(),
            Some(r#"{"exec":1,"fork":0,"exit":0,"file":2,"net":0}"#)
        );
    }
}
