//! The sequence runner fed through the rule index (each engine sees only
//! the events one of its steps matches, and evaluates no step again) gives
//! exactly the results of feeding every event to every engine, each
//! evaluating every step: the same sequences and samples, in the same
//! order, with the same counters. Random rule sets mix `until`, `maxspan`,
//! `with runs`, missing events (leading, between, trailing) and samples,
//! several rules at once so that an event often concerns one rule and not
//! another; random streams move time in jumps around the maxspans, in
//! replay (batch samples, end of input) and live (stream samples, time
//! advanced between events) modes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::rc::Rc;

use proptest::prelude::*;
use sensor::eql::sequence::Ordinal;
use sensor::rules::sequences::{RunMode, SequenceRunner};
use sensor::rules::RuleSet;
use serde_json::{json, Value};

/// One step's condition over the fields the events carry.
fn condition() -> BoxedStrategy<String> {
    let atom = prop_oneof![
        Just(r#"a == "x""#.to_owned()),
        Just(r#"a in ("x", "y")"#.to_owned()),
        Just(r#"a : "Y""#.to_owned()),
        Just(r#"b like "p*""#.to_owned()),
        Just(r#"b == "q""#.to_owned()),
        Just(r#"not a == "z""#.to_owned()),
        Just(r#"c != null"#.to_owned()),
        Just("true".to_owned()),
    ];
    prop_oneof![
        atom.clone(),
        (atom.clone(), atom.clone()).prop_map(|(l, r)| format!("{l} and {r}")),
        (atom.clone(), atom).prop_map(|(l, r)| format!("({l} or {r})")),
    ]
    .boxed()
}

fn step() -> BoxedStrategy<String> {
    (
        prop_oneof![Just("process"), Just("file"), Just("any")],
        condition(),
    )
        .prop_map(|(cat, c)| format!("[{cat} where {c}]"))
        .boxed()
}

/// A sequence or sample query of one of the shapes the engines treat
/// differently.
fn correlation() -> BoxedStrategy<String> {
    prop_oneof![
        (step(), step()).prop_map(|(s1, s2)| format!("sequence by k {s1} {s2}")),
        (step(), step(), step(), 1..4u32).prop_map(|(s1, s2, s3, span)| format!(
            "sequence by k with maxspan={span}s {s1} {s2} {s3}"
        )),
        (step(), step(), 2..4u32)
            .prop_map(|(s1, s2, n)| format!("sequence by k {s1} {s2} with runs={n}")),
        (step(), step(), step())
            .prop_map(|(s1, s2, u)| format!("sequence by k {s1} {s2} until {u}")),
        (step(), step(), step(), 1..4u32).prop_map(|(s1, m, s2, span)| format!(
            "sequence by k with maxspan={span}s {s1} !{m} {s2}"
        )),
        (step(), step(), step(), 1..4u32).prop_map(|(s1, s2, m, span)| format!(
            "sequence by k with maxspan={span}s {s1} {s2} !{m}"
        )),
        (step(), step(), step(), 1..4u32).prop_map(|(m, s1, s2, span)| format!(
            "sequence by k with maxspan={span}s !{m} {s1} {s2}"
        )),
        (step(), step()).prop_map(|(s1, s2)| format!("sample by k {s1} {s2}")),
        (step(), step(), step()).prop_map(|(s1, s2, s3)| format!("sample by k {s1} {s2} {s3}")),
    ]
    .boxed()
}

/// An event: its category, values from small pools (so steps match and
/// keys join), and the time since the previous event.
fn event() -> impl Strategy<Value = (u64, Value)> {
    let pick = |vals: &'static [&'static str]| {
        prop_oneof![
            3 => proptest::sample::select(vals).prop_map(|v| Some(v.to_owned())),
            1 => Just(None),
        ]
    };
    (
        prop_oneof![Just("process"), Just("file")],
        pick(&["x", "y", "Y", "z"]),
        pick(&["p", "pq", "q"]),
        pick(&["1"]),
        pick(&["k1", "k2"]),
        prop_oneof![3 => 0..400u64, 1 => 400..2_500u64, 1 => Just(0u64)],
    )
        .prop_map(|(cat, a, b, c, k, dt)| {
            let mut v = json!({"event": {"category": [cat]}});
            let m = v.as_object_mut().unwrap();
            for (f, x) in [("a", a), ("b", b), ("c", c), ("k", k)] {
                if let Some(x) = x {
                    m.insert(f.to_owned(), json!(x));
                }
            }
            (dt, v)
        })
}

fn rule_set(queries: &[String]) -> RuleSet {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| support::rule_file(dir.path(), &format!("r{i}"), q))
        .collect();
    let report = RuleSet::load_paths(&paths).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.ruleset.sequences().len(), queries.len());
    report.ruleset
}

/// What a run reported: (rule, event ids) in order, and the counters.
type Outcome = (Vec<(String, Vec<u64>)>, String);

fn run(rs: &RuleSet, events: &[(u64, Value)], mode: RunMode, indexed: bool) -> Outcome {
    let mut runner: SequenceRunner<Value> = SequenceRunner::with_default_cap(rs, mode);
    let mut got = Vec::new();
    let mut emit = |r: &sensor::rules::SequenceRule, evs: &[&Value]| {
        got.push((
            r.meta.name.clone(),
            evs.iter().map(|e| e["id"].as_u64().unwrap()).collect(),
        ))
    };
    let mut ms = 1_767_225_600_000i64;
    for (i, (dt, ev)) in events.iter().enumerate() {
        ms += *dt as i64;
        let mut ev = ev.clone();
        ev["id"] = json!(i);
        ev["@timestamp"] = json!(ms);
        let ord = Ordinal::of(&ev, i as u64).unwrap();
        // Every event reaches the runner, as in replay when any step
        // matches; the runner itself decides which engines see it.
        let ev = Rc::new(ev);
        if indexed {
            runner.process(rs, &ev, ord, &mut emit);
        } else {
            runner.process_exhaustive(rs, &ev, ord, &mut emit);
        }
        if mode == RunMode::Live && i % 3 == 0 {
            // Time passing between events (the live sensor's watermark).
            let at = Ordinal {
                ms: ms - 50,
                sub_ns: 0,
                tie: 0,
            };
            runner.advance(rs, at, &mut emit);
        }
    }
    runner.finish(rs, &mut emit);
    let stats = serde_json::to_string(&runner.stats()).unwrap();
    (got, stats)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn indexed_feeding_equals_exhaustive_feeding(
        queries in proptest::collection::vec(correlation(), 1..5),
        events in proptest::collection::vec(event(), 1..80),
    ) {
        let rs = rule_set(&queries);
        for mode in [RunMode::Replay, RunMode::Live] {
            let exhaustive = run(&rs, &events, mode, false);
            let indexed = run(&rs, &events, mode, true);
            prop_assert_eq!(&indexed, &exhaustive, "{:?}: {:?}", mode, queries);
        }
    }
}

/// The generated sets do complete sequences and samples (the property is
/// not vacuous): a fixed stream through one rule of each shape.
#[test]
fn every_shape_reports_something_on_a_fitting_stream() {
    let shapes = [
        r#"sequence by k [process where a == "x"] [file where b == "q"]"#,
        r#"sequence by k with maxspan=2s [process where a == "x"] [file where b == "q"] [process where a == "y"]"#,
        r#"sequence by k [process where a == "x"] [file where b == "q"] with runs=2"#,
        r#"sequence by k [process where a == "x"] [file where b == "q"] until [process where a == "z"]"#,
        r#"sequence by k with maxspan=2s [process where a == "x"] ![process where a == "z"] [file where b == "q"]"#,
        r#"sequence by k with maxspan=2s [process where a == "x"] [file where b == "q"] ![process where a == "z"]"#,
        r#"sample by k [process where a == "x"] [file where b == "q"]"#,
    ];
    let queries: Vec<String> = shapes.iter().map(|s| s.to_string()).collect();
    let rs = rule_set(&queries);
    let ev = |cat: &str, a: &str, b: &str| {
        (
            100u64,
            json!({"event": {"category": [cat]}, "a": a, "b": b, "k": "k1"}),
        )
    };
    let events = vec![
        ev("process", "x", "-"),
        ev("file", "-", "q"),
        ev("file", "-", "q"),
        ev("process", "y", "-"),
        (
            5_000,
            json!({"event": {"category": ["process"]}, "a": "w", "k": "k1"}),
        ),
    ];
    for mode in [RunMode::Replay, RunMode::Live] {
        let (got, _) = run(&rs, &events, mode, true);
        let names: std::collections::BTreeSet<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), shapes.len(), "{mode:?}: {got:?}");
        assert_eq!(run(&rs, &events, mode, false).0, got);
    }
}
