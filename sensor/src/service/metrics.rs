//! The sensor's own health, in Prometheus' text exposition format, and the
//! `/healthz` / `/readyz` endpoints the kubelet probes.
//!
//! Counters are plain atomics updated on the event path (one relaxed add per
//! event); rendering happens only when scraped. The HTTP side answers three
//! GET paths and nothing else, on a thread of its own, with a cap on
//! connections (the oldest idle one is closed to make room), short request
//! and response timeouts and a size cap, so a slow or hostile client — or
//! two thousand of them — can neither stall the sensor nor keep the
//! kubelet's probe out.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// Rule evaluation time buckets (seconds), per event.
const EVAL_BUCKETS: [f64; 8] = [1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 1e-5, 1e-4, 1e-3];

/// Every figure the sensor exposes about itself.
pub struct Metrics {
    pub exec_events: AtomicU64,
    pub fork_events: AtomicU64,
    pub exit_events: AtomicU64,
    pub decode_errors: AtomicU64,
    pub lost_exec: AtomicU64,
    pub lost_fork: AtomicU64,
    pub lost_exit: AtomicU64,
    pub alert_output_errors: AtomicU64,
    pub event_output_errors: AtomicU64,
    pub process_table_entries: AtomicU64,
    /// Endpoint connections closed to make room for newer ones.
    http_evicted: AtomicU64,
    /// Endpoint connections closed at once (too many being answered).
    http_rejected: AtomicU64,
    /// Endpoint connections that sent no request head, or took no
    /// response, in time.
    http_timed_out: AtomicU64,
    /// Alerts by rule, in the rule set's order.
    alerts: Vec<(String, String, AtomicU64)>,
    eval_buckets: [AtomicU64; EVAL_BUCKETS.len()],
    eval_count: AtomicU64,
    eval_nanos: AtomicU64,
    ready: AtomicBool,
    started: Instant,
    /// Milliseconds since `started` at the event loop's last turn.
    heartbeat_ms: AtomicU64,
}

impl Metrics {
    /// `rules`: (rule_id, name) of every loaded rule.
    pub fn new(rules: impl IntoIterator<Item = (String, String)>) -> Arc<Metrics> {
        Arc::new(Metrics {
            exec_events: AtomicU64::new(0),
            fork_events: AtomicU64::new(0),
            exit_events: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
            lost_exec: AtomicU64::new(0),
            lost_fork: AtomicU64::new(0),
            lost_exit: AtomicU64::new(0),
            alert_output_errors: AtomicU64::new(0),
            event_output_errors: AtomicU64::new(0),
            process_table_entries: AtomicU64::new(0),
            http_evicted: AtomicU64::new(0),
            http_rejected: AtomicU64::new(0),
            http_timed_out: AtomicU64::new(0),
            alerts: rules
                .into_iter()
                .map(|(id, name)| (id, name, AtomicU64::new(0)))
                .collect(),
            eval_buckets: Default::default(),
            eval_count: AtomicU64::new(0),
            eval_nanos: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            started: Instant::now(),
            heartbeat_ms: AtomicU64::new(0),
        })
    }

