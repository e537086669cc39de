//! Test cgroups: real directories in the cgroup2 hierarchy, shaped like the
//! ones container runtimes and the kubelet create, so a process moved there
//! is "in a container" for the sensor. Needs root.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_, mnt, fstype) = (f.next()?, f.next()?, f.next()?);
        (fstype == "cgroup2").then(|| PathBuf::from(mnt))
    })
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn random_uid() -> String {
    let h = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Cgroup directories under a unique top-level directory of the cgroup2
/// hierarchy; removed leaf to root on drop (after their processes exited).
pub struct Cgroups {
    mount: PathBuf,
    /// Top-level directory name, e.g. `ctxtest-1234-5f3a`.
    top: String,
    created: Vec<PathBuf>,
}

impl Cgroups {
    pub fn new() -> Option<Cgroups> {
        let mount = cgroup2_mount()?;
        let top = format!("ctxtest-{}-{}", std::process::id(), random_hex(4));
        let dir = mount.join(&top);
        fs::create_dir(&dir).ok()?;
        Some(Cgroups {
            mount,
            top,
            created: vec![dir],
        })
    }

    /// Creates `rel` (relative to the top directory) and its parents;
    /// returns the cgroup path as the kernel shows it (`/ctxtest-…/rel`).
    pub fn create(&mut self, rel: &str) -> (PathBuf, String) {
        let mut dir = self.mount.join(&self.top);
        for part in rel.split('/') {
            dir = dir.join(part);
            if !dir.exists() {
                fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
                self.created.push(dir.clone());
            }
        }
        (dir, format!("/{}/{rel}", self.top))
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for dir in self.created.iter().rev() {
            // A process may still be exiting: retry briefly.
            for _ in 0..50 {
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// A containerd CRI (systemd driver) container cgroup in a fresh test
/// hierarchy: `(cgroups, directory, container id, pod uid)`.
pub fn cri_container() -> Option<(Cgroups, PathBuf, String, String)> {
    let mut cg = Cgroups::new()?;
    let (id, uid) = (random_hex(32), random_uid());
    let rel = format!(
        "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{id}.scope",
        uid.replace('-', "_")
    );
    let (dir, _) = cg.create(&rel);
    Some((cg, dir, id, uid))
}

/// Moves process `pid` into the cgroup directory `dir`.
pub fn move_into(dir: &Path, pid: u32) -> std::io::Result<()> {
    fs::write(dir.join("cgroup.procs"), pid.to_string())
}
