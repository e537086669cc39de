//! Cost per event of the 5 Defend-for-Containers sequence rules on the live
//! path (`LiveSequences`: interest check, reorder window, engines), and the
//! state they hold, under storms built to open partial sequences.
//!
//! `cargo bench -p sensor --bench sequences` prints one line per storm.
//! Events are ECS JSON documents (the native event answers field lookups
//! with a `match`, so the live cost of the interest check is lower).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use sensor::eql::JsonDocument;
use sensor::rules::sequences::LiveSequences;
use sensor::rules::RuleSet;
use serde_json::{json, Value};

const T0: i64 = 1_767_225_600_000;

fn exec(i: u64, name: &str, args: &[&str], parent: &str, us: i64) -> Value {
    json!({"@timestamp": format!("{}", T0 + us / 1000), "event": {"id": format!("e{i}"), "category": ["process"],
           "type": ["start"], "action": "exec", "kind": "event"},
           "process": {"name": name, "args": args, "executable": format!("/usr/bin/{name}"),
                       "parent": {"entity_id": parent, "name": "bash"}},
           "container": {"id": "c1"}, "user": {"id": "0"}, "host": {"os": {"type": "linux"}}})
}

fn file(i: u64, path: &str, user: &str, us: i64) -> Value {
    let name = path.rsplit('/').next().unwrap_or(path);
    json!({"@timestamp": T0 + us / 1000, "event": {"id": format!("f{i}"), "category": ["file"],
           "type": ["creation"], "action": "creation", "kind": "event"},
           "file": {"path": path, "name": name},
           "process": {"name": "curl", "args": ["curl", "-o", path]},
           "container": {"id": "c1"}, "user": {"id": user}, "host": {"os": {"type": "linux"}}})
}

fn storm(rules: &RuleSet, name: &str, events: &[Value]) {
    let mut live = LiveSequences::new(rules).unwrap();
    let mut peak_held = 0usize;
    let mut alerts = 0u64;
    let mut peak_bytes = 0usize;
    let start = Instant::now();
    for (i, ev) in events.iter().enumerate() {
        live.on_event(
            rules,
            &JsonDocument::new(ev),
            &|| ev.clone(),
            &mut |_, _| alerts += 1,
        );
        if i % 1024 == 0 {
            peak_bytes = peak_bytes.max(live.approx_bytes());
            peak_held = peak_held.max(live.held());
        }
    }
    live.release(rules, true, &mut |_, _| alerts += 1);
    let took = start.elapsed();
    peak_bytes = peak_bytes.max(live.approx_bytes());
    let st = live.stats();
    println!(
        "{name}: {} events, {:.0} ns/event, {} sequences, peak {} partial sequences (~{} KiB state, ~{} B each), {} evicted, {} expired, {} rejected by maxspan, peak {} events held in the reorder window",
        events.len(),
        took.as_nanos() as f64 / events.len() as f64,
        alerts,
        st.peak_pending,
        peak_bytes / 1024,
        (peak_bytes as u64).checked_div(st.peak_pending).unwrap_or(0),
        st.evicted,
        st.expired,
        st.rejected_maxspan,
        peak_held
    );
}

fn main() {
    let dir = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/rules/elastic/cloud_defend"
    ));
    let rules = RuleSet::load_paths(&[dir.to_path_buf()]).unwrap().ruleset;
    assert_eq!(rules.sequences().len(), 5);
    let n = 200_000u64;
    // Execs no sequence step matches: the interest check only.
    let quiet: Vec<Value> = (0..n)
        .map(|i| exec(i, "ls", &["ls", "-l"], "P", i as i64 * 10))
        .collect();
    let start = Instant::now();
    let mut k = 0;
    for ev in &quiet {
        k += usize::from(sensor::rules::sequences::SequenceRunner::interested(
            &rules,
            &JsonDocument::new(ev),
        ));
    }
    println!(
        "interest check only: {:.0} ns/event ({k})",
        start.elapsed().as_nanos() as f64 / quiet.len() as f64
    );
    let start = Instant::now();
    for ev in &quiet {
        k += usize::from(rules.matching(&JsonDocument::new(ev)).count() > 0);
    }
    println!(
        "the 43 single-event rules, same events: {:.0} ns/event ({k})",
        start.elapsed().as_nanos() as f64 / quiet.len() as f64
    );
    storm(&rules, "exec storm, no step matches", &quiet);
    // curl from a new parent every 10 µs: each opens a partial sequence of
    // the payload-piped-to-shell rule (maxspan 1s): ~100k would be open.
    let curls: Vec<Value> = (0..n)
        .map(|i| {
            exec(
                i,
                "curl",
                &["curl", "http://x"],
                &format!("P{i}"),
                i as i64 * 10,
            )
        })
        .collect();
    storm(&rules, "exec storm, every exec opens a sequence", &curls);
    // curl then sh from the same parent: every pair completes.
    let pairs: Vec<Value> = (0..n)
        .map(|i| {
            let p = format!("P{}", i / 2);
            if i % 2 == 0 {
                exec(i, "curl", &["curl", "http://x"], &p, i as i64 * 10)
            } else {
                exec(i, "sh", &["sh"], &p, i as i64 * 10)
            }
        })
        .collect();
    storm(&rules, "exec storm, every pair completes", &pairs);
    // Files created in /tmp by curl, a new name and user every 10 µs: opens
    // partial sequences in the cradle and file-then-exec rules.
    let files: Vec<Value> = (0..n)
        .map(|i| {
            file(
                i,
                &format!("/tmp/x{i}"),
                &format!("{}", i % 50_000),
                i as i64 * 10,
            )
        })
        .collect();
    storm(&rules, "file storm, every file opens sequences", &files);
}
