//! Where documents go: JSON lines to files or stdout ([`jsonl`]), written
//! on a thread of their own for the live sensor ([`background`]), and the
//! alert document built from an event and the rule that matched
//! ([`alert`]: the one renderer, [`build_alert`](alert::build_alert); its
//! fast path, the per-rule template spliced into the event's JSON, lives in
//! `template` with its sorted-key serializer in `sorted_json`; the
//! [`AlertWriter`](alert::AlertWriter) in `writer`).

pub mod alert;
pub mod background;
pub mod jsonl;
mod sorted_json;
mod template;
mod writer;
