//! The userspace process table: what the sensor knows about every live
//! process, so an exec event can carry its parent's name, executable and
//! args (the parent exec'd long before, or before the sensor started).
//!
//! # Identity
//! Pids are reused, so a process instance is `(pid, start time)`. The kernel
//! reports `task->start_boottime` in ns; `/proc/<pid>/stat` reports the same
//! clock in ticks (`start_boottime / (1e9 / CLK_TCK)`, truncated). Every
//! identity comparison is done in ticks ([`boottime_ns_to_ticks`]) so a
//! process seeded from `/proc` and the same process seen by the kernel
//! compare equal. The table holds at most one entry per pid (only one
//! instance can own a pid at a time); an entry whose start differs from an
//! event's is another process and is replaced whole, never merged.
//!
//! # Lifecycle
//! - [`ProcessTable::seed`]: processes already running at start, from
//!   [`proc_scan::scan`] (parents first).
//! - [`ProcessTable::on_fork`]: the child is a copy of its parent (name,
//!   executable, args, cwd, uid/gid, interactivity): a pre-fork worker that
//!   never execs (nginx, gunicorn, php-fpm) *is* its master's image.
//! - [`ProcessTable::on_exec`]: the process gets its own image; the parent
//!   is looked up by `(ppid, parent start)` from the event.
//! - [`ProcessTable::on_exit`]: the entry is removed and returned (for an
//!   `end` event); the last few exited processes stay findable as parents
//!   for a short while, for a child whose exec was recorded while its parent
//!   was exiting.
//!
//! # Unknown and evicted processes
//! A parent not in the table (lost events, eviction) is read from
//! `/proc/<ppid>` once and accepted only if its start time there equals the
//! kernel's; otherwise it is `None` and the caller leaves the parent fields
//! absent. Nothing is ever filled in from a different process.
//!
//! # Memory
//! Bounded by [`TableConfig::capacity`] entries. When full, entries whose pid
//! is gone from `/proc` (or now belongs to another start time) are garbage
//! collected first; if that frees nothing, the least recently used entries
//! are evicted in a small batch. Strings are `Arc`-shared, so forked workers
//! cost one small struct each, not a copy of their master's argv. Measured
//! with a counting allocator in `tests/process_table_memory.rs`.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sensor_common::TTY_READ_ERROR;

use crate::byte_text::to_text;
use crate::event_decode::{ExecEvent, ExitEvent, ForkEvent};
use crate::proc_scan::{self, ProcSnapshot};

/// `USER_HZ` on every mainstream architecture; used when `sysconf` fails or
/// a caller passes 0.
pub const DEFAULT_CLK_TCK: u64 = 100;

/// How many exited processes stay findable as parents (see module docs).
const RECENTLY_EXITED: usize = 64;

/// What the kernel appends to `/proc/<pid>/exe` when the file was unlinked.
const DELETED_SUFFIX: &str = " (deleted)";

/// The system's clock ticks per second (`sysconf(_SC_CLK_TCK)`), or
/// [`DEFAULT_CLK_TCK`] if it cannot be read.
pub fn system_clk_tck() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks)
        .ok()
        .filter(|&t| t > 0)
        .unwrap_or(DEFAULT_CLK_TCK)
}

/// Kernel boot-time ns → `/proc` start ticks, exactly as the kernel's
/// `nsec_to_clock_t` does it for a `CLK_TCK` dividing 1e9 (all real ones):
/// `ns / (1e9 / CLK_TCK)`, truncating. `clk_tck == 0` means the default.
pub fn boottime_ns_to_ticks(ns: u64, clk_tck: u64) -> u64 {
    let clk_tck = if clk_tck == 0 {
        DEFAULT_CLK_TCK
    } else {
        clk_tck
    };
    let ns_per_tick = (1_000_000_000 / clk_tck).max(1);
    ns / ns_per_tick
}

const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// The standard FNV-1a 64 offset basis.
const FNV_OFFSET_A: u64 = 0xcbf2_9ce4_8422_2325;
/// A second, arbitrary basis: two independent 64-bit halves make the
/// 128-bit id collision-free in practice.
const FNV_OFFSET_B: u64 = 0x6c62_272e_07bb_0142;

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// ECS `process.entity_id`: 32 hex digits, a fixed hash (FNV-1a 64 with two
/// bases) of host id, boot id, pid and the process instance: its pidfs
/// inode where the kernel has pidfs (unique per instance for the whole
/// boot), else its start time in clock ticks (two processes that reuse a pid
/// within one tick would then share an id). On one kernel every source —
/// `/proc` at start-up, fork and exec records — gives the same kind.
///
/// A fixed algorithm (not std's `DefaultHasher`, which may change between
/// Rust releases) keeps ids stable across sensor restarts and versions. The
/// inputs are length-prefixed so no two different inputs share a byte
/// string. The boot id keeps ids distinct across reboots, where the same
/// pid and start ticks recur (pid 1 starts at nearly the same tick on every
/// boot).
pub fn entity_id(host_id: &str, boot_id: &str, pid: u32, instance: u64) -> String {
    let mut buf = Vec::with_capacity(host_id.len() + boot_id.len() + 20);
    for part in [host_id.as_bytes(), boot_id.as_bytes()] {
        buf.extend_from_slice(&(part.len() as u32).to_le_bytes());
        buf.extend_from_slice(part);
    }
    buf.extend_from_slice(&pid.to_le_bytes());
    buf.extend_from_slice(&instance.to_le_bytes());
    format!(
        "{:016x}{:016x}",
        fnv1a(FNV_OFFSET_A, &buf),
        fnv1a(FNV_OFFSET_B, &buf)
    )
}

/// Construction parameters of a [`ProcessTable`].
#[derive(Debug, Clone)]
pub struct TableConfig {
    /// Host identity for entity ids (the caller reads `/etc/machine-id`).
    pub host_id: String,
    /// Maximum number of entries (0 is treated as 1).
    pub capacity: usize,
    /// Normally `/proc`; a fake tree in tests. Also the source of the boot id
    /// (`sys/kernel/random/boot_id`, empty if absent).
    pub proc_root: PathBuf,
    /// Clock ticks per second ([`system_clk_tck`]); 0 means the default.
    pub clk_tck: u64,
}

/// Where an entry's data came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Read from `/proc` (seed, or fallback for an unknown process).
    Procfs,
    /// A fork child that has not exec'd: its image is its parent's.
    Fork,
    /// An exec the kernel reported.
    Exec,
}

/// One process instance. Immutable once built: an update replaces the
/// `Arc`, so a caller holding one keeps a consistent view of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Thread-group id.
    pub pid: u32,
    /// Parent's thread-group id when last seen (0 if unknown).
    pub ppid: u32,
    /// Start time in clock ticks since boot: with `pid`, the identity.
    pub start_ticks: u64,
    /// Exact start (`task->start_boottime`), known when the kernel reported
    /// this process; `None` for a process only read from `/proc`.
    pub start_boottime_ns: Option<u64>,
    /// ECS `process.name`.
    pub name: Arc<str>,
    /// ECS `process.executable` (absolute unless it could not be resolved).
    pub executable: Option<Arc<str>>,
    /// ECS `process.args` as captured.
    pub args: Arc<[String]>,
    /// The real argc (may exceed `args.len()`).
    pub args_count: u32,
    /// Fewer or shorter args were captured than the process had.
    pub args_truncated: bool,
    /// ECS `process.working_directory`, where available (see
    /// [`ProcessTable::on_exec`] for how fresh it is).
    pub working_directory: Option<Arc<str>>,
    /// ECS `process.entity_id` ([`entity_id`]).
    pub entity_id: Arc<str>,
    /// ECS `process.interactive` at exec; `None` when not known (`/proc`
    /// seed, or the kernel could not read the tty/fds).
    pub interactive: Option<bool>,
    /// Real uid at the last exec or `/proc` read; a fork child inherits its
    /// parent's (credentials are copied at fork; a later `setuid` in a
    /// worker is not observed until it execs).
    pub uid: u32,
    /// Real gid, same rules as `uid`.
    pub gid: u32,
    /// Cgroup v2 id from the kernel, when reported.
    pub cgroup_id: Option<u64>,
    /// Cgroup v2 path from `/proc`, when read (kept across fork/exec only
    /// while the kernel's cgroup id shows the process did not move).
    pub cgroup_path: Option<Arc<str>>,
    /// Where this data came from.
    pub origin: Origin,
    /// A `became_interactive` event was reported for this instance
    /// ([`ProcessTable::parent_became_interactive`]); `interactive` keeps
    /// the start value.
    pub became_interactive: bool,
}

