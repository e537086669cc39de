//! Records shared by the kernel programs (`sensor-ebpf`) and the userspace
//! agent (`sensor`). Everything here is `#[repr(C)]` plain data with explicit
//! padding so both sides agree on the layout byte for byte. Besides the
//! records, only the file prefilter's key forms and matching steps
//! ([`prefilter`]), which both sides must compute identically.
//!
//! The userspace-only `aya::Pod` impls sit behind the `user` feature so the
//! kernel build stays `no_std` with no aya dependency.
#![no_std]

/// Bytes of argv sent inside the exec record itself (the start of the blob
/// between `mm->arg_start` and `mm->arg_end`). The rest follows in
/// [`ArgsChunkRecord`]s sent just before the exec record, so padding cannot
/// push a payload out of sight.
pub const ARGS_MAX: usize = 32 * 1024;
/// Bytes of argv per continuation record.
pub const ARGS_CHUNK_MAX: usize = 32 * 1024;
/// The kernel's own bound on argv plus envp (`bprm_stack_limits`: at most
/// 3/4 of `_STK_LIM`, 6 MiB, whatever the stack rlimit): argv can never be
/// longer, so capturing this much captures all of it.
pub const ARGS_TOTAL_MAX: usize = 6 * 1024 * 1024;
/// Continuation records per exec: enough for [`ARGS_TOTAL_MAX`].
pub const ARGS_CHUNKS_MAX: usize = (ARGS_TOTAL_MAX - ARGS_MAX).div_ceil(ARGS_CHUNK_MAX);
const _: () = assert!(ARGS_MAX + ARGS_CHUNKS_MAX * ARGS_CHUNK_MAX >= ARGS_TOTAL_MAX);
/// Bytes of the execve filename captured (PATH_MAX).
pub const FILENAME_MAX: usize = 4096;
/// Bytes of working-directory path components captured per exec.
pub const CWD_MAX: usize = 4096;
/// Bytes of executable path components captured per exec (the same walk as
/// the working directory, from `mm->exe_file`).
pub const EXE_MAX: usize = 4096;
/// Longest single path component read (NAME_MAX + NUL).
pub const CWD_NAME_MAX: usize = 256;

/// The kernel's TASK_COMM_LEN.
pub const COMM_LEN: usize = 16;

#[macro_use]
mod layout;
pub mod net;
pub mod prefilter;
pub mod registry;

pub use layout::Layout;
pub use registry::{kind_of, lost_index, program_index, record_kind, KindInfo, KINDS};

/// Why a program dropped a record before it reached the ring buffer (a
/// full ring buffer is counted apart, in `LOST`). Every path that drops a
/// record counts it in `DROPS[program * COUNT + reason]`: nothing is
/// dropped silently.
pub mod drop_reason {
    /// A kernel read the record cannot do without failed.
    pub const READ: u32 = 0;
    /// No scratch slot for this CPU (a CPU beyond the map's size).
    pub const SCRATCH: u32 = 1;
    pub const COUNT: u32 = 2;
    /// Names for metrics and the summary, by index.
    pub const NAMES: [&str; COUNT as usize] = ["read_failed", "no_scratch"];
}

/// Number of `DROPS` counters.
pub const DROPS_LEN: u32 = program_index::COUNT * drop_reason::COUNT;