    /// Counts an alert of `rule_id` (alerts are rare: a scan is fine).
    pub fn add_alert(&self, rule_id: &str) {
        if let Some((_, _, n)) = self.alerts.iter().find(|(id, _, _)| id == rule_id) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records one event's rule evaluation time.
    pub fn observe_eval(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (i, bound) in EVAL_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.eval_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.eval_count.fetch_add(1, Ordering::Relaxed);
        self.eval_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Programs attached and the process table seeded.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The event loop calls this every turn (at least once a second).
    pub fn heartbeat(&self) {
        self.heartbeat_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Live when the event loop turned within the last `max_age`.
    pub fn is_live(&self, max_age: Duration) -> bool {
        let last = Duration::from_millis(self.heartbeat_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last) <= max_age
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(2048);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "# HELP sensor_events_total Kernel records handled, by kind."
        );
        let _ = writeln!(s, "# TYPE sensor_events_total counter");
        for (kind, v) in [
            ("exec", &self.exec_events),
            ("fork", &self.fork_events),
            ("exit", &self.exit_events),
        ] {
            let _ = writeln!(s, "sensor_events_total{{kind=\"{kind}\"}} {}", get(v));
        }
        let _ = writeln!(
            s,
            "# HELP sensor_events_lost_total Kernel records lost because the ring buffer was full, by kind."
        );
        let _ = writeln!(s, "# TYPE sensor_events_lost_total counter");
        for (kind, v) in [
            ("exec", &self.lost_exec),
            ("fork", &self.lost_fork),
            ("exit", &self.lost_exit),
        ] {
            let _ = writeln!(s, "sensor_events_lost_total{{kind=\"{kind}\"}} {}", get(v));
        }
        let _ = writeln!(
            s,
            "# HELP sensor_decode_errors_total Kernel records that could not be decoded."
        );
        let _ = writeln!(s, "# TYPE sensor_decode_errors_total counter");
        let _ = writeln!(s, "sensor_decode_errors_total {}", get(&self.decode_errors));
        let _ = writeln!(s, "# HELP sensor_alerts_total Alerts raised, by rule.");
        let _ = writeln!(s, "# TYPE sensor_alerts_total counter");
        for (id, name, n) in &self.alerts {
            let _ = writeln!(
                s,
                "sensor_alerts_total{{rule_id=\"{}\",rule_name=\"{}\"}} {}",
                label(id),
                label(name),
                get(n)
            );
        }
        let _ = writeln!(
            s,
            "# HELP sensor_output_errors_total Failed writes or flushes, by output."
        );
        let _ = writeln!(s, "# TYPE sensor_output_errors_total counter");
        let _ = writeln!(
            s,
            "sensor_output_errors_total{{output=\"alerts\"}} {}",
            get(&self.alert_output_errors)
        );
        let _ = writeln!(
            s,
            "sensor_output_errors_total{{output=\"events\"}} {}",
            get(&self.event_output_errors)
        );
        let _ = writeln!(
            s,
            "# HELP sensor_process_table_entries Processes in the process table."
        );
        let _ = writeln!(s, "# TYPE sensor_process_table_entries gauge");
        let _ = writeln!(
            s,
            "sensor_process_table_entries {}",
            get(&self.process_table_entries)
        );
        let _ = writeln!(
            s,
            "# HELP sensor_rule_eval_seconds Time to evaluate every loaded rule on one event."
        );
        let _ = writeln!(s, "# TYPE sensor_rule_eval_seconds histogram");
        for (i, bound) in EVAL_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                s,
                "sensor_rule_eval_seconds_bucket{{le=\"{bound:e}\"}} {}",
                get(&self.eval_buckets[i])
            );
        }
        let count = get(&self.eval_count);
        let _ = writeln!(s, "sensor_rule_eval_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            s,
            "sensor_rule_eval_seconds_sum {:.9}",
            get(&self.eval_nanos) as f64 / 1e9
        );
        let _ = writeln!(s, "sensor_rule_eval_seconds_count {count}");
        let _ = writeln!(
            s,
            "# HELP sensor_http_connections_closed_total Endpoint connections closed early: evicted (the oldest idle one, to make room), rejected (too many being answered), timeout (no request head or no reader in time)."
        );
        let _ = writeln!(s, "# TYPE sensor_http_connections_closed_total counter");
        for (reason, v) in [
            ("evicted", &self.http_evicted),
            ("rejected", &self.http_rejected),
            ("timeout", &self.http_timed_out),
        ] {
            let _ = writeln!(
                s,
                "sensor_http_connections_closed_total{{reason=\"{reason}\"}} {}",
                get(v)
            );
        }
        let _ = writeln!(
            s,
            "# HELP sensor_ready 1 once programs are attached and the process table is seeded."
        );
        let _ = writeln!(s, "# TYPE sensor_ready gauge");
        let _ = writeln!(s, "sensor_ready {}", u8::from(self.is_ready()));
        s
    }
}

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

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
                metrics.http_rejected.fetch_add(1, Ordering::Relaxed);
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
                    metrics.http_evicted.fetch_add(1, Ordering::Relaxed);
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
            metrics.http_timed_out.fetch_add(1, Ordering::Relaxed);
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
        metrics.http_timed_out.fetch_add(1, Ordering::Relaxed);
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
    fn renders_counters_histogram_and_escaped_labels() {
        let m = Metrics::new([("r-1".to_owned(), "Say \"hi\"".to_owned())]);
        m.exec_events.fetch_add(3, Ordering::Relaxed);
        m.add_alert("r-1");
        m.add_alert("r-unknown"); // not loaded: ignored
        m.observe_eval(Duration::from_nanos(300));
        let text = m.render();
        assert!(text.contains("sensor_events_total{kind=\"exec\"} 3\n"));
        assert!(
            text.contains("sensor_alerts_total{rule_id=\"r-1\",rule_name=\"Say \\\"hi\\\"\"} 1\n")
        );
        assert!(text.contains("sensor_rule_eval_seconds_bucket{le=\"2.5e-7\"} 0\n"));
        assert!(text.contains("sensor_rule_eval_seconds_bucket{le=\"5e-7\"} 1\n"));
        assert!(text.contains("sensor_rule_eval_seconds_count 1\n"));
        assert!(text.contains("sensor_ready 0\n"));
    }

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
