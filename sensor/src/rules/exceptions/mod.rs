//! Exception lists: Kibana's way of silencing a rule's false positives
//! without editing the rule, evaluated natively with Kibana's semantics.
//!
//! A list holds items; an item holds entries. An alert is suppressed by a
//! list when one of its items matches: every entry of the item holds (AND),
//! the item is not expired (`expire_time` later than the event's
//! `@timestamp`), and, when the item names `os_types`, the event's
//! `host.os.type` (or `host.os.name.caseless`) is one of them. Entry
//! semantics: [`entry`]. File forms: [`format`]. Value lists for `list`
//! entries: [`value_list`].
//!
//! Lists reach rules three ways (see [`AttachedLists`]): the rule's own
//! `exceptions_list` references (by `list_id`), the configuration's
//! per-rule `rule_overrides."<id>".exceptions_list`, and the configuration's
//! `global_exceptions` (applied to every rule on this sensor). A list the
//! configuration names but no file defines is an error; a list a rule file
//! references but no file defines is reported (`sensor rules check`, a
//! start-up warning) and does not stop the rule.
//!
//! For a sequence rule the exception is checked against every event of a
//! completed sequence and drops the sequence when one matches. Kibana
//! instead filters excluded events out of the EQL search before the
//! sequence is matched, so a sequence that could complete with another
//! event in place of an excluded one may be found there and not here.

pub mod entry;
mod format;
pub mod value_list;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use entry::{Entry, Subject};
use format::{Operator, RawEntry, RawFile, RawItem, RawList};
pub use value_list::{ValueList, ValueListSpec};

use crate::eql::wildcard::WildcardPattern;
use crate::eql::{Document, FieldRef};

/// Largest exceptions file read.
pub const MAX_EXCEPTIONS_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Most items across every list.
pub const MAX_ITEMS: usize = 100_000;
/// Most entries in one item (nested sub-entries included).
pub const MAX_ENTRIES_PER_ITEM: usize = 100;
/// Most values of one `match_any` entry.
pub const MAX_MATCH_ANY_VALUES: usize = 10_000;

/// An exceptions file (or a value list) that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("exceptions: {path}: {message}")]
pub struct ExceptionError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ExceptionError {
    pub(crate) fn at(path: &Path, message: String) -> ExceptionError {
        ExceptionError {
            path: path.display().to_string(),
            message,
        }
    }
}

/// One compiled item.
#[derive(Debug, Clone)]
pub struct ExceptionItem {
    /// `item_id` (or `<list_id>#<n>` when the file gives none).
    pub item_id: String,
    /// `name`.
    pub name: String,
    entries: Vec<Entry>,
    os_types: Vec<String>,
    /// `expire_time`, epoch milliseconds.
    expire_ms: Option<i64>,
}

impl ExceptionItem {
    /// Whether the item matches the event at `now_ms`.
    pub fn matches<S: Subject + ?Sized>(&self, subject: &S, now_ms: i64) -> bool {
        if self.expire_ms.is_some_and(|e| e <= now_ms) {
            return false;
        }
        if !self.os_types.is_empty() {
            let os = |field: &str| {
                subject.visit(&FieldRef::new(field), &mut |v| {
                    matches!(v, crate::eql::Value::Str(s) if self.os_types.iter().any(|o| o == s))
                })
            };
            if !os("host.os.type") && !os("host.os.name.caseless") {
                return false;
            }
        }
        self.entries.iter().all(|e| e.matches(subject))
    }
}

/// One compiled exception list.
#[derive(Debug, Clone)]
pub struct ExceptionList {
    /// `list_id`.
    pub list_id: String,
    /// `name`.
    pub name: String,
    /// Kibana's list type (`detection`, `endpoint`, `rule_default`), as
    /// written.
    pub list_type: String,
    /// The file it came from.
    pub source: PathBuf,
    /// A hash of that file's text and of every value list's (part of the
    /// rule set's version).
    pub digest: u64,
    items: Vec<ExceptionItem>,
}

impl ExceptionList {
    /// The first item that matches the event at `now_ms`.
    pub fn matching_item<S: Subject + ?Sized>(
        &self,
        subject: &S,
        now_ms: i64,
    ) -> Option<&ExceptionItem> {
        self.items.iter().find(|i| i.matches(subject, now_ms))
    }

    /// Its items.
    pub fn items(&self) -> &[ExceptionItem] {
        &self.items
    }
}

