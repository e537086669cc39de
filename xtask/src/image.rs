//! `cargo xtask image`: the sensor's container image, built from the
//! repository's Dockerfile by a real docker (xtask/src/engine.rs).
//!
//! The Dockerfile's bases default to what a release build uses
//! (`debian:bookworm` for the builder, `gcr.io/distroless/cc-debian12` at
//! run time). No registry can be reached here, so both are replaced by
//! local equivalents, passed as build arguments:
//!
//! - runtime: what distroless/cc is made of, from Debian's own packages
//!   (`apt-get download` + `dpkg-deb -x` of base-files, netbase, libc6,
//!   libgcc-s1, gcc-12-base), plus /etc/passwd and /etc/group; tagged by
//!   the hash of its reproducible tar;
//! - builder (only for `--from-source`): `debootstrap --variant=minbase
//!   bookworm` from the mirror this host's apt uses, with the host's apt
//!   sources (bookworm-security ships rustc-web); tagged by the hash of
//!   its inputs, since a debootstrap is not byte-reproducible.
//!
//! The sensor binary comes from one of two Dockerfile stages
//! (`SENSOR_FROM`): `prebuilt` copies the binary `cargo xtask build` made
//! on this host (the same recipe; what CI uses: seconds), `source` builds
//! the toolchain, bpf-linker and the sensor inside the image (many minutes
//! on the vfs storage driver). Each base is built once per machine and
//! kept; BuildKit skips the stage not selected and caches the rest.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::engine::{self, content_hash, docker_has_image, reproducible_tar, DOCKER};
use crate::run_cmd;
use crate::setup::{say, Apt};

/// The image `cargo xtask test` builds and the image test runs.
pub const DEFAULT_TAG: &str = "sensor:dev";
const RUNTIME_REPO: &str = "sensor-local/cc-debian12";
const BUILDER_REPO: &str = "sensor-local/debian-bookworm";
/// What gcr.io/distroless/cc-debian12 holds that the sensor needs: glibc
/// (libc, libm), libgcc_s, and the base files.
const RUNTIME_PACKAGES: &[&str] = &["base-files", "netbase", "libc6", "libgcc-s1", "gcc-12-base"];

#[derive(Args, Debug, Default)]
pub struct ImageArgs {
    /// Build the toolchain and the sensor inside the image (slow) instead
    /// of copying the binary `cargo xtask build` made.
    #[arg(long)]
    pub from_source: bool,
    /// The image's tag.
    #[arg(long, default_value = DEFAULT_TAG)]
    pub tag: String,
}

/// A built image and what it cost.
pub struct Built {
    pub tag: String,
    pub size_bytes: u64,
    pub seconds: f64,
}

pub fn run(args: &ImageArgs) -> Result<()> {
    let built = build(args)?;
    println!(
        "{} ({:.1} MiB) built in {:.1}s",
        built.tag,
        built.size_bytes as f64 / (1024.0 * 1024.0),
        built.seconds
    );
    Ok(())
}

pub fn build(args: &ImageArgs) -> Result<Built> {
    let start = Instant::now();
    let root = crate::workspace_root();
    let dir = engine::engine_dir().join("image");
    fs::create_dir_all(&dir)?;
    engine::ensure()?;
    let runtime_base = ensure_runtime_base(&dir)?;
    let mut build_args = vec![format!("RUNTIME_BASE={runtime_base}")];
    if args.from_source {
        let builder = ensure_builder_base(&dir)?;
        build_args.push(format!("BUILDER_BASE={builder}"));
        build_args.push("SENSOR_FROM=source".to_owned());
    } else {
        // The Dockerfile copies this path (kept in the build context by
        // .dockerignore).
        crate::build()?;
        build_args.push("SENSOR_FROM=prebuilt".to_owned());
    }
    let docker_start = Instant::now();
    let mut cmd = Command::new(DOCKER);
    cmd.current_dir(&root)
        .args(["build", "--network", "host", "--progress", "plain"])
        .args(["-t", &args.tag, "-f", "Dockerfile"]);
    for a in &build_args {
        cmd.arg("--build-arg").arg(a);
    }
    cmd.arg(".").env("DOCKER_BUILDKIT", "1");
    say(&format!("docker build {}", build_args.join(" ")));
    run_cmd(&mut cmd).context("building the sensor image")?;
    let out = Command::new(DOCKER)
        .args(["image", "inspect", "-f", "{{.Size}}", &args.tag])
        .output()
        .context("docker image inspect")?;
    let size_bytes = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .with_context(|| format!("no size for {}", args.tag))?;
    let built = Built {
        tag: args.tag.clone(),
        size_bytes,
        seconds: start.elapsed().as_secs_f64(),
    };
    say(&format!(
        "image {} built: {:.1} MiB, {:.1}s in all ({:.1}s docker build)",
        built.tag,
        built.size_bytes as f64 / (1024.0 * 1024.0),
        built.seconds,
        docker_start.elapsed().as_secs_f64()
    ));
    Ok(built)
}

/// `apt-get download`, with one `apt-get update` and a retry when the
/// package lists are missing or stale.
fn apt_download(into: &Path, pkgs: &[&str]) -> Result<()> {
    let download = || {
        run_cmd(
            Command::new("apt-get")
                .current_dir(into)
                .args(["download", "-q"])
                .args(pkgs),
        )
    };
    if download().is_ok() {
        return Ok(());
    }
    say("apt-get download failed; apt-get update and retrying");
    run_cmd(Command::new("apt-get").args(["update", "-q"]))?;
    download().context("downloading the runtime base's packages")
}

