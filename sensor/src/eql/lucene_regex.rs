//! Lucene regular expressions (`regex`, `regex~`) translated to
//! `regex-automata`, exactly or not at all.
//!
//! Elasticsearch translates EQL `regex` into a Lucene `RegexpQuery` with the
//! default syntax flags `ALL` (Elasticsearch 9 on Lucene 10 also keeps the
//! deprecated `~` complement enabled). Lucene's pattern always matches the
//! WHOLE value (no `^`/`$`; we emit `\A(?:..)\z`), and `.` matches any code
//! point including newline.
//!
//! The grammar below is Lucene's `RegExp` parser, reproduced production by
//! production, including its quirks: an operator character where an operand
//! is expected is a literal (`|a` is the string `|a`, `*a` starts with a
//! literal `*`), `[]]` is a class holding `]`, `()` is the empty string,
//! `"..."` quotes a literal string, and `\` followed by a letter other than
//! `d D s S w W` is an error ("invalid character class") while `\` followed
//! by any other character is that character. `\d` = `[0-9]`, `\s` =
//! `[ \t\n\r]`, `\w` = `[a-zA-Z0-9_]`, and the capitals their single-character
//! complements.
//!
//! Decisions on the optional operators enabled by `ALL`:
//! - `@` (any string) and `#` (the empty language) translate exactly.
//! - `<n-m>` (numeric interval) translates exactly by enumeration: with equal
//!   widths of `n` and `m` the number is zero-padded to that width, otherwise
//!   any number of leading zeros is accepted (Lucene's
//!   `makeDecimalInterval`). Intervals of more than 10 000 values are
//!   rejected rather than approximated. `<name>` (named automaton) is an
//!   error in Elasticsearch (no automaton provider) and here.
//! - `&` (intersection) and `~` (complement) have no equivalent in
//!   `regex-automata`; a rule using them is REJECTED at load time with a
//!   clear error instead of being evaluated approximately.
//!
//! Case-insensitive matching (`regex~`, Lucene `ASCII_CASE_INSENSITIVE`)
//! folds single characters and quoted strings (including single characters
//! inside `[...]`) for ASCII letters only; ranges such as `[a-z]` are NOT
//! folded, as in Lucene, where only `Char` and `String` nodes consult the
//! flag.
//!
//! Known limit: Lucene also rejects patterns whose determinized automaton
//! exceeds `max_determinized_states` (10 000); that depends on Lucene's own
//! automaton construction and is not reproduced. Such patterns are very
//! unlikely in detection rules.

use std::fmt::Write as _;

/// Why a Lucene regular expression was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {position} of the regular expression)")]
pub struct LuceneRegexError {
    /// What is wrong.
    pub message: String,
    /// 0-based character index in the pattern.
    pub position: usize,
}

/// Largest `<n-m>` interval that is expanded.
const MAX_INTERVAL_VALUES: u64 = 10_000;
/// Nesting limit (groups), against stack exhaustion.
const MAX_DEPTH: usize = 250;

#[derive(Debug, Clone)]
enum Node {
    Union(Box<Node>, Box<Node>),
    Concat(Box<Node>, Box<Node>),
    Repeat(Box<Node>, u32, Option<u32>),
    Char(char),
    Str(String),
    /// A bracket expression: items, negated.
    Class(Vec<ClassItem>, bool),
    Predef(char),
    AnyChar,
    AnyString,
    EmptyLang,
    EmptyString,
    Interval(u64, u64, usize),
}

#[derive(Debug, Clone)]
enum ClassItem {
    Char(char),
    Range(char, char),
    Predef(char),
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, LuceneRegexError> {
        Err(LuceneRegexError {
            message: message.into(),
            position: self.pos,
        })
    }

    fn more(&self) -> bool {
        self.pos < self.chars.len()
    }

    fn peek(&self, set: &str) -> bool {
        self.chars.get(self.pos).is_some_and(|c| set.contains(*c))
    }

