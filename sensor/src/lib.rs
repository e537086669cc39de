//! The sensor's library: everything the `sensor` binary does lives in a named
//! module here so that it can be tested, benchmarked and reused on its own.
//!
//! Data flow (see `docs/architecture.md` in the shared docs):
//! kernel records ([`sensor_common`]) → [`event_decode`] → [`process_table`]
//! → enrichment ([`enrich`]: [`container_id`], [`cgroup_path`]) → [`ecs`]
//! document → [`rules`] / [`eql`] verdicts → [`alert`] JSON lines
//! ([`output`]). [`live`] runs that loop; [`replay`] runs the rule half
//! offline on ECS JSON.

// Kernel side: loading the programs and reading what they send.
pub mod event_decode;
pub mod kernel_btf;
pub mod kernel_offsets;
pub mod kernel_programs;
pub mod tracefs;

// Process context and enrichment.
pub mod byte_text;
pub mod cgroup_path;
pub mod cgroup_v1;
pub mod container_id;
pub mod ecs;
pub mod enrich;
pub mod proc_scan;
pub mod process_table;

// Rules: the EQL engine and Elastic rule files.
pub mod eql;
pub mod rules;

// Outputs and the service around them.
pub mod alert;
pub mod config;
pub mod live;
pub mod metrics;
pub mod output;
pub mod replay;
