//! `cargo xtask setup`: the eBPF toolchain, installed or checked.
//!
//! 1. A rustc that has a `core` for `bpfel-unknown-none` (Debian's
//!    `rustc-web` + `libstd-rust-web-dev-bpf`, under /usr).
//! 2. `bpf-linker` built against the same LLVM major as that rustc
//!    (`llvm-NN-dev`, then `cargo install bpf-linker --features llvm-NN`).
//!
//! Idempotent: what is present and consistent is left alone; every action
//! is printed. Where it cannot install (not Debian, not root) it says what
//! to install and fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::run_cmd;

/// bpf-linker release known to build against Debian's LLVM 22 with the
/// aya 0.14 release set (toolchain.md).
const BPF_LINKER_VERSION: &str = "0.13.0";
const DEBIAN_BPF_RUSTC: &str = "/usr/bin/rustc";

/// The tools the eBPF build uses.
pub struct Tools {
    pub bpf_rustc: PathBuf,
    pub bpf_linker: PathBuf,
}

/// Makes sure the toolchain is there; `verbose` also reports what is fine.
pub fn ensure(verbose: bool) -> Result<Tools> {
    let mut apt = Apt::default();
    let bpf_rustc = PathBuf::from(DEBIAN_BPF_RUSTC);
    if !has_bpf_core(&bpf_rustc) {
        say("no rustc with a bpfel-unknown-none core found; installing Debian's rustc-web");
        apt.install(&["rustc-web", "libstd-rust-web-dev-bpf"])?;
        if !has_bpf_core(&bpf_rustc) {
            bail!(
                "{DEBIAN_BPF_RUSTC} still has no core for bpfel-unknown-none after installing \
                 rustc-web and libstd-rust-web-dev-bpf"
            );
        }
    } else if verbose {
        say(&format!("{DEBIAN_BPF_RUSTC} has a bpfel-unknown-none core"));
    }
    let llvm = rustc_llvm_major(&bpf_rustc)?;
    if verbose {
        say(&format!("{DEBIAN_BPF_RUSTC} uses LLVM {llvm}"));
    }

    let linker = find_bpf_linker();
    let linker_llvm = linker.as_deref().and_then(linker_llvm_major);
    let bpf_linker = match (linker, linker_llvm) {
        (Some(path), Some(major)) if major == llvm => {
            if verbose {
                say(&format!(
                    "{} is built against LLVM {major}: matches",
                    path.display()
                ));
            }
            path
        }
        (found, major) => {
            match (&found, major) {
                (Some(p), Some(m)) => say(&format!(
                    "{} is built against LLVM {m}, rustc emits LLVM {llvm}: rebuilding it",
                    p.display()
                )),
                _ => say(&format!(
                    "bpf-linker not found: building {BPF_LINKER_VERSION} against LLVM {llvm}"
                )),
            }
            let prefix = format!("/usr/lib/llvm-{llvm}");
            if !Path::new(&prefix).join("bin/llvm-config").exists() {
                apt.install(&[&format!("llvm-{llvm}-dev")])?;
            }
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.args([
                "install",
                &format!("bpf-linker@{BPF_LINKER_VERSION}"),
                "--locked",
                "--force",
                "--no-default-features",
                "--features",
                &format!("llvm-{llvm}"),
            ])
            .env("LLVM_PREFIX", &prefix)
            .env_remove("RUSTC")
            .env_remove("RUSTC_BOOTSTRAP");
            run_cmd(&mut cmd).context("building bpf-linker")?;
            let path = find_bpf_linker().context("bpf-linker was installed but cannot be found")?;
            match linker_llvm_major(&path) {
                Some(m) if m == llvm => path,
                other => bail!(
                    "bpf-linker at {} links LLVM {other:?}, expected {llvm}",
                    path.display()
                ),
            }
        }
    };
    if verbose {
        say("toolchain ready");
    }
    Ok(Tools {
        bpf_rustc,
        bpf_linker,
    })
}

