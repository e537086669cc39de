//! Rule packs compiled into the binary, named `builtin:<pack>` wherever a
//! rules path is accepted (`--rules`, `SENSOR_RULES`, the config file's
//! `rules`, `rules check`, `replay --rules`).
//!
//! - `builtin:d4c`: Elastic's 49 Defend-for-Containers rules
//!   (`rules/defend-for-containers`, unchanged, from one pinned
//!   detection-rules commit: see `rules/README.md`);
//! - `builtin:seed`: one of them, *Web Server Exploitation Detected via
//!   Defend for Containers*, the sensor's default when no rules are named.
//!
//! The rules are Elastic's, under the Elastic License 2.0
//! (`rules/LICENSE-Elastic-License-2.0.txt`, NOTICE).

use std::path::{Path, PathBuf};

/// What starts a built-in pack's name.
pub const PREFIX: &str = "builtin:";

/// The seed rule's file in the Defend-for-Containers pack.
pub const SEED_FILE: &str = "persistence_suspicious_webserver_child_process_execution.toml";

/// `(file name, text)` of every rule of the Defend-for-Containers pack, in
/// name order (listed by `build.rs` from `rules/defend-for-containers`).
const D4C: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/builtin_d4c.rs"));

/// One rule file of a built-in pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinFile {
    /// The pack's name (`d4c`, `seed`).
    pub pack: &'static str,
    /// The file's name in the pack.
    pub name: &'static str,
    /// The rule file's text, as Elastic publishes it.
    pub text: &'static str,
}

impl BuiltinFile {
    /// How the file is named in messages and alerts: `builtin:<pack>/<file>`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("{PREFIX}{}/{}", self.pack, self.name))
    }
}

/// The names of the packs, for messages.
pub const PACKS: [&str; 2] = ["seed", "d4c"];

/// The pack `path` names, when it starts with [`PREFIX`]: `Some(Ok(files))`
/// for a known pack, `Some(Err(name))` for an unknown one, `None` for an
/// ordinary path (a file literally named `builtin:x` is still reachable as
/// `./builtin:x`).
pub fn pack_named(path: &Path) -> Option<Result<Vec<BuiltinFile>, String>> {
    let name = path.to_str()?.strip_prefix(PREFIX)?;
    let files = |pack: &'static str, keep: &dyn Fn(&str) -> bool| {
        D4C.iter()
            .filter(|(file, _)| keep(file))
            .map(|&(name, text)| BuiltinFile { pack, name, text })
            .collect()
    };
    Some(match name {
        "d4c" => Ok(files("d4c", &|_| true)),
        "seed" => Ok(files("seed", &|f| f == SEED_FILE)),
        other => Err(other.to_owned()),
    })
}

/// The message for a `builtin:` name that is no pack.
pub fn unknown_pack(name: &str) -> String {
    format!(
        "no built-in rule pack `{name}` (built-in packs: {})",
        PACKS.map(|n| format!("{PREFIX}{n}")).join(", ")
    )
}

/// The seed rule's text.
pub fn seed_text() -> &'static str {
    D4C.iter()
        .find(|(name, _)| *name == SEED_FILE)
        .map_or("", |(_, text)| text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_hold_the_pinned_files() {
        let d4c = pack_named(Path::new("builtin:d4c")).and_then(Result::ok);
        assert_eq!(d4c.as_ref().map(Vec::len), Some(49));
        let seed = pack_named(Path::new("builtin:seed")).and_then(Result::ok);
        assert_eq!(
            seed.map(|f| f.iter().map(|f| f.path()).collect::<Vec<_>>()),
            Some(vec![PathBuf::from(format!("builtin:seed/{SEED_FILE}"))])
        );
        assert!(seed_text().contains("497a7091-0ebd-44d7-88c4-367ab4d4d852"));
        assert_eq!(
            pack_named(Path::new("builtin:linux")),
            Some(Err("linux".to_owned()))
        );
        assert_eq!(pack_named(Path::new("./builtin:d4c")), None);
        assert_eq!(pack_named(Path::new("/etc/sensor/rules")), None);
    }
}