/// `ExecRecord::flags` bits.
pub const EXEC_ARGS_TRUNCATED: u32 = 1 << 0;
pub const EXEC_FILENAME_TRUNCATED: u32 = 1 << 1;
/// argv could not be read from the new image (should not happen: the pages
/// were just written by execve); `args_len` is 0.
pub const EXEC_ARGS_READ_FAILED: u32 = 1 << 2;
/// argc could not be read from the new stack; userspace counts the NULs.
pub const EXEC_ARGC_UNKNOWN: u32 = 1 << 3;
/// The parent task could not be read (`parent` is zeroed).
pub const EXEC_PARENT_UNKNOWN: u32 = 1 << 4;
/// The working directory could not be read, or was deeper or longer than
/// the capture: `cwd_len` bytes are not the whole path.
pub const EXEC_CWD_INCOMPLETE: u32 = 1 << 5;
/// `exe_len` bytes hold the executed file's path (`mm->exe_file`, which is
/// `binprm->file` at exec) as the process sees it, innermost component
/// first; set on every exec whose walk was attempted.
pub const EXEC_EXE_PRESENT: u32 = 1 << 6;
/// The executable's path could not be read whole: `exe_len` bytes are not
/// the whole path.
pub const EXEC_EXE_INCOMPLETE: u32 = 1 << 7;
/// With [`EXEC_EXE_INCOMPLETE`]: `exe_len` bytes are the executed file's
/// own name alone (its dentry's, NUL-terminated), read when its path could
/// not be: what names the process, exactly, whatever its depth.
pub const EXEC_EXE_LEAF_ONLY: u32 = 1 << 9;
/// A continuation record of argv could not be sent (ring buffer full) or
/// read: the argv userspace reassembles is incomplete.
pub const EXEC_ARGS_CHUNK_LOST: u32 = 1 << 8;

/// `TtyInfo::flags` bits.
pub const TTY_HAS_CTTY: u32 = 1 << 0;
pub const TTY_FD0_CHR: u32 = 1 << 1;
pub const TTY_FD2_CHR: u32 = 1 << 2;
/// Some pointer on the way could not be read: the values are incomplete.
pub const TTY_READ_ERROR: u32 = 1 << 3;

record! {
    /// Common first bytes of every record.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct RecordHeader {
        /// One of [`record_kind`].
        pub kind: u32,
        /// CPU the record was produced on (helps order records across CPUs).
        pub cpu: u32,
        /// `bpf_ktime_get_boot_ns()`: nanoseconds since boot, including suspend.
        pub ktime_ns: u64,
    }
}

record! {
    /// What decides whether a task is interactive (ECS `process.interactive`):
    /// its controlling tty and the character devices behind fd 0 and fd 2, all
    /// as kernel `dev_t` (`major << 20 | minor`).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct TtyInfo {
        /// Controlling tty device (`task->signal->tty`), valid with [`TTY_HAS_CTTY`].
        pub ctty_dev: u32,
        /// `i_rdev` of fd 0's inode, valid with [`TTY_FD0_CHR`].
        pub fd0_dev: u32,
        /// `i_rdev` of fd 2's inode, valid with [`TTY_FD2_CHR`].
        pub fd2_dev: u32,
        pub flags: u32,
    }
}

impl TtyInfo {
    /// The ECS definition: the controlling tty's device is the character
    /// device behind both stdin and stderr.
    pub fn is_interactive(&self) -> bool {
        let all = TTY_HAS_CTTY | TTY_FD0_CHR | TTY_FD2_CHR;
        self.flags & all == all && self.fd0_dev == self.ctty_dev && self.fd2_dev == self.ctty_dev
    }
}

record! {
    /// Identity of one task as the kernel saw it.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct TaskInfo {
        /// Thread-group id: the pid users see.
        pub tgid: u32,
        /// Thread id.
        pub pid: u32,
        /// `task->start_boottime` in ns: with the pid, the process's identity.
        pub start_boottime_ns: u64,
        pub comm: [u8; COMM_LEN],
        pub tty: TtyInfo,
        /// The pidfs inode of the process's `struct pid` (`pid->ino`, Linux
        /// 6.9+): unique per process instance for the whole boot, unlike
        /// pid + start time in clock ticks. 0 where the kernel has none.
        pub pid_ino: u64,
        /// Session id (`signal->pids[PIDTYPE_SID]`) as the host sees it (the
        /// pid number in the initial pid namespace); 0 if unreadable.
        pub sid: u32,
        /// Process group id (`signal->pids[PIDTYPE_PGID]`), host view; 0 if
        /// unreadable.
        pub pgid: u32,
        /// Inode number of the task's own pid namespace (0 if unreadable): a
        /// process whose parent is in another one entered a container.
        pub pid_ns: u32,
        pub _pad: u32,
    }
}

