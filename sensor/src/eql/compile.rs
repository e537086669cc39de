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

use std::borrow::Cow;

use super::ast::{ArithOp, Category, CmpOp, Expr, Lit, Literal, Operand, Query};
use super::dates::{is_date_field, parse_millis};
use super::document::FieldRef;
use super::error::{EqlError, Span};
use super::lucene_regex::{translate, LuceneRegexSet};
use super::script::{Cidr, Func, SExpr, SVal, Script};
use super::strset::StrSet;
use super::wildcard::{WildcardPair, WildcardPattern, WildcardSet};

use super::field_types::TYPED;
pub use super::field_types::{mark_typed_fields, resolve_fields, FieldType};
use super::optimize::optimize;

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
    /// A condition Elasticsearch runs as a script: some combination of the
    /// values of its fields makes it true (see [`Script`]).
    Script(Box<Script>),
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
    /// A `date` field against a date (epoch milliseconds): `==`, `<`, ...
    Date(CmpOp, i64),
    /// A `date` field in a list of dates.
    DateIn(Box<[i64]>),
    /// A `date_nanos` field against a date (epoch milliseconds and the
    /// nanoseconds within the millisecond).
    DateNanos(CmpOp, i64, u32),
    /// A `version` field against a version (`<`, `<=`, `>`, `>=`): the
    /// value's [`version::key`](super::version::key) against this one.
    VersionRange(CmpOp, Box<[u8]>),
    /// `startsWith(f, "..")` (prefix query), and `endsWith`/`stringContains`
    /// whose string has no `*`, `?` or `\\`: a plain affix test.
    Affix(Affix, Box<[u8]>, bool),
    /// `endsWith`/`stringContains` whose string holds `*`, `?` or `\\`: the
    /// Lucene wildcard query Elasticsearch sends (see
    /// [`WildcardPattern::new_lucene`]).
    Pattern(Box<WildcardPattern>),
    /// `cidrMatch(f, ...)`: an IP address in one of the ranges.
    Cidr(Box<[Cidr]>),
}

/// Where a literal must occur in the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Affix {
    Prefix,
    Suffix,
    Contains,
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

/// `field <op> constant` for a field [`mark_typed_fields`] marked.
fn typed_cmp(
    marker: &str,
    path: &str,
    op: CmpOp,
    v: &Literal,
    span: Span,
) -> Result<Node, EqlError> {
    let f = FieldRef::new(path);
    let test = |op| -> Result<Test, EqlError> {
        Ok(if marker == FieldType::Version.marker() {
            match v {
                Literal::Str(s) => Test::VersionRange(op, super::version::key(s).into()),
                _ => {
                    return Err(EqlError::syntax(
                        "a version field compares with a string",
                        span,
                    ))
                }
            }
        } else if marker == FieldType::DateNanos.marker() {
            let (ms, ns) = date_nanos(v, span)?;
            Test::DateNanos(op, ms, ns)
        } else {
            Test::Date(op, date_millis(v, span)?)
        })
    };
    Ok(match op {
        CmpOp::Ne => Node::Not(Box::new(Node::Any(f, test(CmpOp::Eq)?))),
        op => Node::Any(f, test(op)?),
    })
}

