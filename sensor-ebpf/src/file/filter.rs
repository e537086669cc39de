//! The file-event prefilter: after a file record's path is walked and
//! before it is sent, drops the records no loaded rule could match. The
//! agent derives the maps from the rules (`sensor::rules::prefilter`) and
//! fills them after loading; until then (and for an operation whose rules
//! cannot be reduced) `FILE_FILTER_OPS` is zero and everything passes. The
//! key forms and matching steps are `sensor_common::prefilter`'s, shared
//! with the agent's model. Every verdict is counted per operation.

use crate::kernel_read::{offset, read_ptr};
use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_probe_read_kernel, bpf_probe_read_kernel_str},
    },
    macros::map,
    maps::{lpm_trie::Key, Array, HashMap, LpmTrie, LruHashMap, PerCpuArray},
};
use sensor_common::{
    file_op,
    prefilter::{
        fill_first_key, fill_path_key, first_component_at, fold_key, fold_word, forms, gram_hit,
        name_hashes, name_shape, op_bit, plain_name, proc_name_hash, proc_window, tail_window,
        verdict, NameHashes, NameScan, NameShape, COUNTS_LEN, FILTER_ON, FOLD_TAG,
        GATE_COMPONENT_READ, GATE_KEY, GATE_ON, GRAM_BYTES, KEY_DATA, MAX_ENTRIES, OPS, PROC_READY,
        PROC_VERDICTS_MAX, PROC_WINDOW, PROC_WINDOW_ROOM, SHAPE_MAX, TAIL, TAIL_ROOM,
    },
    ExecRecord, FileRecord, ARGS_MAX, CWD_MAX, CWD_NAME_MAX, EXEC_EXE_INCOMPLETE, EXEC_EXE_PRESENT,
    FILENAME_MAX, FILE_NAMES, FILE_NAME_AT, FILE_NAME_INCOMPLETE, FILE_OLD_NAME_AT,
    FILE_OLD_PATH_AT, FILE_OLD_PATH_INCOMPLETE, FILE_PATH_INCOMPLETE, FILE_PATH_MAX,
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

/// Per operation: which optional key forms its atoms use (`forms`); 0
/// (the default): none, only the plain lookups are made.
#[map]
static FILE_FILTER_FORMS: Array<u32> = Array::with_max_entries(OPS, 0);

/// Per operation: the gram bitmap (`gram_bit_of`), looked at when
/// `FILE_FILTER_FORMS[op]` has `forms::GRAMS`.
#[map]
static FILE_FILTER_GRAMS: Array<[u8; GRAM_BYTES]> = Array::with_max_entries(OPS, 0);

/// `op`'s optional key forms (`forms`).
#[inline(always)]
fn forms_of(op: u32) -> u32 {
    FILE_FILTER_FORMS.get(op).copied().unwrap_or(0)
}

/// Verdicts per operation (`op * verdict::COUNT + verdict`).
#[map]
static FILE_FILTER_COUNTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTS_LEN, 0);

/// This CPU's LPM keys (the path key and the first-component key) and
/// tail window (over what the stack can spare). The pads put each key's
/// data at a multiple of 8 bytes, so `fold_key_words` folds it a word at
/// a time.
#[repr(C)]
pub struct KeyScratch {
    _pad: u32,
    key: Key<[u8; KEY_DATA]>,
    _pad2: u32,
    first: Key<[u8; KEY_DATA]>,
    tail: [u8; TAIL_ROOM],
}

/// `fold_key` of a key whose data is 8-byte aligned (`KeyScratch`), eight
/// bytes per step: the same bytes (`fold_word` folds each byte as `fold`).
#[inline(always)]
fn fold_key_words(data: &mut [u8; KEY_DATA]) {
    let words = data.as_mut_ptr().cast::<u64>();
    let mut i = 0;
    while i < KEY_DATA / 8 {
        // SAFETY: `data` is 8-byte aligned (`KeyScratch`'s layout) and
        // holds KEY_DATA / 8 words.
        unsafe { *words.add(i) = fold_word(*words.add(i)) };
        i += 1;
    }
    data[0] |= FOLD_TAG;
}