record! {
    /// The fixed-size part of an exec record: everything but the strings.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct ExecInfo {
        pub header: RecordHeader,
        /// The process after exec.
        pub task: TaskInfo,
        /// `task->real_parent` (its thread-group leader) at the moment of exec.
        pub parent: TaskInfo,
        /// Pid of the thread that called execve (differs from tgid when a
        /// non-leader thread exec'd).
        pub old_pid: u32,
        pub uid: u32,
        pub gid: u32,
        pub euid: u32,
        pub egid: u32,
        /// Inode number of the task's pid namespace (0 if unavailable).
        pub pid_ns: u32,
        pub cgroup_id: u64,
        /// On a hybrid host, the task's cgroup in the chosen v1 controller's
        /// hierarchy (0 otherwise): the container's cgroup when the runtime
        /// made it only in the v1 controllers.
        pub cgroup_v1_id: u64,
        /// Inode number of the task's mount namespace (0 if unavailable).
        pub mnt_ns: u32,
        /// Real argc, read from the new image's stack.
        pub argc: u32,
        /// `arg_end - arg_start`: total argv bytes, captured or not.
        pub args_total_len: u32,
        /// argv bytes captured after the filename in `data`.
        pub args_len: u32,
        /// Filename bytes at the start of `data` (without the NUL).
        pub filename_len: u32,
        /// [`EXEC_ARGS_TRUNCATED`] and friends.
        pub flags: u32,
        /// Working-directory bytes after argv in `data`: the path's components
        /// from the innermost out, each NUL-terminated, up to the process's
        /// root (so a container process's cwd is as it sees it).
        pub cwd_len: u32,
        /// Executable path bytes after the cwd in `data`, in the same
        /// innermost-first form; valid with [`EXEC_EXE_PRESENT`].
        pub exe_len: u32,
        /// [`ArgsChunkRecord`]s argv beyond the first [`ARGS_MAX`] bytes needs,
        /// sent before this record; fewer arrive when some could not be sent
        /// ([`EXEC_ARGS_CHUNK_LOST`], counted as lost).
        pub args_chunks: u32,
        pub _pad: u32,
    }
}

record! {
    /// One execve, as seen by the `sched_process_exec` tracepoint. Sent with a
    /// variable length: [`ExecInfo`], then `filename_len` bytes of filename,
    /// `args_len` bytes of argv (NUL separated), `cwd_len` bytes of cwd and
    /// `exe_len` bytes of executable path.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct ExecRecord {
        pub info: ExecInfo,
        pub data: [u8; FILENAME_MAX + ARGS_MAX + CWD_MAX + EXE_MAX + CWD_NAME_MAX],
    }
}

record! {
    /// The fixed part of an [`ArgsChunkRecord`].
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct ArgsChunkInfo {
        pub header: RecordHeader,
        /// The exec'ing process.
        pub tgid: u32,
        /// 0 for the bytes right after the exec record's inline argv.
        pub index: u32,
        /// Bytes of argv in `data`.
        pub len: u32,
        pub _pad: u32,
    }
}

record! {
    /// Argv beyond the exec record's inline [`ARGS_MAX`] bytes, in order, sent
    /// just before the exec record it belongs to (records from one program run
    /// reach the ring buffer in order). Variable length: the fixed part, then
    /// `len` bytes.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct ArgsChunkRecord {
        pub info: ArgsChunkInfo,
        pub data: [u8; ARGS_CHUNK_MAX],
    }
}

impl ArgsChunkRecord {
    pub const FIXED_LEN: usize = core::mem::size_of::<ArgsChunkInfo>();
}

impl ExecRecord {
    /// Size of the fixed part: a record on the ring buffer is this many bytes
    /// plus `filename_len + args_len`.
    pub const FIXED_LEN: usize = core::mem::size_of::<ExecInfo>();
}

record! {
    /// A new process (not a thread): from the `sched_process_fork` raw tracepoint.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct ForkRecord {
        pub header: RecordHeader,
        pub child: TaskInfo,
        /// Tgid of the child's `real_parent`.
        pub parent_tgid: u32,
        pub _pad: u32,
        pub parent_start_boottime_ns: u64,
        pub cgroup_id: u64,
        /// As [`ExecInfo::cgroup_v1_id`], for the child.
        pub cgroup_v1_id: u64,
    }
}

