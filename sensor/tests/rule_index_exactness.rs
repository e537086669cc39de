//! The rule index decides which rules an event is evaluated against, never a
//! verdict: indexed evaluation gives exactly the verdicts of evaluating every
//! rule. Proven here over random queries and events (a property test at the
//! query-index level, where the shapes the index reasons about — `or`,
//! `not`, `:`/`~`, wildcards, null, multi-valued and non-string values,
//! `any` — are generated on purpose), and over the real rule catalogues
//! with events built from the literals of the loaded queries, so that they
//! reach and match rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::Shared;

use std::collections::BTreeMap;
use std::path::PathBuf;

use proptest::prelude::*;
use sensor::eql::{compile_str, field_literals, CompiledQuery, JsonDocument, QueryIndex};
use sensor::output::alert::AlertWriter;
use sensor::rules::{RuleIndex, RuleSet};
use sensor::service::replay::{replay_with, Evaluation, ReplayStats};
use serde_json::{json, Value};

const FIELDS: &[&str] = &[
    "event.type",
    "event.action",
    "process.name",
    "process.args",
    "file.extension",
    "user.id",
];

const VALUES: &[&str] = &[
    "start", "Start", "exec", "bash", "BASH", "sh", "/bin/sh", "0", "1", "true", "", "é", "É", "so",
];

fn value_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(VALUES).prop_map(|v| format!("\"{v}\"")),
        prop::sample::select(&["0", "1", "true", "false", "null", "1.5"][..])
            .prop_map(String::from),
        prop::sample::select(&["\"*sh\"", "\"b?sh\"", "\"*\"", "\"st*\""][..])
            .prop_map(String::from),
    ]
}

fn atom() -> impl Strategy<Value = String> {
    let field = prop::sample::select(FIELDS);
    let op = prop::sample::select(
        &[
            "==", "!=", ":", "like", "like~", "in", "in~", "not in", "regex", ">=",
        ][..],
    );
    (field, op, proptest::collection::vec(value_lit(), 1..4)).prop_map(|(f, op, vs)| {
        if op.contains("in") || op.starts_with("like") || op == "regex" || op == ":" {
            if op == ":" || op.starts_with("like") || op == "regex" {
                // Patterns must be strings.
                let vs: Vec<String> = vs
                    .iter()
                    .map(|v| {
                        if v.starts_with('"') {
                            v.clone()
                        } else {
                            format!("\"{v}\"")
                        }
                    })
                    .collect();
                format!("{f} {op} ({})", vs.join(", "))
            } else {
                format!("{f} {op} ({})", vs.join(", "))
            }
        } else {
            format!("{f} {op} {}", vs[0])
        }
    })
}

fn condition() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        6 => atom(),
        1 => prop::sample::select(FIELDS).prop_map(|f| format!("{f} == null")),
        1 => prop::sample::select(FIELDS).prop_map(|f| format!("{f} != null")),
        1 => prop::sample::select(&["true", "false"][..]).prop_map(String::from),
        1 => prop::sample::select(FIELDS).prop_map(|f| format!("startsWith~({f}, \"B\")")),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 2..4)
                .prop_map(|v| format!("({})", v.join(" and "))),
            proptest::collection::vec(inner.clone(), 2..4)
                .prop_map(|v| format!("({})", v.join(" or "))),
            inner.prop_map(|x| format!("not ({x})")),
        ]
    })
}

fn query() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["any", "process", "file"][..]),
        condition(),
    )
        .prop_map(|(c, cond)| format!("{c} where {cond}"))
}

fn json_value() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        4 => prop::sample::select(VALUES).prop_map(|v| json!(v)),
        1 => prop::sample::select(&[0i64, 1, 2][..]).prop_map(|v| json!(v)),
        1 => any::<bool>().prop_map(|b| json!(b)),
        1 => Just(Value::Null),
    ];
    prop_oneof![
        3 => scalar.clone(),
        1 => proptest::collection::vec(scalar, 0..3).prop_map(Value::Array),
    ]
}

fn event() -> impl Strategy<Value = Value> {
    let category = prop_oneof![
        Just(json!("process")),
        Just(json!("file")),
        Just(json!(["process", "file"])),
        Just(json!(["process", "process"])),
        Just(json!("Process")),
        Just(json!(1)),
        Just(Value::Null),
    ];
    (
        category,
        proptest::collection::btree_map(prop::sample::select(FIELDS), json_value(), 0..6),
        any::<bool>(),
    )
        .prop_map(|(cat, fields, nested)| {
            let mut m = serde_json::Map::new();
            m.insert("event.category".into(), cat);
            for (k, v) in fields {
                if nested && k.starts_with("process.") {
                    // Nested objects read like dotted keys.
                    let leaf = k.trim_start_matches("process.").to_owned();
                    let p = m.entry("process").or_insert_with(|| json!({}));
                    p[leaf] = v;
                } else {
                    m.insert(k.to_owned(), v);
                }
            }
            Value::Object(m)
        })
}

