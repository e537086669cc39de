//! The sensor's kernel side: programs that feed one ring buffer, by family.
//!
//! - [`process`]: `sched/sched_process_exec` (with two tail calls, for argv
//!   beyond the record and the executable's path), the `sched_process_fork`
//!   raw tracepoint, `sched/sched_process_exit` and `cgroup/cgroup_mkdir`.
//! - [`file`]: opens for writing, creations, deletions and renames, from
//!   BPF LSM hooks, fentry on the same `security_*` functions or the
//!   syscall tracepoints (the agent loads one set), and the in-kernel
//!   prefilter derived from the rules.
//!
//! Shared by all: [`maps`] (the ring buffer, the lost and drop counters, the
//! record header), [`task`] (readers of a `task_struct`), [`path`] (the
//! path walker), [`kernel_read`] (checked kernel reads at `OFFSETS`) and
//! [`cgroup_v1`] (a task's cgroup id on v1 and hybrid hosts).
//!
//! No struct offset is compiled in: userspace resolves them from the running
//! kernel's BTF and sets the `OFFSETS` global at load time. A record the ring
//! buffer has no room for is counted in `LOST`, never dropped silently; one a
//! program gives up on is counted in `DROPS`.
//!
//! Each program is a thin wrapper over a `try_*` function returning `Result`.

#![no_std]
#![no_main]

mod cgroup_v1;
mod file;
mod kernel_read;
mod maps;
mod net;
mod path;
mod process;
mod task;

use sensor_common::{KernelOffsets, LAYOUT_HASH};

/// The record layout this object was built with; userspace refuses an
/// object whose layout differs from its own (`sensor_common::LAYOUT_HASH`).
#[no_mangle]
static SENSOR_LAYOUT: u64 = LAYOUT_HASH;

/// Set by userspace at load time (`EbpfLoader::set_global`); all zero here.
#[no_mangle]
static OFFSETS: KernelOffsets = unsafe { core::mem::zeroed() };

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