record! {
    /// The last thread of a process ended: from `sched_process_exit`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct ExitRecord {
        pub header: RecordHeader,
        pub tgid: u32,
        /// `task->exit_code` (wait status encoding).
        pub exit_code: u32,
        pub start_boottime_ns: u64,
        pub comm: [u8; COMM_LEN],
    }
}

/// What a [`FileRecord`] reports (`FileInfo::op`).
pub mod file_op {
    /// An existing regular file opened with write intent (`FMODE_WRITE`).
    pub const OPEN_WRITE: u32 = 1;
    /// A regular file created by this open (`FMODE_CREATED`).
    pub const CREATE: u32 = 2;
    /// A name unlinked (`security_path_unlink`).
    pub const DELETE: u32 = 3;
    /// A rename (`security_path_rename`): `path` is the new name,
    /// `old_path` the old one.
    pub const RENAME: u32 = 4;
    /// Each operation's name, by value (0 unused): its `event.action`,
    /// and the `op` label of the prefilter's verdict counts.
    pub const NAMES: [&str; RENAME as usize + 1] = ["", "open", "creation", "deletion", "rename"];
}

/// `FileInfo::flags` bits.
/// The path could not be walked whole (unreadable, deeper than the walk or
/// longer than [`FILE_PATH_MAX`]): `path_len` is 0.
pub const FILE_PATH_INCOMPLETE: u32 = 1 << 0;
/// The old path of a rename could not be walked whole: `old_path_len` is 0.
pub const FILE_OLD_PATH_INCOMPLETE: u32 = 1 << 1;
/// From the syscall tracepoints (no LSM, no fentry): `path_len` bytes at
/// 0 are the walked directory the names are relative to (the dirfd's or
/// the cwd), `name_len` bytes at [`FILE_NAME_AT`] the name the process
/// passed (NUL-terminated), and for a rename `old_name_len` bytes at
/// [`FILE_OLD_NAME_AT`] the old name, relative to the same directory.
pub const FILE_NAMES: u32 = 1 << 2;
/// A name the process passed could not be read whole.
pub const FILE_NAME_INCOMPLETE: u32 = 1 << 3;

/// Bytes of one file path's components captured (PATH_MAX).
pub const FILE_PATH_MAX: usize = 4096;
/// Where a rename's old path starts in `FileRecord::data`: after the new
/// path's room (the walk may write one component past its bound).
pub const FILE_OLD_PATH_AT: usize = FILE_PATH_MAX + CWD_NAME_MAX;
/// Where a syscall's name starts in `FileRecord::data` ([`FILE_NAMES`]).
pub const FILE_NAME_AT: usize = FILE_OLD_PATH_AT;
/// Where a syscall rename's old name starts ([`FILE_NAMES`]).
pub const FILE_OLD_NAME_AT: usize = FILE_NAME_AT + FILE_PATH_MAX;

/// A file record as sent (`FileWire`): packed. The path (`path_len`
/// bytes) at the start of the data; right after it (at `path_len`) a
/// rename's old path (`old_path_len`) or, with [`FILE_NAMES`], the name
/// (`name_len`), and after the name (at `path_len + name_len`) a rename's
/// old name (`old_name_len`). Only the bytes used cross the ring.
pub const FILE_WIRE_PACKED: u32 = 1;
/// Bytes of `FileWire::data`: three strings of under [`FILE_PATH_MAX`].
pub const FILE_WIRE_DATA: usize = 3 * FILE_PATH_MAX;

record! {
    /// The fixed part of a [`FileRecord`].
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct FileInfo {
        pub header: RecordHeader,
        /// The acting process and thread.
        pub tgid: u32,
        pub pid: u32,
        /// The process's start (its thread-group leader's), to tell instances
        /// of one pid apart.
        pub start_boottime_ns: u64,
        pub cgroup_id: u64,
        pub uid: u32,
        pub gid: u32,
        /// One of [`file_op`].
        pub op: u32,
        /// [`FILE_PATH_INCOMPLETE`] and friends.
        pub flags: u32,
        /// Path bytes at the start of `data`: components innermost first, each
        /// NUL-terminated, up to the acting process's root (as it sees it).
        pub path_len: u32,
        /// Old-path bytes at [`FILE_OLD_PATH_AT`] (renames only), same form.
        pub old_path_len: u32,
        /// With [`FILE_NAMES`]: name bytes at [`FILE_NAME_AT`] (with the NUL).
        pub name_len: u32,
        /// With [`FILE_NAMES`]: old-name bytes at [`FILE_OLD_NAME_AT`].
        pub old_name_len: u32,
        pub comm: [u8; COMM_LEN],
    }
}

