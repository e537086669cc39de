//! From a parsed EQL condition to what it requires of one operation's
//! events ([`Derived`]): conservative, three-valued on
//! `event.category`/`type`/`action` as [`sources`] decides them.

use std::collections::BTreeSet;

use super::atom::{breadth, Atom, Derived};
use super::pattern::{leaf, proc_leaf};
use crate::eql::ast::{Category, CmpOp, Expr, Literal, Operand, Query};
use crate::rules::fields;
use crate::rules::sources::{self, Kind};

/// The file fields whose conditions give atoms.
pub(super) const FILE_FIELDS: [&str; 6] = [
    "file.path",
    "file.name",
    "file.extension",
    "file.directory",
    "file.Ext.original.path",
    "file.Ext.original.name",
];

pub(super) fn no_file_condition() -> Derived {
    Derived::PassAll {
        reason:
            "no condition on file.path, file.name, file.extension or file.directory is required"
                .to_owned(),
        file: false,
    }
}

pub(super) fn give_up(reason: String) -> Derived {
    Derived::PassAll { reason, file: true }
}

/// The per-operation requirement of `query` for the event kind `k`.
pub fn derive_query(q: &Query, k: &Kind) -> Derived {
    match &q.category {
        Category::Named(c) if c != k.category => Derived::Never,
        _ => derive(&q.condition, k),
    }
}

/// Whether no event the sensor emits carries `path`: its top-level object
/// is not one the sensor produces (`data_stream`, `url`, `kubernetes`).
/// Only the top level is judged, so an object whose keys vary can never
/// be mistaken for absent.
fn never_present(path: &str) -> bool {
    let top = path.split('.').next().unwrap_or(path);
    !fields::produced().contains(top)
}

/// Whether `e` is a positive test of a field no event carries (`==` a
/// non-null literal, `in`, `like`, `:`, `regex`): false on every event.
fn tests_absent_field(e: &Expr) -> bool {
    match e {
        Expr::Compare {
            left: Operand::Field(f),
            op: CmpOp::Eq,
            right: Operand::Lit(l),
        }
        | Expr::Compare {
            left: Operand::Lit(l),
            op: CmpOp::Eq,
            right: Operand::Field(f),
        } => !matches!(l.value, Literal::Null) && never_present(&f.path),
        Expr::In {
            left: Operand::Field(f),
            values,
            ..
        } => values.iter().all(|v| matches!(v, Operand::Lit(_))) && never_present(&f.path),
        Expr::Like {
            left: Operand::Field(f),
            ..
        }
        | Expr::Regex {
            left: Operand::Field(f),
            ..
        } => never_present(&f.path),
        _ => false,
    }
}

/// The requirement of a condition on events of kind `k`.
pub fn derive(e: &Expr, k: &Kind) -> Derived {
    match sources::eval(e, k) {
        Some(false) => return Derived::Never,
        Some(true) => return no_file_condition(),
        None => {}
    }
    if tests_absent_field(e) {
        return Derived::Never;
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
            Literal::Str(s) => leaf(&f.path, &[s.as_str()], false, false),
            Literal::Null => give_up(format!("`{} == null`", f.path)),
            // A number or boolean literal also matches its text
            // (`compile::ValueSet`): not worth a kernel atom.
            _ => give_up(format!("`{} ==` a non-string literal", f.path)),
        },
        Expr::In {
            left: Operand::Field(f),
            values,
            case_insensitive,
        } if is_file_field(&f.path) => match in_strings(values) {
            Ok(strs) => leaf(&f.path, &strs, false, *case_insensitive),
            Err(what) => give_up(format!("`{} in` with {what}", f.path)),
        },
        Expr::Like {
            left: Operand::Field(f),
            patterns,
            case_insensitive,
        } if is_file_field(&f.path) => {
            let mut strs = Vec::with_capacity(patterns.len());
            for p in patterns {
                match &p.value {
                    Literal::Str(s) => strs.push(s.as_str()),
                    _ => return give_up(format!("`{} like` with a non-string pattern", f.path)),
                }
            }
            leaf(&f.path, &strs, true, *case_insensitive)
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
        } if f.path == "process.name" => match &l.value {
            Literal::Str(s) => proc_leaf(&[s.as_str()], false),
            _ => no_file_condition(),
        },
        Expr::In {
            left: Operand::Field(f),
            values,
            case_insensitive,
        } if f.path == "process.name" => match in_strings(values) {
            Ok(strs) => proc_leaf(&strs, *case_insensitive),
            Err(_) => no_file_condition(),
        },
        // `process.name : "chmod"` (or `like` without a wildcard): the
        // name is exactly the value, up to case for `:`/`like~`.
        Expr::Like {
            left: Operand::Field(f),
            patterns,
            case_insensitive,
        } if f.path == "process.name" => {
            let mut strs = Vec::with_capacity(patterns.len());
            for p in patterns {
                match &p.value {
                    Literal::Str(s) if !s.contains(['*', '?']) => strs.push(s.as_str()),
                    _ => return no_file_condition(),
                }
            }
            proc_leaf(&strs, *case_insensitive)
        }
        e if mentions_file(e) => give_up(format!(
            "a condition on a file field that is not ==, in, like or : on a literal: {}",
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