/// Every loaded exception list, by `list_id`.
#[derive(Debug, Clone, Default)]
pub struct ExceptionCatalogue {
    lists: BTreeMap<String, Arc<ExceptionList>>,
}

impl ExceptionCatalogue {
    /// Loads exception files and directories (a directory's `*.ndjson`,
    /// `*.json` and `*.toml` files, in name order) with the value lists
    /// their `list` entries may name.
    pub fn load_paths(
        paths: &[PathBuf],
        value_lists: &[ValueListSpec],
    ) -> Result<ExceptionCatalogue, ExceptionError> {
        let mut values = BTreeMap::new();
        let mut values_digest = 0u64;
        for spec in value_lists {
            let list = ValueList::load(spec)?;
            values_digest = crate::rules::active::fnv64(values_digest, &list.digest.to_le_bytes());
            if values
                .insert(spec.id.clone(), (spec.list_type.clone(), Arc::new(list)))
                .is_some()
            {
                return Err(ExceptionError::at(
                    &spec.path,
                    format!("value list id {} is declared twice", spec.id),
                ));
            }
        }
        let mut catalogue = ExceptionCatalogue::default();
        let mut items = 0usize;
        for path in expand(paths)? {
            let text = crate::rules::read_text_capped(&path, MAX_EXCEPTIONS_FILE_BYTES)
                .map_err(|e| ExceptionError::at(&path, format!("cannot read: {e}")))?
                .ok_or_else(|| {
                    ExceptionError::at(
                        &path,
                        format!(
                            "larger than {} MiB, the most an exceptions file may be",
                            MAX_EXCEPTIONS_FILE_BYTES >> 20
                        ),
                    )
                })?;
            let raw = if path.extension().is_some_and(|x| x == "toml") {
                format::parse_toml(&text, &path)?
            } else {
                format::parse_ndjson(&text, &path)?
            };
            let digest = crate::rules::active::fnv64(values_digest, text.as_bytes());
            catalogue.add(raw, &path, &values, &mut items, digest)?;
        }
        Ok(catalogue)
    }

    /// Parses one file's text (`toml`: the TOML form, else NDJSON) with no
    /// value lists: for tests and tools.
    pub fn parse(
        text: &str,
        path: &Path,
        toml: bool,
    ) -> Result<ExceptionCatalogue, ExceptionError> {
        let raw = if toml {
            format::parse_toml(text, path)?
        } else {
            format::parse_ndjson(text, path)?
        };
        let mut catalogue = ExceptionCatalogue::default();
        let digest = crate::rules::active::fnv64(0, text.as_bytes());
        catalogue.add(raw, path, &BTreeMap::new(), &mut 0, digest)?;
        Ok(catalogue)
    }

    fn add(
        &mut self,
        raw: RawFile,
        path: &Path,
        values: &BTreeMap<String, (String, Arc<ValueList>)>,
        items: &mut usize,
        digest: u64,
    ) -> Result<(), ExceptionError> {
        for RawList {
            list_id,
            name,
            list_type,
            items: raw_items,
        } in raw.lists
        {
            if list_id.trim().is_empty() {
                return Err(ExceptionError::at(
                    path,
                    "a list with an empty list_id".into(),
                ));
            }
            if let Some(prev) = self.lists.get(&list_id) {
                return Err(ExceptionError::at(
                    path,
                    format!(
                        "list {list_id} is already loaded from {}",
                        prev.source.display()
                    ),
                ));
            }
            *items += raw_items.len();
            if *items > MAX_ITEMS {
                return Err(ExceptionError::at(
                    path,
                    format!("more than {MAX_ITEMS} exception items in all"),
                ));
            }
            let compiled = raw_items
                .into_iter()
                .enumerate()
                .map(|(n, item)| compile_item(item, &list_id, n, values))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|m| ExceptionError::at(path, format!("list {list_id}: {m}")))?;
            self.lists.insert(
                list_id.clone(),
                Arc::new(ExceptionList {
                    name: if name.is_empty() {
                        list_id.clone()
                    } else {
                        name
                    },
                    list_id,
                    list_type,
                    source: path.to_path_buf(),
                    digest,
                    items: compiled,
                }),
            );
        }
        Ok(())
    }

    /// The list with this id.
    pub fn get(&self, list_id: &str) -> Option<&Arc<ExceptionList>> {
        self.lists.get(list_id)
    }

    /// Every list, by id.
    pub fn lists(&self) -> impl Iterator<Item = &Arc<ExceptionList>> {
        self.lists.values()
    }

    /// Whether no list is loaded.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }
}

