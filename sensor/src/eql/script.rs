//! Value expressions evaluated per event: function calls, arithmetic,
//! comparisons with an expression or a second field on either side.
//!
//! Elasticsearch runs such a condition as a script query
//! (`QueryTranslator.toQuery` in x-pack/plugin/eql wraps it in a
//! `MultiValueAwareScriptQuery`): the script is true when it is true for
//! SOME combination of the values of the fields it reads (each multi-valued
//! field is iterated), a field without values is read as one `null`, and a
//! `null` (or an error) result is false. [`Script`] does exactly that:
//! [`Script::matches`] binds each field in turn through nested
//! [`Document::visit`] calls and evaluates the compiled [`SExpr`] with
//! three-valued logic.
//!
//! The per-function semantics (null rules, UTF-16 indices, case folding,
//! `number` parsing, Java `toString` of doubles) are documented on
//! [`Func`] and in `docs/eql.md`, each with the Elasticsearch class it
//! comes from.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::net::IpAddr;

use super::ast::{ArithOp, CmpOp};
use super::document::{Document, FieldRef, Value};
use super::lucene_regex::LuceneRegexSet;
use super::wildcard::WildcardSet;

/// A value computed by a script. `Null` is Elasticsearch's `null`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SVal<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
}

/// An evaluation error (Elasticsearch throws, the search fails): here the
/// script is false for that combination of values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fail;

type R<'a> = Result<SVal<'a>, Fail>;

/// A function, with its case-insensitive flag where Elasticsearch has one
/// (`CaseInsensitiveScalarFunction` subclasses: between, endsWith, indexOf,
/// startsWith, stringContains).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    /// `between(s, left, right[, greedy])`: `StringUtils.between`.
    Between(bool),
    /// `cidrMatch(ip, cidr, ...)`: `CIDRMatchFunctionProcessor`.
    CidrMatch,
    /// `concat(a, ...)`: `ConcatFunctionProcessor` (any null → null).
    Concat,
    /// `endsWith(s, suffix)`.
    EndsWith(bool),
    /// `indexOf(s, sub[, start])`: UTF-16 index or null.
    IndexOf(bool),
    /// `length(s)`: UTF-16 length.
    Length,
    /// `number(s[, base])`: `ToNumberFunctionProcessor`.
    Number,
    /// `startsWith(s, prefix)`.
    StartsWith(bool),
    /// `string(x)`: Java `toString`.
    String,
    /// `stringContains(s, sub)`: `StringUtils.stringContains`.
    StringContains(bool),
    /// `substring(s, start[, end])`: Python slice on UTF-16 units.
    Substring,
}

/// A compiled value expression.
#[derive(Debug, Clone)]
pub(crate) enum SExpr {
    /// The value bound to field slot `n` (see [`Script::fields`]).
    Field(usize),
    Const(SVal<'static>),
    Call(Func, Box<[SExpr]>),
    /// `cidrMatch` with its ranges parsed at compile time.
    Cidr(Box<SExpr>, Box<[Cidr]>),
    Arith(ArithOp, Box<SExpr>, Box<SExpr>),
    Neg(Box<SExpr>),
    Cmp(CmpOp, Box<SExpr>, Box<SExpr>),
    In(Box<SExpr>, Box<[SExpr]>, bool),
    Like(Box<SExpr>, Box<WildcardSet>),
    Regex(Box<SExpr>, Box<LuceneRegexSet>),
    IsNull(Box<SExpr>),
    And(Box<[SExpr]>),
    Or(Box<[SExpr]>),
    Not(Box<SExpr>),
}

/// A condition over the values of `fields` (slots 0..n of [`SExpr::Field`]).
#[derive(Debug, Clone)]
pub(crate) struct Script {
    pub(crate) fields: Box<[FieldRef]>,
    pub(crate) expr: SExpr,
}

/// The chain of bound field values, innermost first. Lives on the stack:
/// binding allocates nothing.
struct Env<'a> {
    value: Option<Value<'a>>,
    up: Option<&'a Env<'a>>,
}

