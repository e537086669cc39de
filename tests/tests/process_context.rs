//! Issue #4 end to end: the context around each exec, as the real sensor
//! reports it — interactivity and tty, container identity from the cgroup,
//! parents that started before the sensor, pre-fork workers, and pid reuse.
//!
//! Everything is asserted on the sensor's JSON events. Needs root (cgroup
//! directories, `ns_last_pid`, runc); with `CI=true` a sensor that cannot
//! start fails the test.

// Tests (and their helpers) fail by panicking.
#![allow(clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::cgroup::{random_hex, random_uid, Cgroups};
use tests::container::{runc_available, Container, Spec};
use tests::pty::{spawn_detached, Pty, Stdin};
use tests::{args_of, get, marker, skip_or_fail, start_or_skip, Sensor};

const WAIT: Duration = Duration::from_secs(10);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `/bin/true` as the kernel resolves it (`/usr/bin/true` on a merged-/usr
/// system): the executable its exec events name.
fn true_path() -> String {
    std::fs::canonicalize("/bin/true")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The exec event of `/bin/true` run with `m` as its first argument.
fn true_event(sensor: &mut Sensor, m: &str) -> Value {
    sensor
        .wait_event(WAIT, |v| {
            get(v, "event.action") == "exec"
                && get(v, "process.executable") == true_path().as_str()
                && args_of(v).get(1).is_some_and(|a| a == m)
        })
        .unwrap_or_else(|e| panic!("no exec event of /bin/true {m}: {e:#}"))
}

/// The exec event of process `pid` whose args contain `m`.
fn exec_event_of(sensor: &mut Sensor, pid: u32, m: &str) -> Value {
    sensor
        .wait_event(WAIT, |v| {
            get(v, "event.action") == "exec"
                && get(v, "process.pid").as_u64() == Some(u64::from(pid))
                && args_of(v).iter().any(|a| a.contains(m))
        })
        .unwrap_or_else(|e| panic!("no exec event of pid {pid} ({m}): {e:#}"))
}

fn str_array(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// argv of a live process, from `/proc/<pid>/cmdline`.
fn proc_argv(pid: u32) -> Vec<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    raw.split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

fn wait_ok(mut child: Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "{what} exited with {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------
// 1. process.interactive, process.parent.interactive, process.tty
// ---------------------------------------------------------------------------

/// The shell script every interactivity case runs: a child exec while the
/// shell (the child's parent) is still alive (`; :` stops dash from exec'ing
/// the last command in place).
fn shell_with_child(m: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(format!("sleep 0.05; /bin/true {m}; :"));
    c
}

#[test]
fn interactive_in_a_pty_and_not_when_detached_or_stdin_redirected() {
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };

    // (a) The shell is a session leader on a pty: stdin, stdout, stderr and
    // the controlling tty are all /dev/pts/<n>.
    let pty = Pty::open().expect("openpty");
    let (major, minor) = pty.slave_device().expect("fstat slave");
    assert_eq!((major, minor), (136, pty.index), "a /dev/pts device");
    let m_tty = marker("ctx-tty");
    let child = pty
        .spawn(&mut shell_with_child(&m_tty), Stdin::Tty)
        .expect("spawn in pty");
    let sh_pid = child.id();
    wait_ok(child, "shell in the pty");
    let ev = true_event(&mut sensor, &m_tty);
    assert_eq!(
        get(&ev, "process.parent.pid").as_u64(),
        Some(u64::from(sh_pid)),
        "{ev}"
    );
    assert_eq!(
        get(&ev, "process.interactive"),
        true,
        "child on the pty: {ev}"
    );
    assert_eq!(
        get(&ev, "process.parent.interactive"),
        true,
        "shell on the pty: {ev}"
    );
    assert_eq!(get(&ev, "process.tty.char_device.major"), 136, "{ev}");
    assert_eq!(
        get(&ev, "process.tty.char_device.minor").as_u64(),
        Some(u64::from(pty.index)),
        "{ev}"
    );
    // The shell's own exec (it was already on the pty when it exec'd).
    let sh_ev = exec_event_of(&mut sensor, sh_pid, &m_tty);
    assert_eq!(get(&sh_ev, "process.interactive"), true, "{sh_ev}");

    // (b) Detached: own session, no controlling tty, stdio on /dev/null.
    let m_det = marker("ctx-detached");
    let child = spawn_detached(&mut shell_with_child(&m_det)).expect("spawn detached");
    let det_pid = child.id();
    wait_ok(child, "detached shell");
    let ev = true_event(&mut sensor, &m_det);
    assert_eq!(
        get(&ev, "process.parent.pid").as_u64(),
        Some(u64::from(det_pid)),
        "{ev}"
    );
    assert_eq!(get(&ev, "process.interactive"), false, "{ev}");
    assert_eq!(get(&ev, "process.parent.interactive"), false, "{ev}");
    assert!(
        get(&ev, "process.tty").is_null(),
        "no controlling tty: {ev}"
    );

    // (c) In between: the pty is the controlling tty (and stdout/stderr),
    // but stdin is /dev/null. ECS: stdin AND stderr must be the tty.
    let pty2 = Pty::open().expect("openpty");
    let m_half = marker("ctx-stdin-null");
    let child = pty2
        .spawn(&mut shell_with_child(&m_half), Stdin::DevNull)
        .expect("spawn in pty, stdin /dev/null");
    let half_pid = child.id();
    wait_ok(child, "shell with stdin from /dev/null");
    let ev = true_event(&mut sensor, &m_half);
    assert_eq!(
        get(&ev, "process.parent.pid").as_u64(),
        Some(u64::from(half_pid)),
        "{ev}"
    );
    assert_eq!(
        get(&ev, "process.interactive"),
        false,
        "stdin is not the tty: {ev}"
    );
    assert_eq!(
        get(&ev, "process.parent.interactive"),
        false,
        "stdin is not the tty: {ev}"
    );
    assert_eq!(
        get(&ev, "process.tty.char_device.major"),
        136,
        "the ctty is still reported: {ev}"
    );
    assert_eq!(
        get(&ev, "process.tty.char_device.minor").as_u64(),
        Some(u64::from(pty2.index)),
        "{ev}"
    );

    // (d) Started on the terminal, daemonized later: a perl master on the
    // pty forks a worker that calls setsid and moves its stdio to /dev/null,
    // then runs a child. `process.parent.interactive` is the parent's value
    // when its image started (the master's exec on the terminal, which the
    // forked worker shares), as Elastic's process cache keeps it: a process
    // cannot change what its children report by changing its terminal
    // afterwards. The child itself is not interactive.
    let pty3 = Pty::open().expect("openpty");
    let m_daemon = marker("ctx-daemonized");
    let mut perl = Command::new("/usr/bin/perl");
    perl.arg("-e").arg(DAEMONIZE).arg(&m_daemon);
    let child = pty3
        .spawn(&mut perl, Stdin::Tty)
        .expect("spawn perl in the pty");
    let master_pid = child.id();
    wait_ok(child, "daemonizing perl");
    let ev = true_event(&mut sensor, &m_daemon);
    let daemon_pid = get(&ev, "process.parent.pid").as_u64().unwrap_or(0);
    assert!(
        daemon_pid != 0 && daemon_pid != u64::from(master_pid),
        "parent is the forked daemon: {ev}"
    );
    assert_eq!(
        str_array(get(&ev, "process.parent.args")),
        ["/usr/bin/perl", "-e", DAEMONIZE, m_daemon.as_str()],
        "{ev}"
    );
    assert_eq!(
        get(&ev, "process.parent.interactive"),
        true,
        "the parent's value at its start, not after it detached: {ev}"
    );
    assert_eq!(get(&ev, "process.interactive"), false, "{ev}");
    assert!(
        get(&ev, "process.tty").is_null(),
        "no controlling tty after setsid: {ev}"
    );
    let perl_ev = exec_event_of(&mut sensor, master_pid, &m_daemon);
    assert_eq!(
        get(&perl_ev, "process.interactive"),
        true,
        "the master on the pty: {perl_ev}"
    );

    sensor.stop().expect("clean stop");
}

/// Forks a worker (no exec) that detaches from the terminal, then runs
/// `/bin/true $ARGV[0]`.
const DAEMONIZE: &str = r#"
use POSIX ();
my $p = fork();
die "fork: $!" unless defined $p;
if ($p == 0) {
    POSIX::setsid() or die "setsid: $!";
    open(STDIN, "<", "/dev/null") or die;
    open(STDOUT, ">", "/dev/null") or die;
    open(STDERR, ">", "/dev/null") or die;
    system("/bin/true", $ARGV[0]);
    exit 0;
}
waitpid($p, 0);
exit($? >> 8);
"#;

// ---------------------------------------------------------------------------
// 2. Container identity from the cgroup path
// ---------------------------------------------------------------------------

/// The cgroup2 mount point (`/sys/fs/cgroup/unified` on hybrid hosts).
/// Runs `/bin/true <m>` in cgroup `dir`: a shell moves itself there, then
/// execs. Returns the pid.
fn run_in_cgroup(dir: &Path, m: &str) -> u32 {
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"echo $$ > "$1/cgroup.procs" && exec /bin/true "$2""#)
        .arg("sh")
        .arg(dir)
        .arg(m)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    wait_ok(child, "shell moving into a cgroup");
    pid
}

/// One cgroup shape and what the sensor must say about processes in it.
struct Shape {
    what: &'static str,
    rel: String,
    id: Option<String>,
    runtime: Option<&'static str>,
    pod: Option<String>,
}

fn shapes() -> Vec<Shape> {
    let mut v = Vec::new();
    let id = random_hex(32);
    v.push(Shape {
        what: "docker, systemd driver",
        rel: format!("system.slice/docker-{id}.scope"),
        id: Some(id),
        runtime: Some("docker"),
        pod: None,
    });
    let id = random_hex(32);
    v.push(Shape {
        what: "docker, cgroupfs driver",
        rel: format!("docker/{id}"),
        id: Some(id),
        runtime: Some("docker"),
        pod: None,
    });
    let (id, uid) = (random_hex(32), random_uid());
    v.push(Shape {
        what: "containerd CRI, systemd driver",
        rel: format!(
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{id}.scope",
            uid.replace('-', "_")
        ),
        id: Some(id),
        runtime: Some("containerd"),
        pod: Some(uid),
    });
    let (id, uid) = (random_hex(32), random_uid());
    v.push(Shape {
        what: "kubelet cgroupfs driver (runtime not in the path)",
        rel: format!("kubepods/besteffort/pod{uid}/{id}"),
        id: Some(id),
        runtime: None,
        pod: Some(uid),
    });
    let (id, uid) = (random_hex(32), random_uid());
    let slice = format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
        uid.replace('-', "_")
    );
    v.push(Shape {
        what: "cri-o monitor (not the container)",
        rel: format!("{slice}/crio-conmon-{id}.scope"),
        id: None,
        runtime: None,
        pod: None,
    });
    v.push(Shape {
        what: "cri-o, systemd driver",
        rel: format!("{slice}/crio-{id}.scope"),
        id: Some(id),
        runtime: Some("cri-o"),
        pod: Some(uid),
    });
    let id = random_hex(32);
    v.push(Shape {
        what: "podman",
        rel: format!("machine.slice/libpod-{id}.scope"),
        id: Some(id),
        runtime: Some("podman"),
        pod: None,
    });
    let id = random_hex(32);
    v.push(Shape {
        what: "podman monitor (not the container)",
        rel: format!("machine.slice/libpod-conmon-{id}.scope"),
        id: None,
        runtime: None,
        pod: None,
    });
    let id = random_hex(32);
    v.push(Shape {
        what: "podman, /container child",
        rel: format!("machine.slice/libpod-{id}.scope/container"),
        id: Some(id),
        runtime: Some("podman"),
        pod: None,
    });
    let (id, uid) = (random_hex(32), random_uid());
    v.push(Shape {
        what: "containerd, systemd-style name under containerd.service",
        rel: format!(
            "system.slice/containerd.service/kubepods-besteffort-pod{}.slice:cri-containerd:{id}",
            uid.replace('-', "_")
        ),
        id: Some(id),
        runtime: Some("containerd"),
        pod: Some(uid),
    });
    let (id, uid) = (random_hex(32), random_uid());
    v.push(Shape {
        what: "cri-o, cgroupfs driver",
        rel: format!("kubepods/burstable/pod{uid}/crio-{id}"),
        id: Some(id),
        runtime: Some("cri-o"),
        pod: Some(uid),
    });
    let id = random_hex(32);
    v.push(Shape {
        what: "containerd namespace k8s.io (k3s, RKE2)",
        rel: format!("k8s.io/{id}"),
        id: Some(id),
        runtime: Some("containerd"),
        pod: None,
    });
    v
}

fn check_container(ev: &Value, shape: &Shape, cgroup: &str) {
    let ctx = format!("{} ({cgroup}): {ev}", shape.what);
    match &shape.id {
        None => {
            assert!(
                get(ev, "container").is_null(),
                "no container expected: {ctx}"
            );
            assert!(get(ev, "orchestrator").is_null(), "no pod expected: {ctx}");
        }
        Some(id) => {
            assert_eq!(
                get(ev, "container.id").as_str(),
                Some(id.as_str()),
                "container.id: {ctx}"
            );
            assert_eq!(
                get(ev, "container.runtime").as_str(),
                shape.runtime,
                "container.runtime: {ctx}"
            );
            match &shape.pod {
                Some(uid) => {
                    assert_eq!(get(ev, "orchestrator.resource.type"), "pod", "{ctx}");
                    assert_eq!(
                        get(ev, "orchestrator.resource.id").as_str(),
                        Some(uid.as_str()),
                        "pod uid: {ctx}"
                    );
                    assert_eq!(get(ev, "orchestrator.type"), "kubernetes", "{ctx}");
                }
                None => assert!(get(ev, "orchestrator").is_null(), "no pod expected: {ctx}"),
            }
        }
    }
}

/// Every shape's cgroup is created after the sensor started, and each
/// process moves itself in and execs at once (a short-lived first exec).
#[test]
fn container_identity_for_each_cgroup_shape() {
    if !is_root() {
        skip_or_fail("needs root to create cgroups");
        return;
    }
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let mut cg = Cgroups::new().expect("create a cgroup2 directory (root, cgroup2 mounted)");
    let shapes = shapes();
    let mut runs = Vec::new();
    for shape in &shapes {
        let (dir, path) = cg.create(&shape.rel);
        let m = marker("ctx-cg");
        let pid = run_in_cgroup(&dir, &m);
        runs.push((m, pid, path));
    }
    // A host process: no container, no pod.
    let m_host = marker("ctx-host");
    let status = Command::new("/bin/true")
        .arg(&m_host)
        .status()
        .expect("run");
    assert!(status.success());

    let mut failures = Vec::new();
    for (shape, (m, pid, path)) in shapes.iter().zip(&runs) {
        let ev = true_event(&mut sensor, m);
        assert_eq!(get(&ev, "process.pid").as_u64(), Some(u64::from(*pid)));
        if let Err(e) = std::panic::catch_unwind(|| check_container(&ev, shape, path)) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "?".to_owned());
            failures.push(msg);
        }
    }
    let host = true_event(&mut sensor, &m_host);
    if !get(&host, "container").is_null() || !get(&host, "orchestrator").is_null() {
        failures.push(format!("host process with container fields: {host}"));
    }
    sensor.stop().expect("clean stop");
    assert!(
        failures.is_empty(),
        "{} of {} shapes wrong:\n{}",
        failures.len(),
        shapes.len(),
        failures.join("\n")
    );
}