impl ProcessInfo {
    /// ECS `process.command_line`: the args joined with single spaces.
    pub fn command_line(&self) -> String {
        self.args.join(" ")
    }
}

/// What [`ProcessTable::on_exec`] returns: the process after exec and its
/// parent at the moment of the exec. `Arc`s, so the caller can keep them
/// while the table changes.
#[derive(Debug, Clone)]
pub struct ExecContext {
    pub process: Arc<ProcessInfo>,
    /// `None`: the parent is unknown to the table, to `/proc`, or the kernel
    /// could not read it. Leave parent fields absent; never guess.
    pub parent: Option<Arc<ProcessInfo>>,
}

/// Counters for metrics and health output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Entries now.
    pub entries: usize,
    /// Entries inserted by [`ProcessTable::seed`].
    pub seeded: usize,
    /// Snapshots not seeded because the table was full.
    pub seed_skipped: usize,
    /// Live-looking entries evicted by LRU under capacity pressure.
    pub evicted: u64,
    /// Garbage collections run (each reads `/proc/<pid>/stat` per entry).
    pub gc_runs: u64,
    /// Entries removed by GC (pid gone or reused).
    pub gc_removed: u64,
    /// Unknown processes found in `/proc` with a matching start time.
    pub proc_fallback_hits: u64,
    /// Unknown processes not in `/proc`, or there with another start time.
    pub proc_fallback_misses: u64,
    /// Entries replaced by a different instance with the same pid (its exit
    /// was never seen).
    pub replaced_stale: u64,
    /// Execs whose parent ended up unknown.
    pub exec_parent_unknown: u64,
    /// Forks whose child could not be described (parent and child unknown).
    pub fork_unknown: u64,
    /// Exits of processes not in the table.
    pub exit_unknown: u64,
}

#[derive(Debug)]
struct Entry {
    info: Arc<ProcessInfo>,
    /// Value of the table's use clock at the last insert or parent lookup;
    /// unique per entry, so LRU selection is exact.
    last_used: u64,
}

/// The process table. Single-threaded by design: the live loop owns it and
/// handles records in ring-buffer order.
#[derive(Debug)]
pub struct ProcessTable {
    entries: HashMap<u32, Entry>,
    recently_exited: VecDeque<Arc<ProcessInfo>>,
    host_id: String,
    boot_id: String,
    capacity: usize,
    proc_root: PathBuf,
    clk_tck: u64,
    use_clock: u64,
    inserts_since_gc: usize,
    stats: TableStats,
}

/// What `/proc/<pid>/stat` says about a pid's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProcStart {
    Ticks(u64),
    Gone,
    /// Could not tell (permissions, parse error): never treat as gone.
    Unknown,
}