/// Ids of the queries matching `doc`, by evaluating each.
fn exhaustive(queries: &[CompiledQuery], doc: &JsonDocument<'_>) -> Vec<u32> {
    (0..queries.len() as u32)
        .filter(|&i| queries[i as usize].matches(doc))
        .collect()
}

/// Ids of the queries matching `doc`, by evaluating the index's candidates.
fn indexed(ix: &QueryIndex, queries: &[CompiledQuery], doc: &JsonDocument<'_>) -> Vec<u32> {
    let mut ids = Vec::new();
    ix.candidates(doc, &mut ids);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "candidates ascending, once each"
    );
    ids.retain(|&i| queries[i as usize].matches(doc));
    ids
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn indexed_verdicts_equal_exhaustive_on_random_queries(
        sources in proptest::collection::vec(query(), 1..12),
        events in proptest::collection::vec(event(), 1..8),
    ) {
        let queries: Vec<CompiledQuery> =
            sources.iter().filter_map(|q| compile_str(q).ok()).collect();
        let ix = QueryIndex::build(&queries);
        for e in &events {
            let doc = JsonDocument::new(e);
            prop_assert_eq!(indexed(&ix, &queries, &doc), exhaustive(&queries, &doc), "event {}", e);
        }
    }
}

/// The index is not vacuous: queries with an exact atom are filed under it,
/// and an event without the atom's value is not a candidate.
#[test]
fn exact_atoms_are_indexed_and_exclude_other_events() {
    let queries: Vec<CompiledQuery> = [
        r#"process where event.type == "start" and process.name in ("bash", "sh")"#,
        r#"process where process.name : ("BASH", "zsh") or process.executable == "/bin/dash""#,
        r#"file where file.extension in~ ("SO") and not file.name like "*.tmp""#,
        r#"process where process.name like "*sh""#,
        r#"any where false"#,
        r#"any where container.id like "?*" and not process.name == "pause""#,
        r#"process where not process.name == "x""#,
    ]
    .iter()
    .map(|q| compile_str(q).unwrap())
    .collect();
    let ix = QueryIndex::build(&queries);
    let s = ix.stats();
    assert_eq!((s.keyed, s.always, s.never), (5, 1, 1));
    let candidates = |e: Value| {
        let mut ids = Vec::new();
        ix.candidates(&JsonDocument::new(&e), &mut ids);
        ids
    };
    let exec = |name: &str| json!({"event": {"category": "process", "type": "start"}, "process": {"name": name}});
    assert_eq!(candidates(exec("cat")), vec![3, 6]);
    assert_eq!(candidates(exec("bash")), vec![0, 1, 3, 6]);
    assert_eq!(candidates(exec("Bash")), vec![1, 3, 6]);
    assert_eq!(
        candidates(json!({"event": {"category": "process"}, "container": {"id": "c1"}})),
        vec![5, 6]
    );
    assert_eq!(
        candidates(json!({"event": {"category": ["file"]}, "file": {"extension": "so"}})),
        vec![2]
    );
    assert_eq!(
        candidates(json!({"event": {"category": "network"}})),
        Vec::<u32>::new()
    );
}

/// Prefix lists (`like "abc*"`, `:`, `startsWith`) are keys too.
#[test]
fn prefix_atoms_are_indexed() {
    let queries: Vec<CompiledQuery> = [
        r#"process where process.name : ("kworker*", "kthread*") and process.executable != null"#,
        r#"process where startsWith(process.executable, "/tmp/")"#,
        r#"process where process.name like ("python*", "node") or process.name == "ruby""#,
    ]
    .iter()
    .map(|q| compile_str(q).unwrap())
    .collect();
    let ix = QueryIndex::build(&queries);
    assert_eq!(ix.stats().keyed, 3);
    let candidates = |name: &str, exe: &str| {
        let e =
            json!({"event": {"category": "process"}, "process": {"name": name, "executable": exe}});
        let mut ids = Vec::new();
        ix.candidates(&JsonDocument::new(&e), &mut ids);
        ids
    };
    assert_eq!(candidates("true", "/usr/bin/true"), Vec::<u32>::new());
    assert_eq!(candidates("KWorker/0:1", "/usr/bin/x"), vec![0]);
    assert_eq!(candidates("kw", "/tmp/x"), vec![1]);
    assert_eq!(candidates("python3.11", "/tmp"), vec![2]);
    assert_eq!(candidates("Python3", "/TMP/x"), Vec::<u32>::new());
    assert_eq!(candidates("ruby", "/usr/bin/ruby"), vec![2]);
}