/// Files under `paths`: a directory's exception files in name order.
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ExceptionError> {
    let mut out = Vec::new();
    for p in paths {
        let meta =
            std::fs::metadata(p).map_err(|e| ExceptionError::at(p, format!("cannot read: {e}")))?;
        if !meta.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut files = Vec::new();
        let entries =
            std::fs::read_dir(p).map_err(|e| ExceptionError::at(p, format!("cannot read: {e}")))?;
        for entry in entries {
            let path = entry
                .map_err(|e| ExceptionError::at(p, format!("cannot read: {e}")))?
                .path();
            let wanted = path
                .extension()
                .is_some_and(|x| x == "ndjson" || x == "json" || x == "toml");
            if wanted && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        out.extend(files);
    }
    Ok(out)
}

fn compile_item(
    item: RawItem,
    list_id: &str,
    n: usize,
    values: &BTreeMap<String, (String, Arc<ValueList>)>,
) -> Result<ExceptionItem, String> {
    let item_id = item
        .item_id
        .clone()
        .unwrap_or_else(|| format!("{list_id}#{}", n + 1));
    let ctx = |m: String| format!("item {item_id}: {m}");
    if item.entries.is_empty() {
        return Err(ctx("no entries (an item needs at least one)".into()));
    }
    let mut count = 0usize;
    let entries = item
        .entries
        .into_iter()
        .map(|e| compile_entry(e, None, values, &mut count))
        .collect::<Result<Vec<_>, String>>()
        .map_err(ctx)?;
    if count > MAX_ENTRIES_PER_ITEM {
        return Err(ctx(format!("more than {MAX_ENTRIES_PER_ITEM} entries")));
    }
    for os in &item.os_types {
        if !["linux", "macos", "windows"].contains(&os.as_str()) {
            return Err(ctx(format!(
                "os_types: {os:?} is not linux, macos or windows"
            )));
        }
    }
    let expire_ms = match &item.expire_time {
        None => None,
        Some(t) => {
            Some(parse_time_ms(t).ok_or_else(|| ctx(format!("expire_time {t:?} is not a date")))?)
        }
    };
    Ok(ExceptionItem {
        item_id,
        name: item.name,
        entries,
        os_types: item.os_types,
        expire_ms,
    })
}

fn compile_entry(
    raw: RawEntry,
    parent: Option<&str>,
    values: &BTreeMap<String, (String, Arc<ValueList>)>,
    count: &mut usize,
) -> Result<Entry, String> {
    *count += 1;
    let field_ref = |field: &str| -> Result<FieldRef, String> {
        if field.trim().is_empty() {
            return Err("an entry with an empty field".into());
        }
        Ok(FieldRef::new(field))
    };
    let negate = |op: Operator| op == Operator::Excluded;
    let in_nested = |what: &str| -> Result<(), String> {
        match parent {
            Some(p) => Err(format!("a {what} entry inside the nested entry {p} (only match, match_any and exists may be nested)")),
            None => Ok(()),
        }
    };
    Ok(match raw {
        RawEntry::Match {
            field,
            operator,
            value,
        } => {
            if value.is_empty() {
                return Err(format!("match entry on {field} with an empty value"));
            }
            Entry::Match {
                field: field_ref(&field)?,
                value,
                negate: negate(operator),
            }
        }
        RawEntry::MatchAny {
            field,
            operator,
            value,
        } => {
            if value.is_empty() || value.iter().any(String::is_empty) {
                return Err(format!(
                    "match_any entry on {field} with no value or an empty one"
                ));
            }
            if value.len() > MAX_MATCH_ANY_VALUES {
                return Err(format!(
                    "match_any entry on {field} with more than {MAX_MATCH_ANY_VALUES} values"
                ));
            }
            Entry::MatchAny {
                field: field_ref(&field)?,
                values: value,
                negate: negate(operator),
            }
        }
        RawEntry::Wildcard {
            field,
            operator,
            value,
        } => {
            in_nested("wildcard")?;
            if value.is_empty() {
                return Err(format!("wildcard entry on {field} with an empty value"));
            }
            Entry::Wildcard {
                field: field_ref(&field)?,
                pattern: WildcardPattern::new_lucene(&value, false),
                negate: negate(operator),
            }
        }
        RawEntry::Exists { field, operator } => Entry::Exists {
            field: field_ref(&field)?,
            negate: negate(operator),
        },
        RawEntry::List {
            field,
            operator,
            list,
        } => {
            in_nested("list")?;
            let Some((configured_type, values)) = values.get(&list.id) else {
                return Err(format!(
                    "the list entry on {field} names value list {:?}, which is not configured: declare it under [[value_lists]] with its id, type and a file of its values",
                    list.id
                ));
            };
            if *configured_type != list.list_type {
                return Err(format!(
                    "the list entry on {field} expects value list {:?} of type {}, it is configured as {configured_type}",
                    list.id, list.list_type
                ));
            }
            Entry::List {
                field: field_ref(&field)?,
                list: values.clone(),
                negate: negate(operator),
            }
        }
        RawEntry::Nested { field, entries } => {
            in_nested("nested")?;
            if entries.is_empty() {
                return Err(format!("nested entry on {field} with no entries"));
            }
            field_ref(&field)?;
            Entry::Nested {
                entries: entries
                    .into_iter()
                    .map(|e| compile_entry(e, Some(&field), values, count))
                    .collect::<Result<_, _>>()?,
                path: field,
            }
        }
    })
}

/// An RFC 3339 date (`2026-03-01T10:00:00.000Z`) as epoch milliseconds.
pub(crate) fn parse_time_ms(text: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(text.trim()).ok()?;
    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(ms).ok()
}

/// The event's `@timestamp` in epoch milliseconds (a date string or a
/// number of milliseconds), else the wall clock.
pub(crate) fn event_time_ms<D: Document + ?Sized>(doc: &D) -> i64 {
    let mut found = None;
    doc.visit(&FieldRef::new("@timestamp"), &mut |v| {
        found = match v {
            crate::eql::Value::Str(s) => parse_time_ms(s),
            crate::eql::Value::Int(i) => Some(i),
            _ => None,
        };
        true
    });
    found.unwrap_or_else(crate::rules::suppression::wall_clock_ms)
}

/// Where a list attached to a rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Attachment {
    /// The rule file's own `exceptions_list`.
    Rule,
    /// The configuration's `rule_overrides."<id>".exceptions_list`.
    Config,
    /// The configuration's `global_exceptions`.
    Global,
}

