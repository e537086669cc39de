//! Shared by the wildcard property tests: the reference reading of a
//! wildcard pattern, as the semantics document states it (`*` any run, `?`
//! exactly one character, every other character literal — there is no
//! escape character, a backslash is a literal backslash, as in
//! Elasticsearch's `StringUtils.toLikePattern`), kept deliberately naive so
//! it can be trusted.

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
    for c in p.chars() {
        out.push(match c {
            '*' => Tok::Star,
            '?' => Tok::One,
            c => Tok::Lit(c),
        });
    }
    out
}
