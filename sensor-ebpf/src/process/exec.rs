//! `sched/sched_process_exec`: one `ExecRecord` per successful execve, with
//! filename, argv (bounded; beyond the record, continuation records sent
//! from the `sensor_exec_args` tail call), ids, cgroup, namespaces, the tty
//! facts, the working directory and the executable's path (the
//! `sensor_exec_exe` tail call).

use crate::cgroup_v1;
use crate::file::filter as file_filter;
use crate::kernel_read::{offset, read_ptr, read_u32, read_u64, read_user_u64, ReadError};
use crate::maps::{
    count_drop, count_lost, count_lost_n, header, output_prefix, Dropped, BPF_RB_AVAIL_DATA, EVENTS,
};
use crate::path::{walk_path, PathDest};
use crate::task::{current_task, fill_leader, fill_task, mount_ns, pid_ns, Task};
use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_get_smp_processor_id,
        generated::{bpf_probe_read_kernel_str, bpf_probe_read_user},
    },
    macros::{map, tracepoint},
    maps::{Array, ProgramArray},
    programs::TracePointContext,
    EbpfContext,
};
use sensor_common::{
    lost_index, program_index, record_kind, ArgsChunkRecord, ExecRecord, TaskInfo, ARGS_CHUNKS_MAX,
    ARGS_CHUNK_MAX, ARGS_MAX, CWD_MAX, CWD_NAME_MAX, EXEC_ARGC_UNKNOWN, EXEC_ARGS_CHUNK_LOST,
    EXEC_ARGS_READ_FAILED, EXEC_ARGS_TRUNCATED, EXEC_CWD_INCOMPLETE, EXEC_EXE_INCOMPLETE,
    EXEC_EXE_LEAF_ONLY, EXEC_EXE_PRESENT, EXEC_FILENAME_TRUNCATED, EXEC_PARENT_UNKNOWN,
    FILENAME_MAX,
};

/// Scratch space for one exec record per CPU (too large for the 512-byte
/// eBPF stack, and above the 32 KiB per-CPU value limit, hence a plain array
/// indexed by CPU). Userspace sets max_entries to the number of possible CPUs.
#[map]
pub(crate) static SCRATCH: Array<ExecRecord> = Array::with_max_entries(1, 0);

/// Scratch for one argv continuation record per CPU (above the 32 KiB
/// per-CPU value limit, hence indexed by CPU like `SCRATCH`).
#[map]
pub(crate) static ARGS_SCRATCH: Array<ArgsChunkRecord> = Array::with_max_entries(1, 0);

/// Programs `sensor_exec` continues in, so the verifier checks each part on
/// its own instead of once per way the previous part can end (which older
/// verifiers, 6.1's, reject as too complex): slot [`TAIL_EXE`],
/// `sensor_exec_exe`, walks the executable's path; slot [`TAIL_ARGS`],
/// `sensor_exec_args`, sends argv beyond the record. Userspace fills both
/// before attaching.
#[map]
pub(crate) static EXEC_TAIL: ProgramArray = ProgramArray::with_max_entries(2, 0);

/// `EXEC_TAIL` slots.
pub(crate) const TAIL_ARGS: u32 = 0;
pub(crate) const TAIL_EXE: u32 = 1;

#[tracepoint]
pub fn sensor_exec(ctx: TracePointContext) -> u32 {
    // A partial read is reflected in the record's flags; a dropped record
    // is counted. The kernel ignores a tracepoint program's return value.
    count_drop(&ctx, program_index::EXEC, try_exec(&ctx));
    0
}