fn date_nanos(v: &Literal, span: Span) -> Result<(i64, u32), EqlError> {
    match v {
        Literal::Str(s) => super::dates::parse_nanos(s).ok_or_else(|| {
            EqlError::syntax(
                format!("`{s}` is not a date (strict_date_optional_time or epoch milliseconds)"),
                span,
            )
        }),
        _ => Ok((date_millis(v, span)?, 0)),
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
        // `ExpressionTranslators.Nots`: the negation of a script is a script
        // of the negation (three-valued: `not null` is null, so false);
        // the negation of a query is `must_not`.
        Expr::Not(x) => match compile_expr(x)? {
            Node::Script(mut sc) => {
                sc.expr = SExpr::Not(Box::new(sc.expr));
                Node::Script(sc)
            }
            n => Node::Not(Box::new(n)),
        },
        Expr::Compare {
            left: Operand::Call { name, args, .. },
            op,
            right,
        } if name.starts_with(TYPED) => match (args.as_slice(), fold(right)?) {
            ([Operand::Field(f)], Some(v)) => typed_cmp(name, &f.path, *op, &v, right.span())?,
            // A comparison with null is null: never true.
            _ => Node::Const(false),
        },
        Expr::Compare { left, op, right } => {
            let (lf, rf) = (fold(left)?, fold(right)?);
            match (left, right, lf, rf) {
                (Operand::Field(f), _, _, Some(v)) => field_cmp(&f.path, *op, &v, right.span())?,
                // `LiteralsOnTheRight` / `BinaryComparison.swapLeftAndRight`:
                // `5 < f` is `f > 5`.
                (_, Operand::Field(f), Some(v), _) => {
                    field_cmp(&f.path, swap(*op), &v, left.span())?
                }
                // `x == null` is `IsNull(x)` and `x != null` `IsNotNull(x)`
                // for constants too: `null == null` is true, `5 != null`
                // true (QA `optionalMissingFieldNullEquality`: an unknown
                // `?field` is a null constant and `== null` holds).
                (_, _, Some(l), Some(r))
                    if matches!(op, CmpOp::Eq | CmpOp::Ne)
                        && (l == Literal::Null || r == Literal::Null) =>
                {
                    let other_is_null = l == Literal::Null && r == Literal::Null;
                    Node::Const((*op == CmpOp::Eq) == other_is_null)
                }
                (_, _, Some(l), Some(r)) => Node::Const(const_cmp(*op, &l, &r)),
                _ => script(e)?,
            }
        }
        Expr::In {
            left: Operand::Field(field),
            values,
            case_insensitive,
        } => {
            let mut lits = Vec::with_capacity(values.len());
            for v in values {
                match fold(v)? {
                    Some(l) => lits.push(l),
                    None => return script(e),
                }
            }
            // A null candidate never equals a value (`Comparisons.in`).
            lits.retain(|l| *l != Literal::Null);
            if is_date_field(&field.path) && !*case_insensitive {
                let mut ms = Vec::with_capacity(lits.len());
                for (l, v) in lits.iter().zip(values) {
                    ms.push(date_millis(l, v.span())?);
                }
                return Ok(Node::Any(
                    FieldRef::new(&field.path),
                    Test::DateIn(ms.into()),
                ));
            }
            let refs: Vec<&Literal> = lits.iter().collect();
            Node::Any(
                FieldRef::new(&field.path),
                Test::Exact(ValueSet::new(&refs, *case_insensitive)),
            )
        }
        Expr::Like {
            left: Operand::Field(field),
            patterns,
            case_insensitive,
        } => Node::Any(
            FieldRef::new(&field.path),
            Test::Wildcard(Box::new(like_set(patterns, *case_insensitive)?)),
        ),
        Expr::Regex {
            left: Operand::Field(field),
            patterns,
            case_insensitive,
        } => Node::Any(
            FieldRef::new(&field.path),
            Test::Regex(Box::new(regex_set(patterns, *case_insensitive)?)),
        ),
        Expr::Test(Operand::Field(f)) => Node::Any(
            FieldRef::new(&f.path),
            Test::Exact(ValueSet::new(&[&Literal::Bool(true)], false)),
        ),
        Expr::Test(Operand::Call {
            name,
            case_insensitive: ci,
            args,
            span,
        }) => {
            let func = check_call(name, *ci, args, *span)?;
            match (func, args.as_slice()) {
                (
                    Func::StartsWith(ci) | Func::EndsWith(ci) | Func::StringContains(ci),
                    [Operand::Field(f), Operand::Lit(Lit {
                        value: Literal::Str(p),
                        ..
                    })],
                ) => Node::Any(FieldRef::new(&f.path), affix_test(func, p, ci)),
                (Func::CidrMatch, [Operand::Field(f), rest @ ..]) => {
                    Node::Any(FieldRef::new(&f.path), Test::Cidr(cidrs(rest)?))
                }
                _ => script(e)?,
            }
        }
        _ => match fold_expr(e)? {
            Some(b) => Node::Const(b),
            None => script(e)?,
        },
    })
}

