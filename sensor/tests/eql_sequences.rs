//! EQL sequences: the project's own conformance tests, one per semantic
//! point of `sensor/src/eql/sequence.rs` (the facts Elasticsearch's
//! sequence matcher and QA suite establish, with our own events).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sensor::eql::ast::Statement;
use sensor::eql::parser::parse_statement;
use sensor::eql::sequence::{compile, Ordinal, SequenceEngine, SequenceMatch, SequenceStats};
use sensor::eql::{EqlErrorKind, JsonDocument};
use sensor::output::alert::AlertWriter;
use sensor::rules::RuleSet;
use serde_json::{json, Value};

mod support;

use support::Shared;

/// An event: `id`, `@timestamp` in ms, category and extra fields.
fn ev(id: u64, ms: i64, cat: &str, extra: Value) -> Value {
    let mut v = json!({"id": id, "@timestamp": ms, "event": {"category": cat}});
    if let (Value::Object(m), Value::Object(x)) = (&mut v, extra) {
        m.extend(x);
    }
    v
}

/// Runs `query` over `events` (in the given order, ordinal = timestamp then
/// position) with a cap; returns the ids of each completed sequence.
fn run_cap(query: &str, events: &[Value], cap: usize) -> (Vec<Vec<u64>>, SequenceStats) {
    let Statement::Sequence(q) = parse_statement(query).unwrap() else {
        panic!("not a sequence")
    };
    let seq = compile(&q).unwrap();
    let mut engine: SequenceEngine<u64> = SequenceEngine::new(cap);
    let mut out: Vec<SequenceMatch<u64>> = Vec::new();
    let mut sorted: Vec<(Ordinal, &Value)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (Ordinal::of(&JsonDocument::new(e), i as u64).unwrap(), e))
        .collect();
    sorted.sort_by_key(|(o, _)| *o);
    for (ord, e) in sorted {
        let id = e["id"].as_u64().unwrap();
        engine.process(&seq, &JsonDocument::new(e), ord, &mut || id, &mut out);
    }
    engine.finish(&seq, &mut out);
    let stats = engine.stats();
    (out.into_iter().map(|m| m.events).collect(), stats)
}

fn run(query: &str, events: &[Value]) -> Vec<Vec<u64>> {
    run_cap(query, events, 10_000).0
}

fn a(id: u64, ms: i64) -> Value {
    ev(id, ms, "process", json!({"step": "a", "k": "x"}))
}
fn b(id: u64, ms: i64) -> Value {
    ev(id, ms, "process", json!({"step": "b", "k": "x"}))
}
fn c(id: u64, ms: i64) -> Value {
    ev(id, ms, "process", json!({"step": "c", "k": "x"}))
}

const AB: &str = r#"sequence by k [process where step == "a"] [process where step == "b"]"#;
const ABC: &str = r#"sequence by k [process where step == "a"] [process where step == "b"] [process where step == "c"]"#;

#[test]
fn the_latest_waiting_sequence_is_extended() {
    assert_eq!(run(AB, &[a(1, 1), a(2, 2), b(3, 3)]), vec![vec![2, 3]]);
    // A step matching again finds nothing waiting.
    assert_eq!(run(AB, &[a(1, 1), b(2, 2), b(3, 3)]), vec![vec![1, 2]]);
    assert_eq!(
        run(ABC, &[a(1, 1), b(2, 2), a(3, 3), b(4, 4), c(5, 5)]),
        vec![vec![3, 4, 5]]
    );
    // Each completed sequence is reported, in completion order.
    assert_eq!(
        run(AB, &[a(1, 1), b(2, 2), a(3, 3), b(4, 4)]),
        vec![vec![1, 2], vec![3, 4]]
    );
}

