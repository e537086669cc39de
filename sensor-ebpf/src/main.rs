//! The sensor's kernel side: three small programs on the scheduler's process
//! tracepoints that feed one ring buffer.
//!
//! - `sched/sched_process_exec` (classic tracepoint): every successful execve
//!   with filename, full argv (bounded, truncation flagged, real argc), ids,
//!   cgroup id, namespaces and the tty facts that decide `interactive` for the
//!   process and its parent.
//! - `sched_process_fork` (raw tracepoint): new processes, so that forked
//!   workers that never exec inherit their parent's identity in userspace.
//!   Raw because only the raw form hands us the child `task_struct`, which is
//!   the only way to tell a new process from a new thread in the kernel.
//! - `sched/sched_process_exit` (classic tracepoint): the end of a process
//!   (its last thread), so userspace can evict it.
//!
//! No struct offset is compiled in: userspace resolves them from the running
//! kernel's BTF and sets the `OFFSETS` global at load time. A record the ring
//! buffer has no room for is counted in `LOST`, never dropped silently.
//!
//! Each program is a thin wrapper over a `try_*` function returning `Result`.
#![no_std]
#![no_main]

mod cgroup_v1;
mod file_events;
mod file_filter;
mod kernel_read;
mod net_events;

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_get_current_uid_gid,
        bpf_get_smp_processor_id, bpf_ktime_get_boot_ns,
        generated::{bpf_probe_read_kernel_str, bpf_probe_read_user, bpf_ringbuf_output},
    },
    macros::{map, raw_tracepoint, tracepoint},
    maps::{Array, PerCpuArray, ProgramArray, RingBuf},
    programs::{RawTracePointContext, TracePointContext},
    EbpfContext,
};
use kernel_read::{offset, read_i32, read_ptr, read_u32, read_u64, read_user_u64, ReadError};
use sensor_common::{
    drop_reason, lost_index, program_index, record_kind, ArgsChunkRecord, CgroupRecord, ExecRecord,
    ExitRecord, ForkRecord, KernelOffsets, RecordHeader, TaskInfo, TtyInfo, ARGS_CHUNKS_MAX,
    ARGS_CHUNK_MAX, ARGS_MAX, CGROUP_PATH_MAX, COMM_LEN, CWD_MAX, CWD_NAME_MAX, DROPS_LEN,
    EXEC_ARGC_UNKNOWN, EXEC_ARGS_CHUNK_LOST, EXEC_ARGS_READ_FAILED, EXEC_ARGS_TRUNCATED,
    EXEC_CWD_INCOMPLETE, EXEC_EXE_INCOMPLETE, EXEC_EXE_LEAF_ONLY, EXEC_EXE_PRESENT,
    EXEC_FILENAME_TRUNCATED, EXEC_PARENT_UNKNOWN, FILENAME_MAX, LAYOUT_HASH, TTY_FD0_CHR,
    TTY_FD2_CHR, TTY_HAS_CTTY, TTY_READ_ERROR,
};

/// The record layout this object was built with; userspace refuses an
/// object whose layout differs from its own (`sensor_common::LAYOUT_HASH`).
#[no_mangle]
static SENSOR_LAYOUT: u64 = LAYOUT_HASH;

/// Set by userspace at load time (`EbpfLoader::set_global`); all zero here.
#[no_mangle]
static OFFSETS: KernelOffsets = unsafe { core::mem::zeroed() };

/// Wake the reader only once this many bytes wait in the ring buffer (the
/// reader also drains on a short timer): a storm then costs one wake-up per
/// batch, not one per exec. 0: the kernel's default, a wake-up whenever the
/// reader has caught up (lowest latency). Set by userspace at load time.
#[no_mangle]
static WAKEUP_BYTES: u64 = 0;

const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;
const BPF_RB_AVAIL_DATA: u64 = 0;

/// Notification flags for the record about to be sent.
fn wakeup_flags() -> u64 {
    // SAFETY: volatile read of a load-time constant.
    let threshold = unsafe { core::ptr::read_volatile(&WAKEUP_BYTES) };
    if threshold == 0 {
        return 0;
    }
    if EVENTS.query(BPF_RB_AVAIL_DATA) >= threshold {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    }
}

/// Every record goes here. Userspace sets the size at load time.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(8 * 1024 * 1024, 0);

/// Scratch space for one exec record per CPU (too large for the 512-byte
/// eBPF stack, and above the 32 KiB per-CPU value limit, hence a plain array
/// indexed by CPU). Userspace sets max_entries to the number of possible CPUs.
#[map]
static SCRATCH: Array<ExecRecord> = Array::with_max_entries(1, 0);

/// Scratch for one argv continuation record per CPU (above the 32 KiB
/// per-CPU value limit, hence indexed by CPU like `SCRATCH`).
#[map]
static ARGS_SCRATCH: Array<ArgsChunkRecord> = Array::with_max_entries(1, 0);

/// Programs `sensor_exec` continues in, so the verifier checks each part on
/// its own instead of once per way the previous part can end (which older
/// verifiers, 6.1's, reject as too complex): slot [`TAIL_EXE`],
/// `sensor_exec_exe`, walks the executable's path; slot [`TAIL_ARGS`],
/// `sensor_exec_args`, sends argv beyond the record. Userspace fills both
/// before attaching.
#[map]
static EXEC_TAIL: ProgramArray = ProgramArray::with_max_entries(2, 0);

/// `EXEC_TAIL` slots.
const TAIL_ARGS: u32 = 0;
const TAIL_EXE: u32 = 1;

/// Scratch for one cgroup record per CPU (over the 512-byte stack).
#[map]
static CGROUP_SCRATCH: PerCpuArray<CgroupRecord> = PerCpuArray::with_max_entries(1, 0);

/// Records lost because the ring buffer was full, by [`lost_index`].
#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(lost_index::COUNT, 0);

