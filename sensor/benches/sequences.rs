//! Cost per event of the 5 Defend-for-Containers sequence rules on the live
//! path (`LiveSequences`: interest check, reorder window, engines), and the
//! state they hold, under storms built to open partial sequences.
//!
//! `cargo bench -p sensor --bench sequences` prints one line per storm and
//! path:
//!
//! * `typed`: what the live sensor does now: the native event
//!   (`EcsEvent`) is checked and, when a step needs it, moved into the
//!   reorder window and evaluated again as it is; its JSON is built only
//!   when a sequence completes (or when a rule reads a field the native
//!   event does not model, such as `file.path`).
//! * `json copy`: what it did before (rebuilt here from the same public
//!   parts): the interest check on the native event, then a copy of its
//!   JSON held in the window and every step evaluated on the JSON;
//!   `json copy, JSON already built`: the same when a single-event rule had
//!   already built the event's JSON (a rule reading a field the native
//!   event does not model), so only the copy and the JSON evaluation remain.
//!
//! Events are built before the clock starts; each path gets its own fresh
//! copies (so a JSON one path built is not reused by the other).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use sensor::ecs::{
    Action, ContainerFields, EcsEvent, FileFields, HostFields, HostOs, ParentFields, ProcessFields,
};
use sensor::eql::sequence::Ordinal;
use sensor::rules::sequences::{
    interested, Correlation, LiveSequences, ReorderWindow, RunMode, SequenceRunner,
    LIVE_REORDER_MAX_EVENTS, LIVE_REORDER_WINDOW_MS,
};
use sensor::rules::RuleSet;
use serde_json::Value;

const T0_S: u64 = 1_767_225_600;

fn at(us: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(T0_S) + Duration::from_micros(us)
}

fn host() -> HostFields {
    HostFields {
        name: "node-1".into(),
        id: Some("ce7f14d29d5242d896f01234567890ab".into()),
        os: HostOs { os_type: "linux" },
    }
}

fn container(ev: &mut EcsEvent) {
    ev.container = Some(ContainerFields {
        id: "3f4e1c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f".into(),
        runtime: Some("containerd"),
        ..ContainerFields::default()
    });
}

fn exec(i: u64, name: &str, args: &[&str], parent: &str, us: u64) -> EcsEvent {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let process = ProcessFields {
        pid: 1000 + (i % 30_000) as u32,
        name: name.into(),
        executable: Some(format!("/usr/bin/{name}")),
        args_count: args.len() as u32,
        command_line: args.join(" "),
        args,
        interactive: Some(false),
        entity_id: Some(format!("E{i}")),
        working_directory: Some("/app".into()),
        parent: Some(ParentFields {
            pid: 900,
            name: Some("bash".into()),
            executable: Some("/usr/bin/bash".into()),
            entity_id: Some(parent.into()),
            ..ParentFields::default()
        }),
        ..ProcessFields::default()
    };
    let mut ev = EcsEvent::new(Action::Exec, at(us), format!("e{i}"), process, host(), 0, 0);
    container(&mut ev);
    ev
}

fn file(i: u64, path: &str, user: u32, us: u64) -> EcsEvent {
    let process = ProcessFields {
        pid: 1000 + (i % 30_000) as u32,
        name: "curl".into(),
        executable: Some("/usr/bin/curl".into()),
        args_count: 3,
        command_line: format!("curl -o {path}"),
        args: vec!["curl".into(), "-o".into(), path.into()],
        entity_id: Some(format!("E{i}")),
        ..ProcessFields::default()
    };
    let mut ev = EcsEvent::new(
        Action::FileCreation,
        at(us),
        format!("f{i}"),
        process,
        host(),
        user,
        user,
    );
    ev.file = Some(FileFields::from_path(path));
    container(&mut ev);
    ev
}

struct Figures {
    ns_per_event: f64,
    sequences: u64,
    peak_pending: u64,
    peak_bytes: usize,
    evicted: u64,
    peak_held: usize,
}

