//! The figures of the active rule set: what its exception lists dropped,
//! per rule and list. Registered with the sensor's other metrics
//! ([`Metrics`](super::metrics::Metrics)), kept apart from its per-event
//! counters.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::metrics::{labels, Labels};
use crate::rules::policy::AlertPolicy;

/// The rule set's families.
#[derive(Debug, Clone, Default)]
pub struct RuleSetMetrics {
    excepted: Family<Labels, Counter>,
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
        m
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
}
