//! Seed data from `/proc` for processes that started before the sensor.
//!
//! The kernel side only sees execs that happen while it is attached; every
//! process already running at start (the shell an attacker sits in, the web
//! server whose child is about to run `sh`) would otherwise appear as a
//! parent with no name, args or container. [`scan`] reads them once at start
//! so the process table can be seeded.
//!
//! Reading `/proc` races with processes exiting and pids being reused, so:
//! - a process that vanishes mid-read is an ordinary outcome, counted in
//!   [`ScanResult::errors`], never a failure of the scan;
//! - after reading, `stat` is read again and the snapshot is discarded if
//!   the start time changed (the pid was reused for another process while we
//!   read, so the files may describe two different processes);
//! - files that need ptrace access (`exe`, `cwd`) are optional.
//!
//! The root is a parameter so tests can use a fake tree.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::byte_text::{to_text, EscapedFields};

/// `PF_KTHREAD` in the `flags` field of `/proc/<pid>/stat` (include/linux/sched.h).
const PF_KTHREAD: u64 = 0x0020_0000;
/// The pid of `kthreadd`, parent of every kernel thread.
const KTHREADD_PID: u32 = 2;
/// What the kernel appends to `/proc/<pid>/exe` when the file was unlinked.
const DELETED_SUFFIX: &[u8] = b" (deleted)";

/// One process as `/proc` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcSnapshot {
    /// Thread-group id.
    pub pid: u32,
    /// pidfs inode of the process (see [`pidfs_ino`]), when available.
    pub pidfs_ino: Option<u64>,
    /// Parent's thread-group id (0 for init and kthreadd).
    pub ppid: u32,
    /// Start time: `stat` field 22, clock ticks since boot. With `pid` it
    /// identifies the process instance (pids are reused).
    pub start_ticks: u64,
    /// The kernel's `comm` (at most 15 bytes; may have been changed by
    /// `prctl(PR_SET_NAME)`). Kept for diagnostics only: no ECS field is
    /// derived from it.
    pub comm: String,
    /// ECS `process.name`; see [`process_name`] for how it is chosen.
    /// Empty when it cannot be known (no access to `exe`).
    pub name: String,
    /// Which text fields had to be escaped (not UTF-8).
    pub escaped: EscapedFields,
    /// ECS `process.interactive` as `/proc` shows it now (see
    /// [`interactive_from_proc`]); `None` when the fds could not be read.
    pub interactive: Option<bool>,
    /// ECS `process.executable`: the target of `/proc/<pid>/exe`, without the
    /// kernel's ` (deleted)` suffix. `None` for kernel threads, zombies, or
    /// without ptrace access.
    pub executable: Option<String>,
    /// The executable was unlinked after exec (`/proc/<pid>/exe` ends in
    /// ` (deleted)`): a classic sign of a dropped-and-removed payload, worth
    /// keeping even though ECS has no field for it.
    pub executable_deleted: bool,
    /// `process.args` from `/proc/<pid>/cmdline`, see [`split_cmdline`].
    pub args: Vec<String>,
    /// `process.working_directory`; `None` without ptrace access.
    pub cwd: Option<String>,
    /// Real uid.
    pub uid: u32,
    /// Real gid.
    pub gid: u32,
    /// Effective uid.
    pub euid: u32,
    /// Controlling tty as the kernel encodes it (`stat` field 7:
    /// `major << 8 | (minor & 0xff) | (minor & !0xff) << 12`); 0 = none.
    pub tty_nr: u32,
    /// The cgroup v2 path (the `0::` line of `/proc/<pid>/cgroup`).
    pub cgroup_path: Option<String>,
    /// A kernel thread (`PF_KTHREAD`, or kthreadd and its children).
    pub is_kernel_thread: bool,
    /// Process group id (`stat` field 5), in the pid namespace of this
    /// `/proc` mount (the host's for the sensor).
    pub pgid: u32,
    /// Session id (`stat` field 6), same view.
    pub sid: u32,
    /// Inode of the process's pid namespace (`ns/pid`); `None` without
    /// ptrace access.
    pub pid_ns: Option<u32>,
}

