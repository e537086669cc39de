//! The network family's record: one TCP connection attempted, accepted or
//! closed, with the process it belongs to.
//!
//! The tuple is the socket's own (`struct sock_common`), as the kernel set
//! it, never the `sockaddr` the process passed: what a process writes into
//! its own memory after the call cannot change what is reported.

use crate::{RecordHeader, COMM_LEN};

/// What a [`NetRecord`] reports (`NetRecord::op`).
pub mod net_op {
    /// An outgoing TCP connection started (`connect`: the socket went from
    /// CLOSE to SYN_SENT, in the connecting task's context).
    pub const ATTEMPTED: u32 = 1;
    /// An incoming TCP connection handed to the process (`accept`,
    /// `accept4` returned it).
    pub const ACCEPTED: u32 = 2;
    /// A connection this sensor reported ended (the socket reached CLOSE),
    /// reported for the process that opened or accepted it, whichever
    /// context the kernel closed it in.
    pub const CLOSED: u32 = 3;
}

/// `NetRecord::flags` bits.
/// The local port was not chosen yet (a `connect` on an unbound socket is
/// reported before the kernel picks its ephemeral port): `sport` is 0 and
/// means nothing.
pub const NET_SPORT_UNKNOWN: u32 = 1 << 0;
/// The socket's network namespace could not be read: `netns` is 0.
pub const NET_NETNS_UNKNOWN: u32 = 1 << 1;
/// From the ingress side (an accepted connection, or the close of one).
pub const NET_INGRESS: u32 = 1 << 2;

/// `AF_INET` and `AF_INET6`, as `sock_common.skc_family` holds them.
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u16 = 6;

/// Where the network operations' bits start in the process-name verdict
/// masks the file prefilter keeps (`prefilter::op_bit(NET_PROC_OP_BASE +
/// op)`): one verdict per process serves both families.
pub const NET_PROC_OP_BASE: u32 = 8;

/// The process-name verdict bit of network operation `op`.
pub const fn net_proc_bit(op: u32) -> u32 {
    crate::prefilter::op_bit(NET_PROC_OP_BASE + op)
}

/// `NET_COUNTS[op * net_verdict::COUNT + verdict]` (per CPU): the network
/// prefilter's verdicts, per [`net_op`].
pub mod net_verdict {
    /// Its process's name passes it.
    pub const PASSED: u32 = 0;
    /// Its process's name passes none of the rules wanting it: not sent.
    pub const FILTERED: u32 = 1;
    /// Not decided by name (the rules need every one, or the process has
    /// no verdict): sent.
    pub const PASS_ALL: u32 = 2;
    pub const COUNT: u32 = 3;
    pub const NAMES: [&str; COUNT as usize] = ["passed", "filtered", "pass_all"];
}

/// Entries of `NET_COUNTS`: every [`net_op`] value (0 unused).
pub const NET_COUNTS_LEN: u32 = (net_op::CLOSED + 1) * net_verdict::COUNT;

/// Sockets whose close is awaited (connections reported as attempted or
/// accepted and not yet closed). A socket that finds the table full is
/// reported, but its close is not; each such socket is counted.
pub const NET_SOCKS_MAX: u32 = 65_536;

record! {
/// One TCP connection event. Fixed size; addresses are in network byte
/// order, an IPv4 address in the first four bytes; ports in host order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetRecord {
    pub header: RecordHeader,
    /// The process the connection belongs to (the task that connected or
    /// accepted; for a close, the same process, remembered).
    pub tgid: u32,
    pub pid: u32,
    /// The process's start (its thread-group leader's).
    pub start_boottime_ns: u64,
    /// The pidfs inode of the process's `struct pid` (Linux 6.9+), 0
    /// where the kernel has none: with the pid, what the agent names the
    /// process by (`process.entity_id`) even when it has ended.
    pub pid_ino: u64,
    pub cgroup_id: u64,
    pub uid: u32,
    pub gid: u32,
    /// One of [`net_op`].
    pub op: u32,
    /// [`NET_SPORT_UNKNOWN`] and friends.
    pub flags: u32,
    /// [`AF_INET`] or [`AF_INET6`].
    pub family: u16,
    /// [`IPPROTO_TCP`].
    pub protocol: u16,
    /// The local port.
    pub sport: u16,
    /// The remote port.
    pub dport: u16,
    /// The local address.
    pub saddr: [u8; 16],
    /// The remote address.
    pub daddr: [u8; 16],
    /// Inode number of the socket's network namespace.
    pub netns: u32,
    pub _pad: u32,
    pub comm: [u8; COMM_LEN],
}
}

record! {
/// Who a tracked socket belongs to, kept from its start to its close
/// (`NET_SOCKS`, keyed by the socket's kernel address).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetOwner {
    pub tgid: u32,
    pub pid: u32,
    pub start_boottime_ns: u64,
    pub pid_ino: u64,
    pub cgroup_id: u64,
    pub uid: u32,
    pub gid: u32,
    /// [`NET_INGRESS`] for an accepted connection.
    pub flags: u32,
    pub _pad: u32,
    pub comm: [u8; COMM_LEN],
}
}

/// The `sock/inet_sock_set_state` tracepoint's record, as the kernel has
/// laid it out since 4.16 (checked against tracefs at start-up).
pub mod inet_sock_set_state {
    pub const SKADDR: usize = 8;
    pub const OLDSTATE: usize = 16;
    pub const NEWSTATE: usize = 20;
    pub const SPORT: usize = 24;
    pub const DPORT: usize = 26;
    pub const FAMILY: usize = 28;
    pub const PROTOCOL: usize = 30;
    pub const SADDR: usize = 32;
    pub const DADDR: usize = 36;
    pub const SADDR_V6: usize = 40;
    pub const DADDR_V6: usize = 56;
    /// `TCP_SYN_SENT` and `TCP_CLOSE` (include/net/tcp_states.h).
    pub const TCP_SYN_SENT: i32 = 2;
    pub const TCP_CLOSE: i32 = 7;
}
