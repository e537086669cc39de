//! Enrichment: a decoded kernel event plus the process table's context and
//! the container resolver → one [`EcsEvent`].
//!
//! Kept apart from the live loop so the same mapping can be tested with
//! hand-made events, and so the loop stays about I/O.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sensor_common::{TaskInfo, TTY_HAS_CTTY, TTY_READ_ERROR};

use crate::byte_text;
use crate::context::cgroup_path::CgroupResolver;
use crate::context::container_id::ContainerInfo;
use crate::context::process_table::{EntryLeader, ExecContext, Leaders, ProcessInfo, ProcessTable};
use crate::context::runtime_meta::{MetaResolver, MetaStats, RuntimeMeta};
use crate::ecs::{
    self, Action, BootClock, ContainerFields, ContainerImage, EcsEvent, EntryMeta, FileExt,
    FileFields, FileOriginal, HostFields, HostOs, IdField, LeaderFields, OrchestratorFields,
    OrchestratorResource, ParentFields, ProcessExt, ProcessFields, SecurityContext, SensorFields,
    Tty,
};
use crate::kernel::decode::{ExecEvent, ExitEvent, FileEvent, FileOp, ForkEvent};

/// Who this host is, for `host.*` and entity ids.
#[derive(Debug, Clone)]
pub struct HostIdentity {
    pub name: String,
    /// `/etc/machine-id` (or the boot id when there is none).
    pub id: Option<String>,
}

impl HostIdentity {
    /// Reads the host name (`NODE_NAME` wins: in a DaemonSet the UTS name is
    /// the pod's, the downward API gives the node's) and the machine id.
    pub fn discover() -> HostIdentity {
        let name = std::env::var("NODE_NAME")
            .ok()
            .filter(|n| !n.is_empty())
            .or_else(|| read_trimmed("/proc/sys/kernel/hostname"))
            .unwrap_or_else(|| "unknown".to_owned());
        let id = read_trimmed("/etc/machine-id")
            .or_else(|| read_trimmed("/proc/sys/kernel/random/boot_id"));
        HostIdentity { name, id }
    }

    fn fields(&self) -> HostFields {
        HostFields {
            name: self.name.clone(),
            id: self.id.clone(),
            os: HostOs { os_type: "linux" },
        }
    }
}

