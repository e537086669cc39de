//! One field test's values (`==`, `in`, `like`, and their case-insensitive
//! forms) to the atoms every match satisfies.
//!
//! The evaluator compares a path's text: a non-UTF-8 path is escaped
//! (`crate::byte_text`: `\xNN` with lower-case hex, a backslash doubled), the
//! kernel sees bytes. A literal without a backslash that is a whole path,
//! a prefix ending at a `/`, a whole basename or extension cannot overlap
//! an escape (none holds a `/` or a `.`), so its bytes are the path's. A
//! gram (a run inside a component) holds no backslash, so it cannot
//! contain an escape nor end inside one (every escape starts with a
//! backslash); it could only start inside one, so it does not start with
//! a character an escape ends with (`x` or a hex digit, either case: a
//! case-insensitive gram matches both).

use std::collections::BTreeSet;

use sensor_common::prefilter::{FIRST_MAX, GRAM_LEN};

use super::atom::{breadth, Atom, Derived};
use super::derive::{give_up, no_file_condition};

/// Atoms for `process.name` equal to one of `values` (up to ASCII case
/// when `ci`). A value with a backslash may equal an escaped (non-UTF-8)
/// name whose bytes differ: no atoms (the condition does not narrow). Any
/// other value equals the name's text only if it equals its bytes
/// (escaping always writes a backslash).
pub(super) fn proc_leaf(values: &[&str], ci: bool) -> Derived {
    if values.iter().any(|v| v.contains('\\')) {
        return no_file_condition();
    }
    Derived::Atoms(
        values
            .iter()
            .map(|v| {
                let a = Atom::Proc(v.as_bytes().to_vec());
                if ci {
                    a.folded()
                } else {
                    a
                }
            })
            .collect(),
    )
}

/// Atoms for `field` equal to (or, `like`, matching) one of `values`, up
/// to ASCII case when `ci`.
pub(super) fn leaf(field: &str, values: &[&str], like: bool, ci: bool) -> Derived {
    let mut atoms = BTreeSet::new();
    for v in values {
        let wild = like && v.contains(['*', '?']);
        let found = if wild {
            pattern_atoms(field, v)
        } else {
            literal_atoms(field, v)
        };
        let found = match found {
            Ok(a) => a,
            Err(why) => return give_up(why),
        };
        atoms.extend(found.into_iter().map(|a| if ci { a.folded() } else { a }));
    }
    if atoms.is_empty() {
        Derived::Never
    } else {
        Derived::Atoms(atoms)
    }
}

fn is_path_field(field: &str) -> bool {
    matches!(field, "file.path" | "file.Ext.original.path")
}

/// The atom of a value without wildcards; none when it can never match
/// (a path not starting with `/`: the sensor's paths are absolute).
fn literal_atoms(field: &str, v: &str) -> Result<BTreeSet<Atom>, String> {
    if is_path_field(field) && !v.starts_with('/') {
        return Ok(BTreeSet::new());
    }
    // Backslashes appear in a non-UTF-8 path's escaped text
    // (`crate::byte_text`): such a value may match text whose bytes differ.
    if v.contains('\\') {
        return Err(format!("a backslash in a {field} value ({v:?})"));
    }
    let b = v.as_bytes().to_vec();
    let atom = match field {
        "file.path" | "file.Ext.original.path" => Atom::Exact(b),
        "file.name" | "file.Ext.original.name" => Atom::Name(b),
        "file.extension" => Atom::Ext(b),
        "file.directory" if v == "/" => Atom::Prefix(b),
        "file.directory" => Atom::Prefix(format!("{v}/").into_bytes()),
        _ => return Err(format!("{field} is not checked in the kernel")),
    };
    Ok([atom].into())
}

/// The narrowest atoms every value matching the wildcard pattern `v`
/// satisfies: a literal start (directory or first-component prefix), a
/// literal end (basename, extension), else a gram of a literal run.
fn pattern_atoms(field: &str, v: &str) -> Result<BTreeSet<Atom>, String> {
    let path = is_path_field(field) || field == "file.directory";
    // A path pattern is anchored at its start: a literal first character
    // other than `/` never matches an absolute path.
    if path && !v.starts_with(['/', '*', '?']) {
        return Ok(BTreeSet::new());
    }
    let mut options: Vec<BTreeSet<Atom>> = Vec::new();
    let clean = !v.contains('\\');
    let first_wild = v.find(['*', '?']).unwrap_or(v.len());
    let tail = &v[v.rfind(['*', '?']).map_or(0, |i| i + 1)..];
    if clean && path && first_wild > 0 {
        if let Some(a) = prefix_atom(&v[..first_wild]) {
            options.push([a].into());
        }
    }
    if clean && field != "file.directory" && field != "file.extension" {
        match tail.rfind('/') {
            // The path ends with `/name`: the basename.
            Some(i) if i + 1 < tail.len() => {
                options.push([Atom::Name(tail.as_bytes()[i + 1..].to_vec())].into())
            }
            Some(_) => {}
            // The basename ends with the tail: its extension, when the
            // tail holds a dot with something after it (or the whole name
            // is `.ext`, which has none).
            None => {
                if let Some(dot) = tail.rfind('.') {
                    let ext = &tail.as_bytes()[dot + 1..];
                    if !ext.is_empty() {
                        options.push(
                            [
                                Atom::Ext(ext.to_vec()),
                                Atom::Name(tail.as_bytes()[dot..].to_vec()),
                            ]
                            .into(),
                        );
                    }
                }
            }
        }
    }
    if let Some(g) = gram_of(v) {
        options.push([Atom::Gram(g)].into());
    }
    options
        .into_iter()
        .min_by_key(breadth)
        .ok_or_else(|| format!("{field} pattern {v:?} has no literal the kernel can check"))
}

/// Characters an escape sequence (`\xNN`) may continue with.
fn escape_tail(b: u8) -> bool {
    b == b'x' || b == b'X' || b.is_ascii_hexdigit()
}

/// Four bytes of a literal run of `pattern` inside one component: no
/// wildcard, `/` or backslash, and a first byte that cannot continue an
/// escape. Of those, the one with the most bytes that are not letters
/// (digits and punctuation are rarer in paths than words are: `em32`
/// rather than `syst`), then from the longest run.
pub(super) fn gram_of(pattern: &str) -> Option<[u8; GRAM_LEN]> {
    let mut runs: Vec<&[u8]> = pattern
        .as_bytes()
        .split(|b| matches!(b, b'*' | b'?' | b'/' | b'\\' | 0))
        .collect();
    runs.sort_by_key(|r| std::cmp::Reverse(r.len()));
    let rare = |w: &[u8]| w.iter().filter(|b| !b.is_ascii_alphabetic()).count();
    let mut best: Option<&[u8]> = None;
    for w in runs.iter().flat_map(|r| r.windows(GRAM_LEN)) {
        if !escape_tail(w[0]) && best.is_none_or(|b| rare(w) > rare(b)) {
            best = Some(w);
        }
    }
    best.and_then(|w| w.try_into().ok())
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