/// The query Elasticsearch sends for a string function on a field with a
/// literal (`QueryTranslator.CaseInsensitiveScalarFunctions` in
/// x-pack/plugin/eql, `ExpressionTranslators.Scalars.doKnownTranslate` in
/// x-pack/plugin/ql): `startsWith` → prefix query (the string literally),
/// `endsWith` → wildcard query `*s`, `stringContains` → `*s*`, where the
/// string is pasted in unescaped: its `*`, `?` and `\` are Lucene wildcard
/// syntax. `~` makes the query case-insensitive (ASCII letters fold).
fn affix_test(f: Func, p: &str, ci: bool) -> Test {
    let lucene = p.contains(['*', '?', '\\']);
    match f {
        Func::EndsWith(_) if lucene => {
            Test::Pattern(Box::new(WildcardPattern::new_lucene(&format!("*{p}"), ci)))
        }
        Func::StringContains(_) if lucene => {
            Test::Pattern(Box::new(WildcardPattern::new_lucene(&format!("*{p}*"), ci)))
        }
        Func::EndsWith(_) => Test::Affix(Affix::Suffix, p.as_bytes().into(), ci),
        Func::StringContains(_) => Test::Affix(Affix::Contains, p.as_bytes().into(), ci),
        _ => Test::Affix(Affix::Prefix, p.as_bytes().into(), ci),
    }
}

fn cidrs(args: &[Operand]) -> Result<Box<[Cidr]>, EqlError> {
    args.iter()
        .map(|a| match a {
            Operand::Lit(Lit {
                value: Literal::Str(s),
                span,
            }) => Cidr::parse(s).ok_or_else(|| {
                EqlError::syntax(format!("`{s}` is not an IP address or CIDR range"), *span)
            }),
            a => Err(EqlError::syntax(
                "`cidrMatch` ranges must be string literals",
                a.span(),
            )),
        })
        .collect()
}

fn like_set(patterns: &[Lit], ci: bool) -> Result<WildcardSet, EqlError> {
    let pats: Vec<&str> = patterns.iter().map(lit_str).collect();
    WildcardSet::new(&pats, ci).map_err(|e| EqlError::syntax(e.to_string(), span_of(patterns)))
}

fn regex_set(patterns: &[Lit], ci: bool) -> Result<LuceneRegexSet, EqlError> {
    let mut translated = Vec::with_capacity(patterns.len());
    for p in patterns {
        let t = translate(lit_str(p), ci).map_err(|e| {
            EqlError::syntax(format!("invalid Lucene regular expression: {e}"), p.span)
        })?;
        translated.push(t);
    }
    LuceneRegexSet::new(&translated).map_err(|e| EqlError::syntax(e.to_string(), span_of(patterns)))
}

pub(super) fn swap(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        op => op,
    }
}

