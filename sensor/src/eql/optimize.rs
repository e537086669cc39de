//! The compiled tree's plan: nested `and`/`or` flattened, constants
//! folded, children ordered by estimated cost (evaluation is a pure boolean
//! function, so order changes speed, never a verdict), and `like` pairs on
//! one field fused into one scan.

use super::compile::{Affix, Node, Test};
use super::document::FieldRef;
use super::wildcard::WildcardPair;

/// Estimated relative cost of evaluating a node on a typical event.
pub(super) fn cost(n: &Node) -> u32 {
    match n {
        Node::Const(_) => 0,
        Node::Exists(_) => 2,
        Node::Script(sc) => 60 * sc.fields.iter().map(arity).sum::<u32>().max(1),
        Node::Not(x) => cost(x),
        Node::And(v) | Node::Or(v) => v.iter().map(cost).sum::<u32>().saturating_add(1),
        // Two wildcard tests and the rest.
        Node::LikePair { field, rest, .. } => (2 * 10 * arity(field)).saturating_add(cost(rest)),
        Node::Any(f, t) => {
            let base = match t {
                Test::Exact(_)
                | Test::NumRange(..)
                | Test::StrRange(..)
                | Test::Date(..)
                | Test::DateIn(_)
                | Test::Affix(Affix::Prefix | Affix::Suffix, ..) => 3,
                Test::VersionRange(..) => 4,
                Test::DateNanos(..) => 3,
                Test::Cidr(_) => 6,
                Test::Affix(..) | Test::Pattern(_) => 10,
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
pub(super) fn optimize(n: Node) -> Node {
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

pub(super) fn combine(children: Vec<Node>, is_and: bool) -> Node {
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
