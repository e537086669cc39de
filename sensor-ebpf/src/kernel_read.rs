//! Small, typed reads of kernel and user memory at offsets that userspace
//! resolved from BTF. Every read goes through `bpf_probe_read_*`, so a stale
//! or null pointer yields an error instead of a fault.

use aya_ebpf::helpers::{bpf_probe_read_kernel, bpf_probe_read_user};
use sensor_common::KernelOffsets;

use crate::OFFSETS;

/// A kernel or user read failed (the helper returned an error).
#[derive(Clone, Copy, Debug)]
pub struct ReadError;

/// One field of the load-time `OFFSETS` global. The volatile read keeps the
/// compiler from folding the all-zero compile-time value into the code.
#[inline(always)]
pub fn offset(field: impl FnOnce(&KernelOffsets) -> &u32) -> usize {
    // SAFETY: `OFFSETS` is a static; reading one of its fields is always valid.
    unsafe { core::ptr::read_volatile(field(&OFFSETS)) as usize }
}

#[inline(always)]
fn read<T: Copy>(base: *const u8, off: usize) -> Result<T, ReadError> {
    // SAFETY: bpf_probe_read_kernel validates the address itself.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(off) as *const T) }.map_err(|_| ReadError)
}

#[inline(always)]
pub fn read_ptr(base: *const u8, off: usize) -> Result<*const u8, ReadError> {
    read::<*const u8>(base, off)
}

#[inline(always)]
pub fn read_u64(base: *const u8, off: usize) -> Result<u64, ReadError> {
    read::<u64>(base, off)
}

#[inline(always)]
pub fn read_u32(base: *const u8, off: usize) -> Result<u32, ReadError> {
    read::<u32>(base, off)
}

#[inline(always)]
pub fn read_i32(base: *const u8, off: usize) -> Result<i32, ReadError> {
    read::<i32>(base, off)
}

#[inline(always)]
pub fn read_u16(base: *const u8, off: usize) -> Result<u16, ReadError> {
    read::<u16>(base, off)
}

#[inline(always)]
pub fn read_bytes<const N: usize>(base: *const u8, off: usize) -> Result<[u8; N], ReadError> {
    read::<[u8; N]>(base, off)
}

/// A u64 from user memory of the current task (the new image's stack).
#[inline(always)]
pub fn read_user_u64(addr: u64) -> Result<u64, ReadError> {
    // SAFETY: bpf_probe_read_user validates the address itself.
    unsafe { bpf_probe_read_user(addr as *const u64) }.map_err(|_| ReadError)
}
