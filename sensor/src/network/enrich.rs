//! A network event's ECS document: the connection's endpoints and the
//! owning process with its parent, leaders and container.

use std::net::IpAddr;

use crate::context::process_table::ProcessTable;
use crate::ecs::enrich::{Enricher, KernelActor};
use crate::ecs::{Action, EcsEvent};
use crate::network::fields::{Endpoint, NetworkFields};
use crate::network::{NetEvent, NetOp};

impl Enricher {
    /// `event.category: network`, shaped like Elastic Defend's: for a
    /// connection the process made, `source` is its end and `destination`
    /// the peer (`network.direction: egress`); for one it accepted,
    /// `source` is the peer that connected and `destination` the local
    /// end (`ingress`). A close keeps the orientation of the connection's
    /// start.
    pub fn network_event(&mut self, ev: &NetEvent, table: &ProcessTable) -> EcsEvent {
        let action = match ev.op {
            NetOp::Attempted => Action::ConnectionAttempted,
            NetOp::Accepted => Action::ConnectionAccepted,
            NetOp::Closed => Action::DisconnectReceived,
        };
        let actor = KernelActor {
            ktime_ns: ev.ktime_ns,
            tgid: ev.tgid,
            start_boottime_ns: ev.start_boottime_ns,
            pid_ino: Some(ev.pid_ino),
            uid: ev.uid,
            gid: ev.gid,
            cgroup_id: ev.cgroup_id,
        };
        let mut out = self.actor_event(action, &actor, table);
        let local = Endpoint::new(ev.local, ev.local_port);
        let remote = Endpoint::new(ev.remote, Some(ev.remote_port));
        let (source, destination) = if ev.ingress {
            (remote, local)
        } else {
            (local, remote)
        };
        out.source = Some(source);
        out.destination = Some(destination);
        out.network = Some(NetworkFields {
            direction: if ev.ingress { "ingress" } else { "egress" },
            transport: "tcp",
            network_type: match ev.remote {
                IpAddr::V4(_) => "ipv4",
                IpAddr::V6(_) => "ipv6",
            },
        });
        out
    }
}
