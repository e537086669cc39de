//! Loads the file prefilter's tables ([`Tables`]: plain data, built from
//! the rules by `rules::prefilter`) into the kernel's maps
//! (`sensor-ebpf/src/file/filter.rs`) and reads back its per-operation
//! verdict counts. The tables go in before an operation is
//! switched on, so no record is ever checked against half-filled maps; an
//! operation left off passes everything.

use aya::maps::{lpm_trie::Key, Array, LpmTrie, MapData, MapError, PerCpuArray};
use aya::Ebpf;
use sensor_common::prefilter::{
    verdict, FILTER_ON, GATE_KEY, GATE_ON, GRAM_BYTES, KEY_DATA, MAX_ENTRIES, PROC_NONE, PROC_READY,
};

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use sensor_common::file_op;

/// What the kernel maps hold: the operations checked, the LPM entries
/// (data bytes; the prefix length is their length), the name and
/// extension hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tables {
    pub on: BTreeSet<u32>,
    pub paths: BTreeSet<Vec<u8>>,
    pub names: HashSet<u64>,
    /// Process-name hashes → the operations (`op_bit`) whose events they
    /// pass.
    pub procs: HashMap<u64, u32>,
    /// The operations the first-component gate judges (`FILE_FILTER_GATE`).
    pub gated: BTreeSet<u32>,
    /// The gate's LPM entries (`FILE_FILTER_FIRST`; the prefix length is
    /// their length).
    pub first: BTreeSet<Vec<u8>>,
    /// Per operation, the optional key forms its atoms use
    /// (`FILE_FILTER_FORMS`, `forms::*`); absent: none.
    pub forms: BTreeMap<u32, u32>,
    /// Per operation with gram atoms, its gram bitmap
    /// (`FILE_FILTER_GRAMS`).
    pub grams: BTreeMap<u32, Box<[u8; GRAM_BYTES]>>,
}

/// Why the prefilter could not be loaded (the sensor then passes every
/// file event, and says so).
#[derive(Debug, thiserror::Error)]
pub enum FileFilterError {
    #[error("map {0} is missing from the eBPF object")]
    Missing(&'static str),
    #[error("map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: MapError,
    },
    #[error("the rules need {need} {what} entries; the kernel map holds {MAX_ENTRIES}")]
    TooMany { what: &'static str, need: usize },
}

fn map_err(map: &'static str) -> impl Fn(MapError) -> FileFilterError {
    move |source| FileFilterError::Map { map, source }
}

/// One per-operation verdict count.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PrefilterCount {
    pub op: &'static str,
    pub verdict: &'static str,
    pub count: u64,
}

/// The verdict counters, kept after the tables are loaded.
pub struct FileFilter {
    counts: PerCpuArray<MapData, u64>,
}

