//! Embeds the eBPF object when it has been built (`cargo xtask build` builds
//! it first, then this crate). Without it the binary still builds, and the
//! live sensor says how to get the programs; the rule engine, `replay` and
//! `rules check` need no kernel side.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(embedded_ebpf)");
    println!("cargo:rerun-if-env-changed=SENSOR_EBPF_OBJECT");
    let path = match std::env::var_os("SENSOR_EBPF_OBJECT") {
        Some(p) => PathBuf::from(p),
        None => {
            let manifest =
                PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
            manifest.join("../target/bpf/bpfel-unknown-none/release/sensor-ebpf")
        }
    };
    println!("cargo:rerun-if-changed={}", path.display());
    if path.is_file() {
        println!("cargo:rustc-cfg=embedded_ebpf");
        println!("cargo:rustc-env=SENSOR_EBPF_OBJECT={}", path.display());
    }
}