#[map]
static FILE_FILTER_KEY: PerCpuArray<KeyScratch> = PerCpuArray::with_max_entries(1, 0);

/// This CPU's basename scan state (see `NameScan`).
#[map]
static FILE_FILTER_SCAN: PerCpuArray<NameScan> = PerCpuArray::with_max_entries(1, 0);

/// Process names that pass file events (`proc_hash_of`): the mask of the
/// operations (`op_bit`) whose rules name them.
#[map]
static FILE_FILTER_PROCS: HashMap<u64, u32> = HashMap::with_max_entries(MAX_ENTRIES, 0);

/// Per process (tgid), decided at its exec and inherited at fork: the
/// operations whose events its name passes. No entry: everything passes
/// (processes older than the filter, evicted ones, unsure names).
#[map]
static FILE_FILTER_PROC_VERDICT: LruHashMap<u32, u32> =
    LruHashMap::with_max_entries(PROC_VERDICTS_MAX, 0);

/// This CPU's execve filename window (`proc_window`).
#[map]
static FILE_FILTER_PROC_WINDOW: PerCpuArray<[u8; PROC_WINDOW_ROOM]> =
    PerCpuArray::with_max_entries(1, 0);

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
    } else if names_used() && name_passes(rec.info.tgid, op) {
        verdict::PASSED
    } else if rec.info.flags & FILE_PATH_INCOMPLETE != 0
        || (op == file_op::RENAME && rec.info.flags & FILE_OLD_PATH_INCOMPLETE != 0)
    {
        verdict::UNCHECKED
    } else if rec.info.flags & FILE_NAMES != 0 {
        match names_match(rec, op) {
            Some(true) => verdict::PASSED,
            Some(false) => verdict::FILTERED,
            None => verdict::UNCHECKED,
        }
    } else if matches::<0, false>(rec, rec.info.path_len as usize, op) != Some(false)
        || (op == file_op::RENAME
            && matches::<FILE_OLD_PATH_AT, false>(rec, rec.info.old_path_len as usize, op)
                != Some(false))
    {
        verdict::PASSED
    } else {
        verdict::FILTERED
    };
    count(op, v);
    v != verdict::FILTERED
}

/// `x` through memory, so the mask after it is not folded into an
/// earlier comparison: the verifier must see a copy's size bounded where
/// it is used.
#[inline(always)]
fn bounded(x: usize) -> usize {
    // SAFETY: a read of a local (the argument's own slot).
    unsafe { core::ptr::read_volatile(&x) }
}

/// Room for a plain name and its NUL in a joined path.
const NAME_ROOM: usize = 256;

/// This CPU's joined paths (a syscall's plain names after their walked
/// directory, in the walk's form): the same layout as a walked record.
#[map]
static FILE_FILTER_JOIN: PerCpuArray<FileRecord> = PerCpuArray::with_max_entries(1, 0);

/// A syscall-tracepoint record (names as passed, `FILE_NAMES`): when every
/// name is plain (`plain_name`: no `/`, not `.`/`..`), the walked
/// directory + name is the path the agent will join, so it is checked like
/// a walked one; `None` (sent unchecked) otherwise.
#[inline(never)]
fn names_match(rec: &FileRecord, op: u32) -> Option<bool> {
    if rec.info.flags & FILE_NAME_INCOMPLETE != 0 {
        return None;
    }
    let j = FILE_FILTER_JOIN.get_ptr_mut(0)?;
    // SAFETY: this CPU's slot, valid for the program's duration.
    let j = unsafe { &mut *j };
    let dir = rec.info.path_len as usize;
    let new = join::<0, FILE_NAME_AT>(j, rec, rec.info.name_len as usize, dir)?;
    let new = matches::<0, true>(j, new, op)?;
    if op != file_op::RENAME {
        return Some(new);
    }
    let old =
        join::<FILE_OLD_PATH_AT, FILE_OLD_NAME_AT>(j, rec, rec.info.old_name_len as usize, dir)?;
    let old = matches::<FILE_OLD_PATH_AT, true>(j, old, op)?;
    Some(new || old)
}

