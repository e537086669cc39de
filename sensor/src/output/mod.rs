//! Where documents go: JSON lines to files or stdout ([`jsonl`]), written
//! on a thread of their own for the live sensor ([`background`]), and the
//! alert document built from an event and the rule that matched
//! ([`alert`]).

pub mod alert;
pub mod background;
pub mod jsonl;
