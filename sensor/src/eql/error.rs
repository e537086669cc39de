//! EQL errors: a message, a byte span in the query, and whether the query is
//! wrong (syntax) or valid EQL this engine deliberately does not evaluate
//! (unsupported, e.g. `sequence`). The distinction decides whether a rule
//! file is malformed (load fails) or skipped with a warning.

use std::fmt;

/// A byte range in the query text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// `start..end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// Why a query was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EqlErrorKind {
    /// The query is not valid EQL (or uses a pattern Elasticsearch rejects).
    Syntax,
    /// Valid EQL that this engine does not evaluate (sequences, pipes,
    /// functions, ...). Rules using it are skipped, with this message as reason.
    Unsupported,
}

/// An error in a query, located by byte span.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct EqlError {
    /// Syntax or unsupported.
    pub kind: EqlErrorKind,
    /// Human-readable message (no position).
    pub message: String,
    /// Where in the query.
    pub span: Span,
}

impl EqlError {
    /// A syntax error.
    pub fn syntax(message: impl Into<String>, span: Span) -> EqlError {
        EqlError {
            kind: EqlErrorKind::Syntax,
            message: message.into(),
            span,
        }
    }

    /// An unsupported-feature error.
    pub fn unsupported(message: impl Into<String>, span: Span) -> EqlError {
        EqlError {
            kind: EqlErrorKind::Unsupported,
            message: message.into(),
            span,
        }
    }

    /// 1-based line and column of the error within `query`.
    pub fn line_col(&self, query: &str) -> (usize, usize) {
        super::diag::line_col(query, self.span.start)
    }

    /// Renders the error against the query text it came from, with a caret
    /// under the offending text. `origin` names the source (e.g. `<query>`).
    pub fn render(&self, origin: &str, query: &str) -> String {
        super::diag::render(origin, query, self.span.start, self.span.end, &self.message)
    }
}

impl fmt::Display for EqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (at bytes {}..{} of the query)",
            self.message, self.span.start, self.span.end
        )
    }
}
