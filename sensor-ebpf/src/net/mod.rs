//! Network events: TCP connections attempted, accepted and closed, for
//! IPv4 and IPv6, from tracepoints every supported kernel has.
//!
//! - **Attempted**: `sock/inet_sock_set_state` from CLOSE to SYN_SENT.
//!   The kernel makes that transition inside `tcp_v4_connect` /
//!   `tcp_v6_connect`, in the context of the task that connects, whatever
//!   way it called (`connect`, a 32-bit `socketcall`, io_uring's worker,
//!   which is a thread of the same process). The tuple is the socket's.
//! - **Accepted**: `syscalls/sys_exit_accept4` and `sys_exit_accept`: the
//!   new descriptor's socket, read from the task's file table.
//! - **Closed**: `sock/inet_sock_set_state` to CLOSE, for a socket reported
//!   above: the close often happens in softirq context (a peer's FIN or
//!   RST), where `current` is whatever task was interrupted, so the record
//!   names the process remembered at the start (`NET_SOCKS`), never
//!   `current`.
//!
//! `NET_WANT` (set by userspace from the loaded rules) says which of the
//! three the rules can use; the others are never sent. `NET_BY_NAME` says
//! which of those are sent only for processes whose name passes them (the
//! file prefilter's per-process name verdict, bits from
//! `NET_PROC_OP_BASE`); every verdict is counted (`NET_COUNTS`). A close is
//! judged at the connection's start: a connection is tracked only when
//! its close would be sent.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_uid_gid},
    macros::{map, tracepoint},
    maps::{Array, HashMap, PerCpuArray},
    programs::TracePointContext,
};
use sensor_common::{
    lost_index,
    net::{
        inet_sock_set_state as tp, net_op, net_verdict, NetOwner, NetRecord, AF_INET, AF_INET6,
        IPPROTO_TCP, NET_COUNTS_LEN, NET_INGRESS, NET_NETNS_UNKNOWN, NET_PROC_OP_BASE,
        NET_SOCKS_MAX, NET_SPORT_UNKNOWN,
    },
    program_index, record_kind, COMM_LEN,
};

use crate::kernel_read::{self, offset, read_ptr, read_u16, read_u32};
use crate::maps::{count_drop, header, output_prefix, Dropped};
use crate::task::{current_task, pid_ino, Task};
use crate::{cgroup_v1, file};

/// Bit `1 << op` set for each [`net_op`] a loaded rule can match.
#[map]
static NET_WANT: Array<u32> = Array::with_max_entries(1, 0);

/// Bit `1 << op` set for each [`net_op`] sent only for processes whose
/// name passes it (the rules wanting it all name processes); the others
/// wanted are sent for every process.
#[map]
static NET_BY_NAME: Array<u32> = Array::with_max_entries(1, 0);

/// The verdicts, per CPU (`op * net_verdict::COUNT + verdict`).
#[map]
static NET_COUNTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(NET_COUNTS_LEN, 0);

/// Sockets whose close is awaited: kernel address → the process that
/// opened or accepted the connection.
#[map]
static NET_SOCKS: HashMap<u64, NetOwner> = HashMap::with_max_entries(NET_SOCKS_MAX, 0);

/// Connections whose close will not be reported because `NET_SOCKS` was
/// full when they started (index 0), per CPU.
#[map]
static NET_UNTRACKED: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// One record per CPU, built in place (the stack is small).
#[map]
static NET_SCRATCH: PerCpuArray<NetRecord> = PerCpuArray::with_max_entries(1, 0);

fn scratch() -> Result<&'static mut NetRecord, Dropped> {
    let rec = NET_SCRATCH.get_ptr_mut(0).ok_or(Dropped::Scratch)?;
    // SAFETY: per-CPU map value, valid for the program's duration; only
    // this CPU uses it, and programs on one CPU do not interleave.
    Ok(unsafe { &mut *rec })
}

fn send_record(rec: &mut NetRecord) {
    output_prefix(rec, core::mem::size_of::<NetRecord>(), lost_index::NET);
}

const S_IFMT: u32 = 0o170000;
const S_IFSOCK: u32 = 0o140000;

fn wanted(op: u32) -> bool {
    NET_WANT.get(0).is_some_and(|w| *w & (1 << op) != 0)
}

fn count(op: u32, verdict: u32) {
    if let Some(c) = NET_COUNTS.get_ptr_mut(op * net_verdict::COUNT + verdict) {
        // SAFETY: per-CPU slot, only this CPU's programs touch it, and
        // they do not interleave.
        unsafe { *c += 1 };
    }
}

