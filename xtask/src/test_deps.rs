//! Packages the end-to-end tests drive for real (a container runtime, and
//! the web servers the live-detection suite attacks). Installed by name from
//! Debian's archive, like the toolchain, so a fresh CI machine needs nothing
//! else.

use anyhow::Result;

use crate::setup::Apt;

/// Debian packages the end-to-end tests use.
pub const PACKAGES: &[&str] = &[
    "runc",
    // Real docker and containerd containers (xtask/src/engine.rs starts
    // the daemons).
    "docker.io",
    "containerd",
    "util-linux",
    "procps",
    "curl",
    // Live-detection servers (tests/src/webserver.rs).
    "nginx",
    "php8.2-fpm",
    "apache2",
    "libapache2-mod-php8.2",
    "gunicorn",
    "python3-flask",
    "nodejs",
    "tomcat10",
    "default-jre-headless",
];

pub fn ensure() -> Result<()> {
    Apt::default().install(PACKAGES)
}