/// Fills the maps from `tables` and switches the checked operations on.
pub fn install(ebpf: &mut Ebpf, tables: &Tables) -> Result<FileFilter, FileFilterError> {
    if tables.names.len() > MAX_ENTRIES as usize {
        return Err(FileFilterError::TooMany {
            what: "name",
            need: tables.names.len(),
        });
    }
    fill_lpm::<KEY_DATA>(ebpf, "FILE_FILTER_PATHS", "path", &tables.paths)?;
    {
        let map = ebpf
            .map_mut("FILE_FILTER_NAMES")
            .ok_or(FileFilterError::Missing("FILE_FILTER_NAMES"))?;
        let mut names: aya::maps::HashMap<_, u64, u8> =
            aya::maps::HashMap::try_from(map).map_err(map_err("FILE_FILTER_NAMES"))?;
        for h in &tables.names {
            names
                .insert(h, 1, 0)
                .map_err(map_err("FILE_FILTER_NAMES"))?;
        }
    }
    if tables.procs.len() > MAX_ENTRIES as usize {
        return Err(FileFilterError::TooMany {
            what: "process name",
            need: tables.procs.len(),
        });
    }
    {
        let map = ebpf
            .map_mut("FILE_FILTER_PROCS")
            .ok_or(FileFilterError::Missing("FILE_FILTER_PROCS"))?;
        let mut procs: aya::maps::HashMap<_, u64, u32> =
            aya::maps::HashMap::try_from(map).map_err(map_err("FILE_FILTER_PROCS"))?;
        for (h, mask) in &tables.procs {
            procs
                .insert(h, mask, 0)
                .map_err(map_err("FILE_FILTER_PROCS"))?;
        }
    }
    fill_lpm::<GATE_KEY>(ebpf, "FILE_FILTER_FIRST", "first-component", &tables.first)?;
    {
        let map = ebpf
            .map_mut("FILE_FILTER_GRAMS")
            .ok_or(FileFilterError::Missing("FILE_FILTER_GRAMS"))?;
        let mut grams: Array<_, [u8; GRAM_BYTES]> =
            Array::try_from(map).map_err(map_err("FILE_FILTER_GRAMS"))?;
        for (op, bits) in &tables.grams {
            grams
                .set(*op, **bits, 0)
                .map_err(map_err("FILE_FILTER_GRAMS"))?;
        }
    }
    {
        // After the entries they announce, before the operations are on.
        let map = ebpf
            .map_mut("FILE_FILTER_FORMS")
            .ok_or(FileFilterError::Missing("FILE_FILTER_FORMS"))?;
        let mut forms: Array<_, u32> =
            Array::try_from(map).map_err(map_err("FILE_FILTER_FORMS"))?;
        for (op, f) in &tables.forms {
            forms.set(*op, f, 0).map_err(map_err("FILE_FILTER_FORMS"))?;
        }
    }
    {
        // After its entries, before the operations are switched on.
        let map = ebpf
            .map_mut("FILE_FILTER_GATE")
            .ok_or(FileFilterError::Missing("FILE_FILTER_GATE"))?;
        let mut gate: Array<_, u32> = Array::try_from(map).map_err(map_err("FILE_FILTER_GATE"))?;
        for op in &tables.gated {
            gate.set(*op, GATE_ON, 0)
                .map_err(map_err("FILE_FILTER_GATE"))?;
        }
    }
    {
        let map = ebpf
            .map_mut("FILE_FILTER_OPS")
            .ok_or(FileFilterError::Missing("FILE_FILTER_OPS"))?;
        let mut ops: Array<_, u32> = Array::try_from(map).map_err(map_err("FILE_FILTER_OPS"))?;
        // Names first: every exec from now on gets a verdict, before any
        // operation relies on one.
        let names = if tables.procs.is_empty() {
            PROC_NONE
        } else {
            FILTER_ON
        };
        ops.set(PROC_READY, names, 0)
            .map_err(map_err("FILE_FILTER_OPS"))?;
        for op in &tables.on {
            ops.set(*op, FILTER_ON, 0)
                .map_err(map_err("FILE_FILTER_OPS"))?;
        }
    }
    let counts = ebpf
        .take_map("FILE_FILTER_COUNTS")
        .ok_or(FileFilterError::Missing("FILE_FILTER_COUNTS"))?;
    Ok(FileFilter {
        counts: PerCpuArray::try_from(counts).map_err(map_err("FILE_FILTER_COUNTS"))?,
    })
}

/// Fills the LPM trie `map` (keys of `N` data bytes) with `entries`, each
/// its own prefix (its length, cut at `N` bytes), refusing more than the
/// map holds.
fn fill_lpm<const N: usize>(
    ebpf: &mut Ebpf,
    map: &'static str,
    what: &'static str,
    entries: &std::collections::BTreeSet<Vec<u8>>,
) -> Result<(), FileFilterError> {
    if entries.len() > MAX_ENTRIES as usize {
        return Err(FileFilterError::TooMany {
            what,
            need: entries.len(),
        });
    }
    let m = ebpf.map_mut(map).ok_or(FileFilterError::Missing(map))?;
    let mut trie: LpmTrie<_, [u8; N], u8> = LpmTrie::try_from(m).map_err(map_err(map))?;
    for entry in entries {
        let mut data = [0u8; N];
        let n = entry.len().min(N);
        data[..n].copy_from_slice(&entry[..n]);
        trie.insert(&Key::new((n * 8) as u32, data), 1, 0)
            .map_err(map_err(map))?;
    }
    Ok(())
}

impl FileFilter {
    /// The per-CPU verdict counts summed, per operation and verdict (every
    /// pair, zeros included: the metrics show the whole matrix).
    pub fn counts(&self) -> Result<Vec<PrefilterCount>, MapError> {
        let mut out = Vec::with_capacity(file_op::NAMES.len() * verdict::COUNT as usize);
        for (op, name) in (0..).zip(file_op::NAMES).skip(1) {
            for v in 0..verdict::COUNT {
                let count = self.counts.get(&(op * verdict::COUNT + v), 0)?.iter().sum();
                out.push(PrefilterCount {
                    op: name,
                    verdict: verdict::NAMES[v as usize],
                    count,
                });
            }
        }
        Ok(out)
    }
}

/// passed / (passed + filtered) over every operation, from `counts`
/// (verdicts other than `filtered` all crossed).
pub fn pass_ratio(counts: &[PrefilterCount]) -> Option<f64> {
    let total: u64 = counts.iter().map(|c| c.count).sum();
    let filtered: u64 = counts
        .iter()
        .filter(|c| c.verdict == "filtered")
        .map(|c| c.count)
        .sum();
    (total > 0).then(|| (total - filtered) as f64 / total as f64)
}
