//! The order of Elasticsearch's `version` field type: a keyword whose
//! values sort by Semantic Versioning precedence instead of byte order, so
//! a range query on it (`version > "1.5.0"`) selects by that precedence.
//!
//! Per the `version` field's documentation: main version parts compare
//! numerically (`2.1.0 < 2.4.1 < 2.11.2`), any number of them
//! (`1.2 < 1.2.0 < 1.2.3.4`); a pre-release sorts before its release
//! (`1.0.0-alpha < 1.0.0`), its dot-separated identifiers compared
//! numerically when numeric and by bytes otherwise, numeric before
//! alphanumeric, fewer before more; build metadata (`+...`) only breaks
//! ties. A value that is not such a version sorts after every valid one,
//! by bytes among the invalid ones.
//!
//! [`key`] turns a value into bytes whose byte order is that order, so a
//! range test is one byte comparison per value.

/// Before everything else of a valid version's key.
const VALID: u8 = 0x01;
/// Before an invalid version's bytes: after every valid key.
const INVALID: u8 = 0x02;
/// After the main parts: a pre-release follows (sorts first) ...
const PRE: u8 = 0x02;
/// ... or none (a release).
const RELEASE: u8 = 0x03;
/// Between main parts: more parts sort after the release marker, so
/// `1.2 < 1.2.0`.
const PART: u8 = 0x04;
/// Between pre-release identifiers; the end of them is `0x00`, so fewer
/// identifiers sort first.
const ID_SEP: u8 = 0x01;
const NUMERIC_ID: u8 = 0x05;
const ALNUM_ID: u8 = 0x06;

/// The sort key of `v` under the `version` field's order.
pub fn key(v: &str) -> Vec<u8> {
    valid_key(v).unwrap_or_else(|| {
        let mut k = Vec::with_capacity(v.len() + 1);
        k.push(INVALID);
        k.extend_from_slice(v.as_bytes());
        k
    })
}

fn valid_key(v: &str) -> Option<Vec<u8>> {
    let (rest, build) = match v.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (v, None),
    };
    let (main, pre) = match rest.split_once('-') {
        Some((m, p)) => (m, Some(p)),
        None => (rest, None),
    };
    let mut k = vec![VALID];
    for (i, part) in main.split('.').enumerate() {
        if !is_number(part) {
            return None;
        }
        if i > 0 {
            k.push(PART);
        }
        push_number(&mut k, part)?;
    }
    match pre {
        Some(pre) => {
            k.push(PRE);
            for (i, id) in pre.split('.').enumerate() {
                if i > 0 {
                    k.push(ID_SEP);
                }
                if is_number(id) {
                    k.push(NUMERIC_ID);
                    push_number(&mut k, id)?;
                } else if !id.is_empty() && id.bytes().all(is_ident_byte) {
                    k.push(ALNUM_ID);
                    k.extend_from_slice(id.as_bytes());
                } else {
                    return None;
                }
            }
            k.push(0x00);
        }
        None => k.push(RELEASE),
    }
    if let Some(build) = build {
        if build
            .split('.')
            .any(|id| id.is_empty() || !id.bytes().all(is_ident_byte))
        {
            return None;
        }
        k.push(0x00);
        k.extend_from_slice(build.as_bytes());
    }
    Some(k)
}

/// `0` or digits without a leading zero.
fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// A number as its length then its digits: longer is larger.
fn push_number(k: &mut Vec<u8>, digits: &str) -> Option<()> {
    let len = u8::try_from(digits.len()).ok().filter(|l| *l <= 0xef)?;
    k.push(0x10 + len);
    k.extend_from_slice(digits.as_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn versions_sort_by_semver_precedence_and_invalid_ones_last() {
        let ordered = [
            "0.9.9",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.2",
            "1.2.0",
            "1.2.3.4",
            "1.5.0",
            "1.11.3",
            "2.0.0",
            "10.0.0",
            // Not versions: after all of them, by bytes.
            "01.2.3",
            "1..2",
            "abc",
            "bad",
        ];
        for w in ordered.windows(2) {
            assert!(key(w[0]) < key(w[1]), "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn equal_versions_have_equal_keys_and_build_only_breaks_ties() {
        assert_eq!(key("1.2.3"), key("1.2.3"));
        assert!(key("1.2.3") < key("1.2.3+build.5"));
        assert!(key("1.2.3+build.5") < key("1.2.4"));
        assert!(key("1.2.3-rc.1+b") < key("1.2.3"));
    }
}