/// The live path as it is.
fn typed(rules: &RuleSet, events: Vec<EcsEvent>) -> Figures {
    let n = events.len();
    let mut live: LiveSequences<EcsEvent> = LiveSequences::new(rules).unwrap();
    let (mut peak_held, mut peak_bytes, mut sequences) = (0usize, 0usize, 0u64);
    let start = Instant::now();
    for (i, ev) in events.into_iter().enumerate() {
        live.on_event(rules, ev, &mut |_, _| sequences += 1);
        if i % 1024 == 0 {
            peak_bytes = peak_bytes.max(live.approx_bytes());
            peak_held = peak_held.max(live.held());
        }
    }
    live.release(rules, true, &mut |_, _| sequences += 1);
    let took = start.elapsed();
    let st = live.stats();
    Figures {
        ns_per_event: took.as_nanos() as f64 / n as f64,
        sequences,
        peak_pending: st.peak_pending,
        peak_bytes: peak_bytes.max(live.approx_bytes()),
        evicted: st.evicted,
        peak_held,
    }
}

/// The live path before: a JSON copy of every event a step needs, every
/// step evaluated on that JSON.
fn json_copy(rules: &RuleSet, events: Vec<EcsEvent>) -> Figures {
    let n = events.len();
    let mut runner: SequenceRunner<Value> = SequenceRunner::with_default_cap(rules, RunMode::Live);
    let mut window: ReorderWindow<Rc<Value>> =
        ReorderWindow::new(LIVE_REORDER_WINDOW_MS, LIVE_REORDER_MAX_EVENTS);
    let (mut peak_held, mut peak_bytes, mut sequences) = (0usize, 0usize, 0u64);
    let start = Instant::now();
    for (i, ev) in events.into_iter().enumerate() {
        let wanted = interested(rules, &ev);
        if let Some(ord) = Ordinal::of(&ev, i as u64 + 1) {
            if wanted {
                window.push(ord, Rc::new(ev.to_json().clone()));
            } else {
                window.observe(ord);
            }
        }
        window.release(false, &mut |ord, ev| {
            runner.process(rules, &ev, ord, &mut |_, _| sequences += 1)
        });
        if let Some(w) = window.watermark() {
            runner.advance(rules, w, &mut |_, _| sequences += 1);
        }
        if i % 1024 == 0 {
            peak_bytes = peak_bytes.max(runner.approx_bytes());
            peak_held = peak_held.max(window.len());
        }
    }
    window.release(true, &mut |ord, ev| {
        runner.process(rules, &ev, ord, &mut |_, _| sequences += 1)
    });
    let took = start.elapsed();
    let st = runner.stats();
    Figures {
        ns_per_event: took.as_nanos() as f64 / n as f64,
        sequences,
        peak_pending: st.peak_pending,
        peak_bytes: peak_bytes.max(runner.approx_bytes()),
        evicted: st.evicted,
        peak_held,
    }
}

/// Rounds per storm and path; the paths alternate (order reversed on odd
/// rounds) and the fastest round of each is reported, so a busy shared
/// machine inflates neither path more than the other.
const ROUNDS: usize = 3;

/// One way of running the live sequence path over a storm.
type Path = fn(&RuleSet, Vec<EcsEvent>) -> Figures;

fn storm(rules: &RuleSet, name: &str, make: &dyn Fn() -> Vec<EcsEvent>) {
    let n = make().len();
    let paths: [(&str, Path); 3] = [
        ("typed", typed),
        ("json copy", json_copy),
        ("json copy, JSON already built", json_copy),
    ];
    let mut best: [Option<Figures>; 3] = [None, None, None];
    for round in 0..ROUNDS {
        for k in 0..3 {
            let p = if round % 2 == 0 { k } else { 2 - k };
            let events = make();
            if p == 2 {
                // As when a single-event rule already read a field the
                // native event does not model: the copy is all that is left.
                for ev in &events {
                    let _ = ev.to_json();
                }
            }
            let r = (paths[p].1)(rules, events);
            if best[p]
                .as_ref()
                .is_none_or(|b| r.ns_per_event < b.ns_per_event)
            {
                best[p] = Some(r);
            }
        }
    }
    for (p, r) in best.iter().enumerate() {
        let Some(r) = r else { continue };
        println!(
            "{name} [{}]: {n} events, {:.0} ns/event (best of {ROUNDS}), {} sequences, peak {} partial sequences (~{} KiB state, ~{} B each), {} evicted, peak {} events held in the reorder window",
            paths[p].0,
            r.ns_per_event,
            r.sequences,
            r.peak_pending,
            r.peak_bytes / 1024,
            (r.peak_bytes as u64).checked_div(r.peak_pending).unwrap_or(0),
            r.evicted,
            r.peak_held
        );
    }
}