#[test]
fn order_is_timestamp_then_input_order() {
    // Input order differs from time order: time decides.
    assert_eq!(run(AB, &[b(1, 5), a(2, 1)]), vec![vec![2, 1]]);
    // Same timestamp: input order (the implicit tiebreaker) decides.
    assert_eq!(run(AB, &[a(1, 7), b(2, 7)]), vec![vec![1, 2]]);
    assert!(run(AB, &[b(1, 7), a(2, 7)]).is_empty());
    // Sub-millisecond digits order events within a millisecond.
    let e1 = ev(1, 0, "process", json!({"step": "b", "k": "x"}));
    let mut e1 = e1;
    e1["@timestamp"] = json!("2026-01-01T00:00:00.000500000Z");
    let mut e2 = a(2, 0);
    e2["@timestamp"] = json!("2026-01-01T00:00:00.000100000Z");
    assert_eq!(run(AB, &[e1, e2]), vec![vec![2, 1]]);
}

#[test]
fn an_event_matching_several_steps_never_extends_its_own_sequence() {
    let q = r#"sequence by k [process where n == 1] [process where n == 1]"#;
    let e = |id, ms| ev(id, ms, "process", json!({"n": 1, "k": "x"}));
    assert!(run(q, &[e(1, 1)]).is_empty());
    assert_eq!(
        run(q, &[e(1, 1), e(2, 2), e(3, 3)]),
        vec![vec![1, 2], vec![2, 3]]
    );
}

#[test]
fn runs_repeat_a_step() {
    let q = r#"sequence by k [process where n == 1] with runs=3"#;
    let e = |id, ms| ev(id, ms, "process", json!({"n": 1, "k": "x"}));
    assert!(run(q, &[e(1, 1), e(2, 2)]).is_empty());
    assert_eq!(run(q, &[e(1, 1), e(2, 2), e(3, 3)]), vec![vec![1, 2, 3]]);
    assert_eq!(
        run(q, &[e(1, 1), e(2, 2), e(3, 3), e(4, 4)]),
        vec![vec![1, 2, 3], vec![2, 3, 4]]
    );
}

#[test]
fn maxspan_is_inclusive_and_a_rejected_sequence_is_consumed() {
    let q =
        r#"sequence by k with maxspan=1s [process where step == "a"] [process where step == "b"]"#;
    assert_eq!(run(q, &[a(1, 0), b(2, 1000)]), vec![vec![1, 2]]);
    let (got, stats) = run_cap(q, &[a(1, 0), b(2, 1001)], 100);
    assert!(got.is_empty());
    assert_eq!(stats.rejected_maxspan + stats.expired, 1);
    // Units.
    for (span, ok) in [
        ("500ms", false),
        ("2s", true),
        ("1m", true),
        ("1h", true),
        ("1d", true),
    ] {
        let q = format!(
            r#"sequence by k with maxspan={span} [process where step == "a"] [process where step == "b"]"#
        );
        assert_eq!(!run(&q, &[a(1, 0), b(2, 1500)]).is_empty(), ok, "{span}");
    }
    // The first step's time counts, not the previous step's.
    let q3 = r#"sequence by k with maxspan=10ms [process where step == "a"] [process where step == "b"] [process where step == "c"]"#;
    assert!(run(q3, &[a(1, 0), b(2, 6), c(3, 11)]).is_empty());
    assert_eq!(run(q3, &[a(1, 0), b(2, 6), c(3, 10)]), vec![vec![1, 2, 3]]);
}

#[test]
fn until_ends_the_sequences_of_its_key() {
    let q = r#"sequence by k [process where step == "a"] [process where step == "b"] until [process where step == "u"]"#;
    let u = |id, ms, k: &str| ev(id, ms, "process", json!({"step": "u", "k": k}));
    assert!(run(q, &[a(1, 1), u(2, 2, "x"), b(3, 3)]).is_empty());
    assert_eq!(
        run(q, &[a(1, 1), u(2, 2, "y"), b(3, 3)]),
        vec![vec![1, 2 + 1]]
    );
    // A sequence started after the until event is unaffected.
    assert_eq!(run(q, &[u(1, 1, "x"), a(2, 2), b(3, 3)]), vec![vec![2, 3]]);
    // An until event that is also the first step ends what it starts.
    let q2 = r#"sequence by k [process where n == 1] [process where step == "b"] until [process where n == 1]"#;
    let s = |id, ms| ev(id, ms, "process", json!({"n": 1, "k": "x"}));
    assert!(run(q2, &[s(1, 1), b(2, 2)]).is_empty());
    // ... but an until event completing a sequence still completes it.
    let q3 = r#"sequence by k [process where step == "a"] [process where step == "b"] until [process where step == "b"]"#;
    assert_eq!(run(q3, &[a(1, 1), b(2, 2)]), vec![vec![1, 2]]);
}

