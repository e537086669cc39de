//! Elasticsearch wildcard patterns (`like`, `like~`, `:`), compiled once.
//!
//! Semantics (Lucene `WildcardQuery` on a keyword): the pattern matches the
//! WHOLE value; `*` is any run of code points including none and including
//! newlines, `?` is exactly one code point, and there is NO escape character:
//! a backslash is a literal backslash (Elasticsearch's `StringUtils.toLikePattern`
//! in x-pack/plugin/eql turns the pattern into a LIKE pattern whose escape
//! is U+0001, which a pattern cannot contain), so a literal `*` or `?` cannot
//! be matched. Case-insensitive matching folds
//! ASCII letters only (`AutomatonQueries.toCaseInsensitiveChar` gives code
//! points above 128 no case alternative).
//!
//! Matching never allocates or builds a regex: a pattern is split at `*` into
//! segments of literals and `?`s. The first segment is anchored at the start,
//! the last at the end, and each middle segment is placed at its leftmost
//! occurrence. Greedy leftmost placement is exact here because a segment has
//! no `*` inside, so it always spans the same number of code points: ending
//! as early as possible can only leave more room for the segments after it.
//!
//! [`WildcardSet`] evaluates a whole `like (...)` list against one value with
//! at most one multi-pattern scan: patterns of the form `*literal*` are
//! answered directly by an Aho-Corasick automaton; other unanchored patterns
//! use their longest literal as a necessary factor in the same automaton and
//! are only verified when that factor occurs; anchored-only patterns
//! (`abc*`, `*.cgi`, `?*`) are checked directly, and wildcard-free patterns go
//! into an exact-match set.
//!
//! Long values (a `sh -c` payload of kilobytes) take a different scan for
//! case-sensitive lists: the automaton walks a byte at a time, which is what
//! made a 4 KiB payload cost ≈10 µs. Instead [`LongValueScan`] enumerates,
//! with SIMD, every occurrence of one short window per pattern (see
//! [`litscan`](super::litscan)): a `*literal*` pattern matches iff its
//! literal is present around an occurrence of its window, other patterns are
//! verified with the exact matcher when their window occurs. Both paths give
//! the same answer (proptests compare them and the reference matcher).

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

use super::litscan::{best_window, rarity, ByteIndex, LiteralScan};
use super::strset::StrSet;

/// Values at least this long (bytes) use [`LongValueScan`] when available.
/// Below it the automaton's per-byte cost is smaller than the fixed cost of
/// starting one SIMD search per window group.
const LONG_VALUE_MIN: usize = 128;

/// One element of a parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// Literal text.
    Lit(String),
    /// `?`: exactly one code point.
    One,
    /// `*`: any run of code points.
    Star,
}

/// Parses an EQL wildcard pattern (no escape character) into tokens,
/// merging adjacent literals and collapsing runs of `*`.
pub fn tokenize(pattern: &str) -> Vec<Token> {
    tokenize_with(pattern, false)
}

/// Parses a Lucene `WildcardQuery` pattern, where `\` escapes the next
/// character and a trailing `\` is literal. Elasticsearch sends one for
/// `stringContains(field, "..")` (`*..*`) and `endsWith(field, "..")`
/// (`*..`) with the string pasted in unescaped (`QueryTranslator.
/// CaseInsensitiveScalarFunctions` in x-pack/plugin/eql), so there `*`, `?`
/// and `\` in the string keep their wildcard meaning.
pub fn tokenize_lucene(pattern: &str) -> Vec<Token> {
    tokenize_with(pattern, true)
}

fn tokenize_with(pattern: &str, escapes: bool) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    let mut chars = pattern.chars();
    let push_lit = |out: &mut Vec<Token>, c: char| {
        if let Some(Token::Lit(s)) = out.last_mut() {
            s.push(c);
        } else {
            out.push(Token::Lit(c.to_string()));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                if out.last() != Some(&Token::Star) {
                    out.push(Token::Star);
                }
            }
            '?' => out.push(Token::One),
            // A trailing backslash has nothing to escape: it is literal.
            '\\' if escapes => push_lit(&mut out, chars.next().unwrap_or('\\')),
            c => push_lit(&mut out, c),
        }
    }
    out
}

