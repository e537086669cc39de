//! Recursive-descent parser for `<category> where <expr>`.
//!
//! Precedence, loosest first: `or`, `and`, `not`, then comparisons and
//! parenthesised expressions. Valid EQL that the engine does not evaluate
//! (`sequence`, `sample`, `join`, pipes, function calls, field-to-field
//! comparisons, array indexing) is reported as
//! [`EqlErrorKind::Unsupported`](super::error::EqlErrorKind) rather than as a
//! syntax error, so that rule loading can skip such rules with a reason.

use super::ast::{Category, CmpOp, Expr, Field, Lit, Literal, Query};
use super::error::EqlError;
use super::lexer::{first_token, tokenize, Tok, Token};

/// Maximum nesting depth of parentheses / `not`, so that hostile input cannot
/// overflow the stack.
const MAX_DEPTH: usize = 200;

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
    let tokens = tokenize(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    p.query()
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
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

    fn unexpected(&self, expected: &str) -> EqlError {
        let t = self.peek();
        EqlError::syntax(
            format!("expected {expected}, found {}", describe(&t.tok)),
            t.span,
        )
    }

    fn query(&mut self) -> Result<Query, EqlError> {
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
        let condition = self.or_expr()?;
        match &self.peek().tok {
            Tok::Eof => Ok(Query {
                category,
                condition,
            }),
            Tok::Pipe => Err(EqlError::unsupported(
                "pipes (`| head`, `| tail`, ...) are not supported",
                self.peek().span,
            )),
            _ => Err(self.unexpected("`and`, `or` or end of query")),
        }
    }

    fn enter(&mut self) -> Result<(), EqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(EqlError::syntax(
                "expression nested too deeply",
                self.peek().span,
            ));
        }
        Ok(())
    }

    fn or_expr(&mut self) -> Result<Expr, EqlError> {
        let mut items = vec![self.and_expr()?];
        while self.is_kw("or") {
            self.advance();
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
            self.advance();
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
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, EqlError> {
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
                self.advance();
                Ok(e)
            }
            Tok::Ident(s) if s == "true" || s == "false" => {
                self.advance();
                Ok(Expr::Const(s == "true"))
            }
            Tok::Question | Tok::Ident(_) | Tok::QuotedIdent(_) => {
                let field = self.field()?;
                self.comparison(field)
            }
            Tok::Str(_) | Tok::Int(_) | Tok::Float(_) => Err(EqlError::unsupported(
                "a literal on the left of a comparison is not supported; write `field <op> value`",
                t.span,
            )),
            _ => Err(self.unexpected("a condition (a field comparison, `not`, or `(`)")),
        }
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
            Tok::LParen => Err(EqlError::unsupported(
                format!("function calls (`{path}(...)`) are not supported"),
                span.to(self.peek().span),
            )),
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

    fn comparison(&mut self, field: Field) -> Result<Expr, EqlError> {
        let op_tok = self.peek().clone();
        let cmp = |op| Some(op);
        let op = match &op_tok.tok {
            Tok::EqEq => cmp(CmpOp::Eq),
            Tok::NotEq => cmp(CmpOp::Ne),
            Tok::Lt => cmp(CmpOp::Lt),
            Tok::Le => cmp(CmpOp::Le),
            Tok::Gt => cmp(CmpOp::Gt),
            Tok::Ge => cmp(CmpOp::Ge),
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
            let value = self.scalar()?;
            return Ok(Expr::Compare { field, op, value });
        }
        let Tok::Ident(word) = &op_tok.tok else {
            if op_tok.tok == Tok::Colon {
                self.advance();
                let patterns = self.string_or_list(":")?;
                return Ok(Expr::Like {
                    field,
                    patterns,
                    case_insensitive: true,
                });
            }
            return Err(
                self.unexpected("an operator (`==`, `!=`, `<`, `:`, `in`, `like`, `regex`, ...)")
            );
        };
        match word.as_str() {
            "in" | "in~" => {
                self.advance();
                let values = self.list(word)?;
                Ok(Expr::In {
                    field,
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
                    field,
                    values,
                    case_insensitive: w == "in~",
                })))
            }
            "like" | "like~" => {
                self.advance();
                let patterns = self.string_or_list(word)?;
                Ok(Expr::Like {
                    field,
                    patterns,
                    case_insensitive: word == "like~",
                })
            }
            "regex" | "regex~" => {
                self.advance();
                let patterns = self.string_or_list(word)?;
                Ok(Expr::Regex {
                    field,
                    patterns,
                    case_insensitive: word == "regex~",
                })
            }
            _ => {
                Err(self
                    .unexpected("an operator (`==`, `!=`, `<`, `:`, `in`, `like`, `regex`, ...)"))
            }
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
            Tok::Ident(s) if !KEYWORDS.contains(&s.as_str()) => {
                return Err(EqlError::unsupported(
                    format!("comparing a field with another field (`{s}`) is not supported"),
                    t.span,
                ))
            }
            _ => return Err(self.unexpected("a value (string, number, `true`, `false` or `null`)")),
        };
        self.advance();
        Ok(Lit {
            value,
            span: t.span,
        })
    }

    fn list(&mut self, op: &str) -> Result<Vec<Lit>, EqlError> {
        if self.peek().tok != Tok::LParen {
            return Err(self.unexpected(&format!("`(` to start the `{op}` list")));
        }
        self.advance();
        let mut out = vec![self.scalar()?];
        loop {
            match self.peek().tok {
                Tok::Comma => {
                    self.advance();
                    out.push(self.scalar()?);
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
            vec![self.scalar()?]
        };
        for it in &items {
            if !matches!(it.value, Literal::Str(_)) {
                return Err(EqlError::syntax(
                    format!("`{op}` expects string patterns"),
                    it.span,
                ));
            }
        }
        Ok(items)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::eql::error::{EqlErrorKind, Span};

    fn cond(q: &str) -> Expr {
        parse(q).unwrap().condition
    }

    fn cmp(path: &str, s: &str) -> Expr {
        match cond(&format!("any where {path} == \"{s}\"")) {
            Expr::Compare { field, op, value } => Expr::Compare { field, op, value },
            e => e,
        }
    }

    /// Rewrites spans to zero so that trees can be compared structurally.
    fn strip(e: Expr) -> Expr {
        fn f(fl: Field) -> Field {
            Field {
                span: Span::default(),
                ..fl
            }
        }
        fn l(v: Vec<Lit>) -> Vec<Lit> {
            v.into_iter()
                .map(|x| Lit {
                    span: Span::default(),
                    ..x
                })
                .collect()
        }
        match e {
            Expr::And(v) => Expr::And(v.into_iter().map(strip).collect()),
            Expr::Or(v) => Expr::Or(v.into_iter().map(strip).collect()),
            Expr::Not(x) => Expr::Not(Box::new(strip(*x))),
            Expr::Compare { field, op, value } => Expr::Compare {
                field: f(field),
                op,
                value: Lit {
                    span: Span::default(),
                    ..value
                },
            },
            Expr::In {
                field,
                values,
                case_insensitive,
            } => Expr::In {
                field: f(field),
                values: l(values),
                case_insensitive,
            },
            Expr::Like {
                field,
                patterns,
                case_insensitive,
            } => Expr::Like {
                field: f(field),
                patterns: l(patterns),
                case_insensitive,
            },
            Expr::Regex {
                field,
                patterns,
                case_insensitive,
            } => Expr::Regex {
                field: f(field),
                patterns: l(patterns),
                case_insensitive,
            },
            c => c,
        }
    }

    #[test]
    fn precedence_not_and_or() {
        let got = strip(cond(
            "any where not a == \"1\" and b == \"2\" or c == \"3\"",
        ));
        let want = Expr::Or(vec![
            Expr::And(vec![
                Expr::Not(Box::new(strip(cmp("a", "1")))),
                strip(cmp("b", "2")),
            ]),
            strip(cmp("c", "3")),
        ]);
        assert_eq!(got, want);
        let got = strip(cond("any where a == \"1\" and (b == \"2\" or c == \"3\")"));
        let want = Expr::And(vec![
            strip(cmp("a", "1")),
            Expr::Or(vec![strip(cmp("b", "2")), strip(cmp("c", "3"))]),
        ]);
        assert_eq!(got, want);
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
            matches!(&items[0], Expr::In { field, values, case_insensitive: false }
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
        assert!(matches!(
            &items[8],
            Expr::Compare {
                op: CmpOp::Ge,
                value: Lit {
                    value: Literal::Int(5),
                    ..
                },
                ..
            }
        ));
        assert!(matches!(
            &items[9],
            Expr::Compare {
                op: CmpOp::Lt,
                value: Lit {
                    value: Literal::Int(-1),
                    ..
                },
                ..
            }
        ));
        assert!(matches!(
            &items[10],
            Expr::Compare {
                op: CmpOp::Ne,
                value: Lit {
                    value: Literal::Null,
                    ..
                },
                ..
            }
        ));
        assert!(matches!(
            &items[11],
            Expr::Compare {
                op: CmpOp::Eq,
                value: Lit {
                    value: Literal::Bool(false),
                    ..
                },
                ..
            }
        ));
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
        assert!(matches!(&items[1], Expr::Compare { value, .. }
            if value.value == Literal::Str("\\".into())));
    }

    #[test]
    fn unsupported_constructs_are_classified() {
        for q in [
            "sequence by x [process where true] [process where true]",
            "sequence by a, b with maxspan=3s [process where true] [process where true]",
            "/* c */ sample by x [any where true]",
            "process where a == \"b\" | head 5",
            "process where startsWith(a, \"b\")",
            "process where a == b",
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
            "process where a == \"b\" c",
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
            "error: expected a value (string, number, `true`, `false` or `null`), found `)`\n --> <query>:1:26\n  |\n1 | process where a in (\"x\", )\n  |                          ^"
        );
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
    }
}
