//! Kernel images for `vm-test`: Debian's stock cloud kernels, fetched with
//! `apt-get download` and unpacked with `dpkg -x` under `target/vm/kernels/`
//! (never installed), or this host's own image.
//!
//! Kernels of the host's Debian release come through the host's apt
//! configuration. Kernels of another release (bullseye's 5.10) come through
//! a sources list and apt state of their own under `target/vm/apt/<suite>/`,
//! so the host's apt never sees that release.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use crate::setup::say;

/// Where Debian packages are looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Archive {
    /// The host's apt configuration (bookworm on these machines).
    Host,
    /// Another Debian release, e.g. `bullseye`: its `main` and security
    /// suites through private apt state (`target/vm/apt/<suite>/`).
    Suite(&'static str),
}

/// Where a kernel image comes from.
#[derive(Clone, Copy, Debug)]
pub enum KernelSource {
    /// A Debian meta package whose dependency is the current image package.
    Debian {
        archive: Archive,
        meta: &'static str,
    },
    /// `/boot/vmlinuz-$(uname -r)` of this machine.
    Host,
}

/// Debian's archive key ring (package `debian-archive-keyring`): it holds
/// the keys of the supported releases, bullseye's included.
const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Private apt state older than this is refreshed, so a run resolves the
/// newest image package; an offline run keeps the old lists.
const LISTS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The sources list of a private archive: `main` and the security suite,
/// package indices only (no translations or AppStream data).
fn sources_list(suite: &str) -> String {
    format!(
        "deb [signed-by={DEBIAN_KEYRING} target=Packages] http://deb.debian.org/debian {suite} main\n\
         deb [signed-by={DEBIAN_KEYRING} target=Packages] http://deb.debian.org/debian-security {suite}-security main\n"
    )
}

/// How apt is run for one archive: the `-o` options that point apt-get and
/// apt-cache at it.
struct AptView {
    options: Vec<String>,
    /// The private state directory (None: the host's apt).
    state: Option<PathBuf>,
}

impl AptView {
    fn new(archive: Archive, vm_dir: &Path) -> Result<AptView> {
        let mut options = vec!["-o".to_owned(), "APT::Sandbox::User=root".to_owned()];
        let Archive::Suite(suite) = archive else {
            return Ok(AptView {
                options,
                state: None,
            });
        };
        let dir = vm_dir.join("apt").join(suite);
        for sub in ["lists/partial", "cache", "sources.list.d"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        let list = dir.join("sources.list");
        std::fs::write(&list, sources_list(suite))
            .with_context(|| format!("writing {}", list.display()))?;
        for (key, value) in [
            ("Dir::Etc::sourcelist", list),
            ("Dir::Etc::sourceparts", dir.join("sources.list.d")),
            ("Dir::State::Lists", dir.join("lists")),
            ("Dir::Cache", dir.join("cache")),
        ] {
            options.push("-o".to_owned());
            options.push(format!("{key}={}", value.display()));
        }
        Ok(AptView {
            options,
            state: Some(dir),
        })
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.args(&self.options);
        c
    }

    /// Private lists missing or older than [`LISTS_MAX_AGE`].
    fn lists_stale(&self) -> bool {
        let Some(dir) = &self.state else {
            return false;
        };
        std::fs::metadata(dir.join("updated"))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_none_or(|age| age > LISTS_MAX_AGE)
    }

    fn update(&self) -> Result<()> {
        say(&format!(
            "apt-get update (kernel package lists{})",
            self.state
                .as_ref()
                .map(|d| format!(", {}", d.display()))
                .unwrap_or_default()
        ));
        crate::run_cmd(self.command("apt-get").args(["update", "-q"]))?;
        if let Some(dir) = &self.state {
            std::fs::write(dir.join("updated"), b"")?;
        }
        Ok(())
    }

    /// The image package a Debian meta package points to now.
    fn resolve_meta(&self, meta: &str) -> Option<String> {
        let out = self
            .command("apt-cache")
            .args(["depends", meta])
            .output()
            .ok()?;
        parse_depends(&String::from_utf8_lossy(&out.stdout))
    }
}

/// The first `linux-image-*` dependency in `apt-cache depends` output.
fn parse_depends(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let dep = l.trim().strip_prefix("Depends: ")?;
        dep.starts_with("linux-image-").then(|| dep.to_owned())
    })
}

