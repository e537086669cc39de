//! File events: opens with write intent, creations, deletions and renames,
//! from the BPF LSM hooks `file_open`, `path_unlink` and `path_rename`, or,
//! where `bpf` is not an active LSM, from fentry on the same `security_*`
//! functions. Userspace loads one set or the other (or neither, and says
//! so); the bodies are shared.
//!
//! Each path is walked like the exec's cwd (`walk_path`), up to the acting
//! task's root, so a container's files are named as the container sees
//! them. One walk per program: a rename's two paths are walked by two
//! programs on the same hook, which meet in this CPU's scratch slot (they
//! run back to back, in either order) and the second one sends the record.
//!
//! The LSM programs never deny anything: they return 0.

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
        generated::{bpf_probe_read_kernel, bpf_probe_read_user_str},
    },
    macros::{fentry, lsm, map, tracepoint},
    maps::{HashMap, PerCpuArray},
    programs::{FEntryContext, LsmContext, TracePointContext},
};
use sensor_common::{
    file_op, lost_index, program_index, record_kind, FileRecord, FileWire, COMM_LEN, FILE_NAMES,
    FILE_NAME_AT, FILE_NAME_INCOMPLETE, FILE_OLD_NAME_AT, FILE_OLD_PATH_AT,
    FILE_OLD_PATH_INCOMPLETE, FILE_PATH_INCOMPLETE, FILE_PATH_MAX,
};

use crate::cgroup_v1;
use crate::file::filter as file_filter;
use crate::kernel_read::{self, offset, read_ptr, read_u32, ReadError};
use crate::maps::{count_drop, header, output_prefix, Dropped};
use crate::path::{walk_path, PathDest};
use crate::task::{current_task, Task};

/// `FMODE_WRITE` and `FMODE_CREATED` (include/linux/fs.h; the same bits
/// from 4.19 to 6.18).
const FMODE_WRITE: u32 = 0x2;
const FMODE_CREATED: u32 = 0x10_0000;
const S_IFMT: u16 = 0o170000;
const S_IFREG: u16 = 0o100000;

/// One file record per CPU (over the 512-byte stack; under the 32 KiB
/// per-CPU value limit).
#[map]
static FILE_SCRATCH: PerCpuArray<FileRecord> = PerCpuArray::with_max_entries(1, 0);

impl PathDest for FileRecord {
    #[inline(always)]
    fn path_data(&mut self) -> *mut u8 {
        self.data.as_mut_ptr()
    }
}

// --- BPF LSM ---------------------------------------------------------------

#[lsm(hook = "file_open")]
pub fn sensor_lsm_file_open(ctx: LsmContext) -> i32 {
    count_drop(&ctx, program_index::FILE_OPEN, file_open(ctx.arg(0)));
    0
}

#[lsm(hook = "path_unlink")]
pub fn sensor_lsm_path_unlink(ctx: LsmContext) -> i32 {
    count_drop(
        &ctx,
        program_index::FILE_UNLINK,
        unlink(ctx.arg(0), ctx.arg(1)),
    );
    0
}

#[lsm(hook = "path_rename")]
pub fn sensor_lsm_path_rename(ctx: LsmContext) -> i32 {
    count_drop(
        &ctx,
        program_index::FILE_RENAME,
        rename_part::<false>(ctx.arg(2), ctx.arg(3), ctx.arg(1)),
    );
    0
}

#[lsm(hook = "path_rename")]
pub fn sensor_lsm_path_rename_old(ctx: LsmContext) -> i32 {
    count_drop(
        &ctx,
        program_index::FILE_RENAME_OLD,
        rename_part::<true>(ctx.arg(0), ctx.arg(1), ctx.arg(1)),
    );
    0
}

// --- fentry on the security_* functions (no BPF LSM) -----------------------

#[fentry(function = "security_file_open")]
pub fn sensor_fentry_file_open(ctx: FEntryContext) -> i32 {
    count_drop(&ctx, program_index::FILE_OPEN, file_open(ctx.arg(0)));
    0
}

#[fentry(function = "security_path_unlink")]
pub fn sensor_fentry_path_unlink(ctx: FEntryContext) -> i32 {
    count_drop(
        &ctx,
        program_index::FILE_UNLINK,
        unlink(ctx.arg(0), ctx.arg(1)),
    );
    0
}

