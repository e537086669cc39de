//! `sensor replay`: evaluate rules over ECS JSON lines and write alerts.
//!
//! Each non-blank input line must be a JSON object (an ECS event: nested,
//! dotted or mixed keys). A line that is not is reported with its line
//! number, counted as malformed and skipped: one bad line never stops a
//! replay. Every (event, rule) match of a single-event rule produces one
//! alert line, in input order and, per event, in rule order.
//!
//! Sequence rules see the events in `@timestamp` order, then input order
//! (Elasticsearch's ordinal with the input as implicit tiebreaker): the
//! events some step, missing step or `until` of a sequence rule matches are
//! kept (shared, not copied per rule) while the input is read, then sorted
//! and fed to the same [`SequenceRunner`] the live sensor uses. Their alerts
//! (a shell and one building block per event, see
//! [`build_sequence_alerts`](crate::output::alert::build_sequence_alerts))
//! follow the single-event alerts, in completion order. An event without a
//! parseable `@timestamp` takes no part in sequences (counted).

use std::io::{self, BufRead, Write};

use serde_json::Value;

use std::rc::Rc;

use crate::eql::sequence::Ordinal;
use crate::eql::{JsonDocument, SequenceStats};
use crate::output::alert::AlertWriter;
use crate::rules::sequences::{interested, RunMode, SequenceRunner};
use crate::rules::RuleSet;

/// Counters of one replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Sequences completed (each wrote a shell and its building blocks).
    pub sequences: u64,
    /// Events a sequence rule needed but without a usable `@timestamp`.
    pub no_timestamp: u64,
    /// The sequence engines' counters.
    pub sequence: SequenceStats,
    /// Events parsed and evaluated.
    pub events: u64,
    /// Lines that were not a JSON object.
    pub malformed: u64,
    /// Alerts produced (written or not).
    pub alerts: u64,
    /// Alerts that could not be written.
    pub write_errors: u64,
}

impl std::fmt::Display for ReplayStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} events read, {} malformed lines skipped, {} alerts, {} alert write errors, {} sequences ({} events without @timestamp; {} rejected by maxspan, {} ended by until, {} voided by a missing event, {} expired, {} evicted, peak {} pending)",
            self.events,
            self.malformed,
            self.alerts,
            self.write_errors,
            self.sequences,
            self.no_timestamp,
            self.sequence.rejected_maxspan,
            self.sequence.dropped_until,
            self.sequence.dropped_missing,
            self.sequence.expired,
            self.sequence.evicted,
            self.sequence.peak_pending
        )
    }
}

/// Replays `input` through `rules`, writing alerts to `alerts` and one
/// diagnostic line per malformed input line to `diagnostics`. Fails only if
/// reading the input fails.
pub fn replay<R: BufRead>(
    mut input: R,
    rules: &RuleSet,
    alerts: &mut AlertWriter,
    diagnostics: &mut dyn Write,
) -> io::Result<ReplayStats> {
    let mut stats = ReplayStats::default();
    let mut line = Vec::new();
    let mut line_no = 0u64;
    let has_sequences = !rules.sequences().is_empty();
    let mut kept: Vec<(Ordinal, Rc<Value>)> = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        line_no += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event: Value = match serde_json::from_slice(&line) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                stats.malformed += 1;
                let _ = writeln!(
                    diagnostics,
                    "line {line_no}: malformed event: not a JSON object"
                );
                continue;
            }
            Err(e) => {
                stats.malformed += 1;
                let _ = writeln!(diagnostics, "line {line_no}: malformed event: {e}");
                continue;
            }
        };
        stats.events += 1;
        let doc = JsonDocument::new(&event);
        for rule in rules.matching(&doc) {
            stats.alerts += 1;
            if alerts.write_alert(&event, &rule.meta).is_err() {
                stats.write_errors += 1;
            }
        }
        if has_sequences && interested(rules, &doc) {
            match Ordinal::of(&doc, line_no) {
                Some(ord) => kept.push((ord, Rc::new(event))),
                None => stats.no_timestamp += 1,
            }
        }
    }
    if has_sequences {
        kept.sort_by_key(|(ord, _)| *ord);
        let mut runner = SequenceRunner::with_default_cap(rules, RunMode::Replay);
        let mut emit = |rule: &crate::rules::SequenceRule, events: &[&Value]| {
            stats.sequences += 1;
            match alerts.write_sequence(events, &rule.meta) {
                Ok(n) => stats.alerts += n as u64,
                Err(_) => stats.write_errors += 1,
            }
        };
        for (ord, event) in &kept {
            runner.process(rules, event, *ord, &mut emit);
        }
        runner.finish(rules, &mut emit);
        stats.sequence = runner.stats();
    }
    if alerts.flush().is_err() {
        stats.write_errors += 1;
    }
    Ok(stats)
}
