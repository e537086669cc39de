//! Reading one rule file: TOML → [`RawRule`] → supported [`Rule`] or
//! [`SkippedRule`], with errors located in the FILE (an EQL error's position
//! in the query is translated to the file's line and column).

use std::path::{Path, PathBuf};

use super::builtin::{self, BuiltinFile};
use super::model::{RawRule, RuleFile, RuleMeta};
use super::sequences::Correlation;
use super::{Rule, SequenceRule, SkippedRule};
use crate::eql::{self, diag, EqlErrorKind};

/// What kind of problem made a rule file unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleErrorKind {
    /// The file or directory could not be read.
    Io,
    /// Not valid TOML, or required keys missing / of the wrong type.
    Toml,
    /// The EQL query is invalid.
    Eql,
    /// Anything else (duplicate rule id, missing query, ...).
    Invalid,
}

/// A malformed rule file. `Display` is the full rendered message (file,
/// line, column, offending line and caret where known).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{rendered}")]
pub struct RuleError {
    /// The file.
    pub path: PathBuf,
    /// What kind of problem.
    pub kind: RuleErrorKind,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// 1-based column in the file, when known.
    pub column: Option<usize>,
    /// The message without position.
    pub message: String,
    rendered: String,
}

impl RuleError {
    pub(crate) fn invalid(path: &Path, message: String) -> RuleError {
        RuleError {
            path: path.to_path_buf(),
            kind: RuleErrorKind::Invalid,
            line: None,
            column: None,
            rendered: format!("error: {}: {message}", path.display()),
            message,
        }
    }

    fn io(path: &Path, e: &std::io::Error) -> RuleError {
        let message = format!("cannot read: {e}");
        RuleError {
            path: path.to_path_buf(),
            kind: RuleErrorKind::Io,
            line: None,
            column: None,
            rendered: format!("error: {}: {message}", path.display()),
            message,
        }
    }

    fn located(
        kind: RuleErrorKind,
        path: &Path,
        src: &str,
        start: usize,
        end: usize,
        message: String,
    ) -> RuleError {
        let (line, column) = diag::line_col(src, start);
        RuleError {
            path: path.to_path_buf(),
            kind,
            line: Some(line),
            column: Some(column),
            rendered: diag::render(&path.display().to_string(), src, start, end, &message),
            message,
        }
    }

    /// The rendered message (same as `Display`).
    pub fn rendered(&self) -> &str {
        &self.rendered
    }
}

/// A rule file's verdict.
#[derive(Debug, Clone)]
pub enum LoadOutcome {
    /// Compiled and ready.
    Supported(Box<Rule>),
    /// A sequence rule, compiled and ready.
    Sequence(Box<SequenceRule>),
    /// Recognised, not evaluated.
    Unsupported(SkippedRule),
}

/// One rule file to load: on disk, or from a built-in pack.
#[derive(Debug, Clone)]
pub(crate) enum RuleInput {
    /// A file on disk.
    File(PathBuf),
    /// A file of a pack compiled into the binary.
    Builtin(BuiltinFile),
}

impl RuleInput {
    /// How the file is named in messages and alerts.
    pub(crate) fn path(&self) -> PathBuf {
        match self {
            RuleInput::File(p) => p.clone(),
            RuleInput::Builtin(f) => f.path(),
        }
    }

    /// Reads (capped) and loads the rule.
    pub(crate) fn load(&self) -> Result<LoadOutcome, RuleError> {
        match self {
            RuleInput::File(p) => load_file(p),
            RuleInput::Builtin(f) => load_str(f.text, &f.path()),
        }
    }
}

/// Expands the paths given for rules: `builtin:<pack>` into the pack's
/// files, a directory (non-recursively) into its `*.toml` files sorted by
/// name, a file into itself.
pub(crate) fn expand_paths(paths: &[PathBuf]) -> Result<Vec<RuleInput>, RuleError> {
    let mut out = Vec::new();
    for p in paths {
        match builtin::pack_named(p) {
            Some(Ok(files)) => {
                out.extend(files.into_iter().map(RuleInput::Builtin));
                continue;
            }
            Some(Err(name)) => return Err(RuleError::invalid(p, builtin::unknown_pack(&name))),
            None => {}
        }
        let meta = std::fs::metadata(p).map_err(|e| RuleError::io(p, &e))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            for entry in std::fs::read_dir(p).map_err(|e| RuleError::io(p, &e))? {
                let entry = entry.map_err(|e| RuleError::io(p, &e))?;
                let path = entry.path();
                if path.extension().is_some_and(|x| x == "toml") && path.is_file() {
                    files.push(path);
                }
            }
            files.sort();
            out.extend(files.into_iter().map(RuleInput::File));
        } else {
            out.push(RuleInput::File(p.clone()));
        }
    }
    Ok(out)
}

/// Largest rule file loaded. Elastic's largest rules are tens of KiB; the
/// cap keeps a planted or runaway file from costing the sensor its memory or
/// its start-up time (loading is linear in the file's size: see
/// `eql::litscan::ByteIndex`).
pub const MAX_RULE_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Loads one file.
pub fn load_file(path: &Path) -> Result<LoadOutcome, RuleError> {
    match read_text_capped(path, MAX_RULE_FILE_BYTES).map_err(|e| RuleError::io(path, &e))? {
        Some(src) => load_str(&src, path),
        None => Err(RuleError::invalid(
            path,
            format!(
                "the file is larger than {} MiB, the most a rule file may be",
                MAX_RULE_FILE_BYTES / (1024 * 1024)
            ),
        )),
    }
}