#[fentry(function = "security_path_rename")]
pub fn sensor_fentry_path_rename(ctx: FEntryContext) -> i32 {
    count_drop(
        &ctx,
        program_index::FILE_RENAME,
        rename_part::<false>(ctx.arg(2), ctx.arg(3), ctx.arg(1)),
    );
    0
}

#[fentry(function = "security_path_rename")]
pub fn sensor_fentry_path_rename_old(ctx: FEntryContext) -> i32 {
    count_drop(
        &ctx,
        program_index::FILE_RENAME_OLD,
        rename_part::<true>(ctx.arg(0), ctx.arg(1), ctx.arg(1)),
    );
    0
}

// --- shared bodies -----------------------------------------------------------

fn scratch() -> Result<&'static mut FileRecord, Dropped> {
    let rec = FILE_SCRATCH.get_ptr_mut(0).ok_or(Dropped::Scratch)?;
    // SAFETY: per-CPU map value, valid for the program's duration; only
    // this CPU uses it, and programs on one CPU do not interleave.
    Ok(unsafe { &mut *rec })
}

/// The acting process: ids, its start, cgroup and name.
fn fill_actor(rec: &mut FileRecord, op: u32) {
    let task = current_task();
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    let info = &mut rec.info;
    info.header = header(record_kind::FILE);
    info.tgid = (pid_tgid >> 32) as u32;
    info.pid = pid_tgid as u32;
    let leader = match Task(task).group_leader() {
        Ok(leader) if !leader.is_null() => leader,
        _ => task,
    };
    info.start_boottime_ns = Task(leader).start_boottime().unwrap_or(0);
    info.cgroup_id = cgroup_v1::current_cgroup_id(task);
    info.uid = uid_gid as u32;
    info.gid = (uid_gid >> 32) as u32;
    info.op = op;
    info.flags = 0;
    info.path_len = 0;
    info.old_path_len = 0;
    info.name_len = 0;
    info.old_name_len = 0;
    info.comm = Task(leader).comm().unwrap_or([0; COMM_LEN]);
}

/// Walks (`mnt`, `dentry`) into the path slot; a path that could not be
/// walked whole is flagged and left empty.
fn walk_new(rec: &mut FileRecord, mnt: *const u8, dentry: *const u8) {
    match walk_path::<0, false, _>(current_task(), mnt, dentry, rec, 0) {
        Ok(len) => rec.info.path_len = len as u32,
        Err(_) => {
            rec.info.path_len = 0;
            rec.info.flags |= FILE_PATH_INCOMPLETE;
        }
    }
}

/// This CPU's packed record (`FileWire`), built from the scratch record
/// for the ring.
#[map]
static FILE_WIRE: PerCpuArray<FileWire> = PerCpuArray::with_max_entries(1, 0);

/// Sends the record, unless the rules' prefilter (`file_filter`) says no
/// rule could match it: packed (`FILE_WIRE_PACKED`), so only the bytes
/// used cross the ring (a syscall rename's old name would otherwise sit
/// 8 KiB in).
fn send(rec: &mut FileRecord) -> Result<(), Dropped> {
    if !file_filter::passes(rec) {
        return Ok(());
    }
    let wire = FILE_WIRE.get_ptr_mut(0).ok_or(Dropped::Scratch)?;
    // SAFETY: per-CPU map value, valid for the program's duration; only
    // this CPU uses it.
    let wire = unsafe { &mut *wire };
    wire.info = rec.info;
    let names = rec.info.flags & FILE_NAMES != 0;
    let rename = rec.info.op == file_op::RENAME;
    let first = rec.info.path_len as usize & (FILE_PATH_MAX - 1);
    let second = if names {
        rec.info.name_len as usize
    } else if rename {
        rec.info.old_path_len as usize
    } else {
        0
    } & (FILE_PATH_MAX - 1);
    let third = if names && rename {
        rec.info.old_name_len as usize
    } else {
        0
    } & (FILE_PATH_MAX - 1);
    // The lengths as sent (a string cut by the masks above is never sent:
    // the walk and the name reads keep them under FILE_PATH_MAX).
    wire.info.path_len = first as u32;
    if names {
        wire.info.name_len = second as u32;
        wire.info.old_name_len = third as u32;
    } else {
        wire.info.old_path_len = second as u32;
    }
    copy(wire, 0, rec, 0, first)?;
    copy(wire, first, rec, FILE_OLD_PATH_AT, second)?;
    copy(wire, first + second, rec, FILE_OLD_NAME_AT, third)?;
    output_prefix(
        wire,
        FileWire::FIXED_LEN + first + second + third,
        lost_index::FILE,
    );
    Ok(())
}

