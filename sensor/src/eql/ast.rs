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

/// An arithmetic operator (`+ - * / %`, and the functions `add`,
/// `subtract`, `multiply`, `divide`, `modulo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    /// `+`, `add`
    Add,
    /// `-`, `subtract`
    Sub,
    /// `*`, `multiply`
    Mul,
    /// `/`, `divide`
    Div,
    /// `%`, `modulo`
    Mod,
}

/// A value expression: what may stand on either side of a comparison or be
/// an argument of a function.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A field.
    Field(Field),
    /// A literal.
    Lit(Lit),
    /// `name(args)` or `name~(args)`; `name` lower-cased as Elasticsearch
    /// resolves it (function names are case-insensitive).
    Call {
        /// Lower-cased name without `~`.
        name: String,
        /// Written with `~`.
        case_insensitive: bool,
        /// Arguments.
        args: Vec<Operand>,
        /// The whole call.
        span: Span,
    },
    /// `a <op> b`.
    Arith {
        /// Operator.
        op: ArithOp,
        /// Left side.
        left: Box<Operand>,
        /// Right side.
        right: Box<Operand>,
        /// The whole expression.
        span: Span,
    },
    /// `-a` (on a non-literal).
    Neg(Box<Operand>, Span),
    /// A condition used as a value: `(a == 1) == true`.
    Cond(Box<Expr>, Span),
}

impl Operand {
    /// Where it is in the query.
    pub fn span(&self) -> Span {
        match self {
            Operand::Field(f) => f.span,
            Operand::Lit(l) => l.span,
            Operand::Call { span, .. }
            | Operand::Arith { span, .. }
            | Operand::Neg(_, span)
            | Operand::Cond(_, span) => *span,
        }
    }
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
    /// `left <op> right`: field, literal or expression on either side.
    Compare {
        /// Left side.
        left: Operand,
        /// Operator.
        op: CmpOp,
        /// Right side.
        right: Operand,
    },
    /// `x in (..)`, `x in~ (..)`; `not in` is parsed as `Not(In)`.
    In {
        /// Left side.
        left: Operand,
        /// Candidates (exact match).
        values: Vec<Operand>,
        /// `in~`.
        case_insensitive: bool,
    },
    /// `x like ..`, `x like~ ..`, `x : ..` (= `like~`).
    Like {
        /// Left side.
        left: Operand,
        /// Wildcard patterns (string literals, escapes already applied by the lexer).
        patterns: Vec<Lit>,
        /// `like~` or `:`.
        case_insensitive: bool,
    },
    /// `x regex ..`, `x regex~ ..`.
    Regex {
        /// Left side.
        left: Operand,
        /// Lucene regular expressions.
        patterns: Vec<Lit>,
        /// `regex~`.
        case_insensitive: bool,
    },
    /// A value used as a condition: a boolean function
    /// (`startsWith(process.name, "x")`) or a boolean field.
    Test(Operand),
}

/// A parsed EQL statement: a single-event query or a sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `<category> where <condition>`.
    Event(Query),
    /// `sequence ...`.
    Sequence(SequenceQuery),
    /// `sample ...`.
    Sample(SampleQuery),
}

/// A join key: a field as written after `by` (`?field` is optional: a
/// missing value is a valid, `null`, key).
pub type JoinKey = Field;

/// `sequence [by k, ...] [with maxspan=N<unit>] step step... [until step]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceQuery {
    /// Keys shared by every step (`sequence by ...`).
    pub by: Vec<JoinKey>,
    /// `with maxspan=...`, in milliseconds.
    pub maxspan_ms: Option<u64>,
    /// The steps, in order, with `runs=N` already expanded.
    pub steps: Vec<SequenceStep>,
    /// `until [...]`.
    pub until: Option<SequenceStep>,
    /// The whole query.
    pub span: Span,
}

/// `sample [by k, ...] [query] [by ...] [query] [by ...] ...`: events with
/// the same key, one per filter, in any order and at any distance.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleQuery {
    /// Keys shared by every filter (`sample by ...`).
    pub by: Vec<JoinKey>,
    /// The filters (`missing` is always false).
    pub filters: Vec<SequenceStep>,
    /// The whole query.
    pub span: Span,
}

/// One `[query] [by ...] [with runs=N]` (or `![query]`) of a sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceStep {
    /// The step's event query.
    pub query: Query,
    /// The step's own keys (appended to the sequence's).
    pub by: Vec<JoinKey>,
    /// `![...]`: a missing-event step.
    pub missing: bool,
    /// Where it is.
    pub span: Span,
}

/// A node of the tree, for walks that keep their own stack.
#[derive(Clone, Copy)]
enum Node<'a> {
    Expr(&'a Expr),
    Operand(&'a Operand),
}

impl<'a> Node<'a> {
    /// Calls `f` on each direct child.
    fn children(self, f: &mut impl FnMut(Node<'a>)) {
        match self {
            Node::Expr(e) => match e {
                Expr::And(xs) | Expr::Or(xs) => xs.iter().for_each(|x| f(Node::Expr(x))),
                Expr::Not(x) => f(Node::Expr(x)),
                Expr::Const(_) => {}
                Expr::Compare { left, right, .. } => {
                    f(Node::Operand(left));
                    f(Node::Operand(right));
                }
                Expr::In { left, values, .. } => {
                    f(Node::Operand(left));
                    values.iter().for_each(|v| f(Node::Operand(v)));
                }
                Expr::Like { left, .. } | Expr::Regex { left, .. } | Expr::Test(left) => {
                    f(Node::Operand(left))
                }
            },
            Node::Operand(o) => match o {
                Operand::Field(_) | Operand::Lit(_) => {}
                Operand::Call { args, .. } => args.iter().for_each(|a| f(Node::Operand(a))),
                Operand::Arith { left, right, .. } => {
                    f(Node::Operand(left));
                    f(Node::Operand(right));
                }
                Operand::Neg(x, _) => f(Node::Operand(x)),
                Operand::Cond(x, _) => f(Node::Expr(x)),
            },
        }
    }

    /// Levels of the tree under and including this node (a leaf is 1),
    /// counted with an explicit stack: no recursion, whatever the depth.
    fn height(self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((node, depth)) = stack.pop() {
            deepest = deepest.max(depth);
            node.children(&mut |child| stack.push((child, depth + 1)));
        }
        deepest
    }
}

impl Expr {
    /// Levels of the condition's tree (a comparison of two fields is 2):
    /// what every recursive walk over it (compilation, evaluation, the rule
    /// checks, dropping it) nests. Counted without recursion.
    pub fn height(&self) -> usize {
        Node::Expr(self).height()
    }
}

impl Operand {
    /// Levels of the value's tree (a field is 1); see [`Expr::height`].
    pub fn height(&self) -> usize {
        Node::Operand(self).height()
    }
}
