//! Tokenizer for the Elasticsearch EQL dialect used by detection rules.
//!
//! It knows strings (`"..."` with escapes, `"""..."""` raw), numbers,
//! identifiers / dotted field paths (optionally in backticks), operators and
//! comments (`/* */`, `//`). Spans are byte offsets into the query so that
//! errors can point at the exact text.

use super::error::{EqlError, Span};

/// A token kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A bare identifier or dotted path: `process.name`, `where`, `and`.
    /// `in~`, `like~` and `regex~` are lexed as single identifiers.
    Ident(String),
    /// A backtick-quoted field path.
    QuotedIdent(String),
    /// A string literal with escapes already applied.
    Str(String),
    /// An integer literal.
    Int(i64),
    /// A floating-point literal.
    Float(f64),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `==`
    EqEq,
    /// `=` (not valid EQL; kept to give a helpful error)
    Assign,
    /// `!=`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `:`
    Colon,
    /// `?`
    Question,
    /// `|`
    Pipe,
    /// Any other single operator character (`+`, `-`, `*`, `/`, `%`, `~`, `!`, `.`, ...),
    /// lexed so that the parser can say what it did not expect.
    Other(char),
    /// End of input.
    Eof,
}

/// A token with its byte span in the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// What it is.
    pub tok: Tok,
    /// Where it is.
    pub span: Span,
}

/// Splits `src` into tokens (the last one is [`Tok::Eof`]).
pub fn tokenize(src: &str) -> Result<Vec<Token>, EqlError> {
    let mut lx = Lexer { src, pos: 0 };
    let mut out = Vec::new();
    loop {
        let t = lx.next_token()?;
        let eof = t.tok == Tok::Eof;
        out.push(t);
        if eof {
            return Ok(out);
        }
    }
}