impl Attachment {
    /// How reports name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Attachment::Rule => "rule",
            Attachment::Config => "config",
            Attachment::Global => "global",
        }
    }
}

/// The lists attached to one rule, in order (rule's own, configured,
/// global), each once.
#[derive(Debug, Clone, Default)]
pub struct AttachedLists {
    /// The lists, with where each was attached.
    pub lists: Vec<(Attachment, Arc<ExceptionList>)>,
    /// `list_id`s the rule file references that no file defines.
    pub missing: Vec<String>,
}

impl AttachedLists {
    /// The lists for a rule: `rule_refs` (its own `exceptions_list`
    /// `list_id`s), `configured` and `global` (list ids from the
    /// configuration; an unknown one is an error).
    pub fn resolve(
        catalogue: &ExceptionCatalogue,
        rule_refs: &[String],
        configured: &[String],
        global: &[String],
    ) -> Result<AttachedLists, String> {
        let mut out = AttachedLists::default();
        let sources = [
            (Attachment::Rule, rule_refs),
            (Attachment::Config, configured),
            (Attachment::Global, global),
        ];
        for (how, ids) in sources {
            for id in ids {
                if out.lists.iter().any(|(_, l)| &l.list_id == id) {
                    continue;
                }
                match catalogue.get(id) {
                    Some(list) => out.lists.push((how, list.clone())),
                    None if how == Attachment::Rule => out.missing.push(id.clone()),
                    None => {
                        return Err(format!(
                            "exception list {id} is not defined by any exceptions file"
                        ))
                    }
                }
            }
        }
        Ok(out)
    }

    /// The first list with an item matching the event.
    pub fn matching<S: Subject + ?Sized>(&self, subject: &S) -> Option<&ExceptionList> {
        if self.lists.is_empty() {
            return None;
        }
        let now = event_time_ms(subject);
        self.lists
            .iter()
            .map(|(_, l)| l.as_ref())
            .find(|l| l.matching_item(subject, now).is_some())
    }

    /// Whether no list is attached.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }
}

#[cfg(test)]
mod tests;
