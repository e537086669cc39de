//! Property tests for the SIMD long-value path of `WildcardSet` (`sh -c`
//! payloads of kilobytes): it must give exactly the verdict of the
//! byte-at-a-time automaton path and of an independent dynamic-programming
//! reference, on random pattern lists (`*literal*`, multi-segment, leading /
//! trailing spaces, `?`, literal backslashes, non-ASCII) and long random values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use sensor::eql::wildcard::{WildcardPair, WildcardPattern, WildcardSet};
use sensor::eql::{compile_str, JsonDocument};

mod common;

use common::{ref_tokens, Tok};

/// Reference: classic O(|p|·|s|) wildcard DP over code points
/// (case-sensitive; the long-value path is only used for case-sensitive
/// lists). Independent of the implementation under test.
fn reference(p: &str, s: &str) -> bool {
    let p = ref_tokens(p);
    let s: Vec<char> = s.chars().collect();
    // row[j]: p[..i] matches s[..j]
    let mut row = vec![false; s.len() + 1];
    row[0] = true;
    for t in &p {
        let mut next = vec![false; s.len() + 1];
        match t {
            Tok::Star => {
                let mut any = false;
                for j in 0..=s.len() {
                    any |= row[j];
                    next[j] = any;
                }
            }
            Tok::One => next[1..].copy_from_slice(&row[..s.len()]),
            Tok::Lit(c) => {
                for j in 1..=s.len() {
                    next[j] = row[j - 1] && s[j - 1] == *c;
                }
            }
        }
        row = next;
    }
    row[s.len()]
}

/// Pattern atoms: words that share prefixes and overlap (so windows collide
/// and prefix closure matters), separators, leading/trailing spaces,
/// wildcards, backslashes (literal: there is no escape character) and multi-byte code points.
fn pattern() -> impl Strategy<Value = String> {
    let atom = prop::sample::select(vec![
        "curl", "cur", "url", "sh", "sh -c", "bash", "ba", "|", "#!", "/tmp/", "/tm", " ", "  ",
        "-c", "é", "日本", "x", "ab", "abab", "?", "\\*", "\\?", "\\", "AZURE_", "AZURE_ID",
    ]);
    let body = proptest::collection::vec(atom, 1..4).prop_map(|v| v.concat());
    (
        prop::sample::select(vec!["*", "", " *", "* "]),
        proptest::collection::vec(body, 1..4),
        prop::sample::select(vec!["*", "", " ", "* "]),
    )
        .prop_map(|(head, bodies, tail)| format!("{head}{}{tail}", bodies.join("*")))
}

/// Long values built from the same material, plus filler that matches
/// nothing, so the SIMD path is taken and hits land anywhere.
fn long_value() -> impl Strategy<Value = String> {
    let atom = prop::sample::select(vec![
        "curl",
        "cur",
        "url",
        "sh",
        "sh -c",
        "bash",
        "|",
        "#!",
        "/tmp/",
        "/tm",
        " ",
        "-c",
        "é",
        "日本",
        "x",
        "ab",
        "abab",
        "*",
        "?",
        "\\",
        "AZURE_",
        "AZURE_ID",
        "AZURE_XX",
        "filler text 0123 ",
        "ééé",
        "\n",
    ]);
    proptest::collection::vec(atom, 20..120).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn long_path_agrees_with_automaton_and_reference(
        ps in proptest::collection::vec(pattern(), 1..40),
        s in long_value(),
    ) {
        let set = WildcardSet::new(&ps, false).unwrap();
        let want = ps.iter().any(|p| reference(p, &s));
        let (automaton, long) = set.is_match_by_each_path(&s);
        prop_assert_eq!(automaton, want, "automaton: patterns {:?} value {:?}", ps, s);
        if let Some(long) = long {
            prop_assert_eq!(long, want, "long path: patterns {:?} value {:?}", ps, s);
        }
        prop_assert_eq!(set.is_match(&s), want, "patterns {:?} value {:?}", ps, s);
        // The single-pattern matcher is the other reference.
        prop_assert_eq!(ps.iter().any(|p| WildcardPattern::new(p, false).is_match(&s)), want);
    }

    #[test]
    fn long_path_on_short_values(
        ps in proptest::collection::vec(pattern(), 1..20),
        s in proptest::collection::vec(prop::sample::select(vec!["sh", " ", "-c", "curl ", "é", "|", "ab", "/tmp/"]), 0..8)
            .prop_map(|v| v.concat()),
    ) {
        let set = WildcardSet::new(&ps, false).unwrap();
        let want = ps.iter().any(|p| reference(p, &s));
        let (automaton, long) = set.is_match_by_each_path(&s);
        prop_assert_eq!(automaton, want);
        if let Some(long) = long {
            prop_assert_eq!(long, want, "long path: patterns {:?} value {:?}", ps, s);
        }
    }
}

