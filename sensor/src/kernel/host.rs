//! What this host offers the sensor, probed once at start and passed down
//! ([`HostFeatures`]): the effective capabilities, the kernel release, the
//! memlock limit, the active LSMs, kernel BTF and the syscall tracepoints.
//! Every "is BPF LSM active", "which capabilities", "which kernel" question
//! is answered from this one value.

use std::path::{Path, PathBuf};

/// securityfs, where the active LSM list is (`lsm`).
pub const SECURITYFS: &str = "/sys/kernel/security";

/// Why a host fact could not be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HostError {
    #[error("reading {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("securityfs is not mounted and mounting it failed: {0}")]
    MountSecurityfs(String),
}

/// The facts, as probed.
#[derive(Debug, Clone)]
pub struct HostFeatures {
    /// Effective capability bits (`CapEff` of /proc/self/status; 0 when
    /// unreadable).
    pub cap_eff: u64,
    /// `/proc/sys/kernel/osrelease`, trimmed; `unknown` when unreadable.
    pub kernel_release: String,
    /// RLIMIT_MEMLOCK's soft limit is unlimited.
    pub memlock_unlimited: bool,
    /// The active LSMs (`/sys/kernel/security/lsm`), as read without
    /// mounting anything.
    pub lsms: Result<Vec<String>, HostError>,
    /// `/sys/kernel/btf/vmlinux` exists (fentry programs can load).
    pub btf_vmlinux: bool,
    /// tracefs lists the syscall tracepoints (`sys_exit_openat`).
    pub syscall_tracepoints: bool,
    /// tracefs lists `sock/inet_sock_set_state` (network events).
    pub sock_tracepoint: bool,
}

/// Whether tracefs (either mount point) lists `events/<event>`.
fn tracefs_lists(event: &str) -> bool {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|t| Path::new(t).join("events").join(event).exists())
}

impl HostFeatures {
    /// Reads this host's facts (reads only: nothing is mounted).
    pub fn probe() -> HostFeatures {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        HostFeatures {
            cap_eff: parse_cap_eff(&status).unwrap_or(0),
            kernel_release: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".to_owned()),
            memlock_unlimited: rustix::process::getrlimit(rustix::process::Resource::Memlock)
                .current
                .is_none(),
            lsms: read_lsms(),
            btf_vmlinux: Path::new("/sys/kernel/btf/vmlinux").exists(),
            syscall_tracepoints: tracefs_lists("syscalls/sys_exit_openat"),
            sock_tracepoint: tracefs_lists("sock/inet_sock_set_state"),
        }
    }

    /// Whether the effective set holds `cap` (linux/capability.h number).
    pub fn has_cap(&self, cap: u32) -> bool {
        cap < 64 && self.cap_eff & (1 << cap) != 0
    }

    /// Kernel (major, minor) from the release; (0, 0) when unparsable.
    pub fn kernel_version(&self) -> (u32, u32) {
        parse_release(&self.kernel_release).unwrap_or((0, 0))
    }

    /// `bpf` is an active LSM; `None` when the list could not be read
    /// (securityfs not mounted).
    pub fn bpf_lsm_active(&self) -> Option<bool> {
        self.lsms.as_ref().ok().map(|l| is_bpf_lsm_active(l))
    }
}

/// The one rule for "is BPF LSM active": `bpf` is in the list.
pub fn is_bpf_lsm_active(lsms: &[String]) -> bool {
    lsms.iter().any(|l| l == "bpf")
}

/// The active LSMs from securityfs, as mounted now.
pub fn read_lsms() -> Result<Vec<String>, HostError> {
    let list = Path::new(SECURITYFS).join("lsm");
    let text = std::fs::read_to_string(&list).map_err(|e| HostError::Read {
        path: list,
        reason: e.to_string(),
    })?;
    Ok(parse_lsms(&text))
}

/// The active LSMs, mounting securityfs first when it is not (what
/// attaching BPF LSM programs needs).
pub fn mount_and_read_lsms() -> Result<Vec<String>, HostError> {
    if !Path::new(SECURITYFS).join("lsm").exists() {
        rustix::mount::mount(
            "none",
            SECURITYFS,
            "securityfs",
            rustix::mount::MountFlags::empty(),
            None,
        )
        .map_err(|e| HostError::MountSecurityfs(e.to_string()))?;
    }
    read_lsms()
}

fn parse_lsms(text: &str) -> Vec<String> {
    text.trim()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The `CapEff:` line of a `/proc/<pid>/status` text.
pub fn parse_cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// `6.1.0-18-cloud-amd64` → (6, 1).
pub fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_kernel_writes() {
        let status = "Name:\tsensor\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("CapEff:\tzz\n"), None);
        assert_eq!(parse_release("6.1.0-18-cloud-amd64"), Some((6, 1)));
        assert_eq!(parse_release("5.10"), Some((5, 10)));
        assert_eq!(parse_release("6.18.44-fc-v657"), Some((6, 18)));
        assert_eq!(parse_release("x"), None);
        let lsms = parse_lsms("lockdown,capability,landlock,yama,apparmor,bpf\n");
        assert!(is_bpf_lsm_active(&lsms));
        assert!(!is_bpf_lsm_active(&parse_lsms("capability,bpffoo,\n")));
    }

    #[test]
    fn capabilities_by_number() {
        let host = HostFeatures {
            cap_eff: 1 << 39 | 1 << 21,
            kernel_release: "5.10.0-1".into(),
            memlock_unlimited: false,
            lsms: Err(HostError::MountSecurityfs("test".into())),
            btf_vmlinux: true,
            syscall_tracepoints: true,
            sock_tracepoint: true,
        };
        assert!(host.has_cap(39) && host.has_cap(21) && !host.has_cap(38) && !host.has_cap(64));
        assert_eq!(host.kernel_version(), (5, 10));
        assert_eq!(host.bpf_lsm_active(), None);
    }
}
