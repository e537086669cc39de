//! Which mechanism gives this kernel's network events, and attaching it.
//!
//! One mechanism on every supported kernel: the `sock/inet_sock_set_state`
//! tracepoint (connections attempted, in the connecting task's context,
//! and closed) and the `accept`/`accept4` syscall exits (connections
//! accepted). Attached only when a loaded rule can match a network event;
//! `NET_WANT` tells the programs which of the three actions to send.
//! All or nothing: a set that attaches only in part is detached again.

use std::path::Path;

use aya::{
    maps::{Array, MapData, MapError, PerCpuArray},
    programs::TracePoint,
    Ebpf,
};
use sensor_common::net::{inet_sock_set_state as tp, net_op, net_verdict};

use crate::kernel::file_filter::PrefilterCount;
use crate::kernel::file_hooks::{load_error, AttachError};
use crate::kernel::tracefs::TracefsError;

/// Why the network programs could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum NetAttachError {
    #[error(transparent)]
    Tracefs(#[from] TracefsError),
    /// The tracepoint's layout is not the one the program reads.
    #[error("{0}")]
    Layout(String),
    #[error("{0} missing from the object")]
    Missing(&'static str),
    #[error("{name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: Box<MapError>,
    },
    #[error(transparent)]
    Attach(Box<AttachError>),
    #[error("{program} on {category}/{tracepoint}: {source}")]
    Tracepoint {
        program: &'static str,
        category: &'static str,
        tracepoint: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
}

impl From<AttachError> for NetAttachError {
    fn from(e: AttachError) -> NetAttachError {
        NetAttachError::Attach(Box::new(e))
    }
}

use crate::kernel::tracefs::TracepointFormat;

/// Which network actions the loaded rules can use: bit `1 << op` per
/// [`net_op`] value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetWant(pub u32);

impl NetWant {
    pub const ATTEMPTED: NetWant = NetWant(1 << net_op::ATTEMPTED);
    pub const ACCEPTED: NetWant = NetWant(1 << net_op::ACCEPTED);
    pub const CLOSED: NetWant = NetWant(1 << net_op::CLOSED);

    pub fn none(self) -> bool {
        self.0 == 0
    }

    pub fn has(self, other: NetWant) -> bool {
        self.0 & other.0 != 0
    }

    pub fn union(self, other: NetWant) -> NetWant {
        NetWant(self.0 | other.0)
    }

    /// The ECS `event.action` values wanted, for the start-up line.
    pub fn actions(self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (want, name) in [
            (NetWant::ATTEMPTED, "connection_attempted"),
            (NetWant::ACCEPTED, "connection_accepted"),
            (NetWant::CLOSED, "disconnect_received"),
        ] {
            if self.has(want) {
                out.push(name);
            }
        }
        out
    }
}

/// How network events reach the sensor on this kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetMechanism {
    /// The tracepoints, sending the actions in `want`.
    Tracepoints { want: NetWant },
    /// Not attached: no loaded rule can match a network event.
    NotNeeded,
    /// No network events; why.
    Unavailable { reason: String },
}

impl NetMechanism {
    /// What the rules can rely on: the mechanism, or why there is none
    /// (not attached because no rule needs it counts as available).
    pub fn availability(&self) -> Result<String, String> {
        match self {
            NetMechanism::Tracepoints { .. } => Ok("tracepoints".to_owned()),
            NetMechanism::NotNeeded => Ok("not needed".to_owned()),
            NetMechanism::Unavailable { reason } => Err(reason.clone()),
        }
    }

    /// One line for the start-up summary.
    pub fn describe(&self) -> String {
        match self {
            NetMechanism::Tracepoints { want } => format!(
                "network events via tracepoints (sock/inet_sock_set_state, \
                 syscalls/sys_exit_accept4, sys_exit_accept): {}",
                want.actions().join(", ")
            ),
            NetMechanism::NotNeeded => "network events off: no loaded rule reads them".to_owned(),
            NetMechanism::Unavailable { reason } => {
                format!("network events unavailable: {reason}")
            }
        }
    }
}

