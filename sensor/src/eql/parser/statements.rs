//! The statements around a condition: `sequence` (its `by` keys,
//! `with maxspan`, steps, `until`, missing-event steps) and `sample`, as
//! Elasticsearch's grammar writes them; the condition itself is the
//! parent's.

use super::super::ast::{Field, JoinKey, SampleQuery, SequenceQuery, SequenceStep};
use super::super::error::EqlError;
use super::super::lexer::{Tok, Token};
use super::{Parser, MAX_SAMPLE_FILTERS, MAX_STEPS};

impl Parser {
    /// `sequence [by keys] [with maxspan=N unit] steps [until step]`.
    pub(super) fn sequence(&mut self) -> Result<SequenceQuery, EqlError> {
        let start = self.advance().span; // `sequence`
        let mut by = Vec::new();
        let mut maxspan_ms = None;
        if self.is_kw("by") {
            self.advance();
            by = self.join_keys()?;
        }
        if self.is_kw("with") {
            self.advance();
            maxspan_ms = Some(self.maxspan()?);
            if self.is_kw("by") {
                return Err(EqlError::syntax(
                    "`by` must come before `with maxspan` in a sequence",
                    self.peek().span,
                ));
            }
        }
        let mut steps: Vec<SequenceStep> = Vec::new();
        while matches!(self.peek().tok, Tok::LBracket | Tok::Other('!' | '-')) {
            let (step, runs) = self.step(true)?;
            if steps.len() + runs > MAX_STEPS {
                return Err(EqlError::syntax(
                    format!("a sequence may have at most {MAX_STEPS} steps"),
                    step.span,
                ));
            }
            for _ in 0..runs {
                steps.push(step.clone());
            }
        }
        let mut until = None;
        if self.is_kw("until") {
            self.advance();
            let (step, _) = self.step(false)?;
            until = Some(step);
        }
        if steps.len() < 2 {
            return Err(EqlError::syntax(
                "a sequence needs at least two steps (`[...]`)",
                start.to(self.peek().span),
            ));
        }
        if steps.iter().all(|s| s.missing) {
            return Err(EqlError::syntax(
                "a sequence needs at least one step that is not a missing event (`![...]`)",
                start,
            ));
        }
        same_key_count(&by, steps.iter().chain(until.iter()), "step")?;
        let end = self.expect_end("`[`, `![`, `until` or end of query")?;
        Ok(SequenceQuery {
            by,
            maxspan_ms,
            steps,
            until,
            span: start.to(end),
        })
    }

    /// `sample [by keys] [q] [by keys] [q] [by keys] ...` (Elasticsearch's
    /// `sample: SAMPLE joinKeys? joinTerm*`; no `with`, no missing events).
    pub(super) fn sample(&mut self) -> Result<SampleQuery, EqlError> {
        let start = self.advance().span; // `sample`
        let mut by = Vec::new();
        if self.is_kw("by") {
            self.advance();
            by = self.join_keys()?;
        }
        let mut filters: Vec<SequenceStep> = Vec::new();
        while self.peek().tok == Tok::LBracket || matches!(self.peek().tok, Tok::Other('!' | '-')) {
            if matches!(self.peek().tok, Tok::Other(_)) {
                return Err(EqlError::syntax(
                    "a sample has no missing events (`![...]` is for sequences)",
                    self.peek().span,
                ));
            }
            let (filter, runs) = self.step(false)?;
            if runs != 1 {
                return Err(EqlError::syntax(
                    "`runs` is for sequence steps, not sample filters",
                    filter.span,
                ));
            }
            filters.push(filter);
            if filters.len() > MAX_SAMPLE_FILTERS {
                return Err(EqlError::unsupported(
                    format!(
                        "a sample with more than {MAX_SAMPLE_FILTERS} filters is not evaluated"
                    ),
                    self.tokens[self.pos.saturating_sub(1)].span,
                ));
            }
        }
        if self.is_kw("with") || self.is_kw("until") {
            return Err(self.unexpected("`[` or end of query (a sample has no `with` or `until`)"));
        }
        if filters.len() < 2 {
            return Err(EqlError::syntax(
                "a sample needs at least two filters (`[...]`)",
                start.to(self.peek().span),
            ));
        }
        let n = by.len() + filters[0].by.len();
        if n == 0 {
            return Err(EqlError::syntax(
                "a sample needs join keys (`sample by ...` or `[...] by ...`)",
                start,
            ));
        }
        same_key_count(&by, filters.iter(), "filter")?;
        let end = self.expect_end("`[` or end of query")?;
        Ok(SampleQuery {
            by,
            filters,
            span: start.to(end),
        })
    }