/// Whether an event of `op` for process `tgid` is sent: wanted by some
/// rule and, where the rules name processes, by this one's name (a
/// process without a verdict, or names not loaded yet, passes). Counted.
fn passes(op: u32, tgid: u32) -> bool {
    if !wanted(op) {
        return false;
    }
    let by_name = NET_BY_NAME.get(0).is_some_and(|m| *m & (1 << op) != 0);
    if !by_name || !file::filter::names_used() {
        count(op, net_verdict::PASS_ALL);
        return true;
    }
    if file::filter::name_passes(tgid, NET_PROC_OP_BASE + op) {
        count(op, net_verdict::PASSED);
        true
    } else {
        count(op, net_verdict::FILTERED);
        false
    }
}

#[tracepoint]
pub fn sensor_net_state(ctx: TracePointContext) -> u32 {
    count_drop(&ctx, program_index::NET_STATE, try_state(&ctx));
    0
}

#[tracepoint]
pub fn sensor_net_accept(ctx: TracePointContext) -> u32 {
    count_drop(&ctx, program_index::NET_ACCEPT, try_accept(&ctx));
    0
}

fn read_tp<T>(ctx: &TracePointContext, at: usize) -> Result<T, Dropped> {
    // SAFETY: `at` is one of the record's fields (checked against tracefs
    // by userspace before loading).
    unsafe { ctx.read_at::<T>(at) }.map_err(|_| Dropped::Read)
}

fn try_state(ctx: &TracePointContext) -> Result<(), Dropped> {
    if read_tp::<u16>(ctx, tp::PROTOCOL)? != IPPROTO_TCP {
        return Ok(());
    }
    let old: i32 = read_tp(ctx, tp::OLDSTATE)?;
    let new: i32 = read_tp(ctx, tp::NEWSTATE)?;
    let sk: u64 = read_tp(ctx, tp::SKADDR)?;
    if old == tp::TCP_CLOSE && new == tp::TCP_SYN_SENT {
        // Judged before the owner is read: a connection neither sent nor
        // tracked costs no task reads.
        let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
        let close = passes(net_op::CLOSED, tgid);
        let send = passes(net_op::ATTEMPTED, tgid);
        if !close && !send {
            return Ok(());
        }
        let owner = current_owner(0);
        if close {
            track(sk, &owner);
        }
        if send {
            let rec = scratch()?;
            fill_from_tp(ctx, rec, net_op::ATTEMPTED, &owner, sk)?;
            if rec.sport == 0 {
                rec.flags |= NET_SPORT_UNKNOWN;
            }
            send_record(rec);
        }
    } else if new == tp::TCP_CLOSE {
        // SAFETY: the value is copied out before the entry is removed.
        let Some(owner) = (unsafe { NET_SOCKS.get(sk) }).copied() else {
            return Ok(());
        };
        let _ = NET_SOCKS.remove(sk);
        let rec = scratch()?;
        fill_from_tp(ctx, rec, net_op::CLOSED, &owner, sk)?;
        send_record(rec);
    }
    Ok(())
}

/// Fills `rec` for `sk`, its tuple from the tracepoint's own fields.
fn fill_from_tp(
    ctx: &TracePointContext,
    rec: &mut NetRecord,
    op: u32,
    owner: &NetOwner,
    sk: u64,
) -> Result<(), Dropped> {
    let family: u16 = read_tp(ctx, tp::FAMILY)?;
    fill_base(rec, op, owner, family, sk);
    rec.sport = read_tp(ctx, tp::SPORT)?;
    rec.dport = read_tp(ctx, tp::DPORT)?;
    if family == AF_INET6 {
        rec.saddr = read_tp(ctx, tp::SADDR_V6)?;
        rec.daddr = read_tp(ctx, tp::DADDR_V6)?;
    } else {
        rec.saddr = v4(read_tp(ctx, tp::SADDR)?);
        rec.daddr = v4(read_tp(ctx, tp::DADDR)?);
    }
    Ok(())
}

/// Everything but the tuple.
fn fill_base(rec: &mut NetRecord, op: u32, owner: &NetOwner, family: u16, sk: u64) {
    rec.header = header(record_kind::NET);
    rec.tgid = owner.tgid;
    rec.pid = owner.pid;
    rec.start_boottime_ns = owner.start_boottime_ns;
    rec.pid_ino = owner.pid_ino;
    rec.cgroup_id = owner.cgroup_id;
    rec.uid = owner.uid;
    rec.gid = owner.gid;
    rec.op = op;
    rec.flags = owner.flags;
    rec.family = family;
    rec.protocol = IPPROTO_TCP;
    rec.sport = 0;
    rec.dport = 0;
    rec.saddr = [0; 16];
    rec.daddr = [0; 16];
    rec.netns = 0;
    rec._pad = 0;
    rec.comm = owner.comm;
    match netns(sk as *const u8) {
        Ok(ns) => rec.netns = ns,
        Err(_) => rec.flags |= NET_NETNS_UNKNOWN,
    }
}

