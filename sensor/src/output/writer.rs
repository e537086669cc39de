//! [`AlertWriter`]: the alerts output, shared by the live sensor and
//! `replay`, with each rule's static part rendered once. Every match passes
//! the [`AlertPolicy`] first (exception lists), so live and replay drop the
//! same alerts.

use std::collections::HashMap;
use std::io::{self, Write};

use serde_json::Value;

use super::alert::{build_alert, build_sequence_alerts};
use super::template::{AlertTemplate, NativeScratch};
use crate::ecs::EcsEvent;
use crate::output::jsonl::JsonLines;
use crate::rules::exceptions::Subject;
use crate::rules::policy::AlertPolicy;
use crate::rules::suppression::Admission;
use crate::rules::RuleMeta;

/// The alerts output: the shared JSON-lines writer, so the live sensor and
/// `replay` write alerts through the same code, with each rule's static
/// part rendered once.
pub struct AlertWriter {
    lines: JsonLines,
    templates: HashMap<String, AlertTemplate>,
    doc: Vec<u8>,
    scratch: NativeScratch,
    policy: AlertPolicy,
}

impl std::fmt::Debug for AlertWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertWriter")
            .field("lines", &self.lines)
            .field("templates", &self.templates.len())
            .finish_non_exhaustive()
    }
}

impl AlertWriter {
    pub fn new(out: Box<dyn Write + Send>) -> AlertWriter {
        AlertWriter::with_lines(JsonLines::new(out))
    }

    /// Alerts through `lines` (e.g. a [`JsonLines::background`] writer).
    pub fn with_lines(lines: JsonLines) -> AlertWriter {
        AlertWriter {
            lines,
            templates: HashMap::new(),
            doc: Vec::with_capacity(8192),
            scratch: NativeScratch::default(),
            policy: AlertPolicy::default(),
        }
    }

    /// The writer applying `policy` to every match.
    pub fn with_policy(mut self, policy: AlertPolicy) -> AlertWriter {
        self.policy = policy;
        self
    }

    /// The policy, with its counters.
    pub fn policy(&self) -> &AlertPolicy {
        &self.policy
    }

    /// Builds and writes the alert for `event` matched by `rule`, unless an
    /// exception of the rule drops it (counted by the policy).
    pub fn write_alert(&mut self, event: &Value, rule: &RuleMeta) -> io::Result<()> {
        if self.policy.excepted(&rule.rule_id, event) {
            return Ok(());
        }
        if self.policy.suppresses(&rule.rule_id) {
            return self.write_suppressed(event, event, rule);
        }
        self.template(rule)?;
        let template = self
            .templates
            .get(&rule.rule_id)
            .ok_or_else(|| io::Error::other("alert template cache"))?;
        self.doc.clear();
        if let Err(e) = template.render(event, rule, &mut self.doc) {
            return self.lines.write_raw_failed(io::Error::other(e));
        }
        self.lines.write_raw(&self.doc)
    }

    /// Builds and writes the alert for the live sensor's `event` matched by
    /// `rule`: the same bytes as [`write_alert`](Self::write_alert) with
    /// `event.to_json()`, without building that `Value` when the event's
    /// shape allows.
    pub fn write_alert_native(&mut self, event: &EcsEvent, rule: &RuleMeta) -> io::Result<()> {
        if self.policy.excepted(&rule.rule_id, event) {
            return Ok(());
        }
        if self.policy.suppresses(&rule.rule_id) {
            return self.write_suppressed(event, event.to_json(), rule);
        }
        self.template(rule)?;
        let template = self
            .templates
            .get(&rule.rule_id)
            .ok_or_else(|| io::Error::other("alert template cache"))?;
        self.doc.clear();
        if template
            .render_native(event, &mut self.doc, &mut self.scratch)
            .is_err()
        {
            self.doc.clear();
            if let Err(e) = template.render(event.to_json(), rule, &mut self.doc) {
                return self.lines.write_raw_failed(io::Error::other(e));
            }
        }
        self.lines.write_raw(&self.doc)
    }

    /// Unless an exception of the rule matches one of its events (then
    /// nothing is written: `Ok(0)`, counted by the policy), writes the
    /// alerts of one completed sequence (see
    /// [`build_sequence_alerts`]); returns how many lines.
    pub fn write_sequence(&mut self, events: &[&Value], rule: &RuleMeta) -> io::Result<usize> {
        if self.policy.excepted_sequence(&rule.rule_id, events) {
            return Ok(0);
        }
        let docs = build_sequence_alerts(events, rule);
        let mut result = Ok(docs.len());
        for d in &docs {
            if let Err(e) = self.lines.write(d) {
                result = Err(e);
            }
        }
        result
    }