impl ProcessTable {
    /// An empty table. Reads the boot id under `proc_root` once.
    pub fn new(config: TableConfig) -> ProcessTable {
        let boot_id = std::fs::read_to_string(config.proc_root.join("sys/kernel/random/boot_id"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let capacity = config.capacity.max(1);
        ProcessTable {
            // Grown on demand: a large capacity is a bound, not a reservation
            // (pre-sizing for 65,536 costs ~3 MiB before any process).
            entries: HashMap::new(),
            recently_exited: VecDeque::with_capacity(RECENTLY_EXITED),
            host_id: config.host_id,
            boot_id,
            capacity,
            proc_root: config.proc_root,
            clk_tck: if config.clk_tck == 0 {
                DEFAULT_CLK_TCK
            } else {
                config.clk_tck
            },
            use_clock: 0,
            inserts_since_gc: 0,
            stats: TableStats::default(),
        }
    }

    /// Inserts processes read from `/proc` (feed them parents first, as
    /// [`proc_scan::scan`] returns them). Stops at capacity rather than
    /// evicting: the snapshots are all alive, and parents-first order means
    /// what was inserted has its ancestors. Returns how many were inserted.
    pub fn seed(&mut self, snapshots: impl IntoIterator<Item = ProcSnapshot>) -> usize {
        let mut inserted = 0;
        for snap in snapshots {
            if self.entries.len() >= self.capacity && !self.entries.contains_key(&snap.pid) {
                self.stats.seed_skipped += 1;
                continue;
            }
            let info = self.info_from_snapshot(snap, None, None);
            self.insert(Arc::new(info));
            inserted += 1;
        }
        self.stats.seeded += inserted;
        inserted
    }

    /// A new process: the child is a copy of its parent's image. A parent
    /// unknown to the table is read from `/proc` (start time must match);
    /// failing that, the child itself is read from `/proc`; failing that,
    /// no entry is made (counted in [`TableStats::fork_unknown`]).
    pub fn on_fork(&mut self, ev: &ForkEvent) {
        let pid = ev.child.tgid;
        let start_ns = ev.child.start_boottime_ns;
        let ticks = self.ticks(start_ns);
        // An exec of this very instance already handled (records from two
        // CPUs out of order) is newer than anything the fork can say.
        if let Some(e) = self.entries.get(&pid) {
            if e.info.start_ticks == ticks && e.info.origin == Origin::Exec {
                return;
            }
        }
        // Whatever else held this pid is dead: a new instance owns it now.
        if self
            .entries
            .get(&pid)
            .is_some_and(|e| e.info.start_ticks != ticks)
        {
            self.entries.remove(&pid);
            self.stats.replaced_stale += 1;
        }
        let cgroup_id = (ev.cgroup_id != 0).then_some(ev.cgroup_id);
        let parent = self.find_parent(ev.parent_tgid, ev.parent_start_boottime_ns);
        let info = match parent {
            Some(p) => ProcessInfo {
                pid,
                ppid: ev.parent_tgid,
                start_ticks: ticks,
                start_boottime_ns: Some(start_ns),
                name: Arc::clone(&p.name),
                executable: p.executable.clone(),
                args: Arc::clone(&p.args),
                args_count: p.args_count,
                args_truncated: p.args_truncated,
                working_directory: p.working_directory.clone(),
                entity_id: self.entity_id(pid, ticks, ev.child.pid_ino),
                interactive: p.interactive,
                uid: p.uid,
                gid: p.gid,
                cgroup_id,
                cgroup_path: if cgroup_id.is_some() && p.cgroup_id == cgroup_id {
                    p.cgroup_path.clone()
                } else {
                    None
                },
                origin: Origin::Fork,
                became_interactive: p.became_interactive,
            },
            None => match self.read_instance(pid, ticks) {
                Some(snap) => {
                    let mut info = self.info_from_snapshot(snap, Some(start_ns), cgroup_id);
                    info.ppid = ev.parent_tgid;
                    info
                }
                None => {
                    self.stats.fork_unknown += 1;
                    return;
                }
            },
        };
        self.insert(Arc::new(info));
    }

    /// An exec: the process gets its own image and the parent is looked up.
    ///
    /// Nothing here comes from `comm`, which the process sets itself
    /// (`prctl(PR_SET_NAME)`): a name must not be steerable after the fact.
    ///
    /// - name: basename of the execve filename (for a script, the script),
    ///   as Elastic's sensors report it; for an fd or `/proc` filename
    ///   (`/dev/fd/3`, `/proc/self/exe`) the basename of the executable the
    ///   kernel mapped; empty (left out) when neither is known.
    /// - executable: the filename if it is absolute and names a file; a
    ///   relative one joined to the cwd the kernel read; else the file the
    ///   kernel mapped (`mm->exe_file`, walked in the kernel, so exact even
    ///   for a process that is already gone); else `/proc/<pid>/exe` when
    ///   that is still this instance; else left out.
    /// - working_directory: the cwd the kernel read at exec (as the process
    ///   sees it, up to its root); if the kernel could not read all of it,
    ///   `/proc/<pid>/cwd` when that is still this instance; else left out —
    ///   never the pre-exec entry's, which may have changed directory since.
    pub fn on_exec(&mut self, ev: &ExecEvent) -> ExecContext {
        let pid = ev.task.tgid;
        let start_ns = ev.task.start_boottime_ns;
        let ticks = self.ticks(start_ns);
        let prior = self
            .entries
            .get(&pid)
            .filter(|e| e.info.start_ticks == ticks)
            .map(|e| Arc::clone(&e.info));

        let parent = match &ev.parent {
            Some(p) => self.find_parent(p.tgid, p.start_boottime_ns),
            None => None,
        };
        if parent.is_none() {
            self.stats.exec_parent_unknown += 1;
        }

        // The kernel reads the cwd at exec; /proc is the fallback (a
        // filesystem the walk could not finish), checked to be this instance.
        let live_cwd = match &ev.cwd {
            Some(cwd) => Some(Arc::<str>::from(to_text(cwd).as_ref())),
            None => self
                .read_link_of_instance(pid, ticks, "cwd")
                .map(Arc::<str>::from),
        };
        let known_cwd = live_cwd;

        let executable = self.resolve_executable(ev, pid, ticks, known_cwd.as_deref());
        let filename = ev.filename.as_slice();
        let direct = !filename.is_empty() && !ev.filename_truncated && !is_fd_path(filename);
        let name: Arc<str> = if direct {
            to_text(basename(filename)).into()
        } else {
            executable
                .as_deref()
                .map(|exe| to_text(basename(exe.as_bytes())).into())
                .unwrap_or_else(|| "".into())
        };

        let args: Vec<String> = ev.args.iter().map(|a| to_text(a).into_owned()).collect();
        let args_truncated = ev.args_truncated
            || ev.args_read_failed
            || u64::try_from(args.len()).map_or(true, |n| n < u64::from(ev.argc));
        let cgroup_id = (ev.cgroup_id != 0).then_some(ev.cgroup_id);
        let info = ProcessInfo {
            pid,
            ppid: ev
                .parent
                .map(|p| p.tgid)
                .or(prior.as_ref().map(|p| p.ppid))
                .unwrap_or(0),
            start_ticks: ticks,
            start_boottime_ns: Some(start_ns),
            name,
            executable,
            args: args.into(),
            args_count: ev.argc,
            args_truncated,
            working_directory: known_cwd,
            entity_id: self.entity_id(pid, ticks, ev.task.pid_ino),
            interactive: (ev.task.tty.flags & TTY_READ_ERROR == 0)
                .then(|| ev.task.tty.is_interactive()),
            uid: ev.uid,
            gid: ev.gid,
            cgroup_id,
            cgroup_path: prior
                .as_ref()
                .filter(|p| cgroup_id.is_some() && p.cgroup_id == cgroup_id)
                .and_then(|p| p.cgroup_path.clone()),
            origin: Origin::Exec,
            became_interactive: false,
        };
        let process = Arc::new(info);
        self.insert(Arc::clone(&process));
        ExecContext { process, parent }
    }

    /// The parent of this exec was not interactive when it started, yet the
    /// kernel now reads its controlling tty on stdin and stderr: returns the
    /// parent, once per instance (the entry is marked; its `interactive`
    /// keeps the start value, which is what `process.parent.interactive`
    /// reports).
    pub fn parent_became_interactive(
        &mut self,
        ev: &ExecEvent,
        ctx: &ExecContext,
    ) -> Option<Arc<ProcessInfo>> {
        let kernel = ev.parent.as_ref()?;
        let parent = ctx.parent.as_ref()?;
        if parent.interactive != Some(false)
            || parent.became_interactive
            || kernel.tty.flags & TTY_READ_ERROR != 0
            || !kernel.tty.is_interactive()
        {
            return None;
        }
        let marked = Arc::new(ProcessInfo {
            became_interactive: true,
            ..ProcessInfo::clone(parent)
        });
        if let Some(entry) = self.entries.get_mut(&parent.pid) {
            if entry.info.start_ticks == parent.start_ticks {
                entry.info = Arc::clone(&marked);
            }
        }
        Some(marked)
    }

    /// The last thread of a process exited: removes and returns its entry if
    /// it is the same instance. An entry that started *before* the exited
    /// instance is a process whose exit was missed: it is removed too (it
    /// cannot be alive) but not returned. An entry that started after it is
    /// a newer process and is kept.
    pub fn on_exit(&mut self, ev: &ExitEvent) -> Option<Arc<ProcessInfo>> {
        let ticks = self.ticks(ev.start_boottime_ns);
        let known = ev.start_boottime_ns != 0;
        let entry_start = self.entries.get(&ev.tgid).map(|e| e.info.start_ticks);
        match entry_start {
            Some(start) if known && start == ticks => {
                let entry = self.entries.remove(&ev.tgid)?;
                if self.recently_exited.len() >= RECENTLY_EXITED {
                    self.recently_exited.pop_front();
                }
                self.recently_exited.push_back(Arc::clone(&entry.info));
                Some(entry.info)
            }
            Some(start) if known && start < ticks => {
                self.entries.remove(&ev.tgid);
                self.stats.replaced_stale += 1;
                self.stats.exit_unknown += 1;
                None
            }
            _ => {
                self.stats.exit_unknown += 1;
                None
            }
        }
    }

    /// The entry for `pid`, whichever instance it is.
    pub fn get(&self, pid: u32) -> Option<&Arc<ProcessInfo>> {
        self.entries.get(&pid).map(|e| &e.info)
    }

    /// The entry for `pid` only if it is the instance that started at
    /// `start_ticks`.
    pub fn get_instance(&self, pid: u32, start_ticks: u64) -> Option<&Arc<ProcessInfo>> {
        self.get(pid).filter(|i| i.start_ticks == start_ticks)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Counters.
    pub fn stats(&self) -> TableStats {
        TableStats {
            entries: self.entries.len(),
            ..self.stats
        }
    }

    /// Boot-time ns → ticks with this table's `CLK_TCK`.
    pub fn ticks(&self, boottime_ns: u64) -> u64 {
        boottime_ns_to_ticks(boottime_ns, self.clk_tck)
    }

    // ---- internals ----

    /// `pid_ino` 0 = the kernel has no pidfs: identify by start ticks.
    fn entity_id(&self, pid: u32, start_ticks: u64, pid_ino: u64) -> Arc<str> {
        let instance = if pid_ino != 0 { pid_ino } else { start_ticks };
        entity_id(&self.host_id, &self.boot_id, pid, instance).into()
    }

    fn info_from_snapshot(
        &self,
        snap: ProcSnapshot,
        start_boottime_ns: Option<u64>,
        cgroup_id: Option<u64>,
    ) -> ProcessInfo {
        let args_count = u32::try_from(snap.args.len()).unwrap_or(u32::MAX);
        ProcessInfo {
            pid: snap.pid,
            ppid: snap.ppid,
            start_ticks: snap.start_ticks,
            start_boottime_ns,
            name: snap.name.into(),
            executable: snap.executable.map(Arc::from),
            args: snap.args.into(),
            args_count,
            args_truncated: false,
            working_directory: snap.cwd.map(Arc::from),
            entity_id: self.entity_id(snap.pid, snap.start_ticks, snap.pidfs_ino.unwrap_or(0)),
            interactive: snap.interactive,
            uid: snap.uid,
            gid: snap.gid,
            cgroup_id,
            cgroup_path: snap.cgroup_path.map(Arc::from),
            origin: Origin::Procfs,
            became_interactive: false,
        }
    }

    /// The parent instance `(pid, start)`: table, then recently exited, then
    /// `/proc` (inserted on a match). A start of 0 means the kernel could not
    /// read it: unknown.
    fn find_parent(&mut self, pid: u32, start_boottime_ns: u64) -> Option<Arc<ProcessInfo>> {
        if pid == 0 || start_boottime_ns == 0 {
            return None;
        }
        let ticks = self.ticks(start_boottime_ns);
        let mut newer_holds_pid = false;
        if let Some(entry) = self.entries.get_mut(&pid) {
            if entry.info.start_ticks == ticks {
                self.use_clock += 1;
                entry.last_used = self.use_clock;
                return Some(Arc::clone(&entry.info));
            }
            newer_holds_pid = entry.info.start_ticks > ticks;
        }
        if let Some(info) = self
            .recently_exited
            .iter()
            .rev()
            .find(|i| i.pid == pid && i.start_ticks == ticks)
        {
            return Some(Arc::clone(info));
        }
        if newer_holds_pid {
            // A newer process holds the pid: the one asked for is gone, and
            // /proc can only show the newer one.
            self.stats.proc_fallback_misses += 1;
            return None;
        }
        let snap = self.read_instance(pid, ticks)?;
        let info = Arc::new(self.info_from_snapshot(snap, Some(start_boottime_ns), None));
        self.insert(Arc::clone(&info));
        Some(info)
    }

    /// `/proc/<pid>` if it is the instance that started at `ticks`; counts
    /// the fallback hit or miss.
    fn read_instance(&mut self, pid: u32, ticks: u64) -> Option<ProcSnapshot> {
        match proc_scan::read_process(&self.proc_root, pid) {
            Ok(snap) if snap.start_ticks == ticks => {
                self.stats.proc_fallback_hits += 1;
                Some(snap)
            }
            _ => {
                self.stats.proc_fallback_misses += 1;
                None
            }
        }
    }

    /// The target of `/proc/<pid>/<link>` if `pid` is still the instance
    /// that started at `ticks` (checked after reading, so a pid reused
    /// mid-read is not mistaken for ours).
    fn read_link_of_instance(&self, pid: u32, ticks: u64, link: &str) -> Option<String> {
        let target = std::fs::read_link(self.proc_root.join(pid.to_string()).join(link)).ok()?;
        if proc_start(&self.proc_root, pid) != ProcStart::Ticks(ticks) {
            return None;
        }
        let bytes = target.into_os_string().into_encoded_bytes();
        Some(to_text(&bytes).into_owned())
    }

    fn resolve_executable(
        &self,
        ev: &ExecEvent,
        pid: u32,
        ticks: u64,
        cwd: Option<&str>,
    ) -> Option<Arc<str>> {
        let filename = ev.filename.as_slice();
        let usable = !filename.is_empty() && !ev.filename_truncated;
        if usable && filename.starts_with(b"/") && !is_fd_path(filename) {
            return Some(to_text(filename).into());
        }
        if usable && !filename.starts_with(b"/") {
            if let Some(cwd) = cwd.filter(|c| c.starts_with('/')) {
                return Some(join_relative(cwd, &to_text(filename)).into());
            }
        }
        if let Some(exe) = &ev.exe {
            return Some(to_text(exe).into());
        }
        let exe = self.read_link_of_instance(pid, ticks, "exe")?;
        let exe = exe.strip_suffix(DELETED_SUFFIX).unwrap_or(&exe);
        Some(exe.into())
    }

    fn insert(&mut self, info: Arc<ProcessInfo>) {
        let pid = info.pid;
        if !self.entries.contains_key(&pid) && self.entries.len() >= self.capacity {
            self.make_room();
        }
        self.use_clock += 1;
        let start = info.start_ticks;
        let old = self.entries.insert(
            pid,
            Entry {
                info,
                last_used: self.use_clock,
            },
        );
        if old.is_some_and(|o| o.info.start_ticks != start) {
            self.stats.replaced_stale += 1;
        }
        self.inserts_since_gc += 1;
    }

    /// GC (at most once per `capacity / 8` inserts: it costs a `stat` read
    /// per entry), then, if still full, LRU eviction of a batch of
    /// `capacity / 64` (at least 1) so the next inserts do not each pay an
    /// O(n) selection.
    fn make_room(&mut self) {
        let gc_interval = (self.capacity / 8).max(1);
        if self.stats.gc_runs == 0 || self.inserts_since_gc >= gc_interval {
            self.gc();
        }
        if self.entries.len() < self.capacity {
            return;
        }
        let target = self.capacity - (self.capacity / 64).max(1);
        let remove = self.entries.len().saturating_sub(target);
        if remove == 0 {
            return;
        }
        let mut ages: Vec<u64> = self.entries.values().map(|e| e.last_used).collect();
        if remove > ages.len() {
            return;
        }
        // `last_used` values are unique, so exactly `remove` entries are at
        // or below the cutoff.
        let cutoff = *ages.select_nth_unstable(remove - 1).1;
        let before = self.entries.len();
        self.entries.retain(|_, e| e.last_used > cutoff);
        self.stats.evicted += (before - self.entries.len()) as u64;
    }

    /// Removes entries whose pid is gone from `/proc` or belongs to another
    /// start time. Skipped when `proc_root` is not a directory (no `/proc`
    /// mounted must not empty the table).
    fn gc(&mut self) {
        self.stats.gc_runs += 1;
        self.inserts_since_gc = 0;
        if !self.proc_root.is_dir() {
            return;
        }
        let root = &self.proc_root;
        let before = self.entries.len();
        self.entries.retain(|&pid, e| match proc_start(root, pid) {
            ProcStart::Ticks(t) => t == e.info.start_ticks,
            ProcStart::Gone => false,
            ProcStart::Unknown => true,
        });
        self.stats.gc_removed += (before - self.entries.len()) as u64;
    }
}

/// Start ticks of `pid` from `<root>/<pid>/stat` (field 22, after the last
/// `)` since `comm` may contain anything).
fn proc_start(root: &Path, pid: u32) -> ProcStart {
    let bytes = match std::fs::read(root.join(pid.to_string()).join("stat")) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => {
            return ProcStart::Gone
        }
        Err(_) => return ProcStart::Unknown,
    };
    let ticks = memchr::memrchr(b')', &bytes)
        .and_then(|close| bytes.get(close + 1..))
        .and_then(|rest| std::str::from_utf8(rest).ok())
        .and_then(|rest| rest.split_ascii_whitespace().nth(22 - 3))
        .and_then(|field| field.parse().ok());
    ticks.map_or(ProcStart::Unknown, ProcStart::Ticks)
}

fn basename(path: &[u8]) -> &[u8] {
    match memchr::memrchr(b'/', path) {
        Some(slash) => path.get(slash + 1..).unwrap_or_default(),
        None => path,
    }
}

/// `/dev/fd/N` (what `fexecve`/`execveat(AT_EMPTY_PATH)` report as
/// filename) or anything under `/proc` (`/proc/self/exe` re-execs,
/// `/proc/self/fd/N`): the name says nothing about the file; only the
/// kernel's `mm->exe_file` does. The kernel side uses the same test to
/// decide when to walk that path.
fn is_fd_path(filename: &[u8]) -> bool {
    filename.starts_with(b"/dev/fd/") || filename.starts_with(b"/proc/")
}

/// `cwd` + relative `path`, dropping `.` components. `..` is kept: the
/// kernel resolves it through symlinks, which a lexical clean would get
/// wrong.
fn join_relative(cwd: &str, path: &str) -> String {
    let mut out = cwd.trim_end_matches('/').to_owned();
    for part in path.split('/') {
        if part.is_empty() || part == "." {
            continue;
        }
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
// Tests fail by panicking; that is what these lints exist to keep out of
// production code.
#[allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use sensor_common::{TaskInfo, TtyInfo, TTY_FD0_CHR, TTY_FD2_CHR, TTY_HAS_CTTY};
    use std::fs;

    const NS_PER_TICK: u64 = 10_000_000;

    /// Boot-time ns inside tick `t` (not on its boundary, so truncation is
    /// exercised).
    fn ns(t: u64) -> u64 {
        t * NS_PER_TICK + 4_321_987
    }

    fn task(pid: u32, start_ticks: u64) -> TaskInfo {
        TaskInfo {
            tgid: pid,
            pid,
            start_boottime_ns: ns(start_ticks),
            ..TaskInfo::default()
        }
    }

    fn exec(
        pid: u32,
        start: u64,
        ppid: u32,
        pstart: u64,
        filename: &str,
        args: &[&str],
    ) -> ExecEvent {
        ExecEvent {
            ktime_ns: ns(start) + 1000,
            task: task(pid, start),
            parent: Some(task(ppid, pstart)),
            old_pid: pid,
            uid: 1000,
            gid: 1000,
            euid: 1000,
            egid: 1000,
            cgroup_id: 77,
            pid_ns: 0,
            mnt_ns: 0,
            filename: filename.as_bytes().to_vec(),
            filename_truncated: false,
            args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            argc: args.len() as u32,
            args_truncated: false,
            args_read_failed: false,
            cwd: None,
            ..ExecEvent::default()
        }
    }

    fn fork(child: u32, cstart: u64, parent: u32, pstart: u64) -> ForkEvent {
        ForkEvent {
            ktime_ns: ns(cstart),
            child: task(child, cstart),
            parent_tgid: parent,
            parent_start_boottime_ns: ns(pstart),
            cgroup_id: 77,
        }
    }

    fn exit(pid: u32, start: u64) -> ExitEvent {
        ExitEvent {
            ktime_ns: ns(start) + 5,
            tgid: pid,
            exit_code: 0,
            start_boottime_ns: ns(start),
            comm: [0; sensor_common::COMM_LEN],
        }
    }

    fn snap(pid: u32, ppid: u32, start: u64, name: &str, args: &[&str]) -> ProcSnapshot {
        ProcSnapshot {
            pid,
            pidfs_ino: None,
            ppid,
            start_ticks: start,
            comm: name.chars().take(15).collect(),
            name: name.to_owned(),
            interactive: Some(false),
            executable: Some(format!("/usr/sbin/{name}")),
            executable_deleted: false,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            cwd: Some("/".to_owned()),
            uid: 0,
            gid: 0,
            euid: 0,
            tty_nr: 0,
            cgroup_path: Some("/system.slice/x.service".to_owned()),
            is_kernel_thread: false,
        }
    }

    /// A fake `/proc` with just the files `proc_scan::read_process` and the
    /// table read.
    struct FakeProc {
        root: tempfile::TempDir,
    }

    impl FakeProc {
        fn new() -> Self {
            Self {
                root: tempfile::tempdir().unwrap(),
            }
        }
        fn path(&self) -> PathBuf {
            self.root.path().to_path_buf()
        }
        #[allow(clippy::too_many_arguments)]
        fn add(
            &self,
            pid: u32,
            ppid: u32,
            start: u64,
            comm: &str,
            args: &[&str],
            exe: Option<&str>,
            cwd: Option<&str>,
        ) {
            let dir = self.root.path().join(pid.to_string());
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir(&dir).unwrap();
            fs::write(
                dir.join("stat"),
                format!(
                    "{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194304 10 0 0 0 1 2 0 0 20 0 1 0 {start} 1000 10 \
                     18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
                ),
            )
            .unwrap();
            fs::write(
                dir.join("status"),
                "Name:\tx\nUid:\t33\t33\t33\t33\nGid:\t33\t33\t33\t33\n",
            )
            .unwrap();
            let mut cmdline = Vec::new();
            for a in args {
                cmdline.extend_from_slice(a.as_bytes());
                cmdline.push(0);
            }
            fs::write(dir.join("cmdline"), cmdline).unwrap();
            if let Some(exe) = exe {
                std::os::unix::fs::symlink(exe, dir.join("exe")).unwrap();
            }
            if let Some(cwd) = cwd {
                std::os::unix::fs::symlink(cwd, dir.join("cwd")).unwrap();
            }
        }
        fn remove(&self, pid: u32) {
            fs::remove_dir_all(self.root.path().join(pid.to_string())).unwrap();
        }
    }

    fn table(proc_root: PathBuf, capacity: usize) -> ProcessTable {
        ProcessTable::new(TableConfig {
            host_id: "host-a".to_owned(),
            capacity,
            proc_root,
            clk_tck: 100,
        })
    }

    fn args_of(info: &ProcessInfo) -> Vec<&str> {
        info.args.iter().map(String::as_str).collect()
    }

    #[test]
    fn ticks_conversion_truncates_like_the_kernel() {
        assert_eq!(boottime_ns_to_ticks(0, 100), 0);
        assert_eq!(boottime_ns_to_ticks(9_999_999, 100), 0);
        assert_eq!(boottime_ns_to_ticks(10_000_000, 100), 1);
        assert_eq!(boottime_ns_to_ticks(1_234_567_890_123, 100), 123_456);
        assert_eq!(boottime_ns_to_ticks(1_234_567_890_123, 250), 308_641);
        assert_eq!(boottime_ns_to_ticks(1_234_567_890_123, 1000), 1_234_567);
        // 0 = default (100); absurd rates do not divide by zero.
        assert_eq!(boottime_ns_to_ticks(1_234_567_890_123, 0), 123_456);
        assert_eq!(boottime_ns_to_ticks(5, u64::MAX), 5);
        assert!(system_clk_tck() > 0);
    }

    /// The conversion agrees with this machine's /proc: our own start ticks
    /// lie between 0 and "now" converted with the same function.
    #[test]
    fn ticks_agree_with_real_proc() {
        let me = proc_scan::read_process(Path::new("/proc"), std::process::id()).unwrap();
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid out-pointer for clock_gettime.
        assert_eq!(
            unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) },
            0
        );
        let now_ns = now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64;
        let now_ticks = boottime_ns_to_ticks(now_ns, system_clk_tck());
        assert!(
            me.start_ticks <= now_ticks,
            "{} > {now_ticks}",
            me.start_ticks
        );
        assert!(
            me.start_ticks + 100 * 3600 > now_ticks,
            "test process started over an hour ago?"
        );
    }

    #[test]
    fn exec_parent_comes_from_seeded_server() {
        let proc = FakeProc::new();
        let mut t = table(proc.path(), 100);
        let n = t.seed(vec![
            snap(1, 0, 1, "systemd", &["/sbin/init"]),
            snap(
                400,
                1,
                300,
                "gunicorn",
                &[
                    "/opt/venv/bin/python3",
                    "/opt/venv/bin/gunicorn",
                    "app:wsgi",
                ],
            ),
        ]);
        assert_eq!(n, 2);
        assert_eq!(t.stats().seeded, 2);
        let ctx = t.on_exec(&exec(900, 5000, 400, 300, "/bin/sh", &["sh", "-c", "id"]));
        let parent = ctx.parent.expect("seeded parent");
        assert_eq!(&*parent.name, "gunicorn");
        assert_eq!(
            args_of(&parent),
            [
                "/opt/venv/bin/python3",
                "/opt/venv/bin/gunicorn",
                "app:wsgi"
            ]
        );
        assert_eq!(parent.origin, Origin::Procfs);
        assert_eq!(&*ctx.process.name, "sh");
        assert_eq!(ctx.process.executable.as_deref(), Some("/bin/sh"));
        assert_eq!(ctx.process.command_line(), "sh -c id");
        assert_eq!(ctx.process.ppid, 400);
        assert_eq!(ctx.process.origin, Origin::Exec);
        assert_eq!(ctx.process.start_boottime_ns, Some(ns(5000)));
        assert_eq!((ctx.process.uid, ctx.process.gid), (1000, 1000));
        assert_eq!(ctx.process.cgroup_id, Some(77));
        // No /proc fallback was needed.
        assert_eq!(
            t.stats().proc_fallback_hits + t.stats().proc_fallback_misses,
            0
        );
    }

    #[test]
    fn fork_without_exec_inherits_the_masters_image() {
        let proc = FakeProc::new();
        let mut t = table(proc.path(), 100);
        t.seed(vec![snap(1, 0, 1, "systemd", &["/sbin/init"])]);
        // systemd → nginx master (exec) → worker (fork only).
        t.on_fork(&fork(100, 200, 1, 1));
        assert_eq!(t.get(100).map(|p| p.origin), Some(Origin::Fork));
        assert_eq!(t.get(100).map(|p| &*p.name), Some("systemd"));
        let mut master_exec = exec(
            100,
            200,
            1,
            1,
            "/usr/sbin/nginx",
            &["nginx", "-g", "daemon off;"],
        );
        master_exec.uid = 0;
        t.on_exec(&master_exec);
        t.on_fork(&fork(101, 210, 100, 200));
        let worker = t.get(101).cloned().expect("worker");
        assert_eq!(worker.origin, Origin::Fork);
        assert_eq!(&*worker.name, "nginx");
        assert_eq!(args_of(&worker), ["nginx", "-g", "daemon off;"]);
        assert_eq!(worker.executable.as_deref(), Some("/usr/sbin/nginx"));
        assert_eq!(worker.ppid, 100);
        assert_eq!(worker.uid, 0);
        // Own identity, not the master's.
        assert_ne!(worker.entity_id, t.get(100).unwrap().entity_id);
        // The args are shared, not copied.
        assert!(Arc::ptr_eq(&worker.args, &t.get(100).unwrap().args));

        // worker → fork → exec sh -c: its parent is the worker, which looks
        // like the master.
        t.on_fork(&fork(102, 300, 101, 210));
        let ctx = t.on_exec(&exec(
            102,
            300,
            101,
            210,
            "/bin/sh",
            &["sh", "-c", "curl x | sh"],
        ));
        let parent = ctx.parent.expect("worker known");
        assert_eq!(parent.pid, 101);
        assert_eq!(&*parent.name, "nginx");
        assert_eq!(parent.command_line(), "nginx -g daemon off;");
        assert_eq!(parent.entity_id, worker.entity_id);
        assert_eq!(&*ctx.process.name, "sh");
        assert_eq!(args_of(&ctx.process), ["sh", "-c", "curl x | sh"]);

        // When the worker execs, it gets its own image.
        let ctx = t.on_exec(&exec(
            101,
            210,
            100,
            200,
            "/usr/bin/php-fpm8.2",
            &["php-fpm: pool www"],
        ));
        assert_eq!(&*ctx.process.name, "php-fpm8.2");
        assert_eq!(
            ctx.process.entity_id, worker.entity_id,
            "same instance, same id"
        );
        assert_eq!(&*t.get(100).unwrap().name, "nginx", "master untouched");
    }

    #[test]
    fn pid_reuse_never_mixes_instances() {
        let proc = FakeProc::new();
        let mut t = table(proc.path(), 100);
        t.on_exec(&exec(
            500,
            1000,
            1,
            1,
            "/usr/bin/alpha",
            &["alpha", "--secret-a"],
        ));
        let a = t.get(500).cloned().unwrap();

        // A exits, B gets pid 500.
        assert!(t.on_exit(&exit(500, 1000)).is_some());
        let ctx = t.on_exec(&exec(500, 2000, 1, 1, "/usr/bin/beta", &["beta"]));
        assert_eq!(args_of(&ctx.process), ["beta"]);
        assert_ne!(ctx.process.entity_id, a.entity_id);

        // A child whose parent start says t2 sees B, never A.
        let child = t.on_exec(&exec(600, 2100, 500, 2000, "/bin/ls", &["ls"]));
        assert_eq!(
            child.parent.as_ref().map(|p| args_of(p)),
            Some(vec!["beta"])
        );
        // A child whose parent start says t1 (A, long gone) gets nothing,
        // not B; no /proc read is needed to know that.
        let misses = t.stats().proc_fallback_misses;
        let orphan = t.on_exec(&exec(601, 2200, 500, 1000, "/bin/ls", &["ls"]));
        // A is still findable among the recently exited (exact identity).
        assert_eq!(
            orphan.parent.as_ref().map(|p| args_of(p)),
            Some(vec!["alpha", "--secret-a"])
        );

        assert_eq!(t.stats().proc_fallback_misses, misses);

        // Silent replacement: C takes pid 500 without B's exit being seen.
        t.seed(vec![snap(1, 0, 1, "systemd", &["/sbin/init", "splash"])]);
        t.on_fork(&fork(500, 3000, 1, 1));
        let c = t.get(500).cloned().unwrap();
        assert_eq!(c.start_ticks, 3000);
        assert_eq!(&*c.name, "systemd");
        assert_eq!(args_of(&c), ["/sbin/init", "splash"]);
        assert_eq!(t.stats().replaced_stale, 1);
        let child = t.on_exec(&exec(700, 3100, 500, 3000, "/bin/ls", &["ls"]));
        assert_eq!(
            child.parent.as_ref().map(|p| args_of(p)),
            Some(vec!["/sbin/init", "splash"])
        );

        // A stale exit of B (older than C) leaves C alone.
        assert!(t.on_exit(&exit(500, 2000)).is_none());
        assert_eq!(t.get(500).map(|p| p.start_ticks), Some(3000));
    }

    /// A fork nothing can describe still removes the dead instance that held
    /// the pid, so a later lookup cannot find it.
    #[test]
    fn undescribable_fork_drops_the_stale_instance() {
        let proc = FakeProc::new();
        let mut t = table(proc.path(), 100);
        t.on_exec(&exec(500, 1000, 1, 1, "/usr/bin/alpha", &["alpha"]));
        t.on_fork(&fork(500, 2000, 1, 1)); // init unknown, /proc empty
        assert!(t.get(500).is_none());
        assert_eq!(t.stats().fork_unknown, 1);
        assert_eq!(t.stats().replaced_stale, 1);
        let ctx = t.on_exec(&exec(501, 2100, 500, 2000, "/bin/id", &["id"]));
        assert!(ctx.parent.is_none());
        // Both execs: init (pid 1) and the undescribed 500 are unknown.
        assert_eq!(t.stats().exec_parent_unknown, 2);
    }

    #[test]
    fn exit_removes_and_returns_the_instance() {
        let proc = FakeProc::new();
        let mut t = table(proc.path(), 100);
        t.on_exec(&exec(300, 100, 1, 1, "/usr/bin/make", &["make", "-j8"]));
        assert_eq!(t.len(), 1);
        // Wrong start: another (older) instance; the entry stays.
        assert!(t.on_exit(&exit(300, 50)).is_none());
        assert_eq!(t.len(), 1);
        // Unknown start (0: the kernel could not read it): nothing removed.
        let mut unreadable = exit(300, 100);
        unreadable.start_boottime_ns = 0;
        assert!(t.on_exit(&unreadable).is_none());
        let ended = t.on_exit(&exit(300, 100)).expect("known process");
        assert_eq!(ended.command_line(), "make -j8");
        assert!(t.get(300).is_none());
        assert!(t.is_empty());
        assert!(t.on_exit(&exit(300, 100)).is_none(), "exit is not replayed");
        assert_eq!(t.stats().exit_unknown, 3);

        // A child exec'd while its parent was exiting still finds it (exact
        // identity only), without it coming back into the table.
        let ctx = t.on_exec(&exec(301, 120, 300, 100, "/bin/cc", &["cc"]));
        assert_eq!(
            ctx.parent.map(|p| p.command_line()),
            Some("make -j8".to_owned())
        );
        assert!(t.get(300).is_none());
    }

    #[test]
    fn unknown_parent_falls_back_to_proc_only_when_start_matches() {
        let proc = FakeProc::new();
        proc.add(
            42,
            1,
            777,
            "sshd",
            &["sshd: alice [priv]"],
            Some("/usr/sbin/sshd"),
            Some("/"),
        );
        proc.add(
            43,
            1,
            999,
            "cron",
            &["/usr/sbin/cron", "-f"],
            Some("/usr/sbin/cron"),
            Some("/"),
        );
        let mut t = table(proc.path(), 100);

        let ctx = t.on_exec(&exec(50, 800, 42, 777, "/bin/bash", &["-bash"]));
        let parent = ctx.parent.expect("/proc fallback");
        assert_eq!(&*parent.name, "sshd");
        assert_eq!(args_of(&parent), ["sshd: alice [priv]"]);
        assert_eq!(parent.origin, Origin::Procfs);
        assert_eq!(parent.start_boottime_ns, Some(ns(777)));
        assert_eq!(parent.uid, 33);
        assert_eq!(t.stats().proc_fallback_hits, 1);
        // Inserted: the next child does not read /proc again.
        t.on_exec(&exec(51, 801, 42, 777, "/bin/bash", &["-bash"]));
        assert_eq!(t.stats().proc_fallback_hits, 1);
        assert_eq!(t.get(42).map(|p| p.start_ticks), Some(777));

        // pid 43 in /proc started at 999, the kernel says 998: not ours.
        let ctx = t.on_exec(&exec(52, 1000, 43, 998, "/bin/sh", &["sh"]));
        assert!(ctx.parent.is_none());
        assert!(t.get(43).is_none());
        // Not in /proc at all.
        let ctx = t.on_exec(&exec(53, 1000, 44, 10, "/bin/sh", &["sh"]));
        assert!(ctx.parent.is_none());
        // The kernel could not read the parent.
        let mut no_parent = exec(54, 1000, 42, 777, "/bin/sh", &["sh"]);
        no_parent.parent = None;
        assert!(t.on_exec(&no_parent).parent.is_none());
        let st = t.stats();
        assert_eq!((st.proc_fallback_hits, st.proc_fallback_misses), (1, 2));
        assert_eq!(st.exec_parent_unknown, 3);
    }

    #[test]
    fn fork_of_unknown_parent_reads_proc() {
        let proc = FakeProc::new();
        proc.add(
            60,
            1,
            600,
            "php-fpm8.2",
            &["php-fpm: master process (/etc/php/fpm.conf)"],
            Some("/usr/sbin/php-fpm8.2"),
            Some("/"),
        );
        let mut t = table(proc.path(), 100);
        t.on_fork(&fork(61, 650, 60, 600));
        let worker = t
            .get(61)
            .cloned()
            .expect("described via the parent in /proc");
        assert_eq!(worker.origin, Origin::Fork);
        assert_eq!(&*worker.name, "php-fpm8.2");
        assert_eq!(
            worker.command_line(),
            "php-fpm: master process (/etc/php/fpm.conf)"
        );
        assert_eq!(t.get(60).map(|p| p.origin), Some(Origin::Procfs));
    }

    #[test]
    fn capacity_gc_then_lru_eviction() {
        let proc = FakeProc::new();
        let mut t = table(proc.path(), 4);
        for (pid, start) in [(10, 100), (11, 110), (12, 120), (13, 130)] {
            proc.add(pid, 1, start, "srv", &["srv"], None, None);
        }
        assert_eq!(
            t.seed((10..14).map(|p| snap(p, 1, 100 + u64::from(p - 10) * 10, "srv", &["srv"]))),
            4
        );
        // 11 is gone, 12's pid now belongs to another start time.
        proc.remove(11);
        proc.add(12, 1, 9999, "other", &["other"], None, None);
        t.on_exec(&exec(20, 200, 10, 100, "/bin/a", &["a"]));
        let st = t.stats();
        assert_eq!((st.gc_runs, st.gc_removed, st.evicted), (1, 2, 0));
        assert!(t.get(11).is_none() && t.get(12).is_none());
        assert_eq!(t.len(), 3);
        assert!(t.get(10).is_some() && t.get(13).is_some() && t.get(20).is_some());

        // 10 was last used as 20's parent; using 13 now leaves 10 the least
        // recently used.
        t.on_exec(&exec(21, 210, 13, 130, "/bin/b", &["b"]));
        assert_eq!(t.len(), 4);
        // Full and everything alive in /proc: GC frees nothing, LRU evicts.
        for (pid, start) in [(20, 200), (21, 210)] {
            proc.add(pid, 1, start, "x", &["x"], None, None);
        }
        t.on_fork(&fork(22, 220, 21, 210));
        let st = t.stats();
        assert_eq!(st.evicted, 1);
        assert_eq!(t.len(), 4);
        assert!(t.get(10).is_none(), "least recently used goes first");
        assert!(t.get(13).is_some() && t.get(21).is_some() && t.get(22).is_some());
        // The evicted process is still alive: as a parent it comes back
        // from /proc.
        let ctx = t.on_exec(&exec(23, 230, 10, 100, "/bin/c", &["c"]));
        assert_eq!(ctx.parent.map(|p| p.pid), Some(10));
        assert!(t.len() <= 4);
        assert!(t.stats().evicted >= 2);
    }

    #[test]
    fn gc_never_empties_the_table_without_proc() {
        let mut t = table(PathBuf::from("/nonexistent/proc/root"), 2);
        t.on_exec(&exec(1, 1, 0, 0, "/a", &["a"]));
        t.on_exec(&exec(2, 2, 0, 0, "/b", &["b"]));
        t.on_exec(&exec(3, 3, 0, 0, "/c", &["c"]));
        let st = t.stats();
        assert_eq!((st.gc_runs, st.gc_removed, st.evicted), (1, 0, 1));
        assert!(t.get(1).is_none() && t.get(3).is_some());
    }

    #[test]
    fn seed_stops_at_capacity() {
        let proc = FakeProc::new();
        let mut t = table(proc.path(), 2);
        let n = t.seed((1..=5).map(|p| snap(p, 0, u64::from(p), "x", &["x"])));
        assert_eq!(n, 2);
        assert_eq!(t.stats().seed_skipped, 3);
        assert!(t.get(1).is_some() && t.get(2).is_some() && t.get(3).is_none());
    }

    #[test]
    fn entity_ids_are_stable_and_identify_instances() {
        let proc = FakeProc::new();
        proc.add(
            70,
            1,
            700,
            "redis-server",
            &["redis-server *:6379"],
            Some("/usr/bin/redis-server"),
            Some("/"),
        );
        let mut seeded = table(proc.path(), 100);
        seeded.seed(vec![proc_scan::read_process(&proc.path(), 70).unwrap()]);
        let via_proc = seeded.get(70).unwrap().entity_id.clone();

        let mut live = table(proc.path(), 100);
        let via_exec = live.on_exec(&exec(
            70,
            700,
            1,
            1,
            "/usr/bin/redis-server",
            &["redis-server"],
        ));
        assert_eq!(via_exec.process.entity_id, via_proc);
        // Via the /proc fallback for a parent, too.
        let mut fallback = table(proc.path(), 100);
        let ctx = fallback.on_exec(&exec(71, 800, 70, 700, "/bin/sh", &["sh"]));
        assert_eq!(
            ctx.parent.map(|p| p.entity_id.clone()),
            Some(via_proc.clone())
        );

        let other_start = live.on_exec(&exec(
            70,
            701,
            1,
            1,
            "/usr/bin/redis-server",
            &["redis-server"],
        ));
        assert_ne!(other_start.process.entity_id, via_proc);
        assert_ne!(
            entity_id("host-b", "", 70, 700),
            entity_id("host-a", "", 70, 700)
        );
        assert_ne!(
            entity_id("host-a", "boot-2", 70, 700),
            entity_id("host-a", "boot-1", 70, 700)
        );
        assert_ne!(entity_id("a", "b", 1, 2), entity_id("ab", "", 1, 2));
        // Pinned: a change here changes every id users have stored.
        assert_eq!(entity_id("host-a", "", 70, 700), PINNED_ID);
        assert_eq!(via_proc.len(), 32);
        assert!(via_proc
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    const PINNED_ID: &str = "4e81bf14d1890543299990b357f19ce4";

    #[test]
    fn fnv1a_matches_reference_vectors() {
        // Reference values of FNV-1a 64 (Fowler/Noll/Vo test suite).
        assert_eq!(fnv1a(FNV_OFFSET_A, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET_A, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET_A, b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn executable_resolution() {
        let proc = FakeProc::new();
        let mut t = table(proc.path(), 100);
        // Live cwd of the same instance wins over what the table knew.
        proc.add(
            80,
            1,
            800,
            "bash",
            &["bash"],
            Some("/usr/bin/bash"),
            Some("/home/alice/tools"),
        );
        t.seed(vec![ProcessSnapshotBuilder::cwd(
            snap(80, 1, 800, "bash", &["bash"]),
            "/home/alice",
        )]);
        let ctx = t.on_exec(&exec(80, 800, 1, 1, "./payload", &["./payload"]));
        assert_eq!(
            ctx.process.executable.as_deref(),
            Some("/home/alice/tools/payload")
        );
        assert_eq!(
            ctx.process.working_directory.as_deref(),
            Some("/home/alice/tools")
        );
        assert_eq!(&*ctx.process.name, "payload");

        // Process gone from /proc and the kernel walk of its cwd gave up:
        // the cwd the table knew (inherited at fork) may be stale, so no
        // cwd, and the executable is the file the kernel mapped.
        t.seed(vec![ProcessSnapshotBuilder::cwd(
            snap(90, 1, 900, "make", &["make"]),
            "/src/proj/",
        )]);
        t.on_fork(&fork(91, 910, 90, 900));
        let mut ev = exec(
            91,
            910,
            90,
            900,
            "scripts/../build.sh",
            &["scripts/../build.sh"],
        );
        ev.exe = Some(b"/src/proj/build.sh".to_vec());
        let ctx = t.on_exec(&ev);
        assert_eq!(
            ctx.process.executable.as_deref(),
            Some("/src/proj/build.sh")
        );
        assert_eq!(ctx.process.working_directory, None);
        assert_eq!(&*ctx.process.name, "build.sh");
        // ... and with no kernel path either: nothing, never a guess.
        t.on_fork(&fork(96, 960, 90, 900));
        let ctx = t.on_exec(&exec(96, 960, 90, 900, "build.sh", &["build.sh"]));
        assert_eq!(ctx.process.executable, None);
        assert_eq!(ctx.process.working_directory, None);
        assert_eq!(&*ctx.process.name, "build.sh");

        // /proc shows pid 92 with a different start: its cwd is not ours;
        // no cwd known and no exe of ours either: left out.
        proc.add(
            92,
            1,
            5,
            "imposter",
            &["x"],
            Some("/usr/bin/imposter"),
            Some("/wrong"),
        );
        let ctx = t.on_exec(&exec(92, 920, 1, 1, "relative/tool", &["tool"]));
        assert_eq!(ctx.process.executable, None);
        assert_eq!(ctx.process.working_directory, None);

        // fexecve of a memfd: the file the kernel mapped, whether or not the
        // process is still there to read.
        let mut ev = exec(93, 930, 1, 1, "/dev/fd/3", &["x"]);
        ev.exe = Some(b"/memfd:payload".to_vec());
        let ctx = t.on_exec(&ev);
        assert_eq!(ctx.process.executable.as_deref(), Some("/memfd:payload"));
        assert_eq!(&*ctx.process.name, "memfd:payload");
        // Without the kernel's path, /proc/<pid>/exe of this instance.
        proc.add(
            97,
            1,
            970,
            "3",
            &["x"],
            Some("/memfd:payload (deleted)"),
            None,
        );
        let ctx = t.on_exec(&exec(97, 970, 1, 1, "/dev/fd/3", &["x"]));
        assert_eq!(ctx.process.executable.as_deref(), Some("/memfd:payload"));
        assert_eq!(&*ctx.process.name, "memfd:payload");
        // An applet re-exec through /proc/self/exe: the real file.
        let mut ev = exec(98, 980, 1, 1, "/proc/self/exe", &["sh", "-c", "id"]);
        ev.exe = Some(b"/usr/bin/busybox".to_vec());
        let ctx = t.on_exec(&ev);
        assert_eq!(ctx.process.executable.as_deref(), Some("/usr/bin/busybox"));
        assert_eq!(&*ctx.process.name, "busybox");

        // Absolute: taken as is, no /proc needed.
        let ctx = t.on_exec(&exec(94, 940, 1, 1, "/usr/bin/env", &["env"]));
        assert_eq!(ctx.process.executable.as_deref(), Some("/usr/bin/env"));
        // A script: the script's name, not the interpreter's.
        let ctx = t.on_exec(&exec(
            95,
            950,
            1,
            1,
            "/opt/venv/bin/gunicorn",
            &["/opt/venv/bin/python3", "/opt/venv/bin/gunicorn"],
        ));
        assert_eq!(&*ctx.process.name, "gunicorn");
    }

    #[test]
    fn a_parent_that_takes_a_terminal_keeps_its_start_value_and_is_reported_once() {
        let proc = FakeProc::new();
        let mut t = table(proc.path(), 100);
        // nginx started without a terminal.
        t.on_exec(&exec(100, 1000, 1, 1, "/usr/sbin/nginx", &["nginx"]));
        let pts = (136 << 20) | 4;
        let on_pty = |mut ev: ExecEvent| {
            if let Some(p) = ev.parent.as_mut() {
                p.tty = TtyInfo {
                    ctty_dev: pts,
                    fd0_dev: pts,
                    fd2_dev: pts,
                    flags: TTY_HAS_CTTY | TTY_FD0_CHR | TTY_FD2_CHR,
                };
            }
            ev
        };
        // Its child while it is still detached: nothing to report.
        let ev = exec(101, 1010, 100, 1000, "/bin/sh", &["sh"]);
        let ctx = t.on_exec(&ev);
        assert!(t.parent_became_interactive(&ev, &ctx).is_none());
        // It calls setsid and takes a pty; its next child shows it.
        let ev = on_pty(exec(102, 1020, 100, 1000, "/bin/sh", &["sh"]));
        let ctx = t.on_exec(&ev);
        let changed = t.parent_became_interactive(&ev, &ctx).expect("reported");
        assert_eq!((changed.pid, changed.interactive), (100, Some(false)));
        assert!(changed.became_interactive);
        // Once per instance; the parent's start value stays what children see.
        let ev = on_pty(exec(103, 1030, 100, 1000, "/bin/sh", &["sh"]));
        let ctx = t.on_exec(&ev);
        assert!(t.parent_became_interactive(&ev, &ctx).is_none());
        assert_eq!(ctx.parent.and_then(|p| p.interactive), Some(false));
        // A parent that started on a terminal is no news.
        let shell = on_pty(exec(110, 1100, 1, 1, "/bin/bash", &["bash"]));
        let shell_on_pty = ExecEvent {
            task: shell.parent.map_or(task(110, 1100), |p| TaskInfo {
                tgid: 110,
                pid: 110,
                start_boottime_ns: ns(1100),
                ..p
            }),
            ..shell
        };
        t.on_exec(&shell_on_pty);
        let ev = on_pty(exec(111, 1110, 110, 1100, "/bin/ls", &["ls"]));
        let ctx = t.on_exec(&ev);
        assert_eq!(ctx.parent.as_ref().and_then(|p| p.interactive), Some(true));
        assert!(t.parent_became_interactive(&ev, &ctx).is_none());
    }

    struct ProcessSnapshotBuilder;
    impl ProcessSnapshotBuilder {
        fn cwd(mut s: ProcSnapshot, cwd: &str) -> ProcSnapshot {
            s.cwd = Some(cwd.to_owned());
            s
        }
    }

    #[test]
    fn args_truncation_non_utf8_and_interactivity() {
        let proc = FakeProc::new();
        let mut t = table(proc.path(), 100);
        let pts = (136 << 20) | 4;
        let mut ev = exec(100, 1000, 1, 1, "/usr/bin/xargs", &["xargs", "a"]);
        ev.args.push(b"caf\xe9".to_vec());
        ev.args.push(vec![0xff, b'-', b'c']);
        ev.argc = 5000;
        ev.task.tty = TtyInfo {
            ctty_dev: pts,
            fd0_dev: pts,
            fd2_dev: pts,
            flags: TTY_HAS_CTTY | TTY_FD0_CHR | TTY_FD2_CHR,
        };
        let p = t.on_exec(&ev).process;
        assert_eq!(p.args_count, 5000);
        assert!(p.args_truncated);
        assert_eq!(args_of(&p), ["xargs", "a", "caf\\xe9", "\\xff-c"]);
        assert_eq!(p.interactive, Some(true));

        let mut ev = exec(101, 1000, 1, 1, "/bin/true", &["true"]);
        ev.task.tty.flags = TTY_READ_ERROR;
        let p = t.on_exec(&ev).process;
        assert!(!p.args_truncated);
        assert_eq!(p.interactive, None);
        let mut ev = exec(102, 1000, 1, 1, "/bin/true", &["true"]);
        ev.task.tty.flags = TTY_FD0_CHR | TTY_FD2_CHR;
        assert_eq!(t.on_exec(&ev).process.interactive, Some(false));
        // A fork child inherits interactivity with its fds and tty.
        t.on_fork(&fork(103, 1100, 100, 1000));
        assert_eq!(t.get(103).and_then(|p| p.interactive), Some(true));
    }
}