/// Records a program dropped before the ring buffer, by program and
/// [`drop_reason`] (`program * drop_reason::COUNT + reason`).
#[map]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DROPS_LEN, 0);

/// Why a program gave up on its record.
#[derive(Clone, Copy)]
pub(crate) enum Dropped {
    Read,
    Scratch,
}

impl From<ReadError> for Dropped {
    fn from(_: ReadError) -> Dropped {
        Dropped::Read
    }
}

/// Counts a record `program` dropped (see [`DROPS`]) and says so on the
/// kernel log channel (aya-log, read by the agent only when it runs with
/// `RUST_LOG=debug`).
pub(crate) fn count_drop<C: EbpfContext>(ctx: &C, program: u32, why: Result<(), Dropped>) {
    let reason = match why {
        Ok(()) => return,
        Err(Dropped::Read) => drop_reason::READ,
        Err(Dropped::Scratch) => drop_reason::SCRATCH,
    };
    if let Some(counter) = DROPS.get_ptr_mut(program * drop_reason::COUNT + reason) {
        // SAFETY: per-CPU slot, only this CPU writes it.
        unsafe { *counter += 1 };
    }
    aya_log_ebpf::debug!(
        ctx,
        "program {} dropped a record, reason {}",
        program,
        reason
    );
}

const S_IFMT: u32 = 0o170000;
const S_IFCHR: u32 = 0o020000;

#[tracepoint]
pub fn sensor_exec(ctx: TracePointContext) -> u32 {
    // A partial read is reflected in the record's flags; a dropped record
    // is counted. The kernel ignores a tracepoint program's return value.
    count_drop(&ctx, program_index::EXEC, try_exec(&ctx));
    0
}

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sensor_fork(ctx: RawTracePointContext) -> i32 {
    count_drop(&ctx, program_index::FORK, try_fork(&ctx));
    0
}

#[tracepoint]
pub fn sensor_exit(ctx: TracePointContext) -> u32 {
    count_drop(&ctx, program_index::EXIT, try_exit(&ctx));
    0
}

#[tracepoint]
pub fn sensor_cgroup_mkdir(ctx: TracePointContext) -> u32 {
    count_drop(&ctx, program_index::CGROUP_MKDIR, try_cgroup_mkdir(&ctx));
    0
}

pub(crate) fn current_task() -> *const u8 {
    // SAFETY: helper call without arguments; the pointer is only ever read
    // through bpf_probe_read_kernel.
    unsafe { bpf_get_current_task() as *const u8 }
}

fn count_lost(index: u32) {
    count_lost_n(index, 1);
}

fn count_lost_n(index: u32, n: u64) {
    if let Some(counter) = LOST.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, only this CPU writes it.
        unsafe { *counter += n };
    }
}

pub(crate) fn header(kind: u32) -> RecordHeader {
    // SAFETY: plain helper calls with no arguments.
    unsafe {
        RecordHeader {
            kind,
            cpu: bpf_get_smp_processor_id(),
            ktime_ns: bpf_ktime_get_boot_ns(),
        }
    }
}

fn try_exec(ctx: &TracePointContext) -> Result<(), Dropped> {
    // SAFETY: helper call without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let rec = SCRATCH.get_ptr_mut(cpu).ok_or(Dropped::Scratch)?;
    // SAFETY: the map value is valid for the program's duration and only
    // this CPU uses this slot.
    let rec = unsafe { &mut *rec };
    let info = &mut rec.info;
    info.header = header(record_kind::EXEC);
    info.flags = 0;

    let task = current_task();
    let pid_tgid = bpf_get_current_pid_tgid();
    fill_task(&mut info.task, task);
    // The helper is authoritative for the current task's ids.
    info.task.tgid = (pid_tgid >> 32) as u32;
    info.task.pid = pid_tgid as u32;

    match read_ptr(task, offset(|o| &o.task_real_parent)) {
        Ok(parent) if !parent.is_null() => fill_leader(&mut info.parent, parent),
        _ => {
            info.parent = TaskInfo::default();
            info.flags |= EXEC_PARENT_UNKNOWN;
        }
    }

    let uid_gid = bpf_get_current_uid_gid();
    info.uid = uid_gid as u32;
    info.gid = (uid_gid >> 32) as u32;
    match read_ptr(task, offset(|o| &o.task_cred)) {
        Ok(cred) => {
            info.euid = read_u32(cred, offset(|o| &o.cred_euid)).unwrap_or(info.uid);
            info.egid = read_u32(cred, offset(|o| &o.cred_egid)).unwrap_or(info.gid);
        }
        Err(_) => {
            info.euid = info.uid;
            info.egid = info.gid;
        }
    }
    info.cgroup_id = cgroup_v1::current_cgroup_id(task);
    info.cgroup_v1_id = cgroup_v1::secondary_v1_id(task);
    info.mnt_ns = mount_ns(task).unwrap_or(0);
    info.pid_ns = pid_ns(task).unwrap_or(0);

    // SAFETY: the offsets come from this tracepoint's tracefs format.
    info.old_pid = unsafe { ctx.read_at::<u32>(offset(|o| &o.tp_exec_old_pid)) }.unwrap_or(0);
    let filename_len = read_filename(ctx, rec);
    read_args(task, rec, filename_len);
    let strings = filename_len + rec.info.args_len as usize;
    let strings = if strings > FILENAME_MAX - 1 + ARGS_MAX {
        FILENAME_MAX - 1 + ARGS_MAX
    } else {
        strings
    };
    read_cwd(task, rec, strings);
    rec.info.exe_len = 0;
    // The executed file names the process, never the filename as passed
    // (a symlink's own name, `/dev/stdin`, a script's path).
    rec.info.flags |= EXEC_EXE_PRESENT;
    // SAFETY: a tail call with this program's own context; it returns
    // only if the call could not be made (the slot is empty).
    unsafe { EXEC_TAIL.tail_call(ctx, TAIL_EXE) };
    rec.info.flags |= EXEC_EXE_INCOMPLETE;
    finish_exec(ctx, rec);
    Ok(())
}