record! {
    /// A file record packed for the ring ([`FILE_WIRE_PACKED`]): the fixed
    /// part and the used bytes of each string, one after the other.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct FileWire {
        pub info: FileInfo,
        pub data: [u8; FILE_WIRE_DATA],
    }
}

record! {
    /// One file operation from the LSM hooks (or fentry on the same
    /// `security_*` functions). Variable length: the fixed part, then the path
    /// and, for a rename, the old path at [`FILE_OLD_PATH_AT`].
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct FileRecord {
        pub info: FileInfo,
        pub data: [u8; FILE_OLD_NAME_AT + FILE_PATH_MAX + CWD_NAME_MAX],
        /// Which hook call the rename parts in this scratch slot belong to
        /// (the two rename programs run back to back, in either order); never
        /// sent.
        pub rename_key: u64,
        /// Bit 0: the new path is in, bit 1: the old path is in.
        pub rename_parts: u32,
        pub _pad: u32,
    }
}

impl FileRecord {
    pub const FIXED_LEN: usize = core::mem::size_of::<FileInfo>();
}

impl FileWire {
    pub const FIXED_LEN: usize = core::mem::size_of::<FileInfo>();
}

/// Longest cgroup path captured at creation (longer ones are flagged and
/// left to the resolver's directory walk).
pub const CGROUP_PATH_MAX: usize = 1024;

record! {
    /// A cgroup was created: from the `cgroup/cgroup_mkdir` tracepoint. Lets
    /// userspace name the cgroup of a container that has already been removed
    /// by the time its events are read (`docker run --rm`, a lagging sensor).
    /// Sent with a variable length: the fixed part, then `path_len` bytes.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct CgroupRecord {
        pub header: RecordHeader,
        /// The cgroup id (kernfs node id), as `bpf_get_current_cgroup_id()` gives.
        pub id: u64,
        /// Hierarchy id: 0 is the cgroup2 (default) hierarchy.
        pub root: u32,
        /// Path bytes in `path`; `CGROUP_PATH_MAX - 1` or more means cut.
        pub path_len: u32,
        pub path: [u8; CGROUP_PATH_MAX],
    }
}

impl CgroupRecord {
    pub const FIXED_LEN: usize = core::mem::offset_of!(CgroupRecord, path);
}

record! {
    /// Layout facts the programs cannot know at compile time, resolved by
    /// userspace from the running kernel's BTF (`/sys/kernel/btf/vmlinux`) and
    /// tracefs formats, and set as a global at load time: one binary runs on
    /// every kernel. Every offset is in bytes.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct KernelOffsets {
        // tracepoint record fields (from tracefs `format` files)
        pub tp_exec_filename_loc: u32,
        pub tp_exec_old_pid: u32,
        pub tp_exit_group_dead: u32,
        /// 1 when the exit tracepoint has a `group_dead` field.
        pub tp_exit_has_group_dead: u32,
        pub tp_cgroup_root: u32,
        pub tp_cgroup_id: u32,
        pub tp_cgroup_path_loc: u32,
        /// 1 when `struct pid` has `ino` (pidfs, Linux 6.9+).
        pub has_pid_ino: u32,
        pub pid_ino: u32,
        // working directory: task->fs, fs_struct.{root,pwd}.{mnt,dentry},
        // dentry.{d_parent,d_name.name}, vfsmount.mnt_root, and struct mount
        // (which embeds the vfsmount at `mount_mnt`).
        pub task_fs: u32,
        pub fs_root_mnt: u32,
        pub fs_root_dentry: u32,
        pub fs_pwd_mnt: u32,
        pub fs_pwd_dentry: u32,
        pub dentry_parent: u32,
        pub dentry_name: u32,
        pub vfsmount_root: u32,
        pub mount_mnt: u32,
        pub mount_parent: u32,
        pub mount_mountpoint: u32,

