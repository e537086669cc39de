//! `cgroup/cgroup_mkdir`: one `CgroupRecord` per new cgroup, so userspace
//! can name the cgroup of a container already removed by the time its
//! events are read.

use crate::kernel_read::{offset, ReadError};
use crate::maps::{count_drop, header, output_prefix, Dropped};
use aya_ebpf::{
    helpers::generated::bpf_probe_read_kernel_str,
    macros::{map, tracepoint},
    maps::PerCpuArray,
    programs::TracePointContext,
    EbpfContext,
};
use sensor_common::{lost_index, program_index, record_kind, CgroupRecord, CGROUP_PATH_MAX};

/// Scratch for one cgroup record per CPU (over the 512-byte stack).
#[map]
pub(crate) static CGROUP_SCRATCH: PerCpuArray<CgroupRecord> = PerCpuArray::with_max_entries(1, 0);

#[tracepoint]
pub fn sensor_cgroup_mkdir(ctx: TracePointContext) -> u32 {
    count_drop(&ctx, program_index::CGROUP_MKDIR, try_cgroup_mkdir(&ctx));
    0
}

pub(crate) fn try_cgroup_mkdir(ctx: &TracePointContext) -> Result<(), Dropped> {
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
