//! What a rule requires of a file event, as the kernel can check it: the
//! atoms, and what a condition derives to per operation.

use std::collections::BTreeSet;

use sensor_common::prefilter::{fold, GRAM_LEN};

/// A necessary literal condition on a file's path (or on the acting
/// process's name).
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
    /// The inner atom holds up to ASCII case (`:`, `like~`, `in~`): its
    /// bytes are stored folded ([`fold`]) and compared with the record's
    /// folded bytes.
    Folded(Box<Atom>),
    /// Some component of the path contains these bytes, up to ASCII case
    /// (a literal run inside a wildcard pattern: `*.so.*`,
    /// `*.git/hooks/*`). No `/`, no NUL.
    Gram([u8; GRAM_LEN]),
}

impl Atom {
    /// The case-insensitive form of this atom (a gram is one already).
    pub fn folded(self) -> Atom {
        let f = |b: Vec<u8>| b.into_iter().map(fold).collect::<Vec<u8>>();
        match self {
            Atom::Exact(b) => Atom::Folded(Box::new(Atom::Exact(f(b)))),
            Atom::Prefix(b) => Atom::Folded(Box::new(Atom::Prefix(f(b)))),
            Atom::FirstPrefix(b) => Atom::Folded(Box::new(Atom::FirstPrefix(f(b)))),
            Atom::Name(b) => Atom::Folded(Box::new(Atom::Name(f(b)))),
            Atom::Ext(b) => Atom::Folded(Box::new(Atom::Ext(f(b)))),
            Atom::Proc(b) => Atom::Folded(Box::new(Atom::Proc(f(b)))),
            a @ (Atom::Folded(_) | Atom::Gram(_)) => a,
        }
    }

    /// The atom without its case-insensitivity, and whether it had one.
    pub fn unfolded(&self) -> (&Atom, bool) {
        match self {
            Atom::Folded(inner) => (inner, true),
            a => (a, false),
        }
    }
}

impl std::fmt::Display for Atom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, b) = match self {
            Atom::Exact(b) => ("path", b.as_slice()),
            Atom::Prefix(b) => ("prefix", b.as_slice()),
            Atom::FirstPrefix(b) => ("first-component prefix", b.as_slice()),
            Atom::Name(b) => ("name", b.as_slice()),
            Atom::Ext(b) => ("ext", b.as_slice()),
            Atom::Proc(b) => ("process.name", b.as_slice()),
            Atom::Gram(g) => ("contains", g.as_slice()),
            Atom::Folded(inner) => return write!(f, "{inner} (any case)"),
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

/// How broad a set of atoms is, to pick the narrowest side of an `and`
/// (or the narrowest reading of a pattern).
pub fn breadth(atoms: &BTreeSet<Atom>) -> usize {
    atoms.iter().map(atom_breadth).sum()
}

fn atom_breadth(a: &Atom) -> usize {
    match a {
        Atom::Prefix(p) if p.as_slice() == b"/" => 1_000_000,
        Atom::Prefix(_) | Atom::FirstPrefix(_) => 10,
        // A gram is checked on the whole walk and turns the gate off.
        Atom::Gram(_) => 50,
        Atom::Folded(inner) => atom_breadth(inner),
        _ => 1,
    }
}
