//! Issue #14 part B end to end, with real docker and containerd containers
//! (tests/src/engine.rs; `cargo xtask test` starts the engine):
//!
//! - container and pod metadata read from the runtimes' own files, with no
//!   Kubernetes API: docker containers carrying the labels a kubelet sets
//!   through cri-dockerd, and containerd tasks whose bundle carries the CRI
//!   plugin's annotations;
//! - the session model: `docker exec` of a shell is an entry leader of type
//!   `container` ("Exec Into Container" fires), a shell the container
//!   itself starts is not ("Interactive Shell Spawn" fires);
//! - `container.security_context.privileged`: `mount` in a privileged
//!   container fires the mount rule, the same in an unprivileged one does
//!   not. The privileged container is a containerd one: docker's
//!   `--privileged` asks for every capability the kernel knows, and this
//!   machine's own bounding set lacks `CAP_SYS_RESOURCE`, so docker cannot
//!   start one here; docker's `HostConfig.Privileged` is covered by the
//!   parser's fixture tests.
//!
//! Every test finds its own events by a marker and its own container id:
//! other tests may run containers at the same time. Metadata is read off
//! the event loop, so a container's first events may lack it (documented
//! in docs/ecs.md); the tests therefore exec until an event carries it,
//! and fail if none does.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use tests::engine::{self, CtrContainer, CtrSpec, DockerContainer, DockerSpec};
use tests::{args_of, get, marker, read_lines, skip_or_fail, start_or_skip, wait_line, Sensor};

const WAIT: Duration = Duration::from_secs(20);
/// Execs tried before concluding metadata never arrives.
const ATTEMPTS: usize = 20;

const EXEC_INTO: &str = "420e5bb4-93bf-40a3-8f4a-4cc1af90eca1";
const SHELL_SPAWNED: &str = "8d3d0794-c776-476b-8674-ee2e685f6470";
const MOUNT_PRIVILEGED: &str = "41f7da9e-4e9f-4a81-9b58-40d725d83bc0";

fn rule_file(name: &str) -> String {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rules/defend-for-containers"
    ))
    .join(name)
    .display()
    .to_string()
}

/// A sensor running the three D4C rules these tests are about.
fn sensor() -> Option<Sensor> {
    let rules = [
        rule_file("execution_interactive_exec_to_container.toml"),
        rule_file("execution_interactive_shell_spawned_from_inside_a_container.toml"),
        rule_file("privilege_escalation_mount_launched_inside_a_privileged_container.toml"),
    ];
    let mut args: Vec<&str> = Vec::new();
    for r in &rules {
        args.push("--rules");
        args.push(r);
    }
    start_or_skip(&args)
}

fn docker_or_skip() -> bool {
    match engine::docker_unavailable() {
        None => true,
        Some(why) => {
            skip_or_fail(&why);
            false
        }
    }
}

fn ctr_or_skip() -> bool {
    match engine::ctr_unavailable() {
        None => true,
        Some(why) => {
            skip_or_fail(&why);
            false
        }
    }
}

fn has_marker(e: &Value, m: &str) -> bool {
    args_of(e).iter().any(|a| a.contains(m))
}

fn alerts_of(sensor: &Sensor, rule: &str) -> Vec<Value> {
    read_lines(&sensor.alerts_path())
        .into_iter()
        .filter(|a| get(a, "kibana.alert.rule.rule_id") == rule)
        .collect()
}

/// Runs `exec(marker)` until the event of that exec in container `id`
/// satisfies `ready`; returns it. Every event must be in the container.
fn exec_until(
    sensor: &mut Sensor,
    id: &str,
    exec: impl Fn(&str) -> Output,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for i in 0..ATTEMPTS {
        let m = marker(&format!("exec{i}"));
        let out = exec(&m);
        assert!(out.status.success(), "exec failed: {out:?}");
        let event = sensor
            .wait_event(WAIT, |e| {
                has_marker(e, &m) && tests::is_shell(get(e, "process.name"))
            })
            .expect("the sensor reports the exec");
        assert_eq!(get(&event, "container.id"), id, "{event}");
        if ready(&event) {
            return event;
        }
        last = event;
    }
    panic!("no event carried the runtime metadata after {ATTEMPTS} execs; last: {last}");
}

