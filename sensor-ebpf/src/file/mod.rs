//! The file family: opens for writing, creations, deletions and renames
//! from BPF LSM, fentry or the syscall tracepoints (`events`), and the
//! in-kernel prefilter derived from the rules (`filter`).

pub(crate) mod events;
pub(crate) mod filter;
