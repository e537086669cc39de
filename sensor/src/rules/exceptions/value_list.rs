//! Value lists for `list` entries. In Kibana a value list lives in its own
//! indices and an exception entry names it by id; the sensor has no Kibana,
//! so each list an entry names must be given locally: a text file of one
//! value per line (what Kibana's value-list import takes and its export
//! gives), declared in the configuration with its id and type:
//!
//! ```toml
//! [[value_lists]]
//! id = "trusted-ips"
//! type = "ip_range"
//! path = "/etc/sensor/lists/trusted-ips.txt"
//! ```
//!
//! Types: `keyword` (exact, case-sensitive), `ip` (the same address,
//! however written) and `ip_range` (CIDR blocks, `a-b` ranges or single
//! addresses). Kibana's other types (`text`, numbers, dates, ...) are refused
//! with an error naming the list: an exception the sensor cannot evaluate
//! as Kibana would is never applied approximately. Blank lines are skipped;
//! a line that is not of the list's type is an error with its line number.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::entry::{ip_in_range, IpRange};
use super::ExceptionError;

/// Largest value-list file read.
pub const MAX_VALUE_LIST_BYTES: u64 = 16 * 1024 * 1024;

/// The types a local value list may have.
pub const VALUE_LIST_TYPES: [&str; 3] = ["keyword", "ip", "ip_range"];

/// A value list as the configuration declares it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ValueListSpec {
    /// The id exception entries name (`list.id`).
    pub id: String,
    /// `keyword`, `ip` or `ip_range`.
    #[serde(rename = "type")]
    pub list_type: String,
    /// The file: one value per line.
    pub path: PathBuf,
}

/// A loaded value list.
#[derive(Debug, Clone)]
pub struct ValueList {
    /// Its id.
    pub id: String,
    /// A hash of its file's text.
    pub digest: u64,
    values: Values,
}

#[derive(Debug, Clone)]
enum Values {
    Keyword(HashSet<String>),
    Ip(HashSet<IpAddr>),
    IpRange(Vec<IpRange>),
}

impl ValueList {
    /// Reads the file the spec names.
    pub fn load(spec: &ValueListSpec) -> Result<ValueList, ExceptionError> {
        let text = crate::rules::read_text_capped(&spec.path, MAX_VALUE_LIST_BYTES)
            .map_err(|e| ExceptionError::at(&spec.path, format!("cannot read: {e}")))?
            .ok_or_else(|| {
                ExceptionError::at(
                    &spec.path,
                    format!(
                        "larger than {} MiB, the most a value list may be",
                        MAX_VALUE_LIST_BYTES >> 20
                    ),
                )
            })?;
        ValueList::parse(&spec.id, &spec.list_type, &text, &spec.path)
    }

    /// Parses `text` (one value per line) as a list of `list_type`.
    pub fn parse(
        id: &str,
        list_type: &str,
        text: &str,
        path: &Path,
    ) -> Result<ValueList, ExceptionError> {
        let lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty());
        let bad = |n: usize, line: &str| {
            ExceptionError::at(
                path,
                format!("line {n}: {line:?} is not a value of type {list_type}"),
            )
        };
        let values = match list_type {
            "keyword" => Values::Keyword(lines.map(|(_, l)| l.to_owned()).collect()),
            "ip" => Values::Ip(
                lines
                    .map(|(n, l)| l.parse::<IpAddr>().map_err(|_| bad(n, l)))
                    .collect::<Result<_, _>>()?,
            ),
            "ip_range" => Values::IpRange(
                lines
                    .map(|(n, l)| IpRange::parse(l).ok_or_else(|| bad(n, l)))
                    .collect::<Result<_, _>>()?,
            ),
            other => {
                return Err(ExceptionError::at(
                    path,
                    format!(
                        "value list {id}: type {other:?} is not supported locally (supported: {})",
                        VALUE_LIST_TYPES.join(", ")
                    ),
                ))
            }
        };
        Ok(ValueList {
            digest: crate::rules::active::fnv64(0, text.as_bytes()),
            id: id.to_owned(),
            values,
        })
    }

    /// Whether the list holds `value`.
    pub fn contains(&self, value: &str) -> bool {
        match &self.values {
            Values::Keyword(set) => set.contains(value),
            Values::Ip(set) => value.parse::<IpAddr>().is_ok_and(|a| set.contains(&a)),
            Values::IpRange(ranges) => value
                .parse::<IpAddr>()
                .is_ok_and(|a| ranges.iter().any(|r| ip_in_range(a, r))),
        }
    }

    /// How many values.
    pub fn len(&self) -> usize {
        match &self.values {
            Values::Keyword(s) => s.len(),
            Values::Ip(s) => s.len(),
            Values::IpRange(r) => r.len(),
        }
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