#[test]
fn missing_keys_do_not_join_unless_optional() {
    let ka = |id, ms, k: Value| ev(id, ms, "process", json!({"step": "a", "k": k}));
    let kb = |id, ms, k: Value| ev(id, ms, "process", json!({"step": "b", "k": k}));
    let nokey = |id, ms, step: &str| ev(id, ms, "process", json!({"step": step}));
    assert!(run(AB, &[nokey(1, 1, "a"), nokey(2, 2, "b")]).is_empty());
    assert!(run(AB, &[ka(1, 1, Value::Null), kb(2, 2, Value::Null)]).is_empty());
    let opt = r#"sequence by ?k [process where step == "a"] [process where step == "b"]"#;
    assert_eq!(
        run(opt, &[nokey(1, 1, "a"), nokey(2, 2, "b")]),
        vec![vec![1, 2]]
    );
    // null joins null only.
    assert!(run(opt, &[nokey(1, 1, "a"), kb(2, 2, json!("x"))]).is_empty());
}

#[test]
fn keys_of_different_types_do_not_join() {
    let ka = |id, ms, k: Value| ev(id, ms, "process", json!({"step": "a", "k": k}));
    let kb = |id, ms, k: Value| ev(id, ms, "process", json!({"step": "b", "k": k}));
    assert!(run(AB, &[ka(1, 1, json!("1")), kb(2, 2, json!(1))]).is_empty());
    assert!(run(AB, &[ka(1, 1, json!(1)), kb(2, 2, json!(1.5))]).is_empty());
    assert!(run(AB, &[ka(1, 1, json!(true)), kb(2, 2, json!("true"))]).is_empty());
    assert_eq!(
        run(AB, &[ka(1, 1, json!(7)), kb(2, 2, json!(7))]),
        vec![vec![1, 2]]
    );
    // Different keys are independent.
    assert_eq!(
        run(
            AB,
            &[
                ka(1, 1, json!("p")),
                ka(2, 2, json!("q")),
                kb(3, 3, json!("p"))
            ]
        ),
        vec![vec![1, 3]]
    );
}

#[test]
fn multi_valued_keys_join_on_each_value() {
    let ka = |id, ms, k: Value| ev(id, ms, "process", json!({"step": "a", "k": k}));
    let kb = |id, ms, k: Value| ev(id, ms, "process", json!({"step": "b", "k": k}));
    assert_eq!(
        run(AB, &[ka(1, 1, json!(["p", "q"])), kb(2, 2, json!("q"))]),
        vec![vec![1, 2]]
    );
    assert_eq!(
        run(
            AB,
            &[ka(1, 1, json!(["p", "q"])), kb(2, 2, json!(["p", "q"]))]
        ),
        vec![vec![1, 2], vec![1, 2]]
    );
}

#[test]
fn per_step_keys_follow_the_sequence_keys() {
    let q =
        r#"sequence by host [file where true] by file.name [process where true] by process.name"#;
    let f = |id, ms, host: &str, name: &str| {
        ev(
            id,
            ms,
            "file",
            json!({"host": host, "file": {"name": name}}),
        )
    };
    let p = |id, ms, host: &str, name: &str| {
        ev(
            id,
            ms,
            "process",
            json!({"host": host, "process": {"name": name}}),
        )
    };
    assert_eq!(
        run(q, &[f(1, 1, "h", "x"), p(2, 2, "h", "x")]),
        vec![vec![1, 2]]
    );
    assert!(run(q, &[f(1, 1, "h", "x"), p(2, 2, "h", "y")]).is_empty());
    assert!(run(q, &[f(1, 1, "h", "x"), p(2, 2, "g", "x")]).is_empty());
}

