//! Allocation-free exact string membership (`==`, `in`, `in~`, and the
//! wildcard-free entries of `like` lists).
//!
//! Entries are grouped by byte length, then sorted (by ASCII-folded bytes
//! when case-insensitive): a lookup only looks at the entries as long as the
//! value (usually none or one or two), compares them with an inlined byte
//! loop (a libc `memcmp` call per candidate cost ≈20% of a typical event's
//! evaluation), and binary-searches only unusually crowded lengths. A lookup
//! never lowercases or copies the value.

use std::cmp::Ordering;

/// Linear scan of one length's entries below this count.
const LINEAR_MAX: usize = 8;

/// A set of strings, optionally ASCII-case-insensitive.
#[derive(Debug, Clone, Default)]
pub struct StrSet {
    /// Sorted by (length, folded-or-plain bytes).
    items: Box<[Box<str>]>,
    ci: bool,
    min_len: usize,
    /// `starts[l - min_len]..starts[l - min_len + 1]`: the entries of byte
    /// length `l`.
    starts: Box<[u32]>,
}

fn cmp_folded(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    for i in 0..n {
        let (x, y) = (a[i].to_ascii_lowercase(), b[i].to_ascii_lowercase());
        if x != y {
            return x.cmp(&y);
        }
    }
    a.len().cmp(&b.len())
}

/// Byte equality of equally long slices, inlined (no `memcmp` call).
#[inline]
fn eq_same_len(a: &[u8], b: &[u8], ci: bool) -> bool {
    if ci {
        a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
    } else {
        a.iter().zip(b).all(|(x, y)| x == y)
    }
}

impl StrSet {
    /// Builds the set; `case_insensitive` folds ASCII letters only.
    pub fn new(items: Vec<String>, case_insensitive: bool) -> StrSet {
        let ci = case_insensitive;
        let mut items: Vec<Box<str>> = items.into_iter().map(String::into_boxed_str).collect();
        if ci {
            items.sort_by(|a, b| {
                a.len()
                    .cmp(&b.len())
                    .then_with(|| cmp_folded(a.as_bytes(), b.as_bytes()))
            });
            items.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        } else {
            items.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
            items.dedup();
        }
        let min_len = items.iter().map(|s| s.len()).min().unwrap_or(0);
        let max_len = items.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut starts = Vec::new();
        if !items.is_empty() {
            for l in min_len..=max_len + 1 {
                let first = items.partition_point(|s| s.len() < l);
                starts.push(u32::try_from(first).unwrap_or(u32::MAX));
            }
        }
        StrSet {
            items: items.into_boxed_slice(),
            ci,
            min_len,
            starts: starts.into_boxed_slice(),
        }
    }

    /// Number of distinct entries.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The distinct entries (for a case-insensitive set, one spelling of
    /// each ASCII-folded entry).
    pub fn items(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|s| &**s)
    }

    /// Whether membership ignores ASCII case.
    pub fn is_case_insensitive(&self) -> bool {
        self.ci
    }

    /// Whether `s` is in the set.
    #[inline]
    pub fn contains(&self, s: &str) -> bool {
        let Some(k) = s.len().checked_sub(self.min_len) else {
            return false;
        };
        let (Some(&lo), Some(&hi)) = (self.starts.get(k), self.starts.get(k + 1)) else {
            return false;
        };
        let Some(same_len) = self.items.get(lo as usize..hi as usize) else {
            return false;
        };
        let b = s.as_bytes();
        if same_len.len() <= LINEAR_MAX {
            return same_len
                .iter()
                .any(|x| eq_same_len(x.as_bytes(), b, self.ci));
        }
        if self.ci {
            same_len
                .binary_search_by(|x| cmp_folded(x.as_bytes(), b))
                .is_ok()
        } else {
            same_len.binary_search_by(|x| x.as_bytes().cmp(b)).is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_small_and_large() {
        for n in [3usize, 50] {
            let items: Vec<String> = (0..n).map(|i| format!("Item{i}")).collect();
            let cs = StrSet::new(items.clone(), false);
            let ci = StrSet::new(items, true);
            for i in 0..n {
                assert!(cs.contains(&format!("Item{i}")));
                assert!(!cs.contains(&format!("item{i}")));
                assert!(ci.contains(&format!("iTEM{i}")));
            }
            assert!(!cs.contains("Item"));
            assert!(!ci.contains("Itemx"));
        }
    }

    #[test]
    fn lengths_and_crowded_lengths() {
        let mut items: Vec<String> = (0..40).map(|i| format!("k{i:02}")).collect();
        items.extend(["", "a", "abcdefghijklmnopq", "x"].map(String::from));
        for ci in [false, true] {
            let set = StrSet::new(items.clone(), ci);
            for it in &items {
                assert!(set.contains(it), "{it:?}");
                assert_eq!(
                    set.contains(&it.to_uppercase()),
                    ci || it.to_uppercase() == *it
                );
            }
            for miss in [
                "k40",
                "k0",
                "b",
                "abcdefghijklmnopr",
                "abcdefghijklmnopqr",
                "zz",
            ] {
                assert!(!set.contains(miss), "{miss:?}");
            }
        }
        assert!(!StrSet::new(Vec::new(), false).contains(""));
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_linear_reference(
            items in proptest::collection::vec("[aAbB/é]{0,5}", 0..30),
            probe in "[aAbB/é]{0,5}",
            ci in proptest::bool::ANY,
        ) {
            let set = StrSet::new(items.clone(), ci);
            let want = items.iter().any(|x| if ci { x.eq_ignore_ascii_case(&probe) } else { *x == probe });
            proptest::prop_assert_eq!(set.contains(&probe), want);
        }
    }

    #[test]
    fn duplicates_are_harmless() {
        let s = StrSet::new(vec!["a".into(), "a".into(), "A".into()], true);
        assert_eq!(s.len(), 1);
        assert!(s.contains("a"));
    }
}