/// Sends SIGCONT to a stopped process when dropped (even on a failed
/// assertion), so a paused sensor never stays paused.
struct Paused(u32);

impl Paused {
    fn stop(pid: u32) -> Paused {
        // SAFETY: kill(2) on the sensor, our own child.
        unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
        Paused(pid)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0 as i32, libc::SIGCONT) };
    }
}

/// A short-lived container (`docker run --rm …`): its only exec ends and
/// its cgroup is removed before the sensor gets to the event (here: the
/// sensor is paused meanwhile, as a loaded sensor lags). The event still
/// belongs to that container.
#[test]
fn short_lived_container_removed_before_the_sensor_catches_up() {
    if !is_root() {
        skip_or_fail("needs root to create cgroups");
        return;
    }
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let mut cg = Cgroups::new().expect("create a cgroup2 directory (root, cgroup2 mounted)");
    let id = random_hex(32);
    let (dir, path) = cg.create(&format!("system.slice/docker-{id}.scope"));
    let m = marker("ctx-gone");
    {
        let _paused = Paused::stop(sensor.pid());
        run_in_cgroup(&dir, &m);
        fs::remove_dir(&dir).expect("remove the container's cgroup");
    }
    let ev = true_event(&mut sensor, &m);
    sensor.stop().expect("clean stop");
    let shape = Shape {
        what: "docker, cgroup removed before the sensor resolved it",
        rel: String::new(),
        id: Some(id),
        runtime: Some("docker"),
        pod: None,
    };
    check_container(&ev, &shape, &path);
}