#[test]
fn missing_event_steps() {
    let m = |id, ms| ev(id, ms, "process", json!({"step": "m", "k": "x"}));
    let mid = r#"sequence by k [process where step == "a"] ![process where step == "m"] [process where step == "b"]"#;
    assert!(run(mid, &[a(1, 1), m(2, 2), b(3, 3)]).is_empty());
    assert_eq!(run(mid, &[m(1, 1), a(2, 2), b(3, 3)]), vec![vec![2, 3]]);
    assert_eq!(run(mid, &[a(1, 1), b(2, 2), m(3, 3)]), vec![vec![1, 2]]);
    // A later first step starts over after the missing event.
    assert_eq!(
        run(mid, &[a(1, 1), m(2, 2), a(3, 3), b(4, 4)]),
        vec![vec![3, 4]]
    );

    let trail = r#"sequence by k with maxspan=10ms [process where step == "a"] [process where step == "b"] ![process where step == "m"]"#;
    assert!(run(trail, &[a(1, 0), b(2, 2), m(3, 10)]).is_empty());
    assert_eq!(run(trail, &[a(1, 0), b(2, 2), m(3, 11)]), vec![vec![1, 2]]);
    assert_eq!(run(trail, &[a(1, 0), b(2, 2)]), vec![vec![1, 2]]);

    // Leading: the missing event must fit with the whole sequence within
    // maxspan (here m..b is 11 ms: no void; 10 ms: void).
    let lead = r#"sequence by k with maxspan=10ms ![process where step == "m"] [process where step == "a"] [process where step == "b"]"#;
    assert_eq!(run(lead, &[m(1, 0), a(2, 10), b(3, 11)]), vec![vec![2, 3]]);
    assert!(run(lead, &[m(1, 1), a(2, 10), b(3, 11)]).is_empty());
    // Leading and trailing: voided only when BOTH fit, the whole within
    // maxspan (Elasticsearch's leadingAndTrailingExcluded1/2, own events).
    let both = |span: &str| {
        format!(
            r#"sequence by k with maxspan={span} ![process where step == "m"] [process where step == "a"] ![process where step == "m"]"#
        )
    };
    let evs = [m(1, 0), a(2, 10_000), m(3, 20_000)];
    assert_eq!(run(&both("19s"), &evs), vec![vec![2]]);
    assert!(run(&both("21s"), &evs).is_empty());
    // With a leading and a trailing step, one of them found is not enough,
    // however close it is (Elasticsearch's doCheckMissingEvents).
    assert_eq!(
        run(&both("21s"), &[a(2, 10_000), m(3, 10_001)]),
        vec![vec![2]]
    );
    assert_eq!(
        run(&both("21s"), &[m(1, 9_999), a(2, 10_000)]),
        vec![vec![2]]
    );
    // Both found: it is the last leading to the first trailing that counts,
    // not the positive events (here 20 s apart, maxspan 21 s, though each
    // is 10 s from the step).
    let evs = [
        m(1, 0),
        m(2, 5_000),
        a(3, 10_000),
        m(4, 30_000),
        m(5, 26_000),
    ];
    assert!(run(&both("21s"), &evs).is_empty());
    let evs = [m(1, 0), a(3, 10_000), m(4, 30_000)];
    assert_eq!(run(&both("21s"), &evs), vec![vec![3]]);
    // Several missing steps: those with nothing in their window are left
    // out (Elasticsearch's multipleMissing7): one found is enough here.
    let n = |id, ms| ev(id, ms, "process", json!({"step": "n", "k": "x"}));
    let two = r#"sequence by k [process where step == "a"] ![process where step == "m"] [process where step == "b"] ![process where step == "n"] [process where step == "c"]"#;
    assert!(run(two, &[a(1, 1), m(2, 2), b(3, 3), c(4, 4)]).is_empty());
    assert!(run(two, &[a(1, 1), m(2, 2), b(3, 3), n(4, 4), c(5, 5)]).is_empty());
    assert_eq!(
        run(two, &[a(1, 1), b(3, 3), c(4, 4), n(5, 5)]),
        vec![vec![1, 3, 4]]
    );
    // Two missing steps between the same two steps: each is looked up on
    // its own, in no order, and any one found voids.
    let seq2 = r#"sequence by k with maxspan=1s [process where step == "a"] ![process where step == "m"] ![process where step == "n"] [process where step == "b"]"#;
    assert!(run(seq2, &[a(1, 1), m(2, 2), n(3, 3), b(4, 4)]).is_empty());
    assert!(run(seq2, &[a(1, 1), n(2, 2), m(3, 3), b(4, 4)]).is_empty());
    assert!(run(seq2, &[a(1, 1), n(2, 2), b(4, 4)]).is_empty());
    // So one event spoils both steps of `![..] with runs=2`.
    let runs2 = r#"sequence by k [process where step == "a"] ![process where step == "m"] with runs=2 [process where step == "b"]"#;
    assert!(run(runs2, &[a(1, 1), m(2, 2), b(3, 3)]).is_empty());
    // Between two steps, by millisecond timestamp, strictly: an event in
    // the same millisecond as a step does not void, whatever its order.
    assert_eq!(run(mid, &[a(1, 1), m(2, 1), b(3, 2)]), vec![vec![1, 3]]);
    assert_eq!(run(mid, &[a(1, 1), m(2, 2), b(3, 2)]), vec![vec![1, 3]]);
    // Leading: by millisecond, strictly before the first step.
    assert_eq!(run(lead, &[a(1, 5), m(2, 5), b(3, 6)]), vec![vec![1, 3]]);
    // A voided sequence still consumed its steps (Elasticsearch builds the
    // positive sequence first): [a1, b1] replaces the older [a0, b0].
    let mid3 = r#"sequence by k [process where step == "a"] ![process where step == "m"] [process where step == "b"] [process where step == "c"]"#;
    assert!(run(
        mid3,
        &[a(1, 1), b(2, 2), a(3, 3), m(4, 4), b(5, 5), c(6, 6)]
    )
    .is_empty());

    // Leading or trailing missing steps need maxspan.
    let e = parse_statement(
        r#"sequence [process where true] [process where true] ![process where true]"#,
    )
    .unwrap();
    let Statement::Sequence(q) = e else { panic!() };
    assert!(compile(&q).is_err());
}

