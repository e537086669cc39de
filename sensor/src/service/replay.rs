//! `sensor replay`: evaluate rules over ECS JSON lines and write alerts.
//!
//! Each non-blank input line must be a JSON object (an ECS event: nested,
//! dotted or mixed keys). A line that is not is reported with its line
//! number, counted as malformed and skipped: one bad line never stops a
//! replay. Every (event, rule) match of a single-event rule produces one
//! alert line, in input order and, per event, in rule order.
//!
//! Sequence rules see the events in `@timestamp` order, then input order
//! (Elasticsearch's ordinal with the input as implicit tiebreaker): the
//! events some step, missing step or `until` of a sequence rule matches are
//! kept (shared, not copied per rule) while the input is read, then sorted
//! and fed to the same [`SequenceRunner`] the live sensor uses. Their alerts
//! (a shell and one building block per event, see
//! [`build_sequence_alerts`](crate::output::alert::build_sequence_alerts))
//! follow the single-event alerts, in completion order. An event without a
//! parseable `@timestamp` takes no part in sequences (counted).
//!
//! The input may also be one JSON array of event objects (what
//! Elasticsearch's bulk fixtures and many exports hold) instead of JSON
//! lines; its elements are numbered from 1 like lines.
//!
//! [`run_query`] is the other mode (`sensor replay --query`): one EQL query
//! (event query or sequence, with `| head N` / `| tail N`) over the events,
//! answered the way an Elasticsearch EQL search answers it — events, or
//! sequences, ordered by the timestamp field, then a tiebreaker field, then
//! input order, limited by the pipes and `size`. It runs the same compiled
//! queries and the same [`SequenceEngine`] as rules do, so it is also how
//! Elasticsearch's own EQL QA specs are run against this engine
//! (`cargo xtask eql-qa`).

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, Write};

use serde_json::Value;

use std::rc::Rc;

use crate::eql::ast::Statement;
use crate::eql::compile::FieldType;
use crate::eql::dates::DateFormat;
use crate::eql::document::{AliasedDocument, FieldAliases};
use crate::eql::lexer::{self, Tok};
use crate::eql::sample::{SampleEngine, SampleMode};
use crate::eql::sequence::{Ordinal, SequenceEngine, DEFAULT_MAX_PENDING};
use crate::eql::{Compiled, Document, EqlError, FieldRef, JsonDocument, SequenceStats};
use crate::output::alert::AlertWriter;
use crate::rules::sequences::{interested, RunMode, SequenceRunner};
use crate::rules::{RuleIndex, RuleSet};

/// Counters of one replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Sequences completed (each wrote a shell and its building blocks).
    pub sequences: u64,
    /// Events a sequence rule needed but without a usable `@timestamp`.
    pub no_timestamp: u64,
    /// The sequence engines' counters.
    pub sequence: SequenceStats,
    /// Events parsed and evaluated.
    pub events: u64,
    /// Lines that were not a JSON object.
    pub malformed: u64,
    /// Alerts produced (written or not).
    pub alerts: u64,
    /// Alerts that could not be written.
    pub write_errors: u64,
}

impl std::fmt::Display for ReplayStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} events read, {} malformed lines skipped, {} alerts, {} alert write errors, {} sequences ({} events without @timestamp; {} rejected by maxspan, {} ended by until, {} voided by a missing event, {} expired, {} evicted, peak {} pending)",
            self.events,
            self.malformed,
            self.alerts,
            self.write_errors,
            self.sequences,
            self.no_timestamp,
            self.sequence.rejected_maxspan,
            self.sequence.dropped_until,
            self.sequence.dropped_missing,
            self.sequence.expired,
            self.sequence.evicted,
            self.sequence.peak_pending
        )
    }
}

/// How each event meets the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluation {
    /// Only the rules the rule index names for the event (the default).
    Indexed,
    /// Every rule, and every sequence step for the interest check: the
    /// reference the index is tested against.
    Exhaustive,
}

/// Replays `input` through `rules`, writing alerts to `alerts` and one
/// diagnostic line per malformed input line to `diagnostics`. Fails only if
/// reading the input fails.
pub fn replay<R: BufRead>(
    input: R,
    rules: &RuleSet,
    alerts: &mut AlertWriter,
    diagnostics: &mut dyn Write,
) -> io::Result<ReplayStats> {
    replay_with(input, rules, alerts, diagnostics, Evaluation::Indexed)
}

