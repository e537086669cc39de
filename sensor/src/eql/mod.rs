//! Native evaluation of Elastic EQL single-event queries
//! (`<category> where <condition>`) with the verdicts Elasticsearch gives.
//!
//! Pipeline: [`lexer`] → [`parser`] (typed [`ast`]) → [`compile`] (once per
//! rule, at load time: wildcard sets, Lucene regexes, exact sets) →
//! [`CompiledQuery::matches`] ([`eval`]) on any [`Document`] — the live
//! sensor's native event or [`JsonDocument`].
//!
//! The semantics are those of `docs/eql.md`; each module
//! documents the part it implements.

pub mod ast;
pub mod compile;
pub mod dates;
pub mod diag;
pub mod document;
pub mod error;
pub mod eval;
mod field_types;
pub mod index;
pub mod lexer;
mod litscan;
pub mod lucene_regex;
mod optimize;
pub mod parser;
pub mod sample;
mod script;
pub mod sequence;
pub mod strset;
pub mod version;
pub mod wildcard;

pub use compile::CompiledQuery;
pub use document::{Document, EcsField, FieldRef, JsonDocument, Value};
pub use error::{EqlError, EqlErrorKind, Span};
pub use index::{field_literals, IndexStats, QueryIndex};
pub use sample::{CompiledSample, SampleEngine};
pub use sequence::{CompiledSequence, SequenceEngine, SequenceStats};

/// Parses a query into its syntax tree.
pub fn parse(src: &str) -> Result<ast::Query, EqlError> {
    parser::parse(src)
}

/// Parses and compiles a query.
pub fn compile_str(src: &str) -> Result<CompiledQuery, EqlError> {
    compile::compile(&parser::parse(src)?)
}

/// Parses and compiles a single-event query, a sequence or a sample.
pub fn compile_statement(src: &str) -> Result<Compiled, EqlError> {
    match parser::parse_statement(src)? {
        ast::Statement::Event(q) => compile::compile(&q).map(Compiled::Event),
        ast::Statement::Sequence(s) => sequence::compile(&s).map(Compiled::Sequence),
        ast::Statement::Sample(s) => sample::compile(&s).map(Compiled::Sample),
    }
}

/// A compiled statement.
#[derive(Debug, Clone)]
pub enum Compiled {
    /// A single-event query.
    Event(CompiledQuery),
    /// A sequence.
    Sequence(CompiledSequence),
    /// A sample.
    Sample(CompiledSample),
}