/// Writes the name at `rec.data[FROM..]` (`name_len` bytes with its NUL)
/// then the walked directory (`dir` bytes at 0) at `j.data[AT..]`: the
/// walk's form of directory + name. Returns its length; `None` when empty
/// or not shorter than a walk.
#[inline(always)]
fn join<const AT: usize, const FROM: usize>(
    j: &mut FileRecord,
    rec: &FileRecord,
    name_len: usize,
    dir: usize,
) -> Option<usize> {
    // A plain name is one component (≤ 255 bytes) and its NUL; a longer
    // one is not checked.
    if !(2..=NAME_ROOM - 1).contains(&name_len) || name_len + dir >= FILE_PATH_MAX {
        return None;
    }
    let nl = bounded(name_len) & (NAME_ROOM - 1);
    let dir = bounded(dir) & (FILE_PATH_MAX - 1);
    // SAFETY: `nl` < NAME_ROOM and `dir` < FILE_PATH_MAX: the name is read
    // inside its room at FROM and written at AT; the directory is read
    // from 0 and written at AT + nl, which ends before AT + NAME_ROOM +
    // FILE_PATH_MAX (inside `data` for AT ≤ FILE_OLD_PATH_AT).
    let r = unsafe {
        bpf_probe_read_kernel(
            j.data.as_mut_ptr().add(AT).cast(),
            nl as u32,
            rec.data.as_ptr().add(FROM).cast(),
        )
    };
    if r != 0 {
        return None;
    }
    if dir > 0 {
        let r = unsafe {
            bpf_probe_read_kernel(
                j.data.as_mut_ptr().add(AT + nl).cast(),
                dir as u32,
                rec.data.as_ptr().cast(),
            )
        };
        if r != 0 {
            return None;
        }
    }
    Some(nl + dir)
}

/// The path at `data[AT..AT + len]` matches an atom of `op`. `PLAIN`: its
/// first component is a name the process passed, which must be plain
/// (`None` when it is not).
#[inline(always)]
fn matches<const AT: usize, const PLAIN: bool>(
    rec: &FileRecord,
    len: usize,
    op: u32,
) -> Option<bool> {
    let Some(scan) = FILE_FILTER_SCAN.get_ptr_mut(0) else {
        return Some(true); // no scratch slot: pass rather than lose
    };
    // SAFETY: this CPU's slot, valid for the program's duration.
    let scan = unsafe { &mut *scan };
    let hashes = name_hashes::<AT>(&rec.data, len, op, scan);
    if PLAIN && !plain_name(scan, rec.data[AT], rec.data[AT + 1]) {
        return None;
    }
    let forms = forms_of(op);
    if names_hit(&hashes) {
        return Some(true);
    }
    let Some(s) = FILE_FILTER_KEY.get_ptr_mut(0) else {
        return Some(true); // no key slot: pass rather than lose
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
                (bounded(n) & (TAIL * 2 - 1)) as u32,
                rec.data
                    .as_ptr()
                    .add(AT + (from & (FILE_PATH_MAX - 1)))
                    .cast(),
            )
        };
        if r != 0 {
            return Some(true); // could not build the key: pass rather than lose
        }
    }
    s.key.prefix_len = (KEY_DATA * 8) as u32;
    fill_path_key(&s.tail, op, &mut s.key.data);
    if FILE_FILTER_PATHS.get(&s.key).is_some() {
        return Some(true);
    }
    // The first component's leading bytes (`/entrypoint*`), in the same
    // trie under their own key form.
    let start = first_component_at(&s.tail, scan);
    s.first.prefix_len = (KEY_DATA * 8) as u32;
    fill_first_key(&s.tail, start, op, &mut s.first.data);
    if FILE_FILTER_PATHS.get(&s.first).is_some() {
        return Some(true);
    }
    if forms & forms::FOLD_PATHS != 0 {
        // The same two keys, ASCII-folded: the case-insensitive entries.
        fold_key_words(&mut s.first.data);
        if FILE_FILTER_PATHS.get(&s.first).is_some() {
            return Some(true);
        }
        fold_key_words(&mut s.key.data);
        if FILE_FILTER_PATHS.get(&s.key).is_some() {
            return Some(true);
        }
    }
    if forms & forms::GRAMS != 0 {
        // A walk longer than the window: its first components are not in
        // it, pass rather than lose.
        if len > TAIL {
            return Some(true);
        }
        return Some(match FILE_FILTER_GRAMS.get(op) {
            Some(bits) => gram_hit(&s.tail, bits),
            None => true,
        });
    }
    Some(false)
}

