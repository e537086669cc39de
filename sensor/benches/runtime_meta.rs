//! Cost of issue #14 part B on the per-event path (`cargo bench -p sensor
//! --bench runtime_meta`): one exec of `sh` in a docker container, through
//! the process table and enrichment, as the live loop does it:
//!
//! - `exec/host`: no container enrichment (the baseline);
//! - `exec/container`: the container from its cgroup, no runtime metadata
//!   (what the sensor did before, plus the session model, which every
//!   variant pays);
//! - `exec/container+metadata`: plus the runtime metadata from the cache (a
//!   hit: the worker read the files long before).
//!
//! And the D4C session-model rules on that event: `rules/seed` (the seed
//! rule alone) against `rules/session` (Exec Into Container + Interactive
//! Shell Spawn + the privileged mount rule), whose `process.entry_leader.*`
//! and `container.security_context.*` fields the document answers natively
//! (`EcsEvent::visit_session_and_runtime`; before that, from its JSON,
//! built once per event).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use sensor::context::cgroup_path::CgroupResolver;
use sensor::context::container_id::ContainerRuntime;
use sensor::context::process_table::leaders::INIT_PID_NS;
use sensor::context::process_table::{ProcessTable, TableConfig};
use sensor::context::runtime_meta::{MetaResolver, RuntimePaths};
use sensor::ecs::enrich::{Enricher, HostIdentity};
use sensor::kernel::decode::ExecEvent;
use sensor::rules::RuleSet;
use sensor_common::TaskInfo;

const ID: &str = "7c1e5a0b9d8f7e6d5c4b3a29181716151413121110f0e0d0c0b0a09080706050";
const CGROUP: u64 = 4242;
const CONTAINER_NS: u32 = 4026532900;

fn host() -> HostIdentity {
    HostIdentity {
        name: "node-1".into(),
        id: Some("0123456789abcdef0123456789abcdef".into()),
    }
}

fn docker_files(root: &Path) {
    let dir = root.join("var/lib/docker/containers").join(ID);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.v2.json"),
        r#"{"Name":"/k8s_web_web-1_shop_5d0c","Config":{"Image":"docker.io/library/nginx:1.25.3",
        "Labels":{"io.kubernetes.pod.name":"web-1","io.kubernetes.pod.namespace":"shop",
        "io.kubernetes.pod.uid":"5d0c1b7e-8a42-4f6b-9c3d-2e1f0a9b8c7d",
        "io.kubernetes.container.name":"web"}}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("hostconfig.json"), r#"{"Privileged":false}"#).unwrap();
}

fn task(pid: u32, start_s: u64, ns: u32, sid: u32) -> TaskInfo {
    TaskInfo {
        tgid: pid,
        pid,
        start_boottime_ns: start_s * 1_000_000_000,
        sid,
        pgid: sid,
        pid_ns: ns,
        ..TaskInfo::default()
    }
}

/// The container's init (nginx), then `sh -c ...` it runs.
fn events() -> (ExecEvent, ExecEvent) {
    let init = ExecEvent {
        task: task(600, 100, CONTAINER_NS, 600),
        parent: Some(task(500, 50, INIT_PID_NS, 1)),
        filename: b"/usr/sbin/nginx".to_vec(),
        args: vec![b"nginx".to_vec(), b"-g".to_vec(), b"daemon off;".to_vec()],
        argc: 3,
        cgroup_id: CGROUP,
        cwd: Some(b"/".to_vec()),
        ..ExecEvent::default()
    };
    let args = ["sh", "-c", "id; uname -a; cat /etc/os-release"];
    let sh = ExecEvent {
        ktime_ns: 200_000_000_000,
        task: task(601, 200, CONTAINER_NS, 600),
        parent: Some(task(600, 100, CONTAINER_NS, 600)),
        filename: b"/bin/sh".to_vec(),
        args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        argc: 3,
        uid: 33,
        gid: 33,
        cgroup_id: CGROUP,
        cwd: Some(b"/var/www".to_vec()),
        ..ExecEvent::default()
    };
    (init, sh)
}

fn table(proc_root: &Path, init: &ExecEvent) -> ProcessTable {
    let mut t = ProcessTable::new(TableConfig {
        host_id: "h".into(),
        capacity: 1024,
        proc_root: proc_root.to_owned(),
        clk_tck: 100,
    });
    t.on_exec(init);
    t
}

fn containers(cgroot: &Path) -> CgroupResolver {
    let mut r = CgroupResolver::with_root(cgroot.to_owned());
    r.learn(CGROUP, &format!("/docker/{ID}"));
    r
}

fn metadata(root: &Path) -> MetaResolver {
    let mut m = MetaResolver::spawn(RuntimePaths::new(root), 64).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while m.lookup(ID, ContainerRuntime::Docker).is_none() {
        assert!(Instant::now() < deadline, "metadata never read");
        std::thread::sleep(Duration::from_millis(1));
    }
    m
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let proc_root = dir.path().join("proc");
    let cgroot = dir.path().join("cgroup");
    for d in [&root, &proc_root, &cgroot] {
        std::fs::create_dir_all(d).unwrap();
    }
    docker_files(&root);
    let (init, sh) = events();

    let mut g = c.benchmark_group("exec");
    let variants: [(&str, Option<PathBuf>, bool); 3] = [
        ("host", None, false),
        ("container", Some(cgroot.clone()), false),
        ("container+metadata", Some(cgroot.clone()), true),
    ];
    for (name, cg, meta) in variants {
        let mut t = table(&proc_root, &init);
        let mut e = Enricher::new(host(), cg.as_deref().map(containers));
        if meta {
            e.set_runtime_meta(metadata(&root));
        }
        g.bench_function(name, |b| {
            b.iter(|| {
                let ctx = t.on_exec(black_box(&sh));
                black_box(e.exec_event(&sh, &ctx))
            })
        });
    }
    g.finish();

    let rules_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/defend-for-containers");
    let session = RuleSet::load_paths(
        &[
            "execution_interactive_exec_to_container.toml",
            "execution_interactive_shell_spawned_from_inside_a_container.toml",
            "privilege_escalation_mount_launched_inside_a_privileged_container.toml",
        ]
        .map(|f| rules_dir.join(f)),
    )
    .unwrap()
    .ruleset;
    assert_eq!(session.len(), 3);
    let seed = RuleSet::embedded_default().unwrap();
    let mut t = table(&proc_root, &init);
    let mut e = Enricher::new(host(), Some(containers(&cgroot)));
    e.set_runtime_meta(metadata(&root));
    let ctx = t.on_exec(&sh);
    let doc = e.exec_event(&sh, &ctx);
    let mut g = c.benchmark_group("rules");
    for (name, rules) in [("seed", &seed), ("session", &session)] {
        // A fresh event each time (a JSON fallback would be built per
        // event); returned, so its drop is not measured.
        g.bench_function(name, |b| {
            b.iter_batched(
                || doc.clone(),
                |d| {
                    let n = rules.matching(&d).count();
                    (black_box(n), d)
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
