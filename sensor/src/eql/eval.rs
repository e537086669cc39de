//! Evaluation of a [`CompiledQuery`] against a [`Document`], with
//! Elasticsearch semantics: a leaf is true when ANY value of the field
//! passes; a field without values fails every leaf; `not` is a plain
//! negation of the subtree (Lucene `must_not`), hence true for a missing
//! field.

use super::ast::CmpOp;
use super::compile::{Affix, CompiledQuery, Node, Test, ValueSet};
use super::dates::parse_millis;
use super::document::{Document, Value};
use super::script::cidr_match;

impl CompiledQuery {
    /// Whether the document satisfies the query (category gate included).
    pub fn matches<D: Document + ?Sized>(&self, doc: &D) -> bool {
        if let Some(cat) = &self.category {
            let cat: &str = cat;
            let in_category = doc.visit(&self.category_field, &mut |v| v == Value::Str(cat));
            if !in_category {
                return false;
            }
        }
        eval(&self.root, doc)
    }

    /// Evaluates only the condition, ignoring the category gate.
    pub fn condition_matches<D: Document + ?Sized>(&self, doc: &D) -> bool {
        eval(&self.root, doc)
    }
}

fn eval<D: Document + ?Sized>(n: &Node, doc: &D) -> bool {
    match n {
        Node::Const(b) => *b,
        Node::And(v) => v.iter().all(|c| eval(c, doc)),
        Node::Or(v) => v.iter().any(|c| eval(c, doc)),
        Node::Not(x) => !eval(x, doc),
        Node::Exists(f) => doc.visit(f, &mut |_| true),
        Node::Any(f, t) => doc.visit(f, &mut |v| t.matches(v)),
        Node::Script(s) => s.matches(doc),
        Node::LikePair { field, pair, rest } => {
            // `(∃v A(v)) ∨ ((∃v B(v)) ∧ rest)`: B is exact for every value
            // visited while A failed, and all are visited unless A matches.
            let mut any_b = false;
            let any_a = doc.visit(field, &mut |v| match v {
                Value::Str(s) => {
                    let (a, b) = pair.is_match(s);
                    any_b |= b;
                    a
                }
                _ => false,
            });
            any_a || (any_b && eval(rest, doc))
        }
    }
}

impl ValueSet {
    #[inline]
    fn matches(&self, v: Value<'_>) -> bool {
        match v {
            Value::Str(s) => self.strs.contains(s),
            Value::Int(i) => self.nums.contains(&(i as f64)),
            Value::Float(x) => self.nums.contains(&x),
            Value::Bool(b) => self.bools[usize::from(b)],
        }
    }
}

pub(crate) fn ord_ok(op: CmpOp, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        CmpOp::Lt => o == Less,
        CmpOp::Le => o != Greater,
        CmpOp::Gt => o == Greater,
        CmpOp::Ge => o != Less,
        CmpOp::Eq => o == Equal,
        CmpOp::Ne => o != Equal,
    }
}

impl Test {
    #[inline]
    pub(crate) fn matches(&self, v: Value<'_>) -> bool {
        match self {
            Test::Exact(set) => set.matches(v),
            // Wildcards and regular expressions apply to keyword (string)
            // values only; Elasticsearch rejects them on numeric and boolean
            // fields, so such values never match.
            Test::Wildcard(w) => matches!(v, Value::Str(s) if w.is_match(s)),
            Test::Regex(r) => matches!(v, Value::Str(s) if r.is_match(s)),
            Test::NumRange(op, lit) => {
                let x = match v {
                    Value::Int(i) => i as f64,
                    Value::Float(x) => x,
                    Value::Str(s) => match s.trim().parse::<f64>() {
                        Ok(x) => x,
                        Err(_) => return false,
                    },
                    Value::Bool(_) => return false,
                };
                x.partial_cmp(lit).is_some_and(|o| ord_ok(*op, o))
            }
            Test::StrRange(op, lit) => match v {
                Value::Str(s) => ord_ok(*op, s.as_bytes().cmp(lit.as_bytes())),
                _ => false,
            },
            Test::Date(op, ms) => date_value(v).is_some_and(|x| ord_ok(*op, x.cmp(ms))),
            Test::DateIn(set) => date_value(v).is_some_and(|x| set.contains(&x)),
            Test::DateNanos(op, ms, ns) => {
                let x = match v {
                    Value::Int(i) => Some((i, 0)),
                    Value::Str(s) => super::dates::parse_nanos(s),
                    _ => None,
                };
                x.is_some_and(|x| ord_ok(*op, x.cmp(&(*ms, *ns))))
            }
            Test::VersionRange(op, lit) => match v {
                Value::Str(s) => ord_ok(*op, super::version::key(s).as_slice().cmp(lit)),
                _ => false,
            },
            Test::Affix(kind, lit, ci) => match v {
                Value::Str(s) => affix(*kind, s.as_bytes(), lit, *ci),
                _ => false,
            },
            Test::Pattern(p) => matches!(v, Value::Str(s) if p.is_match(s)),
            Test::Cidr(ranges) => matches!(v, Value::Str(s) if cidr_match(s, ranges)),
        }
    }
}

/// A `date` field's value in epoch milliseconds: a number is epoch
/// milliseconds, a string is `strict_date_optional_time` or epoch
/// milliseconds (the default `date` mapping format).
fn date_value(v: Value<'_>) -> Option<i64> {
    match v {
        Value::Int(i) => Some(i),
        Value::Float(x) if x.is_finite() => Some(x.floor() as i64),
        Value::Str(s) => parse_millis(s),
        _ => None,
    }
}

fn affix(kind: Affix, s: &[u8], lit: &[u8], ci: bool) -> bool {
    let eq = |a: &[u8]| {
        if ci {
            a.eq_ignore_ascii_case(lit)
        } else {
            a == lit
        }
    };
    match kind {
        Affix::Prefix => s.len() >= lit.len() && eq(&s[..lit.len()]),
        Affix::Suffix => s.len() >= lit.len() && eq(&s[s.len() - lit.len()..]),
        Affix::Contains if !ci => memchr::memmem::find(s, lit).is_some(),
        Affix::Contains => {
            lit.len() <= s.len() && s.windows(lit.len().max(1)).any(|w| lit.is_empty() || eq(w))
        }
    }
}
