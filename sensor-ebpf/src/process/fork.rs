//! `sched_process_fork` (raw tracepoint: only the raw form hands over the
//! child `task_struct`, the only way to tell a new process from a new
//! thread): one `ForkRecord` per new process, so that forked workers that
//! never exec inherit their parent's identity in userspace.

use crate::cgroup_v1;
use crate::file::filter as file_filter;
use crate::maps::{count_drop, count_lost, header, wakeup_flags, Dropped, EVENTS};
use crate::task::{current_task, fill_session, pid_ino, Task};
use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use sensor_common::{lost_index, program_index, record_kind, ForkRecord, COMM_LEN};

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sensor_fork(ctx: RawTracePointContext) -> i32 {
    count_drop(&ctx, program_index::FORK, try_fork(&ctx));
    0
}

pub(crate) fn try_fork(ctx: &RawTracePointContext) -> Result<(), Dropped> {
    // TP_PROTO(struct task_struct *parent, struct task_struct *child)
    let child: *const u8 = ctx.arg::<*const u8>(1);
    let tgid = Task(child).tgid()?;
    let pid = Task(child).pid()?;
    if tgid != pid {
        return Ok(()); // a new thread, not a new process
    }
    let mut rec = ForkRecord {
        header: header(record_kind::FORK),
        ..ForkRecord::default()
    };
    rec.child.tgid = tgid;
    rec.child.pid = pid;
    rec.child.start_boottime_ns = Task(child).start_boottime()?;
    rec.child.pid_ino = pid_ino(child);
    fill_session(&mut rec.child, child);
    rec.child.comm = Task(child).comm().unwrap_or([0; COMM_LEN]);
    if let Ok(parent) = Task(child).real_parent() {
        let leader = match Task(parent).group_leader() {
            Ok(leader) if !leader.is_null() => leader,
            _ => parent,
        };
        rec.parent_tgid = Task(leader).tgid().unwrap_or(0);
        rec.parent_start_boottime_ns = Task(leader).start_boottime().unwrap_or(0);
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
