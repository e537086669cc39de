//! The in-kernel file prefilter, derived from the loaded rules: which file
//! records may cross to userspace at all.
//!
//! For every rule (single-event, every step of a sequence including
//! missing-event and `until` steps, `any where` rules) and every file
//! operation, [`derive`] computes from the parsed EQL a disjunction of
//! atoms — an exact path, a directory prefix, a basename, an extension —
//! such that any event of that operation the rule could match satisfies at
//! least one; or says why it cannot (`PassAll`). It is conservative:
//! `not`, case-insensitive comparisons, wildcards in names, functions,
//! regexes and ranges on file fields all give up; conditions on
//! `event.category`/`event.type`/`event.action` decide which operations a
//! rule can match at all (three-valued, as [`super::sources`] does); other
//! fields never narrow, but an `and` with one required file atom does.
//!
//! The union over the rules becomes the kernel's maps ([`Tables`]), and
//! [`Tables::passes`] is a model of exactly what the kernel checks, built
//! on the same key and hash steps (`sensor_common::prefilter`); the
//! property test (`tests/prefilter_proptest.rs`) checks that every event a
//! rule matches passes the model.

use std::collections::{BTreeSet, HashMap, HashSet};

use sensor_common::prefilter::{
    fill_first_key, fill_path_key, first_component_at, hash_of, name_hashes, name_shape, op_bit,
    plain_name, proc_hash_of, proc_name_hash, proc_window, tail_window, NameScan, NameShape,
    DATA_LEN, FIRST_MAX, FIRST_TAG, GATE_COMPONENT_MAX, GATE_COMPONENT_READ, KEY_DATA, PROC_WINDOW,
    PROC_WINDOW_ROOM, SHAPE_MAX, TAG_EXT, TAG_NAME, TAIL_ROOM,
};
use sensor_common::{file_op, FILE_NAME_AT, FILE_OLD_PATH_AT, FILE_PATH_MAX};

use super::sources::{self, Kind, KINDS};
use crate::eql::ast::{Category, CmpOp, Expr, Literal, Operand, Query, Statement};

/// The file operations, as the kernel numbers them and the rules name them.
pub const OPS: [(u32, &str); 4] = [
    (file_op::OPEN_WRITE, "open"),
    (file_op::CREATE, "creation"),
    (file_op::DELETE, "deletion"),
    (file_op::RENAME, "rename"),
];

/// A necessary literal condition on a file's path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Atom {
    /// The path is exactly this.
    Exact(Vec<u8>),
    /// The path starts with this (ends with `/`: a directory).
    Prefix(Vec<u8>),
    /// The path's first component starts with this (`/entrypoint*`:
    /// `entrypoint`; non-empty, no `/`, at most `FIRST_MAX` bytes).
    FirstPrefix(Vec<u8>),
    /// The basename is exactly this.
    Name(Vec<u8>),
    /// The extension (`file.extension`) is exactly this.
    Ext(Vec<u8>),
    /// The acting process's `process.name` is exactly this (decided in the
    /// kernel at exec, per process).
    Proc(Vec<u8>),
}

impl std::fmt::Display for Atom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, b) = match self {
            Atom::Exact(b) => ("path", b),
            Atom::Prefix(b) => ("prefix", b),
            Atom::FirstPrefix(b) => ("first-component prefix", b),
            Atom::Name(b) => ("name", b),
            Atom::Ext(b) => ("ext", b),
            Atom::Proc(b) => ("process.name", b),
        };
        write!(f, "{what} {:?}", String::from_utf8_lossy(b))
    }
}

/// What a condition requires of one operation's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Derived {
    /// No event of this operation can match.
    Never,
    /// Every matching event satisfies one of these.
    Atoms(BTreeSet<Atom>),
    /// Not reducible: why. `file` says whether a file condition was the
    /// cause (rather than the absence of any).
    PassAll { reason: String, file: bool },
}

const FILE_FIELDS: [&str; 6] = [
    "file.path",
    "file.name",
    "file.extension",
    "file.directory",
    "file.Ext.original.path",
    "file.Ext.original.name",
];

fn no_file_condition() -> Derived {
    Derived::PassAll {
        reason:
            "no condition on file.path, file.name, file.extension or file.directory is required"
                .to_owned(),
        file: false,
    }
}

fn give_up(reason: String) -> Derived {
    Derived::PassAll { reason, file: true }
}

/// How broad a set of atoms is, to pick the narrowest side of an `and`.
fn breadth(atoms: &BTreeSet<Atom>) -> usize {
    atoms
        .iter()
        .map(|a| match a {
            Atom::Prefix(p) if p.as_slice() == b"/" => 1_000_000,
            Atom::Prefix(_) | Atom::FirstPrefix(_) => 10,
            _ => 1,
        })
        .sum()
}

/// The per-operation requirement of `query` for the event kind `k`.
pub fn derive_query(q: &Query, k: &Kind) -> Derived {
    match &q.category {
        Category::Named(c) if c != k.category => Derived::Never,
        _ => derive(&q.condition, k),
    }
}