/// Whether a basename's or an extension's hash (`name_hashes`) is a name
/// atom (`FILE_FILTER_NAMES`).
#[inline(always)]
fn names_hit(h: &NameHashes) -> bool {
    // SAFETY: map lookups by value; the values are never read.
    let hit = |x: Option<u64>| x.is_some_and(|h| unsafe { FILE_FILTER_NAMES.get(h) }.is_some());
    hit(h.name) || hit(h.ext)
}

/// Whether some rule names processes (and the tables are loaded).
#[inline(always)]
pub(crate) fn names_used() -> bool {
    FILE_FILTER_OPS.get(PROC_READY).copied().unwrap_or(0) == FILTER_ON
}

/// Whether the acting process's name passes `op`'s events (or it has no
/// verdict: it passes).
#[inline(always)]
pub(crate) fn name_passes(tgid: u32, op: u32) -> bool {
    // SAFETY: a lookup by value; the value is copied.
    match unsafe { FILE_FILTER_PROC_VERDICT.get(tgid) } {
        Some(mask) => *mask & op_bit(op) != 0,
        None => true,
    }
}

/// At the end of an exec (`sent`: its record reached the ring, so the
/// agent names the process from the same walk): decides the process's
/// name verdict from the executed file's name — the first component of the
/// walk of `binprm->file` (`sensor_exec_exe`), exactly as the agent names
/// it, whatever name the file was executed by. When unsure (the walk did
/// not finish, record lost, names not loaded yet) the entry is removed:
/// the process passes everything.
#[inline(never)]
pub fn on_exec(rec: &ExecRecord, sent: bool) {
    let tgid = rec.info.task.tgid;
    let flags = rec.info.flags;
    let walked = flags & EXEC_EXE_PRESENT != 0 && flags & EXEC_EXE_INCOMPLETE == 0;
    if !names_used() || !sent || !walked || rec.info.exe_len == 0 {
        let _ = FILE_FILTER_PROC_VERDICT.remove(tgid);
        return;
    }
    let Some(w) = FILE_FILTER_PROC_WINDOW.get_ptr_mut(0) else {
        let _ = FILE_FILTER_PROC_VERDICT.remove(tgid);
        return;
    };
    // SAFETY: this CPU's slot, valid for the program's duration.
    let w = unsafe { &mut *w };
    // The walk starts after the filename, argv and cwd, innermost (the
    // file's own name) first, NUL-terminated.
    let at = (rec.info.filename_len as usize & (FILENAME_MAX - 1))
        + (rec.info.args_len as usize & (2 * ARGS_MAX - 1))
        + (rec.info.cwd_len as usize & (CWD_MAX - 1));
    let leaf = rec.data.as_ptr().wrapping_add(at);
    // The name's length: a string read stops at its NUL (a name is at most
    // 255 bytes, NAME_MAX: it fits the window whole).
    // SAFETY: the destination is PROC_WINDOW of the window's
    // PROC_WINDOW_ROOM bytes; the source is read by the helper.
    let n = unsafe {
        bpf_probe_read_kernel_str(w.as_mut_ptr().cast(), PROC_WINDOW as u32, leaf.cast())
    };
    if n <= 1 {
        let _ = FILE_FILTER_PROC_VERDICT.remove(tgid);
        return;
    }
    *w = [0; PROC_WINDOW_ROOM];
    let (n, to) = proc_window(n as usize - 1);
    // SAFETY: `to` < PROC_WINDOW (len ≥ 1) and `n` < PROC_WINDOW: inside
    // the window (PROC_WINDOW_ROOM); the source is the name just measured.
    let r = unsafe {
        bpf_probe_read_kernel(
            w.as_mut_ptr().add(to & (PROC_WINDOW - 1)).cast(),
            (n & (PROC_WINDOW - 1)) as u32,
            leaf.cast(),
        )
    };
    if r != 0 {
        let _ = FILE_FILTER_PROC_VERDICT.remove(tgid);
        return;
    }
    let (h, hf) = proc_name_hash(w);
    // SAFETY: lookups by value; the values are copied.
    let mask = unsafe { FILE_FILTER_PROCS.get(h) }.copied().unwrap_or(0)
        | unsafe { FILE_FILTER_PROCS.get(hf) }.copied().unwrap_or(0);
    if FILE_FILTER_PROC_VERDICT.insert(tgid, mask, 0).is_err() {
        let _ = FILE_FILTER_PROC_VERDICT.remove(tgid);
    }
}

