//! The sensor's library: everything the `sensor` binary does lives in a named
//! module here so that it can be tested, benchmarked and reused on its own.
//!
//! The folders follow the data flow (see `docs/architecture.md`):
//!
//! kernel records ([`kernel`]: load the programs, decode what they send)
//! → process and container context ([`context`])
//! → an ECS document ([`ecs`])
//! → rule verdicts ([`rules`] over the [`eql`] engine)
//! → JSON lines and alerts ([`output`]),
//! with the [`service`] around them (settings, the live loop, metrics,
//! replay). [`byte_text`] (kernel bytes → JSON text without loss) is a
//! leaf used by several stages.

pub mod byte_text;
pub mod context;
pub mod ecs;
pub mod eql;
pub mod kernel;
pub mod network;
pub mod output;
pub mod rules;
pub mod service;
