//! The figures of the active rule set: what its exception lists dropped,
//! per rule and list, and what alert suppression counted into groups. Registered with the sensor's other metrics
//! ([`Metrics`](super::metrics::Metrics)), kept apart from its per-event
//! counters.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::metrics::{labels, Labels};
use crate::rules::policy::AlertPolicy;

/// The rule set's families.
#[derive(Debug, Clone, Default)]
pub struct RuleSetMetrics {
    excepted: Family<Labels, Counter>,
    suppressed: Family<Labels, Counter>,
    groups: Family<Labels, Counter>,
    groups_open: Family<Labels, Gauge>,
    info: Family<Labels, Gauge>,
    loaded_at: Gauge,
    load_ms: Gauge,
    rule_exceptions: Family<Labels, Gauge>,
    rule_suppression: Family<Labels, Gauge>,
}

impl RuleSetMetrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &mut Registry) -> RuleSetMetrics {
        let m = RuleSetMetrics::default();
        registry.register(
            "alerts_excepted",
            "Rule matches an exception list dropped (not written), by rule and list",
            m.excepted.clone(),
        );
        registry.register(
            "alerts_suppressed",
            "Alerts counted into an open suppression group (not written on their own), by rule",
            m.suppressed.clone(),
        );
        registry.register(
            "suppression_groups",
            "Suppression groups by rule: opened, evicted (closed early: the rule had 1024 open)",
            m.groups.clone(),
        );
        registry.register(
            "suppression_groups_open",
            "Suppression groups open now, by rule",
            m.groups_open.clone(),
        );
        registry.register(
            "rule_set_info",
            "The active rule set: 1, labelled with its version (a hash of its rules, tuning, exceptions and suppression)",
            m.info.clone(),
        );
        registry.register(
            "rule_set_loaded_timestamp_seconds",
            "When the active rule set was loaded (Unix time)",
            m.loaded_at.clone(),
        );
        registry.register(
            "rule_set_load_milliseconds",
            "How long loading the active rule set took (rules, tuning, exceptions)",
            m.load_ms.clone(),
        );
        registry.register(
            "rule_exceptions",
            "1 per exception list attached to a rule, by how (rule, config, global); missing: referenced by the rule file, defined by no file",
            m.rule_exceptions.clone(),
        );
        registry.register(
            "rule_suppression_window_seconds",
            "Alert suppression of a rule: its window, labelled with its group_by fields and missing-fields strategy",
            m.rule_suppression.clone(),
        );
        m
    }

    /// Describes the active rule set (at start, and after a reload).
    pub fn set_active(&self, active: &crate::rules::active::ActiveSet) {
        self.info.clear();
        self.info
            .get_or_create(&labels(&[("version", &active.version)]))
            .set(1);
        self.loaded_at.set(active.loaded_at_ms / 1000);
        self.load_ms
            .set(i64::try_from(active.load_ms).unwrap_or(i64::MAX));
        self.rule_exceptions.clear();
        self.rule_suppression.clear();
        for r in &active.rules {
            for (how, list) in &r.exceptions {
                let l = labels(&[
                    ("rule_id", &r.rule_id),
                    ("list_id", list),
                    ("attached", how),
                ]);
                self.rule_exceptions.get_or_create(&l).set(1);
            }
            for list in &r.missing_exceptions {
                let l = labels(&[
                    ("rule_id", &r.rule_id),
                    ("list_id", list),
                    ("attached", "missing"),
                ]);
                self.rule_exceptions.get_or_create(&l).set(1);
            }
            if let Some(s) = &r.suppression {
                let l = labels(&[
                    ("rule_id", &r.rule_id),
                    ("group_by", &s.group_by.join(",")),
                    ("missing_fields_strategy", s.missing_fields_strategy),
                ]);
                self.rule_suppression.get_or_create(&l).set(s.duration_s);
            }
        }
    }

    /// Copies the policy's counters (once a second).
    pub fn set_policy(&self, policy: &AlertPolicy) {
        for (rule_id, list_id, n) in policy.excepted_counts() {
            let l = labels(&[("rule_id", rule_id), ("list_id", list_id)]);
            self.excepted
                .get_or_create(&l)
                .inner()
                .store(n, std::sync::atomic::Ordering::Relaxed);
        }
        let store = |c: &Counter, n: u64| c.inner().store(n, std::sync::atomic::Ordering::Relaxed);
        for (rule_id, st) in policy.suppression_stats() {
            let rule = labels(&[("rule_id", rule_id)]);
            store(&self.suppressed.get_or_create(&rule), st.suppressed);
            for (what, n) in [("opened", st.opened), ("evicted", st.evicted)] {
                let l = labels(&[("rule_id", rule_id), ("what", what)]);
                store(&self.groups.get_or_create(&l), n);
            }
            self.groups_open
                .get_or_create(&rule)
                .set(i64::try_from(st.open).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::rules::exceptions::ExceptionCatalogue;
    use crate::rules::policy::AlertPolicy;
    use crate::rules::tuning::Tuning;
    use crate::rules::RuleSet;
    use crate::service::metrics::Metrics;

    #[test]
    fn exceptions_are_counted_per_rule_and_list() {
        let toml = "[[list]]\nlist_id = \"l\\\"1\"\n[[list.item]]\nentries = [{ field = \"a\", operator = \"included\", type = \"exists\" }]\n";
        let cat = ExceptionCatalogue::parse(toml, std::path::Path::new("x.toml"), true).unwrap();
        let set = RuleSet::embedded_default().unwrap();
        let tuning = Tuning {
            global_exceptions: vec!["l\"1".into()],
            ..Tuning::default()
        };
        let (mut policy, _) = AlertPolicy::build(&set, &cat, &tuning).unwrap();
        let id = set.rules()[0].meta.rule_id.clone();
        assert!(policy.excepted(&id, &serde_json::json!({"a": 1})));
        assert!(policy.excepted(&id, &serde_json::json!({"a": 2})));
        assert!(!policy.excepted(&id, &serde_json::json!({"b": 1})));
        let m = Metrics::new([(id.clone(), "n".into())]);
        m.rule_set.set_policy(&policy);
        let line =
            format!("sensor_alerts_excepted_total{{rule_id=\"{id}\",list_id=\"l\\\"1\"}} 2\n");
        assert!(m.render().contains(&line), "{}", m.render());
    }

    #[test]
    fn suppression_is_counted_per_rule() {
        let set = RuleSet::embedded_default().unwrap();
        let id = set.rules()[0].meta.rule_id.clone();
        let mut tuning = Tuning::default();
        tuning.rule_overrides.insert(
            id.clone(),
            crate::rules::tuning::RuleOverride {
                alert_suppression: Some(crate::rules::suppression::SuppressionSpec {
                    group_by: vec!["a".into()],
                    duration: None,
                    missing_fields_strategy: None,
                }),
                ..Default::default()
            },
        );
        let (mut policy, _) =
            AlertPolicy::build(&set, &ExceptionCatalogue::default(), &tuning).unwrap();
        let s = policy.suppressor_mut(&id).unwrap();
        let mut closed = Vec::new();
        for t in 0..3 {
            s.admit(&serde_json::json!({"a": 1}), t, &mut closed);
        }
        let m = Metrics::new([(id.clone(), "n".into())]);
        m.rule_set.set_policy(&policy);
        let text = m.render();
        for line in [
            format!("sensor_alerts_suppressed_total{{rule_id=\"{id}\"}} 2\n"),
            format!("sensor_suppression_groups_total{{rule_id=\"{id}\",what=\"opened\"}} 1\n"),
            format!("sensor_suppression_groups_open{{rule_id=\"{id}\"}} 1\n"),
        ] {
            assert!(text.contains(&line), "{line} not in {text}");
        }
    }

    #[test]
    fn the_active_set_is_described() {
        let set = RuleSet::embedded_default().unwrap();
        let id = set.rules()[0].meta.rule_id.clone();
        let active = crate::rules::active::ActiveSet::describe(&set, &AlertPolicy::default(), 7);
        let m = Metrics::new([(id, "n".into())]);
        m.rule_set.set_active(&active);
        let text = m.render();
        let info = format!("sensor_rule_set_info{{version=\"{}\"}} 1\n", active.version);
        assert!(text.contains(&info), "{text}");
        assert!(
            text.contains("sensor_rule_set_load_milliseconds 7\n"),
            "{text}"
        );
    }
}
