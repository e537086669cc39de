//! The in-kernel file prefilter, derived from the loaded rules: which file
//! records may cross to userspace at all.
//!
//! For every rule (single-event, every step of a sequence including
//! missing-event and `until` steps, `any where` rules) and every file
//! operation, [`derive`] computes from the parsed EQL a disjunction of
//! atoms ([`Atom`]: an exact path, a directory or first-component prefix,
//! a basename, an extension, a process name, each possibly up to ASCII
//! case, or a gram a component contains) such that any event of that
//! operation the rule could match satisfies at least one; or says why it
//! cannot (`PassAll`). It is conservative: `not` alone, functions, regexes
//! and ranges on file fields give up; conditions on
//! `event.category`/`event.type`/`event.action` decide which operations a
//! rule can match at all (three-valued, as [`super::sources`] does), and
//! so does a positive test of a field no event carries (a sequence
//! needing such a step never fires); other fields never narrow, but an
//! `and` with one required atom does.
//!
//! Modules: `atom` (what is required), `derive` (conditions), `pattern`
//! (one field test's values), `tables` (the kernel's maps), `model` (the
//! kernel's check over them).
//!
//! The union over the rules becomes the kernel's maps ([`Tables`]), and
//! [`Tables::passes`] is a model of exactly what the kernel checks, built
//! on the same key and hash steps (`sensor_common::prefilter`); the
//! property test (`tests/prefilter_proptest.rs`) checks that every event a
//! rule matches passes the model.

use std::collections::BTreeSet;

use super::sources::{Kind, KINDS};
use crate::eql::ast::{Query, Statement};

mod atom;
mod derive;
mod model;
mod pattern;
mod tables;
#[cfg(test)]
mod tests;

pub use crate::kernel::file_filter::Tables;
pub use atom::{Atom, Derived};
pub use derive::{derive, derive_query};
pub use model::walk_form;

/// Operations the prefilter knows: `sensor_common::file_op` 1 to 4.
pub const OP_COUNT: usize = sensor_common::prefilter::OPS as usize - 1;

/// The file operations, as the kernel numbers them and the rules name them
/// (`event.action`), in `file_op` order; derived from [`KINDS`].
pub const OPS: [(u32, &str); OP_COUNT] = {
    let mut out = [(0, ""); OP_COUNT];
    let mut i = 0;
    while i < KINDS.len() {
        if let Some(op) = KINDS[i].file_op {
            out[op as usize - 1] = (op, KINDS[i].action);
        }
        i += 1;
    }
    let mut op = 0;
    while op < OP_COUNT {
        assert!(out[op].0 as usize == op + 1, "a file_op without its kind");
        assert!(
            same(out[op].1, sensor_common::file_op::NAMES[op + 1]),
            "a file action named otherwise than its file_op"
        );
        op += 1;
    }
    out
};

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
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
    KINDS
        .iter()
        .find(|k| k.file_op == Some(op))
        .unwrap_or(&KINDS[KINDS.len() - 1])
}

/// One rule's requirement per operation (in [`OPS`] order).
pub fn derive_rule(query: &str) -> Result<[Derived; OP_COUNT], String> {
    let stmt = crate::eql::parser::parse_statement(query).map_err(|e| e.to_string())?;
    if never_fires(&stmt) {
        return Ok(std::array::from_fn(|_| Derived::Never));
    }
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

/// Whether a sequence or sample can never fire: one of the queries it
/// needs (a sequence's non-missing steps, every filter of a sample)
/// matches no event of any kind the sensor emits (say, it tests
/// `data_stream.dataset`, a field no event carries). Then none of its
/// queries needs to see a file event, missing-event steps included.
fn never_fires(s: &Statement) -> bool {
    let required: Vec<&Query> = match s {
        Statement::Event(_) => return false,
        Statement::Sequence(seq) => seq
            .steps
            .iter()
            .filter(|s| !s.missing)
            .map(|s| &s.query)
            .collect(),
        Statement::Sample(smp) => smp.filters.iter().map(|s| &s.query).collect(),
    };
    required.iter().any(|q| {
        KINDS
            .iter()
            .all(|k| matches!(derive_query(q, k), Derived::Never))
    })
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
pub fn describe(derived: &[Derived; OP_COUNT]) -> Option<String> {
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

/// `"rule" (why), "rule" (why)`: the rules that make a prefilter pass
/// everything, as the start-up lines and `rules check` name them.
pub fn named_reasons(rules: &[(String, String)]) -> String {
    rules
        .iter()
        .map(|(r, why)| format!("\"{r}\" ({why})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One operation's prefilter: `Ok(atoms)` (an empty set filters every
/// record), `Err((rule, reason))` pass all.
pub type OpPrefilter = Result<BTreeSet<Atom>, Vec<(String, String)>>;

/// The prefilter of a rule set: per operation, the atoms to load, or the
/// rules that make it pass everything.
#[derive(Debug, Clone, Default)]
pub struct FilePrefilter {
    /// Per operation ([`OPS`] order); `None`: off, everything passes.
    pub ops: [Option<OpPrefilter>; OP_COUNT],
}

impl FilePrefilter {
    /// Derives the prefilter of `rules` (single-event and sequence rules).
    pub fn from_queries<'a>(rules: impl IntoIterator<Item = (&'a str, &'a str)>) -> FilePrefilter {
        let mut ops: [OpPrefilter; OP_COUNT] = std::array::from_fn(|_| Ok(BTreeSet::new()));
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
        FilePrefilter::from_queries(rules.named_queries())
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
                Some(Err(rules)) => format!("{name}: pass-all because of {}", named_reasons(rules)),
            })
            .collect();
        format!("file prefilter: {}", parts.join("; "))
    }
}
