//! An index over many compiled queries: for an event, the queries that CAN
//! match it, so that the cost of evaluating an event grows with the queries
//! its values concern rather than with the queries loaded.
//!
//! At build time each query is reduced to a necessary condition, derived
//! from its compiled tree (see [`need`]):
//! - its category (`process where ...` can only match an event whose
//!   `event.category` has the value `process`);
//! - at most one *clause*: a disjunction of exact-value atoms ("some value
//!   of `process.name` is `bash` or `sh`, or some value of
//!   `process.executable` is `/bin/sh`") that every match satisfies.
//!
//! A query is filed under its category and under each key of its clause;
//! one with no usable clause is filed under its category as "always
//! evaluate". For an event, [`QueryIndex::candidates`] reads each indexed
//! field of the event's categories once, looks every string value up, and
//! returns the queries filed under a hit. The candidates are a superset of
//! the matches: the caller still evaluates each candidate in full, so the
//! index decides which queries run, never a verdict.
//!
//! Exactness of a clause (why every match satisfies it):
//! - `Any(f, Exact(set))` (`==`, `in`, `in~`) and a `like`/`:` list whose
//!   every pattern is a literal are true exactly when some string value of
//!   `f` is in the set. The atom is used only when the set matches strings
//!   alone (no numeric or boolean coercion of a literal): a number or
//!   boolean value never satisfies it. Case-insensitive sets fold ASCII
//!   letters only ([`StrSet`](super::strset::StrSet)); the index folds keys
//!   and looked-up values the same way.
//! - `and`: any child's clause is necessary; the most selective is kept.
//! - `or`: necessary only if every child has one; the union is kept.
//! - a `like` list whose every pattern is a literal or a literal followed
//!   by `*`s, and `startsWith`, are true only when some string value starts
//!   with one of the literals: a prefix atom, looked up by every prefix
//!   length its field's keys have (an empty literal gives none).
//! - any other test of a field (a range, a wildcard, a regex, an affix,
//!   `exists`, a like pair) passes only some value of the field: it gives
//!   the weaker atom "the field has a value" (what keeps container rules
//!   off a host's events: `container.id like "?*"`).
//! - `not` and scripts give none (a `not` or a missing field can make them
//!   true with no particular value).
//! - `false` gives the empty clause (never matches, filed nowhere); `true`
//!   gives none.
//!
//! The native event's category and values are read through
//! [`Document::visit`] exactly as the evaluator reads them, so multi-valued
//! fields (an event with two categories, `event.type` arrays) reach every
//! query any of their values concerns; a query reached twice is returned
//! once, and candidates come in build (load) order.

use std::collections::HashMap;

use super::compile::{Affix, CompiledQuery, Node, Test, ValueSet};
use super::document::{Document, FieldRef, Value};
use super::strset::StrSet;
use super::wildcard::WildcardSet;

/// Case-insensitive keys longer than this are not indexed (the lookup folds
/// a value into a stack buffer of this size).
const MAX_FOLDED_KEY: usize = 256;

/// Fields whose values most events of a category share (`event.type ==
/// "start"` holds for every exec): a clause on them is kept only when the
/// query has nothing more selective.
const COMMON_FIELDS: &[&str] = &[
    "event.type",
    "event.action",
    "event.category",
    "event.kind",
    "event.outcome",
    "event.dataset",
    "event.module",
    "data_stream.dataset",
    "host.os.type",
    "host.os.name",
    "host.os.family",
    "host.os.platform",
    "agent.type",
];

/// The index. Ids are the positions of the queries given to
/// [`QueryIndex::build`].
#[derive(Debug, Clone, Default)]
pub struct QueryIndex {
    /// Queries with a category gate, by category value.
    by_category: HashMap<Box<str>, Bucket>,
    /// Queries whose category is `any`.
    any_category: Bucket,
    category_field: Option<FieldRef>,
    queries: usize,
    stats: IndexStats,
}

/// How the queries were filed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Queries filed under exact-value keys.
    pub keyed: usize,
    /// Queries evaluated for every event of their category.
    pub always: usize,
    /// Queries that can never match (filed nowhere).
    pub never: usize,
}

/// The queries of one category.
#[derive(Debug, Clone, Default)]
struct Bucket {
    /// Evaluated for every event of the category.
    always: Vec<u32>,
    /// Filed by the values of one field each.
    fields: Vec<FieldKeys>,
}