fn read_trimmed(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Builds ECS events; owns the state enrichment needs besides the table.
pub struct Enricher {
    host: HostIdentity,
    clock: BootClock,
    containers: Option<CgroupResolver>,
    /// On a hybrid host: the v1 controller's resolver, for ids cgroup2's
    /// names no container under.
    containers_v1: Option<CgroupResolver>,
    /// Container and pod metadata from the runtimes' files (read on a
    /// worker thread; see `context::runtime_meta`).
    runtime_meta: Option<MetaResolver>,
    run_nonce: u64,
    seq: AtomicU64,
    clk_tck: u64,
    /// `process.start` texts by start (boot ns): the same process's start
    /// is written into every event of it, its children's (`parent`) and
    /// its session's (the leaders), and formatting it costs more than the
    /// rest of those fields together. The clock's offset is fixed, so a
    /// start always formats to the same text; the cache is cleared when
    /// full.
    start_texts: RefCell<HashMap<u64, String>>,
}

/// Most `process.start` texts [`Enricher`] keeps.
const START_TEXTS_MAX: usize = 8192;

impl Enricher {
    pub fn new(host: HostIdentity, containers: Option<CgroupResolver>) -> Enricher {
        let run_nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Enricher {
            host,
            clock: BootClock::now(),
            containers,
            containers_v1: None,
            runtime_meta: None,
            run_nonce,
            seq: AtomicU64::new(0),
            clk_tck: crate::context::process_table::system_clk_tck(),
            start_texts: RefCell::new(HashMap::new()),
        }
    }

    pub fn host(&self) -> &HostIdentity {
        &self.host
    }

    /// The cgroup hierarchy container identity is read from (0: cgroup2),
    /// `None` without container enrichment.
    /// The container resolver's figures, for metrics.
    pub fn resolver_stats(&self) -> Option<crate::context::cgroup_path::ResolverStats> {
        self.containers.as_ref().map(CgroupResolver::stats)
    }

    /// A cgroup the kernel announced at creation (see `cgroup_path`).
    pub fn learn_cgroup(&mut self, hierarchy: u32, id: u64, path: &str) {
        for r in [self.containers.as_mut(), self.containers_v1.as_mut()]
            .into_iter()
            .flatten()
        {
            if r.hierarchy_id() == hierarchy {
                r.learn(id, path);
            }
        }
        // A new container cgroup: the runtime wrote its files before
        // creating it, so start reading them now, before its first exec.
        if let (Some(meta), Some(c)) = (
            self.runtime_meta.as_mut(),
            crate::context::container_id::from_cgroup_path(path),
        ) {
            meta.lookup(&c);
        }
    }

    /// Reads container and pod metadata with `resolver` from now on.
    pub fn set_runtime_meta(&mut self, resolver: MetaResolver) {
        self.runtime_meta = Some(resolver);
    }

    /// The metadata resolver's figures and its last read error, for
    /// metrics and the log.
    pub fn runtime_meta_stats(&mut self) -> Option<(MetaStats, Option<String>)> {
        self.runtime_meta
            .as_mut()
            .map(|m| (m.stats(), m.last_error.take()))
    }

    /// On a hybrid host, where to look when cgroup2's id names no
    /// container: the v1 controller's hierarchy (see
    /// `context::cgroup_v1::CgroupMode::Hybrid`).
    pub fn set_v1_fallback(&mut self, resolver: CgroupResolver) {
        self.containers_v1 = Some(resolver);
    }

    /// Unique per event and per sensor run.
    fn next_event_id(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{:x}-{n:x}", self.run_nonce)
    }

    /// `process.start`: exact from the kernel when the sensor saw the
    /// process start, else from /proc's start ticks (clock-tick precision).
    fn start_time(&self, info: &ProcessInfo) -> Option<String> {
        let ns = info.start_boottime_ns.or_else(|| {
            (info.start_ticks > 0).then(|| {
                info.start_ticks
                    .saturating_mul(1_000_000_000 / self.clk_tck.max(1))
            })
        })?;
        Some(self.start_text(ns))
    }

    /// The RFC 3339 text of a start (boot ns), formatted once
    /// (`start_texts`).
    fn start_text(&self, ns: u64) -> String {
        let mut texts = self.start_texts.borrow_mut();
        if let Some(t) = texts.get(&ns) {
            return t.clone();
        }
        if texts.len() >= START_TEXTS_MAX {
            texts.clear();
        }
        let t = ecs::rfc3339(self.clock.wall(ns));
        texts.insert(ns, t.clone());
        t
    }

    fn with_container(&mut self, ev: &mut EcsEvent, cgroup_id: u64, v1_id: u64, pid: u32) {
        let Some(resolver) = self.containers.as_mut() else {
            return;
        };
        let mut found = resolver.container_for_pid(cgroup_id, pid);
        if found.is_none() && v1_id != 0 {
            found = self
                .containers_v1
                .as_mut()
                .and_then(|r| r.container_for_pid(v1_id, pid));
        }
        let Some(c) = found else {
            return;
        };
        // Cached metadata now, or a lookup started for later events.
        let meta = self.runtime_meta.as_mut().and_then(|m| m.lookup(&c));
        ev.container = Some(container_fields(&c, meta.as_deref()));
        ev.orchestrator = orchestrator_fields(&c, meta.as_deref());
    }

    fn process_fields(&self, info: &ProcessInfo) -> ProcessFields {
        let args: Vec<String> = info.args.to_vec();
        ProcessFields {
            pid: info.pid,
            name: info.name.to_string(),
            executable: info.executable.as_deref().map(str::to_owned),
            command_line: ecs::command_line(&args),
            args,
            args_count: info.args_count,
            args_truncated: info.args_truncated,
            interactive: info.interactive,
            entity_id: Some(info.entity_id.to_string()),
            start: self.start_time(info),
            working_directory: info.working_directory.as_deref().map(str::to_owned),
            ..ProcessFields::default()
        }
    }

    /// One leader's fields: the leader as the table knows it, or its pid
    /// alone when it is gone or was never seen.
    fn leader_fields(
        &self,
        pid: u32,
        leader: Option<&ProcessInfo>,
        me: &ProcessInfo,
    ) -> LeaderFields {
        let mut out = LeaderFields {
            pid,
            same_as_process: pid == me.pid
                && leader.is_none_or(|l| l.start_ticks == me.start_ticks),
            ..LeaderFields::default()
        };
        if let Some(l) = leader {
            out.name = (!l.name.is_empty()).then(|| l.name.clone());
            out.executable = l.executable.clone();
            out.args_count = Some(l.args_count);
            out.args = Some(l.args.clone());
            out.entity_id = Some(l.entity_id.clone());
            out.start = self.start_time(l);
            out.working_directory = l.working_directory.clone();
            out.interactive = l.interactive;
            out.user = Some(IdField {
                id: l.uid.to_string(),
            });
            out.group = Some(IdField {
                id: l.gid.to_string(),
            });
        }
        out
    }

    /// `process.{entry,session,group}_leader` of `info` (see
    /// `context::process_table::leaders`).
    fn add_leaders(&self, p: &mut ProcessFields, info: &ProcessInfo, leaders: &Leaders) {
        p.entry_leader = match &info.entry_leader {
            EntryLeader::Unknown => None,
            EntryLeader::Own(t) => Some((info, *t)),
            EntryLeader::Of(l, t) => Some((&**l, *t)),
        }
        .map(|(l, t)| LeaderFields {
            entry_meta: Some(EntryMeta {
                entry_type: t.as_str(),
            }),
            ..self.leader_fields(l.pid, Some(l), info)
        });
        let pick = |id: u32, found: Option<&std::sync::Arc<ProcessInfo>>| {
            (id != 0).then(|| {
                let l = if id == info.pid {
                    Some(info)
                } else {
                    found.map(|l| &**l)
                };
                self.leader_fields(id, l, info)
            })
        };
        p.session_leader = pick(info.sid, leaders.session.as_ref());
        p.group_leader = pick(info.pgid, leaders.group.as_ref());
    }

    /// `process.parent.*`. `interactive` is the parent's own value as
    /// recorded when it started (its exec, or the /proc read for a process
    /// older than the sensor), the way Elastic's sensors fill parent fields
    /// from their process cache: a server that later calls `setsid` and
    /// takes a pty cannot make its children look like a user's. The tty as
    /// the kernel reads it at the child's exec is used only for a parent
    /// the sensor has no start value for; a change is reported on its own
    /// ([`Enricher::became_interactive_event`]).
    fn parent_fields(
        &self,
        pid: u32,
        info: Option<&ProcessInfo>,
        kernel: Option<&TaskInfo>,
    ) -> ParentFields {
        let mut p = ParentFields {
            pid,
            interactive: kernel
                .filter(|k| k.tty.flags & TTY_READ_ERROR == 0)
                .map(|k| k.tty.is_interactive()),
            ..ParentFields::default()
        };
        // Unknown to the table and to /proc: no name. The kernel's `comm`
        // is what the process calls itself (`prctl`), so it never stands in
        // for a name a rule decides on.
        if let Some(info) = info {
            p.name = Some(info.name.clone());
            p.executable = info.executable.clone();
            p.command_line = Some(ecs::command_line(&info.args));
            p.args_count = Some(info.args_count);
            p.args = Some(info.args.clone());
            p.entity_id = Some(info.entity_id.clone());
            p.start = self.start_time(info);
            p.working_directory = info.working_directory.clone();
            if info.interactive.is_some() {
                p.interactive = info.interactive;
            }
            if info.name.is_empty() {
                p.name = None;
            }
        }
        p
    }

    /// The process a kernel record names by tgid and start (a file or
    /// network event's actor), its parent and leaders as the table knows
    /// them, live or just exited; else the pid alone, with the entity id
    /// the table would give it when the record carries what it takes
    /// (`pid_ino`: the pidfs inode, 0 where the kernel has none).
    fn actor_fields(
        &self,
        tgid: u32,
        start_boottime_ns: u64,
        pid_ino: Option<u64>,
        table: &ProcessTable,
    ) -> ProcessFields {
        let live = table.get(tgid).filter(|p| {
            p.start_boottime_ns
                .is_none_or(|ns| start_boottime_ns == 0 || ns == start_boottime_ns)
        });
        let actor = live.or_else(|| {
            (start_boottime_ns != 0)
                .then(|| table.find_instance(tgid, start_boottime_ns))
                .flatten()
        });
        match actor {
            Some(info) => {
                let mut process = self.process_fields(info);
                process.parent = self.parent_from_table(info.ppid, table);
                self.add_leaders(&mut process, info, &table.leaders(info));
                process
            }
            None => ProcessFields {
                pid: tgid,
                entity_id: pid_ino
                    .filter(|_| start_boottime_ns != 0)
                    .map(|ino| table.entity_id_of(tgid, start_boottime_ns, ino).to_string()),
                ..ProcessFields::default()
            },
        }
    }

    /// An event by the process a kernel record names as acting (a file
    /// or network record): `event.*`, host, the actor (`actor_fields`) and
    /// the container of its cgroup.
    pub(crate) fn actor_event(
        &mut self,
        action: Action,
        a: &KernelActor,
        table: &ProcessTable,
    ) -> EcsEvent {
        let process = self.actor_fields(a.tgid, a.start_boottime_ns, a.pid_ino, table);
        self.event(
            action,
            a.ktime_ns,
            process,
            (a.uid, a.gid),
            Some((a.cgroup_id, 0, a.tgid)),
            None,
            None,
        )
    }

    /// An event about `subject`: `event.*` and host, the container of
    /// `cgroup` (`(cgroup2 id, v1 id, pid)`, when known) and the fields of
    /// `subject` (and `parent`) that had to be escaped.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn event(
        &mut self,
        action: Action,
        ktime_ns: u64,
        process: ProcessFields,
        (uid, gid): (u32, u32),
        cgroup: Option<(u64, u64, u32)>,
        subject: Option<&ProcessInfo>,
        parent: Option<&ProcessInfo>,
    ) -> EcsEvent {
        let mut out = EcsEvent::new(
            action,
            self.clock.wall(ktime_ns),
            self.next_event_id(),
            process,
            self.host.fields(),
            uid,
            gid,
        );
        if let Some((id, v1_id, pid)) = cgroup {
            self.with_container(&mut out, id, v1_id, pid);
        }
        out.sensor = subject.and_then(|s| escaped_fields(s, parent));
        out
    }

    /// `process.parent` for a process whose parent is `ppid`, as the table
    /// knows it now.
    fn parent_from_table(&self, ppid: u32, table: &ProcessTable) -> Option<ParentFields> {
        (ppid != 0).then(|| self.parent_fields(ppid, table.get(ppid).map(|p| &**p), None))
    }

    /// A `became_interactive` event for `parent` (see
    /// [`Action::BecameInteractive`]), from the tty facts the kernel read
    /// at its child's exec. The container is the parent's own when the
    /// kernel reported its cgroup, else the child's (a child starts in its
    /// parent's cgroup).
    pub fn became_interactive_event(
        &mut self,
        parent: &ProcessInfo,
        kernel: &TaskInfo,
        ktime_ns: u64,
        child_cgroup_id: u64,
        table: &ProcessTable,
    ) -> EcsEvent {
        let mut process = self.process_fields(parent);
        self.add_leaders(&mut process, parent, &table.leaders(parent));
        process.interactive = Some(true);
        if kernel.tty.flags & TTY_HAS_CTTY != 0 {
            process.tty = Some(Tty::from_kernel_dev(kernel.tty.ctty_dev));
        }
        let cgroup_id = parent.cgroup_id.unwrap_or(child_cgroup_id);
        self.event(
            Action::BecameInteractive,
            ktime_ns,
            process,
            (parent.uid, parent.gid),
            Some((cgroup_id, 0, parent.pid)),
            Some(parent),
            None,
        )
    }

    /// An `exec` event: the process as it is after exec, its parent as the
    /// table and the kernel saw it at that moment, and its container.
    pub fn exec_event(&mut self, ev: &ExecEvent, ctx: &ExecContext) -> EcsEvent {
        let mut process = self.process_fields(&ctx.process);
        self.add_leaders(&mut process, &ctx.process, &ctx.leaders);
        process.interactive = Some(ev.task.tty.is_interactive());
        if ev.task.tty.flags & TTY_HAS_CTTY != 0 {
            process.tty = Some(Tty::from_kernel_dev(ev.task.tty.ctty_dev));
        }
        let parent_pid = ev.parent.map(|p| p.tgid).unwrap_or(ctx.process.ppid);
        if parent_pid != 0 {
            process.parent =
                Some(self.parent_fields(parent_pid, ctx.parent.as_deref(), ev.parent.as_ref()));
        }
        // The filename as passed, whole only: never a cut name.
        let filename = (!ev.filename.is_empty() && !ev.filename_truncated)
            .then(|| byte_text::to_text(&ev.filename));
        process.ext = filename.as_ref().map(|f| ProcessExt {
            execve_filename: f.to_string(),
        });
        let mut out = self.event(
            Action::Exec,
            ev.ktime_ns,
            process,
            (ev.uid, ev.gid),
            Some((ev.cgroup_id, ev.cgroup_v1_id, ev.task.tgid)),
            Some(&ctx.process),
            ctx.parent.as_deref(),
        );
        if matches!(filename, Some(Cow::Owned(_))) {
            out.sensor
                .get_or_insert_with(|| SensorFields {
                    escaped_fields: Vec::new(),
                })
                .escaped_fields
                .push("process.Ext.execve_filename".into());
        }
        out
    }

    /// A `fork` event for a new process (optional on the output).
    pub fn fork_event(&mut self, ev: &ForkEvent, table: &ProcessTable) -> Option<EcsEvent> {
        let child = table.get(ev.child.tgid)?.clone();
        let parent = table.get(ev.parent_tgid).cloned();
        let mut process = self.process_fields(&child);
        self.add_leaders(&mut process, &child, &table.leaders(&child));
        process.parent = Some(self.parent_fields(ev.parent_tgid, parent.as_deref(), None));
        Some(self.event(
            Action::Fork,
            ev.ktime_ns,
            process,
            (child.uid, child.gid),
            Some((ev.cgroup_id, ev.cgroup_v1_id, ev.child.tgid)),
            Some(&child),
            parent.as_deref(),
        ))
    }

    /// An `end` event for a process that exited (optional on the output).
    pub fn end_event(&mut self, ev: &ExitEvent, ended: &ProcessInfo) -> EcsEvent {
        let mut process = self.process_fields(ended);
        // Wait-status encoding: exit status in bits 8..15, signal in 0..6.
        let code = ev.exit_code;
        process.exit_code = Some(if code & 0x7f != 0 {
            128 + (code & 0x7f) as i32
        } else {
            ((code >> 8) & 0xff) as i32
        });
        self.event(
            Action::End,
            ev.ktime_ns,
            process,
            (ended.uid, ended.gid),
            ended.cgroup_id.map(|id| (id, 0, ended.pid)),
            Some(ended),
            None,
        )
    }

    /// The `end` event with the process's parent as the table knows it
    /// (rules and sequences see it like any other event).
    pub fn end_event_in(
        &mut self,
        ev: &ExitEvent,
        ended: &ProcessInfo,
        table: &ProcessTable,
    ) -> EcsEvent {
        let mut out = self.end_event(ev, ended);
        self.add_leaders(&mut out.process, ended, &table.leaders(ended));
        if let Some(parent) = self.parent_from_table(ended.ppid, table) {
            out.process.parent = Some(parent);
        }
        out
    }

    /// A file event (`event.category: file`, shaped like Defend for
    /// Containers'), with the acting process and its parent as the table
    /// knows them, and its container. A process the table does not know
    /// (or knows as another instance of the pid) is named by pid only.
    pub fn file_event(&mut self, ev: &FileEvent, table: &ProcessTable) -> EcsEvent {
        let action = match ev.op {
            FileOp::OpenWrite => Action::FileOpen,
            FileOp::Create => Action::FileCreation,
            FileOp::Delete => Action::FileDeletion,
            FileOp::Rename => Action::FileRename,
        };
        let actor = KernelActor {
            ktime_ns: ev.ktime_ns,
            tgid: ev.tgid,
            start_boottime_ns: ev.start_boottime_ns,
            pid_ino: None,
            uid: ev.uid,
            gid: ev.gid,
            cgroup_id: ev.cgroup_id,
        };
        let mut out = self.actor_event(action, &actor, table);
        let mut file = match &ev.path {
            Some(p) => FileFields::from_path(&crate::byte_text::to_text(p)),
            None => FileFields::default(),
        };
        file.path_incomplete = ev.path_incomplete;
        if let Some(old) = &ev.old_path {
            let old = FileFields::from_path(&crate::byte_text::to_text(old));
            if let (Some(path), Some(name)) = (old.path, old.name) {
                file.ext = Some(FileExt {
                    original: FileOriginal { path, name },
                });
            }
        }
        out.file = Some(file);
        out
    }
}