/// Debian's `cargo-clippy` for the kernel programs: the clippy of the same
/// release as the `rustc-web` that builds them (`rust-web-clippy`),
/// installed when missing.
pub fn ensure_bpf_clippy() -> Result<PathBuf> {
    let path = PathBuf::from("/usr/bin/cargo-clippy");
    if !path.exists() {
        say("no clippy for Debian's rustc found; installing rust-web-clippy");
        Apt::default().install(&["rust-web-clippy"])?;
    }
    if !path.exists() {
        bail!(
            "{} is missing after installing rust-web-clippy",
            path.display()
        );
    }
    Ok(path)
}

pub fn say(msg: &str) {
    eprintln!("xtask setup: {msg}");
}

fn has_bpf_core(rustc: &Path) -> bool {
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Path::new(&sysroot)
        .join("lib/rustlib/bpfel-unknown-none/lib")
        .is_dir()
}

/// The LLVM major of a rustc, from `rustc -vV` ("LLVM version: 22.1.8").
fn rustc_llvm_major(rustc: &Path) -> Result<u32> {
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .with_context(|| format!("running {} -vV", rustc.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_llvm_major(&text).with_context(|| {
        format!(
            "no LLVM version in `{} -vV` output:\n{text}",
            rustc.display()
        )
    })
}

pub fn parse_llvm_major(rustc_vv: &str) -> Option<u32> {
    rustc_vv
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version:"))
        .and_then(|v| v.trim().split('.').next())
        .and_then(|m| m.parse().ok())
}

fn cargo_bin_dir() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|h| h.join("bin"))
}

fn find_bpf_linker() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = cargo_bin_dir().into_iter().collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|d| d.join("bpf-linker"))
        .find(|p| p.is_file())
}

/// The LLVM major a bpf-linker binary links against, from its dynamic
/// dependencies (`libLLVM.so.22.1` or `libLLVM-22.so`).
fn linker_llvm_major(path: &Path) -> Option<u32> {
    let out = Command::new("ldd").arg(path).output().ok()?;
    parse_libllvm_major(&String::from_utf8_lossy(&out.stdout))
}

pub fn parse_libllvm_major(ldd: &str) -> Option<u32> {
    ldd.lines().find_map(|l| {
        let name = l.split_whitespace().next()?;
        let rest = name.strip_prefix("libLLVM")?;
        let digits: String = rest
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}

/// apt-get, run as root on Debian only, with one `update` per run.
#[derive(Default)]
pub struct Apt {
    updated: bool,
}

impl Apt {
    fn is_installed(pkg: &str) -> bool {
        Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", pkg])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
            .unwrap_or(false)
    }

    /// Installs the packages not installed yet.
    pub fn install(&mut self, pkgs: &[&str]) -> Result<()> {
        let missing: Vec<&str> = pkgs
            .iter()
            .copied()
            .filter(|p| !Self::is_installed(p))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let debian = Path::new("/etc/debian_version").exists();
        let root = is_root();
        if !debian || !root {
            bail!(
                "missing packages: {} — install them (Debian: `apt-get install --no-install-recommends {}`) \
                 and run again{}",
                missing.join(", "),
                missing.join(" "),
                if debian { " (as root)" } else { "; this host is not Debian, use its equivalents" }
            );
        }
        if !self.updated {
            say("apt-get update");
            run_cmd(Command::new("apt-get").args(["update", "-q"]))?;
            self.updated = true;
        }
        say(&format!("apt-get install {}", missing.join(" ")));
        run_cmd(
            Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    }
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_llvm_majors() {
        let vv = "rustc 1.96.0\nhost: x86_64-unknown-linux-gnu\nLLVM version: 22.1.8\n";
        assert_eq!(parse_llvm_major(vv), Some(22));
        assert_eq!(parse_llvm_major("rustc 1.0\n"), None);
        let ldd = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibLLVM.so.22.1 => /usr/lib/x86_64-linux-gnu/libLLVM.so.22.1 (0x1)\n";
        assert_eq!(parse_libllvm_major(ldd), Some(22));
        assert_eq!(
            parse_libllvm_major("\tlibLLVM-19.so => /x (0x1)\n"),
            Some(19)
        );
        assert_eq!(parse_libllvm_major("\tlibc.so.6 => /x\n"), None);
    }
}
