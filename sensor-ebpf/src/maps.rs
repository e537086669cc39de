//! What every program shares: the ring buffer every record goes to
//! (`EVENTS`, with the wake-up policy), the counters of records lost to a
//! full ring buffer (`LOST`, by record kind) and of records a program gave
//! up on (`DROPS`, by program and reason), and the record header. Indexes
//! come from the registry (`sensor_common::registry`).

use crate::kernel_read::ReadError;
use aya_ebpf::{
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_boot_ns, generated::bpf_ringbuf_output},
    macros::map,
    maps::{PerCpuArray, RingBuf},
    EbpfContext,
};
use sensor_common::{drop_reason, lost_index, RecordHeader, DROPS_LEN};

/// Wake the reader only once this many bytes wait in the ring buffer (the
/// reader also drains on a short timer): a storm then costs one wake-up per
/// batch, not one per exec. 0: the kernel's default, a wake-up whenever the
/// reader has caught up (lowest latency). Set by userspace at load time.
#[no_mangle]
pub(crate) static WAKEUP_BYTES: u64 = 0;

pub(crate) const BPF_RB_NO_WAKEUP: u64 = 1;
pub(crate) const BPF_RB_FORCE_WAKEUP: u64 = 2;
pub(crate) const BPF_RB_AVAIL_DATA: u64 = 0;

/// Notification flags for the record about to be sent.
pub(crate) fn wakeup_flags() -> u64 {
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
pub(crate) static EVENTS: RingBuf = RingBuf::with_byte_size(8 * 1024 * 1024, 0);

/// Records lost because the ring buffer was full, by [`lost_index`].
#[map]
pub(crate) static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(lost_index::COUNT, 0);

/// Records a program dropped before the ring buffer, by program and
/// [`drop_reason`] (`program * drop_reason::COUNT + reason`).
#[map]
pub(crate) static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DROPS_LEN, 0);

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

pub(crate) fn count_lost(index: u32) {
    count_lost_n(index, 1);
}

pub(crate) fn count_lost_n(index: u32, n: u64) {
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
