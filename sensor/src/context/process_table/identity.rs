//! Who a process is: its start time in clock ticks (with the pid, what
//! `/proc` and the kernel agree on) and its ECS `entity_id`.

/// `USER_HZ` on every mainstream architecture; used when `sysconf` fails or
/// a caller passes 0.
pub const DEFAULT_CLK_TCK: u64 = 100;

/// The system's clock ticks per second (`sysconf(_SC_CLK_TCK)`), or
/// [`DEFAULT_CLK_TCK`] if it cannot be read.
pub fn system_clk_tck() -> u64 {
    // The kernel's AT_CLKTCK, what sysconf(_SC_CLK_TCK) returns.
    Some(rustix::param::clock_ticks_per_second())
        .filter(|&t| t > 0)
        .unwrap_or(DEFAULT_CLK_TCK)
}

/// Kernel boot-time ns → `/proc` start ticks, exactly as the kernel's
/// `nsec_to_clock_t` does it for a `CLK_TCK` dividing 1e9 (all real ones):
/// `ns / (1e9 / CLK_TCK)`, truncating. `clk_tck == 0` means the default.
pub fn boottime_ns_to_ticks(ns: u64, clk_tck: u64) -> u64 {
    let clk_tck = if clk_tck == 0 {
        DEFAULT_CLK_TCK
    } else {
        clk_tck
    };
    let ns_per_tick = (1_000_000_000 / clk_tck).max(1);
    ns / ns_per_tick
}

const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// The standard FNV-1a 64 offset basis.
pub(super) const FNV_OFFSET_A: u64 = 0xcbf2_9ce4_8422_2325;
/// A second, arbitrary basis: two independent 64-bit halves make the
/// 128-bit id collision-free in practice.
const FNV_OFFSET_B: u64 = 0x6c62_272e_07bb_0142;

pub(super) fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// ECS `process.entity_id`: 32 hex digits, a fixed hash (FNV-1a 64 with two
/// bases) of host id, boot id, pid and the process instance: its pidfs
/// inode where the kernel has pidfs (unique per instance for the whole
/// boot), else its start time in clock ticks (two processes that reuse a pid
/// within one tick would then share an id). On one kernel every source —
/// `/proc` at start-up, fork and exec records — gives the same kind.
///
/// A fixed algorithm (not std's `DefaultHasher`, which may change between
/// Rust releases) keeps ids stable across sensor restarts and versions. The
/// inputs are length-prefixed so no two different inputs share a byte
/// string. The boot id keeps ids distinct across reboots, where the same
/// pid and start ticks recur (pid 1 starts at nearly the same tick on every
/// boot).
pub fn entity_id(host_id: &str, boot_id: &str, pid: u32, instance: u64) -> String {
    let mut buf = Vec::with_capacity(host_id.len() + boot_id.len() + 20);
    for part in [host_id.as_bytes(), boot_id.as_bytes()] {
        buf.extend_from_slice(&(part.len() as u32).to_le_bytes());
        buf.extend_from_slice(part);
    }
    buf.extend_from_slice(&pid.to_le_bytes());
    buf.extend_from_slice(&instance.to_le_bytes());
    format!(
        "{:016x}{:016x}",
        fnv1a(FNV_OFFSET_A, &buf),
        fnv1a(FNV_OFFSET_B, &buf)
    )
}