/// The end of every exec: the argv continuation program when argv is
/// longer than the record holds, else the record itself.
fn finish_exec(ctx: &TracePointContext, rec: &mut ExecRecord) {
    if rec.info.args_total_len as usize > ARGS_MAX && rec.info.flags & EXEC_ARGS_READ_FAILED == 0 {
        // SAFETY: as above.
        unsafe { EXEC_TAIL.tail_call(ctx, TAIL_ARGS) };
        rec.info.flags |= EXEC_ARGS_CHUNK_LOST;
    }
    output_exec(rec);
}

/// Sends the exec record in the scratch slot: the fixed part and its
/// strings, as long as their lengths say.
fn output_exec(rec: &mut ExecRecord) {
    let info = &rec.info;
    let size = ExecRecord::FIXED_LEN
        + (info.filename_len as usize & (FILENAME_MAX - 1))
        + (info.args_len as usize & (2 * ARGS_MAX - 1))
        + (info.cwd_len as usize & (CWD_MAX - 1))
        + (info.exe_len as usize & (CWD_MAX - 1));
    let sent = output_prefix(rec, size, lost_index::EXEC);
    file_filter::on_exec(rec, sent);
}

#[tracepoint]
pub fn sensor_exec_args(ctx: TracePointContext) -> u32 {
    count_drop(&ctx, program_index::EXEC_ARGS, try_exec_args());
    0
}

/// Tail of `sensor_exec` for long argv: the continuation records, then the
/// exec record `sensor_exec` left in this CPU's scratch slot (a tail call
/// stays on the CPU and in the same tracepoint run).
fn try_exec_args() -> Result<(), Dropped> {
    // SAFETY: helper call without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let rec = SCRATCH.get_ptr_mut(cpu).ok_or(Dropped::Scratch)?;
    // SAFETY: as in `try_exec`; the slot holds the record it just built.
    let rec = unsafe { &mut *rec };
    match read_ptr(current_task(), offset(|o| &o.task_mm))
        .and_then(|mm| read_u64(mm, offset(|o| &o.mm_arg_start)))
    {
        Ok(start) => send_args_chunks(rec, start, u64::from(rec.info.args_total_len), cpu),
        Err(_) => rec.info.flags |= EXEC_ARGS_CHUNK_LOST,
    }
    output_exec(rec);
    Ok(())
}

#[tracepoint]
pub fn sensor_exec_exe(ctx: TracePointContext) -> u32 {
    count_drop(&ctx, program_index::EXEC_EXE, try_exec_exe(&ctx));
    0
}

/// Tail of every `sensor_exec`: the executed file's path, as the process
/// sees it, after the cwd; then [`finish_exec`]. `mm->exe_file` is, at
/// this tracepoint, the `binprm->file` the kernel opened and mapped: the
/// target of any symlink (the filename as passed may be a link under any
/// name, `/dev/stdin`, `/proc/self/fd/N`), the interpreter of a `#!`
/// script, `/memfd:name` for a memfd — what Elastic's exec probe reports
/// (the path of `binprm->file`). A program of its own so each path walk is
/// verified once, not once per way the other can end.
fn try_exec_exe(ctx: &TracePointContext) -> Result<(), Dropped> {
    // SAFETY: helper call without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let rec = SCRATCH.get_ptr_mut(cpu).ok_or(Dropped::Scratch)?;
    // SAFETY: as in `try_exec`; the slot holds the record it just built.
    let rec = unsafe { &mut *rec };
    let at = (rec.info.filename_len as usize & (FILENAME_MAX - 1))
        + (rec.info.args_len as usize & (2 * ARGS_MAX - 1))
        + (rec.info.cwd_len as usize & (CWD_MAX - 1));
    let task = current_task();
    let file = read_ptr(task, offset(|o| &o.task_mm))
        .and_then(|mm| read_ptr(mm, offset(|o| &o.mm_exe_file)))
        .and_then(|file| {
            if file.is_null() {
                Err(ReadError)
            } else {
                Ok(file)
            }
        });
    let dentry = file.and_then(|file| read_ptr(file, offset(|o| &o.file_path_dentry)));
    let walked = file.and_then(|file| {
        let mnt = read_ptr(file, offset(|o| &o.file_path_mnt))?;
        walk_path::<{ FILENAME_MAX - 1 + ARGS_MAX + CWD_MAX - 1 }, true, _>(
            task, mnt, dentry?, rec, at,
        )
    });
    match walked {
        Ok(len) => rec.info.exe_len = len as u32,
        Err(_) => {
            rec.info.flags |= EXEC_EXE_INCOMPLETE;
            // The path is cut (deeper than the walk, unreadable), but the
            // file's own name still names the process.
            if let Ok(len) = dentry.and_then(|d| exe_leaf(d, rec, at)) {
                rec.info.exe_len = len as u32;
                rec.info.flags |= EXEC_EXE_LEAF_ONLY;
            }
        }
    }
    finish_exec(ctx, rec);
    Ok(())
}

/// Sends the first `size` bytes of a scratch record (variable-length
/// records: fixed part plus strings), counting a full ring buffer as lost.
pub(crate) fn output_prefix<T>(rec: &mut T, size: usize, lost: u32) -> bool {
    let max = core::mem::size_of::<T>();
    let size = if size > max { max } else { size };
    // SAFETY: `rec` is a map value of size_of::<T>() bytes and `size` is
    // bounded by it (the check above is what the verifier sees).
    let ret = unsafe {
        bpf_ringbuf_output(
            core::ptr::addr_of!(EVENTS).cast_mut().cast(),
            (rec as *mut T).cast(),
            size as u64,
            wakeup_flags(),
        )
    };
    if ret < 0 {
        count_lost(lost);
        return false;
    }
    true
}

