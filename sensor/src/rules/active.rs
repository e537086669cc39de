//! What the active rule set is, for people and tools: a version (a hash of
//! everything that decides which alerts are written: each rule's id, query,
//! severity and risk score, its exception lists' files and the value lists
//! they use, its suppression), when and how fast it was loaded, and each
//! rule's exceptions and suppression. Shown by `sensor rules check
//! --config`, on the live sensor's stderr at start, and on `/metrics`.

use std::fmt::Write as _;

use super::policy::AlertPolicy;
use super::RuleSet;

/// FNV-1a over `bytes`, continuing from `h` (0 starts afresh).
pub fn fnv64(h: u64, bytes: &[u8]) -> u64 {
    let start = if h == 0 { 0xcbf2_9ce4_8422_2325 } else { h };
    bytes.iter().fold(start, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One active rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveRule {
    /// `rule_id`.
    pub rule_id: String,
    /// `name`.
    pub name: String,
    /// Exception lists: (how attached: rule, config, global; list_id).
    pub exceptions: Vec<(&'static str, String)>,
    /// Lists its file references that no exceptions file defines.
    pub missing_exceptions: Vec<String>,
    /// `group_by=a,b duration=300s missing=suppress`, when suppressed.
    pub suppression: Option<Suppression>,
}

/// A rule's suppression settings, as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    /// The fields.
    pub group_by: Vec<String>,
    /// The window, seconds (milliseconds rounded up).
    pub duration_s: i64,
    /// `suppress` or `doNotSuppress`.
    pub missing_fields_strategy: &'static str,
}

/// The active rule set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSet {
    /// 16 hex digits.
    pub version: String,
    /// When it was loaded, epoch milliseconds.
    pub loaded_at_ms: i64,
    /// How long loading took (rules, tuning, exceptions), milliseconds.
    pub load_ms: u64,
    /// Every rule, in load order (single-event, then sequences).
    pub rules: Vec<ActiveRule>,
}

impl ActiveSet {
    /// Describes `set` under `policy`.
    pub fn describe(set: &RuleSet, policy: &AlertPolicy, load_ms: u64) -> ActiveSet {
        let mut h = fnv64(0, b"sensor rule set v1");
        let mut rules = Vec::with_capacity(set.len());
        let metas = set
            .rules()
            .iter()
            .map(|r| &r.meta)
            .chain(set.sequences().iter().map(|r| &r.meta));
        for meta in metas {
            let mut key = String::new();
            let _ = write!(
                key,
                "\u{1}{}\u{1}{}\u{1}{}\u{1}{}",
                meta.rule_id, meta.query, meta.severity, meta.risk_score
            );
            let rule_policy = policy.rule(&meta.rule_id);
            let mut exceptions = Vec::new();
            let mut missing_exceptions = Vec::new();
            let mut suppression = None;
            if let Some(p) = rule_policy {
                for (how, list) in &p.exceptions.lists {
                    exceptions.push((how.as_str(), list.list_id.clone()));
                    let _ = write!(
                        key,
                        "\u{2}{}\u{2}{}\u{2}{:x}",
                        how.as_str(),
                        list.list_id,
                        list.digest
                    );
                }
                missing_exceptions = p.exceptions.missing.clone();
                if let Some(s) = &p.suppression {
                    let spec = s.spec();
                    let shown = Suppression {
                        group_by: spec.group_by.iter().map(|f| f.path().to_owned()).collect(),
                        duration_s: (spec.duration_ms + 999) / 1000,
                        missing_fields_strategy: if spec.suppress_missing {
                            "suppress"
                        } else {
                            "doNotSuppress"
                        },
                    };
                    let _ = write!(
                        key,
                        "\u{3}{}\u{3}{}\u{3}{}",
                        shown.group_by.join(","),
                        spec.duration_ms,
                        shown.missing_fields_strategy
                    );
                    suppression = Some(shown);
                }
            }
            h = fnv64(h, key.as_bytes());
            rules.push(ActiveRule {
                rule_id: meta.rule_id.clone(),
                name: meta.name.clone(),
                exceptions,
                missing_exceptions,
                suppression,
            });
        }
        ActiveSet {
            version: format!("{h:016x}"),
            loaded_at_ms: super::suppression::wall_clock_ms(),
            load_ms,
            rules,
        }
    }

    /// One line: `rule set <version>: N rules (E with exceptions, S with
    /// suppression), loaded in X ms`.
    pub fn summary(&self) -> String {
        let with_exceptions = self
            .rules
            .iter()
            .filter(|r| !r.exceptions.is_empty())
            .count();
        let with_suppression = self
            .rules
            .iter()
            .filter(|r| r.suppression.is_some())
            .count();
        format!(
            "rule set {}: {} rules ({with_exceptions} with exceptions, {with_suppression} with suppression), loaded at {} in {} ms",
            self.version,
            self.rules.len(),
            super::suppression::iso_ms(self.loaded_at_ms),
            self.load_ms
        )
    }

    /// The summary line, then one line per rule with exceptions or
    /// suppression: `<rule_id>\t<name>\texceptions: <list> (<how>), …\tsuppression: …`.
    pub fn report(&self) -> String {
        let mut out = self.summary();
        out.push('\n');
        for r in &self.rules {
            if r.exceptions.is_empty() && r.suppression.is_none() && r.missing_exceptions.is_empty()
            {
                continue;
            }
            let _ = write!(out, "{}\t{}", r.rule_id, r.name);
            if !r.exceptions.is_empty() || !r.missing_exceptions.is_empty() {
                let lists: Vec<String> = r
                    .exceptions
                    .iter()
                    .map(|(how, id)| format!("{id} ({how})"))
                    .chain(
                        r.missing_exceptions
                            .iter()
                            .map(|id| format!("{id} (rule, missing: not applied)")),
                    )
                    .collect();
                let _ = write!(out, "\texceptions: {}", lists.join(", "));
            }
            if let Some(s) = &r.suppression {
                let _ = write!(
                    out,
                    "\tsuppression: group_by {} for {}s, missing fields: {}",
                    s.group_by.join(", "),
                    s.duration_s,
                    s.missing_fields_strategy
                );
            }
            out.push('\n');
        }
        out
    }
}