/// Whether the pattern contains a `*` or `?`.
pub fn has_wildcards(pattern: &str) -> bool {
    tokenize(pattern)
        .iter()
        .any(|t| matches!(t, Token::Star | Token::One))
}

/// The pattern as an exact value, if it has no wildcards.
pub fn as_literal(pattern: &str) -> Option<String> {
    let toks = tokenize(pattern);
    match toks.as_slice() {
        [] => Some(String::new()),
        [Token::Lit(s)] => Some(s.clone()),
        _ => None,
    }
}

#[derive(Debug, Clone)]
enum Piece {
    Lit(Box<[u8]>),
    One,
}

/// A segment: the pieces between two `*`. Spans a fixed number of code points.
#[derive(Debug, Clone, Default)]
struct Segment {
    pieces: Vec<Piece>,
}

impl Segment {
    fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The literal pieces (each is required wherever the segment matches).
    fn literals(&self) -> impl Iterator<Item = &[u8]> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Lit(b) => Some(&b[..]),
            Piece::One => None,
        })
    }

    /// The longest literal piece.
    fn longest_literal(&self) -> Option<&[u8]> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Lit(b) => Some(&b[..]),
                Piece::One => None,
            })
            .max_by_key(|b| b.len())
    }
}

#[inline]
fn eq_bytes(a: &[u8], b: &[u8], ci: bool) -> bool {
    if ci {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// Byte length of the UTF-8 sequence starting with `lead`.
#[inline]
fn utf8_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// A compiled wildcard pattern.
#[derive(Debug, Clone)]
pub struct WildcardPattern {
    source: String,
    ci: bool,
    /// `segments.len() == number of * + 1`.
    segments: Vec<Segment>,
}

impl WildcardPattern {
    /// Compiles `pattern`; `case_insensitive` folds ASCII letters only.
    pub fn new(pattern: &str, case_insensitive: bool) -> WildcardPattern {
        Self::from_tokens(pattern, &tokenize(pattern), case_insensitive)
    }

    /// Compiles a Lucene `WildcardQuery` pattern (`\` escapes; see
    /// [`tokenize_lucene`]).
    pub fn new_lucene(pattern: &str, case_insensitive: bool) -> WildcardPattern {
        Self::from_tokens(pattern, &tokenize_lucene(pattern), case_insensitive)
    }

    fn from_tokens(pattern: &str, toks: &[Token], case_insensitive: bool) -> WildcardPattern {
        let mut segments = vec![Segment::default()];
        for t in toks {
            match t {
                Token::Star => segments.push(Segment::default()),
                Token::One => {
                    if let Some(seg) = segments.last_mut() {
                        seg.pieces.push(Piece::One);
                    }
                }
                Token::Lit(s) => {
                    if let Some(seg) = segments.last_mut() {
                        seg.pieces.push(Piece::Lit(s.as_bytes().into()));
                    }
                }
            }
        }
        WildcardPattern {
            source: pattern.to_string(),
            ci: case_insensitive,
            segments,
        }
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether it matches every string (only `*`s).
    pub fn matches_everything(&self) -> bool {
        self.segments.iter().all(Segment::is_empty) && self.segments.len() > 1
    }

    /// Whether a middle segment exists, i.e. the pattern has to search.
    fn has_unanchored_segment(&self) -> bool {
        self.segments.len() > 2
            && self.segments[1..self.segments.len() - 1]
                .iter()
                .any(|s| !s.is_empty())
    }

    /// Whether the first or the last segment holds a literal: a value that
    /// does not start (end) with it is rejected by one compare, before any
    /// search of the middle segments, so the pattern is cheaper checked
    /// directly than through a multi-pattern scan.
    fn has_literal_anchor(&self) -> bool {
        let n = self.segments.len();
        n > 1
            && (self.segments[0].literals().next().is_some()
                || self.segments[n - 1].literals().next().is_some())
    }

    /// The longest literal that any match must contain.
    fn required_factor(&self) -> Option<&[u8]> {
        self.segments
            .iter()
            .filter_map(Segment::longest_literal)
            .max_by_key(|b| b.len())
            .filter(|b| !b.is_empty())
    }

    /// `*literal*` → the literal.
    fn as_substring(&self) -> Option<&[u8]> {
        match self.segments.as_slice() {
            [first, mid, last] if first.is_empty() && last.is_empty() => {
                match mid.pieces.as_slice() {
                    [Piece::Lit(b)] => Some(b),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Matches `s` against the whole pattern.
    pub fn is_match(&self, s: &str) -> bool {
        let s = s.as_bytes();
        let ci = self.ci;
        let n = self.segments.len();
        if n == 1 {
            return match_at(&self.segments[0], s, 0, ci) == Some(s.len());
        }
        let first = &self.segments[0];
        let Some(mut pos) = match_at(first, s, 0, ci) else {
            return false;
        };
        // Both anchors before any search: a failing suffix costs one compare.
        let Some(last_start) = match_suffix(&self.segments[n - 1], s, ci) else {
            return false;
        };
        if last_start < pos {
            return false;
        }
        for seg in &self.segments[1..n - 1] {
            if seg.is_empty() {
                continue;
            }
            match find(seg, s, pos, ci) {
                Some(end) => pos = end,
                None => return false,
            }
        }
        last_start >= pos
    }
}

/// Matches `seg` at byte `p`, returning the end position.
#[inline]
fn match_at(seg: &Segment, s: &[u8], mut p: usize, ci: bool) -> Option<usize> {
    for piece in &seg.pieces {
        match piece {
            Piece::Lit(b) => {
                let end = p.checked_add(b.len())?;
                if end > s.len() || !eq_bytes(&s[p..end], b, ci) {
                    return None;
                }
                p = end;
            }
            Piece::One => {
                let lead = *s.get(p)?;
                p += utf8_len(lead);
            }
        }
    }
    Some(p)
}

/// Matches `seg` so that it ends exactly at the end of `s`; returns its start.
fn match_suffix(seg: &Segment, s: &[u8], ci: bool) -> Option<usize> {
    let mut end = s.len();
    for piece in seg.pieces.iter().rev() {
        match piece {
            Piece::Lit(b) => {
                let start = end.checked_sub(b.len())?;
                if !eq_bytes(&s[start..end], b, ci) {
                    return None;
                }
                end = start;
            }
            Piece::One => {
                if end == 0 {
                    return None;
                }
                end -= 1;
                while end > 0 && (s[end] & 0xC0) == 0x80 {
                    end -= 1;
                }
            }
        }
    }
    Some(end)
}

/// Leftmost placement of `seg` at or after byte `from` (a char boundary);
/// returns the end of the match.
fn find(seg: &Segment, s: &[u8], from: usize, ci: bool) -> Option<usize> {
    match seg.pieces.first() {
        Some(Piece::Lit(b)) if !ci => {
            let mut at = from;
            while at <= s.len() {
                let i = memchr::memmem::find(&s[at..], b)?;
                if let Some(end) = match_at(seg, s, at + i, ci) {
                    return Some(end);
                }
                at += i + 1;
            }
            None
        }
        Some(Piece::Lit(b)) => {
            // A literal never starts with a UTF-8 continuation byte, so every
            // byte offset where it matches is a char boundary.
            let first = b.first().copied()?;
            let mut at = from;
            while at < s.len() {
                if s[at].eq_ignore_ascii_case(&first) {
                    if let Some(end) = match_at(seg, s, at, ci) {
                        return Some(end);
                    }
                }
                at += 1;
            }
            None
        }
        _ => {
            let mut at = from;
            while at <= s.len() {
                if at == s.len() || (s[at] & 0xC0) != 0x80 {
                    if let Some(end) = match_at(seg, s, at, ci) {
                        return Some(end);
                    }
                }
                at += 1;
            }
            None
        }
    }
}

/// What an Aho-Corasick hit means.
#[derive(Debug, Clone, Default)]
struct AcTarget {
    /// A `*literal*` pattern: the value matches.
    immediate: bool,
    /// Indices into `gated` of patterns to verify.
    verify: Vec<usize>,
}

/// A `like (...)` list compiled for one-pass evaluation (see module docs).
#[derive(Debug, Clone)]
pub struct WildcardSet {
    exact: StrSet,
    any: bool,
    direct: Vec<WildcardPattern>,
    gated: Vec<WildcardPattern>,
    ac: Option<AhoCorasick>,
    targets: Vec<AcTarget>,
    /// The SIMD path for long values (case-sensitive lists only).
    long: Option<LongValueScan>,
    /// The literals of the `*literal*` patterns (to build a [`WildcardPair`]).
    substrings: Vec<Vec<u8>>,
}

/// One bit per gated pattern: "already verified for this value", so a
/// pattern whose factor occurs many times is verified once. No allocation up
/// to 512 patterns.
struct Verified {
    small: [u64; 8],
    big: Vec<u64>,
}

impl Verified {
    fn new(n: usize) -> Verified {
        let big = if n > 64 * 8 {
            vec![0; n.div_ceil(64)]
        } else {
            Vec::new()
        };
        Verified { small: [0; 8], big }
    }

    /// Marks `j`; returns whether it was unmarked.
    #[inline]
    fn first_time(&mut self, j: usize) -> bool {
        let words: &mut [u64] = if self.big.is_empty() {
            &mut self.small
        } else {
            &mut self.big
        };
        let (w, bit) = (j / 64, 1u64 << (j % 64));
        let fresh = words[w] & bit == 0;
        words[w] |= bit;
        fresh
    }
}

/// What an occurrence of a window obliges [`LongValueScan`] to check.
#[derive(Debug, Clone, Copy)]
enum WindowCheck {
    /// A `*literal*` pattern whose window sits `offset` bytes into the
    /// literal: the value matches iff the literal is present there.
    Literal { lit: u32, offset: u32 },
    /// Verify `gated[j]` against the whole value (once per value).
    Verify(u32),
}

/// SIMD evaluation of the unanchored patterns of a case-sensitive list on a
/// long value (see module docs). Exact: every pattern that can match has a
/// window inside a literal it requires, and every window occurrence is
/// enumerated.
#[derive(Debug, Clone)]
struct LongValueScan {
    scan: LiteralScan,
    /// Per window id.
    checks: Box<[Box<[WindowCheck]>]>,
    literals: Box<[Box<[u8]>]>,
    min_len: usize,
}

impl LongValueScan {
    /// `substrings`: the literals of `*literal*` patterns; `gated`: the other
    /// unanchored patterns (each has at least one literal piece).
    fn new(substrings: &[&[u8]], gated: &[WildcardPattern]) -> Option<LongValueScan> {
        let mut windows = ByteIndex::default();
        let mut checks: Vec<Vec<WindowCheck>> = Vec::new();
        let mut add = |w: &[u8], c: WindowCheck, windows: &mut ByteIndex| {
            let (id, added) = windows.insert(w);
            if added {
                checks.push(Vec::new());
            }
            checks[id].push(c);
        };
        let mut literals = Vec::new();
        for lit in substrings {
            let (off, len) = best_window(lit, &windows);
            let c = WindowCheck::Literal {
                lit: u32::try_from(literals.len()).ok()?,
                offset: u32::try_from(off).ok()?,
            };
            add(&lit[off..off + len], c, &mut windows);
            literals.push(Box::<[u8]>::from(*lit));
        }
        for (j, p) in gated.iter().enumerate() {
            // The rarest window of any required literal piece.
            let window = p
                .segments
                .iter()
                .flat_map(Segment::literals)
                .map(|lit| {
                    let (off, len) = best_window(lit, &windows);
                    &lit[off..off + len]
                })
                .max_by_key(|w| {
                    let reuse = windows.contains(w);
                    (w.len(), rarity(w) + if reuse { 400 } else { 0 })
                })?;
            add(
                window,
                WindowCheck::Verify(u32::try_from(j).ok()?),
                &mut windows,
            );
        }
        let scan = LiteralScan::new(windows.items())?;
        Some(LongValueScan {
            min_len: scan.min_haystack_len().max(LONG_VALUE_MIN),
            scan,
            checks: checks.into_iter().map(Vec::into_boxed_slice).collect(),
            literals: literals.into_boxed_slice(),
        })
    }

    /// Whether the check holds for the window occurrence at `start`.
    #[inline]
    fn check(
        &self,
        c: WindowCheck,
        s: &str,
        start: usize,
        gated: &[WildcardPattern],
        verified: &mut Verified,
    ) -> bool {
        match c {
            WindowCheck::Literal { lit, offset } => {
                let lit = &self.literals[lit as usize];
                start
                    .checked_sub(offset as usize)
                    .is_some_and(|at| s.as_bytes()[at..].starts_with(lit))
            }
            WindowCheck::Verify(j) => {
                let j = j as usize;
                verified.first_time(j) && gated[j].is_match(s)
            }
        }
    }

    fn is_match(&self, s: &str, gated: &[WildcardPattern]) -> bool {
        let mut verified = Verified::new(gated.len());
        self.scan.any_occurrence(s.as_bytes(), |w, start| {
            self.checks[w]
                .iter()
                .any(|&c| self.check(c, s, start, gated, &mut verified))
        })
    }

    /// For a scan built over two lists (literals `< a_lits` and gated
    /// patterns `< a_gated` belong to the first): whether the first list
    /// matches and, when it does not, whether the second one does (`b`
    /// already known to match on entry skips its checks).
    fn pair_match(
        &self,
        s: &str,
        gated: &[WildcardPattern],
        (a_lits, a_gated): (u32, u32),
        mut b: bool,
    ) -> (bool, bool) {
        let mut verified = Verified::new(gated.len());
        let a = self.scan.any_occurrence(s.as_bytes(), |w, start| {
            self.checks[w].iter().any(|&c| {
                let in_a = match c {
                    WindowCheck::Literal { lit, .. } => lit < a_lits,
                    WindowCheck::Verify(j) => j < a_gated,
                };
                if !in_a && b {
                    return false;
                }
                let hit = self.check(c, s, start, gated, &mut verified);
                if hit && !in_a {
                    b = true;
                    return false;
                }
                hit
            })
        });
        (a, b)
    }
}

/// Error building the multi-pattern automaton (only on resource exhaustion).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the wildcard pattern automaton: {0}")]
pub struct WildcardSetError(String);

impl WildcardSet {
    /// Compiles a list of wildcard patterns (an OR over them).
    pub fn new<S: AsRef<str>>(
        patterns: &[S],
        case_insensitive: bool,
    ) -> Result<WildcardSet, WildcardSetError> {
        let ci = case_insensitive;
        let mut exact = Vec::new();
        let mut any = false;
        let mut direct = Vec::new();
        let mut gated: Vec<WildcardPattern> = Vec::new();
        let mut factors = ByteIndex::default();
        let mut targets: Vec<AcTarget> = Vec::new();
        let mut substrings = ByteIndex::default();
        let factor_index = |f: &[u8], factors: &mut ByteIndex, targets: &mut Vec<AcTarget>| {
            // Duplicate factors share one automaton pattern. For a
            // case-insensitive set, factors equal up to ASCII case are
            // duplicates (the automaton matches them without case, and the
            // first spelling is the one kept).
            let key = if ci {
                std::borrow::Cow::Owned(f.to_ascii_lowercase())
            } else {
                std::borrow::Cow::Borrowed(f)
            };
            let (i, added) = factors.insert_keyed(&key, f);
            if added {
                targets.push(AcTarget::default());
            }
            i
        };
        // A list whose every pattern is anchored by a literal (`/home/*/*`,
        // `/root/*`) is checked pattern by pattern: each costs one failing
        // prefix or suffix compare on most values, cheaper than any scan.
        // In a list that needs a scan anyway, such patterns ride along in it
        // rather than add per-value checks.
        let all_anchored = patterns.iter().all(|p| {
            let p = p.as_ref();
            as_literal(p).is_some() || {
                let wp = WildcardPattern::new(p, ci);
                !wp.has_unanchored_segment() || wp.has_literal_anchor()
            }
        });
        for p in patterns {
            let p = p.as_ref();
            if let Some(lit) = as_literal(p) {
                exact.push(lit);
                continue;
            }
            let wp = WildcardPattern::new(p, ci);
            if wp.matches_everything() {
                any = true;
            } else if let Some(sub) = wp.as_substring() {
                substrings.insert(sub);
                let i = factor_index(sub, &mut factors, &mut targets);
                targets[i].immediate = true;
            } else if wp.has_unanchored_segment() && !all_anchored {
                match wp.required_factor().map(<[u8]>::to_vec) {
                    Some(f) => {
                        let i = factor_index(&f, &mut factors, &mut targets);
                        targets[i].verify.push(gated.len());
                        gated.push(wp);
                    }
                    None => direct.push(wp),
                }
            } else {
                direct.push(wp);
            }
        }
        // Cheapest direct checks first: fewer segments means less work.
        direct.sort_by_key(|p| p.segments.len());
        let factors = factors.into_items();
        let ac = if factors.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .ascii_case_insensitive(ci)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(&factors)
                    .or_else(|_| {
                        AhoCorasickBuilder::new()
                            .match_kind(MatchKind::Standard)
                            .ascii_case_insensitive(ci)
                            .build(&factors)
                    })
                    .map_err(|e| WildcardSetError(e.to_string()))?,
            )
        };
        // The packed searcher has no case folding: case-insensitive lists
        // (short parent arguments in practice) keep the automaton.
        let long = if ci || any || factors.is_empty() {
            None
        } else {
            let subs: Vec<&[u8]> = substrings.items().iter().map(Vec::as_slice).collect();
            LongValueScan::new(&subs, &gated)
        };
        Ok(WildcardSet {
            exact: StrSet::new(exact, ci),
            any,
            direct,
            gated,
            ac,
            targets,
            long,
            substrings: substrings.into_items(),
        })
    }

    /// Whether every pattern is an exact value or anchored-only (`abc*`,
    /// `*.cgi`, `/home/*/*`): matching never scans the value.
    pub fn is_anchored_only(&self) -> bool {
        !self.any && self.ac.is_none()
    }

    /// The set's values when every pattern is a literal (no `*` or `?`):
    /// then [`WildcardSet::is_match`] is exactly membership in them.
    pub fn as_exact(&self) -> Option<&StrSet> {
        let literal_only =
            !self.any && self.direct.is_empty() && self.gated.is_empty() && self.ac.is_none();
        literal_only.then_some(&self.exact)
    }

    /// Whether matching ignores ASCII case.
    pub fn is_case_insensitive(&self) -> bool {
        self.exact.is_case_insensitive()
    }

    /// The patterns, as wildcard patterns (`*literal*` ones rebuilt from
    /// their literal; order not kept).
    pub fn pattern_sources(&self) -> Vec<String> {
        let mut out: Vec<String> = self.exact.items().map(str::to_owned).collect();
        if self.any {
            out.push("*".into());
        }
        out.extend(
            self.direct
                .iter()
                .chain(&self.gated)
                .map(|p| p.source().to_owned()),
        );
        out.extend(
            self.substrings
                .iter()
                .map(|l| format!("*{}*", String::from_utf8_lossy(l))),
        );
        out
    }

    /// Whether any pattern matches the whole of `s`.
    pub fn is_match(&self, s: &str) -> bool {
        self.prematch(s) || self.unanchored_match(s)
    }

    /// The exact values, `*` and the anchored-only patterns.
    #[inline]
    fn prematch(&self, s: &str) -> bool {
        self.any || self.exact.contains(s) || self.direct.iter().any(|p| p.is_match(s))
    }

    /// The unanchored patterns.
    fn unanchored_match(&self, s: &str) -> bool {
        match &self.long {
            Some(long) if s.len() >= long.min_len => long.is_match(s, &self.gated),
            _ => self.automaton_match(s),
        }
    }

    /// The unanchored patterns by one overlapping automaton pass (short
    /// values, case-insensitive lists, no SIMD).
    fn automaton_match(&self, s: &str) -> bool {
        let Some(ac) = &self.ac else {
            return false;
        };
        if self.gated.is_empty() {
            return ac.is_match(s);
        }
        // Each gated pattern is verified at most once per value.
        let mut verified = Verified::new(self.gated.len());
        for m in ac.find_overlapping_iter(s) {
            let t = &self.targets[m.pattern().as_usize()];
            if t.immediate {
                return true;
            }
            for &j in &t.verify {
                if verified.first_time(j) && self.gated[j].is_match(s) {
                    return true;
                }
            }
        }
        false
    }

    /// Both evaluation paths of the unanchored patterns, for tests: the
    /// automaton and, when built, the SIMD long-value scan regardless of the
    /// value's length.
    #[doc(hidden)]
    pub fn is_match_by_each_path(&self, s: &str) -> (bool, Option<bool>) {
        let pre = self.any || self.exact.contains(s) || self.direct.iter().any(|p| p.is_match(s));
        (
            pre || self.automaton_match(s),
            self.long
                .as_ref()
                .map(|l| pre || l.is_match(s, &self.gated)),
        )
    }
}

/// Two case-sensitive `like` lists on the same field, A and B, answered
/// for a long value by ONE scan over the union of their windows: the
/// evaluator's `A or (B and ...)` (the seed rule's big list and its
/// `("*wget *", "*curl *")` branch) then reads a 4 KiB payload once instead
/// of twice. Exact: the union scan still enumerates every occurrence of every
/// window of both lists, and each check is tagged with its list.
#[derive(Debug, Clone)]
pub struct WildcardPair {
    a: Box<WildcardSet>,
    b: Box<WildcardSet>,
    long: LongValueScan,
    /// `a.gated` then `b.gated`.
    gated: Vec<WildcardPattern>,
    /// Number of A's literals and of A's gated patterns: lower ids are A's.
    split: (u32, u32),
}

impl WildcardPair {
    /// Fuses `a` and `b`, or gives them back when either has no long-value
    /// scan (case-insensitive, `*`, no unanchored pattern) or the union scan
    /// cannot be built.
    pub fn new(
        a: Box<WildcardSet>,
        b: Box<WildcardSet>,
    ) -> Result<WildcardPair, (Box<WildcardSet>, Box<WildcardSet>)> {
        if a.long.is_none() || b.long.is_none() {
            return Err((a, b));
        }
        let subs: Vec<&[u8]> = a
            .substrings
            .iter()
            .chain(&b.substrings)
            .map(Vec::as_slice)
            .collect();
        let gated: Vec<WildcardPattern> = a.gated.iter().chain(&b.gated).cloned().collect();
        let split = (
            u32::try_from(a.substrings.len()),
            u32::try_from(a.gated.len()),
        );
        let (Ok(a_lits), Ok(a_gated)) = split else {
            return Err((a, b));
        };
        match LongValueScan::new(&subs, &gated) {
            Some(long) => Ok(WildcardPair {
                a,
                b,
                long,
                gated,
                split: (a_lits, a_gated),
            }),
            None => Err((a, b)),
        }
    }

    /// `(A matches s, B matches s)`, except that when A matches the second
    /// component is unspecified (the caller's `or` is decided).
    pub fn is_match(&self, s: &str) -> (bool, bool) {
        if self.a.prematch(s) {
            return (true, false);
        }
        if s.len() < self.long.min_len {
            return (self.a.unanchored_match(s), self.b.is_match(s));
        }
        let b = self.b.prematch(s);
        self.long.pair_match(s, &self.gated, self.split, b)
    }

    /// The two lists.
    pub fn parts(&self) -> (&WildcardSet, &WildcardSet) {
        (&self.a, &self.b)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        WildcardPattern::new(p, false).is_match(s)
    }

    fn mi(p: &str, s: &str) -> bool {
        WildcardPattern::new(p, true).is_match(s)
    }

    #[test]
    fn basics() {
        assert!(m("*", ""));
        assert!(m("*", "abc\ndef"));
        assert!(!m("?*", ""));
        assert!(m("?*", "x"));
        assert!(m("a?c", "abc"));
        assert!(m("a?c", "aéc"));
        assert!(!m("a?c", "ac"));
        assert!(!m("a?c", "abbc"));
        assert!(m("*foo*", "xxfooyy"));
        assert!(m("*foo*", "foo"));
        assert!(!m("*foo*", "fo"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "a\nb\nc"));
        assert!(!m("a*b*c", "acb"));
        assert!(m("*ab", "abab"));
        assert!(!m("ab*ab", "aba"));
        assert!(m("ab*ab", "abab"));
    }

    #[test]
    fn backslash_is_literal() {
        // `a\*b` is `a`, a backslash, any run, `b`.
        assert!(m(r"a\*b", r"a\b"));
        assert!(m(r"a\*b", r"a\xyzb"));
        assert!(!m(r"a\*b", "a*b"));
        assert!(m(r"a\?", r"a\x"));
        assert!(!m(r"a\?", "a?"));
        assert!(m(r"a\\", r"a\\"));
        assert!(!m(r"a\\", r"a\"));
        assert!(m(r"a\", r"a\"));
        assert!(m(r"C:\Windows\*", r"C:\Windows\cmd.exe"));
        assert!(!m(r"a\", "a"));
    }

    #[test]
    fn lucene_escapes() {
        let l = |p: &str, s: &str| WildcardPattern::new_lucene(p, false).is_match(s);
        assert!(l(r"*a\*b*", "xa*by"));
        assert!(!l(r"*a\*b*", "xaZby"));
        assert!(l(r"*a\\*", r"a\"));
        assert!(l(r"*\", r"xyz\"));
    }

    #[test]
    fn case_folding_is_ascii_only() {
        assert!(mi("*CURL *", "x curl y"));
        assert!(!m("*CURL *", "x curl y"));
        assert!(!mi("É*", "é"));
        assert!(mi("é*", "é"));
        assert!(!mi("straße", "STRASSE"));
        // Kelvin sign K (U+212A) is not folded to k
        assert!(!mi("k", "\u{212A}"));
    }

    #[test]
    fn set_agrees_with_individual_patterns() {
        let pats = [
            "* /tmp/* ",
            " *socat *",
            "*|*sh",
            "exact",
            "pre*",
            "*.cgi",
            "*python* -c*",
            "a?c",
            "*mid*",
        ];
        let set = WildcardSet::new(&pats, false).unwrap();
        for s in [
            "sh -c 'cat /tmp/x '",
            "sh -c cat /tmp/x",
            " socat x",
            "socat x",
            "a|b sh",
            "exact",
            "exactly",
            "prefix",
            "x.cgi",
            "python3 -c 1",
            "abc",
            "a mid b",
            "",
            "none",
        ] {
            let want = pats.iter().any(|p| m(p, s));
            assert_eq!(set.is_match(s), want, "{s:?}");
        }
    }

    #[test]
    fn all_anchored_list_is_checked_directly() {
        let pats = [
            "/opt/x/*",
            "/home/*/*",
            "/root/*",
            "*|*sh",
            "a*b*c",
            "exact",
        ];
        let set = WildcardSet::new(&pats, false).unwrap();
        assert!(set.is_anchored_only());
        for s in [
            "/home/u/x",
            "/home/u",
            "/home//",
            "/root/",
            "a|b sh",
            "|sh",
            "sh",
            "abc",
            "acb",
            "a\nb\nc",
            "exact",
            "/opt/x/",
            "/opt/x",
            "",
            "é/home/a/b",
        ] {
            let want = pats.iter().any(|p| m(p, s));
            assert_eq!(set.is_match(s), want, "{s:?}");
        }
        // One `*literal*` pattern: the list needs a scan, nothing moves.
        let set = WildcardSet::new(&["/home/*/*", "*mid*"], false).unwrap();
        assert!(!set.is_anchored_only());
        assert!(set.is_match("/home/a/b") && set.is_match("x mid") && !set.is_match("/home/a"));
    }

    #[test]
    fn ci_set() {
        let set = WildcardSet::new(&["*puma*", "-Dcatalina.base=*", "Exact"], true).unwrap();
        assert!(set.is_match("PUMA 5"));
        assert!(set.is_match("-dcatalina.BASE=/x"));
        assert!(set.is_match("exact"));
        assert!(!set.is_match("exactly"));
    }
}