/// Reads the execve filename from the tracepoint record into the start of
/// `rec.data`; returns its length without the NUL (bounded for the verifier).
fn read_filename(ctx: &TracePointContext, rec: &mut ExecRecord) -> usize {
    // `__data_loc`: low 16 bits = offset of the string in the record.
    // SAFETY: offset from this tracepoint's tracefs format.
    let loc = unsafe { ctx.read_at::<u32>(offset(|o| &o.tp_exec_filename_loc)) }.unwrap_or(0);
    let src = unsafe { (ctx.as_ptr() as *const u8).add((loc & 0xffff) as usize) };
    // SAFETY: the destination is FILENAME_MAX bytes of the map value.
    let n = unsafe {
        bpf_probe_read_kernel_str(
            rec.data.as_mut_ptr().cast(),
            FILENAME_MAX as u32,
            src.cast(),
        )
    };
    if n <= 0 {
        rec.info.filename_len = 0;
        return 0;
    }
    // `n` counts the NUL; a full buffer means the name was cut.
    let len = (n as usize - 1) & (FILENAME_MAX - 1);
    if n as usize >= FILENAME_MAX {
        rec.info.flags |= EXEC_FILENAME_TRUNCATED;
    }
    rec.info.filename_len = len as u32;
    len
}

/// Copies argv (`mm->arg_start..arg_end` of the new image) after the filename
/// and reads the real argc from the top of the new stack (`mm->start_stack`
/// points at argc once the ELF loader has built the stack).
fn read_args(task: *const u8, rec: &mut ExecRecord, filename_len: usize) {
    rec.info.args_chunks = 0;
    rec.info.args_len = 0;
    rec.info.args_total_len = 0;
    rec.info.argc = 0;
    let Ok(mm) = read_ptr(task, offset(|o| &o.task_mm)) else {
        rec.info.flags |= EXEC_ARGS_READ_FAILED | EXEC_ARGC_UNKNOWN;
        return;
    };
    let start = read_u64(mm, offset(|o| &o.mm_arg_start)).unwrap_or(0);
    let end = read_u64(mm, offset(|o| &o.mm_arg_end)).unwrap_or(0);
    match read_u64(mm, offset(|o| &o.mm_start_stack)).and_then(read_user_u64) {
        Ok(argc) => rec.info.argc = argc as u32,
        Err(_) => rec.info.flags |= EXEC_ARGC_UNKNOWN,
    }
    if end <= start {
        rec.info.flags |= EXEC_ARGS_READ_FAILED;
        return;
    }
    let total = end - start;
    rec.info.args_total_len = total as u32;
    // Longer argv continues in `sensor_exec_args` (tail call).
    let len = if total > ARGS_MAX as u64 {
        ARGS_MAX as u32
    } else {
        total as u32
    };
    let at = filename_len & (FILENAME_MAX - 1);
    // SAFETY: `at < FILENAME_MAX` and `len <= ARGS_MAX`: the destination stays
    // inside `rec.data` (FILENAME_MAX + ARGS_MAX bytes).
    let ret = unsafe {
        bpf_probe_read_user(
            rec.data.as_mut_ptr().add(at).cast(),
            len,
            start as *const core::ffi::c_void,
        )
    };
    if ret < 0 {
        rec.info.flags |= EXEC_ARGS_READ_FAILED;
    } else {
        rec.info.args_len = len;
    }
}

/// Sends argv beyond the first [`ARGS_MAX`] bytes as continuation records,
/// before the exec record itself, up to the kernel's own bound on argv
/// ([`sensor_common::ARGS_TOTAL_MAX`]): no amount of padding pushes a
/// payload out of the capture. A record the ring buffer has no room for is
/// counted as lost and flagged on the exec record.
fn send_args_chunks(rec: &mut ExecRecord, start: u64, total: u64, cpu: u32) {
    let Some(chunk) = ARGS_SCRATCH.get_ptr_mut(cpu) else {
        rec.info.flags |= EXEC_ARGS_CHUNK_LOST;
        return;
    };
    // SAFETY: the map value is valid for the program's duration and only
    // this CPU uses this slot.
    let chunk = unsafe { &mut *chunk };
    let tgid = rec.info.task.tgid;
    let cap = (ARGS_CHUNKS_MAX * ARGS_CHUNK_MAX) as u64;
    let mut beyond = total.saturating_sub(ARGS_MAX as u64);
    if beyond > cap {
        beyond = cap;
        rec.info.flags |= EXEC_ARGS_TRUNCATED;
    }
    let full = (beyond / ARGS_CHUNK_MAX as u64) as u32;
    let last = (beyond % ARGS_CHUNK_MAX as u64) as u32;
    let base = start + ARGS_MAX as u64;
    let total_chunks = full + u32::from(last > 0);
    // Full chunks have a constant length: one verifier state per turn.
    for index in 0..ARGS_CHUNKS_MAX as u32 {
        if index >= full {
            break;
        }
        if !ring_has_room_for_chunk() {
            // The exec record comes first: what does not fit is counted.
            rec.info.flags |= EXEC_ARGS_CHUNK_LOST;
            count_lost_n(lost_index::ARGS_CHUNK, u64::from(total_chunks - index));
            rec.info.args_chunks = total_chunks;
            return;
        }
        let at = base + u64::from(index) * ARGS_CHUNK_MAX as u64;
        if !send_chunk(chunk, tgid, index, at, ARGS_CHUNK_MAX as u32) {
            rec.info.flags |= EXEC_ARGS_CHUNK_LOST;
        }
    }
    if last > 0 {
        if ring_has_room_for_chunk() {
            let at = base + u64::from(full) * ARGS_CHUNK_MAX as u64;
            if !send_chunk(chunk, tgid, full, at, last & (ARGS_CHUNK_MAX as u32 - 1)) {
                rec.info.flags |= EXEC_ARGS_CHUNK_LOST;
            }
        } else {
            rec.info.flags |= EXEC_ARGS_CHUNK_LOST;
            count_lost(lost_index::ARGS_CHUNK);
        }
    }
    rec.info.args_chunks = total_chunks;
}

