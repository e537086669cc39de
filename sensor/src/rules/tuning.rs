//! Rule tuning from the sensor's configuration, without editing rule files:
//! disable a rule by its `rule_id`, override its `severity` and
//! `risk_score` (what its alerts carry as `kibana.alert.severity` and
//! `kibana.alert.risk_score`).
//!
//! Every override names a rule by `rule_id`. An id that no rule file
//! defines is an error (a typo must not silently tune nothing); an id of a
//! rule that was loaded but is not evaluated (skipped: kuery, ES|QL, ...)
//! is accepted and has no effect.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{RuleSet, SkippedRule};

/// The severities Kibana accepts (`kibana.alert.severity`).
pub const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// One rule's tuning, as the config file writes it under
/// `[rule_overrides."<rule_id>"]`. Every key optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleOverride {
    /// `false`: the rule is not evaluated (same as listing it in
    /// `disabled_rules`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Replaces the rule's `severity`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Replaces the rule's `risk_score` (0-100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_score: Option<i64>,
    /// Exception lists (`list_id`s) applied to the rule besides its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exceptions_list: Option<Vec<String>>,
    /// Alert suppression for the rule, replacing its own
    /// `[rule.alert_suppression]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_suppression: Option<super::suppression::SuppressionSpec>,
}

impl RuleOverride {
    /// `self` with every key `over` sets taken from `over`.
    pub fn merged_with(&self, over: &RuleOverride) -> RuleOverride {
        RuleOverride {
            enabled: over.enabled.or(self.enabled),
            severity: over.severity.clone().or_else(|| self.severity.clone()),
            risk_score: over.risk_score.or(self.risk_score),
            exceptions_list: over
                .exceptions_list
                .clone()
                .or_else(|| self.exceptions_list.clone()),
            alert_suppression: over
                .alert_suppression
                .clone()
                .or_else(|| self.alert_suppression.clone()),
        }
    }

    /// Checks the values (not whether the rule exists: that is known only
    /// once the rules are loaded).
    pub fn validate(&self) -> Result<(), String> {
        if let Some(s) = &self.severity {
            if !SEVERITIES.contains(&s.as_str()) {
                return Err(format!(
                    "severity {s:?} is not one of {}",
                    SEVERITIES.join(", ")
                ));
            }
        }
        if let Some(r) = self.risk_score {
            if !(0..=100).contains(&r) {
                return Err(format!("risk_score {r} is outside 0..=100"));
            }
        }
        if let Some(s) = &self.alert_suppression {
            s.compile(None)
                .map_err(|e| format!("alert_suppression: {e}"))?;
        }
        Ok(())
    }
}

/// The tuning of a rule set.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Tuning {
    /// Rules not evaluated, by `rule_id`.
    pub disabled_rules: Vec<String>,
    /// Exception files and directories (Kibana NDJSON exports, TOML).
    pub exceptions: Vec<std::path::PathBuf>,
    /// Exception lists (`list_id`s) applied to every rule on this sensor.
    pub global_exceptions: Vec<String>,
    /// Local files of the value lists `list` entries name.
    pub value_lists: Vec<super::exceptions::ValueListSpec>,
    /// Per-rule overrides, by `rule_id`.
    pub rule_overrides: BTreeMap<String, RuleOverride>,
}

impl Tuning {
    /// Whether the rule is disabled.
    pub fn is_disabled(&self, rule_id: &str) -> bool {
        self.disabled_rules.iter().any(|d| d == rule_id)
            || self
                .rule_overrides
                .get(rule_id)
                .is_some_and(|o| o.enabled == Some(false))
    }

    /// Every `rule_id` the tuning names.
    pub fn named_rules(&self) -> impl Iterator<Item = &str> {
        self.disabled_rules
            .iter()
            .map(String::as_str)
            .chain(self.rule_overrides.keys().map(String::as_str))
    }
}

/// A tuning that names a rule no rule file defines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule tuning names rule_id {rule_id}, which no loaded rule file defines")]
pub struct UnknownRule {
    /// The id.
    pub rule_id: String,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// `rule_id`s of the rules left out.
    pub disabled: Vec<String>,
    /// `rule_id`s whose severity or risk score was replaced.
    pub overridden: Vec<String>,
}