/// The catalogues: the built-in D4C pack and, when `SENSOR_ELASTIC_RULES`
/// names Elastic's rules, their Linux and cross-platform directories.
fn catalogue_paths() -> Option<Vec<PathBuf>> {
    let dir = support::elastic_catalogue()?;
    Some(vec![
        PathBuf::from("builtin:d4c"),
        dir.join("linux"),
        dir.join("cross-platform"),
    ])
}

/// A small deterministic generator (xorshift64*), so the event stream is the
/// same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A concrete value a wildcard pattern matches (or, by chance, nearly).
fn instantiate(pattern: &str, rng: &mut Rng) -> String {
    let mut s = String::new();
    for c in pattern.chars() {
        match c {
            '*' => s.push_str(["", "a", "/", "x/y", ".sh"][rng.below(5)]),
            '?' => s.push('q'),
            c => s.push(c),
        }
    }
    match rng.below(8) {
        0 => s.to_uppercase(),
        1 => s.to_lowercase(),
        _ => s,
    }
}

/// An event drawn from the literals of one or two rules' queries.
/// One query's category and the `(field, literal)` pairs it compares.
type LiteralPool = (Option<String>, Vec<(String, String)>);

fn catalogue_event(pools: &[LiteralPool], rng: &mut Rng) -> Value {
    let (category, lits) = &pools[rng.below(pools.len())];
    let mut fields: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let category = category
        .clone()
        .unwrap_or_else(|| ["process", "file", "network"][rng.below(3)].to_owned());
    fields
        .entry("event.category".into())
        .or_default()
        .push(json!(category));
    for (f, v) in lits {
        if rng.chance(70) {
            fields
                .entry(f.clone())
                .or_default()
                .push(json!(instantiate(v, rng)));
        }
    }
    // Values from another rule: events reach rules they do not match.
    let (_, other) = &pools[rng.below(pools.len())];
    for (f, v) in other {
        if rng.chance(20) {
            fields
                .entry(f.clone())
                .or_default()
                .push(json!(instantiate(v, rng)));
        }
    }
    let mut m = serde_json::Map::new();
    for (k, mut vs) in fields {
        let v = if vs.len() == 1 && rng.chance(80) {
            vs.pop().unwrap_or(Value::Null)
        } else {
            Value::Array(vs)
        };
        m.insert(k, v);
    }
    Value::Object(m)
}

/// Each loaded query's category and literals (sequence steps included).
fn literal_pools(rs: &RuleSet) -> Vec<LiteralPool> {
    let mut pools: Vec<LiteralPool> = rs
        .rules()
        .iter()
        .map(|r| {
            (
                r.query.category().map(str::to_owned),
                field_literals(&r.query),
            )
        })
        .collect();
    for s in rs.sequences() {
        for q in s.query.step_queries() {
            pools.push((q.category().map(str::to_owned), field_literals(q)));
        }
    }
    pools
}

#[test]
fn indexed_verdicts_equal_exhaustive_on_the_real_catalogues() {
    let Some(paths) = catalogue_paths() else {
        return;
    };
    let report = RuleSet::load_paths(&paths).unwrap();
    let rs = &report.ruleset;
    assert!(rs.rules().len() > 100, "{} rules loaded", rs.rules().len());
    let mut pools: Vec<LiteralPool> = rs
        .rules()
        .iter()
        .map(|r| {
            (
                r.query.category().map(str::to_owned),
                field_literals(&r.query),
            )
        })
        .collect();
    for s in rs.sequences() {
        for q in s.query.step_queries() {
            pools.push((q.category().map(str::to_owned), field_literals(q)));
        }
    }
    let mut rng = Rng(0x5eed_1dea);
    let (mut events_matching, mut matched_rules, mut interesting) = (0, BTreeMap::new(), 0);
    let mut candidates_total = 0usize;
    const EVENTS: usize = 40_000;
    for _ in 0..EVENTS {
        let ev = catalogue_event(&pools, &mut rng);
        let doc = JsonDocument::new(&ev);
        let got: Vec<&str> = rs.matching(&doc).map(|r| r.meta.rule_id.as_str()).collect();
        let want: Vec<&str> = rs
            .matching_exhaustive(&doc)
            .map(|r| r.meta.rule_id.as_str())
            .collect();
        assert_eq!(got, want, "event {ev}");
        let seq = rs.interested(&doc);
        assert_eq!(
            seq,
            RuleIndex::interested_exhaustive(rs.sequences(), &doc),
            "event {ev}"
        );
        if !got.is_empty() {
            events_matching += 1;
        }
        for id in got {
            *matched_rules.entry(id.to_owned()).or_insert(0u32) += 1;
        }
        interesting += usize::from(seq);
        let mut ids = Vec::new();
        rs.index().single_event().candidates(&doc, &mut ids);
        candidates_total += ids.len();
    }
    println!(
        "{} rules, {} sequences; {EVENTS} events: {events_matching} match a rule, {} distinct rules matched, {interesting} of interest to a sequence, {:.1} candidates per event",
        rs.rules().len(),
        rs.sequences().len(),
        matched_rules.len(),
        candidates_total as f64 / EVENTS as f64
    );
    // The events reach and match rules: the comparison is not of two empty lists.
    assert!(
        events_matching > EVENTS / 20,
        "{events_matching} events matched a rule"
    );
    assert!(
        matched_rules.len() > rs.rules().len() / 3,
        "{} distinct rules matched",
        matched_rules.len()
    );
    assert!(
        interesting > EVENTS / 20,
        "{interesting} events of interest to a sequence"
    );
}

