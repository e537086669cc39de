//! Recursive-descent parser for `<category> where <expr>`.
//!
//! Precedence, loosest first: `or`, `and`, `not`, comparisons (`==`, `in`,
//! `like`, `:`, `regex`, ...), `+ -`, `* / %`, unary `-`, then literals,
//! fields, function calls (`name(..)`, `name~(..)`) and parentheses — the
//! grammar of Elasticsearch's `EqlBase.g4` (`booleanExpression`,
//! `valueExpression`, `operatorExpression`, `primaryExpression`). Valid EQL
//! that the engine does not evaluate (`sequence`, `sample`, `join`, pipes,
//! array indexing) is reported as
//! [`EqlErrorKind::Unsupported`](super::error::EqlErrorKind) rather than as a
//! syntax error, so that rule loading can skip such rules with a reason.

use super::ast::{ArithOp, Category, CmpOp, Expr, Field, Lit, Literal, Operand, Query, Statement};
use super::error::{EqlError, Span};
use super::lexer::{first_token, tokenize, Tok, Token};

mod statements;

/// Most parentheses, `not`s, signs and function calls nested one inside
/// another: the parser's own recursion. Elastic's catalogues nest at most
/// a handful (`docs/eql.md`, Limits).
pub const MAX_NESTING: usize = 64;

/// Most levels of a condition's syntax tree, counting every operator (an
/// arithmetic chain `a + b + c` is two levels, not one): what compilation,
/// evaluation, the rule checks and dropping the tree nest, each level a
/// stack frame. Far above Elastic's deepest query and far below what a
/// 2 MiB thread stack holds.
pub const MAX_HEIGHT: usize = 200;

/// Most `and` / `or` operators in one statement (list values and function
/// arguments are bounded apart: [`MAX_LIST_VALUES`], the rule file's size).
/// Elastic's longest query has a few hundred.
pub const MAX_CONDITIONS: usize = 10_000;

/// Parses a query.
pub fn parse(src: &str) -> Result<Query, EqlError> {
    if let Token {
        tok: Tok::Ident(word),
        span,
    } = first_token(src)?
    {
        if matches!(word.as_str(), "sequence" | "sample" | "join") {
            return Err(EqlError::unsupported(
                format!("`{word}` queries correlate several events and are not supported; only single-event `<category> where <condition>` queries are evaluated"),
                span,
            ));
        }
    }
    Parser::new(src)?.query()
}

/// Most steps a sequence may have once `runs=N` is expanded (Elasticsearch
/// caps `runs` at 100).
pub const MAX_STEPS: usize = 256;

/// Most filters a `sample` may have here: the match picks one distinct
/// event per filter by backtracking over at most that many candidates per
/// filter (Elasticsearch's `SampleIterator.matchSample`), which is
/// exponential in the number of filters. Elastic's rules use 2 to 5.
pub const MAX_SAMPLE_FILTERS: usize = 5;

/// Parses a single-event query, a `sequence` or a `sample` (`join` is
/// reported as unsupported).
pub fn parse_statement(src: &str) -> Result<Statement, EqlError> {
    let first = first_token(src)?;
    match &first.tok {
        Tok::Ident(w) if w == "sequence" => {}
        Tok::Ident(w) if w == "sample" => return Parser::new(src)?.sample().map(Statement::Sample),
        Tok::Ident(w) if w == "join" => {
            return Err(EqlError::unsupported(
                "`join` queries are not supported (Elasticsearch does not run them either)",
                first.span,
            ))
        }
        _ => return parse(src).map(Statement::Event),
    }
    Parser::new(src)?.sequence().map(Statement::Sequence)
}

fn arith(op: ArithOp, left: Operand, right: Operand) -> Operand {
    let span = left.span().to(right.span());
    Operand::Arith {
        op,
        left: Box::new(left),
        right: Box::new(right),
        span,
    }
}

/// Most values in one `in`/`like` list. Elastic's longest lists have a few
/// hundred; a list is compiled into sets and automata in time and memory
/// linear in its size, and the cap bounds both for a rule file planted by
/// whoever can write the rules directory.
pub const MAX_LIST_VALUES: usize = 100_000;

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    /// `and` / `or` operators parsed so far in the statement.
    conditions: usize,
    /// Parsing `by` keys of a sequence.
    in_keys: bool,
}

