//! The deploy manifests as JSON, for the tests that check them
//! (`deploy_manifests.rs`) and run them (`image.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The repository root (the `tests` crate's parent).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Every YAML document of a file as JSON, parsed by PyYAML (the manifest
/// validator's own YAML library, from its venv when `cargo xtask test` made
/// it) so the Rust side needs no YAML crate. Panics with the parser's
/// message: a test fixture that does not parse is a failed test.
pub fn yaml_docs(path: &Path) -> Vec<Value> {
    let venv_python = repo_root().join("target/tools/deploy-check/bin/python");
    let python = if venv_python.is_file() {
        venv_python
    } else {
        PathBuf::from("python3")
    };
    let script = "import json, sys, yaml\n\
                  with open(sys.argv[1], encoding='utf-8') as f:\n    \
                  print(json.dumps([d for d in yaml.safe_load_all(f) if d is not None]))";
    let out = Command::new(&python)
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "{} does not parse as YAML:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout) {
        Ok(Value::Array(docs)) => docs,
        other => panic!("unexpected parse of {}: {other:?}", path.display()),
    }
}
