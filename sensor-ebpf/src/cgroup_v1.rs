//! The task's cgroup id for container identity.
//!
//! On cgroup2 (pure or hybrid) hosts: `bpf_get_current_cgroup_id()`, the
//! default hierarchy's id. On cgroup-v1-only hosts every task is in that
//! hierarchy's root, so userspace (sensor/src/cgroup_v1.rs) picks a mounted
//! v1 controller and sets `OFFSETS.cgroup_v1`; the id is then the kernfs
//! node id of the task's cgroup in that controller's hierarchy, read as
//! Tetragon does: `task->cgroups->subsys[ssid]->cgroup->kn->id`. Either id
//! is the inode number of the cgroup's directory in its mount.

use aya_ebpf::helpers::bpf_get_current_cgroup_id;

use crate::kernel_read::{offset, read_ptr, read_u64, ReadError};
use crate::task::Task;
use crate::OFFSETS;

/// Bound on the subsystem id the verifier can see (CGROUP_SUBSYS_COUNT is
/// about 14 on current kernels).
const SUBSYS_MAX: usize = 64;

/// The cgroup id of `task`, which must be the current task.
#[inline(always)]
pub fn current_cgroup_id(task: *const u8) -> u64 {
    // SAFETY: volatile read of a load-time constant.
    if unsafe { core::ptr::read_volatile(&OFFSETS.cgroup_v1) } == 0 {
        // SAFETY: helper call without arguments.
        return unsafe { bpf_get_current_cgroup_id() };
    }
    v1_cgroup_id(task).unwrap_or(0)
}

/// The cgroup id of any `task` (a fork's child: `CLONE_INTO_CGROUP` starts
/// it in another cgroup than its parent): the v1 walk on v1-only hosts,
/// else `task->cgroups->dfl_cgrp->kn->id`, what the helper returns for the
/// current task.
pub fn task_cgroup_id(task: *const u8) -> Result<u64, ReadError> {
    // SAFETY: volatile read of a load-time constant.
    if unsafe { core::ptr::read_volatile(&OFFSETS.cgroup_v1) } != 0 {
        return v1_cgroup_id(task);
    }
    let cset = Task(task).cgroups()?;
    let cgroup = read_ptr(cset, offset(|o| &o.css_set_dfl_cgrp))?;
    if cgroup.is_null() {
        return Err(ReadError);
    }
    let kn = read_ptr(cgroup, offset(|o| &o.cgroup_kn))?;
    read_u64(kn, offset(|o| &o.kernfs_node_id))
}

fn v1_cgroup_id(task: *const u8) -> Result<u64, ReadError> {
    let cset = Task(task).cgroups()?;
    let ssid = offset(|o| &o.cgroup_v1_ssid) & (SUBSYS_MAX - 1);
    let css = read_ptr(
        cset,
        offset(|o| &o.css_set_subsys) + ssid * core::mem::size_of::<usize>(),
    )?;
    if css.is_null() {
        return Err(ReadError);
    }
    let cgroup = read_ptr(css, offset(|o| &o.css_cgroup))?;
    let kn = read_ptr(cgroup, offset(|o| &o.cgroup_kn))?;
    read_u64(kn, offset(|o| &o.kernfs_node_id))
}

/// The v1 id reported beside cgroup2's on a hybrid host (0 elsewhere, or
/// when it cannot be read).
#[inline(always)]
pub fn secondary_v1_id(task: *const u8) -> u64 {
    // SAFETY: volatile read of a load-time constant.
    if unsafe { core::ptr::read_volatile(&OFFSETS.cgroup_v1_secondary) } == 0 {
        return 0;
    }
    v1_cgroup_id(task).unwrap_or(0)
}
