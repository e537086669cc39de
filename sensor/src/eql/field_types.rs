//! What an index mapping tells the compiler: typed fields compared as
//! Elasticsearch compares them (`date`, `date_nanos`, `version`), and
//! optional fields (`?field`) an index does not know, resolved as its
//! analyzer resolves them. Only a replay knows a mapping; the live sensor
//! never calls these.

use super::ast::{CmpOp, Expr, Lit, Literal, Operand, Query};
use super::compile::swap;
use super::error::EqlError;

/// Resolves a query's fields against an index's known fields, as
/// Elasticsearch's analyzer does before anything runs: an optional field
/// (`?field`) the index does not know stands for `null` (so `?nope ==
/// null` is true and `?nope == ?other` compares two nulls); a plain field
/// it does not know is an error ("unknown field") when `strict`, and is
/// left alone otherwise (as if the mapping declared it). Known fields are
/// left alone: a known field missing from a document has no value there.
///
/// Only a replay over a whole data set knows the index (its mapping and
/// every field some event has a value for, as dynamic mapping would add);
/// the live sensor never calls this.
pub fn resolve_fields(
    q: &mut Query,
    known: &dyn Fn(&str) -> bool,
    strict: bool,
) -> Result<(), EqlError> {
    let known = |path: &str, optional: bool| known(path) || (!optional && !strict);
    resolve_expr(&mut q.condition, &known)
}

/// What an index mapping says a field is, where it changes how
/// Elasticsearch compares it with a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// `date`: compared as epoch milliseconds (the ECS date fields are
    /// dates without a mapping, see [`is_date_field`]).
    Date,
    /// `date_nanos`: compared to the nanosecond.
    DateNanos,
    /// `version`: ranges compare by version precedence
    /// ([`version`](super::version)); `==` is exact as on a keyword.
    Version,
}

/// The prefix of the markers [`mark_typed_fields`] wraps a typed field in;
/// `$` is no identifier character, so no query can write one.
pub(super) const TYPED: &str = "$";

impl FieldType {
    pub(super) fn marker(self) -> &'static str {
        match self {
            FieldType::Date => "$date",
            FieldType::DateNanos => "$date_nanos",
            FieldType::Version => "$version",
        }
    }
}

/// Marks the comparisons of typed fields with a constant so [`compile`]
/// answers them as Elasticsearch does for the field's mapping type (see
/// [`FieldType`]). Only a replay knows field types (from the index
/// mapping); the live sensor's fields are ECS, whose dates
/// [`is_date_field`] knows.
pub fn mark_typed_fields(q: &mut Query, type_of: &dyn Fn(&str) -> Option<FieldType>) {
    mark_types(&mut q.condition, type_of);
}

pub(super) fn mark_types(e: &mut Expr, type_of: &dyn Fn(&str) -> Option<FieldType>) {
    match e {
        Expr::And(xs) | Expr::Or(xs) => xs.iter_mut().for_each(|x| mark_types(x, type_of)),
        Expr::Not(x) => mark_types(x, type_of),
        Expr::Compare { left, op, right } => {
            let constant = |o: &Operand| {
                matches!(
                    o,
                    Operand::Lit(Lit {
                        value: Literal::Str(_) | Literal::Int(_) | Literal::Float(_),
                        ..
                    })
                )
            };
            let typed = |o: &Operand| match o {
                Operand::Field(f) => type_of(&f.path),
                _ => None,
            };
            if typed(right).is_some() && constant(left) {
                std::mem::swap(left, right);
                *op = swap(*op);
            }
            let Some(ty) = typed(left) else {
                return;
            };
            let range = matches!(op, CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge);
            if !constant(right) || (ty == FieldType::Version && !range) {
                return;
            }
            let span = left.span();
            let field = std::mem::replace(
                left,
                Operand::Lit(Lit {
                    value: Literal::Null,
                    span,
                }),
            );
            *left = Operand::Call {
                name: ty.marker().to_owned(),
                case_insensitive: false,
                args: vec![field],
                span,
            };
        }
        _ => {}
    }
}

pub(super) fn resolve_expr(
    e: &mut Expr,
    known: &dyn Fn(&str, bool) -> bool,
) -> Result<(), EqlError> {
    match e {
        Expr::And(xs) | Expr::Or(xs) => xs.iter_mut().try_for_each(|x| resolve_expr(x, known)),
        Expr::Not(x) => resolve_expr(x, known),
        Expr::Const(_) => Ok(()),
        Expr::Compare { left, right, .. } => {
            resolve_operand(left, known)?;
            resolve_operand(right, known)
        }
        Expr::In { left, values, .. } => {
            resolve_operand(left, known)?;
            values
                .iter_mut()
                .try_for_each(|v| resolve_operand(v, known))
        }
        Expr::Like { left, .. } | Expr::Regex { left, .. } | Expr::Test(left) => {
            resolve_operand(left, known)
        }
    }
}

fn resolve_operand(o: &mut Operand, known: &dyn Fn(&str, bool) -> bool) -> Result<(), EqlError> {
    match o {
        Operand::Field(f) if known(&f.path, f.optional) => Ok(()),
        Operand::Field(f) if f.optional => {
            *o = Operand::Lit(Lit {
                value: Literal::Null,
                span: f.span,
            });
            Ok(())
        }
        Operand::Field(f) => Err(EqlError::syntax(
            format!(
                "unknown field `{}`: no event has it and the mapping does not declare it (`?{}` would read it as null)",
                f.path, f.path
            ),
            f.span,
        )),
        Operand::Lit(_) => Ok(()),
        Operand::Call { args, .. } => args.iter_mut().try_for_each(|a| resolve_operand(a, known)),
        Operand::Arith { left, right, .. } => {
            resolve_operand(left, known)?;
            resolve_operand(right, known)
        }
        Operand::Neg(x, _) => resolve_operand(x, known),
        Operand::Cond(x, _) => resolve_expr(x, known),
    }
}