        // struct task_struct
        pub task_tgid: u32,
        pub task_pid: u32,
        pub task_real_parent: u32,
        pub task_start_boottime: u32,
        pub task_comm: u32,
        pub task_signal: u32,
        pub task_files: u32,
        pub task_mm: u32,
        pub task_cred: u32,
        pub task_nsproxy: u32,
        pub task_thread_pid: u32,
        pub task_exit_code: u32,
        pub task_group_leader: u32,
        // struct signal_struct / tty_struct / tty_driver
        pub signal_tty: u32,
        pub tty_index: u32,
        pub tty_driver: u32,
        pub tty_driver_major: u32,
        pub tty_driver_minor_start: u32,
        // struct files_struct / fdtable / file / inode
        pub files_fdt: u32,
        pub fdtable_max_fds: u32,
        pub fdtable_fd: u32,
        pub file_inode: u32,
        pub inode_mode: u32,
        pub inode_rdev: u32,
        // struct mm_struct
        pub mm_arg_start: u32,
        pub mm_arg_end: u32,
        pub mm_start_stack: u32,
        /// `mm->exe_file`, and `file->f_path.{mnt,dentry}`.
        pub mm_exe_file: u32,
        pub file_path_mnt: u32,
        pub file_path_dentry: u32,
        /// Keeps the struct a multiple of 8 bytes.
        pub _pad: u32,
        // struct cred
        pub cred_euid: u32,
        pub cred_egid: u32,
        // namespaces: nsproxy.mnt_ns, mnt_namespace.ns + ns_common.inum,
        // pid.level, pid.numbers, upid.ns, sizeof(upid), pid_namespace.ns + inum
        pub nsproxy_mnt_ns: u32,
        pub mnt_ns_inum: u32,
        pub pid_level: u32,
        pub pid_numbers: u32,
        pub upid_ns: u32,
        pub upid_size: u32,
        pub pid_ns_inum: u32,
        // cgroup v1 identity (sensor/src/cgroup_v1.rs): with `cgroup_v1` 1 the
        // programs report task->cgroups->subsys[cgroup_v1_ssid]->cgroup->kn->id
        // instead of the default hierarchy's cgroup id.
        pub cgroup_v1: u32,
        pub cgroup_v1_ssid: u32,
        pub task_cgroups: u32,
        pub css_set_subsys: u32,
        pub css_cgroup: u32,
        pub cgroup_kn: u32,
        pub kernfs_node_id: u32,
        /// `css_set.dfl_cgrp`: a task's cgroup in the default (v2) hierarchy,
        /// for the fork record's child (not the current task).
        pub css_set_dfl_cgrp: u32,
        /// 1 on a hybrid host: also report the v1 walk's id (`cgroup_v1_id`),
        /// with `cgroup_v1_ssid`, while `cgroup_id` stays cgroup2's.
        pub cgroup_v1_secondary: u32,
        // file events: struct path.{mnt,dentry}, file.f_mode
        pub path_mnt: u32,
        pub path_dentry: u32,
        pub file_f_mode: u32,
        // sessions: signal_struct.pids (array of struct pid *, by enum
        // pid_type), upid.nr
        pub signal_pids: u32,
        pub upid_nr: u32,
        // network events: file.private_data → socket.sk → sock_common, and
        // possible_net_t → net.ns.inum
        pub file_private_data: u32,
        pub socket_sk: u32,
        pub sk_family: u32,
        pub sk_protocol: u32,
        pub sk_num: u32,
        pub sk_dport: u32,
        pub sk_daddr: u32,
        pub sk_rcv_saddr: u32,
        pub sk_v6_daddr: u32,
        pub sk_v6_rcv_saddr: u32,
        pub sk_net: u32,
        pub net_ns_inum: u32,
    }
}

