//! Compiles a parsed query ONCE into an evaluation tree of matchers.
//!
//! Everything that can be decided without an event is decided here:
//! - field paths are resolved to [`FieldRef`]s (with the native [`EcsField`]);
//! - literal coercions are precomputed (a number literal also matches its
//!   keyword text, `"true"` also matches boolean `true`, ...), so matching a
//!   value is a lookup with no parsing or formatting;
//! - wildcard lists become one [`WildcardSet`], regex lists one
//!   [`LuceneRegexSet`];
//! - `x == null` becomes "x has no value", `!=` becomes `not ==`;
//! - the children of every `and`/`or` are ordered by estimated cost. The
//!   evaluation is a pure boolean function of the document (no side effects,
//!   no errors), so `and`/`or` are commutative and reordering cannot change
//!   a verdict; it only makes cheap exact checks reject most events before
//!   the expensive multi-pattern scans run;
//! - in an `or`, `f like A` next to `(f like B and rest)` (case-sensitive
//!   lists on the same field) becomes one [`Node::LikePair`], whose scan of a
//!   long value answers A and B together: the seed rule's `sh -c` payload is
//!   read once instead of once per list.
//!
//! [`EcsField`]: super::document::EcsField

use super::ast::{Category, CmpOp, Expr, Lit, Literal, Query};
use super::document::FieldRef;
use super::error::{EqlError, Span};
use super::lucene_regex::{translate, LuceneRegexSet};
use super::strset::StrSet;
use super::wildcard::{WildcardPair, WildcardSet};

/// A compiled query: category gate plus condition tree.
#[derive(Debug, Clone)]
pub struct CompiledQuery {
    pub(crate) category: Option<Box<str>>,
    pub(crate) category_field: FieldRef,
    pub(crate) root: Node,
}

impl CompiledQuery {
    /// The category gate (`None` for `any`).
    pub fn category(&self) -> Option<&str> {
        self.category.as_deref()
    }
}

/// A node of the evaluation tree.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Const(bool),
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Not(Box<Node>),
    /// The field has at least one (non-null) value.
    Exists(FieldRef),
    /// Some value of the field passes the test.
    Any(FieldRef, Test),
    /// `(field like A) or ((field like B) and rest)`, with A and B read in
    /// one scan per value (see [`WildcardPair`]).
    LikePair {
        field: FieldRef,
        pair: Box<WildcardPair>,
        rest: Box<Node>,
    },
}

/// A per-value test.
#[derive(Debug, Clone)]
pub(crate) enum Test {
    /// Exact membership (`==`, `in`, `in~`).
    Exact(ValueSet),
    /// Wildcard list (`like`, `like~`, `:`), strings only.
    Wildcard(Box<WildcardSet>),
    /// Lucene regex list, strings only.
    Regex(Box<LuceneRegexSet>),
    /// Numeric range.
    NumRange(CmpOp, f64),
    /// Keyword (byte-wise) range.
    StrRange(CmpOp, Box<str>),
}

/// Exact-match candidates with all coercions precomputed.
#[derive(Debug, Clone, Default)]
pub(crate) struct ValueSet {
    /// Matched against string values.
    pub(crate) strs: StrSet,
    /// Matched against numeric values.
    pub(crate) nums: Box<[f64]>,
    /// Matched against booleans: `[false, true]`.
    pub(crate) bools: [bool; 2],
}

fn num_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

impl ValueSet {
    fn new(lits: &[&Literal], ci: bool) -> ValueSet {
        let mut strs = Vec::new();
        let mut nums = Vec::new();
        let mut bools = [false; 2];
        for l in lits {
            match l {
                Literal::Str(s) => {
                    strs.push(s.clone());
                    // A keyword literal compared with a numeric or boolean
                    // field is parsed by Elasticsearch as that type.
                    if let Ok(x) = s.parse::<f64>() {
                        if x.is_finite() {
                            nums.push(x);
                        }
                    }
                    match s.as_str() {
                        "true" => bools[1] = true,
                        "false" => bools[0] = true,
                        _ => {}
                    }
                }
                Literal::Int(i) => {
                    strs.push(i.to_string());
                    nums.push(*i as f64);
                }
                Literal::Float(x) => {
                    strs.push(num_text(*x));
                    nums.push(*x);
                }
                Literal::Bool(b) => {
                    strs.push(b.to_string());
                    bools[usize::from(*b)] = true;
                }
                Literal::Null => {}
            }
        }
        nums.sort_by(f64::total_cmp);
        nums.dedup();
        ValueSet {
            strs: StrSet::new(strs, ci),
            nums: nums.into_boxed_slice(),
            bools,
        }
    }
}

/// Compiles a parsed query.
pub fn compile(q: &Query) -> Result<CompiledQuery, EqlError> {
    let root = optimize(compile_expr(&q.condition)?);
    Ok(CompiledQuery {
        category: match &q.category {
            Category::Any => None,
            Category::Named(c) => Some(c.as_str().into()),
        },
        category_field: FieldRef::new("event.category"),
        root,
    })
}

