//! SIMD enumeration of every occurrence of a set of short literals
//! ("windows") in a long value: the prefilter behind [`WildcardSet`] for
//! long arguments (a `sh -c` payload of kilobytes).
//!
//! Why not one Aho-Corasick automaton: a DFA walks the value a byte at a
//! time (≈2.5 ns/byte, 10 µs for a 4 KiB payload against the seed rule's
//! ~100 patterns). Teddy (`aho_corasick::packed`) tests 32 positions per AVX2
//! instruction, but it degrades quickly with many patterns and with short or
//! common leading bytes. So the caller does not hand it whole literals:
//! [`best_window`] picks, inside each required literal, the 4-byte window
//! made of the rarest bytes (and reuses windows already chosen, so that
//! `AZURE_CLIENT_ID` and `AZURE_TENANT_ID` can share one), and
//! [`LiteralScan`] splits the windows into small groups of equal length (the
//! Teddy fingerprint is as long as the shortest pattern of its group). A scan
//! of one or two windows (`("*wget *", "*curl *")`) uses one `memmem` pass
//! per window instead, which is several times cheaper than a Teddy pass.
//!
//! Exactness: the caller relies on seeing EVERY `(window, start)` pair, not
//! just some. Each group is searched leftmost-longest and restarted one byte
//! after the start of each hit, so every start position at which some window
//! of the group begins is reported, with the longest such window; any other
//! window of the same group beginning there is a prefix of it, and is
//! reported too from a precomputed prefix closure. Windows are distinct and
//! each belongs to exactly one group, so the union over groups is every
//! occurrence of every window. A `memmem` group holds one window and is
//! restarted one byte after each hit, so it too reports every occurrence.
//!
//! [`WildcardSet`]: super::wildcard::WildcardSet

use aho_corasick::packed::{Config, MatchKind, Searcher};
use aho_corasick::Span;

/// Teddy slows down sharply beyond this many patterns per group (bucket
/// aliasing causes false candidates); 32 keeps two patterns per fat-Teddy
/// bucket. Measured on the seed rule: 2×31 windows ≈ 1 µs per 4 KiB, 1×62
/// ≈ 1.8 µs.
const GROUP_MAX: usize = 32;

/// Longest window; also Teddy's longest fingerprint.
pub(crate) const WINDOW_LEN: usize = 4;

/// Heuristic frequency of a byte in command lines and paths (higher = more
/// common). Only the order matters: it steers window choice away from
/// spaces, common letters and path punctuation, which would make Teddy
/// report (and the caller verify) candidates at every other word.
fn commonness(b: u8) -> u32 {
    match b {
        b' ' => 255,
        b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' => 200,
        b'/' | b'-' | b'.' => 180,
        b'a'..=b'z' => 150,
        b'0'..=b'9' => 140,
        b'_' | b'=' => 100,
        b'A'..=b'Z' => 100,
        0x80..=0xFF => 30,
        _ => 60,
    }
}

/// Byte strings numbered in the order they were first added, found by
/// hash. Rule files are input an attacker on the node may reach (a
/// ConfigMap, a rules directory): deduplicating a list of n patterns must
/// cost O(n), not the O(n²) of a linear search per pattern.
#[derive(Debug, Default)]
pub(crate) struct ByteIndex {
    items: Vec<Vec<u8>>,
    ids: std::collections::HashMap<Vec<u8>, usize>,
}

impl ByteIndex {
    /// The id of `b`, added if new; `true` when it was added.
    pub(crate) fn insert(&mut self, b: &[u8]) -> (usize, bool) {
        if let Some(&id) = self.ids.get(b) {
            return (id, false);
        }
        let id = self.items.len();
        self.items.push(b.to_vec());
        self.ids.insert(b.to_vec(), id);
        (id, true)
    }

    /// As [`ByteIndex::insert`], deduplicating by `key` (e.g. the ASCII
    /// lower case of `b`) while keeping `b`'s first spelling.
    pub(crate) fn insert_keyed(&mut self, key: &[u8], b: &[u8]) -> (usize, bool) {
        if let Some(&id) = self.ids.get(key) {
            return (id, false);
        }
        let id = self.items.len();
        self.items.push(b.to_vec());
        self.ids.insert(key.to_vec(), id);
        (id, true)
    }

    pub(crate) fn contains(&self, b: &[u8]) -> bool {
        self.ids.contains_key(b)
    }

    pub(crate) fn items(&self) -> &[Vec<u8>] {
        &self.items
    }

