//! Evaluating an event that matches no rule allocates nothing: the indexed
//! single-event evaluation and the sequences' interest check, on the live
//! sensor's native event, counted by a global allocator. With
//! `SENSOR_ELASTIC_RULES` set, also with the whole catalogue (D4C, Linux,
//! cross-platform) loaded.
//!
//! One test only: the counter is process-wide, and a second test running in
//! parallel would pollute it.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sensor::ecs::{every_field_example, EcsEvent};
use sensor::rules::RuleSet;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// An exec of `name` (every other field as the example sets it), and a file
/// creation by it.
fn events(name: &str) -> [EcsEvent; 2] {
    let mut exec = every_field_example();
    exec.process.name = name.into();
    exec.process.executable = Some(format!("/usr/bin/{name}"));
    exec.process.args = vec![format!("/usr/bin/{name}"), "--version".into()];
    exec.file = None;
    exec.event.category = ["process"];
    exec.event.kind_type = ["start"];
    exec.event.action = "exec";
    let mut file = every_field_example();
    file.process.name = name.into();
    file.event.category = ["file"];
    file.event.kind_type = ["creation"];
    file.event.action = "creation";
    file.file = Some(sensor::ecs::FileFields::from_path(
        "/tmp/storm/usr/share/doc/base-files/copyright",
    ));
    [exec, file]
}

/// Allocations made evaluating fresh copies of `evs` (made beforehand),
/// after one warm-up evaluation; panics if a rule matches one.
fn allocations(rules: &RuleSet, evs: &[EcsEvent]) -> u64 {
    // The live path: single-event rules, then the one interest check of
    // the sequence and sample rules (which steps the event matches).
    let mut hits = Vec::new();
    let mut eval = |e: &EcsEvent| {
        rules.for_each_match(e, |r| panic!("{} matched", r.meta.rule_id));
        rules.index().step_hits(rules.sequences(), e, &mut hits);
        std::hint::black_box(hits.len());
    };
    // Copies made before any evaluation: an event keeps the JSON form a
    // rule made it build, and a copy of it would not build it again.
    let copies: Vec<EcsEvent> = (0..200).flat_map(|_| evs.iter().cloned()).collect();
    evs.iter().for_each(&mut eval);
    ALLOCATIONS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    copies.iter().for_each(&mut eval);
    COUNTING.store(false, Ordering::Relaxed);
    ALLOCATIONS.load(Ordering::Relaxed)
}

#[test]
fn evaluating_an_event_no_rule_matches_allocates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |id: &str, query: &str| {
        format!(
            "[metadata]\ncreation_date = \"2026/01/01\"\n[rule]\nname = \"{id}\"\nrule_id = \"{id}\"\ndescription = \"d\"\nseverity = \"low\"\nrisk_score = 21\nlanguage = \"eql\"\ntype = \"eql\"\nquery = '''\n{query}\n'''\n"
        )
    };
    for (id, query) in [
        (
            "by-name",
            r#"process where event.type == "start" and process.name in ("nc", "ncat")"#,
        ),
        (
            "by-type",
            r#"process where event.type == "start" and process.args like~ "*--nope*""#,
        ),
        (
            "by-path",
            r#"file where event.type == "creation" and file.path like "/etc/cron*""#,
        ),
        (
            "any",
            r#"any where process.name : "NCAT" or not process.pid > 0"#,
        ),
        (
            "seq",
            r#"sequence by process.entity_id [process where process.name == "nc"] [file where event.type == "creation"]"#,
        ),
    ] {
        std::fs::write(dir.path().join(format!("{id}.toml")), rule(id, query)).unwrap();
    }
    let rules = RuleSet::load_paths(&[dir.path().to_owned()])
        .unwrap()
        .ruleset;
    assert_eq!(rules.len(), 5);
    let evs = events("true");
    // The file event is of interest to the sequence: its interest check
    // evaluates a step, and the exec reaches the rules keyed on its type.
    assert!(rules.interested(&evs[1]));
    let mut ids = Vec::new();
    rules.index().single_event().candidates(&evs[0], &mut ids);
    assert_eq!(
        ids.len(),
        2,
        "the exec reaches the rule keyed on its type and the any rule"
    );
    assert_eq!(allocations(&rules, &evs), 0);
    assert!(!evs.iter().any(EcsEvent::json_built));

    let Some(elastic) = support::elastic_catalogue() else {
        return;
    };
    let all = RuleSet::load_paths(&[
        PathBuf::from("builtin:d4c"),
        elastic.join("linux"),
        elastic.join("cross-platform"),
    ])
    .unwrap()
    .ruleset;
    let evs = events("true");
    let n = allocations(&all, &evs);
    assert!(
        !evs.iter().any(EcsEvent::json_built),
        "an event built its JSON"
    );
    println!(
        "whole catalogue ({} rules): {n} allocations for 400 events",
        all.len()
    );
    assert_eq!(n, 0);
}
