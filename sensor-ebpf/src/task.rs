//! Readers of the current or a given `task_struct`: identity (tgid, pid,
//! start time, comm, pidfs inode), session and process group, the tty
//! facts that decide `interactive`, namespaces. Every offset comes from
//! `OFFSETS` (resolved by the agent from BTF).

use crate::kernel_read::{self, offset, read_i32, read_ptr, read_u32, read_u64, ReadError};
use crate::OFFSETS;
use aya_ebpf::helpers::bpf_get_current_task;
use sensor_common::{
    TaskInfo, TtyInfo, COMM_LEN, TTY_FD0_CHR, TTY_FD2_CHR, TTY_HAS_CTTY, TTY_READ_ERROR,
};

pub(crate) const S_IFMT: u32 = 0o170000;
pub(crate) const S_IFCHR: u32 = 0o020000;

/// A `struct task_struct *`. Only ever read through
/// `bpf_probe_read_kernel` (a null or stale pointer fails the read, it does
/// not fault), each field at the offset the agent resolved from BTF.
#[derive(Clone, Copy)]
pub(crate) struct Task(pub(crate) *const u8);

impl Task {
    #[inline(always)]
    pub(crate) fn tgid(self) -> Result<u32, ReadError> {
        read_u32(self.0, offset(|o| &o.task_tgid))
    }

    #[inline(always)]
    pub(crate) fn pid(self) -> Result<u32, ReadError> {
        read_u32(self.0, offset(|o| &o.task_pid))
    }

    #[inline(always)]
    pub(crate) fn start_boottime(self) -> Result<u64, ReadError> {
        read_u64(self.0, offset(|o| &o.task_start_boottime))
    }

    #[inline(always)]
    pub(crate) fn comm(self) -> Result<[u8; COMM_LEN], ReadError> {
        kernel_read::read_bytes::<COMM_LEN>(self.0, offset(|o| &o.task_comm))
    }

    #[inline(always)]
    pub(crate) fn group_leader(self) -> Result<*const u8, ReadError> {
        read_ptr(self.0, offset(|o| &o.task_group_leader))
    }

    /// `task->signal` (`struct signal_struct *`).
    #[inline(always)]
    pub(crate) fn signal(self) -> Result<*const u8, ReadError> {
        read_ptr(self.0, offset(|o| &o.task_signal))
    }

    /// `task->files` (`struct files_struct *`).
    #[inline(always)]
    pub(crate) fn files(self) -> Result<*const u8, ReadError> {
        read_ptr(self.0, offset(|o| &o.task_files))
    }

    /// `task->nsproxy` (`struct nsproxy *`).
    #[inline(always)]
    pub(crate) fn nsproxy(self) -> Result<*const u8, ReadError> {
        read_ptr(self.0, offset(|o| &o.task_nsproxy))
    }

    /// `task->thread_pid` (`struct pid *`).
    #[inline(always)]
    pub(crate) fn thread_pid(self) -> Result<*const u8, ReadError> {
        read_ptr(self.0, offset(|o| &o.task_thread_pid))
    }

    #[inline(always)]
    pub(crate) fn real_parent(self) -> Result<*const u8, ReadError> {
        read_ptr(self.0, offset(|o| &o.task_real_parent))
    }

    /// `task->cred` (`struct cred *`).
    #[inline(always)]
    pub(crate) fn cred(self) -> Result<*const u8, ReadError> {
        read_ptr(self.0, offset(|o| &o.task_cred))
    }

    /// `task->mm` (`struct mm_struct *`, null for kernel threads).
    #[inline(always)]
    pub(crate) fn mm(self) -> Result<*const u8, ReadError> {
        read_ptr(self.0, offset(|o| &o.task_mm))
    }

    /// `task->fs` (`struct fs_struct *`).
    #[inline(always)]
    pub(crate) fn fs(self) -> Result<*const u8, ReadError> {
        read_ptr(self.0, offset(|o| &o.task_fs))
    }

    /// `task->cgroups` (`struct css_set *`).
    #[inline(always)]
    pub(crate) fn cgroups(self) -> Result<*const u8, ReadError> {
        read_ptr(self.0, offset(|o| &o.task_cgroups))
    }

