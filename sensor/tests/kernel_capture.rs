//! Loads the real eBPF programs (needs root and the embedded object: run via
//! `cargo xtask test`) and reads exec/fork/exit records straight from the
//! ring buffer, below the agent's enrichment.

use std::os::unix::ffi::OsStrExt;
use std::process::Command;
use std::time::{Duration, Instant};

use sensor::kernel::decode::{decode, KernelEvent};
use sensor::kernel::programs::{embedded_object, load, LoadOptions};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

#[test]
fn exec_fork_exit_records_from_the_real_kernel() {
    let Some(object) = embedded_object() else {
        assert!(
            !in_ci(),
            "CI=true: the eBPF object must be embedded (cargo xtask test)"
        );
        eprintln!("skipping: no embedded eBPF object (run `cargo xtask test`)");
        return;
    };
    let host = sensor::kernel::host::HostFeatures::probe();
    let mut programs = match load(object, &LoadOptions::default(), &host) {
        Ok(p) => p,
        Err(e) => {
            assert!(!in_ci(), "CI=true: loading the eBPF programs failed: {e}");
            eprintln!("skipping: cannot load eBPF programs: {e}");
            return;
        }
    };
    let marker = format!("kernel-capture-{}", std::process::id());
    let bad_utf8 = std::ffi::OsStr::from_bytes(b"bad\xff\xfe-utf8");
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("echo {marker} >/dev/null"))
        .arg(bad_utf8)
        .spawn()
        .expect("spawn sh");
    let child_pid = child.id();
    let out = child.wait_with_output().expect("wait sh");
    assert!(out.status.success());

    let mut ring = programs.take_events().expect("the ring buffer");
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut exec, mut fork, mut exit) = (None, false, false);
    while Instant::now() < deadline && !(exec.is_some() && fork && exit) {
        while let Some(item) = ring.next() {
            match decode(&item).expect("decodable record") {
                KernelEvent::Exec(e) if e.task.tgid == child_pid => exec = Some(e),
                KernelEvent::Fork(f) if f.child.tgid == child_pid => {
                    assert_eq!(f.parent_tgid, std::process::id());
                    fork = true;
                }
                KernelEvent::Exit(x) if x.tgid == child_pid => exit = true,
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let exec = exec.expect("exec record for the child");
    assert!(fork, "fork record for the child");
    assert!(exit, "exit record for the child");
    assert_eq!(exec.filename, b"/bin/sh");
    assert_eq!(
        exec.args,
        vec![
            b"/bin/sh".to_vec(),
            b"-c".to_vec(),
            format!("echo {marker} >/dev/null").into_bytes(),
            b"bad\xff\xfe-utf8".to_vec(),
        ]
    );
    assert_eq!(exec.argc, 4);
    assert!(!exec.args_truncated);
    assert_eq!(exec.parent.map(|p| p.tgid), Some(std::process::id()));
    assert_eq!(exec.uid, 0);
    assert!(exec.cgroup_id > 0);
    assert!(exec.mnt_ns > 0 && exec.pid_ns > 0);
    assert_eq!(programs.lost().expect("lost counters").total(), 0);
}
