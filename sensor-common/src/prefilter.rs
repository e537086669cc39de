//! The in-kernel file-event prefilter: the maps' key forms and the matching
//! steps, written once and run by both the kernel programs (before a file
//! record is reserved) and the agent's model of them
//! (`sensor::rules::prefilter`), so the two cannot disagree.
//!
//! The contract (docs/kernel.md, "File prefilter"):
//!
//! - `FILE_FILTER_OPS[op]` is [`FILTER_ON`] when the loaded rules reduce
//!   that operation's file conditions to atoms; anything else (a zeroed
//!   map: the default) passes every record of that operation.
//! - A record whose path was not walked whole, or that carries names as the
//!   process passed them ([`crate::FILE_NAMES`]), always passes.
//! - Otherwise it passes when its path (for a rename: its new or its old
//!   path) matches an entry of `FILE_FILTER_PATHS` (an LPM trie over
//!   [`fill_path_key`]'s key) or `FILE_FILTER_NAMES` holds the hash of its
//!   basename or extension ([`name_hashes`]).

use crate::{file_op, CWD_NAME_MAX, FILE_OLD_NAME_AT, FILE_PATH_MAX};

/// Bytes of an LPM key's data: the operation, then the path key.
pub const KEY_DATA: usize = 256;
/// Entries of `FILE_FILTER_OPS`: indexed by [`file_op`] (0 unused).
pub const OPS: u32 = file_op::RENAME + 1;
/// `FILE_FILTER_OPS` value: check this operation's records.
pub const FILTER_ON: u32 = 1;
/// Capacity of `FILE_FILTER_PATHS` and of `FILE_FILTER_NAMES`.
pub const MAX_ENTRIES: u32 = 8192;

/// `FILE_FILTER_COUNTS[op * VERDICTS + verdict]` (per CPU).
pub mod verdict {
    /// Checked and matched an atom.
    pub const PASSED: u32 = 0;
    /// Checked and matched none: not sent.
    pub const FILTERED: u32 = 1;
    /// Not checked: the rules force every record of this operation.
    pub const PASS_ALL: u32 = 2;
    /// Not checked: path incomplete or names as passed (always sent).
    pub const UNCHECKED: u32 = 3;
    pub const COUNT: u32 = 4;
    pub const NAMES: [&str; COUNT as usize] = ["passed", "filtered", "pass_all", "unchecked"];
}

/// Entries of `FILE_FILTER_COUNTS`.
pub const COUNTS_LEN: u32 = OPS * verdict::COUNT;

/// Length of `FileRecord::data`.
pub const DATA_LEN: usize = FILE_OLD_NAME_AT + FILE_PATH_MAX + CWD_NAME_MAX;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Hash domain of a basename atom.
pub const TAG_NAME: u8 = b'n';
/// Hash domain of an extension atom.
pub const TAG_EXT: u8 = b'e';

/// One FNV-1a step.
#[inline(always)]
pub const fn fnv_step(h: u64, b: u8) -> u64 {
    (h ^ b as u64).wrapping_mul(FNV_PRIME)
}

/// The hash a name or extension starts from: per operation and domain, so
/// one map serves every operation without one's atoms passing another's.
#[inline(always)]
pub const fn hash_seed(op: u32, tag: u8) -> u64 {
    fnv_step(fnv_step(FNV_OFFSET, op as u8), tag)
}

/// The hash of `bytes` in `op`'s `tag` domain (what the agent stores).
pub const fn hash_of(op: u32, tag: u8, bytes: &[u8]) -> u64 {
    let mut h = hash_seed(op, tag);
    let mut i = 0;
    while i < bytes.len() {
        h = fnv_step(h, bytes[i]);
        i += 1;
    }
    h
}

/// Bytes of the walk the LPM key is built from: its last ones.
pub const TAIL: usize = KEY_DATA;
/// The window [`tail_window`] copies into: [`TAIL`] bytes, then room for a
/// copy the verifier cannot prove shorter.
pub const TAIL_ROOM: usize = 2 * TAIL;

/// Which bytes of a walk of `len` bytes go where in the tail window: (offset
/// in the walk, offset in the window, count). The window is zeroed first,
/// then receives the walk's last [`TAIL`] bytes so that they end at
/// [`TAIL`] (a shorter walk is preceded by zeros). One copy, no loop over
/// the path's length: the verifier sees no branch per byte.
#[inline(always)]
pub const fn tail_window(len: usize) -> (usize, usize, usize) {
    let len = len & (FILE_PATH_MAX - 1);
    if len >= TAIL {
        (len - TAIL, 0, TAIL)
    } else {
        (0, TAIL - len, len)
    }
}