/// Whether the ring buffer has room for one more continuation record and
/// still for the exec record that must follow it: argv larger than the ring
/// is cut, never the exec itself.
fn ring_has_room_for_chunk() -> bool {
    const BPF_RB_RING_SIZE: u64 = 1;
    let size = EVENTS.query(BPF_RB_RING_SIZE);
    let used = EVENTS.query(BPF_RB_AVAIL_DATA);
    let need =
        (core::mem::size_of::<ArgsChunkRecord>() + core::mem::size_of::<ExecRecord>()) as u64 + 64;
    size > used && size - used >= need
}

/// Reads `len` bytes of argv at user address `at` into the chunk and sends
/// it; false when it could not be read or sent.
fn send_chunk(chunk: &mut ArgsChunkRecord, tgid: u32, index: u32, at: u64, len: u32) -> bool {
    chunk.info.header = header(record_kind::ARGS_CHUNK);
    chunk.info.tgid = tgid;
    chunk.info.index = index;
    chunk.info.len = len;
    // SAFETY: `len <= ARGS_CHUNK_MAX`, the size of `chunk.data`.
    let ret = unsafe {
        bpf_probe_read_user(
            chunk.data.as_mut_ptr().cast(),
            len,
            at as *const core::ffi::c_void,
        )
    };
    if ret < 0 {
        return false;
    }
    output_prefix(
        chunk,
        ArgsChunkRecord::FIXED_LEN + len as usize,
        lost_index::ARGS_CHUNK,
    )
}

/// A record a path walk writes into: `path_data()` points at a buffer of
/// at least `MAX_AT + CWD_MAX + CWD_NAME_MAX` bytes for every `MAX_AT` the
/// record's walks use.
pub(crate) trait PathDest {
    fn path_data(&mut self) -> *mut u8;
}

impl PathDest for ExecRecord {
    #[inline(always)]
    fn path_data(&mut self) -> *mut u8 {
        self.data.as_mut_ptr()
    }
}

/// Most path components (and mount crossings) walked for the cwd.
const CWD_DEPTH: usize = 48;

/// The working directory, walked like the kernel's `d_path` from
/// `task->fs->pwd` up to the task's root (`task->fs->root`), crossing mount
/// points through `struct mount`. Components are written innermost first
/// after the other strings at `at`; userspace reverses them.
fn read_cwd(task: *const u8, rec: &mut ExecRecord, at: usize) {
    rec.info.cwd_len = 0;
    let start = read_ptr(task, offset(|o| &o.task_fs)).and_then(|fs| {
        if fs.is_null() {
            return Err(ReadError);
        }
        Ok((
            read_ptr(fs, offset(|o| &o.fs_pwd_mnt))?,
            read_ptr(fs, offset(|o| &o.fs_pwd_dentry))?,
        ))
    });
    let walked = start.and_then(|(mnt, dentry)| {
        walk_path::<{ FILENAME_MAX - 1 + ARGS_MAX }, false, _>(task, mnt, dentry, rec, at)
    });
    match walked {
        Ok(len) => rec.info.cwd_len = len as u32,
        Err(_) => rec.info.flags |= EXEC_CWD_INCOMPLETE,
    }
}

/// Writes `dentry`'s own name, NUL-terminated, at `at` in `rec.data`;
/// returns the bytes written.
#[inline(always)]
fn exe_leaf(dentry: *const u8, rec: &mut ExecRecord, at: usize) -> Result<usize, ReadError> {
    const MAX_AT: usize = FILENAME_MAX - 1 + ARGS_MAX + CWD_MAX - 1;
    let at = if at > MAX_AT { MAX_AT } else { at };
    let name = read_ptr(dentry, offset(|o| &o.dentry_name))?;
    // SAFETY: `at` <= MAX_AT and the read is at most CWD_NAME_MAX bytes:
    // inside `data`, which holds MAX_AT + CWD_MAX bytes for the walk.
    let n = unsafe {
        bpf_probe_read_kernel_str(
            rec.path_data().add(at).cast(),
            CWD_NAME_MAX as u32,
            name.cast(),
        )
    };
    if n <= 1 {
        return Err(ReadError);
    }
    Ok(n as usize)
}