/// A whole UTF-8 text file of at most `cap` bytes; `None` when it is
/// larger, told by reading one byte over the cap, never the whole file.
pub fn read_text_capped(path: &Path, cap: u64) -> std::io::Result<Option<String>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut src = String::new();
    file.take(cap + 1).read_to_string(&mut src)?;
    Ok((src.len() as u64 <= cap).then_some(src))
}

/// Byte offset in the file where the query's content starts, if the string
/// in the file is byte-for-byte the query (literal strings always are; basic
/// strings are when they contain no escapes).
fn query_content_offset(src: &str, span: std::ops::Range<usize>, query: &str) -> Option<usize> {
    let raw = src.get(span.clone())?;
    let mut off = if raw.starts_with("'''") || raw.starts_with("\"\"\"") {
        let mut o = 3;
        // TOML trims a newline directly after the opening delimiter.
        if raw[3..].starts_with("\r\n") {
            o += 2;
        } else if raw[3..].starts_with('\n') {
            o += 1;
        }
        o
    } else {
        1
    };
    off += span.start;
    (src.get(off..off + query.len()) == Some(query)).then_some(off)
}

/// Loads one rule from TOML text; `path` names it in messages.
pub fn load_str(src: &str, path: &Path) -> Result<LoadOutcome, RuleError> {
    let file: RuleFile = toml::from_str(src).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        RuleError::located(
            RuleErrorKind::Toml,
            path,
            src,
            span.start,
            span.end,
            format!("invalid rule file: {}", e.message().trim_end()),
        )
    })?;
    let RuleFile { metadata, rule } = file;
    let RawRule {
        name,
        rule_id,
        description,
        severity,
        risk_score,
        language,
        rule_type,
        query,
        tags,
        index,
        author,
        license,
        from,
        interval,
        timestamp_override,
        threat,
        exceptions_list,
        alert_suppression,
    } = rule;
    let language = language.unwrap_or_default();
    let rule_type = rule_type.unwrap_or_default();
    let skipped = |reason: String| {
        Ok(LoadOutcome::Unsupported(SkippedRule {
            path: path.to_path_buf(),
            rule_id: rule_id.clone(),
            name: name.clone(),
            reason,
        }))
    };
    let is_eql = language == "eql" || (language.is_empty() && rule_type == "eql");
    if !is_eql {
        let what = match (language.as_str(), rule_type.as_str()) {
            ("", t) => format!("rule type `{t}`"),
            (l, t) => format!("language `{l}` (rule type `{t}`)"),
        };
        return skipped(format!(
            "{what} is not supported: only EQL rules (single-event, sequence and sample) are evaluated"
        ));
    }
    if !rule_type.is_empty() && rule_type != "eql" {
        return skipped(format!(
            "rule type `{rule_type}` is not supported: only `eql` rules are evaluated"
        ));
    }
    let Some(query) = query else {
        return Err(RuleError::invalid(path, "EQL rule has no `query`".into()));
    };
    let qspan = query.span();
    let query_text = query.into_inner();
    let compiled = match eql::compile_statement(&query_text) {
        Ok(c) => c,
        Err(e) if e.kind == EqlErrorKind::Unsupported => return skipped(e.message),
        Err(e) => {
            return Err(match query_content_offset(src, qspan, &query_text) {
                Some(off) => RuleError::located(
                    RuleErrorKind::Eql,
                    path,
                    src,
                    off + e.span.start,
                    off + e.span.end,
                    format!("invalid EQL query: {}", e.message),
                ),
                None => {
                    // The query string has escapes, so positions in the file
                    // and in the query differ: report within the query.
                    let origin = format!("{} (query)", path.display());
                    let (line, column) = e.line_col(&query_text);
                    let message = format!("invalid EQL query: {}", e.message);
                    RuleError {
                        path: path.to_path_buf(),
                        kind: RuleErrorKind::Eql,
                        line: Some(line),
                        column: Some(column),
                        rendered: diag::render(
                            &origin,
                            &query_text,
                            e.span.start,
                            e.span.end,
                            &message,
                        ),
                        message,
                    }
                }
            });
        }
    };
    let meta = RuleMeta {
        rule_id,
        name,
        description,
        severity,
        risk_score,
        language,
        rule_type,
        tags,
        index,
        author,
        license,
        from,
        interval,
        timestamp_override,
        threat,
        metadata,
        query: query_text,
        exceptions_list,
        alert_suppression,
    };
    Ok(match compiled {
        eql::Compiled::Event(query) => LoadOutcome::Supported(Box::new(Rule {
            meta,
            query,
            source: Some(path.to_path_buf()),
        })),
        eql::Compiled::Sequence(query) => LoadOutcome::Sequence(Box::new(SequenceRule {
            meta,
            query: Correlation::Sequence(query),
            source: Some(path.to_path_buf()),
        })),
        eql::Compiled::Sample(query) => LoadOutcome::Sequence(Box::new(SequenceRule {
            meta,
            query: Correlation::Sample(query),
            source: Some(path.to_path_buf()),
        })),
    })
}