/// The LPM key of a path from its tail window (the walk's bytes:
/// components innermost first, each NUL-terminated): the operation, then
/// the walk's bytes in reverse — so the path's components come outermost
/// first, each preceded by a NUL and with its own bytes reversed — cut at
/// [`KEY_DATA`] and padded with NULs. A component is never empty, so two
/// NULs in a row mean the path ended: an exact path's entry ends with
/// them, a directory prefix's entry with one.
#[inline(always)]
pub fn fill_path_key(tail: &[u8; TAIL_ROOM], op: u32, key: &mut [u8; KEY_DATA]) {
    key[0] = op as u8;
    let mut j = 0;
    while j < KEY_DATA - 1 {
        key[j + 1] = tail[TAIL - 1 - j];
        j += 1;
    }
}

/// Bytes of the path's first component a first-component-prefix entry
/// can name (`/entrypoint*`: `entrypoint`); a longer literal is reduced
/// to `/` by the agent.
pub const FIRST_MAX: usize = 63;
/// The first byte of a first-component-prefix key: the operation with
/// this bit, so one trie serves both key forms without one passing the
/// other's entries (a path key starts with the bare operation).
pub const FIRST_TAG: u8 = 0x80;

/// Where the path's first (outermost) component starts in a tail window:
/// after the last NUL before the walk's final one (the zeros before a
/// short walk count too; none: a 255-byte component at 0). Kept in
/// memory (`NameScan::first`, a map value in the kernel) through volatile
/// stores, so the verifier sees one state per loop turn, not one per
/// position: no branch over the path's bytes multiplies its states.
#[inline(always)]
pub fn first_component_at(tail: &[u8; TAIL_ROOM], scan: &mut NameScan) -> usize {
    // SAFETY (volatile accesses): `scan` is a valid, exclusive reference.
    unsafe { core::ptr::write_volatile(&mut scan.first, 0) };
    let mut i = 0;
    while i < TAIL - 1 {
        if tail[i] == 0 {
            unsafe { core::ptr::write_volatile(&mut scan.first, (i + 1) as u64) };
        }
        i += 1;
    }
    (unsafe { core::ptr::read_volatile(&scan.first) } as usize) & (TAIL - 1)
}

/// The first-component-prefix key of a path from its tail window (see
/// [`fill_path_key`]) and where its first component starts
/// ([`first_component_at`]): `op | FIRST_TAG`, then the component's
/// first [`FIRST_MAX`] bytes in order (then its NUL and zeros). An entry
/// `op | FIRST_TAG, P` (prefix length `1 + |P|` bytes) matches exactly
/// the paths whose first component starts with `P` (`|P|` ≤ FIRST_MAX).
#[inline(always)]
pub fn fill_first_key(tail: &[u8; TAIL_ROOM], start: usize, op: u32, key: &mut [u8; KEY_DATA]) {
    key[0] = op as u8 | FIRST_TAG;
    let start = start & (TAIL - 1);
    let mut k = 0;
    while k < FIRST_MAX {
        key[k + 1] = tail[(start + k) & (TAIL_ROOM - 1)];
        k += 1;
    }
    while k < KEY_DATA - 1 {
        key[k + 1] = 0;
        k += 1;
    }
}

/// Where [`name_hashes`] keeps its scan: in memory (a map value in the
/// kernel), written through volatile stores, so the verifier sees one
/// state per loop turn instead of one per position of the last dot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NameScan {
    /// Position of the last dot (0: none, or only a leading one).
    pub dot: u64,
    /// Length of the basename.
    pub n: u64,
    /// A `/` was seen in it (only a name the process passed can hold one).
    pub slash: u64,
    /// Where the first component starts ([`first_component_at`]).
    pub first: u64,
}

/// Whether the first component [`name_hashes`] scanned (`scan`, `first`
/// and `second` its first two bytes) is a plain file name when it is a
/// name the process passed: no `/`, not `.` or `..`, NUL-terminated
/// within the scan. Only then is the directory + name its path, as the
/// agent joins it (`kernel::decode::join_name`).
#[inline(always)]
pub fn plain_name(scan: &NameScan, first: u8, second: u8) -> bool {
    // SAFETY (volatile reads): `scan` is a valid reference.
    let (n, slash) = unsafe {
        (
            core::ptr::read_volatile(&scan.n),
            core::ptr::read_volatile(&scan.slash),
        )
    };
    let dot = n == 1 && first == b'.';
    let dotdot = n == 2 && first == b'.' && second == b'.';
    n > 0 && n < CWD_NAME_MAX as u64 && slash == 0 && !dot && !dotdot
}