/// The seed rule's argument list on a 4 KiB payload: no pattern, then each
/// `*literal*` and multi-segment pattern planted at the very start, middle
/// and end.
#[test]
fn seed_list_on_planted_payloads() {
    let pats = [
        "* /tmp/* ",
        " *socat *",
        "*python* -c*",
        "*openssl*enc * -d *",
        "*|*sh",
        "*#!*",
        "*/etc/passwd*",
        "*AZURE_CLIENT_ID*",
        "*AZURE_TENANT_ID*",
        "*timeout *sh -c *",
        "*echo *",
    ];
    let set = WildcardSet::new(&pats, false).unwrap();
    let filler = "cd /usr/local/app && ls -la config && uname -r && ".repeat(80);
    assert!(!set.is_match(&filler));
    for plant in [
        "x /tmp/y ",
        "python3 -c",
        "openssl x enc y -d z",
        "a|bsh",
        "#!",
        "/etc/passwd",
        "AZURE_TENANT_ID",
        "timeout 5 sh -c ",
        "echo ",
    ] {
        for s in [
            format!("{plant}{filler}"),
            format!("{filler}{plant}{filler}"),
            format!("{filler}{plant}"),
        ] {
            let want = pats.iter().any(|p| reference(p, &s));
            assert_eq!(set.is_match(&s), want, "{plant:?}");
            assert_eq!(set.is_match_by_each_path(&s).1.unwrap_or(want), want);
        }
    }
    // Leading / trailing anchors.
    assert!(set.is_match(&format!(" socat {filler}")));
    assert!(!set.is_match(&format!("socat {filler}")));
    assert!(set.is_match(&format!("{filler} /tmp/x ")));
    assert!(!set.is_match(&format!("{filler} /tmp/x")));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// `WildcardPair` (two lists answered by one scan of a long value)
    /// against the reference, on long and short values: A exactly, and B
    /// exactly whenever A does not match.
    #[test]
    fn pair_agrees_with_reference(
        pa in proptest::collection::vec(pattern(), 1..30),
        pb in proptest::collection::vec(pattern(), 1..6),
        s in prop_oneof![
            long_value(),
            proptest::collection::vec(prop::sample::select(vec!["sh", " ", "-c", "curl ", "é", "|", "ab", "/tmp/"]), 0..8)
                .prop_map(|v| v.concat()),
        ],
    ) {
        let want_a = pa.iter().any(|p| reference(p, &s));
        let want_b = pb.iter().any(|p| reference(p, &s));
        let a = Box::new(WildcardSet::new(&pa, false).unwrap());
        let b = Box::new(WildcardSet::new(&pb, false).unwrap());
        if let Ok(pair) = WildcardPair::new(a, b) {
            let (got_a, got_b) = pair.is_match(&s);
            prop_assert_eq!(got_a, want_a, "A {:?} B {:?} value {:?}", pa, pb, s);
            if !want_a {
                prop_assert_eq!(got_b, want_b, "A {:?} B {:?} value {:?}", pa, pb, s);
            }
        }
    }

    /// The compiled `args like A or (args like B and name == "sh")` (fused
    /// into one scan) against its three leaves evaluated separately.
    #[test]
    fn fused_or_agrees_with_its_leaves(
        pa in proptest::collection::vec(pattern(), 1..20),
        pb in proptest::collection::vec(pattern(), 1..4),
        args in proptest::collection::vec(prop_oneof![
            long_value(),
            proptest::collection::vec(prop::sample::select(vec!["sh", " ", "-c", "curl ", "é", "|", "ab", "/tmp/"]), 0..8)
                .prop_map(|v| v.concat()),
        ], 0..4),
        name in prop::sample::select(vec!["sh", "bash"]),
    ) {
        let list = |ps: &[String]| {
            ps.iter()
                .map(|p| format!("\"{}\"", p.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (la, lb) = (list(&pa), list(&pb));
        let fused = compile_str(&format!(
            "any where process.args like ({la}) or (process.args like ({lb}) and process.name == \"sh\")"
        ))
        .unwrap();
        let qa = compile_str(&format!("any where process.args like ({la})")).unwrap();
        let qb = compile_str(&format!("any where process.args like ({lb})")).unwrap();
        let doc = serde_json::json!({"process": {"args": args, "name": name}});
        let doc = JsonDocument::new(&doc);
        let want = qa.matches(&doc) || (qb.matches(&doc) && name == "sh");
        prop_assert_eq!(fused.matches(&doc), want, "A {:?} B {:?} args {:?}", pa, pb, args);
    }
}
