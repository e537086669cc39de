//! The sensor's library: everything the `sensor` binary does lives in a named
//! module here so that it can be tested, benchmarked and reused on its own.
//!
//! Data flow (see `docs/architecture.md` in the shared docs):
//! kernel records ([`sensor_common`]) → [`event_decode`] → [`process_table`]
//! → enrichment ([`container_id`], [`cgroup_path`]) → [`ecs`] document →
//! [`rules`] / [`eql`] verdicts → [`alert`] JSON lines.

pub mod eql;
pub mod rules;
pub mod alert;
pub mod replay;
pub mod byte_text;
pub mod container_id;
pub mod cgroup_path;
pub mod proc_scan;
pub mod event_decode;
pub mod kernel_btf;
pub mod kernel_offsets;
pub mod kernel_programs;
pub mod tracefs;
pub mod process_table;
pub mod ecs;
pub mod enrich;
pub mod live;
pub mod output;
pub mod config;
pub mod metrics;