/// The hashes of the basename (the first component of the walk) and of
/// its extension (after the last dot; none for a leading dot alone or a
/// trailing dot, as `file.extension`), in `op`'s domains. `None` for an
/// empty path.
#[inline(always)]
pub fn name_hashes<const AT: usize>(
    data: &[u8; DATA_LEN],
    len: usize,
    op: u32,
    scan: &mut NameScan,
) -> (Option<u64>, Option<u64>) {
    if len == 0 {
        return (None, None);
    }
    let mut name = hash_seed(op, TAG_NAME);
    let mut ext = hash_seed(op, TAG_EXT);
    // SAFETY (all volatile accesses): `scan` is a valid, exclusive
    // reference.
    unsafe {
        core::ptr::write_volatile(&mut scan.dot, 0);
        core::ptr::write_volatile(&mut scan.n, 0);
        core::ptr::write_volatile(&mut scan.slash, 0);
    }
    let mut i = 0usize;
    while i < CWD_NAME_MAX {
        let b = data[(AT + i) % DATA_LEN];
        if b == 0 {
            break;
        }
        name = fnv_step(name, b);
        if b == b'.' {
            unsafe { core::ptr::write_volatile(&mut scan.dot, i as u64) };
            ext = hash_seed(op, TAG_EXT);
        } else if b == b'/' {
            unsafe { core::ptr::write_volatile(&mut scan.slash, 1) };
            ext = fnv_step(ext, b);
        } else {
            ext = fnv_step(ext, b);
        }
        i += 1;
        unsafe { core::ptr::write_volatile(&mut scan.n, i as u64) };
    }
    let (dot, n) = unsafe {
        (
            core::ptr::read_volatile(&scan.dot),
            core::ptr::read_volatile(&scan.n),
        )
    };
    if n == 0 {
        return (None, None);
    }
    let has_ext = dot > 0 && dot + 1 < n;
    (Some(name), has_ext.then_some(ext))
}

// --- the first-component gate ------------------------------------------------
//
// Walking a path costs a read per component and a copy of each name; most
// file operations on a node (a build, a package unpacking, a database)
// happen under directories no rule names. Before the walk, the kernel
// looks only at two names: the basename (for name and extension atoms)
// and the path's first component (the outermost one, under the acting
// process's root), found by following the parents without copying names.
// Every path atom (exact path, directory prefix, first-component prefix)
// fixes the first component, so a record whose basename matches no name
// or extension atom and whose first component is in no path atom's
// `FILE_FILTER_FIRST` entry cannot match any atom: it is dropped (counted
// `filtered`) before the walk. The gate is a necessary condition of the
// full check, never a replacement: a record it keeps is walked and
// checked as before.

/// Bytes of a `FILE_FILTER_FIRST` key: the operation, then the first
/// component's bytes (at most [`GATE_COMPONENT_READ`]) and a NUL.
pub const GATE_KEY: usize = 64;
/// Bytes of a first component the kernel reads into a gate key (a longer
/// one is cut: it can then only match a prefix entry, or keep).
pub const GATE_COMPONENT_READ: usize = GATE_KEY - 2;
/// The longest first component (or first-component prefix) an entry may
/// name; a rule with a longer one turns the operation's gate off.
pub const GATE_COMPONENT_MAX: usize = GATE_COMPONENT_READ - 1;
/// `FILE_FILTER_GATE[op]`: the gate's entries for `op` are complete.
pub const GATE_ON: u32 = 1;
/// Bytes of a name the process passed that the gate reads (with its NUL);
/// a longer name is not gated.
pub const SHAPE_MAX: usize = 256;

/// What [`name_shape`] found in a name the process passed. Kept in memory
/// (a map value in the kernel) through volatile accesses, for the same
/// reason as [`NameScan`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NameShape {
    /// Bytes before the NUL.
    pub n: u64,
    /// Where the basename starts (one past the last `/`).
    pub leaf: u64,
    /// Where the name's own first component ends (its first `/` after
    /// the start, or `n`).
    pub first_end: u64,
    /// Where the component being scanned starts.
    pub start: u64,
    /// A component is empty, `.` or `..`: the agent's lexical join
    /// (`kernel::decode::join_name`) would not keep the name's components
    /// as they are, so neither its basename nor its first component is
    /// known here.
    pub odd: u64,
    /// The NUL was found within [`SHAPE_MAX`] bytes.
    pub whole: u64,
}

