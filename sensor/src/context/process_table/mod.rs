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
//!   [`procfs::scan`] (parents first).
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

mod capacity;
mod exec_path;
mod identity;
pub mod leaders;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use sensor_common::TTY_READ_ERROR;

use crate::byte_text::EscapedFields;
use crate::context::procfs::{self, ProcSnapshot};
use crate::kernel::decode::{ExecEvent, ExitEvent, ForkEvent};

pub use identity::{boottime_ns_to_ticks, entity_id, system_clk_tck, DEFAULT_CLK_TCK};
pub use leaders::{EntryLeader, EntryType, Leaders};

/// How many exited processes stay findable as parents (see module docs).
const RECENTLY_EXITED: usize = 64;

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
    /// Which text fields were escaped (not UTF-8), for `sensor.escaped_fields`.
    pub escaped: EscapedFields,
    /// A `became_interactive` event was reported for this instance
    /// ([`ProcessTable::parent_became_interactive`]); `interactive` keeps
    /// the start value.
    pub became_interactive: bool,
    /// Session id, host view (0: unknown). As of the last exec or `/proc`
    /// read; a fork child's from the fork record.
    pub sid: u32,
    /// Process group id, host view (0: unknown); same rules as `sid`.
    pub pgid: u32,
    /// Inode of the process's pid namespace (0: unknown).
    pub pid_ns: u32,
    /// The entry leader ([`leaders`]).
    pub entry_leader: EntryLeader,
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
    /// The session and group leaders at the moment of the exec.
    pub leaders: Leaders,
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
    /// [`procfs::scan`] returns them). Stops at capacity rather than
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
                escaped: p.escaped,
                became_interactive: p.became_interactive,
                sid: if ev.child.sid != 0 {
                    ev.child.sid
                } else {
                    p.sid
                },
                pgid: if ev.child.pgid != 0 {
                    ev.child.pgid
                } else {
                    p.pgid
                },
                pid_ns: if ev.child.pid_ns != 0 {
                    ev.child.pid_ns
                } else {
                    p.pid_ns
                },
                entry_leader: EntryLeader::inherited_from(&p),
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
    /// - executable: the file the kernel executed (`binprm->file`, walked in
    ///   the kernel at exec: symlinks resolved, the interpreter of a script,
    ///   exact even for a process that is already gone), as Elastic's exec
    ///   probe reports it; else `/proc/<pid>/exe` (the same file) when that
    ///   is still this instance; else left out. Never the execve filename,
    ///   which names whatever link the caller chose.
    /// - name: the executable's last component; empty (left out) when the
    ///   executable is unknown.
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
        let mut esc = EscapedFields::default();
        let live_cwd = match &ev.cwd {
            Some(cwd) => Some(Arc::<str>::from(
                esc.text(EscapedFields::WORKING_DIRECTORY, cwd).as_ref(),
            )),
            None => self
                .read_link_of_instance(pid, ticks, "cwd")
                .map(|(text, escaped)| {
                    esc.mark(EscapedFields::WORKING_DIRECTORY, escaped);
                    Arc::<str>::from(text)
                }),
        };
        let known_cwd = live_cwd;

        let (executable, name) = self.resolve_executable(ev, pid, ticks, &mut esc);

        let args: Vec<String> = ev
            .args
            .iter()
            .map(|a| esc.text(EscapedFields::ARGS, a).into_owned())
            .collect();
        let args_truncated = ev.args_truncated
            || ev.args_read_failed
            || u64::try_from(args.len()).map_or(true, |n| n < u64::from(ev.argc));
        let cgroup_id = (ev.cgroup_id != 0).then_some(ev.cgroup_id);
        let entry_leader = match leaders::starts_entry(
            pid,
            ev.task.pid_ns,
            ev.parent.as_ref().map(|p| p.pid_ns),
        ) {
            Some(t) => EntryLeader::Own(t),
            // What it had before this exec (its fork copy), else its
            // parent's.
            None => match prior.as_ref().map(|p| &p.entry_leader) {
                Some(e) if *e != EntryLeader::Unknown => e.clone(),
                _ => parent
                    .as_ref()
                    .map(EntryLeader::inherited_from)
                    .unwrap_or_default(),
            },
        };
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
            escaped: esc,
            became_interactive: false,
            sid: ev.task.sid,
            pgid: ev.task.pgid,
            pid_ns: ev.task.pid_ns,
            entry_leader,
        };
        let process = Arc::new(info);
        self.insert(Arc::clone(&process));
        let leaders = self.leaders(&process);
        ExecContext {
            process,
            parent,
            leaders,
        }
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

    /// The instance of `pid` that started at `start_boottime_ns`, live or
    /// among the recently exited (an event the kernel sent just before the
    /// process ended, read after its exit record). `start_boottime_ns` 0
    /// (unknown to the kernel) takes the live entry.
    pub fn find_instance(&self, pid: u32, start_boottime_ns: u64) -> Option<&Arc<ProcessInfo>> {
        if start_boottime_ns == 0 {
            return self.get(pid);
        }
        let ticks = self.ticks(start_boottime_ns);
        self.get_instance(pid, ticks).or_else(|| {
            self.recently_exited
                .iter()
                .rev()
                .find(|i| i.pid == pid && i.start_ticks == ticks)
        })
    }

    /// `process.entity_id` of the instance of `pid` that started at
    /// `start_boottime_ns` (with its pidfs inode, 0 where none), known or
    /// not: the same id the table gives it.
    pub fn entity_id_of(&self, pid: u32, start_boottime_ns: u64, pid_ino: u64) -> Arc<str> {
        self.entity_id(pid, self.ticks(start_boottime_ns), pid_ino)
    }

    /// The session and group leaders of `info` as the table knows them:
    /// the entry whose pid is `sid` (`pgid`) and which leads that session
    /// (group) itself. The kernel does not reuse a pid while a session or
    /// group of that number lives, so no start-time check is needed.
    pub fn leaders(&self, info: &ProcessInfo) -> Leaders {
        let find = |id: u32, of: fn(&ProcessInfo) -> u32| {
            (id != 0)
                .then(|| self.get(id))
                .flatten()
                .filter(|l| of(l) == id)
                .cloned()
        };
        Leaders {
            session: find(info.sid, |l| l.sid),
            group: find(info.pgid, |l| l.pgid),
        }
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
        // Parents are seeded first, so the parent's entry is known here.
        let parent = self
            .entries
            .get(&snap.ppid)
            .map(|e| &e.info)
            .filter(|p| p.start_ticks <= snap.start_ticks);
        let entry_leader = match leaders::starts_entry(
            snap.pid,
            snap.pid_ns.unwrap_or(0),
            parent.map(|p| p.pid_ns),
        ) {
            Some(t) => EntryLeader::Own(t),
            None => parent.map(EntryLeader::inherited_from).unwrap_or_default(),
        };
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
            escaped: snap.escaped,
            became_interactive: false,
            sid: snap.sid,
            pgid: snap.pgid,
            pid_ns: snap.pid_ns.unwrap_or(0),
            entry_leader,
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
        match procfs::read_process(&self.proc_root, pid) {
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
}

#[cfg(test)]
// Tests fail by panicking; that is what these lints exist to keep out of
// production code.
#[allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
mod tests;