/// The distroless/cc stand-in, from Debian's packages.
fn ensure_runtime_base(dir: &Path) -> Result<String> {
    let work = dir.join("runtime-base");
    if work.exists() {
        fs::remove_dir_all(&work)?;
    }
    let debs = work.join("debs");
    let rootfs = work.join("rootfs");
    fs::create_dir_all(&debs)?;
    fs::create_dir_all(&rootfs)?;
    apt_download(&debs, RUNTIME_PACKAGES)?;
    let mut names: Vec<PathBuf> = fs::read_dir(&debs)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    names.sort();
    if names.len() != RUNTIME_PACKAGES.len() {
        bail!(
            "apt-get download gave {} packages for {RUNTIME_PACKAGES:?}",
            names.len()
        );
    }
    for deb in &names {
        run_cmd(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&rootfs))?;
    }
    // Documentation is no part of a runtime image.
    for d in [
        "usr/share/doc",
        "usr/share/man",
        "usr/share/info",
        "usr/share/lintian",
    ] {
        let p = rootfs.join(d);
        if p.exists() {
            fs::remove_dir_all(&p)?;
        }
    }
    // distroless's users: root, nobody and nonroot (65532).
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\n\
         nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
         nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    )?;
    fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n",
    )?;
    for d in ["tmp", "root", "home/nonroot"] {
        fs::create_dir_all(rootfs.join(d))?;
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    let tar = work.join("rootfs.tar");
    reproducible_tar(&rootfs, &tar)?;
    let image = format!("{RUNTIME_REPO}:{}", content_hash(&tar)?);
    if !docker_has_image(&image) {
        say(&format!("docker import {image}"));
        run_cmd(
            Command::new(DOCKER)
                .args([
                    "import",
                    "--message",
                    "local stand-in for distroless/cc-debian12",
                ])
                .arg(&tar)
                .arg(&image),
        )?;
    }
    Ok(image)
}

/// The host's Debian apt sources (deb822), copied into the builder base.
const HOST_SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";

/// The first `URIs:` of the host's Debian sources: the mirror its apt uses.
fn host_mirror(sources: &str) -> Option<String> {
    sources
        .lines()
        .find_map(|l| l.strip_prefix("URIs:"))
        .and_then(|v| v.split_whitespace().next())
        .map(str::to_owned)
}

/// Local certificate authorities the host added
/// (/usr/local/share/ca-certificates/*.crt), by file name.
fn host_local_cas() -> Result<Vec<(String, Vec<u8>)>> {
    let dir = Path::new("/usr/local/share/ca-certificates");
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut cas = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".crt") && e.path().is_file() {
            cas.push((name, fs::read(e.path())?));
        }
    }
    cas.sort();
    Ok(cas)
}

/// `debian:bookworm`, made here with debootstrap.
fn ensure_builder_base(dir: &Path) -> Result<String> {
    let sources = fs::read_to_string(HOST_SOURCES)
        .with_context(|| format!("reading {HOST_SOURCES} (this host's Debian mirror)"))?;
    let mirror =
        host_mirror(&sources).with_context(|| format!("no URIs: line in {HOST_SOURCES}"))?;
    let local_cas = host_local_cas()?;
    let key_file = dir.join("builder-base.key");
    let mut key = format!("debootstrap minbase bookworm\n{sources}").into_bytes();
    for (name, pem) in &local_cas {
        key.extend_from_slice(name.as_bytes());
        key.extend_from_slice(pem);
    }
    fs::write(&key_file, key)?;
    let image = format!("{BUILDER_REPO}:{}", content_hash(&key_file)?);
    if docker_has_image(&image) {
        return Ok(image);
    }
    Apt::default().install(&["debootstrap"])?;
    let rootfs = dir.join("builder-rootfs");
    if rootfs.exists() {
        fs::remove_dir_all(&rootfs)?;
    }
    let start = Instant::now();
    say(&format!(
        "debootstrap bookworm from {mirror} (once per machine)"
    ));
    run_cmd(
        Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&rootfs)
            .arg(&mirror),
    )
    .context("debootstrap of the builder base")?;
    let _ = fs::remove_file(rootfs.join("etc/apt/sources.list"));
    fs::create_dir_all(rootfs.join("etc/apt/sources.list.d"))?;
    fs::write(
        rootfs.join("etc/apt/sources.list.d/debian.sources"),
        &sources,
    )?;
    // The host's own extra certificate authorities, where its network
    // needs them to reach the package registries over HTTPS: installing
    // ca-certificates in the build picks them up like on the host.
    let ca_dir = rootfs.join("usr/local/share/ca-certificates");
    fs::create_dir_all(&ca_dir)?;
    for (name, pem) in &local_cas {
        fs::write(ca_dir.join(name), pem)?;
    }
    // apt's cache from debootstrap is not needed in the image.
    let _ = fs::remove_dir_all(rootfs.join("var/cache/apt/archives"));
    let tar = dir.join("builder-rootfs.tar");
    reproducible_tar(&rootfs, &tar)?;
    say(&format!("docker import {image}"));
    run_cmd(
        Command::new(DOCKER)
            .args(["import", "--message", "local debootstrap of Debian 12"])
            .arg(&tar)
            .arg(&image),
    )?;
    let _ = fs::remove_file(&tar);
    let _ = fs::remove_dir_all(&rootfs);
    say(&format!(
        "builder base {image} made in {:.0}s",
        start.elapsed().as_secs_f64()
    ));
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_mirror_in_deb822_sources() {
        let s = "Types: deb\n# comment\nURIs: http://mirror.example/debian\nSuites: bookworm\n\n\
                 Types: deb\nURIs: http://mirror.example/debian-security\n";
        assert_eq!(
            host_mirror(s).as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(host_mirror("Types: deb\n"), None);
    }
}
