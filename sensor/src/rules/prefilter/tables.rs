//! The kernel's maps for a derived prefilter (`kernel::file_filter::Tables`,
//! the plain data the kernel side loads): the key forms of
//! `sensor_common::prefilter`, built from the atoms.

use std::collections::BTreeSet;

use sensor_common::prefilter::{
    forms, gram_bit_of, name_hash_of, op_bit, proc_fold_hash_of, proc_hash_of, FIRST_TAG, FOLD_TAG,
    GATE_COMPONENT_MAX, GRAM_BYTES, KEY_DATA, TAG_EXT, TAG_NAME,
};

use super::atom::Atom;
use super::{FilePrefilter, OPS};
use crate::kernel::file_filter::Tables;

impl FilePrefilter {
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
                t.add(*op, a);
            }
        }
        t
    }
}

impl Tables {
    fn add(&mut self, op: u32, atom: &Atom) {
        let (a, folded) = atom.unfolded();
        let tag = if folded { FOLD_TAG } else { 0 };
        let form = match a {
            Atom::Exact(p) => {
                let mut k = path_entry(op as u8 | tag, p);
                k.extend_from_slice(&[0, 0]);
                k.truncate(KEY_DATA);
                self.paths.insert(k);
                forms::FOLD_PATHS
            }
            Atom::Prefix(p) => {
                let trimmed = p.strip_suffix(b"/").unwrap_or(p);
                let mut k = path_entry(op as u8 | tag, trimmed);
                k.push(0);
                k.truncate(KEY_DATA);
                self.paths.insert(k);
                forms::FOLD_PATHS
            }
            Atom::FirstPrefix(p) => {
                let mut k = vec![op as u8 | FIRST_TAG | tag];
                k.extend_from_slice(p);
                self.paths.insert(k);
                forms::FOLD_PATHS
            }
            // Names and extensions are hashed folded either way
            // (`name_hashes`).
            Atom::Name(n) => {
                self.names.insert(name_hash_of(op, TAG_NAME, n));
                0
            }
            Atom::Ext(e) => {
                self.names.insert(name_hash_of(op, TAG_EXT, e));
                0
            }
            Atom::Proc(_) => {
                self.add_proc(atom, op_bit(op));
                0
            }
            Atom::Gram(g) => {
                let bits = self
                    .grams
                    .entry(op)
                    .or_insert_with(|| Box::new([0; GRAM_BYTES]));
                let bit = gram_bit_of(g);
                bits[bit / 8] |= 1 << (bit % 8);
                *self.forms.entry(op).or_insert(0) |= forms::GRAMS;
                0
            }
            // `unfolded` removed the one level there is.
            Atom::Folded(_) => 0,
        };
        if folded && form != 0 {
            *self.forms.entry(op).or_insert(0) |= form;
        }
    }

    /// A process-name atom (`Atom::Proc`, possibly folded) passing the
    /// verdict bits `bits` (`op_bit` of file operations, `net_proc_bit` of
    /// network actions). Any other atom is ignored.
    pub fn add_proc(&mut self, atom: &Atom, bits: u32) {
        let (a, folded) = atom.unfolded();
        let Atom::Proc(n) = a else { return };
        let h = if folded {
            proc_fold_hash_of(n)
        } else {
            proc_hash_of(n)
        };
        *self.procs.entry(h).or_insert(0) |= bits;
    }

    /// `op`'s optional key forms.
    pub fn forms_of(&self, op: u32) -> u32 {
        self.forms.get(&op).copied().unwrap_or(0)
    }
}

/// The first-component gate's entries for `op` (`FILE_FILTER_FIRST`: the
/// operation — with `FOLD_TAG` for a case-insensitive atom, whose
/// component is folded — then an exact first component and its NUL, or
/// a first-component prefix), one per path atom; `None` when some path
/// atom does not fix its first component within `GATE_COMPONENT_MAX`
/// bytes (the prefix `/`: every path) or a gram may lie in any component,
/// which leaves `op` ungated.
fn gate_entries(op: u32, atoms: &BTreeSet<Atom>) -> Option<BTreeSet<Vec<u8>>> {
    let mut out = BTreeSet::new();
    for atom in atoms {
        let (a, folded) = atom.unfolded();
        let (first, exact) = match a {
            Atom::Exact(p) | Atom::Prefix(p) => {
                let body = p.strip_prefix(b"/").unwrap_or(p);
                (body.split(|b| *b == b'/').next().unwrap_or_default(), true)
            }
            Atom::FirstPrefix(p) => (p.as_slice(), false),
            Atom::Gram(_) => return None,
            Atom::Name(_) | Atom::Ext(_) | Atom::Proc(_) | Atom::Folded(_) => continue,
        };
        if first.is_empty() || first.len() > GATE_COMPONENT_MAX || first.contains(&0) {
            return None;
        }
        let mut k = vec![op as u8 | if folded { FOLD_TAG } else { 0 }];
        k.extend_from_slice(first);
        if exact {
            k.push(0);
        }
        out.insert(k);
    }
    Some(out)
}

/// The key bytes of a path in the kernel's form (`fill_path_key`): the
/// key's first byte, then per component outermost first a NUL and the
/// component's bytes reversed.
fn path_entry(first: u8, path: &[u8]) -> Vec<u8> {
    let mut k = vec![first];
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
