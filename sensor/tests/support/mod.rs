//! What the integration tests share: where Elastic's larger rule catalogues
//! are, when the machine has them.

use std::path::PathBuf;

/// The environment variable naming Elastic's Linux and cross-platform
/// catalogues: a directory with `linux/` and `cross-platform/` in it (the
/// `rules/` directory of a detection-rules checkout). `cargo xtask test`
/// sets it when the shared rule corpus (`rules/elastic`) is beside the
/// workspace, as on CI.
pub const CATALOGUE_VAR: &str = "SENSOR_ELASTIC_RULES";

/// The catalogue directory, or `None` when the variable is unset: the test
/// then returns without checking anything (`cargo xtask test` says in one
/// line that these tests did not run). With `CI=true` an unset variable
/// fails the test instead, and a set variable that does not name a
/// catalogue always does.
pub fn elastic_catalogue() -> Option<PathBuf> {
    let Some(dir) = std::env::var_os(CATALOGUE_VAR).map(PathBuf::from) else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "{CATALOGUE_VAR} is not set: CI runs the catalogue tests"
        );
        eprintln!("{CATALOGUE_VAR} is not set: catalogue test not run");
        return None;
    };
    for sub in ["linux", "cross-platform"] {
        assert!(
            dir.join(sub).is_dir(),
            "{CATALOGUE_VAR}={} has no {sub}/ directory",
            dir.display()
        );
    }
    Some(dir)
}