    pub(crate) fn into_items(self) -> Vec<Vec<u8>> {
        self.items
    }
}

/// Rarity score of a byte string: higher means less likely to occur by
/// chance. Longer is rarer, rare bytes count more.
pub(crate) fn rarity(bytes: &[u8]) -> u32 {
    bytes.iter().map(|&b| 256 - commonness(b)).sum()
}

/// The window of `lit` to scan for: `lit` itself when it is at most
/// [`WINDOW_LEN`] bytes, otherwise its rarest `WINDOW_LEN`-byte substring,
/// preferring one already chosen (a shared window costs nothing extra).
/// Returns the window's byte offset in `lit`.
pub(crate) fn best_window(lit: &[u8], chosen: &ByteIndex) -> (usize, usize) {
    if lit.len() <= WINDOW_LEN {
        return (0, lit.len());
    }
    let score = |i: usize| {
        let w = &lit[i..i + WINDOW_LEN];
        let reuse = if chosen.contains(w) { 400 } else { 0 };
        rarity(w) + reuse
    };
    // First best on ties: deterministic.
    let mut best = 0;
    for i in 1..=lit.len() - WINDOW_LEN {
        if score(i) > score(best) {
            best = i;
        }
    }
    (best, WINDOW_LEN)
}

/// Up to this many windows in a whole scan are searched one `memmem` pass
/// each instead of one Teddy pass: memchr's rare-byte-pair prefilter costs
/// ≈140 ns per 4 KiB against ≈480 ns for slim AVX2 Teddy whatever its
/// pattern count (measured on the seed rule's worst-case payload, where the
/// `("*wget *", "*curl *")` list took a Teddy pass of its own).
const MEMMEM_MAX: usize = 2;

/// One searcher over a group of windows.
#[derive(Debug, Clone)]
enum Group {
    Teddy {
        searcher: Searcher,
        /// Group-local pattern id → the global ids of every window of the
        /// group that is a prefix of it (itself included).
        closure: Box<[Box<[u32]>]>,
    },
    /// One window: every occurrence, by `memmem` restarted one byte after
    /// each hit.
    Memmem {
        finder: memchr::memmem::Finder<'static>,
        id: u32,
    },
}

/// Exact enumeration of all occurrences of a fixed set of distinct,
/// non-empty windows (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct LiteralScan {
    groups: Box<[Group]>,
}

impl LiteralScan {
    /// Builds the scanner for `windows` (distinct, non-empty; ids are their
    /// indices). `None` when Teddy is unavailable on this CPU or rejects a
    /// group: the caller then keeps its byte-at-a-time automaton.
    pub(crate) fn new(windows: &[Vec<u8>]) -> Option<LiteralScan> {
        if windows.is_empty() || windows.iter().any(Vec::is_empty) {
            return None;
        }
        // Group by fingerprint class: a short window would shorten the
        // fingerprint of a whole group of full-length ones. Windows of 2 and
        // 3 bytes share one group (one pass is cheaper than two: measured
        // ≈190 ns vs ≈465 ns per 4 KiB for the seed rule's four).
        let class = |w: &Vec<u8>| match w.len() {
            1 => 0,
            n if n < WINDOW_LEN => 1,
            _ => 2,
        };
        if windows.len() <= MEMMEM_MAX {
            let groups = windows
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    Some(Group::Memmem {
                        finder: memchr::memmem::Finder::new(w).into_owned(),
                        id: u32::try_from(i).ok()?,
                    })
                })
                .collect::<Option<_>>()?;
            return Some(LiteralScan { groups });
        }
        let mut order: Vec<usize> = (0..windows.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(class(&windows[i])));
        let mut groups = Vec::new();
        for run in order.chunk_by(|&a, &b| class(&windows[a]) == class(&windows[b])) {
            // Even split of the run into ⌈n/GROUP_MAX⌉ groups.
            let parts = run.len().div_ceil(GROUP_MAX);
            let per = run.len().div_ceil(parts);
            for chunk in run.chunks(per) {
                groups.push(Group::new(windows, chunk)?);
            }
        }
        Some(LiteralScan {
            groups: groups.into_boxed_slice(),
        })
    }

    /// The shortest value worth scanning this way: below it Teddy falls back
    /// to Rabin-Karp and the automaton is faster anyway.
    pub(crate) fn min_haystack_len(&self) -> usize {
        self.groups
            .iter()
            .map(|g| match g {
                Group::Teddy { searcher, .. } => searcher.minimum_len(),
                Group::Memmem { finder, .. } => finder.needle().len(),
            })
            .max()
            .unwrap_or(0)
    }

    /// Calls `f(window_id, start)` for every occurrence of every window in
    /// `hay`, until `f` returns `true`; returns whether it did.
    pub(crate) fn any_occurrence(
        &self,
        hay: &[u8],
        mut f: impl FnMut(usize, usize) -> bool,
    ) -> bool {
        for g in self.groups.iter() {
            match g {
                Group::Teddy { searcher, closure } => {
                    let mut at = 0;
                    while at < hay.len() {
                        let Some(m) = searcher.find_in(hay, Span::from(at..hay.len())) else {
                            break;
                        };
                        let closure = &closure[m.pattern().as_usize()];
                        if closure.iter().any(|&w| f(w as usize, m.start())) {
                            return true;
                        }
                        at = m.start() + 1;
                    }
                }
                Group::Memmem { finder, id } => {
                    let mut at = 0;
                    while let Some(i) = hay.get(at..).and_then(|h| finder.find(h)) {
                        if f(*id as usize, at + i) {
                            return true;
                        }
                        at += i + 1;
                    }
                }
            }
        }
        false
    }
}

