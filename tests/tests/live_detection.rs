//! Issue #5 end to end: real web servers in real containers, attacked over
//! loopback HTTP, and the live sensor's alerts for the seed rule.

use std::time::Duration;

use tests::skip_or_fail;
use tests::webserver::{Kind, Place, Server};

fn server(kind: Kind, place: Place) -> Option<Server> {
    match Server::start(kind, place) {
        Ok(s) => Some(s),
        Err(e) => {
            skip_or_fail(&format!("cannot start {} ({place:?}): {e:#}", kind.name()));
            None
        }
    }
}

#[test]
fn dev_servers_spawn_shells() {
    let _ = Duration::from_secs(1);
    for kind in [Kind::NginxPhpFpm, Kind::Apache, Kind::Gunicorn, Kind::Flask, Kind::Node, Kind::Tomcat] {
        let t = std::time::Instant::now();
        let Some(s) = server(kind, Place::Container) else { continue };
        eprintln!("{} up in {:?}", kind.name(), t.elapsed());
        for sh in kind.shells() {
            let body = s.run(sh, "echo parent=$(cat /proc/$PPID/comm) args=$(tr '\\0' ' ' </proc/$PPID/cmdline); cat /proc/self/cgroup | tail -1; id -un").unwrap();
            eprintln!("{} {}: {}", kind.name(), sh.path, body.trim());
        }
    }
}