/// The queries filed under values of one field.
#[derive(Debug, Clone)]
struct FieldKeys {
    field: FieldRef,
    /// Case-sensitive keys.
    exact: HashMap<Box<[u8]>, Vec<u32>>,
    /// Case-insensitive keys, ASCII-lowercased.
    folded: HashMap<Box<[u8]>, Vec<u32>>,
    /// The longest folded key.
    folded_max: usize,
    /// Queries filed under "the field has a value".
    present: Vec<u32>,
    /// Prefix keys: case-sensitive, and ASCII-lowercased.
    prefix_exact: HashMap<Box<[u8]>, Vec<u32>>,
    prefix_folded: HashMap<Box<[u8]>, Vec<u32>>,
    /// The distinct lengths of each map's prefixes, ascending.
    prefix_exact_lens: Vec<usize>,
    prefix_folded_lens: Vec<usize>,
}

/// One atom: some value of `field` is one of `keys`, or, when `present`,
/// the field has a value at all.
#[derive(Debug, Clone)]
struct Atom {
    field: FieldRef,
    ci: bool,
    /// Folded when `ci`; empty when `present`.
    keys: Vec<Box<[u8]>>,
    present: bool,
    /// The keys are prefixes: some value starts with one of them.
    prefix: bool,
}

/// A necessary condition: one of the atoms holds (empty: never).
type Clause = Vec<Atom>;

impl QueryIndex {
    /// Derives each query's necessary condition and files it.
    pub fn build<'a>(queries: impl IntoIterator<Item = &'a CompiledQuery>) -> QueryIndex {
        QueryIndex::build_with(queries, &|_| true)
    }

    /// [`QueryIndex::build`] using only atoms on the fields `cheap` accepts:
    /// the index reads every keyed field of an event's categories for each
    /// event, so a field the document answers only at a cost (the native
    /// event builds its JSON for a field it does not model) must not be a
    /// key.
    pub fn build_with<'a>(
        queries: impl IntoIterator<Item = &'a CompiledQuery>,
        cheap: &dyn Fn(&FieldRef) -> bool,
    ) -> QueryIndex {
        let mut ix = QueryIndex::default();
        for (i, q) in queries.into_iter().enumerate() {
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            ix.queries = i + 1;
            if ix.category_field.is_none() && q.category.is_some() {
                ix.category_field = Some(q.category_field.clone());
            }
            let bucket = match &q.category {
                Some(c) => ix.by_category.entry(c.clone()).or_default(),
                None => &mut ix.any_category,
            };
            match need(&q.root, cheap) {
                None => {
                    bucket.always.push(id);
                    ix.stats.always += 1;
                }
                Some(clause) if clause.is_empty() => ix.stats.never += 1,
                Some(clause) => {
                    bucket.file(id, clause);
                    ix.stats.keyed += 1;
                }
            }
        }
        ix
    }

    /// How the queries were filed.
    pub fn stats(&self) -> IndexStats {
        self.stats
    }

    /// Number of queries indexed.
    pub fn len(&self) -> usize {
        self.queries
    }

    /// Whether no query is indexed.
    pub fn is_empty(&self) -> bool {
        self.queries == 0
    }

    /// Sets `out` to the ids of the queries that can match `doc`, ascending
    /// and without duplicates: every query that matches is among them.
    /// Allocates only when `out` must grow.
    pub fn candidates<D: Document + ?Sized>(&self, doc: &D, out: &mut Vec<u32>) {
        out.clear();
        self.any_category.collect(doc, out);
        if let Some(cf) = &self.category_field {
            doc.visit(cf, &mut |v| {
                if let Value::Str(c) = v {
                    if let Some(b) = self.by_category.get(c) {
                        b.collect(doc, out);
                    }
                }
                false
            });
        }
        out.sort_unstable();
        out.dedup();
    }
}

impl Bucket {
    fn file(&mut self, id: u32, clause: Clause) {
        for atom in clause {
            let fk = match self.fields.iter().position(|f| f.field == atom.field) {
                Some(p) => &mut self.fields[p],
                None => {
                    self.fields.push(FieldKeys {
                        field: atom.field.clone(),
                        exact: HashMap::new(),
                        folded: HashMap::new(),
                        folded_max: 0,
                        present: Vec::new(),
                        prefix_exact: HashMap::new(),
                        prefix_folded: HashMap::new(),
                        prefix_exact_lens: Vec::new(),
                        prefix_folded_lens: Vec::new(),
                    });
                    let last = self.fields.len() - 1;
                    &mut self.fields[last]
                }
            };
            if atom.present {
                if fk.present.last() != Some(&id) {
                    fk.present.push(id);
                }
                continue;
            }
            if atom.prefix {
                let (map, lens) = if atom.ci {
                    (&mut fk.prefix_folded, &mut fk.prefix_folded_lens)
                } else {
                    (&mut fk.prefix_exact, &mut fk.prefix_exact_lens)
                };
                for k in atom.keys {
                    if let Err(at) = lens.binary_search(&k.len()) {
                        lens.insert(at, k.len());
                    }
                    let ids = map.entry(k).or_default();
                    if ids.last() != Some(&id) {
                        ids.push(id);
                    }
                }
                continue;
            }
            let map = if atom.ci {
                &mut fk.folded
            } else {
                &mut fk.exact
            };
            for k in atom.keys {
                if atom.ci {
                    fk.folded_max = fk.folded_max.max(k.len());
                }
                let ids = map.entry(k).or_default();
                if ids.last() != Some(&id) {
                    ids.push(id);
                }
            }
        }
    }