/// The requirement of a condition on events of kind `k`.
pub fn derive(e: &Expr, k: &Kind) -> Derived {
    match sources::eval(e, k) {
        Some(false) => return Derived::Never,
        Some(true) => return no_file_condition(),
        None => {}
    }
    match e {
        Expr::And(items) => {
            let mut best: Option<BTreeSet<Atom>> = None;
            let mut file_reason: Option<String> = None;
            for d in items.iter().map(|i| derive(i, k)) {
                match d {
                    Derived::Never => return Derived::Never,
                    Derived::Atoms(a) => {
                        if best.as_ref().is_none_or(|b| breadth(&a) < breadth(b)) {
                            best = Some(a);
                        }
                    }
                    Derived::PassAll { reason, file } => {
                        if file && file_reason.is_none() {
                            file_reason = Some(reason);
                        }
                    }
                }
            }
            match (best, file_reason) {
                (Some(a), _) => Derived::Atoms(a),
                (None, Some(r)) => give_up(r),
                (None, None) => no_file_condition(),
            }
        }
        Expr::Or(items) => {
            let mut all = BTreeSet::new();
            let mut any = false;
            for d in items.iter().map(|i| derive(i, k)) {
                match d {
                    Derived::Never => {}
                    Derived::Atoms(a) => {
                        any = true;
                        all.extend(a);
                    }
                    p @ Derived::PassAll { .. } => return p,
                }
            }
            if any {
                Derived::Atoms(all)
            } else {
                Derived::Never
            }
        }
        Expr::Not(inner) if mentions_file(inner) => {
            give_up("`not` over a file condition".to_owned())
        }
        Expr::Compare {
            left: Operand::Field(f),
            op: CmpOp::Eq,
            right: Operand::Lit(l),
        }
        | Expr::Compare {
            left: Operand::Lit(l),
            op: CmpOp::Eq,
            right: Operand::Field(f),
        } if is_file_field(&f.path) => match &l.value {
            Literal::Str(s) => leaf(&f.path, &[s.as_str()], false),
            Literal::Null => give_up(format!("`{} == null`", f.path)),
            // A number or boolean literal also matches its text
            // (`compile::ValueSet`): not worth a kernel atom.
            _ => give_up(format!("`{} ==` a non-string literal", f.path)),
        },
        Expr::In {
            left: Operand::Field(f),
            values,
            case_insensitive: false,
        } if is_file_field(&f.path) => match in_strings(values) {
            Ok(strs) => leaf(&f.path, &strs, false),
            Err(what) => give_up(format!("`{} in` with {what}", f.path)),
        },
        Expr::Like {
            left: Operand::Field(f),
            patterns,
            case_insensitive: false,
        } if is_file_field(&f.path) => {
            let mut strs = Vec::with_capacity(patterns.len());
            for p in patterns {
                match &p.value {
                    Literal::Str(s) => strs.push(s.as_str()),
                    _ => return give_up(format!("`{} like` with a non-string pattern", f.path)),
                }
            }
            leaf(&f.path, &strs, true)
        }
        Expr::In {
            left: Operand::Field(f),
            case_insensitive: true,
            ..
        }
        | Expr::Like {
            left: Operand::Field(f),
            case_insensitive: true,
            ..
        } if is_file_field(&f.path) => give_up(format!(
            "case-insensitive comparison on {} (`:`, `like~` or `in~`)",
            f.path
        )),
        Expr::Compare {
            left: Operand::Field(f),
            op: CmpOp::Eq,
            right: Operand::Lit(l),
        }
        | Expr::Compare {
            left: Operand::Lit(l),
            op: CmpOp::Eq,
            right: Operand::Field(f),
        } if f.path == "process.name" => match &l.value {
            Literal::Str(s) => proc_leaf(&[s.as_str()]),
            _ => no_file_condition(),
        },
        Expr::In {
            left: Operand::Field(f),
            values,
            case_insensitive: false,
        } if f.path == "process.name" => match in_strings(values) {
            Ok(strs) => proc_leaf(&strs),
            Err(_) => no_file_condition(),
        },
        e if mentions_file(e) => give_up(format!(
            "a condition on a file field that is not ==, in or like on a literal: {}",
            short(e)
        )),
        _ => no_file_condition(),
    }
}

/// The string values of an `in` list (`null` matches nothing and is
/// skipped), or what makes the list irreducible.
fn in_strings(values: &[Operand]) -> Result<Vec<&str>, &'static str> {
    let mut strs = Vec::with_capacity(values.len());
    for v in values {
        match v {
            Operand::Lit(l) => match &l.value {
                Literal::Str(s) => strs.push(s.as_str()),
                Literal::Null => {}
                _ => return Err("a non-string value"),
            },
            _ => return Err("a computed value"),
        }
    }
    Ok(strs)
}

fn short(e: &Expr) -> String {
    let s = format!("{e:?}");
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

fn is_file_field(path: &str) -> bool {
    FILE_FIELDS.contains(&path)
}

/// Whether a file field appears anywhere in `e`.
fn mentions_file(e: &Expr) -> bool {
    fn op(o: &Operand) -> bool {
        match o {
            Operand::Field(f) => is_file_field(&f.path) || f.path.starts_with("file."),
            Operand::Lit(_) => false,
            Operand::Call { args, .. } => args.iter().any(op),
            Operand::Arith { left, right, .. } => op(left) || op(right),
            Operand::Neg(x, _) => op(x),
            Operand::Cond(x, _) => mentions_file(x),
        }
    }
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().any(mentions_file),
        Expr::Not(x) => mentions_file(x),
        Expr::Const(_) => false,
        Expr::Compare { left, right, .. } => op(left) || op(right),
        Expr::In { left, values, .. } => op(left) || values.iter().any(op),
        Expr::Like { left, .. } | Expr::Regex { left, .. } => op(left),
        Expr::Test(o) => op(o),
    }
}

/// Atoms for `process.name` equal to one of `values` (case-sensitive).
/// A value with a backslash may equal an escaped (non-UTF-8) name whose
/// bytes differ: no atoms (the condition does not narrow). Any other value
/// equals the name's text only if it equals its bytes (escaping always
/// writes a backslash).
fn proc_leaf(values: &[&str]) -> Derived {
    if values.iter().any(|v| v.contains('\\')) {
        return no_file_condition();
    }
    Derived::Atoms(
        values
            .iter()
            .map(|v| Atom::Proc(v.as_bytes().to_vec()))
            .collect(),
    )
}