#[test]
fn state_is_bounded_and_every_drop_counted() {
    let ka = |id, ms, k: &str| ev(id, ms, "process", json!({"step": "a", "k": k}));
    let kb = |id, ms, k: &str| ev(id, ms, "process", json!({"step": "b", "k": k}));
    // Cap 2: the third key evicts the oldest.
    let (got, stats) = run_cap(
        AB,
        &[
            ka(1, 1, "p"),
            ka(2, 2, "q"),
            ka(3, 3, "r"),
            kb(4, 4, "p"),
            kb(5, 5, "r"),
        ],
        2,
    );
    assert_eq!(got, vec![vec![3, 5]]);
    assert_eq!(stats.evicted, 1);
    assert_eq!(stats.peak_pending, 2);
    // A storm of distinct keys never holds more than the cap.
    let storm: Vec<Value> = (0..5000)
        .map(|i| ka(i, i as i64, &format!("k{i}")))
        .collect();
    let (_, stats) = run_cap(AB, &storm, 100);
    assert_eq!(stats.peak_pending, 100);
    assert_eq!(stats.evicted, 4900);
    assert_eq!(stats.pending, 100);
    // With maxspan, old partial sequences expire instead.
    let q = r#"sequence by k with maxspan=10ms [process where step == "a"] [process where step == "b"]"#;
    let (_, stats) = run_cap(q, &storm, 100);
    assert_eq!(stats.evicted, 0);
    assert!(stats.peak_pending <= 12, "{stats:?}");
    assert!(stats.expired >= 4980, "{stats:?}");
}