    fn collect<D: Document + ?Sized>(&self, doc: &D, out: &mut Vec<u32>) {
        out.extend_from_slice(&self.always);
        for fk in &self.fields {
            let keyed = !fk.exact.is_empty()
                || !fk.folded.is_empty()
                || !fk.prefix_exact_lens.is_empty()
                || !fk.prefix_folded_lens.is_empty();
            let mut has_value = false;
            doc.visit(&fk.field, &mut |v| {
                has_value = true;
                if let Value::Str(s) = v {
                    fk.lookup(s.as_bytes(), out);
                }
                // Presence alone is decided by the first value.
                !keyed
            });
            if has_value {
                out.extend_from_slice(&fk.present);
            }
        }
    }
}

impl FieldKeys {
    #[inline]
    fn lookup(&self, s: &[u8], out: &mut Vec<u32>) {
        if let Some(ids) = self.exact.get(s) {
            out.extend_from_slice(ids);
        }
        for &l in &self.prefix_exact_lens {
            let Some(head) = s.get(..l) else {
                break;
            };
            if let Some(ids) = self.prefix_exact.get(head) {
                out.extend_from_slice(ids);
            }
        }
        if let Some(&longest) = self.prefix_folded_lens.last() {
            let mut buf = [0u8; MAX_FOLDED_KEY];
            let n = s.len().min(longest);
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), s.get(..n)) {
                for (d, b) in dst.iter_mut().zip(src) {
                    *d = b.to_ascii_lowercase();
                }
            }
            for &l in &self.prefix_folded_lens {
                let Some(head) = buf.get(..l).filter(|_| l <= n) else {
                    break;
                };
                if let Some(ids) = self.prefix_folded.get(head) {
                    out.extend_from_slice(ids);
                }
            }
        }
        if !self.folded.is_empty() && s.len() <= self.folded_max {
            let mut buf = [0u8; MAX_FOLDED_KEY];
            if let Some(folded) = buf.get_mut(..s.len()) {
                for (d, b) in folded.iter_mut().zip(s) {
                    *d = b.to_ascii_lowercase();
                }
                if let Some(ids) = self.folded.get(&*folded) {
                    out.extend_from_slice(ids);
                }
            }
        }
    }
}

/// The necessary clause of a node (see the module documentation); `None`
/// when the index cannot use one.
fn need(n: &Node, cheap: &dyn Fn(&FieldRef) -> bool) -> Option<Clause> {
    match n {
        Node::Const(false) => Some(Vec::new()),
        Node::Const(true) => None,
        Node::And(children) => children
            .iter()
            .filter_map(|c| need(c, cheap))
            .min_by(|a, b| cost(a).total_cmp(&cost(b))),
        Node::Or(children) => {
            let mut union: Clause = Vec::new();
            for c in children.iter() {
                for atom in need(c, cheap)? {
                    merge(&mut union, atom);
                }
            }
            Some(union)
        }
        Node::Any(f, _) | Node::Exists(f) | Node::LikePair { field: f, .. } if !cheap(f) => None,
        Node::Any(f, Test::Exact(set)) => exact_atom(f, set).or_else(|| present_atom(f)),
        Node::Any(f, Test::Wildcard(w)) => w
            .as_exact()
            .and_then(|s| str_atom(f, s))
            .or_else(|| prefix_atom(f, w))
            .or_else(|| present_atom(f)),
        Node::Any(f, Test::Affix(Affix::Prefix, lit, ci)) => {
            prefix_keys(f, *ci, vec![lit.to_vec()]).or_else(|| present_atom(f))
        }
        // Every other test passes only some value of the field; `exists`
        // needs one; a like pair is `(∃v A) or (∃v B and rest)`.
        Node::Any(f, _) | Node::Exists(f) | Node::LikePair { field: f, .. } => present_atom(f),
        Node::Not(_) | Node::Script(_) => None,
    }
}

fn exact_atom(f: &FieldRef, set: &ValueSet) -> Option<Clause> {
    // A literal that also matches numbers or booleans: a non-string value
    // could satisfy the atom, and the index looks strings up only.
    if !set.nums.is_empty() || set.bools.iter().any(|b| *b) {
        return None;
    }
    str_atom(f, &set.strs)
}

