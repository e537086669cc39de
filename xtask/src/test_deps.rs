//! Packages the end-to-end tests drive for real (a container runtime, and
//! the web servers the live-detection suite attacks). Installed by name from
//! Debian's archive, like the toolchain, so a fresh CI machine needs nothing
//! else.

use anyhow::Result;

use crate::setup::Apt;

/// Debian packages the end-to-end tests use.
pub const PACKAGES: &[&str] = &["runc", "util-linux", "procps", "curl"];

pub fn ensure() -> Result<()> {
    Apt::default().install(PACKAGES)
}