    fn matches(&mut self, c: char) -> bool {
        if self.chars.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn next(&mut self) -> Result<char, LuceneRegexError> {
        match self.chars.get(self.pos) {
            Some(&c) => {
                self.pos += 1;
                Ok(c)
            }
            None => self.err("unexpected end of regular expression"),
        }
    }

    fn union(&mut self) -> Result<Node, LuceneRegexError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("regular expression nested too deeply");
        }
        let e = self.inter()?;
        let out = if self.matches('|') {
            Node::Union(Box::new(e), Box::new(self.union()?))
        } else {
            e
        };
        self.depth -= 1;
        Ok(out)
    }

    fn inter(&mut self) -> Result<Node, LuceneRegexError> {
        let e = self.concat()?;
        if self.peek("&") {
            return self.err(
                "the Lucene intersection operator `&` cannot be translated exactly; escape it (`\\&`) to match a literal `&`",
            );
        }
        Ok(e)
    }

    fn concat(&mut self) -> Result<Node, LuceneRegexError> {
        let mut items = vec![self.repeat()?];
        while self.more() && !self.peek(")|&") {
            items.push(self.repeat()?);
        }
        let mut it = items.into_iter().rev();
        let mut acc = it.next().unwrap_or(Node::EmptyString);
        for n in it {
            acc = Node::Concat(Box::new(n), Box::new(acc));
        }
        Ok(acc)
    }

    fn number(&mut self) -> Result<Option<u32>, LuceneRegexError> {
        let start = self.pos;
        while self.peek("0123456789") {
            self.pos += 1;
        }
        if start == self.pos {
            return Ok(None);
        }
        let s: String = self.chars[start..self.pos].iter().collect();
        match s.parse::<u32>() {
            Ok(n) => Ok(Some(n)),
            Err(_) => self.err("repetition count too large"),
        }
    }

    fn repeat(&mut self) -> Result<Node, LuceneRegexError> {
        let mut e = self.compl()?;
        while self.peek("?*+{") {
            if self.matches('?') {
                e = Node::Repeat(Box::new(e), 0, Some(1));
            } else if self.matches('*') {
                e = Node::Repeat(Box::new(e), 0, None);
            } else if self.matches('+') {
                e = Node::Repeat(Box::new(e), 1, None);
            } else if self.matches('{') {
                let Some(n) = self.number()? else {
                    return self.err("integer expected in `{}` repetition");
                };
                let m = if self.matches(',') {
                    self.number()?
                } else {
                    Some(n)
                };
                if !self.matches('}') {
                    return self.err("expected `}`");
                }
                if let Some(m) = m {
                    if n > m {
                        return self.err(format!("repetition bounds out of order: {{{n},{m}}}"));
                    }
                }
                e = Node::Repeat(Box::new(e), n, m);
            }
        }
        Ok(e)
    }

    fn compl(&mut self) -> Result<Node, LuceneRegexError> {
        if self.peek("~") {
            return self.err(
                "the Lucene complement operator `~` cannot be translated exactly; escape it (`\\~`) to match a literal `~`",
            );
        }
        self.char_class_exp()
    }

    fn char_class_exp(&mut self) -> Result<Node, LuceneRegexError> {
        if self.matches('[') {
            let negate = self.matches('^');
            let mut items = vec![self.char_class()?];
            while self.more() && !self.peek("]") {
                items.push(self.char_class()?);
            }
            if !self.matches(']') {
                return self.err("expected `]`");
            }
            return Ok(Node::Class(items, negate));
        }
        self.simple()
    }

    /// `\d \D \s \S \w \W`, or an error for `\` + another letter, or `None`.
    fn predefined(&mut self) -> Result<Option<char>, LuceneRegexError> {
        if self.chars.get(self.pos) == Some(&'\\') {
            if let Some(&c) = self.chars.get(self.pos + 1) {
                if "dDsSwW".contains(c) {
                    self.pos += 2;
                    return Ok(Some(c));
                }
                if c.is_ascii_alphabetic() {
                    self.pos += 1;
                    return self.err(format!("invalid character class `\\{c}`"));
                }
            }
        }
        Ok(None)
    }

    fn char_class(&mut self) -> Result<ClassItem, LuceneRegexError> {
        if let Some(p) = self.predefined()? {
            return Ok(ClassItem::Predef(p));
        }
        let c = self.char_exp()?;
        if self.matches('-') {
            let d = self.char_exp()?;
            if c > d {
                return self.err(format!("invalid range: from ({c}) cannot be > to ({d})"));
            }
            return Ok(ClassItem::Range(c, d));
        }
        Ok(ClassItem::Char(c))
    }

    fn char_exp(&mut self) -> Result<char, LuceneRegexError> {
        self.matches('\\');
        self.next()
    }

    fn simple(&mut self) -> Result<Node, LuceneRegexError> {
        if self.matches('.') {
            return Ok(Node::AnyChar);
        }
        if self.matches('#') {
            return Ok(Node::EmptyLang);
        }
        if self.matches('@') {
            return Ok(Node::AnyString);
        }
        if self.matches('"') {
            let start = self.pos;
            while self.more() && !self.peek("\"") {
                self.pos += 1;
            }
            if !self.matches('"') {
                return self.err("expected `\"` to close the quoted string");
            }
            let s: String = self.chars[start..self.pos - 1].iter().collect();
            return Ok(Node::Str(s));
        }
        if self.matches('(') {
            if self.matches(')') {
                return Ok(Node::EmptyString);
            }
            let e = self.union()?;
            if !self.matches(')') {
                return self.err("expected `)`");
            }
            return Ok(e);
        }
        if self.matches('<') {
            let start = self.pos;
            while self.more() && !self.peek(">") {
                self.pos += 1;
            }
            if !self.matches('>') {
                return self.err("expected `>`");
            }
            let s: String = self.chars[start..self.pos - 1].iter().collect();
            return self.interval(&s);
        }
        if let Some(p) = self.predefined()? {
            return Ok(Node::Predef(p));
        }
        Ok(Node::Char(self.char_exp()?))
    }

    fn interval(&self, s: &str) -> Result<Node, LuceneRegexError> {
        let Some((a, b)) = s.split_once('-') else {
            return self.err(format!(
                "`<{s}>` names an automaton, which Elasticsearch does not provide"
            ));
        };
        let digits_only = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
        if !digits_only(a) || !digits_only(b) {
            return self.err(format!("invalid numeric interval `<{s}>`"));
        }
        let (Ok(mut lo), Ok(mut hi)) = (a.parse::<u64>(), b.parse::<u64>()) else {
            return self.err(format!("numeric interval `<{s}>` out of range"));
        };
        let digits = if a.len() == b.len() { a.len() } else { 0 };
        if lo > hi {
            std::mem::swap(&mut lo, &mut hi);
        }
        if hi - lo >= MAX_INTERVAL_VALUES {
            return self.err(format!(
                "numeric interval `<{s}>` has more than {MAX_INTERVAL_VALUES} values and is not translated"
            ));
        }
        Ok(Node::Interval(lo, hi, digits))
    }
}