/// At fork: the child is named like its parent (the agent copies the
/// parent's name), so it inherits the parent's verdict; none when the
/// parent has none or the fork record was lost (the agent then names the
/// child from /proc).
#[inline(never)]
pub fn on_fork(parent_tgid: u32, child_tgid: u32, sent: bool) {
    // SAFETY: a lookup by value; the value is copied.
    let parent = unsafe { FILE_FILTER_PROC_VERDICT.get(parent_tgid) }.copied();
    match parent {
        Some(mask) if sent => {
            if FILE_FILTER_PROC_VERDICT
                .insert(child_tgid, mask, 0)
                .is_err()
            {
                let _ = FILE_FILTER_PROC_VERDICT.remove(child_tgid);
            }
        }
        _ => {
            let _ = FILE_FILTER_PROC_VERDICT.remove(child_tgid);
        }
    }
}

/// At a process's exit: its verdict goes.
#[inline(always)]
pub fn on_exit(tgid: u32) {
    let _ = FILE_FILTER_PROC_VERDICT.remove(tgid);
}

// --- the first-component gate (sensor_common::prefilter, "gate") ------------

/// First components of the path atoms, per operation: `op`, the
/// component, a NUL (an exact component) or `op`, a first-component
/// prefix (no NUL); see `GATE_KEY`.
#[map]
static FILE_FILTER_FIRST: LpmTrie<[u8; GATE_KEY], u8> = LpmTrie::with_max_entries(MAX_ENTRIES, 0);

/// Per operation: [`GATE_ON`] once `FILE_FILTER_FIRST` holds every path
/// atom's first component; 0 (the default): no gate, every record is
/// walked and checked.
#[map]
static FILE_FILTER_GATE: Array<u32> = Array::with_max_entries(OPS, 0);

/// This CPU's gate key.
#[map]
static FILE_FILTER_GATE_KEY: PerCpuArray<Key<[u8; GATE_KEY]>> = PerCpuArray::with_max_entries(1, 0);

/// This CPU's name-shape scan (`name_shape`).
#[map]
static FILE_FILTER_SHAPE: PerCpuArray<NameShape> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
fn gate_on(op: u32) -> bool {
    op <= file_op::RENAME
        && FILE_FILTER_OPS.get(op).copied().unwrap_or(0) == FILTER_ON
        && FILE_FILTER_GATE.get(op).copied().unwrap_or(0) == GATE_ON
}

/// Whether the gate applies to a record of `op` by the current process:
/// on for `op`, and the process's name does not pass it anyway.
#[inline(always)]
fn gate_applies(op: u32) -> bool {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    gate_on(op) && !(names_used() && name_passes(tgid, op))
}