/// Copies `n` (< FILE_PATH_MAX) bytes of the scratch record's data at
/// `from` to the packed record's data at `to` (< 2 × FILE_PATH_MAX).
#[inline(always)]
fn copy(
    wire: &mut FileWire,
    to: usize,
    rec: &FileRecord,
    from: usize,
    n: usize,
) -> Result<(), Dropped> {
    let n = n & (FILE_PATH_MAX - 1);
    if n == 0 {
        return Ok(());
    }
    // SAFETY: `to` < 2 × FILE_PATH_MAX and `n` < FILE_PATH_MAX: inside
    // `wire.data` (3 × FILE_PATH_MAX); `from` is a constant whose string
    // room (FILE_PATH_MAX) is inside `rec.data`.
    let r = unsafe {
        bpf_probe_read_kernel(
            wire.data
                .as_mut_ptr()
                .add(to & (2 * FILE_PATH_MAX - 1))
                .cast(),
            n as u32,
            rec.data.as_ptr().add(from).cast(),
        )
    };
    if r != 0 {
        return Err(Dropped::Read);
    }
    Ok(())
}

/// `file_open`: a regular file opened for writing, or created by this open.
fn file_open(file: *const u8) -> Result<(), Dropped> {
    let mode = read_u32(file, offset(|o| &o.file_f_mode))?;
    if mode & (FMODE_WRITE | FMODE_CREATED) == 0 {
        return Ok(());
    }
    let inode = read_ptr(file, offset(|o| &o.file_inode))?;
    let imode = kernel_read::read_u16(inode, offset(|o| &o.inode_mode))?;
    if imode & S_IFMT != S_IFREG {
        return Ok(()); // devices, pipes, sockets: not files a rule names
    }
    let op = if mode & FMODE_CREATED != 0 {
        file_op::CREATE
    } else {
        file_op::OPEN_WRITE
    };
    let mnt = read_ptr(file, offset(|o| &o.file_path_mnt))?;
    let dentry = read_ptr(file, offset(|o| &o.file_path_dentry))?;
    if file_filter::gate_drops_walk(op, mnt, dentry) {
        return Ok(());
    }
    let rec = scratch()?;
    fill_actor(rec, op);
    walk_new(rec, mnt, dentry);
    send(rec)
}

/// `path_unlink(const struct path *dir, struct dentry *dentry)`.
fn unlink(dir: *const u8, dentry: *const u8) -> Result<(), Dropped> {
    let mnt = read_ptr(dir, offset(|o| &o.path_mnt))?;
    if file_filter::gate_drops_walk(file_op::DELETE, mnt, dentry) {
        return Ok(());
    }
    let rec = scratch()?;
    fill_actor(rec, file_op::DELETE);
    walk_new(rec, mnt, dentry);
    send(rec)
}

/// One half of `path_rename(old_dir, old_dentry, new_dir, new_dentry,
/// flags)`: `OLD` walks the old name into the old-path slot, else the new
/// name into the path slot. `key_dentry` (the old dentry) ties the halves
/// of one call together; whichever half runs second sends the record.
fn rename_part<const OLD: bool>(
    dir: *const u8,
    dentry: *const u8,
    key_dentry: *const u8,
) -> Result<(), Dropped> {
    let mnt = read_ptr(dir, offset(|o| &o.path_mnt)).map_err(|_: ReadError| Dropped::Read)?;
    let rec = scratch()?;
    // The old dentry's name pointer, read through the helper: a scalar
    // for the verifier (math on the hook's pointer argument is refused).
    let name = read_ptr(key_dentry, offset(|o| &o.dentry_name)).map_err(|_| Dropped::Read)?;
    let key = bpf_get_current_pid_tgid() ^ (name as u64);
    if rec.rename_key != key || rec.info.op != file_op::RENAME {
        fill_actor(rec, file_op::RENAME);
        rec.rename_key = key;
        rec.rename_parts = 0;
    }
    if OLD {
        match walk_path::<FILE_OLD_PATH_AT, false, _>(
            current_task(),
            mnt,
            dentry,
            rec,
            FILE_OLD_PATH_AT,
        ) {
            Ok(len) => rec.info.old_path_len = len as u32,
            Err(_) => {
                rec.info.old_path_len = 0;
                rec.info.flags |= FILE_OLD_PATH_INCOMPLETE;
            }
        }
        rec.rename_parts |= 2;
    } else {
        walk_new(rec, mnt, dentry);
        rec.rename_parts |= 1;
    }
    if rec.rename_parts == 3 {
        rec.rename_key = 0;
        rec.rename_parts = 0;
        return send(rec);
    }
    Ok(())
}