/// The value of metric `name` once it is at least `min` (at most 20 s).
fn metric_until(sensor: &Sensor, name: &str, min: f64) -> f64 {
    let addr = sensor.metrics_addr().expect("metrics address");
    let port: u16 = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("metrics port");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (status, body) =
            tests::webserver::http_get(port, "/metrics", None, WAIT).expect("GET /metrics");
        assert_eq!(status, 200);
        let value = body
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{body}"));
        if value >= min || std::time::Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn docker_kubelet_labels_name_the_pod_on_events_and_alerts() {
    if !docker_or_skip() {
        return;
    }
    let Some(mut sensor) = sensor() else { return };
    let pod = marker("pod").replace('_', "-");
    let uid = "5d0c1b7e-8a42-4f6b-9c3d-2e1f0a9b8c7d";
    let mut spec = DockerSpec::new("k8s-labels", &["/bin/sleep", "60"]);
    spec.labels = vec![
        format!("io.kubernetes.pod.name={pod}"),
        "io.kubernetes.pod.namespace=shop".into(),
        format!("io.kubernetes.pod.uid={uid}"),
        "io.kubernetes.container.name=web".into(),
    ];
    // Where cri-dockerd puts a pod's container (cgroupfs driver): the
    // labels are believed because the cgroup names the same pod.
    spec.cgroup_parent = Some(format!("/kubepods/besteffort/pod{uid}"));
    let c = DockerContainer::run(&spec).expect("docker run");
    let image = engine::test_image().expect("test image");
    let (image_name, image_tag) = image.split_once(':').expect("image has a tag");

    let event = exec_until(
        &mut sensor,
        &c.id,
        |m| {
            c.exec(&["/bin/sh", "-c", &format!("true {m}")])
                .expect("docker exec")
        },
        |e| get(e, "container.name").is_string(),
    );
    assert_eq!(get(&event, "container.name"), "web", "{event}");
    assert_eq!(get(&event, "container.runtime"), "docker", "{event}");
    assert_eq!(get(&event, "container.image.name"), image_name, "{event}");
    assert_eq!(
        get(&event, "container.image.tag"),
        &serde_json::json!([image_tag]),
        "{event}"
    );
    assert_eq!(
        get(&event, "container.security_context.privileged"),
        false,
        "{event}"
    );
    assert_eq!(get(&event, "orchestrator.type"), "kubernetes", "{event}");
    assert_eq!(get(&event, "orchestrator.namespace"), "shop", "{event}");
    assert_eq!(get(&event, "orchestrator.resource.type"), "pod", "{event}");
    assert_eq!(get(&event, "orchestrator.resource.name"), pod.as_str());
    assert_eq!(get(&event, "orchestrator.resource.id"), uid, "{event}");

    // The same exec is a shell exec'd into the container: its alert
    // carries the metadata too.
    let m = args_of(&event).last().cloned().unwrap_or_default();
    let alert = wait_line(&sensor.alerts_path(), WAIT, |a| {
        get(a, "kibana.alert.rule.rule_id") == EXEC_INTO && args_of(a).contains(&m)
    })
    .expect("exec-into-container alert");
    for field in [
        "container.id",
        "container.name",
        "container.image.name",
        "orchestrator.namespace",
        "orchestrator.resource.name",
        "orchestrator.resource.id",
    ] {
        assert_eq!(get(&alert, field), get(&event, field), "{field}: {alert}");
    }

    // The lookups are counted in /metrics (published once a second).
    let found = metric_until(
        &sensor,
        "sensor_runtime_metadata_total{what=\"found\"}",
        1.0,
    );
    assert!(found >= 1.0, "{found}");
    sensor.stop().expect("sensor stops cleanly");
}

/// Issue #21: a docker container's labels include its image's own
/// `LABEL`s (and `docker run --label`'s), so whoever builds or runs it
/// chooses them. Labels claiming a pod, containerd's CRI keys or an image
/// name change nothing outside that pod's cgroup, and a pod's container
/// whose labels claim another pod gets only its own pod's uid.
#[test]
fn docker_labels_claiming_a_pod_choose_nothing() {
    if !docker_or_skip() {
        return;
    }
    let Some(mut sensor) = sensor() else { return };
    let claimed_uid = "0badc0de-8a42-4f6b-9c3d-2e1f0a9b8c7d";
    let labels = vec![
        "io.kubernetes.pod.name=payments-0".to_owned(),
        "io.kubernetes.pod.namespace=bank".into(),
        format!("io.kubernetes.pod.uid={claimed_uid}"),
        "io.kubernetes.container.name=payments".into(),
        "io.kubernetes.cri.container-name=payments".into(),
        "io.kubernetes.cri.sandbox-name=payments-0".into(),
        "io.kubernetes.cri.sandbox-namespace=bank".into(),
        format!("io.kubernetes.cri.sandbox-uid={claimed_uid}"),
        "io.kubernetes.cri.image-name=bank/payments:9".into(),
        "io.kubernetes.cri-o.ImageName=bank/payments:9".into(),
    ];
    let image = engine::test_image().expect("test image");
    let (image_name, _) = image.split_once(':').expect("image has a tag");
    let own_uid = "6e1f2a3b-8a42-4f6b-9c3d-2e1f0a9b8c7d";
    for cgroup_parent in [None, Some(format!("/kubepods/besteffort/pod{own_uid}"))] {
        let mut spec = DockerSpec::new("k8s-lying-labels", &["/bin/sleep", "60"]);
        spec.labels = labels.clone();
        spec.cgroup_parent = cgroup_parent.clone();
        let c = DockerContainer::run(&spec).expect("docker run");
        let event = exec_until(
            &mut sensor,
            &c.id,
            |m| {
                c.exec(&["/bin/sh", "-c", &format!("true {m}")])
                    .expect("docker exec")
            },
            |e| get(e, "container.name").is_string(),
        );
        assert_eq!(get(&event, "container.name"), c.name.as_str(), "{event}");
        assert_eq!(get(&event, "container.runtime"), "docker", "{event}");
        assert_eq!(get(&event, "container.image.name"), image_name, "{event}");
        let pod = get(&event, "orchestrator");
        match &cgroup_parent {
            None => assert!(pod.is_null(), "{event}"),
            Some(_) => assert_eq!(
                pod,
                &serde_json::json!({"type": "kubernetes", "resource": {"type": "pod", "id": own_uid}}),
                "{event}"
            ),
        }
    }
    sensor.stop().expect("sensor stops cleanly");
}

#[test]
fn containerd_bundle_annotations_name_the_pod() {
    if !ctr_or_skip() {
        return;
    }
    let Some(mut sensor) = sensor() else { return };
    let pod = marker("cri-pod").replace('_', "-");
    let uid = "0b9a8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d";
    let c = CtrContainer::run_spec(&CtrSpec {
        test: "cri-annotations".into(),
        args: vec!["/bin/sleep".into(), "60".into()],
        annotations: vec![
            "io.kubernetes.cri.container-type=container".into(),
            "io.kubernetes.cri.container-name=api".into(),
            "io.kubernetes.cri.image-name=registry.local:5000/team/api:2.4".into(),
            format!("io.kubernetes.cri.sandbox-name={pod}"),
            "io.kubernetes.cri.sandbox-namespace=payments".into(),
            format!("io.kubernetes.cri.sandbox-uid={uid}"),
        ],
        privileged: false,
    })
    .expect("ctr run");
    let event = exec_until(
        &mut sensor,
        &c.id,
        |m| {
            c.exec(&["/bin/sh", "-c", &format!("true {m}")])
                .expect("ctr task exec")
        },
        |e| get(e, "container.name").is_string(),
    );
    let want = serde_json::json!({
        "container.name": "api",
        "container.image.name": "registry.local:5000/team/api",
        "container.image.tag": ["2.4"],
        "container.security_context.privileged": false,
        "orchestrator.type": "kubernetes",
        "orchestrator.namespace": "payments",
        "orchestrator.resource.type": "pod",
        "orchestrator.resource.name": pod,
        "orchestrator.resource.id": uid,
        "process.entry_leader.entry_meta.type": "container",
        "process.entry_leader.same_as_process": true,
    });
    for (field, value) in want.as_object().expect("object") {
        assert_eq!(get(&event, field), value, "{field}: {event}");
    }
    sensor.stop().expect("sensor stops cleanly");
}

#[test]
fn exec_into_a_container_and_a_shell_spawned_inside_it_are_told_apart() {
    if !docker_or_skip() {
        return;
    }
    let Some(mut sensor) = sensor() else { return };
    let spawned = marker("spawned");
    // The container's init waits for /tmp/go, then starts an interactive
    // shell itself (what a compromised server does).
    let script = format!(
        "while [ ! -e /tmp/go ]; do sleep 0.1; done; /bin/sh -i -c 'true {spawned}'; sleep 60"
    );
    let c = DockerContainer::run(&DockerSpec::new("shells", &["/bin/sh", "-c", &script]))
        .expect("docker run");
    let init_pid = c.pid().expect("container pid");
    // The spawned shell's own argv (the init's script contains the marker
    // too, and the init, a shell that is its own entry leader, rightly
    // fires "Exec Into Container" as Defend for Containers does).
    let spawned_args = vec![
        "/bin/sh".to_owned(),
        "-i".to_owned(),
        "-c".to_owned(),
        format!("true {spawned}"),
    ];
    let is_spawned = |a: &Value| args_of(a) == spawned_args;

    // `docker exec` of an interactive shell: an entry leader of its own.
    let exec_m = marker("exec-into");
    let out = c
        .exec(&[
            "/bin/sh",
            "-i",
            "-c",
            &format!("true {exec_m}; : > /tmp/go"),
        ])
        .expect("docker exec");
    assert!(out.status.success(), "{out:?}");
    let into = wait_line(&sensor.alerts_path(), WAIT, |a| {
        get(a, "kibana.alert.rule.rule_id") == EXEC_INTO && has_marker(a, &exec_m)
    })
    .expect("exec-into-container alert for the docker exec");
    assert_eq!(get(&into, "container.id"), c.id.as_str(), "{into}");
    assert_eq!(
        get(&into, "process.entry_leader.entry_meta.type"),
        "container"
    );
    assert_eq!(get(&into, "process.entry_leader.same_as_process"), true);
    assert_eq!(
        get(&into, "process.entry_leader.pid"),
        get(&into, "process.pid"),
        "{into}"
    );

    // The shell the container's init starts: its entry leader is the init.
    let shell = wait_line(&sensor.alerts_path(), WAIT, |a| {
        get(a, "kibana.alert.rule.rule_id") == SHELL_SPAWNED && is_spawned(a)
    })
    .expect("interactive-shell-spawned alert for the shell the container started");
    assert_eq!(get(&shell, "container.id"), c.id.as_str(), "{shell}");
    assert_eq!(get(&shell, "process.entry_leader.same_as_process"), false);
    assert_eq!(get(&shell, "process.entry_leader.pid"), init_pid, "{shell}");
    assert_eq!(
        get(&shell, "process.entry_leader.entry_meta.type"),
        "container"
    );

    // Neither fired the other's rule (the spawned shell's alert came after
    // the docker exec's event, so anything for that event is written).
    assert!(
        !alerts_of(&sensor, SHELL_SPAWNED)
            .iter()
            .any(|a| has_marker(a, &exec_m)),
        "a docker exec'd shell is not a shell spawned inside"
    );
    assert!(
        !alerts_of(&sensor, EXEC_INTO).iter().any(is_spawned),
        "a shell the container started is not an exec into it"
    );
    sensor.stop().expect("sensor stops cleanly");
}

#[test]
fn mount_fires_in_a_privileged_container_and_not_in_an_unprivileged_one() {
    if !ctr_or_skip() {
        return;
    }
    let Some(mut sensor) = sensor() else { return };
    let run = |test: &str, privileged: bool| {
        CtrContainer::run_spec(&CtrSpec {
            test: test.into(),
            args: vec!["/bin/sleep".into(), "60".into()],
            annotations: Vec::new(),
            privileged,
        })
        .expect("ctr run")
    };
    let plain = run("mount-plain", false);
    let privileged = run("mount-privileged", true);
    for (c, want) in [(&plain, false), (&privileged, true)] {
        let e = exec_until(
            &mut sensor,
            &c.id,
            |m| {
                c.exec(&["/bin/sh", "-c", &format!("true {m}")])
                    .expect("ctr task exec")
            },
            |e| get(e, "container.security_context.privileged").is_boolean(),
        );
        assert_eq!(
            get(&e, "container.security_context.privileged"),
            want,
            "{e}"
        );
    }

    // The same command in both; the unprivileged one first.
    let mount = |c: &CtrContainer| {
        // Exit status does not matter (`--version` just prints).
        c.exec(&["/usr/bin/mount", "--version"])
            .expect("ctr task exec mount")
    };
    mount(&plain);
    let plain_mount = sensor
        .wait_event(WAIT, |e| {
            get(e, "process.name") == "mount" && get(e, "container.id") == plain.id.as_str()
        })
        .expect("the unprivileged container's mount exec");
    assert_eq!(
        get(&plain_mount, "container.security_context.privileged"),
        false
    );
    mount(&privileged);
    let alert = wait_line(&sensor.alerts_path(), WAIT, |a| {
        get(a, "kibana.alert.rule.rule_id") == MOUNT_PRIVILEGED
            && get(a, "container.id") == privileged.id.as_str()
    })
    .expect("mount alert in the privileged container");
    assert_eq!(get(&alert, "process.name"), "mount");
    assert_eq!(get(&alert, "container.security_context.privileged"), true);
    assert!(
        !alerts_of(&sensor, MOUNT_PRIVILEGED)
            .iter()
            .any(|a| get(a, "container.id") == plain.id.as_str()),
        "no mount alert for the unprivileged container"
    );
    sensor.stop().expect("sensor stops cleanly");
}