/// A container process that was already running (in its cgroup, which
/// existed too) when the sensor started, exec'ing afterwards.
#[test]
fn container_process_running_before_the_sensor_is_enriched() {
    if !is_root() {
        skip_or_fail("needs root to create cgroups");
        return;
    }
    let mut cg = Cgroups::new().expect("create a cgroup2 directory (root, cgroup2 mounted)");
    let (id, uid) = (random_hex(32), random_uid());
    let rel = format!(
        "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{id}.scope",
        uid.replace('-', "_")
    );
    let (dir, path) = cg.create(&rel);
    let m = marker("ctx-early-ctr");
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"echo $$ > "$1/cgroup.procs" && read x && /bin/true "$2"; :"#)
        .arg("ctx-early-ctr-shell")
        .arg(&dir)
        .arg(&m)
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn");
    let sh_pid = child.id();
    // Wait until the shell is in its cgroup.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !fs::read_to_string(format!("/proc/{sh_pid}/cgroup"))
        .unwrap_or_default()
        .contains(&format!("0::{path}"))
    {
        assert!(Instant::now() < deadline, "shell never moved into {path}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let argv = proc_argv(sh_pid);
    let Some(mut sensor) = start_or_skip(&[]) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("release the shell");
    drop(stdin);
    wait_ok(child, "early container shell");
    let ev = true_event(&mut sensor, &m);
    sensor.stop().expect("clean stop");
    let shape = Shape {
        what: "containerd CRI, process older than the sensor",
        rel,
        id: Some(id),
        runtime: Some("containerd"),
        pod: Some(uid),
    };
    check_container(&ev, &shape, &path);
    assert_eq!(
        get(&ev, "process.parent.pid").as_u64(),
        Some(u64::from(sh_pid)),
        "{ev}"
    );
    assert_eq!(
        str_array(get(&ev, "process.parent.args")),
        argv,
        "parent args from /proc: {ev}"
    );
}

// ---------------------------------------------------------------------------
// 3. A real OCI container (runc)
// ---------------------------------------------------------------------------

#[test]
fn exec_in_a_runc_container_has_its_id() {
    if !is_root() || !runc_available() {
        skip_or_fail("needs root and runc");
        return;
    }
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let ctr = Container::start(&Spec {
        args: vec!["/bin/sleep".into(), "60".into()],
        ..Spec::default()
    })
    .expect("start a runc container");
    let m = marker("ctx-runc");
    let out = ctr.exec(&["/bin/true", &m]).expect("runc exec");
    assert!(
        out.status.success(),
        "runc exec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = true_event(&mut sensor, &m);
    // The working directory as the container sees it, across its /tmp mount.
    let m2 = marker("ctx-runc-cwd");
    let script = format!("cd /tmp && exec /bin/true {m2}");
    let out = ctr.exec(&["/bin/sh", "-c", &script]).expect("runc exec");
    assert!(
        out.status.success(),
        "runc exec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let in_tmp = true_event(&mut sensor, &m2);
    assert_eq!(get(&ev, "process.working_directory"), "/", "{ev}");
    assert_eq!(
        get(&in_tmp, "process.working_directory"),
        "/tmp",
        "{in_tmp}"
    );
    // The container's init (sleep) was exec'd after the sensor started too.
    let init = sensor
        .wait_event(WAIT, |v| {
            get(v, "process.pid").as_u64() == Some(u64::from(ctr.pid()))
        })
        .ok();
    sensor.stop().expect("clean stop");
    assert_eq!(ctr.id().len(), 64);
    assert_eq!(get(&ev, "container.id").as_str(), Some(ctr.id()), "{ev}");
    assert!(
        get(&ev, "container.runtime").is_null(),
        "kubelet cgroupfs shape names no runtime: {ev}"
    );
    assert_eq!(
        get(&ev, "orchestrator.resource.id").as_str(),
        Some(ctr.pod_uid()),
        "{ev}"
    );
    if let Some(init) = init {
        assert_eq!(
            get(&init, "container.id").as_str(),
            Some(ctr.id()),
            "container init: {init}"
        );
    }
}

// ---------------------------------------------------------------------------
// 4. A parent that started before the sensor
// ---------------------------------------------------------------------------

#[test]
fn parent_started_before_the_sensor_has_its_args() {
    let m = marker("ctx-early-parent");
    let mut parent = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"read x; /bin/true "$1"; :"#)
        .arg("ctx-early-parent-shell")
        .arg(&m)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let ppid = parent.id();
    // Let it exec (its cmdline is the shell's once it has).
    let deadline = Instant::now() + Duration::from_secs(5);
    while proc_argv(ppid).first().map(String::as_str) != Some("/bin/sh") {
        assert!(Instant::now() < deadline, "shell never exec'd");
        std::thread::sleep(Duration::from_millis(5));
    }
    let argv = proc_argv(ppid);
    let comm = fs::read_to_string(format!("/proc/{ppid}/comm")).expect("comm");
    let exe = fs::read_link(format!("/proc/{ppid}/exe")).expect("exe");
    let Some(mut sensor) = start_or_skip(&[]) else {
        let _ = parent.kill();
        let _ = parent.wait();
        return;
    };
    let mut stdin = parent.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("release the shell");
    drop(stdin);
    wait_ok(parent, "early parent");
    let ev = true_event(&mut sensor, &m);
    sensor.stop().expect("clean stop");

    assert_eq!(
        argv,
        [
            "/bin/sh",
            "-c",
            r#"read x; /bin/true "$1"; :"#,
            "ctx-early-parent-shell",
            m.as_str()
        ]
    );
    assert_eq!(
        get(&ev, "process.parent.pid").as_u64(),
        Some(u64::from(ppid)),
        "{ev}"
    );
    assert_eq!(str_array(get(&ev, "process.parent.args")), argv, "{ev}");
    assert_eq!(
        get(&ev, "process.parent.args_count").as_u64(),
        Some(argv.len() as u64),
        "{ev}"
    );
    assert_eq!(
        get(&ev, "process.parent.command_line").as_str(),
        Some(argv.join(" ").as_str()),
        "{ev}"
    );
    // Named after the file the kernel mapped (`/bin/sh` is a link to
    // dash here), never after `comm`, which the process could have set.
    let exe_name = exe.file_name().map(|n| n.to_string_lossy().into_owned());
    assert_eq!(
        get(&ev, "process.parent.name").as_str(),
        exe_name.as_deref(),
        "{ev}"
    );
    assert_eq!(comm.trim(), "sh");
    // /bin/sh as exec'd, or the file it resolves to (/usr/bin/dash): both
    // name the real executable; /proc only offers the latter.
    let exe = get(&ev, "process.parent.executable")
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let real = fs::canonicalize("/bin/sh").expect("canonicalize /bin/sh");
    assert!(
        exe == "/bin/sh" || Path::new(&exe) == real,
        "parent executable {exe:?}: {ev}"
    );
    assert!(
        get(&ev, "process.parent.entity_id")
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{ev}"
    );
}

/// `YYYY-MM-DDTHH:MM:SS[.frac]Z` → seconds since the epoch.
fn parse_rfc3339(t: &str) -> Option<f64> {
    tests::rfc3339_ns(t).map(|ns| ns as f64 / 1e9)
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// ECS `process.parent.start` for a parent the sensor only knows from
/// `/proc` (it started first): `/proc/<pid>/stat` has its start time.
#[test]
fn parent_started_before_the_sensor_has_its_start_time() {
    assert_eq!(parse_rfc3339("1970-01-02T00:00:01.5Z"), Some(86_401.5));
    let m = marker("ctx-early-start");
    let before = now_secs();
    let mut parent = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"read x; /bin/true "$1"; :"#)
        .arg("ctx-early-start-shell")
        .arg(&m)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let spawned = now_secs();
    let ppid = parent.id();
    let Some(mut sensor) = start_or_skip(&[]) else {
        let _ = parent.kill();
        let _ = parent.wait();
        return;
    };
    let mut stdin = parent.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("release the shell");
    drop(stdin);
    wait_ok(parent, "early parent");
    let ev = true_event(&mut sensor, &m);
    sensor.stop().expect("clean stop");
    assert_eq!(
        get(&ev, "process.parent.pid").as_u64(),
        Some(u64::from(ppid)),
        "{ev}"
    );
    let start = get(&ev, "process.parent.start")
        .as_str()
        .and_then(parse_rfc3339)
        .unwrap_or_else(|| panic!("no process.parent.start for a parent seeded from /proc: {ev}"));
    // /proc's start is cut to a 10 ms tick; allow for that and clock skew.
    assert!(
        start >= before - 0.05 && start <= spawned + 0.05,
        "parent start {start} outside [{before}, {spawned}]: {ev}"
    );
}

// ---------------------------------------------------------------------------
// 5. master → forked worker (no exec) → exec'd child
// ---------------------------------------------------------------------------

/// perl master forks a worker that does not exec; the worker prints its pid,
/// forks, and the grandchild execs `/bin/true <m>`.
const PREFORK: &str = r#"
$| = 1;
my $w = fork();
die "fork: $!" unless defined $w;
if ($w == 0) {
    print "$$\n";
    my $g = fork();
    die "fork: $!" unless defined $g;
    if ($g == 0) { exec("/bin/true", $ARGV[1]) or die "exec: $!"; }
    waitpid($g, 0);
    exit 0;
}
waitpid($w, 0);
exit($? >> 8);
"#;

fn prefork_master(m: &str) -> Command {
    let mut c = Command::new("/usr/bin/perl");
    c.arg("-e").arg(PREFORK).arg(format!("master-{m}")).arg(m);
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    c
}

#[test]
fn forked_worker_is_the_parent_with_its_masters_image() {
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let m = marker("ctx-prefork");
    let mut master = prefork_master(&m).spawn().expect("spawn perl");
    let master_pid = master.id();
    let mut line = String::new();
    BufReader::new(master.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("worker pid");
    let worker_pid: u32 = line.trim().parse().expect("worker pid");
    wait_ok(master, "perl master");
    assert_ne!(worker_pid, master_pid);

    let ev = true_event(&mut sensor, &m);
    let master_ev = exec_event_of(&mut sensor, master_pid, &m);
    sensor.stop().expect("clean stop");
    let master_args = args_of(&master_ev);
    assert_eq!(
        master_args,
        ["/usr/bin/perl", "-e", PREFORK, &format!("master-{m}"), &m]
    );
    assert_eq!(
        get(&ev, "process.parent.pid").as_u64(),
        Some(u64::from(worker_pid)),
        "{ev}"
    );
    assert_eq!(
        str_array(get(&ev, "process.parent.args")),
        master_args,
        "worker has the master's argv: {ev}"
    );
    assert_eq!(get(&ev, "process.parent.name"), "perl", "{ev}");
    assert_eq!(
        get(&ev, "process.parent.executable"),
        "/usr/bin/perl",
        "{ev}"
    );
    let worker_entity = get(&ev, "process.parent.entity_id")
        .as_str()
        .unwrap_or_default();
    let master_entity = get(&master_ev, "process.entity_id")
        .as_str()
        .unwrap_or_default();
    assert!(
        !worker_entity.is_empty() && !master_entity.is_empty(),
        "{ev}\n{master_ev}"
    );
    assert_ne!(
        worker_entity, master_entity,
        "the worker is another process instance"
    );
}

/// The same shape with a master (and its worker) that started before the
/// sensor: the worker, unknown to the table, is read from /proc.
#[test]
fn forked_worker_of_a_master_older_than_the_sensor() {
    // The master waits for a line before forking the worker.
    let script = format!("my $go = <STDIN>;\n{PREFORK}");
    let m = marker("ctx-prefork-early");
    let mut master = Command::new("/usr/bin/perl")
        .arg("-e")
        .arg(&script)
        .arg(format!("master-{m}"))
        .arg(&m)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn perl");
    let master_pid = master.id();
    let deadline = Instant::now() + Duration::from_secs(5);
    while proc_argv(master_pid).first().map(String::as_str) != Some("/usr/bin/perl") {
        assert!(Instant::now() < deadline, "perl never exec'd");
        std::thread::sleep(Duration::from_millis(5));
    }
    let argv = proc_argv(master_pid);
    let Some(mut sensor) = start_or_skip(&[]) else {
        let _ = master.kill();
        let _ = master.wait();
        return;
    };
    let mut stdin = master.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("release the master");
    drop(stdin);
    let mut line = String::new();
    BufReader::new(master.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("worker pid");
    let worker_pid: u32 = line.trim().parse().expect("worker pid");
    wait_ok(master, "perl master");
    let ev = true_event(&mut sensor, &m);
    sensor.stop().expect("clean stop");
    assert_eq!(
        get(&ev, "process.parent.pid").as_u64(),
        Some(u64::from(worker_pid)),
        "{ev}"
    );
    assert_eq!(str_array(get(&ev, "process.parent.args")), argv, "{ev}");
    assert_eq!(get(&ev, "process.parent.name"), "perl", "{ev}");
    let exe = get(&ev, "process.parent.executable")
        .as_str()
        .unwrap_or_default();
    let real = fs::canonicalize("/usr/bin/perl").expect("canonicalize perl");
    assert!(exe == "/usr/bin/perl" || Path::new(exe) == real, "{ev}");
}

// ---------------------------------------------------------------------------
// 6. Pid reuse
// ---------------------------------------------------------------------------

/// Serializes `ns_last_pid` users across test processes.
struct PidLock {
    _file: fs::File,
}

impl PidLock {
    fn take() -> PidLock {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/tmp/sensor-tests-ns_last_pid.lock")
            .expect("lock file");
        // SAFETY: flock on an fd we own.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(r, 0, "flock: {}", std::io::Error::last_os_error());
        PidLock { _file: f }
    }
}

/// A pid that is free now, away from where new pids are being handed out.
fn free_pid() -> u32 {
    let last: u32 = fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .expect("ns_last_pid")
        .trim()
        .parse()
        .expect("ns_last_pid");
    let max: u32 = fs::read_to_string("/proc/sys/kernel/pid_max")
        .expect("pid_max")
        .trim()
        .parse()
        .expect("pid_max");
    let mut n = last + 5000;
    loop {
        if n >= max {
            n = 300 + n % 1000;
        }
        if !Path::new(&format!("/proc/{n}")).exists() {
            return n;
        }
        n += 7;
    }
}

/// Spawns `cmd` with pid `n` (write `n-1` to ns_last_pid, then fork);
/// returns `None` if another fork took `n` first.
fn spawn_with_pid(cmd: &mut Command, n: u32) -> Option<Child> {
    fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", n - 1)).expect("write ns_last_pid");
    let mut child = cmd.spawn().expect("spawn");
    if child.id() == n {
        return Some(child);
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Start time of a live process in clock ticks (`/proc/<pid>/stat` field
/// 22), the resolution `/proc` offers.
fn start_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 1..];
    rest.split_whitespace()
        .nth(19)
        .expect("starttime")
        .parse()
        .expect("starttime")
}

/// Blocks on stdin until its pipe is closed, then runs `script`.
fn held_shell(script: &str, arg: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(format!("read x; {script}")).arg(arg);
    c.stdin(Stdio::piped()).stdout(Stdio::null());
    c
}

/// Lets a [`held_shell`] go and waits for it.
fn release(mut child: Child, what: &str) {
    drop(child.stdin.take());
    assert!(child.wait().expect("wait").success(), "{what} failed");
}

/// What one pid-reuse run produced.
struct Reuse {
    n: u32,
    a_arg: String,
    b_arg: String,
    b_script: String,
    child_arg: String,
    a_ticks: u64,
    b_ticks: u64,
}

/// Process A gets pid N and exits; process B then gets pid N too, forks
/// and execs a child. `same_tick` picks runs where A and B started in the same
/// clock tick (what `/proc` can tell apart) or in different ones; retried
/// until a run is of that kind.
fn reuse_pid(m: &str, same_tick: bool) -> Reuse {
    let _lock = PidLock::take();
    let a_arg = format!("A-{m}");
    let b_arg = format!("B-{m}");
    let child_arg = format!("child-{m}");
    let b_script = format!("/bin/true {child_arg}; :");
    for attempt in 0..40 {
        let n = free_pid();
        let Some(a) = spawn_with_pid(&mut held_shell(":", &format!("{a_arg}-{attempt}")), n) else {
            continue;
        };
        let a_ticks = start_ticks(n);
        release(a, "process A");
        if !same_tick {
            // Past the next tick boundary (ticks are 10 ms at USER_HZ 100).
            std::thread::sleep(Duration::from_millis(25));
        }
        let Some(b) = spawn_with_pid(&mut held_shell(&b_script, &format!("{b_arg}-{attempt}")), n)
        else {
            continue;
        };
        let b_ticks = start_ticks(n);
        release(b, "process B");
        if (a_ticks == b_ticks) == same_tick {
            return Reuse {
                n,
                a_arg: format!("{a_arg}-{attempt}"),
                b_arg: format!("{b_arg}-{attempt}"),
                b_script: format!("read x; {b_script}"),
                child_arg,
                a_ticks,
                b_ticks,
            };
        }
    }
    panic!("no pid reuse with same_tick={same_tick} in 40 attempts");
}

/// Shared checks: the child's parent is B (args, pid, entity id), A and B
/// have their own events, and their entity ids differ.
fn check_reuse(sensor: &mut Sensor, r: &Reuse) {
    let a_ev = exec_event_of(sensor, r.n, &r.a_arg);
    let b_ev = exec_event_of(sensor, r.n, &r.b_arg);
    // The child's marker is the same in every attempt: take B's child.
    let ev = sensor
        .wait_event(WAIT, |v| {
            args_of(v).get(1).is_some_and(|a| *a == r.child_arg)
                && get(v, "process.parent.pid").as_u64() == Some(u64::from(r.n))
                && str_array(get(v, "process.parent.args")).last() == Some(&r.b_arg)
        })
        .map_err(|e| {
            let seen: Vec<String> = tests::read_lines(&sensor.events_path())
                .into_iter()
                .filter(|v| args_of(v).get(1).is_some_and(|a| *a == r.child_arg))
                .map(|v| v.to_string())
                .collect();
            anyhow::anyhow!("{e:#}; children seen:\n{}", seen.join("\n"))
        })
        .expect("the child's exec with B as its parent");
    eprintln!(
        "pid {}: A ticks {} start {} entity {}; B ticks {} start {} entity {}",
        r.n,
        r.a_ticks,
        get(&a_ev, "process.start"),
        get(&a_ev, "process.entity_id"),
        r.b_ticks,
        get(&b_ev, "process.start"),
        get(&b_ev, "process.entity_id")
    );
    assert_eq!(
        args_of(&a_ev),
        ["/bin/sh", "-c", "read x; :", r.a_arg.as_str()]
    );
    let b_args = ["/bin/sh", "-c", r.b_script.as_str(), r.b_arg.as_str()];
    assert_eq!(args_of(&b_ev), b_args);
    assert_eq!(
        str_array(get(&ev, "process.parent.args")),
        b_args,
        "the parent is B, never A: {ev}"
    );
    let a_entity = get(&a_ev, "process.entity_id").as_str().unwrap_or_default();
    let b_entity = get(&b_ev, "process.entity_id").as_str().unwrap_or_default();
    assert!(!a_entity.is_empty() && !b_entity.is_empty());
    assert_ne!(
        a_entity,
        b_entity,
        "processes A and B both held pid {} and share one entity id (A started {}, B started {}, \
         start ticks {} and {})",
        r.n,
        get(&a_ev, "process.start"),
        get(&b_ev, "process.start"),
        r.a_ticks,
        r.b_ticks
    );
    assert_eq!(
        get(&ev, "process.parent.entity_id").as_str(),
        Some(b_entity),
        "{ev}"
    );
    assert_eq!(
        get(&ev, "process.parent.start"),
        get(&b_ev, "process.start"),
        "{ev}"
    );
}

#[test]
fn reused_pid_never_mixes_two_processes() {
    if !is_root() || !Path::new("/proc/sys/kernel/ns_last_pid").exists() {
        skip_or_fail("needs root and /proc/sys/kernel/ns_last_pid");
        return;
    }
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let r = reuse_pid(&marker("ctx-reuse"), false);
    check_reuse(&mut sensor, &r);
    sensor.stop().expect("clean stop");
}

/// The same with A and B started in the same 10 ms clock tick: nothing in
/// `/proc` tells them apart, but the kernel's start times (ns) do, and they
/// are two processes: they must not share an entity id.
#[test]
fn reused_pid_within_one_clock_tick_gets_a_new_entity_id() {
    if !is_root() || !Path::new("/proc/sys/kernel/ns_last_pid").exists() {
        skip_or_fail("needs root and /proc/sys/kernel/ns_last_pid");
        return;
    }
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let r = reuse_pid(&marker("ctx-reuse-tick"), true);
    check_reuse(&mut sensor, &r);
    sensor.stop().expect("clean stop");
}

/// Issue #15, item 4: `clone3(CLONE_INTO_CGROUP)` (systemd, crun) starts a
/// child in another cgroup than its parent's. The fork record carried the
/// parent's cgroup, so a worker that never execs was placed outside its
/// container. It now carries the child's own.
#[test]
fn a_child_cloned_into_a_container_cgroup_is_in_that_container() {
    if !is_root() {
        skip_or_fail("needs root to create cgroups");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = match tests::fake_server::build(dir.path(), "launcher") {
        Ok(bin) => bin,
        Err(e) => {
            skip_or_fail(&format!("cannot build the fake server: {e:#}"));
            return;
        }
    };
    let (_cg, cgroup, id, _) = tests::cgroup::cri_container().expect("a cgroup2 test hierarchy");
    let Some(mut sensor) = start_or_skip(&["--lifecycle-events"]) else {
        return;
    };
    // The launcher itself runs on the host, outside any container.
    let mut launcher = tests::fake_server::FakeServer::start(&bin, None).expect("launcher");
    launcher
        .send(&format!("CLONE3 {}", cgroup.display()))
        .expect("clone3 into the container cgroup");
    let launcher_pid = u64::from(launcher.pid());
    let fork = sensor
        .wait_event(WAIT, |v| {
            get(v, "event.action") == "fork"
                && get(v, "process.parent.pid").as_u64() == Some(launcher_pid)
        })
        .expect("the fork event of the cloned child");
    sensor.stop().expect("clean stop");
    assert_eq!(get(&fork, "container.id"), id.as_str(), "{fork}");
}