/// An IPv4 address in the record's 16-byte form.
fn v4(a: [u8; 4]) -> [u8; 16] {
    [a[0], a[1], a[2], a[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
}

fn netns(sk: *const u8) -> Result<u32, Dropped> {
    let net = read_ptr(sk, offset(|o| &o.sk_net))?;
    Ok(read_u32(net, offset(|o| &o.net_ns_inum))?)
}

/// The current task, as the owner of a connection it starts now.
fn current_owner(flags: u32) -> NetOwner {
    let task = current_task();
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    let leader = match Task(task).group_leader() {
        Ok(leader) if !leader.is_null() => leader,
        _ => task,
    };
    NetOwner {
        tgid: (pid_tgid >> 32) as u32,
        pid: pid_tgid as u32,
        start_boottime_ns: Task(leader).start_boottime().unwrap_or(0),
        pid_ino: pid_ino(leader),
        cgroup_id: cgroup_v1::current_cgroup_id(task),
        uid: uid_gid as u32,
        gid: (uid_gid >> 32) as u32,
        flags,
        _pad: 0,
        comm: Task(leader).comm().unwrap_or([0; COMM_LEN]),
    }
}

/// Remembers who `sk` belongs to until it closes; a full table is counted.
fn track(sk: u64, owner: &NetOwner) {
    if NET_SOCKS.insert(sk, owner, 0).is_err() {
        if let Some(counter) = NET_UNTRACKED.get_ptr_mut(0) {
            // SAFETY: per-CPU slot, only this CPU writes it.
            unsafe { *counter += 1 };
        }
    }
}

fn try_accept(ctx: &TracePointContext) -> Result<(), Dropped> {
    // SAFETY: a syscall exit record holds `ret` at offset 16.
    let ret: i64 = unsafe { ctx.read_at::<i64>(16) }.map_err(|_| Dropped::Read)?;
    if ret < 0 || ret > i32::MAX as i64 {
        return Ok(());
    }
    if !wanted(net_op::ACCEPTED) && !wanted(net_op::CLOSED) {
        return Ok(());
    }
    let file = file::events::fd_file(current_task(), ret as u32)?;
    if file.is_null() {
        return Ok(()); // closed by another thread already
    }
    let inode = read_ptr(file, offset(|o| &o.file_inode))?;
    let mode = read_u16(inode, offset(|o| &o.inode_mode))? as u32;
    if mode & S_IFMT != S_IFSOCK {
        return Ok(()); // another thread put another file at this number
    }
    let socket = read_ptr(file, offset(|o| &o.file_private_data))?;
    let sk = read_ptr(socket, offset(|o| &o.socket_sk))?;
    if sk.is_null() || read_u16(sk, offset(|o| &o.sk_protocol))? != IPPROTO_TCP {
        return Ok(());
    }
    let family = read_u16(sk, offset(|o| &o.sk_family))?;
    if family != AF_INET && family != AF_INET6 {
        return Ok(());
    }
    // Judged (and counted) only for what is a TCP connection.
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let send = passes(net_op::ACCEPTED, tgid);
    let close = passes(net_op::CLOSED, tgid);
    if !send && !close {
        return Ok(());
    }
    let owner = current_owner(NET_INGRESS);
    let rec = scratch()?;
    fill_base(rec, net_op::ACCEPTED, &owner, family, sk as u64);
    rec.sport = read_u16(sk, offset(|o| &o.sk_num))?;
    rec.dport = u16::from_be(read_u16(sk, offset(|o| &o.sk_dport))?);
    if family == AF_INET6 {
        rec.saddr = kernel_read::read_bytes::<16>(sk, offset(|o| &o.sk_v6_rcv_saddr))?;
        rec.daddr = kernel_read::read_bytes::<16>(sk, offset(|o| &o.sk_v6_daddr))?;
    } else {
        rec.saddr = v4(kernel_read::read_bytes::<4>(
            sk,
            offset(|o| &o.sk_rcv_saddr),
        )?);
        rec.daddr = v4(kernel_read::read_bytes::<4>(sk, offset(|o| &o.sk_daddr))?);
    }
    if close {
        track(sk as u64, &owner);
    }
    if send {
        send_record(rec);
    }
    Ok(())
}
