//! A real container engine for the end-to-end tests and the image build:
//! Debian's containerd and dockerd, started on this machine if they are not
//! running, plus one small local test image.
//!
//! No image registry can be reached, so nothing is pulled: the test image
//! is a root-filesystem skeleton made here (merged-/usr symlinks, an
//! `/etc/passwd` with root and www-data, the host's `ld.so.cache`), with no
//! binaries of its own. Test containers bind-mount the host's `/usr`
//! read-only over it, so every server installed on the host (python3,
//! nginx, ...) runs inside them unchanged. It is tagged by the hash of its
//! own (reproducible) tar, imported once per machine into docker and into
//! containerd's `sensor-test` namespace, and left there for later runs.
//!
//! dockerd runs the way these machines allow (shared toolchain notes): vfs
//! storage, no iptables, no bridge (containers use `--network none` or
//! `--network host`), and on the containerd started here, so `ctr` and
//! docker share one containerd. Both daemons are detached from the xtask
//! (own session, stdio on log files under `target/engine/`) so they outlive
//! it and serve every later test run on the machine. Idempotent: a daemon
//! that already answers is left alone, and a lock file keeps two xtasks
//! (engineers working side by side) from starting two.

use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::run_cmd;
use crate::setup::{say, Apt};

/// Debian's docker client (a newer one elsewhere on PATH may not speak to
/// Debian's 20.10 daemon the same way).
pub const DOCKER: &str = "/usr/bin/docker";
pub const CTR: &str = "/usr/bin/ctr";
pub const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";
/// containerd namespace for the tests' `ctr` containers and images.
pub const CTR_NAMESPACE: &str = "sensor-test";
/// Repository of the test image; the tag is a content hash.
pub const TEST_IMAGE_REPO: &str = "sensor-test/base";
/// The Debian packages the engine needs.
pub const PACKAGES: &[&str] = &["docker.io", "containerd", "runc"];

/// What is ready after [`ensure`].
pub struct Engine {
    /// `sensor-test/base:<hash>` in docker, and `docker.io/` + that in
    /// containerd's `sensor-test` namespace.
    pub test_image: String,
}

/// The directory holding the daemons' logs and the test image's files.
pub fn engine_dir() -> PathBuf {
    crate::workspace_root().join("target/engine")
}

/// Installs, starts and checks containerd and dockerd, then makes sure the
/// test image is in both.
pub fn ensure() -> Result<Engine> {
    let start = Instant::now();
    Apt::default().install(PACKAGES)?;
    let dir = engine_dir();
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let _lock = Lock::take(Path::new("/run/sensor-engine.lock"))?;
    ensure_containerd(&dir)?;
    ensure_dockerd(&dir)?;
    let test_image = ensure_test_image(&dir)?;
    say(&format!(
        "container engine ready in {:.1}s (test image {test_image})",
        start.elapsed().as_secs_f64()
    ));
    Ok(Engine { test_image })
}