#[test]
fn grammar() {
    for q in [
        r#"sequence [a where true] [b where true]"#,
        r#"sequence by x [a where true] [b where true]"#,
        r#"sequence by x, y with maxspan=3s [a where true] by z [b where true] by w"#,
        r#"sequence with maxspan=100ms [a where true] [b where true] until [c where true]"#,
        r#"sequence by x [a where true] with runs=2 ![b where true] [c where true]"#,
        r#"sequence by ?x [any where true] [any where true]"#,
        r#"sequence with maxspan=1s [a where true] -[b where true] with runs=2 [c where true]"#,
        r#"sequence with maxspan = 5 m [a where true] [b where true]"#,
    ] {
        assert!(
            matches!(parse_statement(q), Ok(Statement::Sequence(_))),
            "{q}: {:?}",
            parse_statement(q)
        );
    }
    for q in [
        r#"sequence [a where true]"#,
        r#"sequence with maxspan=3 [a where true] [b where true]"#,
        r#"sequence with maxspan=3x [a where true] [b where true]"#,
        r#"sequence with maxspan=3s by x [a where true] [b where true]"#,
        r#"sequence by x [a where true] by y [b where true]"#,
        r#"sequence [a where true] [b where true] with runs=0"#,
        r#"sequence [a where true] [b where true] until ![c where true]"#,
        r#"sequence ![a where true] ![b where true]"#,
        r#"sequence [a where true [b where true]"#,
    ] {
        let e = parse_statement(q).unwrap_err();
        assert_eq!(e.kind, EqlErrorKind::Syntax, "{q}: {e}");
    }
    for q in [
        r#"sample by x [a where true] [b where true] | head 1"#,
        r#"sequence [a where true] [b where true] | head 1"#,
    ] {
        let e = parse_statement(q).unwrap_err();
        assert_eq!(e.kind, EqlErrorKind::Unsupported, "{q}: {e}");
    }
    // `3s` is still an invalid number in a condition.
    assert!(parse_statement("process where a == 3s").is_err());
    assert!(parse_statement("process where a == 3x").is_err());
}

fn write_rule(dir: &std::path::Path, query: &str) {
    std::fs::write(
        dir.join("seq.toml"),
        format!(
            "[metadata]\ncreation_date = \"2026/01/01\"\n[rule]\nname = \"seq\"\nrule_id = \"seq-1\"\ndescription = \"d\"\nseverity = \"high\"\nrisk_score = 73\nlanguage = \"eql\"\ntype = \"eql\"\nquery = '''\n{query}\n'''\n"
        ),
    )
    .unwrap();
}

/// A directory with one rule: curl then sh in a container within 5 s.
fn curl_then_sh_rule() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_rule(
        dir.path(),
        r#"sequence by container.id with maxspan=5s
  [process where process.name == "curl"]
  [process where process.name == "sh"]"#,
    );
    dir
}

fn replay(
    dir: &std::path::Path,
    input: &str,
) -> (Vec<Value>, sensor::service::replay::ReplayStats) {
    let rules = RuleSet::load_paths(&[dir.to_path_buf()]).unwrap().ruleset;
    let buf = Shared::default();
    let mut w = AlertWriter::new(Box::new(buf.clone()));
    let mut diag = Vec::new();
    let stats =
        sensor::service::replay::replay(input.as_bytes(), &rules, &mut w, &mut diag).unwrap();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        stats,
    )
}