/// [`replay`] with the given [`Evaluation`].
pub fn replay_with<R: BufRead>(
    mut input: R,
    rules: &RuleSet,
    alerts: &mut AlertWriter,
    diagnostics: &mut dyn Write,
    evaluation: Evaluation,
) -> io::Result<ReplayStats> {
    let mut stats = ReplayStats::default();
    let has_sequences = !rules.sequences().is_empty();
    let mut kept: Vec<(Ordinal, Rc<Value>)> = Vec::new();
    let mut events = EventReader::new(&mut input)?;
    while let Some((line_no, event)) = events.next_object(&mut stats.malformed, diagnostics)? {
        stats.events += 1;
        let doc = JsonDocument::new(&event);
        let mut write = |rule: &crate::rules::Rule| {
            stats.alerts += 1;
            if alerts.write_alert(&event, &rule.meta).is_err() {
                stats.write_errors += 1;
            }
        };
        let wanted = match evaluation {
            Evaluation::Indexed => {
                rules.for_each_match(&doc, &mut write);
                has_sequences && interested(rules, &doc)
            }
            Evaluation::Exhaustive => {
                RuleIndex::for_each_match_exhaustive(rules.rules(), &doc, &mut write);
                RuleIndex::interested_exhaustive(rules.sequences(), &doc)
            }
        };
        if wanted {
            match Ordinal::of(&doc, line_no) {
                Some(ord) => kept.push((ord, Rc::new(event))),
                None => stats.no_timestamp += 1,
            }
        }
    }
    if has_sequences {
        kept.sort_by_key(|(ord, _)| *ord);
        let mut runner = SequenceRunner::with_default_cap(rules, RunMode::Replay);
        let mut emit = |rule: &crate::rules::SequenceRule, events: &[&Value]| {
            stats.sequences += 1;
            match alerts.write_sequence(events, &rule.meta) {
                Ok(n) => stats.alerts += n as u64,
                Err(_) => stats.write_errors += 1,
            }
        };
        for (ord, event) in &kept {
            match evaluation {
                Evaluation::Indexed => runner.process(rules, event, *ord, &mut emit),
                Evaluation::Exhaustive => runner.process_exhaustive(rules, event, *ord, &mut emit),
            }
        }
        runner.finish(rules, &mut emit);
        stats.sequence = runner.stats();
    }
    // The input ended: suppressed alerts are written with their counts.
    if alerts.end_suppression().is_err() {
        stats.write_errors += 1;
    }
    if alerts.flush().is_err() {
        stats.write_errors += 1;
    }
    Ok(stats)
}

/// Reads events from JSON lines or from one JSON array of objects (decided
/// by the first non-blank byte: `[` is an array).
struct EventReader<'a, R: BufRead> {
    input: &'a mut R,
    /// The array's elements, when the input is an array.
    array: Option<std::vec::IntoIter<Value>>,
    line: Vec<u8>,
    no: u64,
}

impl<'a, R: BufRead> EventReader<'a, R> {
    fn new(input: &'a mut R) -> io::Result<EventReader<'a, R>> {
        // Skip leading blank bytes, counting the lines they end so that a
        // JSON-lines input keeps its line numbers.
        let mut skipped_lines = 0u64;
        let is_array = loop {
            let buf = input.fill_buf()?;
            if buf.is_empty() {
                break false;
            }
            let blank = buf
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(buf.len());
            skipped_lines += buf[..blank].iter().filter(|&&b| b == b'\n').count() as u64;
            let first = buf.get(blank).copied();
            input.consume(blank);
            if let Some(b) = first {
                break b == b'[';
            }
        };
        let array = if is_array {
            let mut all = Vec::new();
            input.read_to_end(&mut all)?;
            match serde_json::from_slice::<Vec<Value>>(&all) {
                Ok(items) => Some(items.into_iter()),
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the input starts with `[` but is not a JSON array: {e}"),
                    ))
                }
            }
        } else {
            None
        };
        Ok(EventReader {
            input,
            array,
            line: Vec::new(),
            no: if is_array { 0 } else { skipped_lines },
        })
    }

    /// The next JSON object and its line or element number, skipping what
    /// is not one: each is counted in `malformed` and said on one line of
    /// `diagnostics`; `None` at the end.
    fn next_object(
        &mut self,
        malformed: &mut u64,
        diagnostics: &mut dyn Write,
    ) -> io::Result<Option<(u64, Value)>> {
        while let Some((no, parsed)) = self.next_event()? {
            match parsed {
                Ok(v) => return Ok(Some((no, v))),
                Err(why) => {
                    *malformed += 1;
                    let _ = writeln!(diagnostics, "{why}");
                }
            }
        }
        Ok(None)
    }

    /// The next event (its line or element number, and the object or why
    /// it is not one); `None` at the end.
    fn next_event(&mut self) -> io::Result<Option<(u64, Result<Value, String>)>> {
        if let Some(items) = &mut self.array {
            let Some(item) = items.next() else {
                return Ok(None);
            };
            self.no += 1;
            let no = self.no;
            return Ok(Some((
                no,
                match item {
                    v @ Value::Object(_) => Ok(v),
                    _ => Err(format!("element {no}: malformed event: not a JSON object")),
                },
            )));
        }
        loop {
            self.line.clear();
            if self.input.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(None);
            }
            self.no += 1;
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let no = self.no;
            return Ok(Some((
                no,
                match serde_json::from_slice(&self.line) {
                    Ok(v @ Value::Object(_)) => Ok(v),
                    Ok(_) => Err(format!("line {no}: malformed event: not a JSON object")),
                    Err(e) => Err(format!("line {no}: malformed event: {e}")),
                },
            )));
        }
    }
}

/// How `sensor replay --query` reads and orders events.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// The field events are ordered by, a `date` (Elasticsearch's
    /// `timestamp_field`, default `@timestamp`): epoch milliseconds or a
    /// date string. Events without it are left out (counted).
    pub timestamp_field: String,
    /// The field that orders events with the same timestamp (Elasticsearch's
    /// `tiebreaker_field`); input order breaks the remaining ties. Events
    /// without it sort after those with it.
    pub tiebreaker: Option<String>,
    /// Field aliases, as an index mapping declares them.
    pub aliases: FieldAliases,
    /// Most results (events, or sequences) returned: Elasticsearch's `size`
    /// (10 by default there); `None` returns all.
    pub size: Option<usize>,
    /// Most samples per join key of a `sample` query (Elasticsearch's
    /// `max_samples_per_key`, 1 by default there).
    pub max_samples_per_key: usize,
    /// What the index mapping declares (fields, `null_value`s; its aliases
    /// go to `aliases`).
    pub mapping: IndexMapping,
}