/// Atoms for `field` equal to (or, `like`, matching) one of `values`.
fn leaf(field: &str, values: &[&str], like: bool) -> Derived {
    let mut atoms = BTreeSet::new();
    for v in values {
        // Backslashes appear in a non-UTF-8 path's escaped text
        // (`ecs::byte_text`): such a value may match text whose bytes
        // differ, so it cannot be checked on bytes.
        if v.contains('\\') {
            return give_up(format!("a backslash in a {field} value ({v:?})"));
        }
        let wild = if like { v.find(['*', '?']) } else { None };
        let atom = match (field, wild) {
            ("file.path" | "file.Ext.original.path", None) => Atom::Exact(v.as_bytes().to_vec()),
            ("file.path" | "file.Ext.original.path", Some(w)) => match prefix_atom(&v[..w]) {
                Some(a) => a,
                // A leading wildcard: the basename, when the literal tail
                // holds a `/`.
                None => {
                    let tail_at = v.rfind(['*', '?']).map_or(0, |i| i + 1);
                    let tail = &v[tail_at..];
                    match tail.rfind('/') {
                        Some(i) if i + 1 < tail.len() => {
                            Atom::Name(tail.as_bytes()[i + 1..].into())
                        }
                        _ => {
                            return give_up(format!(
                                "{field} pattern {v:?} has no literal directory or file name"
                            ))
                        }
                    }
                }
            },
            ("file.name" | "file.Ext.original.name", None) => Atom::Name(v.as_bytes().to_vec()),
            ("file.extension", None) => Atom::Ext(v.as_bytes().to_vec()),
            ("file.directory", None) => {
                if *v == "/" {
                    Atom::Prefix(b"/".to_vec())
                } else {
                    Atom::Prefix(format!("{v}/").into_bytes())
                }
            }
            ("file.directory", Some(w)) => match prefix_atom(&v[..w]) {
                Some(a) => a,
                None => return give_up(format!("{field} pattern {v:?} has no literal directory")),
            },
            (_, Some(_)) => return give_up(format!("a wildcard in a {field} pattern ({v:?})")),
            _ => return give_up(format!("{field} is not checked in the kernel")),
        };
        atoms.insert(atom);
    }
    if atoms.is_empty() {
        Derived::Never
    } else {
        Derived::Atoms(atoms)
    }
}

/// The atom of a literal start of a path (or of a directory, whose path
/// then starts with it too): a first-component prefix when it is `/` and
/// part of one component (`/entrypoint`), else its directory prefix.
fn prefix_atom(lit: &str) -> Option<Atom> {
    let first = lit.strip_prefix('/').unwrap_or("");
    if !first.is_empty() && !first.contains('/') && first.len() <= FIRST_MAX {
        return Some(Atom::FirstPrefix(first.as_bytes().to_vec()));
    }
    dir_prefix(lit).map(Atom::Prefix)
}

/// The directory prefix (up to and including the last `/`) of a literal
/// start of a path; `None` when it has no `/` at its start.
fn dir_prefix(lit: &str) -> Option<Vec<u8>> {
    if !lit.starts_with('/') {
        return None;
    }
    let end = lit.rfind('/')? + 1;
    Some(lit.as_bytes()[..end].to_vec())
}

/// The queries of a statement whose events a rule may need to see: the
/// query itself, every step of a sequence (missing-event and `until`
/// steps too: an event they would have matched changes the verdict), or
/// every filter of a sample.
pub fn statement_queries(s: &Statement) -> Vec<&Query> {
    match s {
        Statement::Event(q) => vec![q],
        Statement::Sequence(seq) => seq
            .steps
            .iter()
            .chain(seq.until.iter())
            .map(|s| &s.query)
            .collect(),
        // A sample's filters: any of its events may be one of the sample's.
        Statement::Sample(smp) => smp.filters.iter().map(|s| &s.query).collect(),
    }
}

fn kind_of(op: u32) -> &'static Kind {
    let source = match op {
        file_op::OPEN_WRITE => "file:open",
        file_op::CREATE => "file:creation",
        file_op::DELETE => "file:deletion",
        _ => "file:rename",
    };
    KINDS
        .iter()
        .find(|k| k.source == source)
        .unwrap_or(&KINDS[KINDS.len() - 1])
}

/// One rule's requirement per operation (in [`OPS`] order).
pub fn derive_rule(query: &str) -> Result<[Derived; 4], String> {
    let stmt = crate::eql::parser::parse_statement(query).map_err(|e| e.to_string())?;
    let queries = statement_queries(&stmt);
    Ok(OPS.map(|(op, _)| {
        let k = kind_of(op);
        let mut out = Derived::Never;
        for q in &queries {
            out = union(out, derive_query(q, k));
        }
        out
    }))
}

fn union(a: Derived, b: Derived) -> Derived {
    match (a, b) {
        (Derived::Never, x) | (x, Derived::Never) => x,
        (p @ Derived::PassAll { .. }, _) | (_, p @ Derived::PassAll { .. }) => p,
        (Derived::Atoms(mut x), Derived::Atoms(y)) => {
            x.extend(y);
            Derived::Atoms(x)
        }
    }
}

/// `sensor rules check`'s line for a rule: its atoms or why it passes all,
/// per operation it can match.
pub fn describe(derived: &[Derived; 4]) -> Option<String> {
    let parts: Vec<String> = OPS
        .iter()
        .zip(derived)
        .filter_map(|((_, name), d)| match d {
            Derived::Never => None,
            Derived::Atoms(a) => Some(format!(
                "{name}: {}",
                a.iter().map(Atom::to_string).collect::<Vec<_>>().join(", ")
            )),
            Derived::PassAll { reason, .. } => Some(format!("{name}: pass-all ({reason})")),
        })
        .collect();
    (!parts.is_empty()).then(|| format!("prefilter: {}", parts.join("; ")))
}

