//! Elastic detection rules: loading TOML rule files, deciding which can be
//! evaluated natively, and matching events against the loaded set.
//!
//! A rule is evaluated when it is `language = "eql"` with a single-event
//! `<category> where <condition>` query. Everything else (EQL `sequence`,
//! `kuery`, `esql`, threshold / machine-learning / new-terms rules, ...) is
//! recognised, reported as unsupported with the reason, and skipped — never
//! silently dropped. A file that is not valid TOML, lacks required keys, or
//! holds an invalid EQL query is an error that names the file, line and
//! column and shows the offending line with a caret; it is reported for that
//! file and never stops the other files from loading.

pub mod active;
pub mod builtin;
mod check;
pub mod exceptions;
pub mod fields;
mod index;
mod load;
mod model;
pub mod policy;
pub mod prefilter;
pub mod sequences;
pub mod sources;
pub mod suppression;
pub mod tuning;

use std::path::{Path, PathBuf};

pub use check::{check_paths, check_paths_with};
pub use index::RuleIndex;
pub use load::{read_text_capped, LoadOutcome, RuleError, RuleErrorKind, MAX_RULE_FILE_BYTES};
pub use model::{ExceptionListRef, Metadata, RuleMeta, Technique, Threat, ThreatRef};

use crate::eql::{CompiledQuery, Document};

/// File name of the embedded default rule (the seed rule).
pub const EMBEDDED_DEFAULT_NAME: &str = builtin::SEED_FILE;

/// A loaded, compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Identity, severity, MITRE mapping, ...
    pub meta: RuleMeta,
    /// The compiled query.
    pub query: CompiledQuery,
    /// Where it was loaded from (`None` for the embedded default).
    pub source: Option<PathBuf>,
}

impl Rule {
    /// Whether the event matches this rule.
    pub fn matches<D: Document + ?Sized>(&self, doc: &D) -> bool {
        self.query.matches(doc)
    }
}

/// A loaded, compiled sequence (or `sample`) rule. Its state lives in a
/// [`SequenceEngine`](crate::eql::SequenceEngine) or
/// [`SampleEngine`](crate::eql::SampleEngine) owned by the loop that feeds
/// it (see [`sequences`]).
#[derive(Debug, Clone)]
pub struct SequenceRule {
    /// Identity, severity, MITRE mapping, ...
    pub meta: RuleMeta,
    /// The compiled sequence or sample.
    pub query: sequences::Correlation,
    /// Where it was loaded from.
    pub source: Option<PathBuf>,
}

/// The error for a second rule with an already loaded `rule_id`.
fn duplicate(
    file: &Path,
    rule_id: &str,
    rules: &[Rule],
    sequences: &[SequenceRule],
) -> Option<RuleError> {
    let prev = rules
        .iter()
        .map(|r| (&r.meta.rule_id, &r.source))
        .chain(sequences.iter().map(|r| (&r.meta.rule_id, &r.source)))
        .find(|(id, _)| *id == rule_id)?
        .1
        .as_ref()
        .map_or_else(|| "<embedded>".to_string(), |p| p.display().to_string());
    Some(RuleError::invalid(
        file,
        format!("duplicate rule_id {rule_id} (already loaded from {prev})"),
    ))
}

/// A rule the loader recognised but does not evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRule {
    /// The file.
    pub path: PathBuf,
    /// Its `rule_id`.
    pub rule_id: String,
    /// Its `name`.
    pub name: String,
    /// Why it is not evaluated.
    pub reason: String,
}

/// The result of [`RuleSet::load_paths`].
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// The evaluable rules.
    pub ruleset: RuleSet,
    /// The rules that were recognised but skipped, with reasons.
    pub skipped: Vec<SkippedRule>,
    /// The files that could not be loaded (malformed, invalid EQL, duplicate
    /// `rule_id`), one error each; the other files are loaded regardless.
    pub errors: Vec<RuleError>,
}

/// An ordered set of compiled rules, indexed by what their queries can
/// match ([`RuleIndex`]).
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    sequences: Vec<SequenceRule>,
    index: RuleIndex,
}

impl RuleSet {
    /// The set of these rules, in this order, with its index.
    pub fn from_parts(rules: Vec<Rule>, sequences: Vec<SequenceRule>) -> RuleSet {
        let index = RuleIndex::build(&rules, &sequences);
        RuleSet {
            rules,
            sequences,
            index,
        }
    }

