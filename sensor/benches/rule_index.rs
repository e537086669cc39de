//! Per-event rule evaluation with the rule index against evaluating every
//! rule, for the rule sets users load: the seed rule, D4C (`builtin:d4c`),
//! and D4C + Elastic's Linux and cross-platform catalogues (when
//! `SENSOR_ELASTIC_RULES` names them). Events are the live sensor's native
//! ones: an exec of `/usr/bin/true` from bash and a file creation by `tar`
//! (neither matches a rule: the common case), each evaluated as the live
//! loop does (single-event rules, then the sequences' interest check).
//!
//! `cargo bench -p sensor --bench rule_index`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use sensor::ecs::{every_field_example, EcsEvent, FileFields};
use sensor::rules::{RuleIndex, RuleSet};

fn exec_event() -> EcsEvent {
    let mut e = every_field_example();
    e.event.category = ["process"];
    e.event.kind_type = ["start"];
    e.event.action = "exec";
    e.process.name = "true".into();
    e.process.executable = Some("/usr/bin/true".into());
    e.process.args = vec!["/usr/bin/true".into()];
    e.process.command_line = "/usr/bin/true".into();
    e.container = None;
    e.orchestrator = None;
    e.file = None;
    e
}

fn file_event() -> EcsEvent {
    let mut e = exec_event();
    e.event.category = ["file"];
    e.event.kind_type = ["creation"];
    e.event.action = "creation";
    e.process.name = "tar".into();
    e.process.executable = Some("/usr/bin/tar".into());
    e.file = Some(FileFields::from_path(
        "/tmp/storm/usr/share/doc/base-files/copyright",
    ));
    e
}

fn rule_sets() -> Vec<(&'static str, RuleSet)> {
    let load = |paths: Vec<PathBuf>| RuleSet::load_paths(&paths).unwrap().ruleset;
    let mut sets = vec![
        ("seed", RuleSet::embedded_default().unwrap()),
        ("d4c", load(vec!["builtin:d4c".into()])),
    ];
    match std::env::var_os("SENSOR_ELASTIC_RULES").map(PathBuf::from) {
        Some(dir) => sets.push((
            "all",
            load(vec![
                "builtin:d4c".into(),
                dir.join("linux"),
                dir.join("cross-platform"),
            ]),
        )),
        None => eprintln!("SENSOR_ELASTIC_RULES is not set: the whole-catalogue set is left out"),
    }
    sets
}

fn bench(c: &mut Criterion) {
    let sets = rule_sets();
    let mut g = c.benchmark_group("rule_index");
    for (event, doc) in [("exec", exec_event()), ("file", file_event())] {
        for (name, rules) in &sets {
            // A fresh event each time (a rule reading a field the native
            // event does not model builds its JSON once per event);
            // returned, so its drop is not measured.
            g.bench_function(format!("{event}/{name}/indexed"), |b| {
                b.iter_batched(
                    || doc.clone(),
                    |d| {
                        let mut n = 0usize;
                        rules.for_each_match(&d, |_| n += 1);
                        black_box((n, rules.interested(&d)));
                        d
                    },
                    BatchSize::SmallInput,
                )
            });
            g.bench_function(format!("{event}/{name}/exhaustive"), |b| {
                b.iter_batched(
                    || doc.clone(),
                    |d| {
                        let mut n = 0usize;
                        RuleIndex::for_each_match_exhaustive(rules.rules(), &d, &mut |_| n += 1);
                        let seq = RuleIndex::interested_exhaustive(rules.sequences(), &d);
                        black_box((n, seq));
                        d
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