impl Script {
    /// Whether some combination of field values makes the condition true.
    pub(crate) fn matches<D: Document + ?Sized>(&self, doc: &D) -> bool {
        self.bind(doc, 0, None)
    }

    fn bind<D: Document + ?Sized>(&self, doc: &D, depth: usize, env: Option<&Env<'_>>) -> bool {
        if depth == self.fields.len() {
            return matches!(eval(&self.expr, env, depth), Ok(SVal::Bool(true)));
        }
        let mut seen = false;
        let hit = doc.visit(&self.fields[depth], &mut |v| {
            seen = true;
            let e = Env {
                value: Some(v),
                up: env,
            };
            self.bind(doc, depth + 1, Some(&e))
        });
        if hit {
            return true;
        }
        if !seen {
            // A field without values is one null (`multiValueDocValues`).
            let e = Env {
                value: None,
                up: env,
            };
            return self.bind(doc, depth + 1, Some(&e));
        }
        false
    }

    /// Evaluates an expression without fields (constant folding).
    pub(crate) fn fold(expr: &SExpr) -> Result<SVal<'_>, Fail> {
        eval(expr, None, 0)
    }
}

fn lookup<'a>(env: Option<&'a Env<'a>>, depth: usize, slot: usize) -> SVal<'a> {
    let mut e = env;
    for _ in 0..depth.saturating_sub(slot + 1) {
        e = e.and_then(|x| x.up);
    }
    match e.and_then(|x| x.value) {
        None => SVal::Null,
        Some(Value::Str(s)) => SVal::Str(Cow::Borrowed(s)),
        Some(Value::Int(i)) => SVal::Int(i),
        Some(Value::Float(x)) => SVal::Float(x),
        Some(Value::Bool(b)) => SVal::Bool(b),
    }
}

fn eval<'a>(e: &'a SExpr, env: Option<&'a Env<'a>>, depth: usize) -> R<'a> {
    let ev = |x: &'a SExpr| eval(x, env, depth);
    Ok(match e {
        SExpr::Field(slot) => lookup(env, depth, *slot),
        SExpr::Const(c) => match c {
            SVal::Str(s) => SVal::Str(Cow::Borrowed(s.as_ref())),
            c => c.clone(),
        },
        SExpr::Call(f, args) => call(*f, args, env, depth)?,
        SExpr::Cidr(x, ranges) => match ev(x)? {
            SVal::Null => SVal::Null,
            v => {
                let s = text(&v).ok_or(Fail)?;
                SVal::Bool(cidr_match(&s, ranges))
            }
        },
        SExpr::Arith(op, l, r) => arith(*op, &ev(l)?, &ev(r)?)?,
        SExpr::Neg(x) => match num(&ev(x)?)? {
            None => SVal::Null,
            Some(SVal::Int(i)) => SVal::Int(i.checked_neg().ok_or(Fail)?),
            Some(SVal::Float(f)) => SVal::Float(-f),
            Some(_) => return Err(Fail),
        },
        SExpr::Cmp(op, l, r) => match compare(&ev(l)?, &ev(r)?) {
            None => SVal::Null,
            Some(o) => SVal::Bool(super::eval::ord_ok(*op, o)),
        },
        SExpr::In(x, list, ci) => {
            let v = ev(x)?;
            if v == SVal::Null {
                return Ok(SVal::Null);
            }
            let mut saw_null = false;
            for item in list.iter() {
                let c = ev(item)?;
                let eq = if *ci {
                    match (text(&v), text(&c)) {
                        (Some(a), Some(b)) if c != SVal::Null => {
                            Some(a.to_lowercase() == b.to_lowercase())
                        }
                        _ => None,
                    }
                } else {
                    compare(&v, &c).map(|o| o == Ordering::Equal)
                };
                match eq {
                    Some(true) => return Ok(SVal::Bool(true)),
                    Some(false) => {}
                    None => saw_null = true,
                }
            }
            if saw_null {
                SVal::Null
            } else {
                SVal::Bool(false)
            }
        }
        SExpr::Like(x, set) => match ev(x)? {
            SVal::Null => SVal::Null,
            v => SVal::Bool(set.is_match(&text(&v).ok_or(Fail)?)),
        },
        SExpr::Regex(x, set) => match ev(x)? {
            SVal::Null => SVal::Null,
            v => SVal::Bool(set.is_match(&text(&v).ok_or(Fail)?)),
        },
        SExpr::IsNull(x) => SVal::Bool(ev(x)? == SVal::Null),
        // Three-valued logic (`BinaryLogic` in x-pack/plugin/ql).
        SExpr::And(items) => logic(items, false, ev)?,
        SExpr::Or(items) => logic(items, true, ev)?,
        SExpr::Not(x) => match ev(x)? {
            SVal::Bool(b) => SVal::Bool(!b),
            _ => SVal::Null,
        },
    })
}