/// `field <op> constant`: the term / range query Elasticsearch sends.
fn field_cmp(path: &str, op: CmpOp, v: &Literal, span: Span) -> Result<Node, EqlError> {
    let f = FieldRef::new(path);
    if is_date_field(path) && !matches!(v, Literal::Null) {
        let ms = date_millis(v, span)?;
        return Ok(match op {
            CmpOp::Ne => Node::Not(Box::new(Node::Any(f, Test::Date(CmpOp::Eq, ms)))),
            op => Node::Any(f, Test::Date(op, ms)),
        });
    }
    Ok(match (op, v) {
        (CmpOp::Eq, Literal::Null) => Node::Not(Box::new(Node::Exists(f))),
        (CmpOp::Ne, Literal::Null) => Node::Exists(f),
        (CmpOp::Eq, v) => Node::Any(f, Test::Exact(ValueSet::new(&[v], false))),
        (CmpOp::Ne, v) => Node::Not(Box::new(Node::Any(
            f,
            Test::Exact(ValueSet::new(&[v], false)),
        ))),
        (op, Literal::Int(i)) => Node::Any(f, Test::NumRange(op, *i as f64)),
        (op, Literal::Float(x)) => Node::Any(f, Test::NumRange(op, *x)),
        (op, Literal::Str(s)) => Node::Any(f, Test::StrRange(op, s.as_str().into())),
        // A range against null is null: never true.
        (_, Literal::Null) => Node::Const(false),
        (_, Literal::Bool(_)) => {
            return Err(EqlError::syntax(
                "`<`, `<=`, `>`, `>=` need a number or a string",
                span,
            ))
        }
    })
}

/// A date literal in epoch milliseconds: a `strict_date_optional_time`
/// string, epoch milliseconds as a number or a string of digits.
fn date_millis(v: &Literal, span: Span) -> Result<i64, EqlError> {
    match v {
        Literal::Int(i) => Ok(*i),
        Literal::Float(x) if x.is_finite() => Ok(x.floor() as i64),
        Literal::Str(s) => parse_millis(s).ok_or_else(|| {
            EqlError::syntax(
                format!("`{s}` is not a date (strict_date_optional_time or epoch milliseconds)"),
                span,
            )
        }),
        _ => Err(EqlError::syntax("a date field compares with a date", span)),
    }
}

/// A comparison of two constants, folded (null → false).
fn const_cmp(op: CmpOp, l: &Literal, r: &Literal) -> bool {
    super::script::compare(&lit_sval(l), &lit_sval(r)).is_some_and(|o| super::eval::ord_ok(op, o))
}

fn lit_sval(l: &Literal) -> SVal<'static> {
    match l {
        Literal::Str(s) => SVal::Str(Cow::Owned(s.clone())),
        Literal::Int(i) => SVal::Int(*i),
        Literal::Float(x) => SVal::Float(*x),
        Literal::Bool(b) => SVal::Bool(*b),
        Literal::Null => SVal::Null,
    }
}

fn sval_lit(v: SVal<'_>) -> Literal {
    match v {
        SVal::Str(s) => Literal::Str(s.into_owned()),
        SVal::Int(i) => Literal::Int(i),
        SVal::Float(x) => Literal::Float(x),
        SVal::Bool(b) => Literal::Bool(b),
        SVal::Null => Literal::Null,
    }
}

/// The value of an operand without fields (Elasticsearch folds it at
/// planning); `None` if it reads a field. An error while folding (a long
/// divided by zero) fails the query in Elasticsearch: here it is an error.
fn fold(o: &Operand) -> Result<Option<Literal>, EqlError> {
    if let Operand::Lit(l) = o {
        return Ok(Some(l.value.clone()));
    }
    let mut fields = Vec::new();
    let x = sexpr(o, &mut fields)?;
    if !fields.is_empty() {
        return Ok(None);
    }
    Script::fold(&x).map(|v| Some(sval_lit(v))).map_err(|_| {
        EqlError::syntax(
            "this constant expression fails in Elasticsearch (e.g. a long divided by zero, or an overflow)",
            o.span(),
        )
    })
}

/// A condition without fields, folded.
fn fold_expr(e: &Expr) -> Result<Option<bool>, EqlError> {
    let mut fields = Vec::new();
    let x = sexpr_cond(e, &mut fields)?;
    if !fields.is_empty() {
        return Ok(None);
    }
    Ok(Some(matches!(Script::fold(&x), Ok(SVal::Bool(true)))))
}

/// A leaf condition Elasticsearch runs as a script.
fn script(e: &Expr) -> Result<Node, EqlError> {
    let mut fields = Vec::new();
    let expr = sexpr_cond(e, &mut fields)?;
    Ok(Node::Script(Box::new(Script {
        fields: fields.iter().map(|p| FieldRef::new(p)).collect(),
        expr,
    })))
}

