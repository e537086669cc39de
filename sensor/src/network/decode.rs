//! Network records, decoded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sensor_common::net::{
    net_op, NetRecord, AF_INET, AF_INET6, NET_INGRESS, NET_NETNS_UNKNOWN, NET_SPORT_UNKNOWN,
};

/// What happened to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetOp {
    Attempted,
    Accepted,
    Closed,
}

/// One TCP connection event, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetEvent {
    pub ktime_ns: u64,
    pub tgid: u32,
    pub start_boottime_ns: u64,
    /// 0 where the kernel has no pidfs.
    pub pid_ino: u64,
    pub cgroup_id: u64,
    pub uid: u32,
    pub gid: u32,
    pub op: NetOp,
    /// The connection came in (accepted, or the close of an accepted one).
    pub ingress: bool,
    pub local: IpAddr,
    /// `None` when the kernel had not chosen it yet (an attempt from an
    /// unbound socket).
    pub local_port: Option<u16>,
    pub remote: IpAddr,
    pub remote_port: u16,
    /// The socket's network namespace inode, when it could be read.
    pub netns: Option<u32>,
    pub comm: [u8; sensor_common::COMM_LEN],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NetDecodeError {
    #[error("network record of unknown operation {0}")]
    Op(u32),
    #[error("network record of unknown address family {0}")]
    Family(u16),
}

/// An address as Elasticsearch's `ip` type holds it: an IPv4-mapped IPv6
/// address (`::ffff:a.b.c.d`, what an IPv6 socket talking IPv4 has) is the
/// IPv4 address, so `cidrmatch(destination.ip, "127.0.0.0/8")` and
/// `destination.ip == "203.0.113.1"` see it as what it is on the wire.
fn address(family: u16, bytes: [u8; 16]) -> Result<IpAddr, NetDecodeError> {
    match family {
        AF_INET => Ok(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        AF_INET6 => {
            let v6 = Ipv6Addr::from(bytes);
            Ok(match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            })
        }
        other => Err(NetDecodeError::Family(other)),
    }
}

impl NetEvent {
    pub fn from_record(r: &NetRecord) -> Result<NetEvent, NetDecodeError> {
        let op = match r.op {
            net_op::ATTEMPTED => NetOp::Attempted,
            net_op::ACCEPTED => NetOp::Accepted,
            net_op::CLOSED => NetOp::Closed,
            other => return Err(NetDecodeError::Op(other)),
        };
        Ok(NetEvent {
            ktime_ns: r.header.ktime_ns,
            tgid: r.tgid,
            start_boottime_ns: r.start_boottime_ns,
            pid_ino: r.pid_ino,
            cgroup_id: r.cgroup_id,
            uid: r.uid,
            gid: r.gid,
            op,
            ingress: r.flags & NET_INGRESS != 0,
            local: address(r.family, r.saddr)?,
            local_port: (r.flags & NET_SPORT_UNKNOWN == 0).then_some(r.sport),
            remote: address(r.family, r.daddr)?,
            remote_port: r.dport,
            netns: (r.flags & NET_NETNS_UNKNOWN == 0).then_some(r.netns),
            comm: r.comm,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(family: u16, saddr: [u8; 16], daddr: [u8; 16]) -> NetRecord {
        NetRecord {
            tgid: 42,
            op: net_op::ATTEMPTED,
            flags: NET_SPORT_UNKNOWN,
            family,
            protocol: 6,
            sport: 0,
            dport: 4444,
            saddr,
            daddr,
            netns: 4026531840,
            ..NetRecord::default()
        }
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut out = [0; 16];
        out[..4].copy_from_slice(&a);
        out
    }

    #[test]
    fn ipv4_attempt_without_a_local_port_yet() {
        let ev = NetEvent::from_record(&record(AF_INET, v4([10, 0, 0, 2]), v4([203, 0, 113, 1])))
            .expect("decodes");
        assert_eq!(ev.op, NetOp::Attempted);
        assert_eq!(ev.remote.to_string(), "203.0.113.1");
        assert_eq!(ev.local.to_string(), "10.0.0.2");
        assert_eq!(ev.local_port, None);
        assert_eq!(ev.remote_port, 4444);
        assert_eq!(ev.netns, Some(4026531840));
        assert!(!ev.ingress);
    }

    #[test]
    fn ipv4_mapped_ipv6_is_the_ipv4_address_and_ipv6_is_canonical() {
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[127, 0, 0, 1]);
        let loopback6: [u8; 16] = Ipv6Addr::LOCALHOST.octets();
        let ev = NetEvent::from_record(&record(AF_INET6, loopback6, mapped)).expect("decodes");
        assert_eq!(ev.remote.to_string(), "127.0.0.1");
        assert_eq!(ev.local.to_string(), "::1");
        let doc: [u8; 16] = "2001:db8::1".parse::<Ipv6Addr>().expect("ip").octets();
        let ev = NetEvent::from_record(&record(AF_INET6, loopback6, doc)).expect("decodes");
        assert_eq!(ev.remote.to_string(), "2001:db8::1");
    }

    #[test]
    fn unknown_operation_or_family_is_an_error() {
        let mut r = record(AF_INET, v4([1, 2, 3, 4]), v4([1, 2, 3, 4]));
        r.op = 9;
        assert_eq!(NetEvent::from_record(&r), Err(NetDecodeError::Op(9)));
        let r = record(1, v4([1, 2, 3, 4]), v4([1, 2, 3, 4]));
        assert_eq!(NetEvent::from_record(&r), Err(NetDecodeError::Family(1)));
    }
}
