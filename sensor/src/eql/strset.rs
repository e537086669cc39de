//! Allocation-free exact string membership (`==`, `in`, `in~`, and the
//! wildcard-free entries of `like` lists).
//!
//! Entries are sorted (by ASCII-folded bytes when case-insensitive) and
//! searched with a binary search that folds on the fly, so a lookup never
//! lowercases or copies the value. Small sets are scanned linearly, which is
//! faster than a binary search for a handful of entries.

use std::cmp::Ordering;

/// Linear scan below this size.
const LINEAR_MAX: usize = 8;

/// A set of strings, optionally ASCII-case-insensitive.
#[derive(Debug, Clone, Default)]
pub struct StrSet {
    items: Box<[Box<str>]>,
    ci: bool,
    min_len: usize,
    max_len: usize,
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

impl StrSet {
    /// Builds the set; duplicates are removed.
    pub fn new(items: Vec<String>, case_insensitive: bool) -> StrSet {
        let ci = case_insensitive;
        let mut items: Vec<Box<str>> = items.into_iter().map(String::into_boxed_str).collect();
        if ci {
            items.sort_by(|a, b| cmp_folded(a.as_bytes(), b.as_bytes()));
            items.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        } else {
            items.sort();
            items.dedup();
        }
        let min_len = items.iter().map(|s| s.len()).min().unwrap_or(0);
        let max_len = items.iter().map(|s| s.len()).max().unwrap_or(0);
        StrSet {
            items: items.into_boxed_slice(),
            ci,
            min_len,
            max_len,
        }
    }

    /// Number of distinct entries.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Membership test.
    #[inline]
    pub fn contains(&self, s: &str) -> bool {
        if self.items.is_empty() || s.len() < self.min_len || s.len() > self.max_len {
            return false;
        }
        if self.items.len() <= LINEAR_MAX {
            return if self.ci {
                self.items.iter().any(|x| x.eq_ignore_ascii_case(s))
            } else {
                self.items.iter().any(|x| &**x == s)
            };
        }
        if self.ci {
            self.items
                .binary_search_by(|x| cmp_folded(x.as_bytes(), s.as_bytes()))
                .is_ok()
        } else {
            self.items.binary_search_by(|x| (**x).cmp(s)).is_ok()
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
    fn duplicates_are_harmless() {
        let s = StrSet::new(vec!["a".into(), "a".into(), "A".into()], true);
        assert_eq!(s.len(), 1);
        assert!(s.contains("a"));
    }
}