fn lit_str(l: &Lit) -> &str {
    match &l.value {
        Literal::Str(s) => s,
        _ => "",
    }
}

fn compile_expr(e: &Expr) -> Result<Node, EqlError> {
    Ok(match e {
        Expr::Const(b) => Node::Const(*b),
        Expr::And(v) => Node::And(v.iter().map(compile_expr).collect::<Result<_, _>>()?),
        Expr::Or(v) => Node::Or(v.iter().map(compile_expr).collect::<Result<_, _>>()?),
        Expr::Not(x) => Node::Not(Box::new(compile_expr(x)?)),
        Expr::Compare { field, op, value } => {
            let f = FieldRef::new(&field.path);
            match (op, &value.value) {
                (CmpOp::Eq, Literal::Null) => Node::Not(Box::new(Node::Exists(f))),
                (CmpOp::Ne, Literal::Null) => Node::Exists(f),
                (CmpOp::Eq, v) => Node::Any(f, Test::Exact(ValueSet::new(&[v], false))),
                (CmpOp::Ne, v) => Node::Not(Box::new(Node::Any(
                    f,
                    Test::Exact(ValueSet::new(&[v], false)),
                ))),
                (op, Literal::Int(i)) => Node::Any(f, Test::NumRange(*op, *i as f64)),
                (op, Literal::Float(x)) => Node::Any(f, Test::NumRange(*op, *x)),
                (op, Literal::Str(s)) => Node::Any(f, Test::StrRange(*op, s.as_str().into())),
                (_, Literal::Bool(_) | Literal::Null) => {
                    return Err(EqlError::syntax(
                        "`<`, `<=`, `>`, `>=` need a number or a string",
                        value.span,
                    ))
                }
            }
        }
        Expr::In {
            field,
            values,
            case_insensitive,
        } => {
            if let Some(n) = values.iter().find(|v| v.value == Literal::Null) {
                return Err(EqlError::unsupported(
                    "`null` inside an `in` list is not supported; use `field == null`",
                    n.span,
                ));
            }
            let lits: Vec<&Literal> = values.iter().map(|v| &v.value).collect();
            Node::Any(
                FieldRef::new(&field.path),
                Test::Exact(ValueSet::new(&lits, *case_insensitive)),
            )
        }
        Expr::Like {
            field,
            patterns,
            case_insensitive,
        } => {
            let pats: Vec<&str> = patterns.iter().map(lit_str).collect();
            let span = span_of(patterns);
            let set = WildcardSet::new(&pats, *case_insensitive)
                .map_err(|e| EqlError::syntax(e.to_string(), span))?;
            Node::Any(FieldRef::new(&field.path), Test::Wildcard(Box::new(set)))
        }
        Expr::Regex {
            field,
            patterns,
            case_insensitive,
        } => {
            let mut translated = Vec::with_capacity(patterns.len());
            for p in patterns {
                let t = translate(lit_str(p), *case_insensitive).map_err(|e| {
                    EqlError::syntax(format!("invalid Lucene regular expression: {e}"), p.span)
                })?;
                translated.push(t);
            }
            let set = LuceneRegexSet::new(&translated)
                .map_err(|e| EqlError::syntax(e.to_string(), span_of(patterns)))?;
            Node::Any(FieldRef::new(&field.path), Test::Regex(Box::new(set)))
        }
    })
}

fn span_of(lits: &[Lit]) -> Span {
    match (lits.first(), lits.last()) {
        (Some(a), Some(b)) => a.span.to(b.span),
        _ => Span::default(),
    }
}

/// Estimated relative cost of evaluating a node on a typical event.
fn cost(n: &Node) -> u32 {
    match n {
        Node::Const(_) => 0,
        Node::Exists(_) => 2,
        Node::Not(x) => cost(x),
        Node::And(v) | Node::Or(v) => v.iter().map(cost).sum::<u32>().saturating_add(1),
        // Two wildcard tests and the rest.
        Node::LikePair { field, rest, .. } => (2 * 10 * arity(field)).saturating_add(cost(rest)),
        Node::Any(f, t) => {
            let base = match t {
                Test::Exact(_) | Test::NumRange(..) | Test::StrRange(..) => 3,
                // Exact values and anchored patterns only: a few prefix /
                // suffix compares, no scan of the value.
                Test::Wildcard(w) if w.is_anchored_only() => 5,
                Test::Wildcard(_) => 10,
                Test::Regex(_) => 40,
            };
            base * arity(f)
        }
    }
}

/// Multi-valued fields cost more per test.
fn arity(f: &FieldRef) -> u32 {
    if f.path().ends_with("args") {
        4
    } else {
        1
    }
}

/// Tie-break among equally cheap children: how likely the check is to pass
/// on the events the rule sees (lower = more selective, evaluated first).
/// `event.*` gates (`event.type == "start"`, `event.action == "exec"`) are
/// true for nearly every event a process rule is evaluated on, so in an
/// `and` they rarely decide; checks on process fields usually do (most
/// execs are not shells, most parents are not web servers). Order only
/// affects speed: `and`/`or` are pure boolean functions here.
fn pass_rate_rank(n: &Node) -> u8 {
    match n {
        Node::Any(f, _) | Node::Exists(f) if f.path().starts_with("event.") => 1,
        Node::Not(x) => pass_rate_rank(x),
        _ => 0,
    }
}