/// The gate's verdict once the basename is at `j.data[0..]` (NUL-
/// terminated) and the first component in `k`: whether some atom could
/// still match (not counted).
#[inline(always)]
fn gate_keeps(op: u32, j: &FileRecord, k: &mut Key<[u8; GATE_KEY]>) -> bool {
    let Some(scan) = FILE_FILTER_SCAN.get_ptr_mut(0) else {
        return true;
    };
    // SAFETY: this CPU's slot, valid for the program's duration.
    let scan = unsafe { &mut *scan };
    let hashes = name_hashes::<0>(&j.data, 1, op, scan);
    let forms = forms_of(op);
    if names_hit(&hashes) {
        return true;
    }
    k.prefix_len = (GATE_KEY * 8) as u32;
    if FILE_FILTER_FIRST.get(&*k).is_some() {
        return true;
    }
    if forms & forms::FOLD_PATHS == 0 {
        return false;
    }
    fold_key(&mut k.data);
    FILE_FILTER_FIRST.get(k).is_some()
}

/// Before the walk of a file at (`mnt`, `dentry`) for a record of `op`:
/// whether the gate drops it (counted `filtered`). Anything it cannot
/// read keeps the record (it is then walked and checked as before).
#[inline(never)]
pub fn gate_drops_walk(op: u32, mnt: *const u8, dentry: *const u8) -> bool {
    if !gate_applies(op) {
        return false;
    }
    let (Some(j), Some(k)) = (
        FILE_FILTER_JOIN.get_ptr_mut(0),
        FILE_FILTER_GATE_KEY.get_ptr_mut(0),
    ) else {
        return false;
    };
    // SAFETY: this CPU's slots, valid for the program's duration.
    let (j, k) = unsafe { (&mut *j, &mut *k) };
    let Ok(first) = crate::path::first_component::<true>(crate::task::current_task(), mnt, dentry)
    else {
        return false;
    };
    if first.is_null() {
        return false;
    }
    if !read_name_str(j.data.as_mut_ptr(), CWD_NAME_MAX, dentry) {
        return false;
    }
    k.data[0] = op as u8;
    // SAFETY: GATE_KEY - 1 bytes from 1: inside the key's data.
    if !read_name_str(unsafe { k.data.as_mut_ptr().add(1) }, GATE_KEY - 1, first) {
        return false;
    }
    if gate_keeps(op, j, k) {
        return false;
    }
    count(op, verdict::FILTERED);
    true
}

/// Copies `dentry`'s name (NUL-terminated, at most `room` bytes with the
/// NUL: a longer one is cut) to `dst`; false when unreadable or empty.
#[inline(always)]
fn read_name_str(dst: *mut u8, room: usize, dentry: *const u8) -> bool {
    let Ok(name) = read_ptr(dentry, offset(|o| &o.dentry_name)) else {
        return false;
    };
    // SAFETY: the caller's `dst` has `room` bytes.
    let n = unsafe { bpf_probe_read_kernel_str(dst.cast(), room as u32, name.cast()) };
    n > 1
}

/// A syscall-tracepoint record's names (`FILE_NAMES`, at `FILE_NAME_AT`
/// and, for a rename, `FILE_OLD_NAME_AT` in `rec.data`, relative to the
/// directory (`mnt`, `dentry`), the same for both; `lens`: the names'
/// lengths as read, the new one's in the low half, 0 when not read
/// whole): whether the gate
/// drops the record (counted `filtered`) before anything else is read.
/// Each name is judged as the agent will join it
/// (`kernel::decode::join_name`): its basename, and its first component
/// (an absolute name's own; a relative name's directory's, or its own
/// when the directory is the root). A name with an empty, `.` or `..`
/// component, or longer than `SHAPE_MAX`, keeps the record.
#[inline(never)]
pub fn gate_drops_names(
    op: u32,
    rec: &FileRecord,
    lens: u64,
    mnt: *const u8,
    dentry: *const u8,
) -> bool {
    let (name_len, old_name_len) = (lens as u32, (lens >> 32) as u32);
    if !gate_applies(op) || name_len == 0 || (op == file_op::RENAME && old_name_len == 0) {
        return false;
    }
    let Ok(dir_first) =
        crate::path::first_component::<false>(crate::task::current_task(), mnt, dentry)
    else {
        return false;
    };
    if name_keeps::<FILE_NAME_AT>(op, rec, dir_first) {
        return false;
    }
    if op == file_op::RENAME && name_keeps::<FILE_OLD_NAME_AT>(op, rec, dir_first) {
        return false;
    }
    count(op, verdict::FILTERED);
    true
}