/// The whole catalogue (D4C + Linux + cross-platform, when
/// `SENSOR_ELASTIC_RULES` names a detection-rules `rules/` directory) under
/// an exec storm of the host's own processes that no rule is after
/// (`/usr/bin/true` from bash, new pids): the live sequence path's cost per
/// exec once every sequence and sample rule is loaded.
fn whole_catalogue() {
    let Some(dir) = std::env::var_os("SENSOR_ELASTIC_RULES").map(std::path::PathBuf::from) else {
        println!("SENSOR_ELASTIC_RULES is not set: the whole-catalogue storm is left out");
        return;
    };
    let rules = RuleSet::load_paths(&[
        "builtin:d4c".into(),
        dir.join("linux"),
        dir.join("cross-platform"),
    ])
    .unwrap()
    .ruleset;
    let n = 100_000u64;
    let host_execs = || -> Vec<EcsEvent> {
        (0..n)
            .map(|i| {
                let mut ev = exec(i, "true", &["/usr/bin/true"], "P", i * 10);
                ev.container = None;
                ev
            })
            .collect()
    };
    let events = host_execs();
    let interested_rules: Vec<&str> = rules
        .sequences()
        .iter()
        .filter(|r| r.query.interested(&events[0]))
        .map(|r| r.meta.name.as_str())
        .collect();
    println!(
        "whole catalogue: {} sequence and sample rules; an exec of /usr/bin/true interests {}: {:?}",
        rules.sequences().len(),
        interested_rules.len(),
        interested_rules
    );
    for r in rules.sequences() {
        for (k, q) in r.query.step_queries().enumerate() {
            let ev = events[0].clone();
            let m = q.matches(&ev);
            if ev.json_built() {
                println!(
                    "  step {k} of {:?} builds the JSON (matches: {m})",
                    r.meta.name
                );
            }
        }
    }
    for r in rules.rules() {
        let ev = events[0].clone();
        let m = r.matches(&ev);
        if ev.json_built() {
            println!("  rule {:?} builds the JSON (matches: {m})", r.meta.name);
        }
    }
    let mut ids = Vec::new();
    rules
        .index()
        .single_event()
        .candidates(&events[0], &mut ids);
    let single = ids.len();
    let mut hits = Vec::new();
    rules
        .index()
        .step_hits(rules.sequences(), &events[0], &mut hits);
    println!(
        "  candidates for that exec: {single} of {} single-event rules; steps matched: {}",
        rules.rules().len(),
        hits.len()
    );
    let mut hits = Vec::new();
    let (mut k, start) = (0usize, Instant::now());
    for ev in &events {
        rules.index().step_hits(rules.sequences(), ev, &mut hits);
        k += hits.len();
    }
    println!(
        "whole catalogue, interest check only: {:.0} ns/event ({k} step hits)",
        start.elapsed().as_nanos() as f64 / events.len() as f64
    );
    let start = Instant::now();
    for ev in &events {
        k += rules.matching(ev).count();
    }
    println!(
        "whole catalogue, the {} single-event rules: {:.0} ns/event ({k})",
        rules.rules().len(),
        start.elapsed().as_nanos() as f64 / events.len() as f64
    );
    drop(events);
    let mut best: Option<Figures> = None;
    for _ in 0..ROUNDS {
        let r = typed(&rules, host_execs());
        if best
            .as_ref()
            .is_none_or(|b| r.ns_per_event < b.ns_per_event)
        {
            best = Some(r);
        }
    }
    if let Some(r) = best {
        println!(
            "whole catalogue, host exec storm [typed]: {n} events, {:.0} ns/event (best of {ROUNDS}), {} sequences, peak {} partial sequences, {} evicted, peak {} events held",
            r.ns_per_event, r.sequences, r.peak_pending, r.evicted, r.peak_held
        );
    }
}

