//! The network family: TCP connections attempted, accepted and closed, as
//! Elastic Defend reports them (`event.category: network`).
//!
//! One slice through the stages: `hooks` attaches the kernel programs
//! (`sensor-ebpf/src/net_events.rs`) for the actions the rules can use,
//! `decode` turns their records into [`NetEvent`]s, `enrich` builds the ECS
//! document with the owning process's context, and `fields` holds the
//! ECS `source.*`, `destination.*` and `network.*` fields and answers the
//! rules' lookups of them.

pub mod decode;
pub mod enrich;
pub mod fields;
pub mod hooks;
pub mod prefilter;

pub use decode::{NetEvent, NetOp};