/// The process a file or network record names as acting, and the
/// record's time, credentials and cgroup.
pub(crate) struct KernelActor {
    pub ktime_ns: u64,
    pub tgid: u32,
    pub start_boottime_ns: u64,
    /// The pidfs inode, when the record carries it (0: the kernel has
    /// none): names the process even after it ended.
    pub pid_ino: Option<u64>,
    pub uid: u32,
    pub gid: u32,
    pub cgroup_id: u64,
}

/// `sensor.escaped_fields` for an event about `process` (and its parent).
fn escaped_fields(process: &ProcessInfo, parent: Option<&ProcessInfo>) -> Option<SensorFields> {
    let mut names = Vec::new();
    process.escaped.names("process", &mut names);
    if let Some(p) = parent {
        p.escaped.names("process.parent", &mut names);
    }
    (!names.is_empty()).then_some(SensorFields {
        escaped_fields: names,
    })
}

/// `container.*` from the cgroup's container and the runtime's metadata.
fn container_fields(c: &ContainerInfo, meta: Option<&RuntimeMeta>) -> ContainerFields {
    let mut out = ContainerFields {
        id: c.id.clone(),
        runtime: c.runtime.ecs_value(),
        ..ContainerFields::default()
    };
    if let Some(m) = meta {
        out.runtime = out.runtime.or(m.runtime.and_then(|r| r.ecs_value()));
        out.name = m.name.clone();
        out.image = m.image_name.as_ref().map(|name| ContainerImage {
            name: name.clone(),
            tag: m.image_tag.iter().cloned().collect(),
        });
        out.security_context = m
            .privileged
            .map(|privileged| SecurityContext { privileged });
    }
    out
}