fn slot(path: &str, fields: &mut Vec<String>) -> usize {
    match fields.iter().position(|f| f == path) {
        Some(i) => i,
        None => {
            fields.push(path.to_string());
            fields.len() - 1
        }
    }
}

/// Compiles a condition for evaluation inside a script.
fn sexpr_cond(e: &Expr, fields: &mut Vec<String>) -> Result<SExpr, EqlError> {
    let many = |v: &[Expr], fields: &mut Vec<String>| -> Result<Box<[SExpr]>, EqlError> {
        v.iter().map(|x| sexpr_cond(x, fields)).collect()
    };
    Ok(match e {
        Expr::And(v) => SExpr::And(many(v, fields)?),
        Expr::Or(v) => SExpr::Or(many(v, fields)?),
        Expr::Not(x) => SExpr::Not(Box::new(sexpr_cond(x, fields)?)),
        Expr::Const(b) => SExpr::Const(SVal::Bool(*b)),
        // The optimizer turns `x == null` into `IsNull(x)` and `x != null`
        // into `IsNotNull(x)` (`OptimizerRules` in x-pack/plugin/ql).
        Expr::Compare {
            left,
            op: op @ (CmpOp::Eq | CmpOp::Ne),
            right:
                Operand::Lit(Lit {
                    value: Literal::Null,
                    ..
                }),
        }
        | Expr::Compare {
            left:
                Operand::Lit(Lit {
                    value: Literal::Null,
                    ..
                }),
            op: op @ (CmpOp::Eq | CmpOp::Ne),
            right: left,
        } => {
            let n = SExpr::IsNull(Box::new(sexpr(left, fields)?));
            if *op == CmpOp::Eq {
                n
            } else {
                SExpr::Not(Box::new(n))
            }
        }
        Expr::Compare { left, op, right } => SExpr::Cmp(
            *op,
            Box::new(sexpr(left, fields)?),
            Box::new(sexpr(right, fields)?),
        ),
        Expr::In {
            left,
            values,
            case_insensitive,
        } => SExpr::In(
            Box::new(sexpr(left, fields)?),
            values
                .iter()
                .map(|v| sexpr(v, fields))
                .collect::<Result<_, _>>()?,
            *case_insensitive,
        ),
        Expr::Like {
            left,
            patterns,
            case_insensitive,
        } => SExpr::Like(
            Box::new(sexpr(left, fields)?),
            Box::new(like_set(patterns, *case_insensitive)?),
        ),
        Expr::Regex {
            left,
            patterns,
            case_insensitive,
        } => SExpr::Regex(
            Box::new(sexpr(left, fields)?),
            Box::new(regex_set(patterns, *case_insensitive)?),
        ),
        Expr::Test(o) => sexpr(o, fields)?,
    })
}

/// Compiles a value expression for evaluation inside a script.
fn sexpr(o: &Operand, fields: &mut Vec<String>) -> Result<SExpr, EqlError> {
    Ok(match o {
        Operand::Field(f) => SExpr::Field(slot(&f.path, fields)),
        Operand::Lit(l) => SExpr::Const(lit_sval(&l.value)),
        Operand::Neg(x, _) => SExpr::Neg(Box::new(num_arg(x, fields)?)),
        Operand::Arith {
            op, left, right, ..
        } => SExpr::Arith(
            *op,
            Box::new(num_arg(left, fields)?),
            Box::new(num_arg(right, fields)?),
        ),
        Operand::Cond(e, _) => sexpr_cond(e, fields)?,
        Operand::Call {
            name,
            case_insensitive,
            args,
            span,
        } => {
            if let Some(op) = arith_fn(name) {
                check_call(name, *case_insensitive, args, *span)?;
                return Ok(SExpr::Arith(
                    op,
                    Box::new(num_arg(&args[0], fields)?),
                    Box::new(num_arg(&args[1], fields)?),
                ));
            }
            let f = check_call(name, *case_insensitive, args, *span)?;
            if f == Func::CidrMatch {
                return Ok(SExpr::Cidr(
                    Box::new(sexpr(&args[0], fields)?),
                    cidrs(&args[1..])?,
                ));
            }
            SExpr::Call(
                f,
                args.iter()
                    .map(|a| sexpr(a, fields))
                    .collect::<Result<_, _>>()?,
            )
        }
    })
}

