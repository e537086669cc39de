//! Heap used by the process table with 10,000 live processes, measured with
//! a counting global allocator (live bytes = allocated − freed, including
//! allocator-visible overhead of every `Arc`, `String` and the hash map, but
//! not malloc's own per-block headers).
//!
//! Run with `--nocapture` to see the figures. One test only: the counter is
//! process-wide, and a second test running in parallel would pollute it.

// Tests fail by panicking; that is what these lints exist to keep out of
// production code.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicIsize, Ordering};

use sensor::context::process_table::{ProcessInfo, ProcessTable, TableConfig};
use sensor::context::procfs::{self, ProcSnapshot};
use sensor::kernel::decode::{ExecEvent, ForkEvent};
use sensor_common::TaskInfo;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const N: u32 = 10_000;

fn config(capacity: usize) -> TableConfig {
    TableConfig {
        host_id: "0123456789abcdef0123456789abcdef".to_owned(),
        capacity,
        // No /proc reads during the measurement (and no GC: capacity > N).
        proc_root: PathBuf::from("/nonexistent"),
        clk_tck: 100,
    }
}

/// A Kubernetes-node-like process: python app with a 6-element argv, a
/// 170-byte containerd cgroup path, all strings distinct per process.
fn realistic_snapshot(i: u32) -> ProcSnapshot {
    ProcSnapshot {
        pidfs_ino: None,
        pid: 1000 + i,
        ppid: 1,
        start_ticks: 10_000 + u64::from(i),
        comm: "python3".to_owned(),
        name: format!("worker-{i}"),
        interactive: Some(false),
        escaped: Default::default(),
        executable: Some("/usr/local/bin/python3.11".to_owned()),
        executable_deleted: false,
        args: vec![
            "/usr/local/bin/python3".to_owned(),
            format!("/opt/app/bin/worker-{i}"),
            "--config".to_owned(),
            "/etc/app/worker.yaml".to_owned(),
            "--log-level".to_owned(),
            "info".to_owned(),
        ],
        cwd: Some("/srv/app".to_owned()),
        uid: 1000,
        gid: 1000,
        euid: 1000,
        tty_nr: 0,
        cgroup_path: Some(format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{i:08x}_1b2c_4d5e_8f90_a1b2c3d4e5f6.slice/cri-containerd-{i:064x}.scope"
        )),
        is_kernel_thread: false,
        pgid: 1000 + i,
        sid: 1000 + i,
        pid_ns: Some(4026532500 + i),
    }
}

fn task(pid: u32, start_ns: u64) -> TaskInfo {
    TaskInfo {
        tgid: pid,
        pid,
        start_boottime_ns: start_ns,
        ..TaskInfo::default()
    }
}

fn realistic_exec(i: u32) -> ExecEvent {
    let args: Vec<Vec<u8>> = vec![
        b"/usr/local/bin/python3".to_vec(),
        format!("/opt/app/bin/worker-{i}").into_bytes(),
        b"--config".to_vec(),
        b"/etc/app/worker.yaml".to_vec(),
        b"--log-level".to_vec(),
        b"info".to_vec(),
    ];
    ExecEvent {
        ktime_ns: 0,
        task: task(1000 + i, (10_000 + u64::from(i)) * 10_000_000),
        parent: Some(task(1, 10_000_000)),
        old_pid: 1000 + i,
        uid: 1000,
        gid: 1000,
        euid: 1000,
        egid: 1000,
        cgroup_id: 4242 + u64::from(i),
        pid_ns: 0,
        mnt_ns: 0,
        filename: format!("/opt/app/bin/worker-{i}").into_bytes(),
        filename_truncated: false,
        argc: args.len() as u32,
        args,
        args_truncated: false,
        args_read_failed: false,
        cwd: None,
        ..ExecEvent::default()
    }
}

fn report(what: &str, bytes: isize, entries: usize) -> isize {
    let per = bytes / entries.max(1) as isize;
    eprintln!(
        "process table, {what}: {entries} entries, {bytes} bytes ({:.2} MiB), {per} bytes/entry",
        bytes as f64 / (1024.0 * 1024.0)
    );
    per
}