#[test]
fn replay_writes_kibana_shaped_sequence_alerts_in_time_order() {
    let dir = curl_then_sh_rule();
    let line = |id: &str, t: &str, name: &str| {
        json!({"@timestamp": t, "event": {"id": id, "category": ["process"], "kind": "event"},
               "process": {"name": name}, "container": {"id": "c1"}, "host": {"name": "n"}})
        .to_string()
    };
    // Out of time order in the file.
    let input = [
        line("e2", "2026-01-01T00:00:01.000Z", "sh"),
        line("e1", "2026-01-01T00:00:00.000Z", "curl"),
        "not json".to_string(),
        line("e3", "2026-01-01T00:00:09.000Z", "sh"),
    ]
    .join("\n");
    let (alerts, stats) = replay(dir.path(), &input);
    assert_eq!(stats.sequences, 1);
    assert_eq!(stats.malformed, 1);
    assert_eq!(alerts.len(), 3, "{alerts:#?}");
    let shell = &alerts[0];
    let group = shell["kibana"]["alert"]["group"]["id"].as_str().unwrap();
    assert_eq!(group.len(), 32);
    assert!(shell["kibana"]["alert"]["building_block_type"].is_null());
    assert_eq!(shell["container"]["id"], "c1");
    assert_eq!(shell["host"]["name"], "n");
    assert!(shell["process"].is_null(), "names differ: not in the shell");
    assert_eq!(shell["@timestamp"], "2026-01-01T00:00:01.000Z");
    assert_eq!(
        shell["kibana"]["alert"]["original_time"],
        "2026-01-01T00:00:00.000Z"
    );
    assert_eq!(shell["kibana"]["alert"]["rule"]["rule_id"], "seq-1");
    assert_eq!(shell["event"]["kind"], "alert");
    assert_eq!(shell["kibana"]["alert"]["ancestors"][1]["id"], "e2");
    for (i, id) in ["e1", "e2"].iter().enumerate() {
        let b = &alerts[i + 1];
        assert_eq!(b["event"]["id"], *id);
        assert_eq!(b["kibana"]["alert"]["group"]["id"], group);
        assert_eq!(b["kibana"]["alert"]["group"]["index"], i);
        assert_eq!(b["kibana"]["alert"]["building_block_type"], "default");
        assert_eq!(b["kibana"]["alert"]["severity"], "high");
    }
    // Deterministic: the same input gives the same bytes.
    let (again, _) = replay(dir.path(), &input);
    assert_eq!(alerts, again);
}