/// Writes the path of (`vfsmnt`, `dentry`) at `at` in `rec.data`, as the
/// task sees it (up to its root), innermost component first; returns the
/// bytes written. `MAX_AT` bounds `at` for the verifier; `PSEUDO` names a
/// file with no place in any tree by its own name (only the executable
/// walk needs it, and the cwd walk stays as small as it was). An error means the
/// path is not whole (unreadable, deeper than [`CWD_DEPTH`] or longer than
/// [`CWD_MAX`]); the bytes written so far are then not to be used.
pub(crate) fn walk_path<const MAX_AT: usize, const PSEUDO: bool, R: PathDest>(
    task: *const u8,
    vfsmnt: *const u8,
    dentry: *const u8,
    rec: &mut R,
    at: usize,
) -> Result<usize, ReadError> {
    let fs = read_ptr(task, offset(|o| &o.task_fs))?;
    if fs.is_null() {
        return Err(ReadError);
    }
    let root_mnt = read_ptr(fs, offset(|o| &o.fs_root_mnt))?;
    let root_dentry = read_ptr(fs, offset(|o| &o.fs_root_dentry))?;
    let mut vfsmnt = vfsmnt;
    let mut dentry = dentry;
    let mount_mnt = offset(|o| &o.mount_mnt);
    let mut mnt = vfsmnt.wrapping_sub(mount_mnt);
    // A bound the verifier can see (the caller already clamps `at`).
    let at = if at > MAX_AT { MAX_AT } else { at };
    // `pos` is kept masked and overflow is accumulated without a branch:
    // the verifier then sees the same state at every turn of the loop and
    // can prune, instead of walking every possible length.
    let mut pos: usize = 0;
    let mut overflow: usize = 0;
    for _ in 0..CWD_DEPTH {
        if dentry == root_dentry && vfsmnt == root_mnt {
            return if overflow == 0 {
                Ok(pos)
            } else {
                Err(ReadError)
            };
        }
        let mnt_root = read_ptr(vfsmnt, offset(|o| &o.vfsmount_root))?;
        if dentry == mnt_root {
            let parent = read_ptr(mnt, offset(|o| &o.mount_parent))?;
            if parent == mnt {
                // The namespace's root mount.
                return if overflow == 0 {
                    Ok(pos)
                } else {
                    Err(ReadError)
                };
            }
            dentry = read_ptr(mnt, offset(|o| &o.mount_mountpoint))?;
            mnt = parent;
            vfsmnt = mnt.wrapping_add(mount_mnt);
            continue;
        }
        let parent = read_ptr(dentry, offset(|o| &o.dentry_parent))?;
        // A dentry that is its own parent without being the mount's root:
        // the walk is done, except for a file with no place in any tree (a
        // memfd, `alloc_file_pseudo`), whose own name is its whole path, as
        // `d_path` shows it (`/memfd:name`).
        let pseudo = PSEUDO && parent == dentry && pos == 0;
        if parent == dentry && !pseudo {
            return if overflow == 0 {
                Ok(pos)
            } else {
                Err(ReadError)
            };
        }
        let name = read_ptr(dentry, offset(|o| &o.dentry_name))?;
        let dst_off = at + (pos & (CWD_MAX - 1));
        // SAFETY: dst_off < MAX_AT + CWD_MAX and the read is at most
        // CWD_NAME_MAX bytes: inside the destination (`PathDest`'s bound).
        let n = unsafe {
            bpf_probe_read_kernel_str(
                rec.path_data().add(dst_off).cast(),
                CWD_NAME_MAX as u32,
                name.cast(),
            )
        };
        if n <= 0 {
            return Err(ReadError);
        }
        let next = pos + (n as usize & (CWD_NAME_MAX - 1 + CWD_NAME_MAX));
        overflow |= next >> 12; // CWD_MAX = 4096
        pos = next & (CWD_MAX - 1);
        if pseudo {
            return if overflow == 0 {
                Ok(pos)
            } else {
                Err(ReadError)
            };
        }
        dentry = parent;
    }
    Err(ReadError) // deeper than CWD_DEPTH
}

/// The dentry of the first (outermost) component of the path of
/// (`vfsmnt`, `dentry`) as `task` sees it: the component [`walk_path`]
/// would write last, found by the same steps without reading any name
/// (the file prefilter's gate, `file_filter::gate_drops_walk`). Null when
/// the path is the root itself. An error wherever `walk_path` could not
/// finish the same steps (unreadable, deeper than [`CWD_DEPTH`]).
/// `LEAF`: the start is a file whose own name the caller reads; a file
/// that is a mount's root (a bind-mounted file: `/etc/hosts` in a
/// container) is named by its mount point instead, so that start is an
/// error.
#[inline(never)]
pub(crate) fn first_component<const LEAF: bool>(
    task: *const u8,
    vfsmnt: *const u8,
    dentry: *const u8,
) -> Result<*const u8, ReadError> {
    let fs = read_ptr(task, offset(|o| &o.task_fs))?;
    if fs.is_null() {
        return Err(ReadError);
    }
    let root_mnt = read_ptr(fs, offset(|o| &o.fs_root_mnt))?;
    let root_dentry = read_ptr(fs, offset(|o| &o.fs_root_dentry))?;
    let mount_mnt = offset(|o| &o.mount_mnt);
    let mut vfsmnt = vfsmnt;
    let mut dentry = dentry;
    let mut mnt = vfsmnt.wrapping_sub(mount_mnt);
    let mut mnt_root = read_ptr(vfsmnt, offset(|o| &o.vfsmount_root))?;
    let mut last: *const u8 = core::ptr::null();
    if LEAF && dentry == mnt_root {
        return Err(ReadError);
    }
    for _ in 0..CWD_DEPTH {
        if dentry == root_dentry && vfsmnt == root_mnt {
            return Ok(last);
        }
        if dentry == mnt_root {
            let parent = read_ptr(mnt, offset(|o| &o.mount_parent))?;
            if parent == mnt {
                return Ok(last);
            }
            dentry = read_ptr(mnt, offset(|o| &o.mount_mountpoint))?;
            mnt = parent;
            vfsmnt = mnt.wrapping_add(mount_mnt);
            mnt_root = read_ptr(vfsmnt, offset(|o| &o.vfsmount_root))?;
            continue;
        }
        let parent = read_ptr(dentry, offset(|o| &o.dentry_parent))?;
        if parent == dentry {
            return Ok(last);
        }
        last = dentry;
        dentry = parent;
    }
    Err(ReadError) // deeper than CWD_DEPTH
}

/// Fills `info` from the thread-group leader of `task` (a parent may be a
/// worker thread: the process's identity is its leader's).
fn fill_leader(info: &mut TaskInfo, task: *const u8) {
    let leader = match read_ptr(task, offset(|o| &o.task_group_leader)) {
        Ok(leader) if !leader.is_null() => leader,
        _ => task,
    };
    fill_task(info, leader);
}

