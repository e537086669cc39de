//! Typed syntax tree of a single-event EQL query: `<category> where <expr>`.
//!
//! The tree keeps spans so that compile-time errors (a bad wildcard or
//! regular expression) can point at the offending literal.

use super::error::Span;

/// A parsed `<category> where <condition>` query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The event category gate.
    pub category: Category,
    /// The condition.
    pub condition: Expr,
}

/// The event category a query applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Category {
    /// `any where`: every event.
    Any,
    /// `process where`, `file where`, ...: `event.category` must contain it.
    Named(String),
}

/// A field path as written, with `?` (optional) marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Dotted path.
    pub path: String,
    /// `?field`: no error if the schema lacks it. We have no schema, so this
    /// only documents intent: a missing field is simply missing.
    pub optional: bool,
    /// Where it is.
    pub span: Span,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `"..."` or `"""..."""`.
    Str(String),
    /// Integer.
    Int(i64),
    /// Decimal.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// A literal with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Lit {
    /// The value.
    pub value: Literal,
    /// Where it is.
    pub span: Span,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A boolean expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `a and b` (flattened: all must hold).
    And(Vec<Expr>),
    /// `a or b` (flattened: one must hold).
    Or(Vec<Expr>),
    /// `not a`.
    Not(Box<Expr>),
    /// `true` / `false` as a condition.
    Const(bool),
    /// `field <op> literal`.
    Compare {
        /// Left side.
        field: Field,
        /// Operator.
        op: CmpOp,
        /// Right side.
        value: Lit,
    },
    /// `field in (..)`, `field in~ (..)`; `not in` is parsed as `Not(In)`.
    In {
        /// Left side.
        field: Field,
        /// Candidates (exact match).
        values: Vec<Lit>,
        /// `in~`.
        case_insensitive: bool,
    },
    /// `field like ..`, `field like~ ..`, `field : ..` (= `like~`).
    Like {
        /// Left side.
        field: Field,
        /// Wildcard patterns (string literals, escapes already applied by the lexer).
        patterns: Vec<Lit>,
        /// `like~` or `:`.
        case_insensitive: bool,
    },
    /// `field regex ..`, `field regex~ ..`.
    Regex {
        /// Left side.
        field: Field,
        /// Lucene regular expressions.
        patterns: Vec<Lit>,
        /// `regex~`.
        case_insensitive: bool,
    },
}