/// One operation's prefilter: `Ok(atoms)` (an empty set filters every
/// record), `Err((rule, reason))` pass all.
pub type OpPrefilter = Result<BTreeSet<Atom>, Vec<(String, String)>>;

/// The prefilter of a rule set: per operation, the atoms to load, or the
/// rules that make it pass everything.
#[derive(Debug, Clone, Default)]
pub struct FilePrefilter {
    /// Per operation ([`OPS`] order); `None`: off, everything passes.
    pub ops: [Option<OpPrefilter>; 4],
}

impl FilePrefilter {
    /// Derives the prefilter of `rules` (single-event and sequence rules).
    pub fn from_queries<'a>(rules: impl IntoIterator<Item = (&'a str, &'a str)>) -> FilePrefilter {
        let mut ops: [OpPrefilter; 4] = std::array::from_fn(|_| Ok(BTreeSet::new()));
        for (name, query) in rules {
            let derived = match derive_rule(query) {
                Ok(d) => d,
                Err(e) => std::array::from_fn(|_| Derived::PassAll {
                    reason: format!("query does not parse: {e}"),
                    file: false,
                }),
            };
            for (slot, d) in ops.iter_mut().zip(derived) {
                match (slot, d) {
                    (_, Derived::Never) => {}
                    (Ok(set), Derived::Atoms(a)) => set.extend(a),
                    (slot @ Ok(_), Derived::PassAll { reason, .. }) => {
                        *slot = Err(vec![(name.to_owned(), reason)])
                    }
                    (Err(v), Derived::PassAll { reason, .. }) => v.push((name.to_owned(), reason)),
                    (Err(_), Derived::Atoms(_)) => {}
                }
            }
        }
        FilePrefilter { ops: ops.map(Some) }
    }

    /// The prefilter of a loaded rule set.
    pub fn from_rules(rules: &super::RuleSet) -> FilePrefilter {
        FilePrefilter::from_queries(
            rules
                .rules()
                .iter()
                .map(|r| (r.meta.name.as_str(), r.meta.query.as_str()))
                .chain(
                    rules
                        .sequences()
                        .iter()
                        .map(|r| (r.meta.name.as_str(), r.meta.query.as_str())),
                ),
        )
    }

    /// Everything passes (`--file-prefilter off`).
    pub fn off() -> FilePrefilter {
        FilePrefilter::default()
    }

    /// The start-up line: per operation, the atoms loaded or the rules
    /// that make it pass everything.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = OPS
            .iter()
            .zip(&self.ops)
            .map(|((_, name), o)| match o {
                None => format!("{name}: off"),
                Some(Ok(a)) if a.is_empty() => format!("{name}: none needed"),
                Some(Ok(a)) => format!("{name}: {} atoms", a.len()),
                Some(Err(rules)) => format!(
                    "{name}: pass-all because of {}",
                    rules
                        .iter()
                        .map(|(r, why)| format!("\"{r}\" ({why})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
            .collect();
        format!("file prefilter: {}", parts.join("; "))
    }

    /// The kernel's maps for this prefilter.
    pub fn tables(&self) -> Tables {
        let mut t = Tables::default();
        for ((op, _), o) in OPS.iter().zip(&self.ops) {
            let Some(Ok(atoms)) = o else { continue };
            t.on.insert(*op);
            if let Some(entries) = gate_entries(*op, atoms) {
                t.gated.insert(*op);
                t.first.extend(entries);
            }
            for a in atoms {
                match a {
                    Atom::Exact(p) => {
                        let mut k = path_entry(*op, p);
                        k.extend_from_slice(&[0, 0]);
                        k.truncate(KEY_DATA);
                        t.paths.insert(k);
                    }
                    Atom::Prefix(p) => {
                        let trimmed = p.strip_suffix(b"/").unwrap_or(p);
                        let mut k = path_entry(*op, trimmed);
                        k.push(0);
                        k.truncate(KEY_DATA);
                        t.paths.insert(k);
                    }
                    Atom::FirstPrefix(p) => {
                        let mut k = vec![*op as u8 | FIRST_TAG];
                        k.extend_from_slice(p);
                        t.paths.insert(k);
                    }
                    Atom::Name(n) => {
                        t.names.insert(hash_of(*op, TAG_NAME, n));
                    }
                    Atom::Ext(e) => {
                        t.names.insert(hash_of(*op, TAG_EXT, e));
                    }
                    Atom::Proc(n) => {
                        *t.procs.entry(proc_hash_of(n)).or_insert(0) |= op_bit(*op);
                    }
                }
            }
        }
        t
    }
}

/// The first-component gate's entries for `op` (`FILE_FILTER_FIRST`: the
/// operation, then an exact first component and its NUL, or a
/// first-component prefix), one per path atom; `None` when some path atom
/// does not fix its first component within `GATE_COMPONENT_MAX` bytes
/// (the prefix `/`: every path), which leaves `op` ungated.
fn gate_entries(op: u32, atoms: &BTreeSet<Atom>) -> Option<BTreeSet<Vec<u8>>> {
    let mut out = BTreeSet::new();
    for a in atoms {
        let (first, exact) = match a {
            Atom::Exact(p) | Atom::Prefix(p) => {
                let body = p.strip_prefix(b"/").unwrap_or(p);
                (body.split(|b| *b == b'/').next().unwrap_or_default(), true)
            }
            Atom::FirstPrefix(p) => (p.as_slice(), false),
            Atom::Name(_) | Atom::Ext(_) | Atom::Proc(_) => continue,
        };
        if first.is_empty() || first.len() > GATE_COMPONENT_MAX || first.contains(&0) {
            return None;
        }
        let mut k = vec![op as u8];
        k.extend_from_slice(first);
        if exact {
            k.push(0);
        }
        out.insert(k);
    }
    Some(out)
}

/// The key bytes of a path in the kernel's form (`fill_path_key`): the
/// operation, then per component outermost first a NUL and the
/// component's bytes reversed.
fn path_entry(op: u32, path: &[u8]) -> Vec<u8> {
    let mut k = vec![op as u8];
    let body = path.strip_prefix(b"/").unwrap_or(path);
    if body.is_empty() {
        return k;
    }
    for c in body.split(|b| *b == b'/') {
        k.push(0);
        k.extend(c.iter().rev());
    }
    k
}

/// What the kernel maps hold: the operations checked, the LPM entries
/// (data bytes; the prefix length is their length), the name and
/// extension hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tables {
    pub on: BTreeSet<u32>,
    pub paths: BTreeSet<Vec<u8>>,
    pub names: HashSet<u64>,
    /// Process-name hashes → the operations (`op_bit`) whose events they
    /// pass.
    pub procs: HashMap<u64, u32>,
    /// The operations the first-component gate judges (`FILE_FILTER_GATE`).
    pub gated: BTreeSet<u32>,
    /// The gate's LPM entries (`FILE_FILTER_FIRST`; the prefix length is
    /// their length).
    pub first: BTreeSet<Vec<u8>>,
}

/// The outermost component of a walk (its last one); `None` for the
/// root's empty walk.
fn outermost(walk: &[u8]) -> Option<&[u8]> {
    let body = walk.strip_suffix(&[0])?;
    body.rsplit(|b| *b == 0).next()
}

/// A path in the kernel walk's form: components innermost first, each
/// NUL-terminated (what `kernel::decode::cwd_from_components` reverses).
pub fn walk_form(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + 1);
    let body = path.strip_prefix(b"/").unwrap_or(path);
    if body.is_empty() {
        return out;
    }
    for c in body.rsplit(|b| *b == b'/') {
        out.extend_from_slice(c);
        out.push(0);
    }
    out
}

impl Tables {
    /// The model of the kernel's exec step (`file_filter::on_exec`): the
    /// verdict a process gets from its executed file's name (`name`: the
    /// first component of the kernel's walk of `binprm->file`, `None` when
    /// the walk did not finish): the operations its name passes, or `None`
    /// (no entry: it passes everything).
    pub fn proc_verdict(&self, name: Option<&[u8]>) -> Option<u32> {
        let name = name.filter(|n| (1..PROC_WINDOW).contains(&n.len()))?;
        let mut w = [0u8; PROC_WINDOW_ROOM];
        let (n, to) = proc_window(name.len());
        w[to..to + n].copy_from_slice(name);
        Some(self.procs.get(&proc_name_hash(&w)).copied().unwrap_or(0))
    }

    /// [`Tables::passes_process`] for a process whose name no rule names.
    pub fn passes(
        &self,
        op: u32,
        walk: Option<&[u8]>,
        old_walk: Option<&[u8]>,
        names: bool,
    ) -> bool {
        self.passes_process(op, Some(0), walk, old_walk, names)
    }

    /// The model of the kernel check (`sensor-ebpf/src/file_filter.rs`):
    /// whether a record of `op` by a process with verdict `proc` (see
    /// [`Tables::proc_verdict`]) with these walked paths (`None`: not
    /// walked whole) is sent. `names` is a record carrying names as the
    /// process passed them (syscall tracepoints for unlink and rename).
    pub fn passes_process(
        &self,
        op: u32,
        proc: Option<u32>,
        walk: Option<&[u8]>,
        old_walk: Option<&[u8]>,
        names: bool,
    ) -> bool {
        if !self.on.contains(&op) {
            return true;
        }
        // No rule names processes: names play no part (`PROC_NONE`).
        if !self.procs.is_empty() && proc.is_none_or(|mask| mask & op_bit(op) != 0) {
            return true;
        }
        let Some(walk) = walk else { return true };
        if names || (op == file_op::RENAME && old_walk.is_none()) {
            return true;
        }
        // The gate, before the walk (the kernel's `gate_drops_walk`: opens,
        // creations and BPF LSM / fentry deletions; a rename is walked in
        // two halves and not gated). A walk of the root has no first
        // component: not gated.
        if let Some(first) = outermost(walk).filter(|_| op != file_op::RENAME) {
            let leaf = walk.split(|b| *b == 0).next().unwrap_or_default();
            if self.gated.contains(&op) && !self.gate_keeps(op, leaf, first) {
                return false;
            }
        }
        let mut data = vec![0u8; DATA_LEN];
        let new = self.matches::<0>(&mut data, walk, op);
        new || (op == file_op::RENAME
            && old_walk.is_some_and(|old| self.matches::<FILE_OLD_PATH_AT>(&mut data, old, op)))
    }

    /// The model of the kernel check of a syscall-tracepoint record (names
    /// as the process passed them, `FILE_NAMES`; `dir` the walked
    /// directory, `None`: not whole; `name`/`old_name` the names' bytes
    /// without their NUL, `None`: not read whole): checked like a walk
    /// when every name is plain, sent unchecked otherwise.
    pub fn passes_names(
        &self,
        op: u32,
        proc: Option<u32>,
        dir: Option<&[u8]>,
        name: Option<&[u8]>,
        old_name: Option<&[u8]>,
    ) -> bool {
        if !self.on.contains(&op) {
            return true;
        }
        if !self.procs.is_empty() && proc.is_none_or(|mask| mask & op_bit(op) != 0) {
            return true;
        }
        let (Some(dir), Some(name)) = (dir, name) else {
            return true;
        };
        // The gate (the kernel's `gate_drops_names`), before the names'
        // directory is walked: every name must be dropped.
        if self.gated.contains(&op) && (op != file_op::RENAME || old_name.is_some()) {
            let dir_first = outermost(dir);
            let keeps = |n: &[u8]| self.name_keeps(op, n, dir_first);
            let dropped = !keeps(name) && old_name.is_none_or(|o| !keeps(o));
            if dropped {
                return false;
            }
        }
        let mut data = vec![0u8; DATA_LEN];
        let mut joined = |at: usize, name: &[u8]| -> Option<bool> {
            let nl = name.len() + 1;
            if !(2..=255).contains(&nl) || nl + dir.len() >= FILE_PATH_MAX {
                return None;
            }
            let mut walk = name.to_vec();
            walk.push(0);
            walk.extend_from_slice(dir);
            if at == 0 {
                self.check::<0, true>(&mut data, &walk, op)
            } else {
                self.check::<FILE_OLD_PATH_AT, true>(&mut data, &walk, op)
            }
        };
        let Some(new) = joined(0, name) else {
            return true;
        };
        if op != file_op::RENAME {
            return new;
        }
        let Some(old) = old_name.and_then(|o| joined(FILE_OLD_PATH_AT, o)) else {
            return true;
        };
        new || old
    }

    /// The kernel's `gate_keeps`: a basename (`leaf`) and a first
    /// component (`first`, cut at `GATE_COMPONENT_READ` bytes as the
    /// kernel reads it) that some atom of `op` could still match.
    fn gate_keeps(&self, op: u32, leaf: &[u8], first: &[u8]) -> bool {
        let mut data = [0u8; DATA_LEN];
        let n = leaf.len().min(SHAPE_MAX - 1);
        data[..n].copy_from_slice(&leaf[..n]);
        let mut scan = NameScan::default();
        let (name, ext) = name_hashes::<0>(&data, 1, op, &mut scan);
        if name.is_some_and(|h| self.names.contains(&h))
            || ext.is_some_and(|h| self.names.contains(&h))
        {
            return true;
        }
        let mut key = vec![op as u8];
        key.extend_from_slice(&first[..first.len().min(GATE_COMPONENT_READ)]);
        key.push(0);
        self.first.iter().any(|e| key.starts_with(e))
    }

    /// The kernel's `name_keeps`: a name the process passed, relative to
    /// a directory whose first component is `dir_first` (`None`: the
    /// root).
    fn name_keeps(&self, op: u32, name: &[u8], dir_first: Option<&[u8]>) -> bool {
        if name.len() >= SHAPE_MAX || name.contains(&0) {
            return true;
        }
        let mut data = Box::new([0u8; DATA_LEN]);
        data[FILE_NAME_AT..FILE_NAME_AT + name.len()].copy_from_slice(name);
        let mut s = NameShape::default();
        if !name_shape::<FILE_NAME_AT>(&data, &mut s) {
            return true;
        }
        let (n, leaf, first_end) = (s.n as usize, s.leaf as usize, s.first_end as usize);
        let abs = name.first() == Some(&b'/');
        let first = match dir_first {
            Some(d) if !abs => d,
            _ => &name[abs as usize..first_end],
        };
        self.gate_keeps(op, &name[leaf..n], first)
    }

    fn matches<const AT: usize>(&self, data: &mut [u8], walk: &[u8], op: u32) -> bool {
        self.check::<AT, false>(data, walk, op) != Some(false)
    }

    /// The kernel's `matches`: `PLAIN` requires the first component to be
    /// a plain name (`None` when it is not).
    fn check<const AT: usize, const PLAIN: bool>(
        &self,
        data: &mut [u8],
        walk: &[u8],
        op: u32,
    ) -> Option<bool> {
        let len = walk.len().min(FILE_PATH_MAX - 1);
        data[AT..AT + len].copy_from_slice(&walk[..len]);
        let Ok(data): Result<&[u8; DATA_LEN], _> = (&*data).try_into() else {
            return Some(true);
        };
        let mut scan = NameScan::default();
        let (name, ext) = name_hashes::<AT>(data, len, op, &mut scan);
        if PLAIN && !plain_name(&scan, data[AT], data[AT + 1]) {
            return None;
        }
        if name.is_some_and(|h| self.names.contains(&h))
            || ext.is_some_and(|h| self.names.contains(&h))
        {
            return Some(true);
        }
        let mut tail = [0u8; TAIL_ROOM];
        let (from, to, n) = tail_window(len);
        tail[to..to + n].copy_from_slice(&data[AT + from..AT + from + n]);
        let mut key = [0u8; KEY_DATA];
        fill_path_key(&tail, op, &mut key);
        // LPM: some entry is a prefix of the full-length key.
        if self.paths.iter().any(|e| key.starts_with(e)) {
            return Some(true);
        }
        let start = first_component_at(&tail, &mut scan);
        fill_first_key(&tail, start, op, &mut key);
        Some(self.paths.iter().any(|e| key.starts_with(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(q: &str) -> [Derived; 4] {
        derive_rule(q).expect("parses")
    }

    fn atoms(list: &[Atom]) -> Derived {
        Derived::Atoms(list.iter().cloned().collect())
    }

    #[test]
    fn exact_prefix_name_ext() {
        let r = d(r#"file where event.type != "deletion" and
            file.path like ("/etc/ld.so.preload", "/etc/ld.so.conf.d/*", "/etc/sudoers*") and container.id like "*""#);
        let want = atoms(&[
            Atom::Exact(b"/etc/ld.so.preload".to_vec()),
            Atom::Prefix(b"/etc/ld.so.conf.d/".to_vec()),
            Atom::Prefix(b"/etc/".to_vec()),
        ]);
        assert_eq!(r[0], want);
        assert_eq!(r[1], want);
        assert_eq!(r[2], Derived::Never);
        assert_eq!(r[3], want);
        let r = d(
            r#"file where event.type == "deletion" and file.name in (".bash_history", "x") or file.extension == "sh""#,
        );
        assert_eq!(
            r[2],
            atoms(&[
                Atom::Name(b".bash_history".to_vec()),
                Atom::Name(b"x".to_vec()),
                Atom::Ext(b"sh".to_vec())
            ])
        );
        assert_eq!(r[0], atoms(&[Atom::Ext(b"sh".to_vec())]));
    }

    #[test]
    fn gate_entries_name_each_path_atoms_first_component() {
        let t = FilePrefilter::from_queries([(
            "r",
            r#"file where event.type == "creation" and
                (file.path like ("/etc/ld.so.preload", "/var/lib/kubelet/pki/*", "/entrypoint*")
                 or file.name == "authorized_keys")"#,
        )])
        .tables();
        let op = file_op::CREATE as u8;
        let want: BTreeSet<Vec<u8>> = [
            [&[op][..], b"etc\0"].concat(),
            [&[op][..], b"var\0"].concat(),
            [&[op][..], b"entrypoint"].concat(),
        ]
        .into_iter()
        .collect();
        assert_eq!(t.first, want);
        // The other operations need no event at all: gated, no entries.
        assert_eq!(t.gated, t.on);
        assert_eq!(t.on.len(), 4);
        // The prefix `/` fixes no first component, nor does one longer
        // than a gate key holds: that operation is not gated.
        for q in [
            r#"file where event.type == "creation" and file.path like ("/*", "/etc/x")"#,
            &format!(
                r#"file where event.type == "creation" and file.path == "/{}/x""#,
                "a".repeat(GATE_COMPONENT_MAX + 1)
            ),
        ] {
            let t = FilePrefilter::from_queries([("r", q)]).tables();
            assert!(t.on.contains(&file_op::CREATE), "{q}");
            assert!(!t.gated.contains(&file_op::CREATE), "{q}: {:?}", t.first);
        }
        let q = format!(
            r#"file where event.type == "creation" and file.path == "/{}/x""#,
            "a".repeat(GATE_COMPONENT_MAX)
        );
        let t = FilePrefilter::from_queries([("r", q.as_str())]).tables();
        assert!(t.gated.contains(&file_op::CREATE));
    }

    #[test]
    fn unreducible_conditions_say_why() {
        for (q, why) in [
            (r#"file where file.path : "/etc/x""#, "case-insensitive"),
            (r#"file where not file.path like "/etc/*""#, "`not`"),
            (r#"file where file.name like "*.sh""#, "wildcard"),
            (
                r#"file where startsWith(file.path, "/etc")"#,
                "not ==, in or like",
            ),
            (
                r#"file where process.name : "chmod""#,
                "no condition on file.path",
            ),
            (
                r#"file where process.name == "a\\b""#,
                "no condition on file.path",
            ),
            (r#"file where file.path like "*x""#, "no literal directory"),
            // `5` also matches the name "5" (numbers match their text).
            (r#"file where file.name == 5"#, "non-string literal"),
        ] {
            let r = d(q);
            match &r[0] {
                Derived::PassAll { reason, .. } => assert!(reason.contains(why), "{q}: {reason}"),
                other => panic!("{q}: {other:?}"),
            }
        }
        // An `and` with one file atom narrows despite unreducible siblings.
        let r =
            d(r#"file where not process.name == "x" and file.name == "a" and file.path : "/y""#);
        assert_eq!(r[0], atoms(&[Atom::Name(b"a".to_vec())]));
        // A leading wildcard with a literal directory tail: the basename.
        let r = d(r#"file where file.path like "*/.ssh/authorized_keys""#);
        assert_eq!(r[0], atoms(&[Atom::Name(b"authorized_keys".to_vec())]));
    }

    #[test]
    fn every_sample_filter_and_sequence_step_contributes() {
        // A file event can be any filter's event: both filters' atoms, and
        // nothing for the process-only filter.
        let r = d(r#"sample by host.id
            [file where event.type == "deletion" and file.name == "a"]
            [file where event.type == "deletion" and file.extension == "sh"]
            [process where process.name == "x"]"#);
        assert_eq!(
            r[2],
            atoms(&[Atom::Name(b"a".to_vec()), Atom::Ext(b"sh".to_vec())])
        );
        assert_eq!(r[0], Derived::Never);
        let r = d(r#"sequence by host.id
            [file where event.type == "deletion" and file.name == "a"]
            ![file where event.type == "deletion" and file.name == "b"]
            [process where true]"#);
        assert_eq!(
            r[2],
            atoms(&[Atom::Name(b"a".to_vec()), Atom::Name(b"b".to_vec())])
        );
    }

    #[test]
    fn actions_select_operations() {
        let r = d(
            r#"any where (event.category == "file" and event.action == "open" and file.path == "/a") or
            (event.category == "process" and process.name == "x")"#,
        );
        assert_eq!(r[0], atoms(&[Atom::Exact(b"/a".to_vec())]));
        assert_eq!(r[1], Derived::Never);
        assert_eq!(r[2], Derived::Never);
        let r = d(r#"process where process.name == "x""#);
        assert!(r.iter().all(|x| *x == Derived::Never));
    }

    #[test]
    fn model_matches_kernel_forms() {
        let p = FilePrefilter::from_queries([(
            "r",
            r#"file where event.type != "deletion" and (file.path in ("/etc/crontab", "/a/b") or
                file.path like "/etc/cron.d/*" or file.name == "authorized_keys" or file.extension == "service")"#,
        )]);
        let t = p.tables();
        let open = file_op::OPEN_WRITE;
        let pass = |path: &str| t.passes(open, Some(&walk_form(path.as_bytes())), None, false);
        assert!(pass("/etc/crontab"));
        assert!(!pass("/etc/crontab2"));
        assert!(!pass("/etc/crontab/x"));
        assert!(pass("/etc/cron.d/x"));
        assert!(pass("/etc/cron.d/x/y"));
        assert!(!pass("/etc/cron.daily"));
        assert!(pass("/root/.ssh/authorized_keys"));
        assert!(pass("/x/a.service"));
        assert!(!pass("/x/.service"));
        assert!(!pass("/x/a.service.bak"));
        assert!(!pass("/a"));
        assert!(pass("/a/b"));
        assert!(t.passes(open, None, None, false), "incomplete paths pass");
        // A deletion: no rule can match one, so all are filtered.
        assert!(!t.passes(
            file_op::DELETE,
            Some(&walk_form(b"/etc/crontab")),
            None,
            false
        ));
        // A rename passes on its old path too.
        let rename = FilePrefilter::from_queries([(
            "r",
            r#"file where event.action == "rename" and file.path == "/etc/passwd""#,
        )])
        .tables();
        assert!(rename.passes(
            file_op::RENAME,
            Some(&walk_form(b"/tmp/x")),
            Some(&walk_form(b"/etc/passwd")),
            false
        ));
        assert!(!rename.passes(
            file_op::RENAME,
            Some(&walk_form(b"/tmp/x")),
            Some(&walk_form(b"/tmp/y")),
            false
        ));
    }

    #[test]
    fn process_names_pass_their_processes_events() {
        let q = r#"any where event.type in ("change", "creation") and
            (process.name == "chmod" or (process.name in ("sh", "bash") and process.args == "chmod"))
            and process.args == "+x""#;
        let r = d(q);
        let want = atoms(&[
            Atom::Proc(b"chmod".to_vec()),
            Atom::Proc(b"sh".to_vec()),
            Atom::Proc(b"bash".to_vec()),
        ]);
        assert_eq!(r[0], want);
        assert_eq!(r[1], want);
        assert_eq!(r[2], Derived::Never);
        let t = FilePrefilter::from_queries([("r", q)]).tables();
        let open = file_op::OPEN_WRITE;
        let walk = walk_form(b"/tmp/x");
        // The name is the executed file's (the walk's first component),
        // whatever the execve filename was.
        let pass = |name: Option<&[u8]>| {
            let v = t.proc_verdict(name);
            t.passes_process(open, v, Some(&walk), None, false)
        };
        assert!(pass(Some(b"chmod")));
        assert!(pass(Some(b"sh")));
        assert!(!pass(Some(b"cat")));
        assert!(!pass(Some(b"chmod2")));
        assert!(!pass(Some(b"CHMOD")));
        // Unsure names pass: the walk did not finish, nothing, too long.
        assert!(pass(None));
        assert!(pass(Some(b"")));
        assert!(pass(Some("a".repeat(PROC_WINDOW).as_bytes())));
        // The name counts only for the operations whose rules name it.
        let v = t.proc_verdict(Some(b"chmod"));
        assert!(!t.passes_process(file_op::DELETE, v, Some(&walk), None, false));
    }

    #[test]
    fn long_paths_match_on_their_first_components() {
        let p =
            FilePrefilter::from_queries([("r", r#"file where file.path like "/etc/*""#)]).tables();
        let long = format!("/etc/{}/x", "a".repeat(300));
        assert!(p.passes(
            file_op::OPEN_WRITE,
            Some(&walk_form(long.as_bytes())),
            None,
            false
        ));
        let other = format!("/var/{}/x", "a".repeat(300));
        assert!(!p.passes(
            file_op::OPEN_WRITE,
            Some(&walk_form(other.as_bytes())),
            None,
            false
        ));
    }

    #[test]
    fn prefixes_ending_mid_component_check_the_first_component() {
        let r = r#"file where event.action == "creation" and file.path like ("/entrypoint*", "/usr/lo*")"#;
        assert_eq!(
            d(r)[1],
            atoms(&[
                Atom::FirstPrefix(b"entrypoint".to_vec()),
                Atom::Prefix(b"/usr/".to_vec()),
            ])
        );
        let del = r#"file where event.action == "deletion" and file.path like "/other*""#;
        let t = FilePrefilter::from_queries([("r", r), ("d", del)]).tables();
        let pass = |p: &str| t.passes(file_op::CREATE, Some(&walk_form(p.as_bytes())), None, false);
        assert!(pass("/entrypoint"));
        assert!(pass("/entrypoint.sh"));
        assert!(pass("/entrypointx/a/b"));
        assert!(pass(&format!("/entrypoint{}/x", "a".repeat(245))));
        assert!(pass("/usr/local/x"));
        assert!(!pass("/entrypoin"));
        assert!(!pass("/tmp/entrypoint.sh"));
        assert!(!pass("/x/entrypoint/y"));
        assert!(!pass(&format!("/{}/entrypoint", "a".repeat(255))));
        assert!(!pass("/Entrypoint"));
        // Another operation's entries do not pass this one's records.
        assert!(!t.passes(
            file_op::DELETE,
            Some(&walk_form(b"/entrypoint")),
            None,
            false
        ));
        assert!(t.passes(
            file_op::DELETE,
            Some(&walk_form(b"/otherwise")),
            None,
            false
        ));
        // A literal longer than a key holds: its directory.
        let long = format!(
            r#"file where file.path like "/{}*""#,
            "e".repeat(FIRST_MAX + 1)
        );
        assert_eq!(d(&long)[1], atoms(&[Atom::Prefix(b"/".to_vec())]));
    }
}
