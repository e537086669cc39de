//! Shared by the wildcard property tests: the reference reading of a
//! wildcard pattern, as the semantics document states it (`*` any run, `?`
//! exactly one character, `\\` escapes the next, a trailing `\\` is
//! literal), kept deliberately naive so it can be trusted.

/// One token of a wildcard pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Lit(char),
    One,
    Star,
}

/// Tokenizes `p` the documented way.
pub fn ref_tokens(p: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut it = p.chars();
    while let Some(c) = it.next() {
        out.push(match c {
            '*' => Tok::Star,
            '?' => Tok::One,
            '\\' => Tok::Lit(it.next().unwrap_or('\\')),
            c => Tok::Lit(c),
        });
    }
    out
}
