//! The two file forms of exception lists, read into the same raw types:
//!
//! - Kibana's export (`POST /api/exception_lists/_export`, or a rules
//!   export with its exception lists): NDJSON, one JSON object per line —
//!   a list (`list_id`, `name`, `type`, ...), its items (`item_id`,
//!   `list_id`, `entries`, `os_types`, `expire_time`, ...), and a closing
//!   summary line (`exported_exception_list_count`,
//!   `exported_exception_list_item_count`, ...) whose counts are checked, so
//!   a cut export is an error rather than a silently shorter list. Rule
//!   lines of a rules export (`rule_id`) are skipped. Files ending in
//!   `.ndjson` or `.json`.
//! - A TOML form for hand-written lists (files ending in `.toml`), with the
//!   same keys:
//!
//! ```toml
//! [[list]]
//! list_id = "ci-runners"
//! name = "CI runners"
//!
//! [[list.item]]
//! name = "git from the CI user"
//! entries = [
//!   { field = "process.name", operator = "included", type = "match", value = "git" },
//!   { field = "user.name", operator = "included", type = "match_any", value = ["ci", "build"] },
//! ]
//! ```

use std::path::Path;

use serde::Deserialize;
use serde_json::Value as Json;

use super::ExceptionError;

/// `included` / `excluded`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum Operator {
    Included,
    Excluded,
}

/// `list` of a `list` entry.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct RawListRef {
    pub id: String,
    #[serde(rename = "type")]
    pub list_type: String,
}

/// One entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum RawEntry {
    Match {
        field: String,
        operator: Operator,
        value: String,
    },
    MatchAny {
        field: String,
        operator: Operator,
        value: Vec<String>,
    },
    Wildcard {
        field: String,
        operator: Operator,
        value: String,
    },
    Exists {
        field: String,
        operator: Operator,
    },
    List {
        field: String,
        operator: Operator,
        list: RawListRef,
    },
    Nested {
        field: String,
        entries: Vec<RawEntry>,
    },
}

/// An exception list's header.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct RawList {
    pub list_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub list_type: String,
    /// Items (TOML form only; the NDJSON form has them on lines of their own).
    #[serde(default, rename = "item")]
    pub items: Vec<RawItem>,
}

/// One exception item.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct RawItem {
    #[serde(default)]
    pub item_id: Option<String>,
    /// Given on every NDJSON item; implied by the enclosing list in TOML.
    #[serde(default)]
    pub list_id: Option<String>,
    #[serde(default)]
    pub name: String,
    pub entries: Vec<RawEntry>,
    #[serde(default)]
    pub os_types: Vec<String>,
    #[serde(default)]
    pub expire_time: Option<String>,
}

/// Lists and their items, as read from one file.
#[derive(Debug, Default)]
pub(super) struct RawFile {
    pub lists: Vec<RawList>,
}

impl RawFile {
    fn list_mut(&mut self, list_id: &str) -> &mut RawList {
        let i = match self.lists.iter().position(|l| l.list_id == list_id) {
            Some(i) => i,
            None => {
                self.lists.push(RawList {
                    list_id: list_id.to_owned(),
                    name: String::new(),
                    list_type: String::new(),
                    items: Vec::new(),
                });
                self.lists.len() - 1
            }
        };
        &mut self.lists[i]
    }
}

/// Reads Kibana's NDJSON export.
pub(super) fn parse_ndjson(text: &str, path: &Path) -> Result<RawFile, ExceptionError> {
    let mut file = RawFile::default();
    let (mut items, mut lists) = (0u64, 0u64);
    let mut summary: Option<(u64, u64)> = None;
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() {
            continue;
        }
        let at = |m: String| ExceptionError::at(path, format!("line {n}: {m}"));
        if summary.is_some() {
            return Err(at("a line after the export's summary line".into()));
        }
        let value: Json = serde_json::from_str(line).map_err(|e| at(format!("not JSON: {e}")))?;
        let Json::Object(obj) = &value else {
            return Err(at("not a JSON object".into()));
        };
        if obj.contains_key("exported_exception_list_count") {
            let count = |k: &str| obj.get(k).and_then(Json::as_u64).unwrap_or(0);
            summary = Some((
                count("exported_exception_list_count"),
                count("exported_exception_list_item_count"),
            ));
        } else if obj.contains_key("item_id") {
            let item: RawItem = serde_json::from_value(value)
                .map_err(|e| at(format!("invalid exception item: {e}")))?;
            let Some(list_id) = item.list_id.clone() else {
                return Err(at("exception item without list_id".into()));
            };
            file.list_mut(&list_id).items.push(item);
            items += 1;
        } else if obj.contains_key("rule_id") || obj.contains_key("exported_count") {
            // A rules export's rule lines and summary: not exceptions.
        } else if obj.contains_key("list_id") {
            let list: RawList = serde_json::from_value(value)
                .map_err(|e| at(format!("invalid exception list: {e}")))?;
            let entry = file.list_mut(&list.list_id);
            entry.name = list.name;
            entry.list_type = list.list_type;
            lists += 1;
        } else {
            return Err(at(
                "neither an exception list, an item nor an export summary".into(),
            ));
        }
    }
    if let Some((want_lists, want_items)) = summary {
        if (want_lists, want_items) != (lists, items) {
            return Err(ExceptionError::at(
                path,
                format!(
                    "the export's summary counts {want_lists} lists and {want_items} items, the file holds {lists} and {items}: is it cut?"
                ),
            ));
        }
    }
    Ok(file)
}

/// Reads the TOML form.
pub(super) fn parse_toml(text: &str, path: &Path) -> Result<RawFile, ExceptionError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TomlFile {
        #[serde(default)]
        list: Vec<RawList>,
    }
    let parsed: TomlFile = toml::from_str(text)
        .map_err(|e| ExceptionError::at(path, e.to_string().trim_end().to_owned()))?;
    for l in &parsed.list {
        if let Some(other) = l
            .items
            .iter()
            .filter_map(|i| i.list_id.as_deref())
            .find(|id| *id != l.list_id)
        {
            return Err(ExceptionError::at(
                path,
                format!("an item of list {} says list_id = {other:?}", l.list_id),
            ));
        }
    }
    Ok(RawFile { lists: parsed.list })
}