fn push_char(out: &mut String, c: char) {
    let _ = write!(out, "\\x{{{:X}}}", c as u32);
}

fn fold_alt(c: char) -> Option<char> {
    if c.is_ascii_lowercase() {
        Some(c.to_ascii_uppercase())
    } else if c.is_ascii_uppercase() {
        Some(c.to_ascii_lowercase())
    } else {
        None
    }
}

fn emit_char(out: &mut String, c: char, ci: bool) {
    match fold_alt(c).filter(|_| ci) {
        Some(alt) => {
            out.push('[');
            push_char(out, c);
            push_char(out, alt);
            out.push(']');
        }
        None => push_char(out, c),
    }
}

fn predef_body(c: char) -> &'static str {
    match c.to_ascii_lowercase() {
        'd' => "0-9",
        's' => r" \t\n\r",
        _ => "a-zA-Z0-9_",
    }
}

fn emit_predef(out: &mut String, c: char) {
    let neg = if c.is_ascii_uppercase() { "^" } else { "" };
    let _ = write!(out, "[{neg}{}]", predef_body(c));
}

fn emit(node: &Node, out: &mut String, ci: bool) {
    match node {
        Node::Union(a, b) => {
            out.push_str("(?:");
            emit(a, out, ci);
            out.push('|');
            emit(b, out, ci);
            out.push(')');
        }
        Node::Concat(a, b) => {
            emit(a, out, ci);
            emit(b, out, ci);
        }
        Node::Repeat(e, min, max) => {
            out.push_str("(?:");
            emit(e, out, ci);
            out.push(')');
            let _ = match max {
                Some(max) => write!(out, "{{{min},{max}}}"),
                None => write!(out, "{{{min},}}"),
            };
        }
        Node::Char(c) => emit_char(out, *c, ci),
        Node::Str(s) => {
            out.push_str("(?:");
            for c in s.chars() {
                emit_char(out, c, ci);
            }
            out.push(')');
        }
        Node::Class(items, negated) => {
            out.push('[');
            if *negated {
                out.push('^');
            }
            for it in items {
                match it {
                    ClassItem::Char(c) => {
                        push_char(out, *c);
                        if ci {
                            if let Some(alt) = fold_alt(*c) {
                                push_char(out, alt);
                            }
                        }
                    }
                    ClassItem::Range(a, b) => {
                        push_char(out, *a);
                        out.push('-');
                        push_char(out, *b);
                    }
                    ClassItem::Predef(p) => emit_predef(out, *p),
                }
            }
            out.push(']');
        }
        Node::Predef(p) => emit_predef(out, *p),
        Node::AnyChar => out.push_str(r"[\x{0}-\x{10FFFF}]"),
        Node::AnyString => out.push_str(r"[\x{0}-\x{10FFFF}]*"),
        Node::EmptyLang => out.push_str(r"[^\x{0}-\x{10FFFF}]"),
        Node::EmptyString => out.push_str("(?:)"),
        Node::Interval(lo, hi, digits) => {
            out.push_str("(?:");
            if *digits == 0 {
                out.push_str("0*(?:");
            }
            for (i, n) in (*lo..=*hi).enumerate() {
                if i > 0 {
                    out.push('|');
                }
                let _ = write!(out, "{n:0width$}", width = *digits);
            }
            if *digits == 0 {
                out.push(')');
            }
            out.push(')');
        }
    }
}