/// The first token only. Used to recognise `sequence` and friends before
/// lexing the rest, whose syntax (`maxspan=3s`) is not single-event EQL.
pub fn first_token(src: &str) -> Result<Token, EqlError> {
    Lexer { src, pos: 0 }.next_token()
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '@'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '@'
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.src[self.pos..].chars().nth(n)
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_trivia(&mut self) -> Result<(), EqlError> {
        loop {
            let rest = self.rest();
            if let Some(body) = rest.strip_prefix("/*") {
                match body.find("*/") {
                    Some(i) => self.pos += 2 + i + 2,
                    None => {
                        return Err(EqlError::syntax(
                            "unterminated block comment (missing `*/`)",
                            Span::new(self.pos, self.pos + 2),
                        ))
                    }
                }
            } else if rest.starts_with("//") {
                self.pos += rest.find('\n').unwrap_or(rest.len());
            } else if let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
                self.pos += c.len_utf8();
            } else {
                return Ok(());
            }
        }
    }

    fn next_token(&mut self) -> Result<Token, EqlError> {
        self.skip_trivia()?;
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Ok(Token {
                tok: Tok::Eof,
                span: Span::new(start, start),
            });
        };
        let tok = match c {
            '"' => {
                if self.rest().starts_with("\"\"\"") {
                    self.raw_string()?
                } else {
                    self.string()?
                }
            }
            '\'' => return Err(EqlError::syntax(
                "single-quoted strings are not supported by Elasticsearch EQL; use double quotes",
                Span::new(start, start + 1),
            )),
            '`' => {
                self.bump();
                match self.rest().find('`') {
                    Some(i) => {
                        let name = self.rest()[..i].to_string();
                        self.pos += i + 1;
                        Tok::QuotedIdent(name)
                    }
                    None => {
                        return Err(EqlError::syntax(
                            "unterminated backtick-quoted field name",
                            Span::new(start, start + 1),
                        ))
                    }
                }
            }
            // A leading `-` is an operator (`a - 1`, `-5`): the parser folds
            // a negated literal back into a negative literal.
            c if c.is_ascii_digit() => self.number()?,
            c if is_ident_start(c) => self.ident(),
            _ => {
                self.bump();
                let next = self.peek();
                let two = |l: &mut Lexer<'_>, t: Tok| {
                    l.bump();
                    t
                };
                match (c, next) {
                    ('=', Some('=')) => two(self, Tok::EqEq),
                    ('=', _) => Tok::Assign,
                    ('!', Some('=')) => two(self, Tok::NotEq),
                    ('<', Some('=')) => two(self, Tok::Le),
                    ('>', Some('=')) => two(self, Tok::Ge),
                    ('<', _) => Tok::Lt,
                    ('>', _) => Tok::Gt,
                    ('(', _) => Tok::LParen,
                    (')', _) => Tok::RParen,
                    ('[', _) => Tok::LBracket,
                    (']', _) => Tok::RBracket,
                    (',', _) => Tok::Comma,
                    (':', _) => Tok::Colon,
                    ('?', _) => Tok::Question,
                    ('|', _) => Tok::Pipe,
                    (c, _) => Tok::Other(c),
                }
            }
        };
        Ok(Token {
            tok,
            span: Span::new(start, self.pos),
        })
    }

    fn ident(&mut self) -> Tok {
        let start = self.pos;
        loop {
            while self.peek().is_some_and(is_ident_char) {
                self.bump();
            }
            // A dot continues a field path only when followed by a name part.
            if self.peek() == Some('.') && self.peek_at(1).is_some_and(is_ident_char) {
                self.bump();
                continue;
            }
            break;
        }
        let mut name = self.src[start..self.pos].to_string();
        // `in~`, `like~`, `regex~`, and the case-insensitive function forms
        // (`startsWith~(`): the `~` belongs to the name when it follows it
        // directly.
        if self.peek() == Some('~')
            && (matches!(name.as_str(), "in" | "like" | "regex")
                || (!name.contains('.') && self.peek_at(1) == Some('(')))
        {
            self.bump();
            name.push('~');
        }
        Tok::Ident(name)
    }

    fn number(&mut self) -> Result<Tok, EqlError> {
        let start = self.pos;
        let mut is_float = false;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            is_float = true;
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let save = self.pos;
            self.bump();
            if matches!(self.peek(), Some('+' | '-')) {
                self.bump();
            }
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                is_float = true;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
            } else {
                self.pos = save;
            }
        }
        // `maxspan=3s`: a time unit directly after an integer is its own
        // token (Elasticsearch's lexer splits `3s` into `3` and `s`).
        if !is_float && self.peek().is_some_and(is_ident_start) {
            let tail = &self.rest()[..self
                .rest()
                .find(|c: char| !is_ident_char(c))
                .unwrap_or(self.rest().len())];
            if matches!(tail, "ms" | "s" | "m" | "h" | "d") {
                let text = &self.src[start..self.pos];
                return text.parse::<i64>().map(Tok::Int).map_err(|_| {
                    EqlError::syntax("invalid number literal", Span::new(start, self.pos))
                });
            }
        }
        if self.peek().is_some_and(is_ident_start) {
            return Err(EqlError::syntax(
                "invalid number literal",
                Span::new(start, self.pos + 1),
            ));
        }
        let text = &self.src[start..self.pos];
        let span = Span::new(start, self.pos);
        if is_float {
            text.parse::<f64>()
                .map(Tok::Float)
                .map_err(|_| EqlError::syntax("invalid number literal", span))
        } else {
            match text.parse::<i64>() {
                Ok(i) => Ok(Tok::Int(i)),
                // Beyond a long the literal is read as a double.
                Err(_) => text
                    .parse::<f64>()
                    .map(Tok::Float)
                    .map_err(|_| EqlError::syntax("invalid number literal", span)),
            }
        }
    }

    /// `"""..."""`: no escapes. Like Elasticsearch's grammar, up to two extra
    /// quotes directly before the closing delimiter belong to the content
    /// (`""""a""""` is the string `"a"`... minus the delimiters).
    fn raw_string(&mut self) -> Result<Tok, EqlError> {
        let start = self.pos;
        self.pos += 3;
        match self.rest().find("\"\"\"") {
            Some(i) => {
                let mut end = self.pos + i;
                // Extra quotes after the first `"""` close with the last three.
                let mut extra = 0;
                while extra < 2 && self.src[end + 3..].starts_with('"') {
                    end += 1;
                    extra += 1;
                }
                let s = self.src[self.pos..end].to_string();
                self.pos = end + 3;
                Ok(Tok::Str(s))
            }
            None => Err(EqlError::syntax(
                "unterminated raw string (missing closing `\"\"\"`)",
                Span::new(start, start + 3),
            )),
        }
    }

    fn string(&mut self) -> Result<Tok, EqlError> {
        let start = self.pos;
        self.bump();
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None | Some('\n') | Some('\r') => {
                    return Err(EqlError::syntax(
                        "unterminated string literal",
                        Span::new(start, start + 1),
                    ))
                }
                Some('"') => return Ok(Tok::Str(out)),
                Some('\\') => {
                    let esc = self.bump();
                    match esc {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some('r') => out.push('\r'),
                        Some('b') => out.push('\u{8}'),
                        Some('f') => out.push('\u{c}'),
                        Some('"') => out.push('"'),
                        Some('\'') => out.push('\''),
                        Some('\\') => out.push('\\'),
                        Some('u') if self.peek() == Some('{') => {
                            self.bump();
                            let hex_start = self.pos;
                            while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                                self.bump();
                            }
                            let hex = &self.src[hex_start..self.pos];
                            let ok = self.peek() == Some('}') && (2..=8).contains(&hex.len());
                            let ch = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                            match (ok, ch) {
                                (true, Some(ch)) => {
                                    self.bump();
                                    out.push(ch);
                                }
                                _ => {
                                    return Err(EqlError::syntax(
                                        "invalid unicode escape; expected `\\u{XX}` with 2 to 8 hex digits naming a valid code point",
                                        Span::new(at, self.pos.max(at + 2)),
                                    ))
                                }
                            }
                        }
                        _ => {
                            let end = self.pos;
                            return Err(EqlError::syntax(
                                "invalid escape sequence; valid escapes are \\\\ \\\" \\' \\n \\t \\r \\b \\f \\u{XX}",
                                Span::new(at, end.max(at + 1)),
                            ));
                        }
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn operators_and_paths() {
        assert_eq!(
            toks("a.b_c == 1 != <= >= < > : ( ) , ?x in~ like~ regex~ @timestamp"),
            vec![
                Tok::Ident("a.b_c".into()),
                Tok::EqEq,
                Tok::Int(1),
                Tok::NotEq,
                Tok::Le,
                Tok::Ge,
                Tok::Lt,
                Tok::Gt,
                Tok::Colon,
                Tok::LParen,
                Tok::RParen,
                Tok::Comma,
                Tok::Question,
                Tok::Ident("x".into()),
                Tok::Ident("in~".into()),
                Tok::Ident("like~".into()),
                Tok::Ident("regex~".into()),
                Tok::Ident("@timestamp".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn strings_escapes_and_raw() {
        assert_eq!(
            toks(r#""a\"b\\c\n\t\u{41}" """x\y"z""" """q"""" "#),
            vec![
                Tok::Str("a\"b\\c\n\tA".into()),
                Tok::Str("x\\y\"z".into()),
                Tok::Str("q\"".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn comments_are_whitespace() {
        assert_eq!(
            toks("a /* x \n y */ // z\n b"),
            vec![Tok::Ident("a".into()), Tok::Ident("b".into()), Tok::Eof]
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(
            toks("1 -2 3.5 1e3 -0.5 a-1 startsWith~( f.x~("),
            vec![
                Tok::Int(1),
                Tok::Other('-'),
                Tok::Int(2),
                Tok::Float(3.5),
                Tok::Float(1000.0),
                Tok::Other('-'),
                Tok::Float(0.5),
                Tok::Ident("a".into()),
                Tok::Other('-'),
                Tok::Int(1),
                Tok::Ident("startsWith~".into()),
                Tok::LParen,
                Tok::Ident("f.x".into()),
                Tok::Other('~'),
                Tok::LParen,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn lexical_errors_have_spans() {
        let e = tokenize("a == \"x\\q\"").unwrap_err();
        assert_eq!(e.span, Span::new(7, 9));
        let e = tokenize("a == \"abc").unwrap_err();
        assert_eq!(e.span, Span::new(5, 6));
        let e = tokenize("/* x").unwrap_err();
        assert_eq!(e.span, Span::new(0, 2));
        assert!(tokenize("'x'").is_err());
    }
}