fn fill_task(info: &mut TaskInfo, task: *const u8) {
    info.tgid = read_u32(task, offset(|o| &o.task_tgid)).unwrap_or(0);
    info.pid = read_u32(task, offset(|o| &o.task_pid)).unwrap_or(0);
    info.start_boottime_ns = read_u64(task, offset(|o| &o.task_start_boottime)).unwrap_or(0);
    info.comm = kernel_read::read_bytes::<COMM_LEN>(task, offset(|o| &o.task_comm))
        .unwrap_or([0; COMM_LEN]);
    info.tty = read_tty(task);
    info.pid_ino = pid_ino(task);
    fill_session(info, task);
}

/// `enum pid_type` indexes of `signal_struct.pids` (stable since 4.19).
const PIDTYPE_PGID: usize = 2;
const PIDTYPE_SID: usize = 3;

/// Session and process group ids, host view, and the task's pid namespace.
fn fill_session(info: &mut TaskInfo, task: *const u8) {
    info.sid = session_pid(task, PIDTYPE_SID).unwrap_or(0);
    info.pgid = session_pid(task, PIDTYPE_PGID).unwrap_or(0);
    info.pid_ns = pid_ns(task).unwrap_or(0);
}

/// `task->signal->pids[kind]->numbers[0].nr`: the number in the initial
/// pid namespace (level 0), the one the agent sees in /proc.
fn session_pid(task: *const u8, kind: usize) -> Result<u32, ReadError> {
    let signal = read_ptr(task, offset(|o| &o.task_signal))?;
    if signal.is_null() {
        return Err(ReadError);
    }
    let at = offset(|o| &o.signal_pids) + kind * core::mem::size_of::<usize>();
    let pid = read_ptr(signal, at)?;
    if pid.is_null() {
        return Err(ReadError);
    }
    read_u32(pid, offset(|o| &o.pid_numbers) + offset(|o| &o.upid_nr))
}

/// `task->thread_pid->ino` where the kernel has it (pidfs), else 0.
pub(crate) fn pid_ino(task: *const u8) -> u64 {
    // SAFETY: volatile read of a load-time constant.
    if unsafe { core::ptr::read_volatile(&OFFSETS.has_pid_ino) } == 0 {
        return 0;
    }
    read_ptr(task, offset(|o| &o.task_thread_pid))
        .and_then(|pid| read_u64(pid, offset(|o| &o.pid_ino)))
        .unwrap_or(0)
}

/// The controlling tty (`task->signal->tty`) as a dev_t, and the character
/// devices behind fd 0 and fd 2.
fn read_tty(task: *const u8) -> TtyInfo {
    let mut tty = TtyInfo::default();
    if read_ctty(task, &mut tty).is_err() {
        tty.flags |= TTY_READ_ERROR;
    }
    if read_std_fds(task, &mut tty).is_err() {
        tty.flags |= TTY_READ_ERROR;
    }
    tty
}

fn read_ctty(task: *const u8, out: &mut TtyInfo) -> Result<(), ReadError> {
    let signal = read_ptr(task, offset(|o| &o.task_signal))?;
    if signal.is_null() {
        return Ok(());
    }
    let tty = read_ptr(signal, offset(|o| &o.signal_tty))?;
    if tty.is_null() {
        return Ok(());
    }
    let index = read_i32(tty, offset(|o| &o.tty_index))?;
    let driver = read_ptr(tty, offset(|o| &o.tty_driver))?;
    let major = read_i32(driver, offset(|o| &o.tty_driver_major))?;
    let minor_start = read_i32(driver, offset(|o| &o.tty_driver_minor_start))?;
    out.ctty_dev = ((major as u32) << 20) | ((minor_start + index) as u32 & 0xfffff);
    out.flags |= TTY_HAS_CTTY;
    Ok(())
}

fn read_std_fds(task: *const u8, out: &mut TtyInfo) -> Result<(), ReadError> {
    let files = read_ptr(task, offset(|o| &o.task_files))?;
    if files.is_null() {
        return Ok(());
    }
    let fdt = read_ptr(files, offset(|o| &o.files_fdt))?;
    let max_fds = read_u32(fdt, offset(|o| &o.fdtable_max_fds))?;
    let fds = read_ptr(fdt, offset(|o| &o.fdtable_fd))?;
    if max_fds > 0 {
        if let Some(dev) = char_dev_of_fd(fds, 0)? {
            out.fd0_dev = dev;
            out.flags |= TTY_FD0_CHR;
        }
    }
    if max_fds > 2 {
        if let Some(dev) = char_dev_of_fd(fds, 2)? {
            out.fd2_dev = dev;
            out.flags |= TTY_FD2_CHR;
        }
    }
    Ok(())
}

fn char_dev_of_fd(fds: *const u8, fd: usize) -> Result<Option<u32>, ReadError> {
    let file = read_ptr(fds, fd * core::mem::size_of::<usize>())?;
    if file.is_null() {
        return Ok(None);
    }
    let inode = read_ptr(file, offset(|o| &o.file_inode))?;
    if inode.is_null() {
        return Ok(None);
    }
    let mode = kernel_read::read_u16(inode, offset(|o| &o.inode_mode))? as u32;
    if mode & S_IFMT != S_IFCHR {
        return Ok(None);
    }
    Ok(Some(read_u32(inode, offset(|o| &o.inode_rdev))?))
}

fn mount_ns(task: *const u8) -> Result<u32, ReadError> {
    let nsproxy = read_ptr(task, offset(|o| &o.task_nsproxy))?;
    let mnt_ns = read_ptr(nsproxy, offset(|o| &o.nsproxy_mnt_ns))?;
    read_u32(mnt_ns, offset(|o| &o.mnt_ns_inum))
}

/// The task's own pid namespace: `thread_pid->numbers[level].ns`.
fn pid_ns(task: *const u8) -> Result<u32, ReadError> {
    let pid = read_ptr(task, offset(|o| &o.task_thread_pid))?;
    let level = read_u32(pid, offset(|o| &o.pid_level))? as usize & 0x1f;
    let upid = offset(|o| &o.pid_numbers) + level * offset(|o| &o.upid_size);
    let ns = read_ptr(pid, upid + offset(|o| &o.upid_ns))?;
    read_u32(ns, offset(|o| &o.pid_ns_inum))
}