    /// An alert of a rule with alert suppression (see
    /// [`crate::rules::suppression`]): the first of its group is written
    /// with the suppression fields, later ones only counted; groups whose
    /// window closed by the event's time are written again with their
    /// counts first.
    fn write_suppressed<S: Subject + ?Sized>(
        &mut self,
        subject: &S,
        json: &Value,
        rule: &RuleMeta,
    ) -> io::Result<()> {
        let now = crate::rules::exceptions::event_time_ms(subject);
        let mut closed = Vec::new();
        let Some(suppressor) = self.policy.suppressor_mut(&rule.rule_id) else {
            return self.lines.write(&build_alert(json, rule));
        };
        let admission = suppressor.admit(subject, now, &mut closed);
        let mut result = self.write_values(&closed);
        let written = match admission {
            Admission::Suppressed => Ok(()),
            Admission::Unsuppressed => self.lines.write(&build_alert(json, rule)),
            Admission::Open(fields) => {
                let mut alert = build_alert(json, rule);
                if let (Some(Value::Object(target)), Value::Object(fields)) = (
                    alert.get_mut("kibana").and_then(|k| k.get_mut("alert")),
                    fields,
                ) {
                    target.extend(fields);
                }
                let r = self.lines.write(&alert);
                if let Some(s) = self.policy.suppressor_mut(&rule.rule_id) {
                    s.opened(subject, alert);
                }
                r
            }
        };
        if written.is_err() {
            result = written;
        }
        result
    }

    fn write_values(&mut self, docs: &[Value]) -> io::Result<()> {
        let mut result = Ok(());
        for d in docs {
            if let Err(e) = self.lines.write(d) {
                result = Err(e);
            }
        }
        result
    }

    /// Writes again, with their counts, the suppressed alerts whose window
    /// ended by `now_ms` (the live sensor calls this once a second).
    pub fn close_suppression_windows(&mut self, now_ms: i64) -> io::Result<()> {
        let closed = self.policy.close_windows(Some(now_ms));
        self.write_values(&closed)
    }

    /// Writes again every open suppressed alert with its count (the input
    /// or the sensor ends).
    pub fn end_suppression(&mut self) -> io::Result<()> {
        let closed = self.policy.close_windows(None);
        self.write_values(&closed)
    }

    /// Makes sure the cached template of `rule` fits it.
    fn template(&mut self, rule: &RuleMeta) -> io::Result<()> {
        if !self
            .templates
            .get(&rule.rule_id)
            .is_some_and(|t| t.fits(rule))
        {
            self.templates
                .insert(rule.rule_id.clone(), AlertTemplate::new(rule));
        }
        Ok(())
    }

    /// Flushes the output (a failure is counted).
    pub fn flush(&mut self) -> io::Result<()> {
        self.lines.flush()
    }

    /// Writes the open suppressed alerts' counts, flushes and waits until
    /// every alert is written (see [`JsonLines::close`]).
    pub fn close(&mut self) {
        let _ = self.end_suppression();
        self.lines.close();
    }

    /// Alerts written successfully.
    pub fn written(&self) -> u64 {
        self.lines.written()
    }

    /// Failed writes and flushes.
    pub fn errors(&self) -> u64 {
        self.lines.errors()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::rules::exceptions::ExceptionCatalogue;
    use crate::rules::suppression::SuppressionSpec;
    use crate::rules::tuning::{RuleOverride, Tuning};
    use crate::rules::RuleSet;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A writer for the seed rule under `tuning`, and its output.
    fn writer(tuning: &Tuning, exceptions: &str) -> (AlertWriter, Buf, RuleMeta) {
        let set = RuleSet::embedded_default().unwrap();
        let cat =
            ExceptionCatalogue::parse(exceptions, std::path::Path::new("x.toml"), true).unwrap();
        let (policy, _) = AlertPolicy::build(&set, &cat, tuning).unwrap();
        let buf = Buf::default();
        let w = AlertWriter::new(Box::new(buf.clone())).with_policy(policy);
        (w, buf, set.rules()[0].meta.clone())
    }

    fn lines(buf: &Buf) -> Vec<String> {
        String::from_utf8(buf.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_live_path_applies_exceptions_and_suppression_like_the_value_path() {
        let ev = crate::ecs::document::sample_exec_event(7, vec!["sh".into()]);
        let id = "497a7091-0ebd-44d7-88c4-367ab4d4d852";
        let list = "[[list]]\nlist_id = \"l\"\n[[list.item]]\nentries = [{ field = \"process.pid\", operator = \"included\", type = \"exists\" }]\n";
        let tuning = Tuning {
            global_exceptions: vec!["l".into()],
            ..Tuning::default()
        };
        let (mut w, buf, meta) = writer(&tuning, list);
        w.write_alert_native(&ev, &meta).unwrap();
        w.write_alert(ev.to_json(), &meta).unwrap();
        w.flush().unwrap();
        assert!(lines(&buf).is_empty(), "both paths drop the excepted match");
        assert_eq!(
            w.policy().excepted_counts().collect::<Vec<_>>(),
            vec![(id, "l", 2)]
        );

        let mut tuning = Tuning::default();
        tuning.rule_overrides.insert(
            id.into(),
            RuleOverride {
                alert_suppression: Some(SuppressionSpec {
                    group_by: vec!["process.name".into()],
                    duration: None,
                    missing_fields_strategy: None,
                }),
                ..RuleOverride::default()
            },
        );
        let (mut native, native_buf, meta) = writer(&tuning, "");
        let (mut value, value_buf, _) = writer(&tuning, "");
        for _ in 0..3 {
            native.write_alert_native(&ev, &meta).unwrap();
            value.write_alert(ev.to_json(), &meta).unwrap();
        }
        native.close();
        value.close();
        let out = lines(&native_buf);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[1].contains("\"docs_count\":2"), "{}", out[1]);
        assert_eq!(
            out,
            lines(&value_buf),
            "live and replay write the same bytes"
        );
    }
}