const KEYWORDS: &[&str] = &[
    "and", "or", "not", "in", "in~", "like", "like~", "regex", "regex~", "where", "true", "false",
    "null", "sequence", "sample", "join", "by", "with", "until", "of",
];

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::QuotedIdent(s) => format!("`{s}`"),
        Tok::Str(_) => "a string".into(),
        Tok::Int(_) | Tok::Float(_) => "a number".into(),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::LBracket => "`[`".into(),
        Tok::RBracket => "`]`".into(),
        Tok::Comma => "`,`".into(),
        Tok::EqEq => "`==`".into(),
        Tok::Assign => "`=`".into(),
        Tok::NotEq => "`!=`".into(),
        Tok::Lt => "`<`".into(),
        Tok::Le => "`<=`".into(),
        Tok::Gt => "`>`".into(),
        Tok::Ge => "`>=`".into(),
        Tok::Colon => "`:`".into(),
        Tok::Question => "`?`".into(),
        Tok::Pipe => "`|`".into(),
        Tok::Other(c) => format!("`{c}`"),
        Tok::Eof => "end of query".into(),
    }
}

impl Parser {
    fn new(src: &str) -> Result<Parser, EqlError> {
        Ok(Parser {
            tokens: tokenize(src)?,
            pos: 0,
            depth: 0,
            conditions: 0,
            in_keys: false,
        })
    }

    fn peek(&self) -> &Token {
        // The token list always ends with Eof and `pos` never passes it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek2(&self) -> &Token {
        &self.tokens[(self.pos + 1).min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s == kw)
    }

    /// The end of a sequence or sample: the end of the query, or a pipe
    /// (unsupported); anything else is `expected` that was not found.
    fn expect_end(&self, expected: &str) -> Result<Span, EqlError> {
        let end = self.peek().span;
        match &self.peek().tok {
            Tok::Eof => Ok(end),
            Tok::Pipe => Err(EqlError::unsupported(
                "pipes (`| head`, `| tail`, ...) are not supported",
                end,
            )),
            _ => Err(self.unexpected(expected)),
        }
    }

    fn unexpected(&self, expected: &str) -> EqlError {
        let t = self.peek();
        EqlError::syntax(
            format!("expected {expected}, found {}", describe(&t.tok)),
            t.span,
        )
    }

    fn query(&mut self) -> Result<Query, EqlError> {
        let q = self.event_body()?;
        match &self.peek().tok {
            Tok::Eof => Ok(q),
            Tok::Pipe => Err(EqlError::unsupported(
                "pipes (`| head`, `| tail`, ...) are not supported",
                self.peek().span,
            )),
            _ => Err(self.unexpected("`and`, `or` or end of query")),
        }
    }

    /// `<category> where <condition>`, stopping at the first token that
    /// cannot continue the condition.
    fn event_body(&mut self) -> Result<Query, EqlError> {
        let first = self.peek().clone();
        let category = match &first.tok {
            Tok::Ident(s) if matches!(s.as_str(), "sequence" | "sample" | "join") => {
                return Err(EqlError::unsupported(
                    format!("`{s}` queries correlate several events and are not supported; only single-event `<category> where <condition>` queries are evaluated"),
                    first.span,
                ));
            }
            Tok::Ident(s) if s == "any" => Category::Any,
            Tok::Ident(s) if !KEYWORDS.contains(&s.as_str()) && !s.contains('.') => {
                Category::Named(s.clone())
            }
            Tok::Str(s) => Category::Named(s.clone()),
            _ => return Err(self.unexpected("an event category (e.g. `process`, `any`)")),
        };
        self.advance();
        if !self.is_kw("where") {
            return Err(self.unexpected("`where` after the event category"));
        }
        self.advance();
        let start = self.peek().span;
        let condition = self.or_expr()?;
        if condition.height() > MAX_HEIGHT {
            let end = self.tokens[self.pos.saturating_sub(1)].span;
            return Err(EqlError::syntax(
                format!(
                    "the condition nests more than {MAX_HEIGHT} levels deep, the most a query may"
                ),
                start.to(end),
            ));
        }
        Ok(Query {
            category,
            condition,
        })
    }