/// Three-valued `and` (`decisive` false) / `or` (`decisive` true): the
/// decisive value wins, else null if any operand is not a boolean.
fn logic<'a>(items: &'a [SExpr], decisive: bool, ev: impl Fn(&'a SExpr) -> R<'a>) -> R<'a> {
    let mut null = false;
    for i in items {
        match ev(i)? {
            SVal::Bool(b) if b == decisive => return Ok(SVal::Bool(decisive)),
            SVal::Bool(_) => {}
            _ => null = true,
        }
    }
    Ok(if null {
        SVal::Null
    } else {
        SVal::Bool(!decisive)
    })
}

/// The text of a value for a string function. Keyword fields hold text;
/// a number or boolean in the document is read as the keyword Elasticsearch
/// would have indexed for it (its JSON text).
fn text<'b>(v: &'b SVal<'_>) -> Option<Cow<'b, str>> {
    match v {
        SVal::Str(s) => Some(Cow::Borrowed(s.as_ref())),
        SVal::Int(i) => Some(Cow::Owned(i.to_string())),
        SVal::Float(x) => Some(Cow::Owned(java_double(*x))),
        SVal::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        SVal::Null => None,
    }
}

/// Java's `Object.toString` of a value (`string()`, `concat()`).
fn java_string(v: &SVal<'_>) -> Option<String> {
    match v {
        SVal::Float(x) => Some(java_double(*x)),
        v => text(v).map(Cow::into_owned),
    }
}

/// `Double.toString`: `1.0`, `0.001`, `1.0E7`, `1.5E-4`, `NaN`, `Infinity`.
pub(crate) fn java_double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let a = x.abs();
    if (1e-3..1e7).contains(&a) {
        let s = format!("{x}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{x:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        if m.contains('.') {
            format!("{m}E{e}")
        } else {
            format!("{m}.0E{e}")
        }
    }
}

/// A numeric view of a value: numbers as they are, numeric strings parsed
/// (a `long` field given as a JSON string), `None` for null.
fn num(v: &SVal<'_>) -> Result<Option<SVal<'static>>, Fail> {
    Ok(match v {
        SVal::Null => None,
        SVal::Int(i) => Some(SVal::Int(*i)),
        SVal::Float(x) => Some(SVal::Float(*x)),
        SVal::Str(s) => Some(parse_num(s.trim()).ok_or(Fail)?),
        SVal::Bool(_) => return Err(Fail),
    })
}

fn parse_num(s: &str) -> Option<SVal<'static>> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(SVal::Int(i));
    }
    s.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .map(SVal::Float)
}

