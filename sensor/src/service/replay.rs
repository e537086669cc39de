//! `sensor replay`: evaluate rules over ECS JSON lines and write alerts.
//!
//! Each non-blank input line must be a JSON object (an ECS event: nested,
//! dotted or mixed keys). A line that is not is reported with its line
//! number, counted as malformed and skipped: one bad line never stops a
//! replay. Every (event, rule) match produces one alert line, in input order
//! and, per event, in rule order.

use std::io::{self, BufRead, Write};

use serde_json::Value;

use crate::eql::JsonDocument;
use crate::output::alert::AlertWriter;
use crate::rules::RuleSet;

/// Counters of one replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
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
            "{} events read, {} malformed lines skipped, {} alerts, {} alert write errors",
            self.events, self.malformed, self.alerts, self.write_errors
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
    }
    if alerts.flush().is_err() {
        stats.write_errors += 1;
    }
    Ok(stats)
}