    /// `name =` (after `with`); returns the token after `=`.
    pub(super) fn with_param(&mut self, name: &str, context: &str) -> Result<Token, EqlError> {
        if !self.is_kw(name) {
            return Err(self.unexpected(&format!("`{name}` after {context}`with`")));
        }
        self.advance();
        if self.peek().tok != Tok::Assign {
            return Err(self.unexpected(&format!("`=` after `{name}`")));
        }
        self.advance();
        Ok(self.advance())
    }

    /// `maxspan=N unit` (after `with`).
    pub(super) fn maxspan(&mut self) -> Result<u64, EqlError> {
        let t = self.with_param("maxspan", "")?;
        let n = match t.tok {
            Tok::Int(n) if n >= 0 => n as u64,
            _ => {
                return Err(EqlError::syntax(
                    "expected a non-negative integer time span (e.g. `5s`)",
                    t.span,
                ))
            }
        };
        let u = self.peek().clone();
        let unit = match &u.tok {
            Tok::Ident(w) => unit_ms(w),
            _ => None,
        };
        let Some(unit) = unit else {
            return Err(EqlError::syntax(
                "expected a time unit (`ms`, `s`, `m`, `h` or `d`) after the time span",
                u.span,
            ));
        };
        self.advance();
        n.checked_mul(unit)
            .ok_or_else(|| EqlError::syntax("time span too large", t.span.to(u.span)))
    }

    /// `field, field, ...` after `by`.
    pub(super) fn join_keys(&mut self) -> Result<Vec<Field>, EqlError> {
        self.in_keys = true;
        let keys = self.join_key_list();
        self.in_keys = false;
        keys
    }

    pub(super) fn join_key_list(&mut self) -> Result<Vec<Field>, EqlError> {
        let mut keys = vec![self.field()?];
        while self.peek().tok == Tok::Comma {
            self.advance();
            keys.push(self.field()?);
        }
        Ok(keys)
    }

    /// `[query] [by keys] [with runs=N]` or `![query] [by keys]`; returns the
    /// step and its run count.
    pub(super) fn step(&mut self, allow_missing: bool) -> Result<(SequenceStep, usize), EqlError> {
        let start = self.peek().span;
        let mut missing = false;
        // `![q]`; `-[q]` is the spelling of Elasticsearch's first release
        // of missing events (its QA suite still uses it).
        if matches!(self.peek().tok, Tok::Other('!' | '-')) {
            if !allow_missing {
                return Err(EqlError::syntax("`until` cannot be a missing event", start));
            }
            missing = true;
            self.advance();
        }
        if self.peek().tok != Tok::LBracket {
            return Err(self.unexpected("`[` to start a sequence step"));
        }
        self.advance();
        let query = self.event_body()?;
        if self.peek().tok != Tok::RBracket {
            return Err(self.unexpected("`]` to end the sequence step"));
        }
        let mut end = self.advance().span;
        let mut by = Vec::new();
        if self.is_kw("by") {
            self.advance();
            by = self.join_keys()?;
            end = self.tokens[self.pos.saturating_sub(1)].span;
        }
        let mut runs = 1usize;
        if self.is_kw("with") {
            self.advance();
            let t = self.with_param("runs", "a step's ")?;
            runs = match t.tok {
                Tok::Int(n) if (1..=100).contains(&n) => n as usize,
                _ => {
                    return Err(EqlError::syntax(
                        "`runs` must be an integer from 1 to 100",
                        t.span,
                    ))
                }
            };
            end = t.span;
        }
        Ok((
            SequenceStep {
                query,
                by,
                missing,
                span: start.to(end),
            },
            runs,
        ))
    }
}

/// `ms`, `s`, `m`, `h`, `d` in milliseconds.
fn unit_ms(unit: &str) -> Option<u64> {
    Some(match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    })
}

/// Every step (or filter) joins on as many keys as the first: the shared
/// `by` keys plus its own. `what` names the part in the error.
fn same_key_count<'a>(
    by: &[JoinKey],
    mut parts: impl Iterator<Item = &'a SequenceStep>,
    what: &str,
) -> Result<(), EqlError> {
    let Some(first) = parts.next() else {
        return Ok(());
    };
    let n = by.len() + first.by.len();
    for part in parts {
        if by.len() + part.by.len() != n {
            return Err(EqlError::syntax(
                format!(
                    "inconsistent number of join keys: {} here, {n} in the first {what}",
                    by.len() + part.by.len()
                ),
                part.span,
            ));
        }
    }
    Ok(())
}