/// `Arithmetics` (x-pack/plugin/ql): long arithmetic is exact (overflow is
/// an error), long division truncates, division or modulo of longs by zero
/// is an error (`ArithmeticException`); with a double operand it is IEEE
/// double arithmetic (`1.0 / 0` is `Infinity`, `x % 0.0` is `NaN`). A null
/// operand gives null.
fn arith<'a>(op: ArithOp, l: &SVal<'_>, r: &SVal<'_>) -> R<'a> {
    let (Some(l), Some(r)) = (num(l)?, num(r)?) else {
        return Ok(SVal::Null);
    };
    Ok(match (l, r) {
        (SVal::Int(a), SVal::Int(b)) => SVal::Int(
            match op {
                ArithOp::Add => a.checked_add(b),
                ArithOp::Sub => a.checked_sub(b),
                ArithOp::Mul => a.checked_mul(b),
                // Java: Long.MIN_VALUE / -1 wraps, / 0 throws.
                ArithOp::Div => (b != 0).then(|| a.wrapping_div(b)),
                ArithOp::Mod => (b != 0).then(|| a.wrapping_rem(b)),
            }
            .ok_or(Fail)?,
        ),
        (a, b) => {
            let (a, b) = (as_f64(&a), as_f64(&b));
            SVal::Float(match op {
                ArithOp::Add => a + b,
                ArithOp::Sub => a - b,
                ArithOp::Mul => a * b,
                ArithOp::Div => a / b,
                ArithOp::Mod => a % b,
            })
        }
    })
}

fn as_f64(v: &SVal<'_>) -> f64 {
    match v {
        SVal::Int(i) => *i as f64,
        SVal::Float(x) => *x,
        _ => f64::NAN,
    }
}

/// `Comparisons.compare` (x-pack/plugin/ql): null if either side is null or
/// the types do not compare; numbers numerically (`Double.compare` when one
/// is a double); strings by `String.compareTo` (UTF-16 code units); booleans
/// `false < true`. Without a mapping, a numeric string compared with a
/// number is read as a number and `"true"`/`"false"` compared with a boolean
/// as a boolean, as the keyword/long/boolean coercion of the exact-match
/// path does.
pub(crate) fn compare(l: &SVal<'_>, r: &SVal<'_>) -> Option<Ordering> {
    match (l, r) {
        (SVal::Null, _) | (_, SVal::Null) => None,
        (SVal::Str(a), SVal::Str(b)) => Some(a.encode_utf16().cmp(b.encode_utf16())),
        (SVal::Bool(a), SVal::Bool(b)) => Some(a.cmp(b)),
        (SVal::Int(a), SVal::Int(b)) => Some(a.cmp(b)),
        (SVal::Int(_) | SVal::Float(_), SVal::Int(_) | SVal::Float(_)) => {
            Some(as_f64(l).total_cmp(&as_f64(r)))
        }
        (SVal::Str(s), n @ (SVal::Int(_) | SVal::Float(_))) => {
            parse_num(s.trim()).and_then(|x| compare(&x, n))
        }
        (n @ (SVal::Int(_) | SVal::Float(_)), SVal::Str(s)) => {
            parse_num(s.trim()).and_then(|x| compare(n, &x))
        }
        (SVal::Str(s), SVal::Bool(b)) => str_bool(s).map(|x| x.cmp(b)),
        (SVal::Bool(b), SVal::Str(s)) => str_bool(s).map(|x| b.cmp(&x)),
        _ => None,
    }
}

fn str_bool(s: &str) -> Option<bool> {
    match s {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Byte offset of UTF-16 index `i` in `s` (clamped to the end; an index
/// inside a surrogate pair rounds up to the next character).
fn utf16_to_byte(s: &str, i: usize) -> usize {
    if s.is_ascii() {
        return i.min(s.len());
    }
    let mut units = 0;
    for (b, c) in s.char_indices() {
        if units >= i {
            return b;
        }
        units += c.len_utf16();
    }
    s.len()
}

fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().map(char::len_utf16).sum()
    }
}

fn byte_to_utf16(s: &str, b: usize) -> usize {
    utf16_len(&s[..b])
}

/// `String.toLowerCase(Locale.ROOT)`.
fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase() || b >= 0x80) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

fn arg<'a>(args: &'a [SExpr], i: usize, env: Option<&'a Env<'a>>, depth: usize) -> R<'a> {
    match args.get(i) {
        Some(a) => eval(a, env, depth),
        None => Ok(SVal::Null),
    }
}

