//! The Elastic detection-rules TOML format, as serde types.
//!
//! Only what the sensor uses or reports is typed; unknown keys are ignored so
//! that newer rule files still load (detection-rules adds keys over time).

use serde::{Deserialize, Serialize};

/// A rule file: `[metadata]` and `[rule]`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RuleFile {
    #[serde(default)]
    pub metadata: Metadata,
    pub rule: RawRule,
}

/// `[metadata]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Metadata {
    /// `creation_date`, e.g. `2026/02/06`.
    pub creation_date: Option<String>,
    /// `updated_date`.
    pub updated_date: Option<String>,
    /// `integration`, e.g. `["cloud_defend"]`.
    #[serde(default)]
    pub integration: Vec<String>,
    /// `maturity`, e.g. `production`.
    pub maturity: Option<String>,
    /// `min_stack_version`.
    pub min_stack_version: Option<String>,
}

/// `[rule]` as written.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RawRule {
    pub name: String,
    pub rule_id: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub risk_score: i64,
    pub language: Option<String>,
    #[serde(rename = "type")]
    pub rule_type: Option<String>,
    pub query: Option<toml::Spanned<String>>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub index: Vec<String>,
    #[serde(default)]
    pub author: Vec<String>,
    pub license: Option<String>,
    pub from: Option<String>,
    pub interval: Option<String>,
    pub timestamp_override: Option<String>,
    #[serde(default)]
    pub threat: Vec<Threat>,
    #[serde(default)]
    pub exceptions_list: Vec<ExceptionListRef>,
    pub alert_suppression: Option<super::suppression::SuppressionSpec>,
}

/// One `[[rule.exceptions_list]]` entry: a reference to a Kibana exception
/// list (matched to loaded lists by `list_id`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct ExceptionListRef {
    /// Kibana's saved-object id of the list.
    #[serde(default)]
    pub id: String,
    /// The list's `list_id`.
    pub list_id: String,
    /// `single` or `agnostic`.
    #[serde(default)]
    pub namespace_type: String,
    /// `detection`, `endpoint` or `rule_default`.
    #[serde(rename = "type", default)]
    pub list_type: String,
}

/// One `[[rule.threat]]` entry (MITRE ATT&CK mapping).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Threat {
    /// `MITRE ATT&CK`.
    pub framework: String,
    /// The tactic.
    pub tactic: ThreatRef,
    /// Techniques of that tactic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub technique: Vec<Technique>,
}

/// A tactic, technique or subtechnique reference.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct ThreatRef {
    /// e.g. `TA0003`.
    pub id: String,
    /// e.g. `Persistence`.
    pub name: String,
    /// URL.
    pub reference: String,
}

/// A technique with its subtechniques.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Technique {
    /// e.g. `T1505`.
    pub id: String,
    /// e.g. `Server Software Component`.
    pub name: String,
    /// URL.
    pub reference: String,
    /// Subtechniques.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtechnique: Vec<ThreatRef>,
}

/// What the sensor knows about a loaded rule besides its query: used for
/// reporting and alert documents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleMeta {
    /// `rule_id` (UUID).
    pub rule_id: String,
    /// `name`.
    pub name: String,
    /// `description`.
    pub description: String,
    /// `severity` (`low`, `medium`, `high`, `critical`).
    pub severity: String,
    /// `risk_score` (0-100).
    pub risk_score: i64,
    /// `language` (`eql` for loaded rules).
    pub language: String,
    /// `type` (`eql` for loaded rules).
    pub rule_type: String,
    /// `tags`.
    pub tags: Vec<String>,
    /// `index` patterns.
    pub index: Vec<String>,
    /// `author`.
    pub author: Vec<String>,
    /// `license`.
    pub license: Option<String>,
    /// `from`, e.g. `now-6m`.
    pub from: Option<String>,
    /// `interval`, e.g. `5m`.
    pub interval: Option<String>,
    /// `timestamp_override`, e.g. `event.ingested`.
    pub timestamp_override: Option<String>,
    /// MITRE ATT&CK mapping.
    pub threat: Vec<Threat>,
    /// `[metadata]`.
    pub metadata: Metadata,
    /// The query text as written.
    pub query: String,
    /// The exception lists the rule file references.
    pub exceptions_list: Vec<ExceptionListRef>,
    /// `[rule.alert_suppression]`, as written.
    pub alert_suppression: Option<super::suppression::SuppressionSpec>,
}
