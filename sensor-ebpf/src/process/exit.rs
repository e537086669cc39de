//! `sched/sched_process_exit`: one `ExitRecord` when a process's last
//! thread exits, so userspace can evict it.

use crate::file::filter as file_filter;
use crate::kernel_read::{offset, ReadError};
use crate::maps::{count_drop, count_lost, header, wakeup_flags, Dropped, EVENTS};
use crate::task::{current_task, Task};
use crate::OFFSETS;
use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
};
use sensor_common::{lost_index, program_index, record_kind, ExitRecord, COMM_LEN};

#[tracepoint]
pub fn sensor_exit(ctx: TracePointContext) -> u32 {
    count_drop(&ctx, program_index::EXIT, try_exit(&ctx));
    0
}

pub(crate) fn try_exit(ctx: &TracePointContext) -> Result<(), Dropped> {
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
    let leader = match Task(task).group_leader() {
        Ok(leader) if !leader.is_null() => leader,
        _ => task,
    };
    let rec = ExitRecord {
        header: header(record_kind::EXIT),
        tgid,
        exit_code: Task(task).exit_code().unwrap_or(0),
        start_boottime_ns: Task(leader).start_boottime().unwrap_or(0),
        comm: Task(leader).comm().unwrap_or([0; COMM_LEN]),
    };
    if EVENTS.output::<ExitRecord>(&rec, wakeup_flags()).is_err() {
        count_lost(lost_index::EXIT);
    }
    Ok(())
}
