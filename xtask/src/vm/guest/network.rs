//! The guest's network check: one TCP connection to itself on loopback
//! (brought up first: the initramfs leaves it down), and its three events
//! (attempted, accepted, closed) with this process and the tuple, under a
//! rule that wants every network action of the check's port.

use serde_json::Value;

use super::{action, get, pid_of};

/// The port of the `network_events` check's connection (loopback inside
/// the guest).
const NET_PORT: u16 = 4713;
pub(super) const NET_RULE_ID: &str = "00000000-0000-4000-8000-0000000000e7";

/// A rule that wants every network action of the check's port.
pub(super) fn net_rule() -> String {
    format!(
        r#"[metadata]
creation_date = "2026/12/08"
maturity = "production"
updated_date = "2026/12/08"

[rule]
author = ["vm-test"]
description = "The vm-test guest's own connection."
language = "eql"
license = "Elastic License v2"
name = "VM test connection"
risk_score = 21
rule_id = "{NET_RULE_ID}"
severity = "low"
type = "eql"
query = '''
network where destination.port == {NET_PORT}
'''
"#
    )
}

/// Brings the guest's loopback interface up (the initramfs leaves it
/// down).
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: a plain socket for the interface ioctls, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: the ioctls read and write `ifr`, a valid ifreq for "lo".
    let r = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            -1
        } else {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr)
        }
    };
    let err = std::io::Error::last_os_error();
    // SAFETY: closing our own descriptor once.
    unsafe { libc::close(fd) };
    if r < 0 {
        return Err(err);
    }
    Ok(())
}

/// One TCP connection to ourselves on loopback, accepted and closed.
pub(super) fn connect_once() -> std::io::Result<()> {
    loopback_up()?;
    let listener = std::net::TcpListener::bind(("127.0.0.1", NET_PORT))?;
    let client = std::net::TcpStream::connect(("127.0.0.1", NET_PORT))?;
    let (server, _) = listener.accept()?;
    drop(client);
    drop(server);
    Ok(())
}

/// The connection's three events, by this process, with the tuple.
pub(super) fn network_check(
    events: &[Value],
    connected: &std::io::Result<()>,
) -> (&'static str, bool, String) {
    let me = std::process::id();
    let ours = |act: &str| {
        events.iter().any(|e| {
            action(e) == act
                && pid_of(e, "process.pid") == Some(me)
                && get(e, "destination.port").as_u64() == Some(u64::from(NET_PORT))
                && get(e, "destination.ip") == "127.0.0.1"
                && get(e, "source.ip") == "127.0.0.1"
        })
    };
    let seen: Vec<&str> = [
        "connection_attempted",
        "connection_accepted",
        "disconnect_received",
    ]
    .into_iter()
    .filter(|a| ours(a))
    .collect();
    (
        "network_events",
        connected.is_ok() && seen.len() == 3,
        format!("{connected:?}; saw {seen:?} for pid {me}"),
    )
}
