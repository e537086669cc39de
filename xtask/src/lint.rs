//! `cargo xtask lint`, also the first step of `cargo xtask test`: the
//! workspace's lints (`[workspace.lints]` in Cargo.toml) enforced, not only
//! configured.
//!
//! 1. `cargo fmt --all --check`;
//! 2. clippy over every host crate and target, warnings denied;
//! 3. clippy over the kernel programs (`sensor-ebpf`, built for
//!    `bpfel-unknown-none`), warnings denied, with Debian's clippy
//!    (`rust-web-clippy`, the same release as the `rustc-web` that builds
//!    them: rustup's clippy has no bpf `core`).

use std::process::Command;

use anyhow::{Context, Result};

use crate::{cargo, run_cmd, setup, workspace_root};

/// Runs every check; the first that fails stops the run with its output.
pub fn run() -> Result<()> {
    let root = workspace_root();
    let start = std::time::Instant::now();
    run_cmd(
        Command::new(cargo())
            .current_dir(&root)
            .args(["fmt", "--all", "--check"]),
    )
    .context("`cargo fmt --all --check`: run `cargo fmt --all`")?;
    run_cmd(
        Command::new(cargo())
            .current_dir(&root)
            .args([
                "clippy",
                "--workspace",
                "--exclude",
                "sensor-ebpf",
                "--all-targets",
                "--release",
                "--",
                "-D",
                "warnings",
            ])
            .env("SENSOR_EBPF_OBJECT", crate::ebpf_object_path()),
    )
    .context("clippy over the host crates")?;
    let tools = setup::ensure(false)?;
    let bpf_clippy = setup::ensure_bpf_clippy()?;
    run_cmd(
        Command::new(bpf_clippy)
            .current_dir(&root)
            .args([
                "clippy",
                "-p",
                "sensor-ebpf",
                "--bins",
                "--release",
                "--target",
                "bpfel-unknown-none",
                "--",
                "-D",
                "warnings",
            ])
            .env("CARGO", cargo())
            .env("RUSTC", &tools.bpf_rustc)
            .env("RUSTC_BOOTSTRAP", "aya_ebpf")
            .env("CARGO_TARGET_DIR", root.join("target/bpf-clippy"))
            .env_remove("RUSTFLAGS")
            .env_remove("RUSTC_WRAPPER"),
    )
    .context("clippy over the kernel programs (sensor-ebpf)")?;
    eprintln!(
        "xtask: lints passed (fmt, clippy on host crates and kernel programs) in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