fn try_fork(ctx: &RawTracePointContext) -> Result<(), Dropped> {
    // TP_PROTO(struct task_struct *parent, struct task_struct *child)
    let child: *const u8 = ctx.arg::<*const u8>(1);
    let tgid = read_u32(child, offset(|o| &o.task_tgid))?;
    let pid = read_u32(child, offset(|o| &o.task_pid))?;
    if tgid != pid {
        return Ok(()); // a new thread, not a new process
    }
    let mut rec = ForkRecord {
        header: header(record_kind::FORK),
        ..ForkRecord::default()
    };
    rec.child.tgid = tgid;
    rec.child.pid = pid;
    rec.child.start_boottime_ns = read_u64(child, offset(|o| &o.task_start_boottime))?;
    rec.child.pid_ino = pid_ino(child);
    fill_session(&mut rec.child, child);
    rec.child.comm = kernel_read::read_bytes::<COMM_LEN>(child, offset(|o| &o.task_comm))
        .unwrap_or([0; COMM_LEN]);
    if let Ok(parent) = read_ptr(child, offset(|o| &o.task_real_parent)) {
        let leader = match read_ptr(parent, offset(|o| &o.task_group_leader)) {
            Ok(leader) if !leader.is_null() => leader,
            _ => parent,
        };
        rec.parent_tgid = read_u32(leader, offset(|o| &o.task_tgid)).unwrap_or(0);
        rec.parent_start_boottime_ns =
            read_u64(leader, offset(|o| &o.task_start_boottime)).unwrap_or(0);
    }
    // The child's own cgroup: with clone3(CLONE_INTO_CGROUP) (systemd,
    // crun) it is not its parent's, the current task's.
    rec.cgroup_id = cgroup_v1::task_cgroup_id(child)
        .unwrap_or_else(|_| cgroup_v1::current_cgroup_id(current_task()));
    rec.cgroup_v1_id = cgroup_v1::secondary_v1_id(child);
    let sent = EVENTS.output::<ForkRecord>(&rec, wakeup_flags()).is_ok();
    if !sent {
        count_lost(lost_index::FORK);
    }
    file_filter::on_fork(rec.parent_tgid, tgid, sent);
    Ok(())
}

fn try_exit(ctx: &TracePointContext) -> Result<(), Dropped> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let tid = pid_tgid as u32;
    // SAFETY: volatile read of a load-time constant.
    let has_group_dead = unsafe { core::ptr::read_volatile(&OFFSETS.tp_exit_has_group_dead) };
    if has_group_dead != 0 {
        // SAFETY: offset from this tracepoint's tracefs format.
        let group_dead = unsafe { ctx.read_at::<u8>(offset(|o| &o.tp_exit_group_dead)) }
            .map_err(|_| ReadError)?;
        if group_dead == 0 {
            return Ok(());
        }
    } else if tgid != tid {
        return Ok(());
    }
    file_filter::on_exit(tgid);
    let task = current_task();
    let leader = match read_ptr(task, offset(|o| &o.task_group_leader)) {
        Ok(leader) if !leader.is_null() => leader,
        _ => task,
    };
    let rec = ExitRecord {
        header: header(record_kind::EXIT),
        tgid,
        exit_code: read_u32(task, offset(|o| &o.task_exit_code)).unwrap_or(0),
        start_boottime_ns: read_u64(leader, offset(|o| &o.task_start_boottime)).unwrap_or(0),
        comm: kernel_read::read_bytes::<COMM_LEN>(leader, offset(|o| &o.task_comm))
            .unwrap_or([0; COMM_LEN]),
    };
    if EVENTS.output::<ExitRecord>(&rec, wakeup_flags()).is_err() {
        count_lost(lost_index::EXIT);
    }
    Ok(())
}

fn try_cgroup_mkdir(ctx: &TracePointContext) -> Result<(), Dropped> {
    let rec = CGROUP_SCRATCH.get_ptr_mut(0).ok_or(Dropped::Scratch)?;
    // SAFETY: per-CPU map value, valid for the program's duration.
    let rec = unsafe { &mut *rec };
    rec.header = header(record_kind::CGROUP_MKDIR);
    // SAFETY: offsets from this tracepoint's tracefs format.
    unsafe {
        rec.root = ctx
            .read_at::<u32>(offset(|o| &o.tp_cgroup_root))
            .map_err(|_| ReadError)?;
        rec.id = ctx
            .read_at::<u64>(offset(|o| &o.tp_cgroup_id))
            .map_err(|_| ReadError)?;
    }
    // SAFETY: offset from this tracepoint's tracefs format.
    let loc =
        unsafe { ctx.read_at::<u32>(offset(|o| &o.tp_cgroup_path_loc)) }.map_err(|_| ReadError)?;
    let src = unsafe { (ctx.as_ptr() as *const u8).add((loc & 0xffff) as usize) };
    // SAFETY: the destination is CGROUP_PATH_MAX bytes of the map value.
    let n = unsafe {
        bpf_probe_read_kernel_str(
            rec.path.as_mut_ptr().cast(),
            CGROUP_PATH_MAX as u32,
            src.cast(),
        )
    };
    if n <= 0 {
        return Err(Dropped::Read);
    }
    let len = (n as usize - 1) & (CGROUP_PATH_MAX - 1);
    rec.path_len = len as u32;
    output_prefix(rec, CgroupRecord::FIXED_LEN + len, lost_index::CGROUP_MKDIR);
    Ok(())
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: eBPF programs cannot unwind or loop forever; the verifier
    // rejects any path that could reach here.
    unsafe { core::hint::unreachable_unchecked() }
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
