//! Two network namespaces joined by a veth pair, for network tests that
//! must never reach a real address: the "client" side (where a container
//! or process under test runs) holds 203.0.113.1/24, the "peer" side (the
//! attacker's host) 203.0.113.2/24, both in TEST-NET-3 (RFC 5737), with no
//! route anywhere else. Both namespaces and the pair are removed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};

/// The client side's address.
pub const CLIENT_IP: &str = "203.0.113.1";
/// The peer's address.
pub const PEER_IP: &str = "203.0.113.2";
/// The same two ends over IPv6 (2001:db8::/32, RFC 3849).
pub const CLIENT_IP6: &str = "2001:db8::1";
pub const PEER_IP6: &str = "2001:db8::2";

/// The two namespaces and the pair between them.
pub struct VethPair {
    client: String,
    peer: String,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (is iproute2 installed?)")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl VethPair {
    /// Creates `sx<tag>c` and `sx<tag>p` (a short tag: interface names
    /// have 15 bytes) with the pair between them, addressed and up.
    pub fn create(tag: &str) -> Result<VethPair> {
        let client = format!("sx{tag}c");
        let peer = format!("sx{tag}p");
        // Leftovers of an aborted run.
        let _ = ip(&["netns", "del", &client]);
        let _ = ip(&["netns", "del", &peer]);
        let pair = VethPair {
            client: client.clone(),
            peer: peer.clone(),
        };
        ip(&["netns", "add", &client])?;
        ip(&["netns", "add", &peer])?;
        let (c_if, p_if) = (format!("{client}0"), format!("{peer}0"));
        ip(&[
            "link", "add", &c_if, "netns", &client, "type", "veth", "peer", "name", &p_if, "netns",
            &peer,
        ])?;
        for (ns, dev, addr, addr6) in [
            (&client, &c_if, CLIENT_IP, CLIENT_IP6),
            (&peer, &p_if, PEER_IP, PEER_IP6),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr6}/64"),
                "dev",
                dev,
                "nodad",
            ])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(pair)
    }

    /// The client namespace's path (for a container's `network` namespace).
    pub fn client_path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.client)
    }

    /// A command run inside the client namespace.
    pub fn in_client(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.client, program]);
        c
    }

    /// A command run inside the peer namespace.
    pub fn in_peer(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.peer, program]);
        c
    }

    /// A TCP listener on the peer at `port` (IPv4 and IPv6) that accepts
    /// one connection, writes `exit` to it (a shell on the other end ends)
    /// and keeps it open a moment (busybox `nc`).
    pub fn listen_once(&self, port: u16) -> Result<Child> {
        listen_in(self.in_peer("busybox"), &self.peer, port)
    }

    /// The same listener on the client side (for loopback connections
    /// inside the client namespace).
    pub fn listen_once_in_client(&self, port: u16) -> Result<Child> {
        listen_in(self.in_client("busybox"), &self.client, port)
    }
}

fn listen_in(mut busybox: Command, ns: &str, port: u16) -> Result<Child> {
    {
        let child = busybox
            .args(["nc", "-l", "-p", &port.to_string(), "-e", "/bin/sh", "-c"])
            .arg("echo exit; sleep 1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting busybox nc in the peer namespace")?;
        // Until it listens (state 0A in /proc/net/tcp6: busybox listens
        // on the IPv6 wildcard, which takes IPv4 too).
        for _ in 0..100 {
            let tables = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    ns,
                    "cat",
                    "/proc/net/tcp",
                    "/proc/net/tcp6",
                ])
                .output()?;
            let port_hex = format!(":{port:04X}");
            if String::from_utf8_lossy(&tables.stdout).lines().any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.get(1).is_some_and(|a| a.ends_with(&port_hex)) && cols.get(3) == Some(&"0A")
            }) {
                return Ok(child);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        bail!("the listener on {port} in {ns} did not start")
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the pair, and so both.
        let _ = ip(&["netns", "del", &self.client]);
        let _ = ip(&["netns", "del", &self.peer]);
    }
}
