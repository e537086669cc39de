//! Elastic's Linux session model: for every process, its **entry leader**
//! (the process that brought this work onto the machine or into the
//! container), its **session leader** (`pid == sid`) and its **group
//! leader** (`pid == pgid`).
//!
//! Session and group leaders are plain kernel facts: the kernel record
//! carries `sid` and `pgid` (host view), and the leader is the process whose
//! pid they are (looked up in the table when an event is built). A pid that
//! names a live session or process group is never reused by the kernel, so
//! the table's entry for that pid, if it is itself a leader, is the one.
//!
//! The entry leader is decided when a process starts (exec, or the `/proc`
//! seed) and inherited by its children through fork and exec:
//! - host pid 1 is the entry leader of type `init` (what systemd starts
//!   inherits it);
//! - a process whose **own pid namespace differs from its parent's, while
//!   its parent is in the initial (host) pid namespace**, is an entry leader
//!   of type `container`: that is what `runc create|exec` does for a
//!   container's init and for every `docker exec`, `kubectl exec`, `ctr task
//!   exec`, `runc exec` (the runtime, in the host's namespace, forks the
//!   process into the container's). A process inside a container cannot make
//!   this happen: whatever it forks has a parent inside the container, never
//!   in the host's pid namespace, and names (`comm`, argv) play no part. The
//!   only way to forge it is to already run in the host pid namespace with
//!   `CAP_SYS_ADMIN` (a `hostPID` privileged pod), which owns the node
//!   anyway. A host user's `unshare --pid --fork` is reported as a
//!   `container` entry too: at the kernel's level it is one.
//! - every other process inherits its parent's entry leader; one whose
//!   ancestry the sensor never saw has none (the fields are left out).
//!
//! Unlike quark and Elastic's other sensors this does not look at the
//! parent's executable name (`runc`, `containerd-shim`, `sshd`...), which a
//! process can fake; `sshd`, `ssm` and terminal entry types are therefore
//! not produced.

use std::sync::Arc;

use super::ProcessInfo;

/// `PROC_PID_INIT_INO`: the inode number of the initial pid namespace, a
/// constant of the kernel ABI (`include/linux/proc_ns.h`).
pub const INIT_PID_NS: u32 = 0xEFFF_FFFC;

/// `process.entry_leader.entry_meta.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    Init,
    Container,
}

impl EntryType {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::Init => "init",
            EntryType::Container => "container",
        }
    }
}

/// A process's entry leader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum EntryLeader {
    /// The sensor never saw how this process's ancestry entered.
    #[default]
    Unknown,
    /// The process is its own entry leader.
    Own(EntryType),
    /// Another process, as it was when it became the entry leader (or when
    /// its child forked). Never itself `Of`: chains are one link long.
    Of(Arc<ProcessInfo>, EntryType),
}

impl EntryLeader {
    /// What a child of `parent` inherits.
    pub fn inherited_from(parent: &Arc<ProcessInfo>) -> EntryLeader {
        match &parent.entry_leader {
            EntryLeader::Unknown => EntryLeader::Unknown,
            EntryLeader::Own(t) => EntryLeader::Of(Arc::clone(parent), *t),
            EntryLeader::Of(leader, t) => EntryLeader::Of(Arc::clone(leader), *t),
        }
    }

    pub fn entry_type(&self) -> Option<EntryType> {
        match self {
            EntryLeader::Unknown => None,
            EntryLeader::Own(t) | EntryLeader::Of(_, t) => Some(*t),
        }
    }
}

/// Whether a process starts a new entry, and of which type: host pid 1, or
/// a pid namespace entered from the host's (see the module docs). 0 means
/// a namespace the kernel could not read: no decision.
pub fn starts_entry(pid: u32, pid_ns: u32, parent_pid_ns: Option<u32>) -> Option<EntryType> {
    if pid == 1 {
        return Some(EntryType::Init);
    }
    let parent_ns = parent_pid_ns.filter(|&ns| ns != 0)?;
    (pid_ns != 0 && pid_ns != parent_ns && parent_ns == INIT_PID_NS).then_some(EntryType::Container)
}

/// The session and group leaders of a process, as the table knows them
/// when an event is built (`None`: the leader has exited or was never seen;
/// its pid is still `sid`/`pgid`).
#[derive(Debug, Clone, Default)]
pub struct Leaders {
    pub session: Option<Arc<ProcessInfo>>,
    pub group: Option<Arc<ProcessInfo>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_start_only_from_the_host_namespace() {
        assert_eq!(starts_entry(1, INIT_PID_NS, None), Some(EntryType::Init));
        let container_ns = 4026532999;
        assert_eq!(
            starts_entry(4242, container_ns, Some(INIT_PID_NS)),
            Some(EntryType::Container)
        );
        // Nested: a container process unsharing a pid namespace.
        assert_eq!(starts_entry(4243, 4026533000, Some(container_ns)), None);
        // Same namespace, or unreadable ones: no new entry.
        assert_eq!(starts_entry(4244, INIT_PID_NS, Some(INIT_PID_NS)), None);
        assert_eq!(starts_entry(4245, 0, Some(INIT_PID_NS)), None);
        assert_eq!(starts_entry(4246, container_ns, Some(0)), None);
        assert_eq!(starts_entry(4247, container_ns, None), None);
    }
}