fn str_atom(f: &FieldRef, set: &StrSet) -> Option<Clause> {
    let ci = set.is_case_insensitive();
    let mut keys = Vec::with_capacity(set.len());
    for k in set.items() {
        if ci {
            if k.len() > MAX_FOLDED_KEY {
                return None;
            }
            keys.push(k.as_bytes().to_ascii_lowercase().into_boxed_slice());
        } else {
            keys.push(Box::<[u8]>::from(k.as_bytes()));
        }
    }
    Some(vec![Atom {
        field: f.clone(),
        ci,
        keys,
        present: false,
        prefix: false,
    }])
}

fn present_atom(f: &FieldRef) -> Option<Clause> {
    Some(vec![Atom {
        field: f.clone(),
        ci: false,
        keys: Vec::new(),
        present: true,
        prefix: false,
    }])
}

/// A `like` list whose every pattern is a literal or a literal followed by
/// `*`s (`"python*"`, `"/tmp/*"`): some value starts with one of the
/// literals (a literal is a prefix of itself: a superset, never a miss).
fn prefix_atom(f: &FieldRef, w: &WildcardSet) -> Option<Clause> {
    let mut keys = Vec::new();
    for p in w.pattern_sources() {
        let lit = p.trim_end_matches('*');
        if lit.contains(['*', '?']) {
            return None;
        }
        keys.push(lit.as_bytes().to_vec());
    }
    prefix_keys(f, w.is_case_insensitive(), keys)
}

fn prefix_keys(f: &FieldRef, ci: bool, keys: Vec<Vec<u8>>) -> Option<Clause> {
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        // An empty prefix holds for every string: "has a value" says as
        // much, for a lookup less.
        if k.is_empty() || k.len() > MAX_FOLDED_KEY {
            return None;
        }
        out.push(if ci { k.to_ascii_lowercase() } else { k }.into_boxed_slice());
    }
    out.sort();
    out.dedup();
    Some(vec![Atom {
        field: f.clone(),
        ci,
        keys: out,
        present: false,
        prefix: true,
    }])
}

/// Adds `atom` to the disjunction `clause`: "has a value" subsumes any
/// value test on the same field.
fn merge(clause: &mut Clause, atom: Atom) {
    if atom.present {
        clause.retain(|a| a.field != atom.field);
        clause.push(atom);
        return;
    }
    if clause.iter().any(|a| a.present && a.field == atom.field) {
        return;
    }
    match clause
        .iter_mut()
        .find(|a| a.field == atom.field && a.ci == atom.ci && a.prefix == atom.prefix)
    {
        Some(a) => {
            a.keys.extend(atom.keys);
            a.keys.sort();
            a.keys.dedup();
        }
        None => clause.push(atom),
    }
}

/// Estimated share of events of the category that reach the query through
/// the clause (lower is better).
fn cost(clause: &Clause) -> f64 {
    clause
        .iter()
        .map(|a| {
            if a.present {
                // Container and orchestrator fields are absent from a
                // host's events; most other fields are on most events of
                // their category.
                let path = a.field.path();
                return if path.starts_with("container.") || path.starts_with("orchestrator.") {
                    0.005
                } else {
                    0.9
                };
            }
            let per_key = if COMMON_FIELDS.contains(&a.field.path()) {
                0.3
            } else {
                0.01
            };
            per_key * a.keys.len() as f64
        })
        .sum()
}

/// Every `(field, literal)` pair the query compares a field with (exact
/// values, wildcard patterns as written, affixes), in tree order: what a
/// tool generating events that reach the query draws values from.
pub fn field_literals(q: &CompiledQuery) -> Vec<(String, String)> {
    let mut out = Vec::new();
    literals_of(&q.root, &mut out);
    out
}

fn literals_of(n: &Node, out: &mut Vec<(String, String)>) {
    let mut push = |f: &FieldRef, v: String| out.push((f.path().to_owned(), v));
    match n {
        Node::And(cs) | Node::Or(cs) => cs.iter().for_each(|c| literals_of(c, out)),
        Node::Not(x) => literals_of(x, out),
        Node::Any(f, Test::Exact(set)) => set.strs.items().for_each(|s| push(f, s.to_owned())),
        Node::Any(f, Test::Wildcard(w)) => w.pattern_sources().into_iter().for_each(|s| push(f, s)),
        Node::Any(f, Test::Affix(kind, lit, _)) => {
            let lit = String::from_utf8_lossy(lit);
            push(
                f,
                match kind {
                    Affix::Prefix => format!("{lit}*"),
                    Affix::Suffix => format!("*{lit}"),
                    Affix::Contains => format!("*{lit}*"),
                },
            );
        }
        Node::Any(f, Test::Pattern(p)) => push(f, p.source().to_owned()),
        Node::LikePair { field, pair, rest } => {
            let (a, b) = pair.parts();
            for s in a.pattern_sources().into_iter().chain(b.pattern_sources()) {
                push(field, s);
            }
            literals_of(rest, out);
        }
        Node::Const(_) | Node::Exists(_) | Node::Any(..) | Node::Script(_) => {}
    }
}