/// Why one process could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcScanError {
    /// The process exited (or its pid was reused) while we read it.
    #[error("process {pid} exited while it was being read")]
    Vanished {
        /// The pid.
        pid: u32,
    },
    /// A `/proc` file could not be read for another reason.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A `/proc` file did not have the expected format.
    #[error("cannot parse {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: &'static str,
    },
}

/// The outcome of [`scan`].
#[derive(Debug, Default)]
pub struct ScanResult {
    /// Processes read, oldest first (by start time, then pid), so that a
    /// parent comes before its children when the table is seeded.
    pub snapshots: Vec<ProcSnapshot>,
    /// Processes that could not be read (mostly: exited during the scan).
    pub errors: usize,
}

/// Read every process under `proc_root` (normally `/proc`).
pub fn scan(proc_root: &Path) -> ScanResult {
    let mut result = ScanResult::default();
    let entries = match std::fs::read_dir(proc_root) {
        Ok(entries) => entries,
        Err(err) => {
            log::warn!("cannot list {}: {err}", proc_root.display());
            result.errors += 1;
            return result;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = parse_pid(name.as_bytes()) else {
            continue;
        };
        match read_process(proc_root, pid) {
            Ok(snapshot) => result.snapshots.push(snapshot),
            Err(ProcScanError::Vanished { .. }) => result.errors += 1,
            Err(err) => {
                log::debug!("proc scan: {err}");
                result.errors += 1;
            }
        }
    }
    result.snapshots.sort_by_key(|s| (s.start_ticks, s.pid));
    result
}

/// Read one process.
pub fn read_process(proc_root: &Path, pid: u32) -> Result<ProcSnapshot, ProcScanError> {
    let dir = proc_root.join(pid.to_string());
    let stat_path = dir.join("stat");
    let stat_bytes = read_required(pid, &stat_path)?;
    let stat = parse_stat(&stat_bytes).ok_or(ProcScanError::Parse {
        path: stat_path.clone(),
        reason: "malformed stat line",
    })?;

    let status_path = dir.join("status");
    let status = read_required(pid, &status_path)?;
    let (uid, euid) = status_ids(&status, b"Uid:").ok_or(ProcScanError::Parse {
        path: status_path.clone(),
        reason: "no Uid line",
    })?;
    let (gid, _egid) = status_ids(&status, b"Gid:").ok_or(ProcScanError::Parse {
        path: status_path,
        reason: "no Gid line",
    })?;

    let cmdline = read_required(pid, &dir.join("cmdline"))?;
    let raw_args = split_cmdline(&cmdline);

    let is_kernel_thread =
        stat.flags & PF_KTHREAD != 0 || pid == KTHREADD_PID || stat.ppid == KTHREADD_PID;

    // Optional: need ptrace access, absent for kernel threads and zombies.
    let exe = read_link_bytes(&dir.join("exe"));
    let (exe, executable_deleted) = match exe {
        Some(mut target) if !is_kernel_thread => {
            let deleted = target.ends_with(DELETED_SUFFIX);
            if deleted {
                target.truncate(target.len() - DELETED_SUFFIX.len());
            }
            (Some(target), deleted)
        }
        _ => (None, false),
    };
    let cwd = if is_kernel_thread {
        None
    } else {
        read_link_bytes(&dir.join("cwd"))
    };
    let cgroup_path = std::fs::read(dir.join("cgroup")).ok().and_then(|text| {
        text.split(|&b| b == b'\n')
            .find_map(|line| line.strip_prefix(b"0::"))
            .map(|p| to_text(p).into_owned())
    });

    let (name, interactive) = if is_kernel_thread {
        (stat.comm.to_vec(), Some(false))
    } else {
        (
            process_name(exe.as_deref()),
            interactive_from_proc(&dir, stat.tty_nr),
        )
    };

    // Same start time as when we began, or the pid now belongs to another
    // process and what we read may be a mix of two.
    match std::fs::read(&stat_path)
        .ok()
        .as_deref()
        .and_then(parse_stat)
    {
        Some(again) if again.start_ticks == stat.start_ticks => {}
        _ => return Err(ProcScanError::Vanished { pid }),
    }

    let mut esc = EscapedFields::default();
    Ok(ProcSnapshot {
        pid,
        pidfs_ino: if proc_root == Path::new("/proc") {
            pidfs_ino(pid)
        } else {
            None
        },
        ppid: stat.ppid,
        start_ticks: stat.start_ticks,
        comm: to_text(stat.comm).into_owned(),
        name: esc.text(EscapedFields::NAME, &name).into_owned(),
        interactive,
        executable: exe.map(|e| esc.text(EscapedFields::EXECUTABLE, &e).into_owned()),
        executable_deleted,
        args: raw_args
            .iter()
            .map(|a| esc.text(EscapedFields::ARGS, a).into_owned())
            .collect(),
        cwd: cwd.map(|c| esc.text(EscapedFields::WORKING_DIRECTORY, &c).into_owned()),
        escaped: esc,
        uid,
        gid,
        euid,
        tty_nr: stat.tty_nr,
        cgroup_path,
        is_kernel_thread,
        pgid: stat.pgid,
        sid: stat.sid,
        pid_ns: read_link_bytes(&dir.join("ns/pid")).and_then(|l| ns_inode(&l)),
    })
}

/// `pid:[4026531836]` → 4026531836.
fn ns_inode(link: &[u8]) -> Option<u32> {
    let open = memchr::memchr(b'[', link)?;
    let digits = link.get(open + 1..link.len().checked_sub(1)?)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The pidfs inode of `pid` (Linux 6.9+): the same number the kernel
/// programs read from `struct pid`, unique per process instance for the
/// whole boot. `None` where pidfds are not pidfs inodes (older kernels).
pub fn pidfs_ino(pid: u32) -> Option<u64> {
    const PIDFS_MAGIC: i64 = 0x5049_4446;
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
    let fs = rustix::fs::fstatfs(&fd).ok()?;
    if fs.f_type as i64 != PIDFS_MAGIC {
        return None;
    }
    Some(rustix::fs::fstat(&fd).ok()?.st_ino)
}

/// ECS `process.name` from what `/proc` offers: the basename of
/// `/proc/<pid>/exe`, the file the kernel executed — what the live exec
/// path names a process after (the kernel's walk of the same file), so a
/// process is named alike whether the sensor saw it start or found it
/// running: symlinks resolved, a script after its interpreter. Never from
/// `comm` (which the process sets itself with `prctl(PR_SET_NAME)`) nor
/// from argv (which it chose, and can overwrite). Empty when unknown.
pub fn process_name(exe: Option<&[u8]>) -> Vec<u8> {
    exe.map(|e| basename(e).to_vec()).unwrap_or_default()
}

/// ECS `process.interactive` from `/proc`: the controlling tty (`stat`
/// field 7) is the character device behind fd 0 and fd 2 — the same rule
/// the kernel programs apply at exec. `None` when the fds cannot be read
/// (no ptrace access), so the value is never guessed.
pub fn interactive_from_proc(dir: &Path, tty_nr: u32) -> Option<bool> {
    let ctty = (tty_nr != 0).then(|| {
        let major = (tty_nr >> 8) & 0xfff;
        let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
        (major, minor)
    });
    let fd_dev = |fd: &str| -> Option<Option<(u32, u32)>> {
        match rustix::fs::stat(dir.join("fd").join(fd)) {
            Ok(st) => Ok(Some(st)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e),
        }
        .ok()
        .map(|st| {
            st.filter(|st| {
                rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::CharacterDevice
            })
            .map(|st| {
                let dev = rustix::fs::Dev::from(st.st_rdev);
                (rustix::fs::major(dev), rustix::fs::minor(dev))
            })
        })
    };
    let fd0 = fd_dev("0")?;
    let fd2 = fd_dev("2")?;
    Some(ctty.is_some() && fd0 == ctty && fd2 == ctty)
}

fn basename(path: &[u8]) -> &[u8] {
    match memchr::memrchr(b'/', path) {
        Some(slash) => path.get(slash + 1..).unwrap_or_default(),
        None => path,
    }
}

/// Split `/proc/<pid>/cmdline` into arguments.
///
/// Arguments are NUL-terminated; empty arguments in the middle are real
/// (`sh -c '' x`) and kept. Trailing NULs are all dropped, not just the
/// final terminator: programs that rewrite their command line
/// (setproctitle: nginx, postgres, sshd) pad the rest of the original argv
/// area with NULs, which would otherwise show up as dozens of empty
/// arguments. The cost is that genuinely empty *last* arguments are lost,
/// which is indistinguishable from padding in `/proc`. A rewritten command
/// line such as `nginx: worker process` stays one argument, as the process
/// wrote it.
pub fn split_cmdline(cmdline: &[u8]) -> Vec<&[u8]> {
    let end = cmdline.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    match cmdline.get(..end) {
        Some(body) if !body.is_empty() => body.split(|&b| b == 0).collect(),
        _ => Vec::new(),
    }
}

/// The fields of `/proc/<pid>/stat` we use.
struct Stat<'a> {
    comm: &'a [u8],
    ppid: u32,
    pgid: u32,
    sid: u32,
    tty_nr: u32,
    flags: u64,
    start_ticks: u64,
}

/// Parse a stat line: `pid (comm) state ppid pgrp session tty_nr tpgid
/// flags … starttime …`. `comm` may contain anything, spaces and `)`
/// included, so it ends at the LAST `)`.
///
/// Hand-written rather than `procfs::process::Stat`: that parser slices
/// the line at the parentheses without checking them and panics on a
/// malformed line (procfs-core 0.18, `stat.rs`), where this returns `None`
/// (proptest `parsers_never_panic`); it also keeps `comm`'s bytes.
fn parse_stat(line: &[u8]) -> Option<Stat<'_>> {
    let open = memchr::memchr(b'(', line)?;
    let close = memchr::memrchr(b')', line)?;
    let comm = line.get(open + 1..close)?;
    let rest = std::str::from_utf8(line.get(close + 1..)?).ok()?;
    // Index 0 is field 3 (state).
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).copied();
    Some(Stat {
        comm,
        ppid: field(4)?.parse().ok()?,
        pgid: field(5)?.parse().ok()?,
        sid: field(6)?.parse().ok()?,
        // Printed with %d: a negative value is the same 32 bits.
        tty_nr: field(7)?.parse::<i32>().ok()? as u32,
        flags: field(9)?.parse().ok()?,
        start_ticks: field(22)?.parse().ok()?,
    })
}