#[test]
fn d4c_sequence_rules_load_and_fire_on_their_chains() {
    let rules = RuleSet::load_paths(&["builtin:d4c".into()])
        .unwrap()
        .ruleset;
    assert_eq!(rules.sequences().len(), 5);
    let proc_ev = |id: &str, ms: i64, name: &str, args: &[&str], action: &str| {
        json!({"@timestamp": ms, "event": {"id": id, "category": ["process"], "type": ["start"], "action": action},
               "process": {"name": name, "args": args, "parent": {"entity_id": "P1", "name": "bash"},
                           "executable": format!("/usr/bin/{name}")},
               "container": {"id": "c1"}, "user": {"id": "0"}, "host": {"os": {"type": "linux"}}})
        .to_string()
    };
    let input = [
        proc_ev("d1", 1000, "curl", &["curl", "http://x/p.sh"], "exec"),
        proc_ev("d2", 1500, "sh", &["sh"], "exec"),
    ]
    .join("\n");
    let buf = Shared::default();
    let mut w = AlertWriter::new(Box::new(buf.clone()));
    let stats =
        sensor::service::replay::replay(input.as_bytes(), &rules, &mut w, &mut Vec::new()).unwrap();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let names: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|a| a["kibana"]["alert"]["building_block_type"].is_null())
        .filter(|a| a["kibana"]["alert"]["group"]["id"].is_string())
        .map(|a| {
            a["kibana"]["alert"]["rule"]["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(stats.sequences, 1, "{text}");
    assert_eq!(
        names,
        vec!["Payload Execution via Shell Pipe Detected by Defend for Containers".to_owned()]
    );
    // The same steps 2 s apart (maxspan=1s): nothing.
    let late = [
        proc_ev("d1", 1000, "curl", &["curl", "http://x/p.sh"], "exec"),
        proc_ev("d2", 3000, "sh", &["sh"], "exec"),
    ]
    .join("\n");
    let mut w = AlertWriter::new(Box::new(Shared::default()));
    let stats =
        sensor::service::replay::replay(late.as_bytes(), &rules, &mut w, &mut Vec::new()).unwrap();
    assert_eq!(stats.sequences, 0);
}

#[test]
fn live_reorder_window_gives_replays_alerts() {
    let dir = curl_then_sh_rule();
    let rules = RuleSet::load_paths(&[dir.path().to_path_buf()])
        .unwrap()
        .ruleset;
    let e = |id: &str, t: &str, name: &str| {
        json!({"@timestamp": t, "event": {"id": id, "category": ["process"], "kind": "event"},
               "process": {"name": name}, "container": {"id": "c1"}})
    };
    // Arrival order: the shell (from another CPU) before the curl it follows.
    let arrivals = [
        e("e2", "2026-01-01T00:00:00.050000000Z", "sh"),
        e("e1", "2026-01-01T00:00:00.010000000Z", "curl"),
        e("x", "2026-01-01T00:00:00.070000000Z", "ls"),
    ];
    let live_buf = Shared::default();
    let mut w = AlertWriter::new(Box::new(live_buf.clone()));
    let mut live: sensor::rules::sequences::LiveSequences<Value> =
        sensor::rules::sequences::LiveSequences::new(&rules).unwrap();
    let mut emit = |rule: &sensor::rules::SequenceRule, events: &[&Value]| {
        w.write_sequence(events, &rule.meta).unwrap();
    };
    for ev in &arrivals {
        live.on_event(&rules, ev.clone(), &mut emit);
    }
    // Nothing released yet: the window holds 100 ms.
    assert_eq!(live.held(), 2);
    live.tick(&rules, 1_767_225_600_000 + 1_000, &mut emit);
    assert_eq!(live.held(), 0);
    w.flush().unwrap();
    let live_text = String::from_utf8(live_buf.0.lock().unwrap().clone()).unwrap();
    assert_eq!(live_text.lines().count(), 3, "{live_text}");
    assert_eq!(live.stats().completed, 1);
    // Replaying the events file (arrival order) gives the same bytes.
    let input: Vec<String> = arrivals.iter().map(|v| v.to_string()).collect();
    let buf = Shared::default();
    let mut w = AlertWriter::new(Box::new(buf.clone()));
    sensor::service::replay::replay(input.join("\n").as_bytes(), &rules, &mut w, &mut Vec::new())
        .unwrap();
    w.flush().unwrap();
    assert_eq!(
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap(),
        live_text
    );
}

/// Issue #21: one tenant's decoy first steps (10,100 of them, past the
/// rule's cap of 10,000) evict only that tenant's partial sequences: the
/// cradle another container started before the flood still completes.
/// Tenants are containers (`container.id`); the host is one tenant.
#[test]
fn a_tenant_flooding_first_steps_evicts_only_its_own() {
    let dir = tempfile::tempdir().unwrap();
    write_rule(
        dir.path(),
        r#"sequence by process.entity_id
  [process where process.name == "curl"]
  [process where process.name == "sh"]"#,
    );
    let line = |id: String, ms: u64, name: &str, entity: &str, container: &str| {
        json!({"@timestamp": ms, "event": {"id": id, "category": ["process"], "kind": "event"},
               "process": {"name": name, "entity_id": entity}, "container": {"id": container}})
        .to_string()
    };
    let mut input = vec![line("victim-1".into(), 1, "curl", "V", "victim")];
    for i in 0..10_100u64 {
        input.push(line(
            format!("decoy-{i}"),
            2 + i,
            "curl",
            &format!("D{i}"),
            "attacker",
        ));
    }
    input.push(line("victim-2".into(), 20_000, "sh", "V", "victim"));
    let (alerts, stats) = replay(dir.path(), &input.join("\n"));
    assert_eq!(stats.sequences, 1, "{stats:?}");
    let shell = alerts
        .iter()
        .find(|a| a["kibana"]["alert"]["building_block_type"].is_null())
        .unwrap();
    assert_eq!(shell["process"]["entity_id"], "V", "{shell:#}");

    // The same flood from the victim's own container evicts the victim's
    // oldest partial sequence: its own.
    let own: Vec<String> = input
        .iter()
        .map(|l| l.replace("\"attacker\"", "\"victim\""))
        .collect();
    let (alerts, stats) = replay(dir.path(), &own.join("\n"));
    assert_eq!(stats.sequences, 0, "{alerts:#?}");
}