/// Scans the name at `data[AT..]` (NUL-terminated): its length, basename
/// and first component, and whether every component is an ordinary one.
/// Returns whether the gate may judge it (whole and not odd).
#[inline(always)]
pub fn name_shape<const AT: usize>(data: &[u8; DATA_LEN], s: &mut NameShape) -> bool {
    let abs = data[AT % DATA_LEN] == b'/';
    // SAFETY (all volatile accesses): `s` is a valid, exclusive reference.
    unsafe {
        core::ptr::write_volatile(&mut s.n, 0);
        core::ptr::write_volatile(&mut s.leaf, abs as u64);
        core::ptr::write_volatile(&mut s.first_end, 0);
        core::ptr::write_volatile(&mut s.start, abs as u64);
        core::ptr::write_volatile(&mut s.odd, 0);
        core::ptr::write_volatile(&mut s.whole, 0);
    }
    let mut i = abs as usize;
    while i < SHAPE_MAX {
        let b = data[(AT + i) % DATA_LEN];
        if b == 0 || b == b'/' {
            let start = unsafe { core::ptr::read_volatile(&s.start) } as usize & (SHAPE_MAX - 1);
            let c0 = data[(AT + start) % DATA_LEN];
            let c1 = data[(AT + start + 1) % DATA_LEN];
            let len = i.wrapping_sub(start);
            if len == 0 || (len == 1 && c0 == b'.') || (len == 2 && c0 == b'.' && c1 == b'.') {
                unsafe { core::ptr::write_volatile(&mut s.odd, 1) };
            }
            if b == 0 {
                unsafe {
                    core::ptr::write_volatile(&mut s.n, i as u64);
                    core::ptr::write_volatile(&mut s.whole, 1);
                }
                break;
            }
            if unsafe { core::ptr::read_volatile(&s.first_end) } == 0 {
                unsafe { core::ptr::write_volatile(&mut s.first_end, i as u64) };
            }
            unsafe {
                core::ptr::write_volatile(&mut s.leaf, (i + 1) as u64);
                core::ptr::write_volatile(&mut s.start, (i + 1) as u64);
            }
        }
        i += 1;
    }
    // SAFETY: as above.
    unsafe {
        if core::ptr::read_volatile(&s.first_end) == 0 {
            let n = core::ptr::read_volatile(&s.n);
            core::ptr::write_volatile(&mut s.first_end, n);
        }
        core::ptr::read_volatile(&s.whole) == 1 && core::ptr::read_volatile(&s.odd) == 0
    }
}

// --- process-name atoms -------------------------------------------------------
//
// A rule's file condition may reduce to "(file atoms) or process.name in
// (…)" (Elastic's chmod rule). The name is decided once per exec, in the
// kernel, from the same bytes userspace names the process after (the
// basename of the execve filename), and kept per process
// (`FILE_FILTER_PROC_VERDICT`, tgid → the operations whose events its name
// passes); a process with no entry passes everything.

/// `FILE_FILTER_OPS[PROC_READY]` (slot 0 is no operation): 0 until the
/// tables are loaded (exec verdicts are not stored: such a process passes
/// until its next exec); [`FILTER_ON`] once `FILE_FILTER_PROCS` is filled
/// and some rule names processes (a process without a verdict passes);
/// [`PROC_NONE`] when no rule does (names play no part).
pub const PROC_READY: u32 = 0;
/// `FILE_FILTER_OPS[PROC_READY]`: no process-name atoms.
pub const PROC_NONE: u32 = 2;
/// Hash domain of a process-name atom (operation-free: the map's value is
/// the operations' mask).
pub const TAG_PROC: u8 = b'p';
/// Capacity of the per-process verdict map (LRU: an evicted process passes).
pub const PROC_VERDICTS_MAX: u32 = 65536;
/// The window a process's name (its executed file's name, at most
/// NAME_MAX = 255 bytes) is hashed in.
pub const PROC_WINDOW: usize = 256;
/// The name window: [`PROC_WINDOW`] bytes, then room for a copy the
/// verifier cannot prove shorter.
pub const PROC_WINDOW_ROOM: usize = 2 * PROC_WINDOW;

/// The mask bit of `op` in a process verdict.
#[inline(always)]
pub const fn op_bit(op: u32) -> u32 {
    1 << (op & 31)
}

/// The hash of a process name (what the agent stores).
pub const fn proc_hash_of(name: &[u8]) -> u64 {
    hash_of(0, TAG_PROC, name)
}

/// Which bytes of a name of `len` (< [`PROC_WINDOW`]) bytes go where in
/// the window: (count, offset in the window). The window is zeroed, then
/// receives the name so that it ends at [`PROC_WINDOW`].
#[inline(always)]
pub const fn proc_window(len: usize) -> (usize, usize) {
    let n = len & (PROC_WINDOW - 1);
    (n, PROC_WINDOW - n)
}

/// The hash of the name in `window` (after its last `/` or zero; the
/// zeros before the name restart it): the name's hash
/// restarts at every `/` or NUL, so no position is tracked.
#[inline(always)]
pub fn proc_name_hash(window: &[u8; PROC_WINDOW_ROOM]) -> u64 {
    let seed = hash_seed(0, TAG_PROC);
    let mut h = seed;
    let mut i = 0;
    while i < PROC_WINDOW {
        let b = window[i];
        h = if b == b'/' || b == 0 {
            seed
        } else {
            fnv_step(h, b)
        };
        i += 1;
    }
    h
}