/// What `/proc/<pid>/stat` says about a pid's identity now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcStart {
    /// Start time in clock ticks since boot.
    Ticks(u64),
    /// No such process.
    Gone,
    /// Could not tell (permissions, parse error): never treat as gone.
    Unknown,
}

/// The start ticks of `pid` under `root` (`/proc`): with the pid, which
/// process instance holds it now.
pub fn start_ticks(root: &Path, pid: u32) -> ProcStart {
    match std::fs::read(root.join(pid.to_string()).join("stat")) {
        Ok(bytes) => {
            parse_stat(&bytes).map_or(ProcStart::Unknown, |s| ProcStart::Ticks(s.start_ticks))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => {
            ProcStart::Gone
        }
        Err(_) => ProcStart::Unknown,
    }
}

/// `(real, effective)` from a `Uid:`/`Gid:` line of `/proc/<pid>/status`.
fn status_ids(status: &[u8], key: &[u8]) -> Option<(u32, u32)> {
    let line = status
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(key))?;
    let text = std::str::from_utf8(line).ok()?;
    let mut ids = text.split_ascii_whitespace().map(str::parse::<u32>);
    Some((ids.next()?.ok()?, ids.next()?.ok()?))
}

fn parse_pid(name: &[u8]) -> Option<u32> {
    if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

/// Read a file every live process has; "not found" / ESRCH mean the process
/// is gone.
fn read_required(pid: u32, path: &Path) -> Result<Vec<u8>, ProcScanError> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound || source.raw_os_error() == Some(libc::ESRCH) {
            ProcScanError::Vanished { pid }
        } else {
            ProcScanError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

fn read_link_bytes(path: &Path) -> Option<Vec<u8>> {
    std::fs::read_link(path)
        .ok()
        .map(|p| p.into_os_string().into_encoded_bytes())
}

#[cfg(test)]
// Tests fail by panicking; that is what these lints exist to keep out of
// production code.
#[allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::fs;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use crate::context::fake_proc::{stat_line, FakeProcess};

    /// The shared fake `/proc`, in this module's shape.
    struct FakeProc {
        tree: crate::context::fake_proc::FakeProc,
    }

    impl FakeProc {
        fn new() -> Self {
            Self {
                tree: crate::context::fake_proc::FakeProc::new(),
            }
        }
        fn root(&self) -> &Path {
            self.tree.root()
        }
        fn add(
            &self,
            pid: u32,
            comm: &[u8],
            cmdline: &[u8],
            exe: Option<&[u8]>,
            flags: u64,
            ppid: u32,
        ) {
            self.tree.add(&FakeProcess {
                pid,
                ppid,
                start: 5000 + u64::from(pid),
                comm,
                cmdline: cmdline.to_vec(),
                exe,
                cwd: Some(b"/srv/app"),
                flags,
                tty_nr: 34817,
                status: "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t100\t101\t101\t101\n",
                cgroup: Some("1:name=systemd:/x\n0::/system.slice/foo.service\n"),
            });
        }
        fn read(&self, pid: u32) -> ProcSnapshot {
            read_process(self.root(), pid).unwrap()
        }
    }

    #[test]
    fn comm_with_parens_and_spaces() {
        let p = FakeProc::new();
        p.add(10, b"a) (b c) ", b"/bin/x\0", Some(b"/bin/x"), 0, 1);
        let s = p.read(10);
        assert_eq!(s.comm, "a) (b c) ");
        assert_eq!(s.name, "x");
        assert_eq!(s.ppid, 1);
        assert_eq!(s.tty_nr, 34817);
        assert_eq!(s.start_ticks, 5010);
        assert_eq!((s.uid, s.euid, s.gid), (1000, 0, 100));
        assert_eq!(s.cgroup_path.as_deref(), Some("/system.slice/foo.service"));
        assert_eq!(s.cwd.as_deref(), Some("/srv/app"));
        assert!(!s.is_kernel_thread);
    }

    #[test]
    fn name_comes_from_the_executable_never_from_comm() {
        let p = FakeProc::new();
        // A script: the interpreter the kernel executed names it.
        p.add(
            11,
            b"gunicorn-worker",
            b"/usr/bin/python3\0/opt/venv/bin/gunicorn-worker-main\0--bind\x00127.0.0.1:8000\0",
            Some(b"/usr/bin/python3.11"),
            0,
            1,
        );
        let s = p.read(11);
        assert_eq!(s.name, "python3.11");
        assert_eq!(
            s.args,
            [
                "/usr/bin/python3",
                "/opt/venv/bin/gunicorn-worker-main",
                "--bind",
                "127.0.0.1:8000"
            ]
        );
        assert_eq!(s.executable.as_deref(), Some("/usr/bin/python3.11"));
        p.add(12, b"bash", b"-bash\0", Some(b"/usr/bin/bash"), 0, 1);
        assert_eq!(p.read(12).name, "bash");
        p.add(
            13,
            b"systemd-journal",
            b"nothing-alike\0",
            Some(b"/lib/systemd/systemd-journald"),
            0,
            1,
        );
        assert_eq!(p.read(13).name, "systemd-journald");
        // Renamed with prctl(PR_SET_NAME): comm says nothing.
        p.add(
            14,
            b"kworker/0:1",
            b"nginx\0",
            Some(b"/usr/sbin/nginx"),
            0,
            1,
        );
        assert_eq!(p.read(14).name, "nginx");
        // ... and a process calling itself a web server is not one.
        p.add(15, b"nginx", b"nginx\0", Some(b"/tmp/x"), 0, 1);
        assert_eq!(p.read(15).name, "x");
    }

    #[test]
    fn interactive_needs_the_controlling_tty_on_stdin_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let fd = dir.path().join("fd");
        fs::create_dir(&fd).unwrap();
        std::os::unix::fs::symlink("/dev/null", fd.join("0")).unwrap();
        std::os::unix::fs::symlink("/dev/null", fd.join("2")).unwrap();
        // /dev/null is 1:3; tty_nr encodes major << 8 | minor.
        let null = (1 << 8) | 3;
        assert_eq!(interactive_from_proc(dir.path(), null), Some(true));
        assert_eq!(interactive_from_proc(dir.path(), 0), Some(false), "no ctty");
        assert_eq!(interactive_from_proc(dir.path(), (1 << 8) | 5), Some(false));
        fs::remove_file(fd.join("2")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", fd.join("2")).unwrap();
        assert_eq!(interactive_from_proc(dir.path(), null), Some(false));
        fs::remove_file(fd.join("2")).unwrap();
        assert_eq!(
            interactive_from_proc(dir.path(), null),
            Some(false),
            "closed"
        );
        // A pipe or socket on stdin is not a terminal.
        fs::remove_file(fd.join("0")).unwrap();
        fs::write(fd.join("0"), b"").unwrap();
        assert_eq!(interactive_from_proc(dir.path(), null), Some(false));
    }

    /// A real process renames itself with prctl(PR_SET_NAME): the name
    /// read from /proc is still its executable's.
    #[test]
    fn renamed_process_keeps_its_executables_name() {
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import ctypes,sys; ctypes.CDLL(None).prctl(15, b'kworker', 0, 0, 0); \
                 print('ok', flush=True); sys.stdin.read()",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let s = read_process(Path::new("/proc"), child.id()).unwrap();
        drop(child.stdin.take());
        child.wait().unwrap();
        assert_eq!(s.comm, "kworker");
        let exe = s.executable.clone().unwrap();
        assert_eq!(s.name, exe.rsplit('/').next().unwrap());
        assert!(s.name.starts_with("python3"), "{}", s.name);
    }

    #[test]
    fn cmdline_shapes() {
        let p = FakeProc::new();
        // Zombie / empty cmdline: no args, no exe.
        p.add(20, b"defunct", b"", None, 0, 1);
        let s = p.read(20);
        assert!(s.args.is_empty());
        assert_eq!(s.name, "", "no executable: no name, never comm");
        assert_eq!(s.executable, None);
        // Non-UTF-8 argument: escaped losslessly.
        p.add(21, b"cat", b"cat\0caf\xe9\0", Some(b"/usr/bin/cat"), 0, 1);
        let s = p.read(21);
        assert_eq!(s.args, ["cat", "caf\\xe9"]);
        assert_eq!(
            crate::byte_text::from_escaped(&s.args[1]).as_deref(),
            Some(&b"caf\xe9"[..])
        );
        // nginx rewrote its title and padded with NULs.
        p.add(
            22,
            b"nginx",
            b"nginx: worker process\0\0\0\0\0\0\0\0",
            Some(b"/usr/sbin/nginx"),
            0,
            1,
        );
        assert_eq!(p.read(22).args, ["nginx: worker process"]);
        // Interior empty args are real.
        p.add(23, b"sh", b"sh\0-c\0\0x\0", Some(b"/bin/sh"), 0, 1);
        assert_eq!(p.read(23).args, ["sh", "-c", "", "x"]);
        // No terminator at all (setproctitle without one).
        p.add(
            24,
            b"postgres",
            b"postgres: checkpointer",
            Some(b"/usr/lib/postgresql/16/bin/postgres"),
            0,
            1,
        );
        assert_eq!(p.read(24).args, ["postgres: checkpointer"]);
    }

    #[test]
    fn deleted_executable() {
        let p = FakeProc::new();
        p.add(
            30,
            b"payload",
            b"./payload\0",
            Some(b"/tmp/payload (deleted)"),
            0,
            1,
        );
        let s = p.read(30);
        assert_eq!(s.executable.as_deref(), Some("/tmp/payload"));
        assert!(s.executable_deleted);
    }

    #[test]
    fn kernel_threads() {
        let p = FakeProc::new();
        p.add(2, b"kthreadd", b"", None, PF_KTHREAD, 0);
        p.add(40, b"kworker/0:1-events", b"", None, PF_KTHREAD | 0x40, 2);
        p.add(41, b"not-a-kthread", b"x\0", Some(b"/x"), 0x40, 1);
        assert!(p.read(2).is_kernel_thread);
        let k = p.read(40);
        assert!(k.is_kernel_thread);
        assert_eq!(k.name, "kworker/0:1-events");
        assert!(!p.read(41).is_kernel_thread);
    }

    #[test]
    fn vanished_and_broken() {
        let p = FakeProc::new();
        assert!(matches!(
            read_process(p.root(), 99),
            Err(ProcScanError::Vanished { pid: 99 })
        ));
        p.add(50, b"ok", b"ok\0", None, 0, 1);
        fs::write(p.root().join("50/stat"), "garbage").unwrap();
        assert!(matches!(
            read_process(p.root(), 50),
            Err(ProcScanError::Parse { .. })
        ));
        p.add(51, b"ok", b"ok\0", None, 0, 1);
        fs::remove_file(p.root().join("51/cmdline")).unwrap();
        assert!(matches!(
            read_process(p.root(), 51),
            Err(ProcScanError::Vanished { pid: 51 })
        ));

        p.add(52, b"fine", b"fine\0", None, 0, 1);
        fs::create_dir(p.root().join("self")).unwrap();
        fs::create_dir(p.root().join("123abc")).unwrap();
        let result = scan(p.root());
        assert_eq!(result.errors, 2);
        let pids: Vec<u32> = result.snapshots.iter().map(|s| s.pid).collect();
        assert_eq!(pids, [52]);
    }

    #[test]
    fn stat_parser_never_panics() {
        for line in [
            &b""[..],
            b"(",
            b")",
            b")(",
            b"1 (x",
            b"1 (x) S",
            b"1 (x) S a b c",
            b"1 () S 1 2 3 -1 -1 0",
        ] {
            assert!(parse_stat(line).is_none());
        }
        let negative_tty = stat_line(1, b"x", 0, -1, 0, 7);
        assert_eq!(parse_stat(&negative_tty).map(|s| s.tty_nr), Some(u32::MAX));
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse_stat(&bytes);
            let _ = split_cmdline(&bytes);
            let _ = status_ids(&bytes, b"Uid:");
        }
    }

    // ---- against this machine's real /proc ----

    #[test]
    fn own_process() {
        let pid = std::process::id();
        let s = read_process(Path::new("/proc"), pid).unwrap();
        let want: Vec<String> = std::env::args_os()
            .map(|a| to_text(a.as_bytes()).into_owned())
            .collect();
        assert_eq!(s.args, want);
        assert_eq!(s.ppid, std::os::unix::process::parent_id());
        assert!(s.start_ticks > 0);
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(s.cwd.as_deref().map(Path::new), Some(cwd.as_path()));
        let exe = std::env::current_exe().unwrap();
        assert_eq!(s.executable.as_deref().map(Path::new), Some(exe.as_path()));
        // SAFETY: getuid/getgid/geteuid cannot fail and touch no memory.
        let (uid, gid, euid) = unsafe { (libc::getuid(), libc::getgid(), libc::geteuid()) };
        assert_eq!((s.uid, s.gid, s.euid), (uid, gid, euid));
        assert!(!s.is_kernel_thread);
        let own_cgroup = fs::read_to_string("/proc/self/cgroup").unwrap();
        if let Some(line) = own_cgroup.lines().find_map(|l| l.strip_prefix("0::")) {
            assert_eq!(s.cgroup_path.as_deref(), Some(line));
        }
    }

    /// Wait until `pid` has exec'd (its comm is `comm`) and the new image's
    /// argv is in place: the kernel sets comm before the ELF loader sets
    /// `mm->arg_start`, so for a moment cmdline reads empty.
    fn wait_for_comm(pid: u32, comm: &str) -> ProcSnapshot {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(s) = read_process(Path::new("/proc"), pid) {
                if s.comm == comm && !s.args.is_empty() {
                    return s;
                }
            }
            assert!(Instant::now() < deadline, "pid {pid} never became {comm}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn spawned_child() {
        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        let s = wait_for_comm(child.id(), "sleep");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(s.args, ["sleep", "1000"]);
        assert_eq!(s.name, "sleep");
        assert_eq!(s.ppid, std::process::id());
        assert!(s
            .executable
            .as_deref()
            .is_some_and(|e| e.ends_with("/sleep")));
        assert!(!s.executable_deleted);

        let all = scan(Path::new("/proc"));
        assert!(all.snapshots.iter().any(|p| p.pid == std::process::id()));
        assert!(all.snapshots.iter().any(|p| p.pid == 1));
        assert!(all
            .snapshots
            .windows(2)
            .all(|w| (w[0].start_ticks, w[0].pid) <= (w[1].start_ticks, w[1].pid)));
    }

    /// A real script with a name longer than 15 bytes: comm is truncated,
    /// argv is `[/bin/sh, <script>, arg]`, the name is the interpreter's,
    /// the file the kernel executed (as the live exec path names it).
    #[test]
    fn spawned_long_named_script() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("a-long-script-name-for-test.sh");
        fs::write(&script, "#!/bin/sh\nread line\n").unwrap();
        let mut perms = fs::metadata(&script).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        fs::set_permissions(&script, perms).unwrap();
        let mut child = Command::new(&script)
            .arg("x y")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let s = wait_for_comm(child.id(), "a-long-script-n");
        drop(child.stdin.take()); // EOF: `read` returns, the script exits
        child.wait().unwrap();
        let sh = fs::canonicalize("/bin/sh").unwrap();
        assert_eq!(s.executable.as_deref().map(Path::new), Some(sh.as_path()));
        assert_eq!(
            Some(s.name.as_str()),
            sh.file_name().and_then(|n| n.to_str())
        );
        assert_eq!(s.args.get(1).map(String::as_str), script.to_str());
        assert_eq!(s.args.last().map(String::as_str), Some("x y"));
    }

    /// Started through a symlink under another name: named after the file
    /// the link leads to, never the link.
    #[test]
    fn spawned_through_a_symlink_is_named_after_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("w");
        std::os::unix::fs::symlink("/bin/sleep", &link).unwrap();
        let mut child = Command::new(&link).arg("5").spawn().unwrap();
        let s = wait_for_comm(child.id(), "w");
        child.kill().unwrap();
        child.wait().unwrap();
        let sleep = fs::canonicalize("/bin/sleep").unwrap();
        assert_eq!(
            s.executable.as_deref().map(Path::new),
            Some(sleep.as_path())
        );
        assert_eq!(s.name, "sleep");
    }

    #[test]
    fn pidfs_inode_identifies_an_instance() {
        let me = pidfs_ino(std::process::id());
        assert_eq!(me, pidfs_ino(std::process::id()), "stable for one instance");
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let other = pidfs_ino(child.id());
        child.kill().unwrap();
        child.wait().unwrap();
        if let (Some(a), Some(b)) = (me, other) {
            assert_ne!(a, b);
        }
        assert_eq!(pidfs_ino(u32::MAX), None);
    }
}