fn replay_bytes(input: &[u8], rules: &RuleSet, evaluation: Evaluation) -> (ReplayStats, Vec<u8>) {
    let buf = Shared::default();
    let mut w = AlertWriter::new(Box::new(buf.clone()));
    let stats = replay_with(input, rules, &mut w, &mut std::io::sink(), evaluation).unwrap();
    drop(w);
    let out = buf.0.lock().unwrap().clone();
    (stats, out)
}

/// A stream as the sensor records it: the seed rule's corpus, then events
/// drawn from the loaded rules' literals, one second apart, sharing a few
/// values of the fields sequences join on, so sequences complete too.
fn stream(rs: &RuleSet, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let corpus = include_str!("golden/seed_rule_corpus.jsonl");
    for line in corpus.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        serde_json::to_writer(&mut out, &v["event"]).unwrap();
        out.push(b'\n');
    }
    let pools = literal_pools(rs);
    let mut rng = Rng(0xa1e7_5eed);
    const JOIN_FIELDS: &[&str] = &[
        "process.entity_id",
        "process.parent.entity_id",
        "process.pid",
        "host.id",
        "user.id",
        "user.name",
        "container.id",
        "process.group_leader.entity_id",
        "process.session_leader.entity_id",
    ];
    for i in 0..n {
        let mut ev = catalogue_event(&pools, &mut rng);
        let m = ev.as_object_mut().unwrap();
        for f in JOIN_FIELDS {
            if !m.contains_key(*f) {
                m.insert((*f).to_owned(), json!(format!("k{}", rng.below(3))));
            }
        }
        let (mins, secs) = (i / 60 % 60, i % 60);
        m.insert(
            "@timestamp".into(),
            json!(format!(
                "2026-03-05T{:02}:{mins:02}:{secs:02}.000Z",
                10 + i / 3600
            )),
        );
        serde_json::to_writer(&mut out, &ev).unwrap();
        out.push(b'\n');
    }
    out
}

/// Replaying a stream through the indexed and the exhaustive evaluation
/// writes byte-identical alerts (single-event and sequence alike).
#[test]
fn replay_alerts_are_byte_identical_indexed_and_exhaustive() {
    let mut paths = vec![PathBuf::from("builtin:seed"), PathBuf::from("builtin:d4c")];
    if let Some(dir) = support::elastic_catalogue() {
        paths.extend([dir.join("linux"), dir.join("cross-platform")]);
    }
    let rs = RuleSet::load_paths(&paths).unwrap().ruleset;
    let input = stream(&rs, 20_000);
    let (indexed_stats, indexed) = replay_bytes(&input, &rs, Evaluation::Indexed);
    let (exhaustive_stats, exhaustive) = replay_bytes(&input, &rs, Evaluation::Exhaustive);
    println!(
        "{} rules: {} events, {} alerts ({} sequences), {} bytes",
        rs.len(),
        indexed_stats.events,
        indexed_stats.alerts,
        indexed_stats.sequences,
        indexed.len()
    );
    assert_eq!(indexed_stats.to_string(), exhaustive_stats.to_string());
    assert!(indexed == exhaustive, "the alerts differ");
    assert!(
        indexed_stats.alerts > 100,
        "{} alerts",
        indexed_stats.alerts
    );
    assert!(indexed_stats.sequences > 0, "no sequence completed");
}
