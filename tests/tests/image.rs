//! Real container engines end to end: the sensor sees what runs in docker
//! containers as docker containers; and (issue #14) the sensor's own image,
//! run with exactly the DaemonSet's privileges, alerts on a neighbour.
//!
//! Containers come from tests/src/engine.rs (`cargo xtask test` starts the
//! engine). Each test finds its own events by a unique marker and its own
//! container id: other tests may run containers at the same time.

use std::time::Duration;

use tests::engine::{self, CtrContainer, DockerContainer, DockerSpec};
use tests::{args_of, get, marker, skip_or_fail, start_or_skip};

const WAIT: Duration = Duration::from_secs(15);

fn docker_or_skip() -> bool {
    match engine::docker_unavailable() {
        None => true,
        Some(why) => {
            skip_or_fail(&why);
            false
        }
    }
}

#[test]
fn docker_exec_is_seen_with_the_docker_container_id() {
    if !docker_or_skip() {
        return;
    }
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let c = DockerContainer::run(&DockerSpec::new("docker-exec", &["/bin/sleep", "60"]))
        .expect("docker run");
    let m = marker("docker-exec");
    let script = format!("true {m}");
    let out = c.exec(&["/bin/sh", "-c", &script]).expect("docker exec");
    assert!(out.status.success(), "docker exec failed: {out:?}");
    let event = sensor
        .wait_event(WAIT, |e| {
            get(e, "process.name") == "sh" && args_of(e).iter().any(|a| a.contains(&m))
        })
        .expect("the sensor reports the docker exec");
    assert_eq!(get(&event, "container.id"), c.id.as_str(), "{event}");
    assert_eq!(get(&event, "container.runtime"), "docker", "{event}");
    assert_eq!(
        args_of(&event),
        vec!["/bin/sh".to_owned(), "-c".to_owned(), script]
    );
    sensor.stop().expect("sensor stops cleanly");
}

#[test]
fn ctr_containers_run_in_their_own_cgroup() {
    if let Some(why) = engine::ctr_unavailable() {
        skip_or_fail(&why);
        return;
    }
    let c = CtrContainer::run("ctr-cgroup", &["/bin/sleep", "60"]).expect("ctr run");
    let pid = c.pid().expect("ctr task pid");
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup file");
    let want = format!("/{}/{}", engine::CTR_NAMESPACE, c.id);
    assert!(
        cgroup.lines().any(|l| l.ends_with(&want)),
        "{want} not in {cgroup}"
    );
    let out = c
        .exec(&["/bin/cat", "/proc/self/cgroup"])
        .expect("ctr exec");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&want));
}