impl Default for QueryOptions {
    fn default() -> QueryOptions {
        QueryOptions {
            timestamp_field: "@timestamp".to_owned(),
            tiebreaker: None,
            aliases: FieldAliases::new(),
            size: None,
            max_samples_per_key: 1,
            mapping: IndexMapping::default(),
        }
    }
}

/// The parts of an Elasticsearch index mapping a replay needs: which fields
/// exist, and which replace an indexed `null` by a `null_value`.
#[derive(Debug, Clone, Default)]
pub struct IndexMapping {
    fields: HashSet<String>,
    null_values: Vec<(String, Value)>,
    /// Fields whose mapping type changes how they compare with a constant
    /// (`date`, `date_nanos`, `version`).
    types: HashMap<String, FieldType>,
    /// The `format` of each `date` / `date_nanos` field (the default when
    /// the mapping gives none; the alternatives of every mapping read, as
    /// the input is one index however many mappings describe it).
    date_formats: HashMap<String, DateFormat>,
}

impl IndexMapping {
    /// Reads a mapping (`{"properties": …}`, or `{"mappings": {"properties":
    /// …}}` as `GET <index>/_mapping` shows one index) into `self`; its
    /// `alias` fields go to `aliases`. Several mappings add up.
    pub fn add_json(&mut self, mapping: &Value, aliases: &mut FieldAliases) -> Result<(), String> {
        let root = mapping.get("mappings").unwrap_or(mapping);
        if root.get("properties").and_then(Value::as_object).is_none() {
            return Err("not an index mapping: no `properties` object".to_owned());
        }
        self.add_properties(root, "", aliases)
    }

    fn add_properties(
        &mut self,
        node: &Value,
        prefix: &str,
        aliases: &mut FieldAliases,
    ) -> Result<(), String> {
        let Some(props) = node.get("properties").and_then(Value::as_object) else {
            return Ok(());
        };
        for (name, field) in props {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            if field.get("properties").is_some() {
                self.add_properties(field, &path, aliases)?;
                continue;
            }
            match field.get("type").and_then(Value::as_str) {
                Some("alias") => {
                    let Some(target) = field.get("path").and_then(Value::as_str) else {
                        return Err(format!("alias field `{path}` has no `path`"));
                    };
                    aliases.insert(&path, target);
                }
                ty => {
                    let typed = match ty {
                        Some("date") => Some(FieldType::Date),
                        Some("date_nanos") => Some(FieldType::DateNanos),
                        Some("version") => Some(FieldType::Version),
                        _ => None,
                    };
                    if let Some(t) = typed {
                        self.types.insert(path.clone(), t);
                    }
                    if matches!(typed, Some(FieldType::Date | FieldType::DateNanos)) {
                        let format = field
                            .get("format")
                            .and_then(Value::as_str)
                            .map_or_else(DateFormat::default, DateFormat::new);
                        self.date_formats
                            .entry(path.clone())
                            .and_modify(|f| f.merge(&format))
                            .or_insert(format);
                    }
                    if let Some(v) = field.get("null_value") {
                        self.null_values.push((path.clone(), v.clone()));
                    }
                    if let Some(subs) = field.get("fields").and_then(Value::as_object) {
                        for sub in subs.keys() {
                            self.fields.insert(format!("{path}.{sub}"));
                        }
                    }
                }
            }
            self.fields.insert(path);
        }
        Ok(())
    }

    /// The mapping type of `path`, where it changes comparisons.
    pub fn field_type(&self, path: &str) -> Option<FieldType> {
        self.types.get(path).copied()
    }

    /// The format of a `date` / `date_nanos` field.
    pub fn date_format(&self, path: &str) -> Option<DateFormat> {
        self.date_formats.get(path).cloned()
    }

    /// Whether a mapping was read.
    pub fn is_declared(&self) -> bool {
        !self.fields.is_empty()
    }

    /// Indexes `event` as Elasticsearch would store its values: an explicit
    /// `null` of a field with a `null_value` becomes that value.
    fn fill_null_values(&self, event: &mut Value) {
        for (path, with) in &self.null_values {
            fill_null(event, path, with);
        }
    }
}

/// Replaces explicit nulls at `rest` (a dotted path, resolved like
/// [`JsonDocument`] does: nested objects, dotted keys or both) by `with`.
fn fill_null(v: &mut Value, rest: &str, with: &Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| fill_null(i, rest, with)),
        Value::Object(map) => {
            if let Some(child) = map.get_mut(rest) {
                match child {
                    Value::Null => *child = with.clone(),
                    Value::Array(items) => items
                        .iter_mut()
                        .filter(|i| i.is_null())
                        .for_each(|i| *i = with.clone()),
                    _ => {}
                }
            }
            for (i, b) in rest.bytes().enumerate() {
                if b == b'.' {
                    if let Some(child) = map.get_mut(&rest[..i]) {
                        fill_null(child, &rest[i + 1..], with);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Adds the dotted path of every non-null leaf value of `v` to `out`: the
/// fields dynamic mapping would create when indexing it.
fn collect_paths(v: &Value, prefix: &str, out: &mut HashSet<String>) {
    match v {
        Value::Null => {}
        Value::Array(items) => items.iter().for_each(|i| collect_paths(i, prefix, out)),
        Value::Object(map) => {
            for (k, child) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                collect_paths(child, &path, out);
            }
        }
        _ => {
            if !out.contains(prefix) {
                out.insert(prefix.to_owned());
            }
        }
    }
}

/// Why a query replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query is not valid EQL, or this engine does not evaluate it.
    #[error("{}", .0.render("<query>", .1))]
    Eql(EqlError, String),
    /// Reading the events failed.
    #[error("reading events: {0}")]
    Io(#[from] io::Error),
}

/// Counters of one query replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Events parsed.
    pub events: u64,
    /// Input lines (or array elements) that were not a JSON object.
    pub malformed: u64,
    /// Events left out because they have no usable timestamp.
    pub no_timestamp: u64,
    /// Results returned (events, or sequences).
    pub results: u64,
    /// The sequence engine's counters (sequences only).
    pub sequence: SequenceStats,
}

impl std::fmt::Display for QueryStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} events read, {} malformed skipped, {} without a timestamp left out, {} results",
            self.events, self.malformed, self.no_timestamp, self.results
        )
    }
}

