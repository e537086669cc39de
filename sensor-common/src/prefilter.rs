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

/// ASCII case folding, as Elasticsearch's case-insensitive comparisons
/// fold (`AutomatonQueries.toCaseInsensitiveChar`: ASCII letters only,
/// every other code point as is) and the agent's evaluator does
/// (`eq_ignore_ascii_case`): `A`..=`Z` become `a`..=`z`, every other byte
/// (UTF-8 continuation and lead bytes included) is kept. No branch: one
/// subtraction, one shift, one or.
#[inline(always)]
pub const fn fold(b: u8) -> u8 {
    // (b - 'A') as u32 < 26 exactly when b is an upper-case ASCII letter;
    // then (x - 26) wraps and its top bit is set.
    let upper = ((b.wrapping_sub(b'A') as u32).wrapping_sub(26) >> 31) as u8;
    b | (upper << 5)
}

/// [`fold`] of each byte of a word at once (SWAR): the kernel folds an
/// LPM key eight bytes per step. A byte is upper-case ASCII when its top
/// bit is clear and its low seven bits are in `A`..=`Z`; adding 0x3f
/// (resp. 0x25) to the low seven bits sets the top bit exactly when they
/// are at least `A` (resp. above `Z`), with no carry into the next byte.
#[inline(always)]
pub const fn fold_word(x: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let b7 = x & LOW7;
    let ge_a = b7 + 0x3f3f_3f3f_3f3f_3f3f;
    let gt_z = b7 + 0x2525_2525_2525_2525;
    let upper = ge_a & !gt_z & !x & HIGH;
    x | (upper >> 2)
}

/// `FILE_FILTER_FORMS[op]` bits: which optional key forms `op`'s atoms
/// use, so a record only pays for the lookups its rules need.
pub mod forms {
    /// Case-insensitive path, prefix or first-component atoms (LPM keys
    /// with [`super::FOLD_TAG`]).
    pub const FOLD_PATHS: u32 = 2;
    /// Gram atoms (`FILE_FILTER_GRAMS[op]`).
    pub const GRAMS: u32 = 4;
}

/// The first byte of a case-insensitive LPM key (path, first-component or
/// gate key): the operation (with [`FIRST_TAG`] for a first-component
/// key) with this bit, then the key's bytes ASCII-folded.
pub const FOLD_TAG: u8 = 0x40;

/// Folds an LPM key's data in place (bytes after the first) and marks it
/// with [`FOLD_TAG`]: the form of the case-insensitive entries.
#[inline(always)]
pub fn fold_key<const N: usize>(key: &mut [u8; N]) {
    key[0] |= FOLD_TAG;
    let mut j = 1;
    while j < N {
        key[j] = fold(key[j]);
        j += 1;
    }
}

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