#[test]
fn memory_with_ten_thousand_processes() {
    eprintln!(
        "size_of::<ProcessInfo>() = {}, Arc<ProcessInfo> block = {}",
        std::mem::size_of::<ProcessInfo>(),
        std::mem::size_of::<ProcessInfo>() + 16
    );

    // 1. Seeded from /proc, every string distinct (worst case).
    let snapshots: Vec<ProcSnapshot> = (0..N).map(realistic_snapshot).collect();
    let before = live();
    let mut table = ProcessTable::new(config(65_536));
    // Account the inputs out: seed consumes them and frees what it converts.
    let input_bytes: isize = snapshots.iter().map(snapshot_heap).sum::<isize>()
        + (snapshots.capacity() * std::mem::size_of::<ProcSnapshot>()) as isize;
    assert_eq!(table.seed(snapshots), N as usize);
    let seeded = live() - before + input_bytes;
    let seeded_per = report("seeded from /proc (distinct strings)", seeded, table.len());
    drop(table);

    // 2. The same processes learned from exec events (no cgroup path).
    let events: Vec<ExecEvent> = (0..N).map(realistic_exec).collect();
    let before = live();
    let mut table = ProcessTable::new(config(65_536));
    for ev in &events {
        table.on_exec(ev);
    }
    let exec = live() - before;
    let exec_per = report("from exec events", exec, table.len());

    // 3. Pre-fork server: one master, 9,999 workers forked (no exec): the
    //    workers share the master's strings.
    drop(table);
    let before = live();
    let mut table = ProcessTable::new(config(65_536));
    table.on_exec(&events[0]);
    let master_start = events[0].task.start_boottime_ns;
    for i in 1..N {
        table.on_fork(&ForkEvent {
            ktime_ns: 0,
            child: task(50_000 + i, master_start + u64::from(i) * 10_000_000),
            parent_tgid: 1000,
            parent_start_boottime_ns: master_start,
            cgroup_id: 4242,
            cgroup_v1_id: 0,
        });
    }
    assert_eq!(table.len(), N as usize);
    let forked = live() - before;
    let forked_per = report("1 master + 9,999 forked workers", forked, table.len());
    drop(table);
    drop(events);

    // 4. This machine's real /proc, for a realistic mix (scaled per entry).
    let scan = procfs::scan(Path::new("/proc"));
    let real_input: isize = scan.snapshots.iter().map(snapshot_heap).sum::<isize>()
        + (scan.snapshots.capacity() * std::mem::size_of::<ProcSnapshot>()) as isize;
    let before = live();
    let mut table = ProcessTable::new(config(65_536));
    let n = table.seed(scan.snapshots);
    let real = live() - before + real_input;
    if n > 0 {
        let per = report("this machine's /proc", real, n);
        eprintln!(
            "  → extrapolated to 10,000 such processes: {:.2} MiB",
            (per * 10_000) as f64 / (1024.0 * 1024.0)
        );
    }

    // Bounds that fail if the representation regresses (e.g. args copied
    // into every fork child, or strings duplicated per entry).
    assert!(seeded_per < 1_000, "seeded: {seeded_per} bytes/entry");
    assert!(exec_per < 800, "exec: {exec_per} bytes/entry");
    assert!(forked_per < 320, "forked workers: {forked_per} bytes/entry");
}

/// Heap bytes owned by a snapshot (its `String`s and `Vec`), so the seeded
/// measurement counts only what the table keeps.
fn snapshot_heap(s: &ProcSnapshot) -> isize {
    let opt = |o: &Option<String>| o.as_ref().map_or(0, String::capacity);
    (s.comm.capacity()
        + s.name.capacity()
        + opt(&s.executable)
        + s.args.iter().map(String::capacity).sum::<usize>()
        + s.args.capacity() * std::mem::size_of::<String>()
        + opt(&s.cwd)
        + opt(&s.cgroup_path)) as isize
}
