//! The privileges the live sensor needs, checked once at start so that a
//! missing one is named (with what it is for) instead of surfacing later as
//! a bare EPERM from bpf(), perf_event_open() or a /proc read — or worse,
//! as a sensor that runs but silently misses processes.
//!
//! The sensor runs as uid 0 with a cut-down capability set in Kubernetes
//! (deploy/kubernetes/base/daemonset.yaml) and with ambient capabilities
//! under systemd; docs/operations.md has the table of what each capability
//! is for. Each requirement lists the capabilities that satisfy it:
//! CAP_SYS_ADMIN covers CAP_BPF and CAP_PERFMON (kernels before 5.8 and
//! privileged containers), CAP_DAC_OVERRIDE covers CAP_DAC_READ_SEARCH.

use std::fmt;

use crate::kernel::host::HostFeatures;

/// Capability numbers (linux/capability.h).
pub mod cap {
    pub const DAC_OVERRIDE: u32 = 1;
    pub const DAC_READ_SEARCH: u32 = 2;
    pub const SYS_PTRACE: u32 = 19;
    pub const SYS_ADMIN: u32 = 21;
    pub const SYS_RESOURCE: u32 = 24;
    pub const MAC_ADMIN: u32 = 33;
    pub const PERFMON: u32 = 38;
    pub const BPF: u32 = 39;
}

/// When a requirement applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Always,
    /// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK, which must
    /// be raised unless it is already unlimited.
    MemlockCharged,
    /// `bpf` is an active LSM: file events attach as BPF LSM programs,
    /// which the kernel loads only for CAP_MAC_ADMIN.
    BpfLsmActive,
}

/// One capability the sensor needs, and why.
struct Requirement {
    name: &'static str,
    cap: u32,
    /// Other capabilities that grant the same.
    or: &'static [u32],
    when: When,
    why: &'static str,
}

const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        name: "CAP_BPF",
        cap: cap::BPF,
        or: &[cap::SYS_ADMIN],
        when: When::Always,
        why: "bpf(): create the ring buffer and maps, load the programs",
    },
    Requirement {
        name: "CAP_PERFMON",
        cap: cap::PERFMON,
        or: &[cap::SYS_ADMIN],
        when: When::Always,
        why: "attach to tracepoints (perf_event_open) and load tracing programs that read \
              kernel memory",
    },
    Requirement {
        name: "CAP_DAC_READ_SEARCH",
        cap: cap::DAC_READ_SEARCH,
        or: &[cap::DAC_OVERRIDE],
        when: When::Always,
        why: "read /proc/<pid> files and walk the cgroup tree whatever their owners and modes",
    },
    Requirement {
        name: "CAP_SYS_PTRACE",
        cap: cap::SYS_PTRACE,
        or: &[],
        when: When::Always,
        why: "read /proc/<pid>/exe, cwd and root of processes with more privilege than the \
              sensor (the kernel's ptrace access check)",
    },
    Requirement {
        name: "CAP_SYS_RESOURCE",
        cap: cap::SYS_RESOURCE,
        or: &[],
        when: When::MemlockCharged,
        why: "raise RLIMIT_MEMLOCK for the maps (this kernel charges BPF memory to it, and the \
              limit is not unlimited)",
    },
    Requirement {
        name: "CAP_MAC_ADMIN",
        cap: cap::MAC_ADMIN,
        or: &[],
        when: When::BpfLsmActive,
        why: "load the file-event programs as BPF LSM programs (`bpf` is an active LSM here)",
    },
];

/// What the check looks at; [`Environment::of`] takes this host's.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Effective capability bits.
    pub cap_eff: u64,
    /// Kernel (major, minor).
    pub kernel: (u32, u32),
    /// RLIMIT_MEMLOCK's soft limit is unlimited.
    pub memlock_unlimited: bool,
    /// `bpf` is in /sys/kernel/security/lsm; `None` when that is unreadable
    /// (securityfs not mounted: the LSM path is not tried then).
    pub bpf_lsm_active: Option<bool>,
}

impl Environment {
    /// This host's, from the facts probed at start.
    pub fn of(host: &HostFeatures) -> Environment {
        Environment {
            cap_eff: host.cap_eff,
            kernel: host.kernel_version(),
            memlock_unlimited: host.memlock_unlimited,
            bpf_lsm_active: host.bpf_lsm_active(),
        }
    }

    fn has(&self, cap: u32) -> bool {
        cap < 64 && self.cap_eff & (1 << cap) != 0
    }

    fn applies(&self, when: When) -> bool {
        match when {
            When::Always => true,
            When::MemlockCharged => self.kernel < (5, 11) && !self.memlock_unlimited,
            When::BpfLsmActive => self.bpf_lsm_active == Some(true),
        }
    }
}

/// A capability the sensor needs and lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub name: &'static str,
    pub why: &'static str,
}