/// An operand of arithmetic: a string or boolean literal there is a type
/// error in Elasticsearch (`ArithmeticOperation.resolveType`).
fn num_arg(o: &Operand, fields: &mut Vec<String>) -> Result<SExpr, EqlError> {
    if let Operand::Lit(Lit {
        value: Literal::Str(_) | Literal::Bool(_),
        span,
    }) = o
    {
        return Err(EqlError::syntax("arithmetic needs numbers", *span));
    }
    sexpr(o, fields)
}

fn arith_fn(name: &str) -> Option<ArithOp> {
    Some(match name {
        "add" => ArithOp::Add,
        "subtract" => ArithOp::Sub,
        "multiply" => ArithOp::Mul,
        "divide" => ArithOp::Div,
        "modulo" => ArithOp::Mod,
        _ => return None,
    })
}

/// Argument kinds, for the literal type checks Elasticsearch's verifier
/// makes (`S` string, `N` number, `B` boolean, `A` anything).
const FUNCTIONS: &[(&str, usize, usize, bool, &str)] = &[
    // name, min args, max args (usize::MAX = variadic), has `~`, kinds
    ("between", 3, 4, true, "SSSB"),
    ("cidrmatch", 2, usize::MAX, false, "SS"),
    ("concat", 1, usize::MAX, false, "A"),
    ("endswith", 2, 2, true, "SS"),
    ("indexof", 2, 3, true, "SSN"),
    ("length", 1, 1, false, "S"),
    ("number", 1, 2, false, "SN"),
    ("startswith", 2, 2, true, "SS"),
    ("string", 1, 1, false, "A"),
    ("stringcontains", 2, 2, true, "SS"),
    ("substring", 2, 3, false, "SNN"),
    ("add", 2, 2, false, "NN"),
    ("subtract", 2, 2, false, "NN"),
    ("multiply", 2, 2, false, "NN"),
    ("divide", 2, 2, false, "NN"),
    ("modulo", 2, 2, false, "NN"),
];

/// Resolves a function call (`EqlFunctionRegistry` in x-pack/plugin/eql)
/// and checks its arity, its `~` and the types of its literal arguments.
fn check_call(name: &str, ci: bool, args: &[Operand], span: Span) -> Result<Func, EqlError> {
    let Some(&(_, min, max, has_ci, kinds)) = FUNCTIONS.iter().find(|f| f.0 == name) else {
        return Err(EqlError::unsupported(
            format!("unknown function `{name}`: not one of Elasticsearch's EQL functions (between, cidrMatch, concat, endsWith, indexOf, length, number, startsWith, string, stringContains, substring, add, subtract, multiply, divide, modulo)"),
            span,
        ));
    };
    if ci && !has_ci {
        return Err(EqlError::syntax(
            format!("`{name}` has no case-insensitive `~` form"),
            span,
        ));
    }
    if args.len() < min || args.len() > max {
        let want = match (min, max) {
            (a, b) if a == b => format!("{a}"),
            (a, usize::MAX) => format!("at least {a}"),
            (a, b) => format!("{a} to {b}"),
        };
        return Err(EqlError::syntax(
            format!("`{name}` takes {want} arguments, got {}", args.len()),
            span,
        ));
    }
    let kinds = kinds.as_bytes();
    for (i, a) in args.iter().enumerate() {
        let kind = kinds.get(i).or(kinds.last()).copied().unwrap_or(b'A');
        let bad = match (kind, a) {
            (b'S', Operand::Lit(l)) => !matches!(l.value, Literal::Str(_) | Literal::Null),
            (b'N', Operand::Lit(l)) => {
                !matches!(l.value, Literal::Int(_) | Literal::Float(_) | Literal::Null)
            }
            (b'B', Operand::Lit(l)) => !matches!(l.value, Literal::Bool(_) | Literal::Null),
            _ => false,
        };
        if bad {
            let what = match kind {
                b'S' => "a string",
                b'N' => "a number",
                _ => "a boolean",
            };
            return Err(EqlError::syntax(
                format!("argument {} of `{name}` must be {what}", i + 1),
                a.span(),
            ));
        }
    }
    Ok(match name {
        "between" => Func::Between(ci),
        "cidrmatch" => Func::CidrMatch,
        "concat" => Func::Concat,
        "endswith" => Func::EndsWith(ci),
        "indexof" => Func::IndexOf(ci),
        "length" => Func::Length,
        "number" => Func::Number,
        "startswith" => Func::StartsWith(ci),
        "string" => Func::String,
        "stringcontains" => Func::StringContains(ci),
        "substring" => Func::Substring,
        // add ... modulo: compiled as arithmetic by the caller.
        _ => Func::Concat,
    })
}

