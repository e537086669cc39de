//! Where documents go: JSON lines to files or stdout ([`jsonl`]), and the
//! alert document built from an event and the rule that matched
//! ([`alert`]).

pub mod alert;
pub mod jsonl;