fn call<'a>(f: Func, args: &'a [SExpr], env: Option<&'a Env<'a>>, depth: usize) -> R<'a> {
    let a = |i| arg(args, i, env, depth);
    Ok(match f {
        Func::Between(ci) => {
            let s = a(0)?;
            if s == SVal::Null {
                return Ok(SVal::Null);
            }
            let (l, r) = (a(1)?, a(2)?);
            let greedy = match a(3)? {
                SVal::Null => false,
                SVal::Bool(b) => b,
                _ => return Err(Fail),
            };
            let (s, l, r) = (
                text(&s).ok_or(Fail)?,
                text(&l).ok_or(Fail)?,
                text(&r).ok_or(Fail)?,
            );
            SVal::Str(Cow::Owned(between(&s, &l, &r, greedy, ci)))
        }
        Func::CidrMatch => SVal::Null,
        Func::Concat => {
            let mut out = String::new();
            for i in 0..args.len() {
                match java_string(&a(i)?) {
                    Some(t) => out.push_str(&t),
                    None => return Ok(SVal::Null),
                }
            }
            SVal::Str(Cow::Owned(out))
        }
        Func::EndsWith(ci) | Func::StartsWith(ci) => {
            let (s, p) = (a(0)?, a(1)?);
            if s == SVal::Null || p == SVal::Null {
                return Ok(SVal::Null);
            }
            let (s, p) = (text(&s).ok_or(Fail)?, text(&p).ok_or(Fail)?);
            let (s, p) = if ci {
                (lower(&s).into_owned(), lower(&p).into_owned())
            } else {
                (s.into_owned(), p.into_owned())
            };
            SVal::Bool(if matches!(f, Func::EndsWith(_)) {
                s.ends_with(p.as_str())
            } else {
                s.starts_with(p.as_str())
            })
        }
        Func::IndexOf(ci) => {
            let (s, sub) = (a(0)?, a(1)?);
            if s == SVal::Null || sub == SVal::Null {
                return Ok(SVal::Null);
            }
            let start = match a(2)? {
                SVal::Null => 0,
                SVal::Int(i) => i,
                _ => return Err(Fail),
            };
            let (s, sub) = (text(&s).ok_or(Fail)?, text(&sub).ok_or(Fail)?);
            let (s, sub) = if ci {
                (lower(&s), lower(&sub))
            } else {
                (s, sub)
            };
            // String.indexOf(str, fromIndex): a negative start is 0, past
            // the end finds only "".
            let from16 = usize::try_from(start.max(0)).unwrap_or(usize::MAX);
            if from16 > utf16_len(&s) {
                return Ok(if sub.is_empty() {
                    SVal::Int(utf16_len(&s) as i64)
                } else {
                    SVal::Null
                });
            }
            let from = utf16_to_byte(&s, from16);
            match s[from..].find(sub.as_ref()) {
                Some(i) => SVal::Int(byte_to_utf16(&s, from + i) as i64),
                None => SVal::Null,
            }
        }
        Func::Length => match a(0)? {
            SVal::Null => SVal::Null,
            v => SVal::Int(utf16_len(&text(&v).ok_or(Fail)?) as i64),
        },
        Func::Number => match a(0)? {
            SVal::Null => SVal::Null,
            v => {
                let base = match a(1)? {
                    SVal::Null => None,
                    SVal::Int(b) => Some(b),
                    _ => return Err(Fail),
                };
                to_number(&text(&v).ok_or(Fail)?, base)?
            }
        },
        Func::String => match java_string(&a(0)?) {
            None => SVal::Null,
            Some(s) => SVal::Str(Cow::Owned(s)),
        },
        Func::StringContains(ci) => {
            let (s, sub) = (a(0)?, a(1)?);
            if s == SVal::Null {
                return Ok(SVal::Null);
            }
            let (s, sub) = (text(&s).ok_or(Fail)?, text(&sub).ok_or(Fail)?);
            // `StringUtils.stringContains`: an empty string or substring is false.
            if s.is_empty() || sub.is_empty() {
                return Ok(SVal::Bool(false));
            }
            SVal::Bool(if ci {
                lower(&s).contains(lower(&sub).as_ref())
            } else {
                s.contains(sub.as_ref())
            })
        }
        Func::Substring => {
            let s = a(0)?;
            if s == SVal::Null {
                return Ok(SVal::Null);
            }
            let start = match a(1)? {
                SVal::Null => return Ok(s),
                SVal::Int(i) => i,
                _ => return Err(Fail),
            };
            let end = match a(2)? {
                SVal::Null => None,
                SVal::Int(i) => Some(i),
                _ => return Err(Fail),
            };
            match s {
                SVal::Str(Cow::Borrowed(b)) => SVal::Str(Cow::Borrowed(substring(b, start, end))),
                v => {
                    let t = text(&v).ok_or(Fail)?;
                    SVal::Str(Cow::Owned(substring(&t, start, end).to_string()))
                }
            }
        }
    })
}