    #[inline(always)]
    pub(crate) fn exit_code(self) -> Result<u32, ReadError> {
        read_u32(self.0, offset(|o| &o.task_exit_code))
    }
}

pub(crate) fn current_task() -> *const u8 {
    // SAFETY: helper call without arguments; the pointer is only ever read
    // through bpf_probe_read_kernel.
    unsafe { bpf_get_current_task() as *const u8 }
}

/// Fills `info` from the thread-group leader of `task` (a parent may be a
/// worker thread: the process's identity is its leader's).
pub(crate) fn fill_leader(info: &mut TaskInfo, task: *const u8) {
    let leader = match Task(task).group_leader() {
        Ok(leader) if !leader.is_null() => leader,
        _ => task,
    };
    fill_task(info, leader);
}

pub(crate) fn fill_task(info: &mut TaskInfo, task: *const u8) {
    let t = Task(task);
    info.tgid = t.tgid().unwrap_or(0);
    info.pid = t.pid().unwrap_or(0);
    info.start_boottime_ns = t.start_boottime().unwrap_or(0);
    info.comm = t.comm().unwrap_or([0; COMM_LEN]);
    info.tty = read_tty(task);
    info.pid_ino = pid_ino(task);
    fill_session(info, task);
}

/// `enum pid_type` indexes of `signal_struct.pids` (stable since 4.19).
pub(crate) const PIDTYPE_PGID: usize = 2;
pub(crate) const PIDTYPE_SID: usize = 3;

/// Session and process group ids, host view, and the task's pid namespace.
pub(crate) fn fill_session(info: &mut TaskInfo, task: *const u8) {
    info.sid = session_pid(task, PIDTYPE_SID).unwrap_or(0);
    info.pgid = session_pid(task, PIDTYPE_PGID).unwrap_or(0);
    info.pid_ns = pid_ns(task).unwrap_or(0);
}

/// `task->signal->pids[kind]->numbers[0].nr`: the number in the initial
/// pid namespace (level 0), the one the agent sees in /proc.
pub(crate) fn session_pid(task: *const u8, kind: usize) -> Result<u32, ReadError> {
    let signal = Task(task).signal()?;
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
    Task(task)
        .thread_pid()
        .and_then(|pid| read_u64(pid, offset(|o| &o.pid_ino)))
        .unwrap_or(0)
}

/// The controlling tty (`task->signal->tty`) as a dev_t, and the character
/// devices behind fd 0 and fd 2.
pub(crate) fn read_tty(task: *const u8) -> TtyInfo {
    let mut tty = TtyInfo::default();
    if read_ctty(task, &mut tty).is_err() {
        tty.flags |= TTY_READ_ERROR;
    }
    if read_std_fds(task, &mut tty).is_err() {
        tty.flags |= TTY_READ_ERROR;
    }
    tty
}

pub(crate) fn read_ctty(task: *const u8, out: &mut TtyInfo) -> Result<(), ReadError> {
    let signal = Task(task).signal()?;
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

pub(crate) fn read_std_fds(task: *const u8, out: &mut TtyInfo) -> Result<(), ReadError> {
    let files = Task(task).files()?;
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

pub(crate) fn char_dev_of_fd(fds: *const u8, fd: usize) -> Result<Option<u32>, ReadError> {
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

pub(crate) fn mount_ns(task: *const u8) -> Result<u32, ReadError> {
    let nsproxy = Task(task).nsproxy()?;
    let mnt_ns = read_ptr(nsproxy, offset(|o| &o.nsproxy_mnt_ns))?;
    read_u32(mnt_ns, offset(|o| &o.mnt_ns_inum))
}

/// The task's own pid namespace: `thread_pid->numbers[level].ns`.
pub(crate) fn pid_ns(task: *const u8) -> Result<u32, ReadError> {
    let pid = Task(task).thread_pid()?;
    let level = read_u32(pid, offset(|o| &o.pid_level))? as usize & 0x1f;
    let upid = offset(|o| &o.pid_numbers) + level * offset(|o| &o.upid_size);
    let ns = read_ptr(pid, upid + offset(|o| &o.upid_ns))?;
    read_u32(ns, offset(|o| &o.pid_ns_inum))
}