// --- syscall tracepoints (neither BPF LSM nor fentry) ------------------------
//
// Opens are exact: at the syscall's exit the new fd's `struct file` goes
// through the same `file_open` body. Unlink and rename keep their
// arguments from entry to exit and report only a call that succeeded: the
// directory the names are relative to (the dirfd's or the cwd) is walked,
// and the names are sent as the process passed them; userspace joins them.

/// `AT_FDCWD`.
const AT_FDCWD: i32 = -100;
/// `AT_REMOVEDIR`: `unlinkat` removing a directory (not a file event).
const AT_REMOVEDIR: u64 = 0x200;

/// A name syscall's arguments, from entry to exit.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NameCall {
    op: u32,
    dfd: i32,
    name: u64,
    old_dfd: i32,
    _pad: u32,
    old_name: u64,
}

/// Calls in flight, by thread (`pid_tgid`). An entry a thread never exits
/// from is replaced by its next call.
#[map]
static NAME_CALLS: HashMap<u64, NameCall> = HashMap::with_max_entries(16384, 0);

/// The argument in slot `n` of a syscall tracepoint record (8 bytes each,
/// after the common fields and `__syscall_nr`).
fn sys_arg(ctx: &TracePointContext, n: usize) -> Result<u64, Dropped> {
    // SAFETY: syscall tracepoint records hold their arguments as 8-byte
    // slots from offset 16.
    unsafe { ctx.read_at::<u64>(16 + 8 * n) }.map_err(|_| Dropped::Read)
}

fn save(op: u32, dfd: u64, name: u64, old_dfd: u64, old_name: u64) -> Result<(), Dropped> {
    let call = NameCall {
        op,
        dfd: dfd as i32,
        name,
        old_dfd: old_dfd as i32,
        _pad: 0,
        old_name,
    };
    NAME_CALLS
        .insert(bpf_get_current_pid_tgid(), call, 0)
        .map_err(|_| Dropped::Scratch)
}

#[tracepoint]
pub fn sensor_sys_enter_unlinkat(ctx: TracePointContext) -> u32 {
    let r = (|| {
        if sys_arg(&ctx, 2)? & AT_REMOVEDIR != 0 {
            return Ok(());
        }
        save(file_op::DELETE, sys_arg(&ctx, 0)?, sys_arg(&ctx, 1)?, 0, 0)
    })();
    count_drop(&ctx, program_index::FILE_SYS_ENTER, r);
    0
}

#[tracepoint]
pub fn sensor_sys_enter_unlink(ctx: TracePointContext) -> u32 {
    let r = (|| save(file_op::DELETE, AT_FDCWD as u64, sys_arg(&ctx, 0)?, 0, 0))();
    count_drop(&ctx, program_index::FILE_SYS_ENTER, r);
    0
}

/// `renameat(olddfd, oldname, newdfd, newname)` and `renameat2` (same
/// first four).
#[tracepoint]
pub fn sensor_sys_enter_renameat(ctx: TracePointContext) -> u32 {
    let r = (|| {
        save(
            file_op::RENAME,
            sys_arg(&ctx, 2)?,
            sys_arg(&ctx, 3)?,
            sys_arg(&ctx, 0)?,
            sys_arg(&ctx, 1)?,
        )
    })();
    count_drop(&ctx, program_index::FILE_SYS_ENTER, r);
    0
}

#[tracepoint]
pub fn sensor_sys_enter_rename(ctx: TracePointContext) -> u32 {
    let r = (|| {
        let cwd = AT_FDCWD as u64;
        save(
            file_op::RENAME,
            cwd,
            sys_arg(&ctx, 1)?,
            cwd,
            sys_arg(&ctx, 0)?,
        )
    })();
    count_drop(&ctx, program_index::FILE_SYS_ENTER, r);
    0
}

/// Exit of unlink, unlinkat, rename, renameat, renameat2.
#[tracepoint]
pub fn sensor_sys_exit_names(ctx: TracePointContext) -> u32 {
    count_drop(&ctx, program_index::FILE_SYS_EXIT, names_exit(&ctx));
    0
}