fn main() {
    whole_catalogue();
    if std::env::var_os("SEQUENCES_BENCH_WHOLE_ONLY").is_some() {
        return;
    }
    let rules = RuleSet::load_paths(&["builtin:d4c".into()])
        .unwrap()
        .ruleset;
    assert_eq!(rules.sequences().len(), 5);
    let n = 100_000u64;
    // `ls -l` from bash in a container, 10 µs apart: no step matches, but
    // two rules have a step matching any exec in a container (held).
    let quiet = || -> Vec<EcsEvent> {
        (0..n)
            .map(|i| exec(i, "ls", &["ls", "-l"], "P", i * 10))
            .collect()
    };
    let events = quiet();
    let start = Instant::now();
    let mut k = 0;
    for ev in &events {
        k += usize::from(interested(&rules, ev));
    }
    println!(
        "interest check only (native event): {:.0} ns/event ({k} interested)",
        start.elapsed().as_nanos() as f64 / events.len() as f64
    );
    let start = Instant::now();
    for ev in &events {
        k += usize::from(rules.matching(ev).count() > 0);
    }
    println!(
        "the 43 single-event rules, same events: {:.0} ns/event ({k})",
        start.elapsed().as_nanos() as f64 / events.len() as f64
    );
    drop(events);
    storm(&rules, "exec storm, no step matches", &quiet);
    // curl from a new parent every 10 µs: each opens a partial sequence of
    // the payload-piped-to-shell rule (maxspan 1 s): ~100k would be open.
    storm(&rules, "exec storm, every exec opens a sequence", &|| {
        (0..n)
            .map(|i| exec(i, "curl", &["curl", "http://x"], &format!("P{i}"), i * 10))
            .collect()
    });
    // curl then sh from the same parent: every pair completes.
    storm(&rules, "exec storm, every pair completes", &|| {
        (0..n)
            .map(|i| {
                let p = format!("P{}", i / 2);
                if i % 2 == 0 {
                    exec(i, "curl", &["curl", "http://x"], &p, i * 10)
                } else {
                    exec(i, "sh", &["sh"], &p, i * 10)
                }
            })
            .collect()
    });
    // Files created in /tmp by curl, a new name and user every 10 µs: opens
    // partial sequences in the cradle and file-then-exec rules.
    let files = || -> Vec<EcsEvent> {
        (0..n)
            .map(|i| file(i, &format!("/tmp/x{i}"), (i % 50_000) as u32, i * 10))
            .collect()
    };
    // Which file events end up carrying their JSON once every rule (the
    // single-event ones and the sequence steps) has looked at them: a
    // held event keeps it for as long as it is held.
    let events = files();
    let (mut matched, mut steps) = (0, 0);
    for ev in &events {
        matched += rules.matching(ev).count();
        for r in rules.sequences() {
            if let Correlation::Sequence(q) = &r.query {
                steps += q.matching_steps(ev);
            }
        }
    }
    let built = events.iter().filter(|e| e.json_built()).count();
    println!(
        "file storm events carrying their JSON after every rule looked at them: {built} of {} ({matched} single-event matches, {steps} sequence step matches)",
        events.len()
    );
    drop(events);
    storm(&rules, "file storm, every file opens sequences", &files);
    // `ls /var/lib/kubelet/pods/..` as a new user every 10 µs: every exec
    // opens a partial sequence in the kubelet rule (runs=5: one key's
    // partial sequences wait at 4 steps) besides the any-exec steps.
    storm(
        &rules,
        "exec storm, kubelet discovery by new users",
        &|| {
            (0..n)
                .map(|i| {
                    let mut ev = exec(i, "ls", &["ls", "/var/lib/kubelet/pods/x"], "P", i * 10);
                    ev.user.id = (i % 50_000).to_string();
                    ev
                })
                .collect()
        },
    );
}
