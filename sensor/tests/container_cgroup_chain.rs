//! The userspace container chain on the real kernel, without eBPF: a process
//! moved into a kubepods-shaped cgroup2 directory (what runc/containerd do)
//! is seen by `proc_scan` with that cgroup path, `container_id` parses it,
//! and `CgroupResolver` maps the directory's inode (= what
//! `bpf_get_current_cgroup_id()` returns for that process) to the same path
//! and container. Needs root and a cgroup2 mount; skips otherwise.

// Tests fail by panicking.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use sensor::context::cgroup_path::CgroupResolver;
use sensor::context::container_id::{self, ContainerRuntime};
use sensor::context::procfs;

const ID: &str = "5e0c1a9b8d7f6e5d4c3b2a1908f7e6d5c4b3a29181706f5e4d3c2b1a09f8e7d6";
const UID: &str = "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9";

/// Kills the child and removes the cgroup directories (innermost first) even
/// when an assertion fails.
struct Cleanup {
    child: Option<Child>,
    dirs: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for dir in self.dirs.iter().rev() {
            // The kernel empties the cgroup shortly after the reap.
            let deadline = Instant::now() + Duration::from_secs(5);
            while fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn run_in_cgroup(relative: &str, want_runtime: ContainerRuntime, want_pod: Option<&str>) {
    let Ok(mut resolver) = CgroupResolver::discover() else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    resolver.set_rewalk_interval(Duration::ZERO);
    let mount = resolver.mount_point().to_path_buf();

    let mut cleanup = Cleanup {
        child: None,
        dirs: Vec::new(),
    };
    let mut dir = mount.clone();
    for part in relative.trim_start_matches('/').split('/') {
        dir.push(part);
        if !dir.exists() {
            if fs::create_dir(&dir).is_err() {
                eprintln!("skipped: cannot create cgroups (not root?)");
                return;
            }
            cleanup.dirs.push(dir.clone());
        }
    }

    let child = Command::new("sleep").arg("1000").spawn().unwrap();
    let pid = child.id();
    cleanup.child = Some(child);
    fs::write(dir.join("cgroup.procs"), pid.to_string()).unwrap();

    // proc_scan sees the path (waiting for the exec of `sleep` to be visible).
    let deadline = Instant::now() + Duration::from_secs(10);
    let snapshot = loop {
        match procfs::read_process(Path::new("/proc"), pid) {
            Ok(s) if s.comm == "sleep" => break s,
            _ => {
                assert!(Instant::now() < deadline, "child never exec'd");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    assert_eq!(snapshot.cgroup_path.as_deref(), Some(relative));

    let parsed = container_id::from_cgroup_path(relative).unwrap();
    assert_eq!(parsed.id, ID);
    assert_eq!(parsed.runtime, want_runtime);
    assert_eq!(parsed.pod_uid.as_deref(), want_pod);

    // The resolver was built before the cgroup existed: a miss re-walks.
    let cgroup_id = fs::metadata(&dir).unwrap().ino();
    assert_eq!(resolver.resolve(cgroup_id).as_deref(), Some(relative));
    assert_eq!(resolver.container_for(cgroup_id).as_deref(), Some(&parsed));
    // And a fresh resolver gets it from the pid without walking again.
    let mut fresh = CgroupResolver::discover().unwrap();
    fresh.set_rewalk_interval(Duration::from_secs(3600));
    let _ = fresh.resolve(u64::MAX); // spend the free first walk
    let walks = fresh.stats().walks;
    assert_eq!(
        fresh.container_for_pid(cgroup_id, pid).as_deref(),
        Some(&parsed)
    );
    assert_eq!(fresh.stats().walks, walks);
}

#[test]
fn kubelet_cgroupfs_shape_under_a_non_default_root() {
    let root = format!("/sensor-chain-{}-a", std::process::id());
    run_in_cgroup(
        &format!("{root}/kubepods/besteffort/pod{UID}/{ID}"),
        ContainerRuntime::Unknown,
        Some(UID),
    );
}

#[test]
fn crio_systemd_shape() {
    let root = format!("/sensor-chain-{}-b", std::process::id());
    let uid = UID.replace('-', "_");
    run_in_cgroup(
        &format!(
            "{root}/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/crio-{ID}.scope"
        ),
        ContainerRuntime::CriO,
        Some(UID),
    );
}
