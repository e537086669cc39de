//! Kernel side, seen from userspace: resolve the running kernel's layout
//! ([`btf`], [`tracefs`] → [`offsets`]), load and attach the programs
//! ([`programs`]), and turn ring-buffer records into typed events
//! ([`decode`]). The records themselves are `sensor_common`'s; the contract
//! between the two sides is described in `docs/kernel.md`.

pub mod btf;
pub mod decode;
pub mod file_filter;
pub mod file_hooks;
pub mod host;
pub mod kind_counts;
pub mod offsets;
pub mod programs;
pub mod tracefs;
