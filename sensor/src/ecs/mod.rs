//! ECS documents: the [`document`] the sensor emits and evaluates rules on,
//! built by [`enrich`] from a kernel event and its context; kernel bytes
//! become JSON text through [`crate::byte_text`]. The fields and their sources are
//! listed in `docs/ecs.md`.

pub mod action;
pub mod document;
pub mod enrich;

pub use action::Action;
pub use document::*;