/// One result: an event, or a sequence's events in step order, where a
/// missing-event step (`![...]`) holds `None` (Elasticsearch returns a
/// placeholder event with `"missing": true` there).
pub type QueryMatch = Vec<Option<Rc<Value>>>;

/// A `| head N` or `| tail N` pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pipe {
    Head(usize),
    Tail(usize),
}

/// Splits `src` at its first top-level `|` into the statement and its
/// pipes. Only `head` and `tail` are evaluated; any other pipe is
/// unsupported (Elasticsearch also has none other).
fn split_pipes(src: &str) -> Result<(&str, Vec<Pipe>), EqlError> {
    let tokens = lexer::tokenize(src)?;
    let mut depth = 0i32;
    let Some(first) = tokens.iter().position(|t| {
        match t.tok {
            Tok::LParen | Tok::LBracket => depth += 1,
            Tok::RParen | Tok::RBracket => depth -= 1,
            _ => {}
        }
        depth == 0 && t.tok == Tok::Pipe
    }) else {
        return Ok((src, Vec::new()));
    };
    let mut pipes = Vec::new();
    let mut i = first;
    while tokens[i].tok == Tok::Pipe {
        let name = &tokens[i + 1];
        let kind = match &name.tok {
            Tok::Ident(n) if n.eq_ignore_ascii_case("head") => Pipe::Head as fn(usize) -> Pipe,
            Tok::Ident(n) if n.eq_ignore_ascii_case("tail") => Pipe::Tail,
            Tok::Ident(n) => {
                return Err(EqlError::unsupported(
                    format!("the `{n}` pipe is not supported (only `head` and `tail`)"),
                    name.span,
                ))
            }
            _ => return Err(EqlError::syntax("expected a pipe name", name.span)),
        };
        let arg = &tokens[i + 2];
        let n = match arg.tok {
            Tok::Int(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => {
                return Err(EqlError::syntax(
                    "expected a non-negative integer",
                    arg.span,
                ))
            }
        };
        pipes.push(kind(n));
        i += 3;
    }
    if tokens[i].tok != Tok::Eof {
        return Err(EqlError::syntax(
            "expected `|` or the end of the query",
            tokens[i].span,
        ));
    }
    Ok((&src[..tokens[first].span.start], pipes))
}

/// [`resolve_fields`](crate::eql::compile::resolve_fields) over every query
/// of a statement; a join key the index does not know is an error too
/// (an optional one stays: a missing key is `null`).
fn resolve_statement(
    st: &mut Statement,
    known: &dyn Fn(&str) -> bool,
    strict: bool,
    type_of: &dyn Fn(&str) -> Option<FieldType>,
) -> Result<(), EqlError> {
    use crate::eql::compile::{mark_typed_fields, resolve_fields};
    let resolve = |q: &mut crate::eql::ast::Query| {
        resolve_fields(q, known, strict)?;
        mark_typed_fields(q, type_of);
        Ok::<(), EqlError>(())
    };
    match st {
        Statement::Event(q) => resolve(q),
        Statement::Sequence(s) => {
            let keys =
                s.by.iter()
                    .chain(s.steps.iter().flat_map(|st| st.by.iter()))
                    .chain(s.until.iter().flat_map(|u| u.by.iter()));
            for k in keys {
                if strict && !k.optional && !known(&k.path) {
                    return Err(EqlError::syntax(
                        format!(
                            "unknown field `{}`: no event has it and the mapping does not declare it",
                            k.path
                        ),
                        k.span,
                    ));
                }
            }
            for step in s.steps.iter_mut().chain(s.until.iter_mut()) {
                resolve(&mut step.query)?;
            }
            Ok(())
        }
        Statement::Sample(s) => {
            let keys =
                s.by.iter()
                    .chain(s.filters.iter().flat_map(|st| st.by.iter()));
            for k in keys {
                if strict && !k.optional && !known(&k.path) {
                    return Err(EqlError::syntax(
                        format!("unknown field `{}`: no event has it and the mapping does not declare it", k.path),
                        k.span,
                    ));
                }
            }
            for step in s.filters.iter_mut() {
                resolve(&mut step.query)?;
            }
            Ok(())
        }
    }
}

/// A value of the tiebreaker field, for ordering.
#[derive(Debug, Clone, PartialEq)]
enum TieValue {
    Num(f64),
    Str(String),
    Bool(bool),
    Missing,
}

impl TieValue {
    fn of<D: Document + ?Sized>(doc: &D, field: &FieldRef) -> TieValue {
        let mut out = TieValue::Missing;
        doc.visit(field, &mut |v| {
            out = match v {
                crate::eql::Value::Int(i) => TieValue::Num(i as f64),
                crate::eql::Value::Float(x) => TieValue::Num(x),
                crate::eql::Value::Str(s) => TieValue::Str(s.to_owned()),
                crate::eql::Value::Bool(b) => TieValue::Bool(b),
            };
            true
        });
        out
    }

    /// Ascending, values of one type by value, missing last (Elasticsearch
    /// sorts a missing tiebreaker `_last`).
    fn cmp(&self, o: &TieValue) -> Ordering {
        use TieValue::*;
        let rank = |t: &TieValue| match t {
            Num(_) => 0,
            Str(_) => 1,
            Bool(_) => 2,
            Missing => 3,
        };
        match (self, o) {
            (Num(a), Num(b)) => a.total_cmp(b),
            (Str(a), Str(b)) => a.cmp(b),
            (Bool(a), Bool(b)) => a.cmp(b),
            _ => rank(self).cmp(&rank(o)),
        }
    }
}

/// Runs one EQL query (event query or sequence, with `head`/`tail` pipes)
/// over `input` (JSON lines or a JSON array of objects) and returns the
/// results in Elasticsearch's order: events ascending by timestamp,
/// tiebreaker, input order; sequences in the order they complete (the
/// ordinal of their last event). Malformed input is reported on
/// `diagnostics` and counted, never fatal.
pub fn run_query<R: BufRead>(
    mut input: R,
    query: &str,
    opts: &QueryOptions,
    diagnostics: &mut dyn Write,
) -> Result<(Vec<QueryMatch>, QueryStats), QueryError> {
    let eql_err = |e: EqlError| QueryError::Eql(e, query.to_owned());
    let (statement, pipes) = split_pipes(query).map_err(eql_err)?;
    let mut parsed = crate::eql::parser::parse_statement(statement).map_err(eql_err)?;
    // Which steps of a sequence are positive (in order, runs expanded), to
    // put the missing-event placeholders back in place.
    let layout: Vec<bool> = match &parsed {
        Statement::Sequence(s) => s.steps.iter().map(|st| !st.missing).collect(),
        Statement::Event(_) => Vec::new(),
        Statement::Sample(s) => vec![true; s.filters.len()],
    };
    let is_sample = matches!(parsed, Statement::Sample(_));
    let mut stats = QueryStats::default();
    // Reading the timestamp through an alias `@timestamp` → the timestamp
    // field lets [`Ordinal::of`] (the sequences' own reader) decide what a
    // usable timestamp is, here as live.
    let mut ts_aliases = FieldAliases::new();
    if opts.timestamp_field != "@timestamp" {
        let target = opts
            .aliases
            .target(&opts.timestamp_field)
            .map_or(opts.timestamp_field.as_str(), FieldRef::path);
        ts_aliases.insert("@timestamp", target);
    } else if let Some(t) = opts.aliases.target("@timestamp") {
        ts_aliases.insert("@timestamp", t.path());
    }
    let tiebreaker = opts.tiebreaker.as_deref().map(FieldRef::new);
    let mut rows: Vec<(Ordinal, TieValue, Rc<Value>)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut events = EventReader::new(&mut input)?;
    while let Some((no, mut event)) = events.next_object(&mut stats.malformed, diagnostics)? {
        stats.events += 1;
        opts.mapping.fill_null_values(&mut event);
        collect_paths(&event, "", &mut seen);
        let ord = match Ordinal::of(&AliasedDocument::new(&event, &ts_aliases), no) {
            Some(o) => o,
            // A sample has no order and no time bound: an event without a
            // timestamp still takes part (Elasticsearch samples by key
            // alone), in input order.
            None if is_sample => Ordinal {
                ms: 0,
                sub_ns: 0,
                tie: no,
            },
            None => {
                stats.no_timestamp += 1;
                continue;
            }
        };
        let tie = match &tiebreaker {
            Some(f) => TieValue::of(&AliasedDocument::new(&event, &opts.aliases), f),
            None => TieValue::Missing,
        };
        rows.push((ord, tie, Rc::new(event)));
    }
    rows.sort_by(|a, b| {
        (a.0.ms, a.0.sub_ns)
            .cmp(&(b.0.ms, b.0.sub_ns))
            .then_with(|| a.1.cmp(&b.1))
            .then_with(|| a.0.tie.cmp(&b.0.tie))
    });

    // The index is the whole input: resolve the query's fields against it
    // (and the mapping), as Elasticsearch's analyzer resolves them against
    // the index before the search runs.
    let known = |path: &str| {
        let target = opts.aliases.target(path).map_or(path, FieldRef::path);
        opts.mapping.fields.contains(target) || seen.contains(target)
    };
    let compile = |st: &Statement| match st {
        Statement::Event(q) => crate::eql::compile::compile(q).map(Compiled::Event),
        Statement::Sequence(s) => crate::eql::sequence::compile(s).map(Compiled::Sequence),
        Statement::Sample(s) => crate::eql::sample::compile(s).map(Compiled::Sample),
    };
    // What the engine cannot evaluate at all is said first, whatever the
    // fields.
    if let Err(e) = compile(&parsed) {
        if e.kind == crate::eql::EqlErrorKind::Unsupported {
            return Err(eql_err(e));
        }
    }
    // Unknown plain fields are errors only when a mapping says what the
    // index declares: without one, a field no event has may still be
    // mapped (an ECS index template maps every ECS field).
    let strict = opts.mapping.is_declared();
    let type_of = |path: &str| {
        let target = opts.aliases.target(path).map_or(path, FieldRef::path);
        opts.mapping.field_type(target)
    };
    resolve_statement(&mut parsed, &known, strict, &type_of).map_err(eql_err)?;
    let mut compiled = compile(&parsed).map_err(eql_err)?;
    if let Compiled::Sample(smp) = &mut compiled {
        smp.type_date_keys(&|path: &str| {
            let target = opts.aliases.target(path).map_or(path, FieldRef::path);
            opts.mapping.date_format(target)
        });
    }

    let mut results: Vec<QueryMatch> = Vec::new();
    match &compiled {
        Compiled::Event(q) => {
            for (_, _, event) in &rows {
                if q.matches(&AliasedDocument::new(event.as_ref(), &opts.aliases)) {
                    results.push(vec![Some(event.clone())]);
                }
            }
        }
        Compiled::Sequence(seq) => {
            let mut engine: SequenceEngine<Rc<Value>> = SequenceEngine::new(DEFAULT_MAX_PENDING);
            let mut out = Vec::new();
            for (i, (ord, _, event)) in rows.iter().enumerate() {
                // The sorted position is the ordinal's tiebreak: the
                // tiebreaker field's order, then input order.
                let ord = Ordinal {
                    tie: i as u64,
                    ..*ord
                };
                let doc = AliasedDocument::new(event.as_ref(), &opts.aliases);
                engine.process(seq, &doc, ord, &mut || event.clone(), &mut out);
            }
            engine.finish(seq, &mut out);
            stats.sequence = engine.stats();
            results.extend(out.into_iter().map(|m| {
                let mut events = m.events.into_iter();
                layout
                    .iter()
                    .map(|&positive| if positive { events.next() } else { None })
                    .collect()
            }));
        }
        Compiled::Sample(smp) => {
            let mut engine: SampleEngine<Rc<Value>> =
                SampleEngine::new(SampleMode::Batch, DEFAULT_MAX_PENDING)
                    .with_max_samples_per_key(opts.max_samples_per_key);
            let mut out = Vec::new();
            for (i, (ord, _, event)) in rows.iter().enumerate() {
                let ord = Ordinal {
                    tie: i as u64,
                    ..*ord
                };
                let doc = AliasedDocument::new(event.as_ref(), &opts.aliases);
                engine.process(smp, &doc, ord, &mut || event.clone(), &mut out);
            }
            engine.finish(&mut out);
            stats.sequence = engine.stats();
            results.extend(
                out.into_iter()
                    .map(|m| m.events.into_iter().map(Some).collect()),
            );
        }
    }
    for pipe in &pipes {
        match *pipe {
            Pipe::Head(n) => results.truncate(n),
            Pipe::Tail(n) => {
                let skip = results.len().saturating_sub(n);
                results.drain(..skip);
            }
        }
    }
    if let Some(size) = opts.size {
        if matches!(pipes.last(), Some(Pipe::Tail(_))) {
            let skip = results.len().saturating_sub(size);
            results.drain(..skip);
        } else {
            results.truncate(size);
        }
    }
    stats.results = results.len() as u64;
    Ok((results, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eql::EqlErrorKind;

    /// Events as JSON lines, deliberately out of order.
    const EVENTS: &str = r#"{"kind":"process","@timestamp":2000,"seq":4,"name":"b"}
{"kind":"process","@timestamp":1000,"seq":2,"name":"a"}
{"kind":"file","@timestamp":1000,"seq":1,"name":"a"}

{"kind":"process","@timestamp":3000,"seq":5,"name":"c"}
{"kind":"process","seq":9,"name":"no time"}
not json
{"kind":"process","@timestamp":1000,"seq":3,"name":"a"}
"#;

    fn opts() -> QueryOptions {
        let mut o = QueryOptions {
            tiebreaker: Some("seq".to_owned()),
            ..QueryOptions::default()
        };
        o.aliases.insert("event.category", "kind");
        o
    }

    fn ids(results: &[QueryMatch]) -> Vec<Vec<i64>> {
        results
            .iter()
            .map(|m| {
                m.iter()
                    .map(|e| e.as_ref().map_or(-1, |e| e["seq"].as_i64().unwrap_or(0)))
                    .collect()
            })
            .collect()
    }

    fn run(input: &str, query: &str, o: &QueryOptions) -> (Vec<Vec<i64>>, QueryStats, String) {
        let mut diag = Vec::new();
        let (r, s) = run_query(input.as_bytes(), query, o, &mut diag).expect("query runs");
        (ids(&r), s, String::from_utf8_lossy(&diag).into_owned())
    }

    #[test]
    fn events_come_ordered_by_timestamp_then_tiebreaker_through_aliases() {
        let (got, stats, diag) = run(EVENTS, "process where true", &opts());
        assert_eq!(got, vec![vec![2], vec![3], vec![4], vec![5]]);
        assert_eq!(stats.events, 6);
        assert_eq!(stats.malformed, 1);
        assert_eq!(stats.no_timestamp, 1);
        assert_eq!(stats.results, 4);
        // Line numbers count the blank line.
        assert!(diag.starts_with("line 7: malformed event"), "{diag}");
        // Without a tiebreaker, input order breaks the tie at 1000 ms.
        let o = QueryOptions {
            tiebreaker: None,
            ..opts()
        };
        let (got, _, _) = run(EVENTS, "any where name == \"a\"", &o);
        assert_eq!(got, vec![vec![2], vec![1], vec![3]]);
    }

    #[test]
    fn head_tail_and_size_limit_like_elasticsearch() {
        let o = opts();
        let (got, _, _) = run(EVENTS, "process where true | head 3 | tail 2", &o);
        assert_eq!(got, vec![vec![3], vec![4]]);
        let (got, _, _) = run(EVENTS, "process where true | tail 3", &o);
        assert_eq!(got, vec![vec![3], vec![4], vec![5]]);
        let sized = QueryOptions {
            size: Some(2),
            ..opts()
        };
        let (got, _, _) = run(EVENTS, "process where true", &sized);
        assert_eq!(got, vec![vec![2], vec![3]]);
        // After a tail, size keeps the last results.
        let (got, _, _) = run(EVENTS, "process where true | tail 3", &sized);
        assert_eq!(got, vec![vec![4], vec![5]]);
    }

    #[test]
    fn a_json_array_is_read_like_lines() {
        let array = r#"
          [{"kind":"process","@timestamp":"1970-01-01T00:00:02Z","seq":2},
           {"kind":"process","@timestamp":"1970-01-01T00:00:01Z","seq":1},
           "not an object"]"#;
        let (got, stats, diag) = run(array, "process where true", &opts());
        assert_eq!(got, vec![vec![1], vec![2]]);
        assert_eq!(stats.malformed, 1);
        assert!(diag.starts_with("element 3: malformed event"), "{diag}");
        let mut diag = Vec::new();
        let err = run_query(&b"[{\"a\": 1},"[..], "any where true", &opts(), &mut diag)
            .expect_err("a broken array is an error");
        assert!(matches!(err, QueryError::Io(_)), "{err}");
    }

    #[test]
    fn the_timestamp_field_is_configurable() {
        let input =
            "{\"kind\":\"process\",\"t\":2,\"seq\":1}\n{\"kind\":\"process\",\"t\":1,\"seq\":2}\n";
        let o = QueryOptions {
            timestamp_field: "t".to_owned(),
            ..opts()
        };
        let (got, stats, _) = run(input, "process where true", &o);
        assert_eq!(got, vec![vec![2], vec![1]]);
        assert_eq!(stats.no_timestamp, 0);
    }

    #[test]
    fn sequences_list_their_events_with_missing_steps_in_place() {
        let o = opts();
        let (got, _, _) = run(
            EVENTS,
            "sequence [process where name == \"a\"] [process where name == \"b\"]",
            &o,
        );
        assert_eq!(got, vec![vec![3, 4]]);
        let (got, _, _) = run(
            EVENTS,
            "sequence with maxspan=5s [process where name == \"a\"] ![file where name == \"zzz\"] [process where name == \"b\"]",
            &o,
        );
        assert_eq!(got, vec![vec![3, -1, 4]]);
    }

    #[test]
    fn other_pipes_are_unsupported_and_bad_pipes_are_syntax_errors() {
        for (q, kind) in [
            (
                "process where true | unique name",
                EqlErrorKind::Unsupported,
            ),
            ("process where true | head", EqlErrorKind::Syntax),
            ("process where true | head -1", EqlErrorKind::Syntax),
            ("process where true | head 1 x", EqlErrorKind::Syntax),
        ] {
            let mut diag = Vec::new();
            match run_query(EVENTS.as_bytes(), q, &opts(), &mut diag) {
                Err(QueryError::Eql(e, _)) => assert_eq!(e.kind, kind, "{q}"),
                other => panic!("{q}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_version_field_of_the_mapping_orders_its_ranges_by_version() {
        let mut o = QueryOptions::default();
        o.mapping
            .add_json(
                &serde_json::json!({"properties": {
                    "kind": {"type": "keyword"},
                    "v": {"type": "version"},
                    "ver": {"type": "alias", "path": "v"},
                    "event": {"properties": {"category": {"type": "alias", "path": "kind"}}}
                }}),
                &mut o.aliases,
            )
            .expect("mapping");
        o.tiebreaker = Some("seq".to_owned());
        let input = r#"{"kind":"pkg","@timestamp":1,"seq":1,"v":"1.5.0","s":"1.5.0"}
{"kind":"pkg","@timestamp":2,"seq":2,"v":"1.11.3","s":"1.11.3"}
{"kind":"pkg","@timestamp":3,"seq":3,"v":"1.2.4-SNAPSHOT","s":"1.2.4-SNAPSHOT"}
"#;
        let (got, _, _) = run(input, "pkg where v > \"1.5.0\"", &o);
        assert_eq!(got, vec![vec![2]]);
        let (got, _, _) = run(input, "pkg where ver < \"1.5.0\"", &o);
        assert_eq!(got, vec![vec![3]]);
        // In a sequence step too.
        let (got, _, _) = run(
            input,
            "sequence [pkg where v == \"1.5.0\"] [pkg where v < \"1.5.0\"]",
            &o,
        );
        assert_eq!(got, vec![vec![1, 3]]);
        // A `date_nanos` field compares to the nanosecond, a `date` field
        // (not an ECS one) as a date.
        let mut o = QueryOptions::default();
        o.mapping
            .add_json(
                &serde_json::json!({"properties": {
                    "kind": {"type": "keyword"},
                    "n": {"type": "date_nanos"},
                    "d": {"type": "date"},
                    "event": {"properties": {"category": {"type": "alias", "path": "kind"}}}
                }}),
                &mut o.aliases,
            )
            .expect("mapping");
        o.tiebreaker = Some("seq".to_owned());
        let dated = r#"{"kind":"x","@timestamp":1,"seq":1,"n":"1000.000001","d":"1970-01-01T00:00:01Z"}
{"kind":"x","@timestamp":2,"seq":2,"n":"1000.000002","d":"1000.5"}
"#;
        let (got, _, _) = run(dated, "x where n > \"1970-01-01T00:00:01.000000001Z\"", &o);
        assert_eq!(got, vec![vec![2]]);
        let (got, _, _) = run(dated, "x where d == 1000", &o);
        assert_eq!(got, vec![vec![1], vec![2]]);
        // A field the mapping does not type `version` is a keyword: bytes.
        let (got, _, _) = run(input, "pkg where s > \"1.5.0\"", &o);
        assert_eq!(got, Vec::<Vec<i64>>::new());
    }

    #[test]
    fn a_sample_query_gives_one_sample_per_key_in_key_order_without_timestamps() {
        let mut o = opts();
        o.tiebreaker = Some("seq".to_owned());
        // No @timestamp at all: a sample has no order and no time bound.
        let input = r#"{"kind":"process","seq":1,"host":"b","name":"x"}
{"kind":"process","seq":2,"host":"a","name":"y"}
{"kind":"process","seq":3,"host":"b","name":"y"}
{"kind":"process","seq":4,"host":"a","name":"x"}
{"kind":"process","seq":5,"host":"c","name":"x"}
"#;
        let q = r#"sample by host [process where name == "x"] [process where name == "y"]"#;
        let (got, _, _) = run(input, q, &o);
        // Key order (a before b); each sample's events in filter order; c
        // has no `y` and gives none.
        assert_eq!(got, vec![vec![4, 2], vec![1, 3]]);
        // max_samples_per_key: every distinct combination, in order, up
        // to N per key (here a second `x` of host a gives a second sample
        // sharing its `y`).
        let more = format!(
            "{input}{}\n",
            r#"{"kind":"process","seq":6,"host":"a","name":"x"}"#
        );
        let (got, _, _) = run(&more, q, &o);
        assert_eq!(got, vec![vec![4, 2], vec![1, 3]]);
        o.max_samples_per_key = 2;
        let (got, _, _) = run(&more, q, &o);
        assert_eq!(got, vec![vec![4, 2], vec![6, 2], vec![1, 3]]);
    }

    #[test]
    fn sample_keys_on_a_date_field_are_instants_whatever_the_format() {
        let mut o = opts();
        o.tiebreaker = Some("seq".to_owned());
        for m in [
            serde_json::json!({"properties": {"day": {"type": "date", "format": "dd-MM-yyyy"}}}),
            serde_json::json!({"properties": {"day": {"type": "date", "format": "yyyy-MM-dd"}}}),
        ] {
            o.mapping.add_json(&m, &mut o.aliases).expect("mapping");
        }
        let input = r#"{"kind":"a","seq":1,"day":"17-12-2022"}
{"kind":"b","seq":2,"day":"2022-12-16"}
{"kind":"b","seq":3,"day":"2022-12-17"}
{"kind":"b","seq":4,"day":1671235200000}
"#;
        let q = "sample by day [a where true] [b where true]";
        let (got, _, _) = run(input, q, &o);
        assert_eq!(got, vec![vec![1, 3]]);
        o.max_samples_per_key = 5;
        let (got, _, _) = run(input, q, &o);
        assert_eq!(got, vec![vec![1, 3], vec![1, 4]]);
    }

    #[test]
    fn the_index_decides_which_fields_exist() {
        // `x` is declared by the mapping only, `name` by the events.
        let mut o = QueryOptions::default();
        o.mapping
            .add_json(
                &serde_json::json!({"mappings": {"properties": {
                    "kind": {"type": "keyword"},
                    "x": {"type": "keyword", "null_value": "NULL"},
                    "event": {"properties": {"category": {"type": "alias", "path": "kind"}}}
                }}}),
                &mut o.aliases,
            )
            .expect("mapping");
        o.tiebreaker = Some("seq".to_owned());
        let input = r#"{"kind":"process","@timestamp":1,"seq":1,"x":null}
{"kind":"process","@timestamp":2,"seq":2,"name":"a"}
{"kind":"process","@timestamp":3,"seq":3,"x":[null,"v"]}
"#;
        // An explicit null is indexed as the null_value; a missing field is not.
        let (got, _, _) = run(input, "process where x == \"NULL\"", &o);
        assert_eq!(got, vec![vec![1], vec![3]]);
        let (got, _, _) = run(input, "process where x == null", &o);
        assert_eq!(got, vec![vec![2]]);
        // An unknown optional field is null; a known one without a value is missing.
        let (got, _, _) = run(input, "process where ?nope == null and ?name == null", &o);
        assert_eq!(got, vec![vec![1], vec![3]]);
        // An unknown field is an error, as in Elasticsearch.
        let mut diag = Vec::new();
        match run_query(input.as_bytes(), "process where nope == 1", &o, &mut diag) {
            Err(QueryError::Eql(e, _)) => {
                assert_eq!(e.kind, EqlErrorKind::Syntax);
                assert!(e.message.contains("unknown field `nope`"), "{}", e.message);
            }
            other => panic!("{other:?}"),
        }
        // Without a mapping, a field no event has is only a field without
        // values (the index may map it); `?nope` is still null.
        let (got, _, _) = run(
            input,
            "process where nope == null and ?nope == null",
            &opts(),
        );
        assert_eq!(got.len(), 3);
        // What the engine does not evaluate is said before unknown fields.
        match run_query(input.as_bytes(), "process where nope(x)", &o, &mut diag) {
            Err(QueryError::Eql(e, _)) => assert_eq!(e.kind, EqlErrorKind::Unsupported),
            other => panic!("{other:?}"),
        }
        let bad = IndexMapping::default()
            .add_json(&serde_json::json!({"a": 1}), &mut FieldAliases::new());
        assert!(bad.is_err());
    }

    #[test]
    fn replay_of_rules_reads_a_json_array_too() {
        let rules = RuleSet::embedded_default().expect("seed rule");
        let mut out = AlertWriter::new(Box::new(Vec::new()));
        let mut diag = Vec::new();
        let stats =
            replay(&b"  \n[{\"a\": 1}, 2]"[..], &rules, &mut out, &mut diag).expect("replay");
        assert_eq!(stats.events, 1);
        assert_eq!(stats.malformed, 1);
    }
}
