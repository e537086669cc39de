//! Property tests: compiled wildcard matching agrees with an obviously
//! correct reference; the parser and evaluator never panic on random input.
//! Case counts are bounded so that this runs in seconds under `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The reference matcher folds case by hand on purpose: it must not share
// code with the implementation under test.
#![allow(clippy::manual_ignore_case_cmp)]

use proptest::prelude::*;
use sensor::eql::wildcard::{WildcardPattern, WildcardSet};
use sensor::eql::{compile_str, parse, JsonDocument};
use serde_json::Value;

mod common;

use common::{ref_tokens, Tok};

fn ref_match(p: &[Tok], s: &[char], ci: bool) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(Tok::Star) => (0..=s.len()).any(|i| ref_match(&p[1..], &s[i..], ci)),
        Some(Tok::One) => !s.is_empty() && ref_match(&p[1..], &s[1..], ci),
        Some(Tok::Lit(c)) => {
            !s.is_empty()
                && (if ci {
                    c.to_ascii_lowercase() == s[0].to_ascii_lowercase()
                } else {
                    *c == s[0]
                })
                && ref_match(&p[1..], &s[1..], ci)
        }
    }
}

fn reference(p: &str, s: &str, ci: bool) -> bool {
    let chars: Vec<char> = s.chars().collect();
    ref_match(&ref_tokens(p), &chars, ci)
}

/// Small alphabets so that random patterns and values actually interact,
/// with ASCII letters of both cases and multi-byte code points.
fn pat_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop::sample::select(vec![
            "a", "A", "b", "é", "É", "日", " ", "\n", "*", "?", "\\", "\\*", "ab",
        ]),
        0..8,
    )
    .prop_map(|v| v.concat())
}

fn val_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop::sample::select(vec![
            "a", "A", "b", "B", "é", "É", "日", " ", "\n", "*", "?", "\\",
        ]),
        0..10,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn wildcard_agrees_with_reference(p in pat_strategy(), s in val_strategy(), ci in any::<bool>()) {
        let compiled = WildcardPattern::new(&p, ci);
        prop_assert_eq!(compiled.is_match(&s), reference(&p, &s, ci), "pattern {:?} value {:?} ci {}", p, s, ci);
    }

    #[test]
    fn wildcard_set_agrees_with_reference(ps in proptest::collection::vec(pat_strategy(), 1..6),
                                          s in val_strategy(), ci in any::<bool>()) {
        let set = WildcardSet::new(&ps, ci).unwrap();
        let want = ps.iter().any(|p| reference(p, &s, ci));
        prop_assert_eq!(set.is_match(&s), want, "patterns {:?} value {:?} ci {}", ps, s, ci);
    }
}

fn query_fragments() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop::sample::select(vec![
            "process",
            "any",
            "where",
            "sequence",
            " ",
            "a.b",
            "?x",
            "==",
            "!=",
            "<",
            ">=",
            ":",
            "in",
            "in~",
            "not",
            "and",
            "or",
            "like",
            "like~",
            "regex",
            "regex~",
            "(",
            ")",
            ",",
            "\"s\"",
            "\"*x?\"",
            "\"\"\"r\\\"\"\"",
            "\"[a-\"",
            "\"a{2,1}\"",
            "1",
            "-2.5",
            "true",
            "null",
            "/*",
            "*/",
            "//",
            "\n",
            "\"\\u{41}\"",
            "\"\\q\"",
            "|",
            "f(",
            "[",
            "é",
            "'",
        ]),
        0..25,
    )
    .prop_map(|v| v.join(" "))
}

fn seed_rules() -> &'static sensor::rules::RuleSet {
    static RULES: std::sync::OnceLock<sensor::rules::RuleSet> = std::sync::OnceLock::new();
    RULES.get_or_init(|| sensor::rules::RuleSet::embedded_default().unwrap())
}

fn json_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-zA-Z0-9 *?é\\n]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop::sample::select(vec![
                    "a",
                    "b",
                    "a.b",
                    "x",
                    "event",
                    "category",
                    "event.category"
                ]),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_fragments(q in query_fragments()) {
        let _ = parse(&q);
        let _ = compile_str(&q);
    }

    #[test]
    fn parser_never_panics_on_arbitrary_text(q in "\\PC{0,60}") {
        let _ = compile_str(&q);
    }

    #[test]
    fn evaluator_never_panics(doc in json_strategy()) {
        let queries = [
            "any where a == \"x\" or a.b like~ \"*é*\" or not x in (1, true, \"s\") or a regex \"[a-z]+.*\"",
            "process where event.category != null and a.b >= 3 and x < \"m\" and a : (\"?\", \"*\\\\\")",
        ];
        for q in queries {
            let c = compile_str(q).unwrap();
            let _ = c.matches(&JsonDocument::new(&doc));
        }
        let _ = seed_rules().matching(&JsonDocument::new(&doc)).count();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_mutated_seed(pos in 0usize..13_000, len in 0usize..20, ins in "\\PC{0,5}") {
        let seed = sensor::rules::builtin::seed_text();
        let q = seed.split("'''").nth(1).unwrap_or("");
        let mut s: String = q.chars().take(pos).collect();
        s.push_str(&ins);
        s.extend(q.chars().skip(pos + len));
        if let Ok(c) = compile_str(&s) {
            let _ = c.matches(&Value::Null);
        }
    }
}