/// `orchestrator.*` when the container is in a pod: the uid from the
/// kubelet's cgroup path (or the runtime's annotations), the pod's name
/// and namespace from the runtime's annotations or labels.
fn orchestrator_fields(
    c: &ContainerInfo,
    meta: Option<&RuntimeMeta>,
) -> Option<OrchestratorFields> {
    let uid = c
        .pod_uid
        .clone()
        .or_else(|| meta.and_then(|m| m.pod_uid.clone()));
    let name = meta.and_then(|m| m.pod_name.clone());
    if uid.is_none() && name.is_none() {
        return None;
    }
    Some(OrchestratorFields {
        orchestrator_type: "kubernetes",
        namespace: meta.and_then(|m| m.pod_namespace.clone()),
        resource: OrchestratorResource {
            resource_type: "pod",
            id: uid,
            name,
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::context::container_id::ContainerRuntime;

    fn info(pod_uid: Option<&str>) -> ContainerInfo {
        ContainerInfo {
            id: "a".repeat(64),
            runtime: ContainerRuntime::Containerd,
            pod_uid: pod_uid.map(str::to_owned),
        }
    }

    #[test]
    fn start_texts_are_the_formatted_start_before_and_after_the_cache_fills() {
        let e = Enricher::new(
            HostIdentity {
                name: "h".into(),
                id: None,
            },
            None,
        );
        let direct = |ns: u64| ecs::rfc3339(e.clock.wall(ns));
        for round in 0..2 {
            for i in 0..(START_TEXTS_MAX as u64 + 10) {
                let ns = 1_000_000_007 * i + round;
                assert_eq!(e.start_text(ns), direct(ns));
                assert_eq!(e.start_text(ns), direct(ns), "cached");
            }
        }
        assert!(e.start_texts.borrow().len() <= START_TEXTS_MAX);
    }

    #[test]
    fn container_and_pod_fields_from_runtime_metadata() {
        let meta = RuntimeMeta {
            name: Some("web".into()),
            image_name: Some("docker.io/library/nginx".into()),
            image_tag: Some("1.25".into()),
            pod_name: Some("web-1".into()),
            pod_namespace: Some("shop".into()),
            pod_uid: Some("uid-from-annotations".into()),
            privileged: Some(true),
            kubelet_labels: None,
            runtime: None,
        };
        let c = container_fields(&info(Some("uid-from-cgroup")), Some(&meta));
        let o = orchestrator_fields(&info(Some("uid-from-cgroup")), Some(&meta));
        let json = serde_json::json!({"container": c, "orchestrator": o});
        assert_eq!(
            json,
            serde_json::json!({
                "container": {
                    "id": "a".repeat(64),
                    "runtime": "containerd",
                    "name": "web",
                    "image": {"name": "docker.io/library/nginx", "tag": ["1.25"]},
                    "security_context": {"privileged": true}
                },
                "orchestrator": {
                    "type": "kubernetes",
                    "namespace": "shop",
                    "resource": {"type": "pod", "id": "uid-from-cgroup", "name": "web-1"}
                }
            })
        );
    }

    #[test]
    fn without_metadata_only_what_the_cgroup_says() {
        let c = container_fields(&info(None), None);
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({"id": "a".repeat(64), "runtime": "containerd"})
        );
        assert!(orchestrator_fields(&info(None), None).is_none());
        let o = orchestrator_fields(&info(Some("u1")), None).unwrap();
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({"type": "kubernetes", "resource": {"type": "pod", "id": "u1"}})
        );
        // Runtime annotations (containerd, CRI-O) name a pod the cgroup
        // path does not show.
        let meta = RuntimeMeta {
            pod_name: Some("p".into()),
            pod_uid: Some("u2".into()),
            ..RuntimeMeta::default()
        };
        let o = orchestrator_fields(&info(None), Some(&meta)).unwrap();
        assert_eq!(o.resource.id.as_deref(), Some("u2"));
    }

    #[test]
    fn leader_fields_of_an_exec_into_a_container() {
        use crate::context::process_table::{leaders::INIT_PID_NS, TableConfig};
        use crate::kernel::decode::ExecEvent;
        use sensor_common::TaskInfo;
        let dir = tempfile::tempdir().unwrap();
        let mut table = ProcessTable::new(TableConfig {
            host_id: "h".into(),
            capacity: 16,
            proc_root: dir.path().to_owned(),
            clk_tck: 100,
        });
        let task = |pid, start, ns, sid, pgid| TaskInfo {
            tgid: pid,
            pid,
            start_boottime_ns: start,
            sid,
            pgid,
            pid_ns: ns,
            ..TaskInfo::default()
        };
        let shell = ExecEvent {
            task: task(700, 5_000_000_000, 4026532900, 700, 700),
            parent: Some(task(500, 1_000_000_000, INIT_PID_NS, 1, 1)),
            filename: b"/bin/sh".to_vec(),
            exe: Some(b"/usr/bin/dash".to_vec()),
            args: vec![b"sh".to_vec()],
            argc: 1,
            uid: 0,
            ..ExecEvent::default()
        };
        let ctx = table.on_exec(&shell);
        let mut enricher = Enricher::new(
            HostIdentity {
                name: "n".into(),
                id: None,
            },
            None,
        );
        let doc = enricher.exec_event(&shell, &ctx);
        let json = serde_json::to_value(&doc).unwrap();
        let p = &json["process"];
        assert_eq!(p["entry_leader"]["entry_meta"]["type"], "container");
        assert_eq!(p["entry_leader"]["same_as_process"], true);
        assert_eq!(p["entry_leader"]["pid"], 700);
        assert_eq!(p["entry_leader"]["name"], "dash");
        // Named after the file the kernel executed; the filename as passed
        // beside it.
        assert_eq!(p["name"], "dash");
        assert_eq!(p["executable"], "/usr/bin/dash");
        assert_eq!(p["Ext"]["execve_filename"], "/bin/sh");
        assert_eq!(json.get("sensor"), None);
        assert_eq!(p["entry_leader"]["user"]["id"], "0");
        assert_eq!(p["session_leader"]["same_as_process"], true);
        assert_eq!(p["group_leader"]["pid"], 700);

        // A child of it: the entry leader is the shell, not itself.
        let child = ExecEvent {
            task: task(701, 6_000_000_000, 4026532900, 700, 701),
            parent: Some(task(700, 5_000_000_000, 4026532900, 700, 700)),
            filename: b"/tmp/\xff".to_vec(),
            exe: Some(b"/usr/bin/dash".to_vec()),
            args: vec![b"sh".to_vec(), b"-i".to_vec()],
            argc: 2,
            ..ExecEvent::default()
        };
        let ctx = table.on_exec(&child);
        let json = serde_json::to_value(enricher.exec_event(&child, &ctx)).unwrap();
        let p = &json["process"];
        assert_eq!(p["Ext"]["execve_filename"], "/tmp/\\xff");
        assert_eq!(
            json["sensor"]["escaped_fields"],
            serde_json::json!(["process.Ext.execve_filename"])
        );
        assert_eq!(p["entry_leader"]["same_as_process"], false);
        assert_eq!(p["entry_leader"]["pid"], 700);
        assert_eq!(p["entry_leader"]["entry_meta"]["type"], "container");
        assert_eq!(p["session_leader"]["pid"], 700);
        assert_eq!(p["session_leader"]["same_as_process"], false);
        assert_eq!(p["group_leader"]["same_as_process"], true);
    }
}