/// Translates a Lucene regular expression to an equivalent `regex-syntax`
/// pattern anchored at both ends, or explains why it cannot.
pub fn translate(pattern: &str, case_insensitive: bool) -> Result<String, LuceneRegexError> {
    let mut p = Parser {
        chars: pattern.chars().collect(),
        pos: 0,
        depth: 0,
    };
    let node = if pattern.is_empty() {
        Node::EmptyString
    } else {
        let n = p.union()?;
        if p.more() {
            return p.err("unexpected character; end of regular expression expected");
        }
        n
    };
    let mut out = String::from(r"\A(?:");
    emit(&node, &mut out, case_insensitive);
    out.push_str(r")\z");
    Ok(out)
}

/// A compiled OR of Lucene regular expressions.
#[derive(Debug, Clone)]
pub struct LuceneRegexSet {
    re: regex_automata::meta::Regex,
}

/// Error compiling a translated pattern (size limits).
#[derive(Debug, thiserror::Error)]
#[error("cannot compile the regular expression: {0}")]
pub struct RegexBuildError(String);

impl LuceneRegexSet {
    /// Compiles already-translated patterns (see [`translate`]).
    pub fn new(translated: &[String]) -> Result<LuceneRegexSet, RegexBuildError> {
        let re = regex_automata::meta::Builder::new()
            .configure(regex_automata::meta::Config::new().nfa_size_limit(Some(64 << 20)))
            .build_many(translated)
            .map_err(|e| RegexBuildError(e.to_string()))?;
        Ok(LuceneRegexSet { re })
    }

    /// Whether any pattern matches the whole of `s`.
    #[inline]
    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        LuceneRegexSet::new(&[translate(p, false).unwrap()])
            .unwrap()
            .is_match(s)
    }

    fn mi(p: &str, s: &str) -> bool {
        LuceneRegexSet::new(&[translate(p, true).unwrap()])
            .unwrap()
            .is_match(s)
    }

    #[test]
    fn anchored_whole_value() {
        assert!(m("ab.*", "abcde"));
        assert!(!m("abcd", "abcde"));
        assert!(!m("bcd", "abcde"));
        assert!(m("a.c", "a\nc"));
        assert!(m(".*x.*", "1\n2x\n3"));
        assert!(!m("a", "a\n"));
    }

    #[test]
    fn lucene_syntax() {
        assert!(m("a{2,3}", "aaa"));
        assert!(!m("a{2,3}", "aaaa"));
        assert!(m("a{2}", "aa"));
        assert!(m("a{2,}", "aaaaa"));
        assert!(m("[a-c]+", "abcab"));
        assert!(m("[^a-c]", "d"));
        assert!(!m("[^a-c]", "b"));
        assert!(m("(ab|cd)e", "cde"));
        assert!(m("\"a.b\"", "a.b"));
        assert!(!m("\"a.b\"", "axb"));
        assert!(m("a\\.b", "a.b"));
        assert!(!m("a\\.b", "axb"));
        assert!(m("\\d+\\s\\w", "12 x"));
        assert!(m("\\D", "a"));
        assert!(!m("\\D", "1"));
        assert!(m("[\\d]", "5"));
        assert!(m("@", "anything\nat all"));
        assert!(!m("#", ""));
        assert!(!m("a#", "a"));
        assert!(m("()", ""));
        assert!(m("foo<1-100>", "foo42"));
        assert!(m("foo<1-100>", "foo007"));
        assert!(!m("foo<1-100>", "foo101"));
        assert!(m("<01-10>", "05"));
        assert!(!m("<01-10>", "5"));
        assert!(m("|a", "|a"));
        assert!(m("[]]", "]"));
        assert!(m("a\\&b", "a&b"));
        assert!(m("^a$", "^a$"));
        // The seed rule's IP pattern also matches version strings.
        assert!(m(
            ".*[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}.*",
            "nginx/1.22.3.1"
        ));
    }

    #[test]
    fn rejected_patterns() {
        for p in [
            "a&b",
            "~a",
            "a~b",
            "\\x41",
            "\\p{L}",
            "(a",
            "a)",
            "[a",
            "[z-a]",
            "a{3,2}",
            "a{",
            "a{x}",
            "\"abc",
            "<foo>",
            "<1-99999>",
            "\\",
        ] {
            assert!(translate(p, false).is_err(), "{p} should be rejected");
        }
    }

    #[test]
    fn case_insensitive_folds_ascii_chars_not_ranges() {
        assert!(mi("abc", "ABC"));
        assert!(mi("\"abc\"", "aBc"));
        assert!(mi("[xy]", "Y"));
        assert!(!mi("[a-z]", "Q"));
        assert!(!mi("é", "É"));
        assert!(!m("abc", "ABC"));
        assert!(!mi("[^c]", "C"));
    }
}