fn find_vmlinuz(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir.join("boot"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
}

/// Downloads (once) and unpacks Debian's current image package behind
/// `meta` in `archive`. `label` names the kernel (the offline fallback
/// remembers the last package per label). `updated` lists the archives
/// whose lists were refreshed in this run.
pub fn debian_kernel(
    label: &str,
    archive: Archive,
    meta: &str,
    vm_dir: &Path,
    updated: &mut Vec<Archive>,
) -> Result<PathBuf> {
    let kernels = vm_dir.join("kernels");
    std::fs::create_dir_all(&kernels)?;
    let marker = kernels.join(format!("{label}.package"));
    let apt = AptView::new(archive, vm_dir)?;
    if apt.lists_stale() && !updated.contains(&archive) {
        updated.push(archive);
        if let Err(e) = apt.update() {
            say(&format!("{e:#}; using the package lists already there"));
        }
    }
    let mut pkg = apt.resolve_meta(meta);
    if pkg.is_none() && !updated.contains(&archive) {
        updated.push(archive);
        apt.update()?;
        pkg = apt.resolve_meta(meta);
    }
    let pkg = match pkg {
        Some(p) => p,
        // Offline: the last package fetched for this kernel, if any.
        None => std::fs::read_to_string(&marker)
            .map(|s| s.trim().to_owned())
            .with_context(|| format!("no package found for {meta} (apt-cache depends)"))?,
    };
    let unpacked = kernels.join(&pkg);
    if let Some(v) = find_vmlinuz(&unpacked) {
        std::fs::write(&marker, &pkg)?;
        return Ok(v);
    }
    let debs = vm_dir.join("debs");
    std::fs::create_dir_all(&debs)?;
    say(&format!("apt-get download {pkg}"));
    crate::run_cmd(
        apt.command("apt-get")
            .args(["download", "-q", &pkg])
            .current_dir(&debs),
    )?;
    let deb = std::fs::read_dir(&debs)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{pkg}_")) && n.ends_with(".deb"))
        })
        .with_context(|| format!("{pkg}: no .deb after apt-get download"))?;
    let tmp = kernels.join(format!("{pkg}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    crate::run_cmd(Command::new("dpkg").arg("-x").arg(&deb).arg(&tmp))?;
    // Keep only the image: modules are not needed (cgroups, BPF, tracefs
    // and the serial console are built in).
    let _ = std::fs::remove_dir_all(tmp.join("lib"));
    let _ = std::fs::remove_dir_all(tmp.join("usr"));
    let _ = std::fs::remove_dir_all(&unpacked);
    std::fs::rename(&tmp, &unpacked)?;
    let _ = std::fs::remove_file(&deb);
    std::fs::write(&marker, &pkg)?;
    find_vmlinuz(&unpacked).with_context(|| format!("{pkg}: no boot/vmlinuz-* in the package"))
}

/// `/boot/vmlinuz-$(uname -r)`, or why it cannot be had.
pub fn host_kernel() -> Result<PathBuf, String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let path = PathBuf::from(format!("/boot/vmlinuz-{release}"));
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} does not exist: this host's kernel image ({release}) is not shipped on the machine",
            path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_package_is_the_meta_packages_linux_image_dependency() {
        let text = "linux-image-cloud-amd64\n  Depends: linux-image-5.10.0-46-cloud-amd64\n";
        assert_eq!(
            parse_depends(text).as_deref(),
            Some("linux-image-5.10.0-46-cloud-amd64")
        );
        assert_eq!(parse_depends("linux-image-cloud-amd64\n"), None);
        assert_eq!(parse_depends("x\n  Depends: initramfs-tools\n"), None);
    }

    #[test]
    fn another_release_gets_its_own_sources_and_apt_state() {
        let dir = std::env::temp_dir().join(format!("vm-apt-view-{}", std::process::id()));
        let view = AptView::new(Archive::Suite("bullseye"), &dir).expect("apt view");
        let opts = view.options.join(" ");
        let state = dir.join("apt/bullseye");
        for want in [
            format!(
                "Dir::Etc::sourcelist={}",
                state.join("sources.list").display()
            ),
            format!(
                "Dir::Etc::sourceparts={}",
                state.join("sources.list.d").display()
            ),
            format!("Dir::State::Lists={}", state.join("lists").display()),
            format!("Dir::Cache={}", state.join("cache").display()),
        ] {
            assert!(opts.contains(&want), "{want} missing from {opts}");
        }
        let list = std::fs::read_to_string(state.join("sources.list")).unwrap_or_default();
        assert_eq!(list, sources_list("bullseye"));
        assert!(list.contains(" bullseye main\n") && list.contains(" bullseye-security main\n"));
        assert!(view.lists_stale(), "never updated");
        let host = AptView::new(Archive::Host, &dir).expect("host view");
        assert_eq!(host.options, ["-o", "APT::Sandbox::User=root"]);
        assert!(!host.lists_stale());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