/// The hashes [`name_hashes`] gives: the basename's and the extension's,
/// of their ASCII-folded bytes (`None`: no basename, no extension).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameHashes {
    pub name: Option<u64>,
    pub ext: Option<u64>,
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
/// trailing dot, as `file.extension`), in `op`'s domains, of their
/// ASCII-folded bytes ([`fold`]): a name atom is stored folded whether
/// or not its comparison ignores case, so one hash serves both (a
/// case-sensitive atom then also passes the name's other cases, never
/// fewer). `None` for an empty path.
#[inline(always)]
pub fn name_hashes<const AT: usize>(
    data: &[u8; DATA_LEN],
    len: usize,
    op: u32,
    scan: &mut NameScan,
) -> NameHashes {
    if len == 0 {
        return NameHashes::default();
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
        let f = fold(b);
        name = fnv_step(name, f);
        if b == b'.' {
            unsafe { core::ptr::write_volatile(&mut scan.dot, i as u64) };
            ext = hash_seed(op, TAG_EXT);
        } else if b == b'/' {
            unsafe { core::ptr::write_volatile(&mut scan.slash, 1) };
            ext = fnv_step(ext, f);
        } else {
            ext = fnv_step(ext, f);
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
        return NameHashes::default();
    }
    let has_ext = dot > 0 && dot + 1 < n;
    NameHashes {
        name: Some(name),
        ext: has_ext.then_some(ext),
    }
}

/// The hash of a name or extension atom's value as the kernel computes it
/// ([`name_hashes`]: its bytes ASCII-folded), in `op`'s `tag` domain.
pub const fn name_hash_of(op: u32, tag: u8, bytes: &[u8]) -> u64 {
    let mut h = hash_seed(op, tag);
    let mut i = 0;
    while i < bytes.len() {
        h = fnv_step(h, fold(bytes[i]));
        i += 1;
    }
    h
}

// --- gram atoms ---------------------------------------------------------------
//
// A wildcard inside a name or a path (`*.so.*`, `*.git/hooks/*`,
// `pam_*.so` when nothing better is left) keeps a literal run the value
// must contain. The agent picks four bytes of it inside one component (a
// gram) and sets the gram's bit in the operation's bitmap
// (`FILE_FILTER_GRAMS[op]`); the kernel slides a four-byte window over the
// walk (ASCII-folded: case never matters for a gram, which only lets more
// through) and passes the record when some window's bit is set. A window
// of a walk spans at most one component plus NULs, and a gram holds no NUL
// and no `/`, so a gram inside a component of the path is a window of the
// walk. No branch per byte: the bit is or-ed into the verdict.

/// Bits of a gram bitmap: a path of 80 bytes has about 80 windows, so
/// with `g` grams loaded about 80·g/32768 of paths pass on a shared bit.
pub const GRAM_BITS: usize = 32768;
/// Bytes of a gram bitmap.
pub const GRAM_BYTES: usize = GRAM_BITS / 8;
/// Bytes of a gram.
pub const GRAM_LEN: usize = 4;

/// The bit of a gram (its four folded bytes, first byte highest).
#[inline(always)]
pub const fn gram_bit(w: u32) -> usize {
    (w.wrapping_mul(0x9e37_79b1) >> 17) as usize & (GRAM_BITS - 1)
}

/// The bit of a gram given as bytes (what the agent sets).
pub const fn gram_bit_of(g: &[u8; GRAM_LEN]) -> usize {
    let w = ((fold(g[0]) as u32) << 24)
        | ((fold(g[1]) as u32) << 16)
        | ((fold(g[2]) as u32) << 8)
        | fold(g[3]) as u32;
    gram_bit(w)
}

/// Whether some four-byte window of the tail window (the walk's last
/// [`TAIL`] bytes; the zeros before a shorter walk never make a gram's
/// window) has its bit set in `bits`. The caller passes a walk longer
/// than [`TAIL`] without asking: its first components are not in the
/// window.
#[inline(always)]
pub fn gram_hit(tail: &[u8; TAIL_ROOM], bits: &[u8; GRAM_BYTES]) -> bool {
    let mut w: u32 = 0;
    let mut hit: u8 = 0;
    let mut i = 0;
    while i < TAIL {
        w = (w << 8) | fold(tail[i]) as u32;
        let bit = gram_bit(w);
        hit |= bits[(bit >> 3) & (GRAM_BYTES - 1)] >> (bit & 7);
        i += 1;
    }
    hit & 1 != 0
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

/// Hash domain of a case-insensitive process-name atom (ASCII-folded).
pub const TAG_PROC_FOLD: u8 = b'P';

/// The hash of a process name (what the agent stores).
pub const fn proc_hash_of(name: &[u8]) -> u64 {
    hash_of(0, TAG_PROC, name)
}

/// The hash of a process name compared case-insensitively (its bytes
/// ASCII-folded, what the agent stores).
pub const fn proc_fold_hash_of(name: &[u8]) -> u64 {
    let mut h = hash_seed(0, TAG_PROC_FOLD);
    let mut i = 0;
    while i < name.len() {
        h = fnv_step(h, fold(name[i]));
        i += 1;
    }
    h
}

/// Which bytes of a name of `len` (< [`PROC_WINDOW`]) bytes go where in
/// the window: (count, offset in the window). The window is zeroed, then
/// receives the name so that it ends at [`PROC_WINDOW`].
#[inline(always)]
pub const fn proc_window(len: usize) -> (usize, usize) {
    let n = len & (PROC_WINDOW - 1);
    (n, PROC_WINDOW - n)
}

/// The hashes of the name in `window` (after its last `/` or zero; the
/// zeros before the name restart it), as is and ASCII-folded: each
/// restarts at every `/` or NUL, so no position is tracked.
#[inline(always)]
pub fn proc_name_hash(window: &[u8; PROC_WINDOW_ROOM]) -> (u64, u64) {
    let seed = hash_seed(0, TAG_PROC);
    let seed_f = hash_seed(0, TAG_PROC_FOLD);
    let mut h = seed;
    let mut hf = seed_f;
    let mut i = 0;
    while i < PROC_WINDOW {
        let b = window[i];
        if b == b'/' || b == 0 {
            h = seed;
            hf = seed_f;
        } else {
            h = fnv_step(h, b);
            hf = fnv_step(hf, fold(b));
        }
        i += 1;
    }
    (h, hf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_is_ascii_lowercasing() {
        for b in 0..=255u8 {
            assert_eq!(fold(b), b.to_ascii_lowercase(), "{b}");
        }
    }

    #[test]
    fn fold_word_folds_every_byte_as_fold_does() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                for fill in [0u8, b'A', b'z', 0xff, 0x5b, 0x40] {
                    let mut bytes = [fill; 8];
                    bytes[pos] = b;
                    let want = bytes.map(fold);
                    let got = fold_word(u64::from_le_bytes(bytes)).to_le_bytes();
                    assert_eq!(got, want, "{bytes:?}");
                }
            }
        }
    }
}