fn span_of(lits: &[Lit]) -> Span {
    match (lits.first(), lits.last()) {
        (Some(a), Some(b)) => a.span.to(b.span),
        _ => Span::default(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn verdict(src: &str, doc: &serde_json::Value) -> bool {
        let q = compile(&crate::eql::parser::parse(src).unwrap()).unwrap();
        q.matches(&crate::eql::JsonDocument::new(doc))
    }

    #[test]
    fn ranges_on_a_version_field_follow_version_precedence() {
        let marked = |src: &str| {
            let mut q = crate::eql::parser::parse(src).unwrap();
            mark_typed_fields(&mut q, &|p| {
                (p == "app.version").then_some(FieldType::Version)
            });
            compile(&q).unwrap()
        };
        let doc = |v: Option<&str>| match v {
            Some(v) => {
                serde_json::json!({"event": {"category": "process"}, "app": {"version": v}, "name": v})
            }
            None => serde_json::json!({"event": {"category": "process"}}),
        };
        let gt = marked("process where app.version > \"1.5.0\"");
        let lt = marked("process where \"1.5.0\" > app.version");
        let not_gt = marked("process where not (app.version > \"1.5.0\")");
        let eq = marked("process where app.version == \"1.5.0\"");
        for (v, greater, less) in [
            ("1.11.3", true, false),
            ("1.5.0", false, false),
            ("1.2.4-SNAPSHOT", false, true),
            ("1.5.0-rc.1", false, true),
            ("2.0", true, false),
            // Not a version: after every version.
            ("bad", true, false),
        ] {
            let d = doc(Some(v));
            let m = |q: &CompiledQuery| q.matches(&crate::eql::JsonDocument::new(&d));
            assert_eq!(m(&gt), greater, "{v} > 1.5.0");
            assert_eq!(m(&lt), less, "1.5.0 > {v}");
            assert_eq!(m(&not_gt), !greater, "not ({v} > 1.5.0)");
            assert_eq!(m(&eq), v == "1.5.0", "{v} == 1.5.0");
        }
        // A range does not match a missing field; its negation does.
        let d = doc(None);
        assert!(!gt.matches(&crate::eql::JsonDocument::new(&d)));
        assert!(not_gt.matches(&crate::eql::JsonDocument::new(&d)));
        // An unmarked (keyword) field compares bytes: "1.11.3" < "1.5.0".
        assert!(!verdict(
            "process where name > \"1.5.0\"",
            &doc(Some("1.11.3"))
        ));
        assert!(verdict("process where name > \"1.5.0\"", &doc(Some("bad"))));
    }

    #[test]
    fn date_nanos_fields_compare_to_the_nanosecond_and_date_fields_to_the_millisecond() {
        let marked = |src: &str, ty: FieldType| {
            let mut q = crate::eql::parser::parse(src).unwrap();
            mark_typed_fields(&mut q, &|p| (p == "t").then_some(ty));
            compile(&q).unwrap()
        };
        // Two events in the same millisecond, 100 ns apart.
        let a =
            serde_json::json!({"event": {"category": "x"}, "t": "2020-01-01T00:00:00.123000100Z"});
        let b = serde_json::json!({"event": {"category": "x"}, "t": "1577836800123.000200"});
        let m =
            |q: &CompiledQuery, d: &serde_json::Value| q.matches(&crate::eql::JsonDocument::new(d));
        let eq = "x where t == \"2020-01-01T00:00:00.123000100Z\"";
        let gt = "x where \"2020-01-01T00:00:00.123000150Z\" < t";
        let ne = "x where t != \"1577836800123.0001\"";
        let nanos = |q| marked(q, FieldType::DateNanos);
        assert!(m(&nanos(eq), &a) && !m(&nanos(eq), &b));
        assert!(!m(&nanos(gt), &a) && m(&nanos(gt), &b));
        assert!(!m(&nanos(ne), &a) && m(&nanos(ne), &b));
        // A `date` field keeps milliseconds: both are the same instant.
        let millis = |q| marked(q, FieldType::Date);
        assert!(m(&millis(eq), &a) && m(&millis(eq), &b));
        assert!(!m(&millis(gt), &a) && !m(&millis(gt), &b));
        // Unmarked, `t` is a keyword: `==` compares strings.
        assert!(!verdict(eq, &b));
    }

    #[test]
    fn null_equality_of_constants_is_a_null_check() {
        let doc = serde_json::json!({"event": {"category": "process"}});
        for (q, want) in [
            ("process where null == null", true),
            ("process where null != null", false),
            ("process where 5 == null", false),
            ("process where 5 != null", true),
            ("process where null == \"a\"", false),
            ("process where \"a\" != null", true),
            // Other comparisons with null stay null: no match.
            ("process where null < 5", false),
            ("process where null >= null", false),
        ] {
            assert_eq!(verdict(q, &doc), want, "{q}");
        }
    }

    #[test]
    fn unknown_fields_are_errors_and_unknown_optional_fields_null() {
        let known = |p: &str| p == "a" || p == "event.category";
        let doc = serde_json::json!({"event": {"category": "process"}, "a": 1});
        let resolved = |src: &str| {
            let mut q = crate::eql::parser::parse(src).unwrap();
            resolve_fields(&mut q, &known, true).map(|()| q)
        };
        for (src, want) in [
            ("process where ?x == null", true),
            ("process where ?x == ?y", true),
            ("process where ?x != null", false),
            ("process where ?x", false),
            ("process where ?x == 1", false),
            ("process where ?a == 1 and length(?x) == null", true),
        ] {
            let q = compile(&resolved(src).unwrap()).unwrap();
            assert_eq!(
                q.matches(&crate::eql::JsonDocument::new(&doc)),
                want,
                "{src}"
            );
        }
        let err = resolved("process where x == 1 or a == 1").unwrap_err();
        assert!(err.message.contains("unknown field `x`"), "{err}");
        // Not strict: a plain unknown field is a field without values.
        let mut q = crate::eql::parser::parse("process where x == null and ?y == null").unwrap();
        resolve_fields(&mut q, &known, false).unwrap();
        assert!(compile(&q)
            .unwrap()
            .matches(&crate::eql::JsonDocument::new(&doc)));
        // A known field without a value in this document is not null
        // constant: the comparison of two missing fields is null.
        let both_known = |p: &str| p != "zzz";
        let mut q = crate::eql::parser::parse("process where ?x == ?y").unwrap();
        resolve_fields(&mut q, &both_known, true).unwrap();
        assert!(!compile(&q)
            .unwrap()
            .matches(&crate::eql::JsonDocument::new(&doc)));
    }

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