impl Group {
    fn new(windows: &[Vec<u8>], ids: &[usize]) -> Option<Group> {
        let mut builder = Config::new()
            .match_kind(MatchKind::LeftmostLongest)
            .builder();
        for &i in ids {
            builder.add(&windows[i]);
        }
        let searcher = builder.build()?;
        let closure = ids
            .iter()
            .map(|&i| {
                ids.iter()
                    .filter(|&&j| windows[i].starts_with(&windows[j]))
                    .filter_map(|&j| u32::try_from(j).ok())
                    .collect()
            })
            .collect();
        Some(Group::Teddy { searcher, closure })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(windows: &[Vec<u8>], hay: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (w, lit) in windows.iter().enumerate() {
            for p in 0..hay.len() {
                if hay[p..].starts_with(lit) {
                    out.push((w, p));
                }
            }
        }
        out.sort_unstable();
        out
    }

    fn scanned(scan: &LiteralScan, hay: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        scan.any_occurrence(hay, |w, p| {
            out.push((w, p));
            false
        });
        out.sort_unstable();
        out
    }

    #[test]
    fn prefixes_and_overlaps_are_all_reported() {
        let windows: Vec<Vec<u8>> = ["ab", "abcd", "bcd", "abc", "a", "cdab"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let scan = LiteralScan::new(&windows);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("ssse3") {
            assert!(scan.is_some(), "Teddy must be available with SSSE3");
        }
        let Some(scan) = scan else {
            return; // no SIMD on this machine
        };
        let hay = "xxabcdabcdab".repeat(8);
        assert_eq!(
            scanned(&scan, hay.as_bytes()),
            naive(&windows, hay.as_bytes())
        );
    }

    #[test]
    fn window_prefers_rare_bytes_and_reuse() {
        assert_eq!(best_window(b"ncat ", &ByteIndex::default()), (0, 4));
        assert_eq!(best_window(b"abc", &ByteIndex::default()), (0, 3));
        let mut chosen = ByteIndex::default();
        chosen.insert(b"AZUR");
        assert_eq!(best_window(b"AZURE_TENANT_ID", &chosen), (0, 4));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn every_occurrence_is_reported(
            ws in proptest::collection::hash_set("[ab/ ]{1,4}", 1..80),
            hay in "[ab/ xé]{0,300}",
        ) {
            let windows: Vec<Vec<u8>> = ws.into_iter().map(String::into_bytes).collect();
            if let Some(scan) = LiteralScan::new(&windows) {
                prop_assert_eq!(scanned(&scan, hay.as_bytes()), naive(&windows, hay.as_bytes()));
            }
        }

        /// The `memmem` path for scans of at most [`MEMMEM_MAX`] windows,
        /// with overlapping and self-overlapping windows.
        #[test]
        fn few_windows_every_occurrence_is_reported(
            ws in proptest::collection::hash_set("[ab/ ]{1,5}", 1..=MEMMEM_MAX),
            hay in "[ab/ xé]{0,300}",
        ) {
            let windows: Vec<Vec<u8>> = ws.into_iter().map(String::into_bytes).collect();
            let scan = LiteralScan::new(&windows).unwrap();
            let all_memmem = scan.groups.iter().all(|g| matches!(g, Group::Memmem { .. }));
            prop_assert!(all_memmem);
            prop_assert_eq!(scanned(&scan, hay.as_bytes()), naive(&windows, hay.as_bytes()));
        }
    }
}