    fn enter(&mut self) -> Result<(), EqlError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(EqlError::syntax(
                format!(
                    "more than {MAX_NESTING} parentheses, `not`s, signs and function calls \
                     nested in one another, the most a query may have"
                ),
                self.peek().span,
            ));
        }
        Ok(())
    }

    /// The height of `left <op> right` (`left_height` the left side's, when
    /// known: a chain keeps it), refused past [`MAX_HEIGHT`] at the
    /// operator, before a deeper tree is built.
    fn chain_height(
        &self,
        left: &Operand,
        left_height: Option<usize>,
        right: &Operand,
        op: Span,
    ) -> Result<usize, EqlError> {
        let left_height = left_height.unwrap_or_else(|| left.height());
        let height = left_height.max(right.height()) + 1;
        if height > MAX_HEIGHT {
            return Err(EqlError::syntax(
                format!(
                    "arithmetic nested more than {MAX_HEIGHT} levels deep (each operator of a \
                     chain is a level), the most a query may have"
                ),
                op,
            ));
        }
        Ok(height)
    }

    /// Counts one more `and` / `or`, refused past [`MAX_CONDITIONS`].
    fn joined(&mut self) -> Result<(), EqlError> {
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return Err(EqlError::syntax(
                format!(
                    "more than {MAX_CONDITIONS} `and`/`or` operators, the most a query may have"
                ),
                self.peek().span,
            ));
        }
        self.advance();
        Ok(())
    }

    fn or_expr(&mut self) -> Result<Expr, EqlError> {
        let mut items = vec![self.and_expr()?];
        while self.is_kw("or") {
            self.joined()?;
            items.push(self.and_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and_expr(&mut self) -> Result<Expr, EqlError> {
        let mut items = vec![self.not_expr()?];
        while self.is_kw("and") {
            self.joined()?;
            items.push(self.not_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn not_expr(&mut self) -> Result<Expr, EqlError> {
        if self.is_kw("not") {
            self.advance();
            self.enter()?;
            let inner = self.not_expr()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.predicate()
    }

    /// A comparison, `in`, `like`, `regex` or `:` on a value, or a value
    /// used as a condition.
    fn predicate(&mut self) -> Result<Expr, EqlError> {
        let left = self.value()?;
        self.comparison(left)
    }

    /// `additive`: the loosest-binding value expression.
    fn value(&mut self) -> Result<Operand, EqlError> {
        let mut left = self.term()?;
        let mut height = None;
        loop {
            let op = match self.peek().tok {
                Tok::Other('+') => ArithOp::Add,
                Tok::Other('-') => ArithOp::Sub,
                _ => return Ok(left),
            };
            let at = self.advance().span;
            let right = self.term()?;
            height = Some(self.chain_height(&left, height, &right, at)?);
            left = arith(op, left, right);
        }
    }

    fn term(&mut self) -> Result<Operand, EqlError> {
        let mut left = self.unary()?;
        let mut height = None;
        loop {
            let op = match self.peek().tok {
                Tok::Other('*') => ArithOp::Mul,
                Tok::Other('/') => ArithOp::Div,
                Tok::Other('%') => ArithOp::Mod,
                _ => return Ok(left),
            };
            let at = self.advance().span;
            let right = self.unary()?;
            height = Some(self.chain_height(&left, height, &right, at)?);
            left = arith(op, left, right);
        }
    }

    fn unary(&mut self) -> Result<Operand, EqlError> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Other('-') => {
                self.advance();
                self.enter()?;
                let inner = self.unary()?;
                self.depth -= 1;
                let span = t.span.to(inner.span());
                Ok(match inner {
                    // `-5` is the literal -5.
                    Operand::Lit(Lit {
                        value: Literal::Int(i),
                        ..
                    }) if i != i64::MIN => Operand::Lit(Lit {
                        value: Literal::Int(-i),
                        span,
                    }),
                    Operand::Lit(Lit {
                        value: Literal::Float(x),
                        ..
                    }) => Operand::Lit(Lit {
                        value: Literal::Float(-x),
                        span,
                    }),
                    other => Operand::Neg(Box::new(other), span),
                })
            }
            Tok::Other('+') => {
                self.advance();
                self.enter()?;
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(inner)
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Operand, EqlError> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::LParen => {
                self.advance();
                self.enter()?;
                let e = self.or_expr()?;
                self.depth -= 1;
                if self.peek().tok != Tok::RParen {
                    return Err(self.unexpected("`)`"));
                }
                let close = self.advance().span;
                Ok(match e {
                    Expr::Test(v) => v,
                    e => Operand::Cond(Box::new(e), t.span.to(close)),
                })
            }
            Tok::Str(_) | Tok::Int(_) | Tok::Float(_) => Ok(Operand::Lit(self.scalar()?)),
            Tok::Ident(s) if matches!(s.as_str(), "true" | "false" | "null") => {
                Ok(Operand::Lit(self.scalar()?))
            }
            Tok::Ident(name)
                if matches!(self.peek2().tok, Tok::LParen)
                    && !KEYWORDS.contains(&name.as_str()) =>
            {
                self.call()
            }
            Tok::Question | Tok::Ident(_) | Tok::QuotedIdent(_) => {
                Ok(Operand::Field(self.field()?))
            }
            _ => Err(self.unexpected(
                "a condition or value (a field, a literal, a function call, `not`, or `(`)",
            )),
        }
    }

    fn call(&mut self) -> Result<Operand, EqlError> {
        let t = self.advance();
        let Tok::Ident(raw) = t.tok else {
            return Err(EqlError::syntax("expected a function name", t.span));
        };
        let (name, case_insensitive) = match raw.strip_suffix('~') {
            Some(n) => (n.to_ascii_lowercase(), true),
            None => (raw.to_ascii_lowercase(), false),
        };
        self.advance(); // `(`
        self.enter()?;
        let mut args = Vec::new();
        if self.peek().tok != Tok::RParen {
            loop {
                args.push(self.value_or_condition()?);
                match self.peek().tok {
                    Tok::Comma => {
                        self.advance();
                    }
                    Tok::RParen => break,
                    _ => return Err(self.unexpected("`,` or `)` in the argument list")),
                }
            }
        }
        self.depth -= 1;
        let close = self.advance().span;
        Ok(Operand::Call {
            name,
            case_insensitive,
            args,
            span: t.span.to(close),
        })
    }

    /// A function argument or list element: any expression, as a value.
    fn value_or_condition(&mut self) -> Result<Operand, EqlError> {
        let start = self.peek().span;
        let e = self.or_expr()?;
        let span = start.to(self.tokens[self.pos.saturating_sub(1)].span);
        Ok(match e {
            Expr::Test(v) => v,
            e => Operand::Cond(Box::new(e), span),
        })
    }

    fn field(&mut self) -> Result<Field, EqlError> {
        let mut optional = false;
        let start = self.peek().span;
        if self.peek().tok == Tok::Question {
            optional = true;
            self.advance();
        }
        let t = self.advance();
        let path = match t.tok {
            Tok::Ident(s) if !KEYWORDS.contains(&s.as_str()) => s,
            Tok::QuotedIdent(s) if !s.is_empty() => s,
            _ => {
                self.pos -= usize::from(t.tok != Tok::Eof);
                return Err(self.unexpected("a field name"));
            }
        };
        let span = start.to(t.span);
        match &self.peek().tok {
            // After a join key, `[` starts the next sequence step.
            Tok::LBracket if self.in_keys => Ok(Field {
                path,
                optional,
                span,
            }),
            Tok::LBracket => Err(EqlError::unsupported(
                "array indexing (`field[n]`) is not supported",
                self.peek().span,
            )),
            _ => Ok(Field {
                path,
                optional,
                span,
            }),
        }
    }

    fn comparison(&mut self, left: Operand) -> Result<Expr, EqlError> {
        let op_tok = self.peek().clone();
        let op = match &op_tok.tok {
            Tok::EqEq => Some(CmpOp::Eq),
            Tok::NotEq => Some(CmpOp::Ne),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            Tok::Assign => {
                return Err(EqlError::syntax(
                    "`=` is not an EQL operator; use `==` to compare",
                    op_tok.span,
                ))
            }
            _ => None,
        };
        if let Some(op) = op {
            self.advance();
            let right = self.value()?;
            if matches!(
                self.peek().tok,
                Tok::EqEq | Tok::NotEq | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge
            ) {
                return Err(EqlError::syntax(
                    "comparisons cannot be chained; use `and`",
                    self.peek().span,
                ));
            }
            return Ok(Expr::Compare { left, op, right });
        }
        let word = match &op_tok.tok {
            Tok::Colon => ":".to_string(),
            Tok::Ident(w) => w.clone(),
            _ => return Ok(self.as_condition(left)),
        };
        match word.as_str() {
            ":" => {
                self.advance();
                let patterns = self.string_or_list(":")?;
                Ok(Expr::Like {
                    left,
                    patterns,
                    case_insensitive: true,
                })
            }
            "in" | "in~" => {
                self.advance();
                let values = self.list(&word)?;
                Ok(Expr::In {
                    left,
                    values,
                    case_insensitive: word == "in~",
                })
            }
            "not" if matches!(&self.peek2().tok, Tok::Ident(w) if w == "in" || w == "in~") => {
                self.advance();
                let w = match self.advance().tok {
                    Tok::Ident(w) => w,
                    _ => String::new(),
                };
                let values = self.list(&w)?;
                Ok(Expr::Not(Box::new(Expr::In {
                    left,
                    values,
                    case_insensitive: w == "in~",
                })))
            }
            "like" | "like~" => {
                self.advance();
                let patterns = self.string_or_list(&word)?;
                Ok(Expr::Like {
                    left,
                    patterns,
                    case_insensitive: word == "like~",
                })
            }
            "regex" | "regex~" => {
                self.advance();
                let patterns = self.string_or_list(&word)?;
                Ok(Expr::Regex {
                    left,
                    patterns,
                    case_insensitive: word == "regex~",
                })
            }
            _ => Ok(self.as_condition(left)),
        }
    }

    /// A value with no operator after it, used as a condition.
    fn as_condition(&self, v: Operand) -> Expr {
        match v {
            Operand::Lit(Lit {
                value: Literal::Bool(b),
                ..
            }) => Expr::Const(b),
            Operand::Cond(e, _) => *e,
            v => Expr::Test(v),
        }
    }

    fn scalar(&mut self) -> Result<Lit, EqlError> {
        let t = self.peek().clone();
        let value = match &t.tok {
            Tok::Str(s) => Literal::Str(s.clone()),
            Tok::Int(i) => Literal::Int(*i),
            Tok::Float(x) => Literal::Float(*x),
            Tok::Ident(s) if s == "true" => Literal::Bool(true),
            Tok::Ident(s) if s == "false" => Literal::Bool(false),
            Tok::Ident(s) if s == "null" => Literal::Null,
            _ => return Err(self.unexpected("a value (string, number, `true`, `false` or `null`)")),
        };
        self.advance();
        Ok(Lit {
            value,
            span: t.span,
        })
    }

    /// A list of values (`in (...)`, `like (...)`), at most
    /// [`MAX_LIST_VALUES`] long.
    fn list(&mut self, op: &str) -> Result<Vec<Operand>, EqlError> {
        if self.peek().tok != Tok::LParen {
            return Err(self.unexpected(&format!("`(` to start the `{op}` list")));
        }
        let start = self.peek().span;
        self.advance();
        let mut out = vec![self.value()?];
        loop {
            match self.peek().tok {
                Tok::Comma => {
                    self.advance();
                    if out.len() >= MAX_LIST_VALUES {
                        return Err(EqlError::syntax(
                            format!(
                                "the `{op}` list has more than {MAX_LIST_VALUES} values, \
                                 the most a list may have"
                            ),
                            start,
                        ));
                    }
                    out.push(self.value()?);
                }
                Tok::RParen => {
                    self.advance();
                    return Ok(out);
                }
                _ => return Err(self.unexpected("`,` or `)` in the list")),
            }
        }
    }

    fn string_or_list(&mut self, op: &str) -> Result<Vec<Lit>, EqlError> {
        let items = if self.peek().tok == Tok::LParen {
            self.list(op)?
        } else {
            vec![self.value()?]
        };
        items
            .into_iter()
            .map(|it| match it {
                Operand::Lit(
                    l @ Lit {
                        value: Literal::Str(_),
                        ..
                    },
                ) => Ok(l),
                it => Err(EqlError::syntax(
                    format!("`{op}` expects string literal patterns"),
                    it.span(),
                )),
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::eql::error::EqlErrorKind;

    fn cond(q: &str) -> Expr {
        strip(parse(q).unwrap().condition)
    }

    fn sf(fl: Field) -> Field {
        Field {
            span: Span::default(),
            ..fl
        }
    }

    fn sl(l: Lit) -> Lit {
        Lit {
            span: Span::default(),
            ..l
        }
    }

    fn so(o: Operand) -> Operand {
        match o {
            Operand::Field(f) => Operand::Field(sf(f)),
            Operand::Lit(l) => Operand::Lit(sl(l)),
            Operand::Call {
                name,
                case_insensitive,
                args,
                ..
            } => Operand::Call {
                name,
                case_insensitive,
                args: args.into_iter().map(so).collect(),
                span: Span::default(),
            },
            Operand::Arith {
                op, left, right, ..
            } => Operand::Arith {
                op,
                left: Box::new(so(*left)),
                right: Box::new(so(*right)),
                span: Span::default(),
            },
            Operand::Neg(x, _) => Operand::Neg(Box::new(so(*x)), Span::default()),
            Operand::Cond(e, _) => Operand::Cond(Box::new(strip(*e)), Span::default()),
        }
    }

    /// Rewrites spans to zero so that trees can be compared structurally.
    fn strip(e: Expr) -> Expr {
        match e {
            Expr::And(v) => Expr::And(v.into_iter().map(strip).collect()),
            Expr::Or(v) => Expr::Or(v.into_iter().map(strip).collect()),
            Expr::Not(x) => Expr::Not(Box::new(strip(*x))),
            Expr::Compare { left, op, right } => Expr::Compare {
                left: so(left),
                op,
                right: so(right),
            },
            Expr::In {
                left,
                values,
                case_insensitive,
            } => Expr::In {
                left: so(left),
                values: values.into_iter().map(so).collect(),
                case_insensitive,
            },
            Expr::Like {
                left,
                patterns,
                case_insensitive,
            } => Expr::Like {
                left: so(left),
                patterns: patterns.into_iter().map(sl).collect(),
                case_insensitive,
            },
            Expr::Regex {
                left,
                patterns,
                case_insensitive,
            } => Expr::Regex {
                left: so(left),
                patterns: patterns.into_iter().map(sl).collect(),
                case_insensitive,
            },
            Expr::Test(o) => Expr::Test(so(o)),
            c => c,
        }
    }

    fn field(p: &str) -> Operand {
        Operand::Field(Field {
            path: p.into(),
            optional: false,
            span: Span::default(),
        })
    }

    fn lit(v: Literal) -> Operand {
        Operand::Lit(Lit {
            value: v,
            span: Span::default(),
        })
    }

    fn cmp(path: &str, s: &str) -> Expr {
        Expr::Compare {
            left: field(path),
            op: CmpOp::Eq,
            right: lit(Literal::Str(s.into())),
        }
    }

    #[test]
    fn precedence_not_and_or() {
        let got = cond("any where not a == \"1\" and b == \"2\" or c == \"3\"");
        let want = Expr::Or(vec![
            Expr::And(vec![Expr::Not(Box::new(cmp("a", "1"))), cmp("b", "2")]),
            cmp("c", "3"),
        ]);
        assert_eq!(got, want);
        let got = cond("any where a == \"1\" and (b == \"2\" or c == \"3\")");
        let want = Expr::And(vec![
            cmp("a", "1"),
            Expr::Or(vec![cmp("b", "2"), cmp("c", "3")]),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn arithmetic_precedence_and_negation() {
        let a = |op, l, r| Operand::Arith {
            op,
            left: Box::new(l),
            right: Box::new(r),
            span: Span::default(),
        };
        // -x + 1 * 2 - 3 % 4 == -5
        let got = cond("any where -x + 1 * 2 - 3 % 4 == -5");
        let want = Expr::Compare {
            left: a(
                ArithOp::Sub,
                a(
                    ArithOp::Add,
                    Operand::Neg(Box::new(field("x")), Span::default()),
                    a(ArithOp::Mul, lit(Literal::Int(1)), lit(Literal::Int(2))),
                ),
                a(ArithOp::Mod, lit(Literal::Int(3)), lit(Literal::Int(4))),
            ),
            op: CmpOp::Eq,
            right: lit(Literal::Int(-5)),
        };
        assert_eq!(got, want);
        // `a-1` is a subtraction, not `a` followed by -1.
        assert!(matches!(
            cond("any where a-1 == 2"),
            Expr::Compare {
                left: Operand::Arith {
                    op: ArithOp::Sub,
                    ..
                },
                ..
            }
        ));
        // Parenthesised values and conditions.
        assert!(matches!(
            cond("any where (a + 1) * 2 == 4"),
            Expr::Compare {
                left: Operand::Arith {
                    op: ArithOp::Mul,
                    ..
                },
                ..
            }
        ));
        assert!(matches!(
            cond("any where (a == 1) == true"),
            Expr::Compare {
                left: Operand::Cond(..),
                ..
            }
        ));
    }

    #[test]
    fn function_calls_and_tilde() {
        let got = cond("any where startsWith~(process.name, \"A\") and CONCAT(a, 1) : \"x*\"");
        let Expr::And(items) = got else {
            panic!("expected and")
        };
        assert_eq!(
            items[0],
            Expr::Test(Operand::Call {
                name: "startswith".into(),
                case_insensitive: true,
                args: vec![field("process.name"), lit(Literal::Str("A".into()))],
                span: Span::default(),
            })
        );
        assert!(
            matches!(&items[1], Expr::Like { left: Operand::Call { name, args, .. }, .. }
            if name == "concat" && args.len() == 2)
        );
        // A literal on the left, a field on the right.
        assert!(matches!(
            cond("any where 5 < a"),
            Expr::Compare {
                left: Operand::Lit(_),
                op: CmpOp::Lt,
                right: Operand::Field(_)
            }
        ));
        assert!(matches!(
            cond("any where a == b"),
            Expr::Compare {
                left: Operand::Field(_),
                right: Operand::Field(_),
                ..
            }
        ));
    }

    #[test]
    fn operators_parse() {
        let q = parse(
            r#"process where ?x.y in ("a", 1, 2.5, true, null) and z in~ ("A") and w not in ("b")
               and p like ("*a*", "b?") and p like~ "C*" and p : "d" and r regex ".*" and r regex~ ("x", "y")
               and n >= 5 and n < -1 and n != null and b == false"#,
        )
        .unwrap();
        assert_eq!(q.category, Category::Named("process".into()));
        let Expr::And(items) = strip(q.condition) else {
            panic!("expected and")
        };
        assert_eq!(items.len(), 12);
        assert!(
            matches!(&items[0], Expr::In { left: Operand::Field(field), values, case_insensitive: false }
            if field.optional && field.path == "x.y" && values.len() == 5)
        );
        assert!(matches!(
            &items[1],
            Expr::In {
                case_insensitive: true,
                ..
            }
        ));
        assert!(matches!(&items[2], Expr::Not(inner) if matches!(**inner, Expr::In { .. })));
        assert!(
            matches!(&items[3], Expr::Like { patterns, case_insensitive: false, .. } if patterns.len() == 2)
        );
        assert!(matches!(
            &items[4],
            Expr::Like {
                case_insensitive: true,
                ..
            }
        ));
        assert!(matches!(
            &items[5],
            Expr::Like {
                case_insensitive: true,
                ..
            }
        ));
        assert!(matches!(
            &items[6],
            Expr::Regex {
                case_insensitive: false,
                ..
            }
        ));
        assert!(
            matches!(&items[7], Expr::Regex { case_insensitive: true, patterns, .. } if patterns.len() == 2)
        );
        assert_eq!(
            items[8],
            Expr::Compare {
                left: field("n"),
                op: CmpOp::Ge,
                right: lit(Literal::Int(5))
            }
        );
        assert_eq!(
            items[9],
            Expr::Compare {
                left: field("n"),
                op: CmpOp::Lt,
                right: lit(Literal::Int(-1))
            }
        );
        assert_eq!(
            items[10],
            Expr::Compare {
                left: field("n"),
                op: CmpOp::Ne,
                right: lit(Literal::Null)
            }
        );
        assert_eq!(
            items[11],
            Expr::Compare {
                left: field("b"),
                op: CmpOp::Eq,
                right: lit(Literal::Bool(false))
            }
        );
    }

    #[test]
    fn comments_and_raw_strings() {
        let q =
            parse("any where /* c */ a like \"\"\"x\\\"y\"\"\" // trailing\n and b == \"\\\\\"")
                .unwrap();
        let Expr::And(items) = q.condition else {
            panic!("expected and")
        };
        assert!(matches!(&items[0], Expr::Like { patterns, .. }
            if patterns[0].value == Literal::Str("x\\\"y".into())));
        assert!(
            matches!(&items[1], Expr::Compare { right: Operand::Lit(value), .. }
            if value.value == Literal::Str("\\".into()))
        );
    }

    #[test]
    fn unsupported_constructs_are_classified() {
        for q in [
            "sequence by x [process where true] [process where true]",
            "sequence by a, b with maxspan=3s [process where true] [process where true]",
            "/* c */ sample by x [any where true]",
            "process where a == \"b\" | head 5",
            "process where a[0] == \"b\"",
        ] {
            let e = parse(q).unwrap_err();
            assert_eq!(e.kind, EqlErrorKind::Unsupported, "{q}: {e}");
        }
        for q in [
            "process",
            "process where",
            "process where a = \"b\"",
            "process where a == ",
            "process where (a == \"b\"",
            "process where a in \"b\"",
            "process where a like 1",
            "process where a like b",
            "process where a == \"b\" c",
            "process where a < b < c",
            "process where f(a, ",
            "where a == \"b\"",
        ] {
            let e = parse(q).unwrap_err();
            assert_eq!(e.kind, EqlErrorKind::Syntax, "{q}: {e}");
        }
    }

    #[test]
    fn error_render_golden() {
        let q = "process where event.type == \"start\" and\n  process.name = \"sh\"";
        let e = parse(q).unwrap_err();
        assert_eq!(
            e.render("<query>", q),
            "error: `=` is not an EQL operator; use `==` to compare\n --> <query>:2:16\n  |\n2 |   process.name = \"sh\"\n  |                ^"
        );
        let q = "process where a in (\"x\", )";
        let e = parse(q).unwrap_err();
        assert_eq!(
            e.render("<query>", q),
            "error: expected a condition or value (a field, a literal, a function call, `not`, or `(`), found `)`\n --> <query>:1:26\n  |\n1 | process where a in (\"x\", )\n  |                          ^"
        );
    }

    #[test]
    fn join_key_counts_and_trailing_pipes_are_checked_for_sequences_and_samples() {
        for (q, what) in [
            (
                "sequence by a [any where true] by b [any where true]",
                "inconsistent number of join keys: 1 here, 2 in the first step",
            ),
            (
                "sequence [any where true] by b [any where true] by b until [any where true]",
                "inconsistent number of join keys: 0 here, 1 in the first step",
            ),
            (
                "sample by a [any where true] by b [any where true]",
                "inconsistent number of join keys: 1 here, 2 in the first filter",
            ),
        ] {
            let e = parse_statement(q).unwrap_err();
            assert_eq!(
                (e.kind, e.message.as_str()),
                (EqlErrorKind::Syntax, what),
                "{q}"
            );
        }
        for q in [
            "sequence [any where true] [any where true] | head 1",
            "sample by a [any where true] [any where true] | tail 1",
        ] {
            let e = parse_statement(q).unwrap_err();
            assert_eq!(e.kind, EqlErrorKind::Unsupported, "{q}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let q = format!(
            "any where {}a == \"b\"{}",
            "(".repeat(10_000),
            ")".repeat(10_000)
        );
        assert!(parse(&q).is_err());
        let q = format!("any where {}a == \"b\"", "not ".repeat(10_000));
        assert!(parse(&q).is_err());
        let q = format!("any where {}a", "-".repeat(10_000));
        assert!(parse(&q).is_err());
        let q = format!(
            "any where {}a{} == 1",
            "f(".repeat(10_000),
            ")".repeat(10_000)
        );
        assert!(parse(&q).is_err());
    }
}
