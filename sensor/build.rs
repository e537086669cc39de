//! Embeds the eBPF object when it has been built (`cargo xtask build` builds
//! it first, then this crate). Without it the binary still builds, and the
//! live sensor says how to get the programs; the rule engine, `replay` and
//! `rules check` need no kernel side.
//!
//! Also lists the built-in rule pack's files (`rules/defend-for-containers`)
//! for `rules::builtin`, so that a file added to or removed from the pack
//! needs no hand-kept list.

use std::path::{Path, PathBuf};

fn main() {
    embed_ebpf_object();
    list_builtin_pack();
}

fn embed_ebpf_object() {
    println!("cargo::rustc-check-cfg=cfg(embedded_ebpf)");
    println!("cargo:rerun-if-env-changed=SENSOR_EBPF_OBJECT");
    let path = match std::env::var_os("SENSOR_EBPF_OBJECT") {
        Some(p) => PathBuf::from(p),
        None => manifest_dir().join("../target/bpf/bpfel-unknown-none/release/sensor-ebpf"),
    };
    println!("cargo:rerun-if-changed={}", path.display());
    if path.is_file() {
        println!("cargo:rustc-cfg=embedded_ebpf");
        println!("cargo:rustc-env=SENSOR_EBPF_OBJECT={}", path.display());
    }
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default())
}

/// Writes `$OUT_DIR/builtin_d4c.rs`: one `(file name, include_str!(..))`
/// entry per `*.toml` of the pack, in name order. A missing or unreadable
/// pack directory fails the build: the binary promises the pack.
fn list_builtin_pack() {
    let dir = manifest_dir().join("../rules/defend-for-containers");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(e) => {
            println!(
                "cargo::error=cannot read the rule pack {}: {e}",
                dir.display()
            );
            return;
        }
    };
    files.sort();
    let mut out = String::from("&[\n");
    for path in &files {
        let (Some(name), Ok(abs)) = (
            path.file_name().and_then(|n| n.to_str()),
            std::fs::canonicalize(path),
        ) else {
            println!("cargo::error=unusable rule file name {}", path.display());
            return;
        };
        println!("cargo:rerun-if-changed={}", abs.display());
        out.push_str(&format!("    ({name:?}, include_str!({:?})),\n", abs));
    }
    out.push_str("]\n");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::write(Path::new(&out_dir).join("builtin_d4c.rs"), out) {
        println!("cargo::error=cannot write builtin_d4c.rs: {e}");
    }
}