/// The `inet_sock_set_state` fields the program reads at fixed offsets
/// (`sensor_common::net::inet_sock_set_state`), checked against this
/// kernel's format.
const STATE_FIELDS: [(&str, usize); 11] = [
    ("skaddr", tp::SKADDR),
    ("oldstate", tp::OLDSTATE),
    ("newstate", tp::NEWSTATE),
    ("sport", tp::SPORT),
    ("dport", tp::DPORT),
    ("family", tp::FAMILY),
    ("protocol", tp::PROTOCOL),
    ("saddr", tp::SADDR),
    ("daddr", tp::DADDR),
    ("saddr_v6", tp::SADDR_V6),
    ("daddr_v6", tp::DADDR_V6),
];

/// Whether the running kernel lays the tracepoint out as the program reads
/// it.
pub fn check_state_format(format: &TracepointFormat) -> Result<(), String> {
    for (name, at) in STATE_FIELDS {
        match format.field(name) {
            Some(f) if f.offset as usize == at => {}
            Some(f) => {
                return Err(format!(
                    "sock/inet_sock_set_state has `{name}` at offset {}, not {at}",
                    f.offset
                ))
            }
            None => return Err(format!("sock/inet_sock_set_state has no `{name}` field")),
        }
    }
    Ok(())
}

/// The network programs' counters, read by the agent.
pub struct NetCounters {
    /// Connections whose close cannot be reported (`NET_UNTRACKED`).
    untracked: PerCpuArray<MapData, u64>,
    /// The prefilter's verdicts (`NET_COUNTS`).
    counts: PerCpuArray<MapData, u64>,
}

impl NetCounters {
    fn take(ebpf: &mut Ebpf) -> Result<NetCounters, NetAttachError> {
        let mut take = |name: &'static str| {
            ebpf.take_map(name)
                .ok_or(NetAttachError::Missing(name))
                .and_then(|m| {
                    PerCpuArray::try_from(m).map_err(|source| NetAttachError::Map {
                        name,
                        source: Box::new(source),
                    })
                })
        };
        Ok(NetCounters {
            untracked: take("NET_UNTRACKED")?,
            counts: take("NET_COUNTS")?,
        })
    }

    /// Connections reported whose close will not be (the kernel's socket
    /// table was full when they started), since load.
    pub fn untracked(&self) -> Result<u64, MapError> {
        Ok(self.untracked.get(&0, 0)?.iter().sum())
    }

    /// The prefilter's verdicts summed over CPUs, per action and verdict
    /// (every pair, zeros included).
    pub fn counts(&self) -> Result<Vec<PrefilterCount>, MapError> {
        let mut out = Vec::new();
        for (op, name) in crate::network::prefilter::ACTIONS {
            for v in 0..net_verdict::COUNT {
                let count = self
                    .counts
                    .get(&(op * net_verdict::COUNT + v), 0)?
                    .iter()
                    .sum();
                out.push(PrefilterCount {
                    op: name,
                    verdict: net_verdict::NAMES[v as usize],
                    count,
                });
            }
        }
        Ok(out)
    }
}

/// Attaches the network programs for `want` (nothing when it is empty),
/// sending the actions of `by_name` (bit `1 << op`) only for processes
/// whose name passes them. Never fails: what could not be attached is the
/// returned reason. `offsets_error` is why the socket offsets could not
/// be resolved, if so.
pub fn attach(
    ebpf: &mut Ebpf,
    want: NetWant,
    by_name: u32,
    tracefs: &Path,
    offsets_error: Option<String>,
) -> (NetMechanism, Option<NetCounters>) {
    if want.none() {
        return (NetMechanism::NotNeeded, None);
    }
    if let Some(reason) = offsets_error {
        return (NetMechanism::Unavailable { reason }, None);
    }
    match attach_all(ebpf, want, by_name, tracefs).and_then(|()| NetCounters::take(ebpf)) {
        Ok(counters) => (NetMechanism::Tracepoints { want }, Some(counters)),
        Err(e) => {
            for program in ["sensor_net_state", "sensor_net_accept"] {
                if let Some(Ok(p)) = ebpf.program_mut(program).map(<&mut TracePoint>::try_from) {
                    let _ = p.unload();
                }
            }
            (
                NetMechanism::Unavailable {
                    reason: e.to_string(),
                },
                None,
            )
        }
    }
}