pub(crate) fn try_exec(ctx: &TracePointContext) -> Result<(), Dropped> {
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

    match Task(task).real_parent() {
        Ok(parent) if !parent.is_null() => fill_leader(&mut info.parent, parent),
        _ => {
            info.parent = TaskInfo::default();
            info.flags |= EXEC_PARENT_UNKNOWN;
        }
    }

    let uid_gid = bpf_get_current_uid_gid();
    info.uid = uid_gid as u32;
    info.gid = (uid_gid >> 32) as u32;
    match Task(task).cred() {
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
pub(crate) fn finish_exec(ctx: &TracePointContext, rec: &mut ExecRecord) {
    if rec.info.args_total_len as usize > ARGS_MAX && rec.info.flags & EXEC_ARGS_READ_FAILED == 0 {
        // SAFETY: as above.
        unsafe { EXEC_TAIL.tail_call(ctx, TAIL_ARGS) };
        rec.info.flags |= EXEC_ARGS_CHUNK_LOST;
    }
    output_exec(rec);
}

/// Sends the exec record in the scratch slot: the fixed part and its
/// strings, as long as their lengths say.
pub(crate) fn output_exec(rec: &mut ExecRecord) {
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
pub(crate) fn try_exec_args() -> Result<(), Dropped> {
    // SAFETY: helper call without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let rec = SCRATCH.get_ptr_mut(cpu).ok_or(Dropped::Scratch)?;
    // SAFETY: as in `try_exec`; the slot holds the record it just built.
    let rec = unsafe { &mut *rec };
    match Task(current_task())
        .mm()
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
pub(crate) fn try_exec_exe(ctx: &TracePointContext) -> Result<(), Dropped> {
    // SAFETY: helper call without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let rec = SCRATCH.get_ptr_mut(cpu).ok_or(Dropped::Scratch)?;
    // SAFETY: as in `try_exec`; the slot holds the record it just built.
    let rec = unsafe { &mut *rec };
    let at = (rec.info.filename_len as usize & (FILENAME_MAX - 1))
        + (rec.info.args_len as usize & (2 * ARGS_MAX - 1))
        + (rec.info.cwd_len as usize & (CWD_MAX - 1));
    let task = current_task();
    let file = Task(task)
        .mm()
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

/// Reads the execve filename from the tracepoint record into the start of
/// `rec.data`; returns its length without the NUL (bounded for the verifier).
pub(crate) fn read_filename(ctx: &TracePointContext, rec: &mut ExecRecord) -> usize {
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
pub(crate) fn read_args(task: *const u8, rec: &mut ExecRecord, filename_len: usize) {
    rec.info.args_chunks = 0;
    rec.info.args_len = 0;
    rec.info.args_total_len = 0;
    rec.info.argc = 0;
    let Ok(mm) = Task(task).mm() else {
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
pub(crate) fn send_args_chunks(rec: &mut ExecRecord, start: u64, total: u64, cpu: u32) {
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
pub(crate) fn ring_has_room_for_chunk() -> bool {
    const BPF_RB_RING_SIZE: u64 = 1;
    let size = EVENTS.query(BPF_RB_RING_SIZE);
    let used = EVENTS.query(BPF_RB_AVAIL_DATA);
    let need =
        (core::mem::size_of::<ArgsChunkRecord>() + core::mem::size_of::<ExecRecord>()) as u64 + 64;
    size > used && size - used >= need
}

/// Reads `len` bytes of argv at user address `at` into the chunk and sends
/// it; false when it could not be read or sent.
pub(crate) fn send_chunk(
    chunk: &mut ArgsChunkRecord,
    tgid: u32,
    index: u32,
    at: u64,
    len: u32,
) -> bool {
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

impl PathDest for ExecRecord {
    #[inline(always)]
    fn path_data(&mut self) -> *mut u8 {
        self.data.as_mut_ptr()
    }
}

/// The working directory, walked like the kernel's `d_path` from
/// `task->fs->pwd` up to the task's root (`task->fs->root`), crossing mount
/// points through `struct mount`. Components are written innermost first
/// after the other strings at `at`; userspace reverses them.
pub(crate) fn read_cwd(task: *const u8, rec: &mut ExecRecord, at: usize) {
    rec.info.cwd_len = 0;
    let start = Task(task).fs().and_then(|fs| {
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
pub(crate) fn exe_leaf(
    dentry: *const u8,
    rec: &mut ExecRecord,
    at: usize,
) -> Result<usize, ReadError> {
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