/// Exit of open, openat, openat2, creat: the new fd's file.
#[tracepoint]
pub fn sensor_sys_exit_open(ctx: TracePointContext) -> u32 {
    let r = (|| {
        let ret = sys_arg(&ctx, 0)? as i64;
        if ret < 0 {
            return Ok(());
        }
        let file = fd_file(current_task(), ret as u32)?;
        if file.is_null() {
            return Ok(());
        }
        file_open(file)
    })();
    count_drop(&ctx, program_index::FILE_OPEN, r);
    0
}

/// The `struct file` behind `fd` of `task` (null when none).
pub(crate) fn fd_file(task: *const u8, fd: u32) -> Result<*const u8, Dropped> {
    let files = Task(task).files()?;
    let fdt = read_ptr(files, offset(|o| &o.files_fdt))?;
    let max_fds = read_u32(fdt, offset(|o| &o.fdtable_max_fds))?;
    if fd >= max_fds {
        return Ok(core::ptr::null());
    }
    let fds = read_ptr(fdt, offset(|o| &o.fdtable_fd))?;
    Ok(read_ptr(fds, fd as usize * core::mem::size_of::<usize>())?)
}

/// Reads a NUL-terminated name the process passed into `data[at..]`;
/// returns its length with the NUL, 0 when unreadable or cut.
fn read_name<const AT: usize>(rec: &mut FileRecord, src: u64) -> u32 {
    // SAFETY: AT + FILE_PATH_MAX is inside `rec.data`.
    let n = unsafe {
        bpf_probe_read_user_str(
            rec.data.as_mut_ptr().add(AT).cast(),
            FILE_PATH_MAX as u32,
            src as *const core::ffi::c_void,
        )
    };
    if n <= 0 || n as usize >= FILE_PATH_MAX {
        rec.info.flags |= FILE_NAME_INCOMPLETE;
        return 0;
    }
    n as u32
}

fn names_exit(ctx: &TracePointContext) -> Result<(), Dropped> {
    let key = bpf_get_current_pid_tgid();
    // SAFETY: the value is copied out before the entry is removed.
    let call = match unsafe { NAME_CALLS.get(key) } {
        Some(c) => *c,
        None => return Ok(()),
    };
    let _ = NAME_CALLS.remove(key);
    if sys_arg(ctx, 0)? != 0 {
        return Ok(()); // the call failed: nothing was deleted or renamed
    }
    let rec = scratch()?;
    rec.info.flags = 0;
    let name_len = read_name::<FILE_NAME_AT>(rec, call.name);
    let old_name_len = if call.op == file_op::RENAME {
        read_name::<FILE_OLD_NAME_AT>(rec, call.old_name)
    } else {
        0
    };
    let name_flags = rec.info.flags & FILE_NAME_INCOMPLETE;
    let task = current_task();
    let dir = if call.dfd == AT_FDCWD {
        Task(task).fs().and_then(|fs| {
            Ok((
                read_ptr(fs, offset(|o| &o.fs_pwd_mnt))?,
                read_ptr(fs, offset(|o| &o.fs_pwd_dentry))?,
            ))
        })
    } else {
        match fd_file(task, call.dfd as u32) {
            Ok(file) if !file.is_null() => read_ptr(file, offset(|o| &o.file_path_mnt))
                .and_then(|mnt| Ok((mnt, read_ptr(file, offset(|o| &o.file_path_dentry))?))),
            _ => Err(ReadError),
        }
    };
    if let Ok((mnt, dentry)) = dir {
        let old_len = if call.old_dfd == call.dfd {
            old_name_len
        } else {
            0 // the old name's directory is not walked: not judged
        };
        let lens = name_len as u64 | (old_len as u64) << 32;
        if file_filter::gate_drops_names(call.op, rec, lens, mnt, dentry) {
            return Ok(());
        }
    }
    fill_actor(rec, call.op);
    rec.info.flags = FILE_NAMES | name_flags;
    rec.info.name_len = name_len;
    if call.op == file_op::RENAME {
        rec.info.old_name_len = old_name_len;
        if call.old_dfd != call.dfd {
            // Only the new name's directory is walked; an old name
            // relative to another directory is not known whole.
            rec.info.flags |= FILE_OLD_PATH_INCOMPLETE;
        }
    }
    match dir {
        Ok((mnt, dentry)) => walk_new(rec, mnt, dentry),
        Err(_) => rec.info.flags |= FILE_PATH_INCOMPLETE,
    }
    send(rec)
}
