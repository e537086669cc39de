//! ECS fields of a network event (`source.*`, `destination.*`,
//! `network.*`), as Elastic Defend writes them, and the rules' native
//! lookups of them.

use serde::Serialize;

use crate::ecs::EcsEvent;
use crate::eql::document::Value;

/// `source` or `destination`. Serialised with `address` (Elastic Defend
/// writes the IP there too), derived from `ip` rather than stored twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// IPv4 dotted, IPv6 in RFC 5952 form; an IPv4-mapped IPv6 address is
    /// the IPv4 address, as Elasticsearch's `ip` type holds it.
    pub ip: String,
    /// Absent when the kernel had not chosen it yet.
    pub port: Option<u16>,
}

impl Endpoint {
    pub fn new(ip: std::net::IpAddr, port: Option<u16>) -> Endpoint {
        Endpoint {
            ip: ip.to_string(),
            port,
        }
    }
}

impl Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(2 + usize::from(self.port.is_some())))?;
        m.serialize_entry("address", &self.ip)?;
        m.serialize_entry("ip", &self.ip)?;
        if let Some(p) = self.port {
            m.serialize_entry("port", &p)?;
        }
        m.end()
    }
}

/// `network.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkFields {
    /// `egress` (the process connected) or `ingress` (it accepted).
    pub direction: &'static str,
    /// `tcp`.
    pub transport: &'static str,
    /// `ipv4` or `ipv6`, of the addresses as reported.
    #[serde(rename = "type")]
    pub network_type: &'static str,
}

/// The paths [`EcsEvent::visit_network`] answers.
pub const NETWORK_PATHS: [&str; 9] = [
    "source.address",
    "source.ip",
    "source.port",
    "destination.address",
    "destination.ip",
    "destination.port",
    "network.direction",
    "network.transport",
    "network.type",
];

impl EcsEvent {
    /// `source.*`, `destination.*` and `network.*`, answered natively.
    /// `None`: not one of these paths.
    pub(crate) fn visit_network(
        &self,
        path: &str,
        f: &mut dyn FnMut(Value<'_>) -> bool,
    ) -> Option<bool> {
        let (end, leaf) = match path.split_once('.') {
            Some(("source", leaf)) => (self.source.as_ref(), leaf),
            Some(("destination", leaf)) => (self.destination.as_ref(), leaf),
            Some(("network", leaf)) => {
                let n = self.network.as_ref();
                let value = match leaf {
                    "direction" => n.map(|n| n.direction),
                    "transport" => n.map(|n| n.transport),
                    "type" => n.map(|n| n.network_type),
                    _ => return None,
                };
                return Some(value.is_some_and(|v| f(Value::Str(v))));
            }
            _ => return None,
        };
        Some(match leaf {
            "address" | "ip" => end.is_some_and(|e| f(Value::Str(&e.ip))),
            "port" => end
                .and_then(|e| e.port)
                .is_some_and(|p| f(Value::Int(i64::from(p)))),
            _ => return None,
        })
    }
}