/// `StringUtils.substringSlice` (x-pack/plugin/eql): Python slice
/// semantics on UTF-16 units; negative indices count from the end.
fn substring(s: &str, start: i64, end: Option<i64>) -> &str {
    let len = utf16_len(s) as i64;
    let mut start = start;
    let mut end = end.unwrap_or(len);
    if start < 0 {
        start += len;
    }
    start = start.max(0);
    if end < 0 {
        end += len;
    }
    end = end.clamp(0, len);
    if start >= end {
        return "";
    }
    let (b0, b1) = (
        utf16_to_byte(s, start as usize),
        utf16_to_byte(s, end as usize),
    );
    &s[b0..b1.max(b0)]
}

/// `StringUtils.between` (x-pack/plugin/eql): the text after the first
/// `left` and before the next (or, greedy, the last) `right`; the input
/// itself if any of the three is empty; `""` if not found. Case-insensitive
/// search lower-cases all three and cuts the original at the same UTF-16
/// indices, as Elasticsearch does.
fn between(s: &str, left: &str, right: &str, greedy: bool, ci: bool) -> String {
    if s.is_empty() || left.is_empty() || right.is_empty() {
        return s.to_string();
    }
    let (m, l, r) = if ci {
        (lower(s), lower(left), lower(right))
    } else {
        (Cow::Borrowed(s), Cow::Borrowed(left), Cow::Borrowed(right))
    };
    let Some(i) = m.find(l.as_ref()) else {
        return String::new();
    };
    let start = i + l.len();
    let end = if greedy {
        m.rfind(r.as_ref())
    } else {
        m[start..].find(r.as_ref()).map(|j| start + j)
    };
    let Some(end) = end else {
        return String::new();
    };
    // Java's substring(start, end) throws when end < start (greedy `right`
    // before `left`): an error, here an empty result is not produced.
    let (s16, e16) = (byte_to_utf16(&m, start), byte_to_utf16(&m, end));
    if e16 < s16 {
        return String::new();
    }
    let (b0, b1) = (utf16_to_byte(s, s16), utf16_to_byte(s, e16));
    s[b0..b1.max(b0)].to_string()
}

/// `ToNumberFunctionProcessor` (x-pack/plugin/eql): base 10 (the default)
/// reads a long, else a double; another base reads a long in that base;
/// a `0x` prefix means base 16 when no base (or 16) is given; anything
/// unparsable is an error.
fn to_number(s: &str, base: Option<i64>) -> R<'static> {
    let hex = s.starts_with("0x");
    let radix = base.unwrap_or(if hex { 16 } else { 10 });
    let s = if hex && radix == 16 { &s[2..] } else { s };
    if radix == 10 {
        if let Ok(i) = s.parse::<i64>() {
            return Ok(SVal::Int(i));
        }
        return java_parse_double(s).map(SVal::Float).ok_or(Fail);
    }
    let radix = u32::try_from(radix)
        .ok()
        .filter(|r| (2..=36).contains(r))
        .ok_or(Fail)?;
    i64::from_str_radix(s, radix)
        .map(SVal::Int)
        .map_err(|_| Fail)
}

