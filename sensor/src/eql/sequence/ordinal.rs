//! An event's place in the stream: `@timestamp`, then the implicit tiebreaker.

use crate::eql::document::{Document, FieldRef, Value};

/// An event's position in the stream: `@timestamp` in milliseconds, then
/// the implicit tiebreaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ordinal {
    /// `@timestamp`, epoch milliseconds.
    pub ms: i64,
    /// Nanoseconds within the millisecond, when `@timestamp` has them (the
    /// sensor's kernel times do); 0 otherwise.
    pub sub_ns: u32,
    /// The implicit tiebreaker: input order (replay) or arrival (live).
    pub tie: u64,
}

impl Ordinal {
    /// The ordinal of `doc` (`@timestamp` as a `date`), with `tie`; `None`
    /// when it has no parseable `@timestamp`.
    pub fn of<D: Document + ?Sized>(doc: &D, tie: u64) -> Option<Ordinal> {
        let mut found = None;
        doc.visit(&FieldRef::new("@timestamp"), &mut |v| {
            found = match v {
                Value::Int(i) => Some(Ordinal {
                    ms: i,
                    sub_ns: 0,
                    tie,
                }),
                Value::Float(x) if x.is_finite() => Some(Ordinal {
                    ms: x.floor() as i64,
                    sub_ns: 0,
                    tie,
                }),
                Value::Str(s) => crate::eql::dates::parse_millis(s).map(|ms| Ordinal {
                    ms,
                    sub_ns: sub_millis_nanos(s),
                    tie,
                }),
                _ => None,
            };
            true
        });
        found
    }
}

/// The digits of a date string's fraction after the milliseconds, as
/// nanoseconds (`...:33.123456789Z` → 456789).
fn sub_millis_nanos(s: &str) -> u32 {
    let Some(t) = s.find('T') else { return 0 };
    let Some(dot) = s[t..].find('.').map(|i| t + i + 1) else {
        return 0;
    };
    let digits: Vec<u8> = s.as_bytes()[dot..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    let mut n = 0u32;
    for i in 3..9 {
        n = n * 10 + u32::from(digits.get(i).map_or(0, |d| d - b'0'));
    }
    n
}