/// Sets one-value array `name` to `value`.
fn set_word(ebpf: &mut Ebpf, name: &'static str, value: u32) -> Result<(), NetAttachError> {
    let map_err = |source| NetAttachError::Map {
        name,
        source: Box::new(source),
    };
    let mut map: Array<_, u32> =
        Array::try_from(ebpf.map_mut(name).ok_or(NetAttachError::Missing(name))?)
            .map_err(map_err)?;
    map.set(0, value, 0).map_err(map_err)
}

fn attach_all(
    ebpf: &mut Ebpf,
    want: NetWant,
    by_name: u32,
    tracefs: &Path,
) -> Result<(), NetAttachError> {
    let format = TracepointFormat::read(tracefs, "sock", "inet_sock_set_state")?;
    check_state_format(&format).map_err(NetAttachError::Layout)?;
    set_word(ebpf, "NET_WANT", want.0)?;
    set_word(ebpf, "NET_BY_NAME", by_name)?;
    if want.has(NetWant::ATTEMPTED) || want.has(NetWant::CLOSED) {
        attach_one(
            ebpf,
            "sensor_net_state",
            "sock",
            &["inet_sock_set_state"],
            tracefs,
        )?;
    }
    if want.has(NetWant::ACCEPTED) || want.has(NetWant::CLOSED) {
        attach_one(
            ebpf,
            "sensor_net_accept",
            "syscalls",
            &["sys_exit_accept4", "sys_exit_accept"],
            tracefs,
        )?;
    }
    Ok(())
}

/// Loads `program` and attaches it to each tracepoint of `names` this
/// kernel has; the first is required.
fn attach_one(
    ebpf: &mut Ebpf,
    program: &'static str,
    category: &'static str,
    names: &[&'static str],
    tracefs: &Path,
) -> Result<(), NetAttachError> {
    let prog: &mut TracePoint = ebpf
        .program_mut(program)
        .ok_or(NetAttachError::Missing(program))?
        .try_into()
        .map_err(|source| AttachError::Program {
            program: program.to_owned(),
            source,
        })?;
    prog.load().map_err(|e| load_error(program, &e))?;
    for (i, name) in names.iter().enumerate() {
        if i > 0 && !tracefs.join("events").join(category).join(name).exists() {
            continue;
        }
        prog.attach(category, name)
            .map_err(|source| NetAttachError::Tracepoint {
                program,
                category,
                tracepoint: name,
                source: Box::new(source),
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMAT: &str = "name: inet_sock_set_state
ID: 2287
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:const void * skaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:int oldstate;\toffset:16;\tsize:4;\tsigned:1;
\tfield:int newstate;\toffset:20;\tsize:4;\tsigned:1;
\tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;
\tfield:__u16 dport;\toffset:26;\tsize:2;\tsigned:0;
\tfield:__u16 family;\toffset:28;\tsize:2;\tsigned:0;
\tfield:__u16 protocol;\toffset:30;\tsize:2;\tsigned:0;
\tfield:__u8 saddr[4];\toffset:32;\tsize:4;\tsigned:0;
\tfield:__u8 daddr[4];\toffset:36;\tsize:4;\tsigned:0;
\tfield:__u8 saddr_v6[16];\toffset:40;\tsize:16;\tsigned:0;
\tfield:__u8 daddr_v6[16];\toffset:56;\tsize:16;\tsigned:0;
";

    #[test]
    fn the_kernels_layout_is_accepted_and_a_moved_field_refused() {
        let f = TracepointFormat::parse("inet_sock_set_state", FORMAT);
        assert_eq!(check_state_format(&f), Ok(()));
        let moved = FORMAT.replace("offset:26;\tsize:2", "offset:28;\tsize:2");
        let f = TracepointFormat::parse("inet_sock_set_state", &moved);
        assert_eq!(
            check_state_format(&f),
            Err("sock/inet_sock_set_state has `dport` at offset 28, not 26".to_owned())
        );
        let gone = FORMAT.replace("daddr_v6", "daddr_six");
        let f = TracepointFormat::parse("inet_sock_set_state", &gone);
        assert_eq!(
            check_state_format(&f),
            Err("sock/inet_sock_set_state has no `daddr_v6` field".to_owned())
        );
    }

    #[test]
    fn wanted_actions_are_named() {
        assert_eq!(
            NetWant::ATTEMPTED.union(NetWant::CLOSED).actions(),
            ["connection_attempted", "disconnect_received"]
        );
        assert!(NetWant::default().none());
    }
}