/// Flattens nested and/or, folds constants and orders children by cost.
fn optimize(n: Node) -> Node {
    match n {
        Node::Not(x) => match optimize(*x) {
            Node::Const(b) => Node::Const(!b),
            Node::Not(y) => *y,
            y => Node::Not(Box::new(y)),
        },
        Node::And(v) => combine(v.into_vec(), true),
        Node::Or(v) => combine(v.into_vec(), false),
        n => n,
    }
}

/// In the children of an `or`, replaces `f like A` and `(f like B and
/// rest...)` (both case-sensitive, same field) by one [`Node::LikePair`], so
/// that a long value is scanned once for both lists. Pure rewrite of the
/// same boolean function: `(∃v A(v)) ∨ ((∃v B(v)) ∧ rest)`.
fn fuse_like_pair(out: &mut Vec<Node>) {
    let is_like = |n: &Node| matches!(n, Node::Any(_, Test::Wildcard(_)));
    let Some(i) = out.iter().position(is_like) else {
        return;
    };
    let Node::Any(field, _) = &out[i] else {
        return;
    };
    let field = field.clone();
    let same_field_like = |n: &Node| matches!(n, Node::Any(f, Test::Wildcard(_)) if *f == field);
    let Some((j, k)) = out.iter().enumerate().find_map(|(j, n)| match n {
        Node::And(cs) => cs.iter().position(same_field_like).map(|k| (j, k)),
        _ => None,
    }) else {
        return;
    };
    // Take both nodes out (higher index first).
    let (hi, lo) = if i > j { (i, j) } else { (j, i) };
    let n_hi = out.remove(hi);
    let n_lo = out.remove(lo);
    let (a_node, and_node) = if i > j { (n_hi, n_lo) } else { (n_lo, n_hi) };
    let (Node::Any(_, Test::Wildcard(a)), Node::And(cs)) = (a_node, and_node) else {
        unreachable!("checked above")
    };
    let mut cs = cs.into_vec();
    let Node::Any(_, Test::Wildcard(b)) = cs.remove(k) else {
        unreachable!("checked above")
    };
    match WildcardPair::new(a, b) {
        Ok(pair) => {
            let rest = match cs.len() {
                1 => cs.pop().unwrap_or(Node::Const(true)),
                _ => Node::And(cs.into_boxed_slice()),
            };
            out.push(Node::LikePair {
                field,
                pair: Box::new(pair),
                rest: Box::new(rest),
            });
        }
        Err((a, b)) => {
            cs.insert(k, Node::Any(field.clone(), Test::Wildcard(b)));
            out.push(Node::Any(field, Test::Wildcard(a)));
            out.push(Node::And(cs.into_boxed_slice()));
        }
    }
}

fn combine(children: Vec<Node>, is_and: bool) -> Node {
    let mut out = Vec::with_capacity(children.len());
    for c in children {
        match optimize(c) {
            // `true` is neutral for `and`, `false` for `or`.
            Node::Const(b) if b == is_and => {}
            Node::Const(b) => return Node::Const(b),
            Node::And(v) if is_and => out.extend(v.into_vec()),
            Node::Or(v) if !is_and => out.extend(v.into_vec()),
            c => out.push(c),
        }
    }
    if !is_and {
        fuse_like_pair(&mut out);
    }
    out.sort_by_key(|c| (cost(c), pass_rate_rank(c)));
    match out.len() {
        0 => Node::Const(is_and),
        1 => out.pop().unwrap_or(Node::Const(is_and)),
        _ if is_and => Node::And(out.into_boxed_slice()),
        _ => Node::Or(out.into_boxed_slice()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn count_pairs(n: &Node) -> usize {
        match n {
            Node::LikePair { rest, .. } => 1 + count_pairs(rest),
            Node::And(v) | Node::Or(v) => v.iter().map(count_pairs).sum(),
            Node::Not(x) => count_pairs(x),
            _ => 0,
        }
    }

    #[test]
    fn like_or_like_and_rest_is_fused() {
        let q = crate::eql::compile_str(
            r#"process where process.args like ("* /tmp/* ", "*echo *") or
               (process.args like ("*wget *", "*curl *") and process.name == "sh")"#,
        )
        .unwrap();
        assert_eq!(count_pairs(&q.root), 1);
        // Case-insensitive lists have no long-value scan: left alone.
        let q = crate::eql::compile_str(
            r#"process where process.args like~ ("* /tmp/* ", "*echo *") or
               (process.args like ("*wget *", "*curl *") and process.name == "sh")"#,
        )
        .unwrap();
        assert_eq!(count_pairs(&q.root), 0);
    }

    #[test]
    fn seed_rule_is_fused() {
        let rules = crate::rules::RuleSet::embedded_default().unwrap();
        assert_eq!(count_pairs(&rules.rules()[0].query.root), 1);
    }
}
