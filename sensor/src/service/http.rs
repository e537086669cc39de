//! The `/metrics`, `/healthz` and `/readyz` endpoint the kubelet probes and
//! Prometheus scrapes. It answers three GET paths and nothing else, on a
//! thread of its own with its own runtime (so neither it nor the per-event
//! loop can stall the other), with a cap on connections (the oldest idle
//! one is closed to make room), short request and response timeouts and a
//! size cap, so a slow or hostile client — or two thousand of them — can
//! neither stall the sensor nor keep the kubelet's probe out.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::service::metrics::{HttpClose, Metrics};

/// How long the event loop may go without turning before `/healthz` fails.
const LIVENESS_MAX_AGE: Duration = Duration::from_secs(10);

/// Connections still waiting for their request head, at most. At the cap
/// the oldest of them is closed to make room: idle connections cannot keep
/// a prober out, and the sensor never holds more than a few dozen sockets.
pub const MAX_PENDING_CONNECTIONS: usize = 64;
/// Connections being answered (request complete), at most; beyond that a
/// new connection is closed at once.
const MAX_ANSWERING_CONNECTIONS: usize = 64;
/// Time a client has to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Time a client has to take the response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Request heads larger than this are cut (only the first line matters).
const MAX_HEAD: usize = 2048;

/// Connections the kernel queues for `accept` (std's default is 128): a
/// burst beyond it drops SYNs, and a dropped SYN costs a prober a second.
const BACKLOG: i32 = 1024;

/// Binds the metrics address (an error here is a start-up error).
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    // A second listen() on a listening socket only resizes its queue.
    // SAFETY: listen(2) on a socket fd we own; no memory is passed.
    if unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&listener), BACKLOG) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `/metrics`, `/healthz` and `/readyz` on a thread of its own with
/// its own single-threaded runtime: a flood of connections costs the event
/// loop nothing, and a busy event loop cannot delay `/healthz` (which
/// reports the event loop's heartbeat).
pub fn spawn(
    listener: std::net::TcpListener,
    metrics: Arc<Metrics>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    std::thread::Builder::new()
        .name("sensor-http".into())
        .spawn(move || runtime.block_on(serve(listener, metrics)))
}

/// The accept loop (see [`spawn`]); runs until its runtime is dropped.
pub async fn serve(listener: std::net::TcpListener, metrics: Arc<Metrics>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sensor: warning: metrics endpoint disabled: {e}");
            return;
        }
    };
    let mut pending: VecDeque<AbortHandle> = VecDeque::new();
    let answering = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of fds or memory: back off a little.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        // What the client already sent: a prober's request is usually
        // there by now, and such a connection is answered whatever the
        // flood around it.
        let Ok((stream, head, complete)) = read_ready(stream) else {
            continue;
        };
        if complete {
            if answering.load(Ordering::Relaxed) >= MAX_ANSWERING_CONNECTIONS {
                metrics.add_http_closed(HttpClose::Rejected);
                continue;
            }
            answering.fetch_add(1, Ordering::Relaxed);
        }
        let task_metrics = metrics.clone();
        let task_answering = answering.clone();
        let task = tokio::spawn(async move {
            answer(stream, head, complete, &task_metrics).await;
            if complete {
                task_answering.fetch_sub(1, Ordering::Relaxed);
            }
        });
        if !complete {
            pending.retain(|h| !h.is_finished());
            if pending.len() >= MAX_PENDING_CONNECTIONS {
                if let Some(oldest) = pending.pop_front() {
                    oldest.abort();
                    metrics.add_http_closed(HttpClose::Evicted);
                }
            }
            pending.push_back(task.abort_handle());
        }
        // Let the new connection's task run before the next accept.
        tokio::task::yield_now().await;
    }
}

/// Reads whatever the client has sent so far, without waiting; true when
/// that is the whole request head (or all the client will send).
fn read_ready(stream: TcpStream) -> std::io::Result<(TcpStream, Vec<u8>, bool)> {
    let mut std_stream = stream.into_std()?;
    let mut head = vec![0u8; MAX_HEAD];
    let mut len = 0;
    let mut eof = false;
    while len < head.len() {
        match std::io::Read::read(&mut std_stream, &mut head[len..]) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => {
                len += n;
                if head_complete(&head[..len]) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    head.truncate(len);
    let complete = eof || head_complete(&head);
    Ok((TcpStream::from_std(std_stream)?, head, complete))
}

fn head_complete(head: &[u8]) -> bool {
    head.len() >= MAX_HEAD || head.windows(4).any(|w| w == b"\r\n\r\n")
}

async fn answer(mut stream: TcpStream, mut head: Vec<u8>, complete: bool, metrics: &Metrics) {
    if !complete {
        let read = tokio::time::timeout(HEADER_TIMEOUT, read_head(&mut stream, &mut head)).await;
        if read.is_err() {
            metrics.add_http_closed(HttpClose::Timeout);
            return;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let (status, content_type, body) = route(text.lines().next().unwrap_or(""), metrics);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    };
    if tokio::time::timeout(WRITE_TIMEOUT, write).await.is_err() {
        metrics.add_http_closed(HttpClose::Timeout);
    }
}

/// Reads the rest of the request head (only the first line matters),
/// capped: closing with unread request bytes would reset the connection
/// and the client could lose the response.
async fn read_head(stream: &mut TcpStream, head: &mut Vec<u8>) -> std::io::Result<()> {
    let mut buf = [0u8; 512];
    while !head_complete(head) {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let room = MAX_HEAD - head.len();
        head.extend_from_slice(&buf[..n.min(room)]);
    }
    Ok(())
}

/// Status line, content type and body for a request line.
fn route(request_line: &str, metrics: &Metrics) -> (&'static str, &'static str, String) {
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        return ("405 Method Not Allowed", "text/plain", "GET only\n".into());
    }
    match path {
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        "/healthz" if metrics.is_live(LIVENESS_MAX_AGE) => ("200 OK", "text/plain", "ok\n".into()),
        "/healthz" => (
            "503 Service Unavailable",
            "text/plain",
            "event loop stalled\n".into(),
        ),
        "/readyz" if metrics.is_ready() => ("200 OK", "text/plain", "ready\n".into()),
        "/readyz" => ("503 Service Unavailable", "text/plain", "starting\n".into()),
        _ => ("404 Not Found", "text/plain", "not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let m = Metrics::new([]);
        assert_eq!(
            route("GET /readyz HTTP/1.1", &m).0,
            "503 Service Unavailable"
        );
        m.set_ready();
        assert_eq!(route("GET /readyz HTTP/1.1", &m).0, "200 OK");
        m.heartbeat();
        assert_eq!(route("GET /healthz HTTP/1.1", &m).0, "200 OK");
        assert_eq!(
            route("POST /metrics HTTP/1.1", &m).0,
            "405 Method Not Allowed"
        );
        assert_eq!(route("GET /nope HTTP/1.1", &m).0, "404 Not Found");
        assert_eq!(route("", &m).0, "405 Method Not Allowed");
        assert!(route("GET /metrics HTTP/1.1", &m)
            .2
            .contains("sensor_ready 1"));
    }
}
