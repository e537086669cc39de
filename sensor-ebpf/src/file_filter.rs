//! The file-event prefilter: after a file record's path is walked and
//! before it is sent, drops the records no loaded rule could match. The
//! agent derives the maps from the rules (`sensor::rules::prefilter`) and
//! fills them after loading; until then (and for an operation whose rules
//! cannot be reduced) `FILE_FILTER_OPS` is zero and everything passes. The
//! key forms and matching steps are `sensor_common::prefilter`'s, shared
//! with the agent's model. Every verdict is counted per operation.

use aya_ebpf::{
    helpers::generated::bpf_probe_read_kernel,
    macros::map,
    maps::{lpm_trie::Key, Array, HashMap, LpmTrie, PerCpuArray},
};
use sensor_common::{
    file_op,
    prefilter::{
        fill_path_key, name_hashes, tail_window, verdict, NameScan, COUNTS_LEN, FILTER_ON,
        KEY_DATA, MAX_ENTRIES, OPS, TAIL, TAIL_ROOM,
    },
    FileRecord, FILE_NAMES, FILE_OLD_PATH_AT, FILE_OLD_PATH_INCOMPLETE, FILE_PATH_INCOMPLETE,
    FILE_PATH_MAX,
};

/// Per operation: [`FILTER_ON`] to check its records; 0 (the default) to
/// pass them all.
#[map]
static FILE_FILTER_OPS: Array<u32> = Array::with_max_entries(OPS, 0);

/// Exact paths and directory prefixes, by operation (`fill_path_key`).
#[map]
static FILE_FILTER_PATHS: LpmTrie<[u8; KEY_DATA], u8> = LpmTrie::with_max_entries(MAX_ENTRIES, 0);

/// Hashes of basenames and extensions, by operation (`hash_of`).
#[map]
static FILE_FILTER_NAMES: HashMap<u64, u8> = HashMap::with_max_entries(MAX_ENTRIES, 0);

/// Verdicts per operation (`op * verdict::COUNT + verdict`).
#[map]
static FILE_FILTER_COUNTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTS_LEN, 0);

/// This CPU's LPM key and tail window (over what the stack can spare).
#[repr(C)]
pub struct KeyScratch {
    key: Key<[u8; KEY_DATA]>,
    tail: [u8; TAIL_ROOM],
}

#[map]
static FILE_FILTER_KEY: PerCpuArray<KeyScratch> = PerCpuArray::with_max_entries(1, 0);

/// This CPU's basename scan state (see `NameScan`).
#[map]
static FILE_FILTER_SCAN: PerCpuArray<NameScan> = PerCpuArray::with_max_entries(1, 0);

fn count(op: u32, v: u32) {
    if let Some(c) = FILE_FILTER_COUNTS.get_ptr_mut(op * verdict::COUNT + v) {
        // SAFETY: per-CPU slot, only this CPU's programs touch it, and
        // they do not interleave.
        unsafe { *c += 1 };
    }
}

/// Whether the record is sent: counts the verdict.
#[inline(always)]
pub fn passes(rec: &FileRecord) -> bool {
    let op = rec.info.op;
    if op > file_op::RENAME {
        return true;
    }
    let on = FILE_FILTER_OPS.get(op).copied().unwrap_or(0) == FILTER_ON;
    let v = if !on {
        verdict::PASS_ALL
    } else if rec.info.flags & (FILE_NAMES | FILE_PATH_INCOMPLETE) != 0
        || (op == file_op::RENAME && rec.info.flags & FILE_OLD_PATH_INCOMPLETE != 0)
    {
        verdict::UNCHECKED
    } else if matches::<0>(rec, rec.info.path_len as usize, op)
        || (op == file_op::RENAME
            && matches::<FILE_OLD_PATH_AT>(rec, rec.info.old_path_len as usize, op))
    {
        verdict::PASSED
    } else {
        verdict::FILTERED
    };
    count(op, v);
    v != verdict::FILTERED
}

/// The path at `data[AT..AT + len]` matches an atom of `op`.
#[inline(always)]
fn matches<const AT: usize>(rec: &FileRecord, len: usize, op: u32) -> bool {
    let Some(scan) = FILE_FILTER_SCAN.get_ptr_mut(0) else {
        return true; // no scratch slot: pass rather than lose
    };
    // SAFETY: this CPU's slot, valid for the program's duration.
    let (name, ext) = name_hashes::<AT>(&rec.data, len, op, unsafe { &mut *scan });
    // SAFETY: map lookups by value; the values are never read.
    if name.is_some_and(|h| unsafe { FILE_FILTER_NAMES.get(&h) }.is_some())
        || ext.is_some_and(|h| unsafe { FILE_FILTER_NAMES.get(&h) }.is_some())
    {
        return true;
    }
    let Some(s) = FILE_FILTER_KEY.get_ptr_mut(0) else {
        return true; // no key slot: pass rather than lose
    };
    // SAFETY: this CPU's slot, valid for the program's duration.
    let s = unsafe { &mut *s };
    s.tail = [0; TAIL_ROOM];
    let (from, to, n) = tail_window(len);
    if n > 0 {
        // SAFETY: `to & (TAIL - 1)` + `n` (at most TAIL) stays inside the
        // window; the source is inside `rec.data` (AT + FILE_PATH_MAX +
        // TAIL fits).
        let r = unsafe {
            bpf_probe_read_kernel(
                s.tail.as_mut_ptr().add(to & (TAIL - 1)).cast(),
                (n & (TAIL * 2 - 1)) as u32,
                rec.data
                    .as_ptr()
                    .add(AT + (from & (FILE_PATH_MAX - 1)))
                    .cast(),
            )
        };
        if r != 0 {
            return true; // could not build the key: pass rather than lose
        }
    }
    s.key.prefix_len = (KEY_DATA * 8) as u32;
    fill_path_key(&s.tail, op, &mut s.key.data);
    FILE_FILTER_PATHS.get(&s.key).is_some()
}