/// Whether the name at `rec.data[AT..]` keeps its record (see
/// [`gate_drops_names`]; `dir_first`: the directory's first component,
/// null when the directory is the root).
#[inline(always)]
fn name_keeps<const AT: usize>(op: u32, rec: &FileRecord, dir_first: *const u8) -> bool {
    let (Some(j), Some(k), Some(s)) = (
        FILE_FILTER_JOIN.get_ptr_mut(0),
        FILE_FILTER_GATE_KEY.get_ptr_mut(0),
        FILE_FILTER_SHAPE.get_ptr_mut(0),
    ) else {
        return true;
    };
    // SAFETY: this CPU's slots, valid for the program's duration.
    let (j, k, s) = unsafe { (&mut *j, &mut *k, &mut *s) };
    if !name_shape::<AT>(&rec.data, s) {
        return true;
    }
    // SAFETY (volatile reads): `s` is a valid reference.
    let (n, leaf, first_end) = unsafe {
        (
            core::ptr::read_volatile(&s.n) as usize,
            core::ptr::read_volatile(&s.leaf) as usize,
            core::ptr::read_volatile(&s.first_end) as usize,
        )
    };
    // The basename and its NUL (n < SHAPE_MAX, leaf < n: 2..=SHAPE_MAX).
    let cnt = bounded((n + 1).wrapping_sub(leaf));
    if !(2..=SHAPE_MAX).contains(&cnt) {
        return true;
    }
    // SAFETY: `leaf` < SHAPE_MAX and `cnt` ≤ SHAPE_MAX: read inside
    // `rec.data` (AT + 2 × SHAPE_MAX fits), written inside `j.data`.
    let r = unsafe {
        bpf_probe_read_kernel(
            j.data.as_mut_ptr().cast(),
            (cnt & (2 * SHAPE_MAX - 1)) as u32,
            rec.data.as_ptr().add(AT + (leaf & (SHAPE_MAX - 1))).cast(),
        )
    };
    if r != 0 {
        return true;
    }
    k.data[0] = op as u8;
    let abs = rec.data[AT] == b'/';
    if !abs && !dir_first.is_null() {
        // SAFETY: GATE_KEY - 1 bytes from 1: inside the key's data.
        if !read_name_str(
            unsafe { k.data.as_mut_ptr().add(1) },
            GATE_KEY - 1,
            dir_first,
        ) {
            return true;
        }
    } else {
        let start = abs as usize;
        let len = bounded(first_end.wrapping_sub(start));
        if len == 0 || len >= SHAPE_MAX {
            return true;
        }
        let c = if len > GATE_COMPONENT_READ {
            GATE_COMPONENT_READ
        } else {
            len
        };
        let c = bounded(c) & (GATE_KEY - 1);
        if c == 0 {
            return true;
        }
        // SAFETY: `c` < GATE_KEY - 1 bytes to 1: inside the key's data;
        // read from inside the name.
        let r = unsafe {
            bpf_probe_read_kernel(
                k.data.as_mut_ptr().add(1).cast(),
                c as u32,
                rec.data.as_ptr().add(AT + start).cast(),
            )
        };
        if r != 0 {
            return true;
        }
        k.data[(c + 1) & (GATE_KEY - 1)] = 0;
    }
    gate_keeps(op, j, k)
}