fn answers(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn containerd_answers() -> bool {
    answers(Command::new(CTR).args(["--address", CONTAINERD_SOCKET, "version"]))
}

fn docker_answers() -> bool {
    answers(Command::new(DOCKER).arg("info"))
}

fn ensure_containerd(dir: &Path) -> Result<()> {
    if containerd_answers() {
        return Ok(());
    }
    let log = dir.join("containerd.log");
    say(&format!("starting containerd (log {})", log.display()));
    spawn_detached(Command::new("containerd"), &log)?;
    wait_for(
        "containerd",
        &log,
        Duration::from_secs(30),
        containerd_answers,
    )
}

fn ensure_dockerd(dir: &Path) -> Result<()> {
    if docker_answers() {
        return Ok(());
    }
    let log = dir.join("dockerd.log");
    say(&format!("starting dockerd (log {})", log.display()));
    let mut cmd = Command::new("dockerd");
    cmd.args([
        "--containerd",
        CONTAINERD_SOCKET,
        // Overlay on this machine's own overlay root does not work; vfs
        // copies layers but always works.
        "--storage-driver=vfs",
        // No iptables and no bridge: the tests' containers use
        // `--network none` or the host's loopback, nothing else.
        "--iptables=false",
        "--ip-masq=false",
        "--bridge=none",
    ]);
    spawn_detached(cmd, &log)?;
    wait_for("dockerd", &log, Duration::from_secs(60), docker_answers)
}

/// Starts a daemon in its own session, stdio on `log`, not waited for.
fn spawn_detached(mut cmd: Command, log: &Path) -> Result<()> {
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone()?;
    // SAFETY: setsid() and close_range() are async-signal-safe and touch
    // no memory. The daemon outlives this command, so it must not keep the
    // descriptors this command inherited (a `flock` around `cargo xtask
    // test` would stay held by dockerd for ever); 0-2 are set by spawn.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    Ok(())
}

fn wait_for(name: &str, log: &Path, timeout: Duration, ready: fn() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let text = fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(20).collect();
    bail!(
        "{name} did not answer within {timeout:?}; last lines of {}:\n{}",
        log.display(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}

/// The test image's root filesystem, as (path, contents) files plus
/// directories and symlinks.
fn write_skeleton(root: &Path) -> Result<()> {
    if root.exists() {
        fs::remove_dir_all(root)?;
    }
    for d in [
        "usr", "etc", "tmp", "proc", "sys", "dev", "run", "var/tmp", "var/www", "root",
    ] {
        fs::create_dir_all(root.join(d))?;
    }
    // Merged /usr, as on the host whose /usr is mounted over it.
    for (link, target) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        std::os::unix::fs::symlink(target, root.join(link))?;
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
         nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    )?;
    fs::write(
        root.join("etc/group"),
        "root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n",
    )?;
    // The host's library cache matches the host /usr mounted at run time.
    if Path::new("/etc/ld.so.cache").is_file() {
        fs::copy("/etc/ld.so.cache", root.join("etc/ld.so.cache"))?;
    }
    use std::os::unix::fs::PermissionsExt;
    for d in ["tmp", "var/tmp"] {
        fs::set_permissions(root.join(d), fs::Permissions::from_mode(0o1777))?;
    }
    Ok(())
}

/// A reproducible tar of `root` (sorted, fixed times and owners).
pub fn reproducible_tar(root: &Path, tar: &Path) -> Result<()> {
    run_cmd(
        Command::new("tar")
            .args([
                "--sort=name",
                "--mtime=@0",
                "--numeric-owner",
                "--owner=0",
                "--group=0",
                "-C",
            ])
            .arg(root)
            .arg("-cf")
            .arg(tar)
            .arg("."),
    )
}

/// The first 16 hex digits of a file's SHA-256.
pub fn content_hash(file: &Path) -> Result<String> {
    let out = Command::new("sha256sum")
        .arg(file)
        .output()
        .context("running sha256sum")?;
    if !out.status.success() {
        bail!("sha256sum {} failed", file.display());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.chars().take(16).collect())
}

/// Whether docker has an image with this reference.
pub fn docker_has_image(reference: &str) -> bool {
    answers(Command::new(DOCKER).args(["image", "inspect", reference]))
}

fn ensure_test_image(dir: &Path) -> Result<String> {
    let root = dir.join("test-image/rootfs");
    let tar = dir.join("test-image/rootfs.tar");
    write_skeleton(&root)?;
    reproducible_tar(&root, &tar)?;
    let image = format!("{TEST_IMAGE_REPO}:{}", content_hash(&tar)?);
    if !docker_has_image(&image) {
        say(&format!("docker import {image}"));
        run_cmd(
            Command::new(DOCKER)
                .args([
                    "import",
                    "--message",
                    "sensor test base (host /usr mounted at run)",
                ])
                .arg(&tar)
                .arg(&image),
        )
        .context("importing the test image into docker")?;
    }
    let ctr_ref = format!("docker.io/{image}");
    let listed = Command::new(CTR)
        .args(["-n", CTR_NAMESPACE, "images", "ls", "-q"])
        .output()
        .context("listing containerd images")?;
    let in_containerd = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .any(|l| l.trim() == ctr_ref);
    if !in_containerd {
        say(&format!("ctr image import {ctr_ref}"));
        let saved = dir.join("test-image/image.tar");
        run_cmd(
            Command::new(DOCKER)
                .args(["save", "-o"])
                .arg(&saved)
                .arg(&image),
        )?;
        run_cmd(
            Command::new(CTR)
                .args([
                    "-n",
                    CTR_NAMESPACE,
                    "image",
                    "import",
                    "--snapshotter",
                    "native",
                ])
                .arg(&saved),
        )
        .context("importing the test image into containerd")?;
    }
    Ok(image)
}

/// An exclusive `flock` held until dropped.
struct Lock(fs::File);

impl Lock {
    fn take(path: &Path) -> Result<Lock> {
        use std::os::fd::AsRawFd;
        let mut file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("locking {}", path.display()));
        }
        let _ = writeln!(file, "{}", std::process::id());
        Ok(Lock(file))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: unlocking our own descriptor.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}
