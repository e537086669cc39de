//! A fake `/proc` tree for unit tests: one directory per process with the
//! files [`super::procfs`] reads (`stat`, `status`, `cmdline`, `cgroup`,
//! and `exe`/`cwd` links), written from a [`FakeProcess`].

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One process as the fake tree shows it.
pub(crate) struct FakeProcess<'a> {
    pub pid: u32,
    pub ppid: u32,
    /// `stat` field 22, clock ticks.
    pub start: u64,
    pub comm: &'a [u8],
    /// `/proc/<pid>/cmdline` as it is (NUL-separated).
    pub cmdline: Vec<u8>,
    pub exe: Option<&'a [u8]>,
    pub cwd: Option<&'a [u8]>,
    /// `stat` field 9.
    pub flags: u64,
    /// `stat` field 7.
    pub tty_nr: i32,
    /// `status` file contents (the Uid/Gid lines matter).
    pub status: &'a str,
    /// `cgroup` file contents, if any.
    pub cgroup: Option<&'a str>,
}

/// A stat line with every field up to 52, the given ones set.
pub(crate) fn stat_line(
    pid: u32,
    comm: &[u8],
    ppid: u32,
    tty: i32,
    flags: u64,
    start: u64,
) -> Vec<u8> {
    let mut line = format!("{pid} (").into_bytes();
    line.extend_from_slice(comm);
    line.extend_from_slice(
        format!(
            ") S {ppid} {pid} {pid} {tty} -1 {flags} 10 0 0 0 1 2 0 0 20 0 1 0 {start} 1000 10 \
             18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        )
        .as_bytes(),
    );
    line
}

/// NUL-terminated arguments, as `cmdline` holds them.
pub(crate) fn cmdline(args: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in args {
        out.extend_from_slice(a.as_bytes());
        out.push(0);
    }
    out
}

/// The tree, removed when dropped.
pub(crate) struct FakeProc {
    root: tempfile::TempDir,
}

impl FakeProc {
    pub(crate) fn new() -> FakeProc {
        FakeProc {
            root: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.root.path().to_path_buf()
    }

    pub(crate) fn root(&self) -> &Path {
        self.root.path()
    }

    /// Writes (or replaces) the process's directory.
    pub(crate) fn add(&self, p: &FakeProcess<'_>) {
        let dir = self.root.path().join(p.pid.to_string());
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).expect("mkdir");
        let stat = stat_line(p.pid, p.comm, p.ppid, p.tty_nr, p.flags, p.start);
        fs::write(dir.join("stat"), stat).expect("stat");
        fs::write(dir.join("status"), p.status).expect("status");
        fs::write(dir.join("cmdline"), &p.cmdline).expect("cmdline");
        if let Some(cgroup) = p.cgroup {
            fs::write(dir.join("cgroup"), cgroup).expect("cgroup");
        }
        for (link, target) in [("exe", p.exe), ("cwd", p.cwd)] {
            if let Some(target) = target {
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), dir.join(link))
                    .expect("symlink");
            }
        }
    }

    pub(crate) fn remove(&self, pid: u32) {
        fs::remove_dir_all(self.root.path().join(pid.to_string())).expect("rm");
    }
}