/// The rule set with `tuning` applied: disabled rules left out, overrides
/// written into the rules' metadata (so alerts carry them). `skipped`: the
/// rules the loader recognised but does not evaluate (tuning them is
/// allowed).
pub fn apply(
    set: RuleSet,
    skipped: &[SkippedRule],
    tuning: &Tuning,
) -> Result<(RuleSet, Applied), UnknownRule> {
    let known = |id: &str| {
        set.rules().iter().any(|r| r.meta.rule_id == id)
            || set.sequences().iter().any(|r| r.meta.rule_id == id)
            || skipped.iter().any(|s| s.rule_id == id)
    };
    if let Some(id) = tuning.named_rules().find(|id| !known(id)) {
        return Err(UnknownRule {
            rule_id: id.to_owned(),
        });
    }
    if tuning.disabled_rules.is_empty() && tuning.rule_overrides.is_empty() {
        return Ok((set, Applied::default()));
    }
    let mut applied = Applied::default();
    let mut tune = |meta: &mut super::RuleMeta| -> bool {
        if tuning.is_disabled(&meta.rule_id) {
            applied.disabled.push(meta.rule_id.clone());
            return false;
        }
        if let Some(o) = tuning.rule_overrides.get(&meta.rule_id) {
            let mut changed = false;
            if let Some(s) = &o.severity {
                meta.severity = s.clone();
                changed = true;
            }
            if let Some(r) = o.risk_score {
                meta.risk_score = r;
                changed = true;
            }
            if changed {
                applied.overridden.push(meta.rule_id.clone());
            }
        }
        true
    };
    let rules = set
        .rules()
        .iter()
        .cloned()
        .filter_map(|mut r| tune(&mut r.meta).then_some(r))
        .collect();
    let sequences = set
        .sequences()
        .iter()
        .cloned()
        .filter_map(|mut r| tune(&mut r.meta).then_some(r))
        .collect();
    Ok((RuleSet::from_parts(rules, sequences), applied))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SEED: &str = "497a7091-0ebd-44d7-88c4-367ab4d4d852";

    #[test]
    fn disabling_and_overriding_change_the_set_and_the_metadata() {
        let set = RuleSet::embedded_default().unwrap();
        let before = set.rules()[0].meta.clone();
        assert_eq!((before.severity.as_str(), before.risk_score), ("high", 73));

        let mut t = Tuning::default();
        t.rule_overrides.insert(
            SEED.into(),
            RuleOverride {
                severity: Some("low".into()),
                risk_score: Some(21),
                ..RuleOverride::default()
            },
        );
        let (tuned, applied) = apply(set.clone(), &[], &t).unwrap();
        let meta = &tuned.rules()[0].meta;
        assert_eq!((meta.severity.as_str(), meta.risk_score), ("low", 21));
        assert_eq!(applied.overridden, vec![SEED.to_owned()]);

        let t = Tuning {
            disabled_rules: vec![SEED.into()],
            ..Tuning::default()
        };
        let (tuned, applied) = apply(set.clone(), &[], &t).unwrap();
        assert!(tuned.is_empty());
        assert_eq!(applied.disabled, vec![SEED.to_owned()]);

        let mut t = Tuning::default();
        t.rule_overrides.insert(
            SEED.into(),
            RuleOverride {
                enabled: Some(false),
                ..RuleOverride::default()
            },
        );
        assert!(apply(set, &[], &t).unwrap().0.is_empty());
    }

    #[test]
    fn a_tuning_of_an_unknown_rule_is_an_error_and_of_a_skipped_one_is_not() {
        let set = RuleSet::embedded_default().unwrap();
        let t = Tuning {
            disabled_rules: vec!["no-such-rule".into()],
            ..Tuning::default()
        };
        assert_eq!(
            apply(set.clone(), &[], &t).unwrap_err().to_string(),
            "rule tuning names rule_id no-such-rule, which no loaded rule file defines"
        );
        let skipped = [SkippedRule {
            path: "x.toml".into(),
            rule_id: "no-such-rule".into(),
            name: "kuery".into(),
            reason: "kuery".into(),
        }];
        let (tuned, _) = apply(set, &skipped, &t).unwrap();
        assert_eq!(tuned.len(), 1);
    }

    #[test]
    fn overrides_are_validated_and_merged_key_by_key() {
        let bad = RuleOverride {
            severity: Some("urgent".into()),
            ..RuleOverride::default()
        };
        assert!(bad.validate().unwrap_err().contains("\"urgent\""));
        let bad = RuleOverride {
            risk_score: Some(101),
            ..RuleOverride::default()
        };
        assert!(bad.validate().unwrap_err().contains("101"));
        let file = RuleOverride {
            severity: Some("low".into()),
            risk_score: Some(5),
            ..RuleOverride::default()
        };
        let flag = RuleOverride {
            risk_score: Some(50),
            ..RuleOverride::default()
        };
        let m = file.merged_with(&flag);
        assert_eq!(
            (m.severity.as_deref(), m.risk_score),
            (Some("low"), Some(50))
        );
    }
}