    /// The embedded seed rule.
    pub fn embedded_default() -> Result<RuleSet, RuleError> {
        let path = Path::new("<embedded>").join(EMBEDDED_DEFAULT_NAME);
        match load::load_str(builtin::seed_text(), &path)? {
            LoadOutcome::Supported(mut rule) => {
                rule.source = None;
                Ok(RuleSet::from_parts(vec![*rule], Vec::new()))
            }
            LoadOutcome::Sequence(_) => Err(RuleError::invalid(
                &path,
                "the embedded rule is a sequence".into(),
            )),
            LoadOutcome::Unsupported(s) => Err(RuleError::invalid(
                &path,
                format!("the embedded rule is unsupported: {}", s.reason),
            )),
        }
    }

    /// Loads rule files and directories (each directory non-recursively:
    /// its `*.toml` files in name order). A malformed file is listed in
    /// [`LoadReport::errors`] and the others still load; unsupported rules
    /// are listed in [`LoadReport::skipped`]. A second rule with an already
    /// loaded `rule_id` is an error of its file. Fails only when a given path
    /// cannot be read.
    pub fn load_paths(paths: &[PathBuf]) -> Result<LoadReport, RuleError> {
        let mut rules: Vec<Rule> = Vec::new();
        let mut sequences: Vec<SequenceRule> = Vec::new();
        let mut skipped = Vec::new();
        let mut errors = Vec::new();
        for input in load::expand_paths(paths)? {
            let file = input.path();
            let outcome = match input.load() {
                Ok(o) => o,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            match outcome {
                LoadOutcome::Supported(rule) => {
                    if let Some(e) = duplicate(&file, &rule.meta.rule_id, &rules, &sequences) {
                        errors.push(e);
                        continue;
                    }
                    rules.push(*rule);
                }
                LoadOutcome::Sequence(rule) => {
                    if let Some(e) = duplicate(&file, &rule.meta.rule_id, &rules, &sequences) {
                        errors.push(e);
                        continue;
                    }
                    sequences.push(*rule);
                }
                LoadOutcome::Unsupported(s) => {
                    log::warn!(
                        "skipping rule {} ({}) from {}: {}",
                        s.rule_id,
                        s.name,
                        s.path.display(),
                        s.reason
                    );
                    skipped.push(s);
                }
            }
        }
        Ok(LoadReport {
            ruleset: RuleSet::from_parts(rules, sequences),
            skipped,
            errors,
        })
    }

    /// Number of rules (single-event, sequence and sample).
    pub fn len(&self) -> usize {
        self.rules.len() + self.sequences.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.sequences.is_empty()
    }

    /// The single-event rules, in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The sequence rules, in load order.
    pub fn sequences(&self) -> &[SequenceRule] {
        &self.sequences
    }

    /// (name, query) of every loaded rule, single-event then sequence and
    /// sample rules: what the kernel prefilters are derived from.
    pub fn named_queries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.rules
            .iter()
            .map(|r| (r.meta.name.as_str(), r.meta.query.as_str()))
            .chain(
                self.sequences
                    .iter()
                    .map(|r| (r.meta.name.as_str(), r.meta.query.as_str())),
            )
    }

    /// The index of the rules.
    pub fn index(&self) -> &RuleIndex {
        &self.index
    }

    /// The rules the event matches, in load order, evaluating only the rules
    /// the index names for it. Allocates only when a rule matches.
    pub fn matching<D: Document + ?Sized>(&self, doc: &D) -> std::vec::IntoIter<&Rule> {
        let mut matched = Vec::new();
        self.for_each_match(doc, |r| matched.push(r));
        matched.into_iter()
    }

    /// [`RuleSet::matching`] by evaluating every rule, lazily (the reference
    /// the index is tested against).
    pub fn matching_exhaustive<'a, D: Document + ?Sized>(
        &'a self,
        doc: &'a D,
    ) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |r| r.matches(doc))
    }

    /// Callback form of [`RuleSet::matching`]: allocates nothing.
    pub fn for_each_match<'a, D: Document + ?Sized>(
        &'a self,
        doc: &D,
        mut f: impl FnMut(&'a Rule),
    ) {
        self.index.for_each_match(&self.rules, doc, &mut f);
    }

    /// Whether any sequence or sample rule needs to see the event.
    pub fn interested<D: Document + ?Sized>(&self, doc: &D) -> bool {
        self.index.interested(&self.sequences, doc)
    }
}