/// The sensor lacks one or more capabilities it needs.
#[derive(Debug, Clone, thiserror::Error)]
pub struct MissingPrivileges {
    pub missing: Vec<Missing>,
    pub cap_eff: u64,
}

impl fmt::Display for MissingPrivileges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not enough privilege to load eBPF programs: missing ")?;
        for (i, m) in self.missing.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{} ({})", m.name, m.why)?;
        }
        write!(
            f,
            "; run as root or grant {} (effective capabilities now: {:#x})",
            if self.missing.len() == 1 {
                "it"
            } else {
                "them"
            },
            self.cap_eff
        )
    }
}

/// Every requirement that applies in `env` and is not met.
pub fn check(env: &Environment) -> Result<(), MissingPrivileges> {
    let missing: Vec<Missing> = REQUIREMENTS
        .iter()
        .filter(|r| env.applies(r.when))
        .filter(|r| !env.has(r.cap) && !r.or.iter().any(|c| env.has(*c)))
        .map(|r| Missing {
            name: r.name,
            why: r.why,
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MissingPrivileges {
            missing,
            cap_eff: env.cap_eff,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(caps: &[u32]) -> u64 {
        caps.iter().fold(0, |acc, c| acc | (1 << c))
    }

    /// The DaemonSet's set.
    const DAEMONSET: &[u32] = &[
        cap::BPF,
        cap::PERFMON,
        cap::SYS_RESOURCE,
        cap::DAC_READ_SEARCH,
        cap::SYS_PTRACE,
        cap::MAC_ADMIN,
    ];

    fn env(caps: &[u32], kernel: (u32, u32), lsm: Option<bool>) -> Environment {
        Environment {
            cap_eff: bits(caps),
            kernel,
            memlock_unlimited: false,
            bpf_lsm_active: lsm,
        }
    }

    fn names(e: &MissingPrivileges) -> Vec<&'static str> {
        e.missing.iter().map(|m| m.name).collect()
    }

    #[test]
    fn the_daemonset_set_is_enough_everywhere() {
        for kernel in [(5, 8), (5, 10), (6, 1), (6, 18)] {
            for lsm in [None, Some(false), Some(true)] {
                assert!(
                    check(&env(DAEMONSET, kernel, lsm)).is_ok(),
                    "{kernel:?} {lsm:?}"
                );
            }
        }
        assert!(check(&env(
            &[cap::SYS_ADMIN, cap::SYS_PTRACE, cap::DAC_OVERRIDE],
            (6, 1),
            None
        ))
        .is_ok());
    }

    #[test]
    fn each_missing_capability_is_named_with_its_reason() {
        for dropped in DAEMONSET {
            let caps: Vec<u32> = DAEMONSET.iter().copied().filter(|c| c != dropped).collect();
            // An old kernel with BPF LSM: every requirement applies.
            let err = check(&env(&caps, (5, 10), Some(true))).expect_err("must fail");
            assert_eq!(err.missing.len(), 1, "{err}");
            let want = REQUIREMENTS
                .iter()
                .find(|r| r.cap == *dropped)
                .expect("a requirement per capability");
            assert_eq!(names(&err), vec![want.name]);
            let text = err.to_string();
            assert!(
                text.contains(want.name) && text.contains(want.why),
                "{text}"
            );
            assert!(text.starts_with("not enough privilege to load eBPF programs"));
        }
    }

    #[test]
    fn conditional_requirements_apply_only_where_needed() {
        let without =
            |c: u32| -> Vec<u32> { DAEMONSET.iter().copied().filter(|x| *x != c).collect() };
        // SYS_RESOURCE: only before 5.11, and only with a finite memlock limit.
        assert!(check(&env(&without(cap::SYS_RESOURCE), (5, 11), None)).is_ok());
        let mut e = env(&without(cap::SYS_RESOURCE), (5, 10), None);
        assert!(check(&e).is_err());
        e.memlock_unlimited = true;
        assert!(check(&e).is_ok());
        // MAC_ADMIN: only where `bpf` is an active LSM.
        assert!(check(&env(&without(cap::MAC_ADMIN), (6, 1), Some(false))).is_ok());
        assert!(check(&env(&without(cap::MAC_ADMIN), (6, 1), None)).is_ok());
        assert!(check(&env(&without(cap::MAC_ADMIN), (6, 1), Some(true))).is_err());
    }

    #[test]
    fn no_capabilities_names_every_one_that_applies() {
        let err = check(&env(&[], (6, 1), Some(false))).expect_err("must fail");
        assert_eq!(
            names(&err),
            vec![
                "CAP_BPF",
                "CAP_PERFMON",
                "CAP_DAC_READ_SEARCH",
                "CAP_SYS_PTRACE"
            ]
        );
        assert!(err.to_string().contains("grant them"));
    }
}
