//! What happens to a rule's match before it becomes an alert document: the
//! exception lists attached to the rule ([`super::exceptions`]) may drop
//! it, counted per rule and list; the rule's alert suppression
//! ([`super::suppression`]) may count it into an open group. The [`AlertWriter`](crate::output::alert::AlertWriter)
//! asks the policy for every match, live and in replay alike.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::exceptions::{AttachedLists, ExceptionCatalogue, Subject};
use super::suppression::{SuppressionStats, Suppressor};
use super::tuning::Tuning;
use super::RuleSet;

/// The policy of one rule.
#[derive(Debug, Clone, Default)]
pub struct RulePolicy {
    /// Its exception lists.
    pub exceptions: AttachedLists,
    /// Its alert suppression, with its state.
    pub suppression: Option<Suppressor>,
}

/// The policy of every rule of a set.
#[derive(Debug, Clone, Default)]
pub struct AlertPolicy {
    rules: HashMap<String, RulePolicy>,
    /// Matches dropped by an exception, by (rule_id, list_id).
    excepted: BTreeMap<(String, String), u64>,
}

impl AlertPolicy {
    /// The policy of `set` under `tuning`, with `catalogue`'s lists. Returns
    /// it and the warnings to print (a rule file's reference to a list no
    /// file defines). Fails when the configuration names a list that no
    /// file defines.
    pub fn build(
        set: &RuleSet,
        catalogue: &ExceptionCatalogue,
        tuning: &Tuning,
    ) -> Result<(AlertPolicy, Vec<String>), String> {
        let mut policy = AlertPolicy::default();
        let mut warnings = Vec::new();
        let metas = set
            .rules()
            .iter()
            .map(|r| (&r.meta, false))
            .chain(set.sequences().iter().map(|r| (&r.meta, true)));
        for (meta, is_sequence) in metas {
            let configured_suppression = tuning
                .rule_overrides
                .get(&meta.rule_id)
                .and_then(|o| o.alert_suppression.as_ref());
            let suppression = match (configured_suppression, &meta.alert_suppression) {
                (Some(_), _) if is_sequence => {
                    return Err(format!(
                        "rule {}: alert_suppression applies to single-event rules only, this is a sequence rule",
                        meta.rule_id
                    ))
                }
                (None, Some(_)) if is_sequence => {
                    warnings.push(format!(
                        "rule {} ({}) asks for alert suppression, which applies to single-event rules only: not applied",
                        meta.rule_id, meta.name
                    ));
                    None
                }
                (Some(spec), _) | (None, Some(spec)) => Some(
                    spec.compile(meta.interval.as_deref())
                        .map(|s| Suppressor::new(&meta.rule_id, s))
                        .map_err(|e| format!("rule {}: alert_suppression: {e}", meta.rule_id))?,
                ),
                (None, None) => None,
            };
            let own: Vec<String> = meta
                .exceptions_list
                .iter()
                .map(|r| r.list_id.clone())
                .collect();
            let configured = tuning
                .rule_overrides
                .get(&meta.rule_id)
                .and_then(|o| o.exceptions_list.clone())
                .unwrap_or_default();
            let exceptions =
                AttachedLists::resolve(catalogue, &own, &configured, &tuning.global_exceptions)
                    .map_err(|e| format!("rule {}: {e}", meta.rule_id))?;
            for m in &exceptions.missing {
                warnings.push(format!(
                    "rule {} ({}) references exception list {m}, which no exceptions file defines: not applied",
                    meta.rule_id, meta.name
                ));
            }
            if !exceptions.is_empty() || suppression.is_some() {
                policy.rules.insert(
                    meta.rule_id.clone(),
                    RulePolicy {
                        exceptions,
                        suppression,
                    },
                );
            }
        }
        Ok((policy, warnings))
    }

    /// Whether no rule has exceptions.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The policy of one rule, if it has any.
    pub fn rule(&self, rule_id: &str) -> Option<&RulePolicy> {
        self.rules.get(rule_id)
    }

    /// Whether an exception of the rule drops this match (counted).
    pub fn excepted<S: Subject + ?Sized>(&mut self, rule_id: &str, subject: &S) -> bool {
        let Some(rule) = self.rules.get(rule_id) else {
            return false;
        };
        match rule.exceptions.matching(subject) {
            Some(list) => {
                *self
                    .excepted
                    .entry((rule_id.to_owned(), list.list_id.clone()))
                    .or_default() += 1;
                true
            }
            None => false,
        }
    }

    /// Whether an exception of the rule matches any event of a completed
    /// sequence, which is then dropped (counted once).
    pub fn excepted_sequence(&mut self, rule_id: &str, events: &[&Value]) -> bool {
        let Some(rule) = self.rules.get(rule_id) else {
            return false;
        };
        let hit = events
            .iter()
            .find_map(|e| rule.exceptions.matching(*e))
            .map(|l| l.list_id.clone());
        match hit {
            Some(list_id) => {
                *self
                    .excepted
                    .entry((rule_id.to_owned(), list_id))
                    .or_default() += 1;
                true
            }
            None => false,
        }
    }

    /// The suppression state of a rule that has one.
    pub fn suppressor_mut(&mut self, rule_id: &str) -> Option<&mut Suppressor> {
        self.rules.get_mut(rule_id)?.suppression.as_mut()
    }

    /// Whether the rule's alerts are suppressed.
    pub fn suppresses(&self, rule_id: &str) -> bool {
        self.rules
            .get(rule_id)
            .is_some_and(|r| r.suppression.is_some())
    }

    /// Closes the suppression windows ended by `now_ms` (every window when
    /// `None`: the sensor stops); returns the alerts to write again with
    /// their counts.
    pub fn close_windows(&mut self, now_ms: Option<i64>) -> Vec<Value> {
        let mut closed = Vec::new();
        let mut ids: Vec<&String> = self.rules.keys().collect();
        ids.sort();
        let ids: Vec<String> = ids.into_iter().cloned().collect();
        for id in ids {
            if let Some(s) = self.suppressor_mut(&id) {
                match now_ms {
                    Some(now) => s.close_until(now, &mut closed),
                    None => s.close_all(&mut closed),
                }
            }
        }
        closed
    }

    /// Each suppressing rule's counters, by rule_id.
    pub fn suppression_stats(&self) -> Vec<(&str, SuppressionStats)> {
        let mut v: Vec<(&str, SuppressionStats)> = self
            .rules
            .iter()
            .filter_map(|(id, r)| Some((id.as_str(), r.suppression.as_ref()?.stats())))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }

    /// Matches dropped by exceptions: (rule_id, list_id, count).
    pub fn excepted_counts(&self) -> impl Iterator<Item = (&str, &str, u64)> {
        self.excepted
            .iter()
            .map(|((r, l), n)| (r.as_str(), l.as_str(), *n))
    }
}