/// One number for the layout of every record and of [`KernelOffsets`]:
/// every field of every record (name, offset, type; generated by
/// `record!`), each kind's tag and records ([`registry`]), the counter
/// sizes and the limits. Compiled into the kernel object
/// (`SENSOR_LAYOUT`) and into the agent, and compared before loading: an
/// object built from another version of this crate is refused with a clear
/// error instead of being decoded into garbage.
pub const LAYOUT_HASH: u64 = layout::of_fields(&[
    registry::KINDS_LAYOUT,
    <KernelOffsets as Layout>::HASH,
    file_op::OPEN_WRITE as u64,
    file_op::CREATE as u64,
    file_op::DELETE as u64,
    file_op::RENAME as u64,
    FILE_PATH_MAX as u64,
    FILE_OLD_PATH_AT as u64,
    FILE_NAME_AT as u64,
    FILE_OLD_NAME_AT as u64,
    FILE_NAMES as u64,
    FILE_WIRE_PACKED as u64,
    FILE_WIRE_DATA as u64,
    lost_index::COUNT as u64,
    DROPS_LEN as u64,
    ARGS_MAX as u64,
    ARGS_CHUNK_MAX as u64,
    ARGS_CHUNKS_MAX as u64,
    FILENAME_MAX as u64,
    CWD_MAX as u64,
    EXE_MAX as u64,
    CGROUP_PATH_MAX as u64,
    prefilter::KEY_DATA as u64,
    prefilter::OPS as u64,
    prefilter::COUNTS_LEN as u64,
    prefilter::MAX_ENTRIES as u64,
    prefilter::FILTER_ON as u64,
    net::net_op::ATTEMPTED as u64,
    net::net_op::ACCEPTED as u64,
    net::net_op::CLOSED as u64,
    net::NET_SOCKS_MAX as u64,
    <net::NetOwner as Layout>::HASH,
]);

#[cfg(feature = "user")]
mod user {
    use super::*;
    // SAFETY: all are #[repr(C)] plain integers/arrays with explicit padding,
    // valid for any bit pattern.
    unsafe impl aya::Pod for KernelOffsets {}
    unsafe impl aya::Pod for RecordHeader {}
    unsafe impl aya::Pod for ExecInfo {}
    unsafe impl aya::Pod for ArgsChunkInfo {}
    unsafe impl aya::Pod for ForkRecord {}
    unsafe impl aya::Pod for ExitRecord {}
    unsafe impl aya::Pod for FileInfo {}
    unsafe impl aya::Pod for net::NetRecord {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interactive_needs_ctty_on_fd0_and_fd2() {
        let pts3 = (136 << 20) | 3;
        let all = TTY_HAS_CTTY | TTY_FD0_CHR | TTY_FD2_CHR;
        let on_tty = TtyInfo {
            ctty_dev: pts3,
            fd0_dev: pts3,
            fd2_dev: pts3,
            flags: all,
        };
        assert!(on_tty.is_interactive());
        assert!(!TtyInfo {
            fd0_dev: (1 << 20) | 3,
            ..on_tty
        }
        .is_interactive());
        assert!(!TtyInfo {
            fd2_dev: (1 << 20) | 3,
            ..on_tty
        }
        .is_interactive());
        assert!(!TtyInfo {
            flags: TTY_FD0_CHR | TTY_FD2_CHR,
            ..on_tty
        }
        .is_interactive());
        // /dev/pts/0 and "no tty" both have index 0: the flags tell them apart.
        let pts0 = 136 << 20;
        let detached = TtyInfo {
            ctty_dev: 0,
            fd0_dev: pts0,
            fd2_dev: pts0,
            flags: TTY_FD0_CHR | TTY_FD2_CHR,
        };
        assert!(!detached.is_interactive());
    }

    #[test]
    fn layout_is_stable() {
        assert_eq!(core::mem::size_of::<RecordHeader>(), 16);
        assert_eq!(core::mem::size_of::<TaskInfo>(), 72);
        assert_eq!(ExecRecord::FIXED_LEN % 8, 0);
        assert_eq!(
            core::mem::offset_of!(ExecRecord, data),
            ExecRecord::FIXED_LEN
        );
        assert_eq!(core::mem::size_of::<KernelOffsets>() % 8, 0);
        assert_eq!(ArgsChunkRecord::FIXED_LEN % 8, 0);
        assert_eq!(FileRecord::FIXED_LEN % 8, 0);
        assert_eq!(
            core::mem::offset_of!(FileRecord, data),
            FileRecord::FIXED_LEN
        );
    }
}