/// `Double.valueOf`: surrounding whitespace ignored, an optional `d`/`f`
/// suffix, `NaN` and `Infinity` spelled exactly.
fn java_parse_double(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| c <= ' ');
    let t = t.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(t);
    match t.trim_start_matches(['+', '-']) {
        "NaN" => return Some(f64::NAN),
        "Infinity" => {
            return Some(if t.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        u if u
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
        {
            return None
        }
        _ => {}
    }
    t.parse().ok()
}

/// An IP range of `cidrMatch`, as 16 bytes (IPv4 mapped into IPv6, as
/// Elasticsearch's `ip` type stores it) and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    net: u128,
    mask: u128,
}

fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl Cidr {
    /// Parses `addr/len` or a single address (`CIDRUtils.isInRange`).
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u32>().ok()?)),
            None => (s, None),
        };
        let ip: IpAddr = addr.parse().ok()?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        if len > max {
            return None;
        }
        let len = if ip.is_ipv4() { len + 96 } else { len };
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - len)
        };
        Some(Cidr {
            net: ip_bits(ip) & mask,
            mask,
        })
    }

    fn contains(&self, ip: u128) -> bool {
        ip & self.mask == self.net
    }
}

/// Whether `s` is an IP address inside one of `ranges` (false for text
/// that is not an IP address).
pub(crate) fn cidr_match(s: &str, ranges: &[Cidr]) -> bool {
    match s.parse::<IpAddr>() {
        Ok(ip) => {
            let bits = ip_bits(ip);
            ranges.iter().any(|r| r.contains(bits))
        }
        Err(_) => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn java_double_text() {
        assert_eq!(java_double(1.0), "1.0");
        assert_eq!(java_double(1.5), "1.5");
        assert_eq!(java_double(0.001), "0.001");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(1.5e-4), "1.5E-4");
        assert_eq!(java_double(-2.0), "-2.0");
    }

    #[test]
    fn slices_and_between() {
        assert_eq!(substring("hello", 1, Some(3)), "el");
        assert_eq!(substring("hello", -3, None), "llo");
        assert_eq!(substring("hello", 2, Some(-1)), "ll");
        assert_eq!(substring("hello", 4, Some(2)), "");
        assert_eq!(substring("h😀llo", 1, Some(3)), "😀");
        assert_eq!(between("a[b]c]d", "[", "]", false, false), "b");
        assert_eq!(between("a[b]c]d", "[", "]", true, false), "b]c");
        assert_eq!(between("aXbYc", "x", "y", false, true), "b");
        assert_eq!(between("aXbYc", "x", "y", false, false), "");
        assert_eq!(between("abc", "", "c", false, false), "abc");
    }

    #[test]
    fn numbers() {
        assert_eq!(to_number("17", None), Ok(SVal::Int(17)));
        assert_eq!(to_number("11", Some(16)), Ok(SVal::Int(17)));
        assert_eq!(to_number("0x11", None), Ok(SVal::Int(17)));
        assert_eq!(to_number("1.5", None), Ok(SVal::Float(1.5)));
        assert_eq!(to_number("abc", None), Err(Fail));
        assert_eq!(to_number("1", Some(99)), Err(Fail));
    }

    #[test]
    fn cidrs() {
        let r = [Cidr::parse("10.6.48.157/8").unwrap()];
        assert!(cidr_match("10.0.0.1", &r));
        assert!(cidr_match("::ffff:10.0.0.1", &r));
        assert!(!cidr_match("11.0.0.1", &r));
        assert!(!cidr_match("not an ip", &r));
        assert!(cidr_match("1.2.3.4", &[Cidr::parse("0.0.0.0/0").unwrap()]));
        assert!(cidr_match("fe80::1", &[Cidr::parse("fe80::/10").unwrap()]));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
    }
}
