//! Container and pod metadata from the container runtime's own files, with
//! no Kubernetes API: `container.name`, `container.image.*`,
//! `orchestrator.namespace`, `orchestrator.resource.{name,id}` and
//! `container.security_context.privileged`.
//!
//! # Never on the event loop
//! The event loop asks [`MetaResolver::lookup`] by container id. A cached
//! answer comes back at once; an unknown id is queued for the worker thread
//! (`runtime-meta`) and the event goes out *without* the metadata: an event
//! or alert never waits on a file. The worker's answer fills the cache, so
//! later events of that container carry it (a container's first exec,
//! usually its entrypoint, is the one most often without). The request
//! queue is bounded ([`QUEUE_LEN`]); a request that does not fit is
//! dropped, counted, and asked again by the next event.
//!
//! # Bounded, and cleaned up
//! At most `capacity` containers are cached; beyond that the least recently
//! used one is evicted (counted). A container that has exited produces no
//! more events, so its entry goes idle: entries not used for [`IDLE_TTL`]
//! are dropped (counted as `expired`) by a sweep at most every
//! [`SWEEP_EVERY`]. A container still running but idle that long is simply
//! read again. A container the runtime files do not (yet) describe is asked
//! again after [`NEGATIVE_RETRY`].

mod parse;
mod source;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::context::container_id::{ContainerInfo, ContainerRuntime};

pub use parse::{split_image, RuntimeMeta};
pub use source::{RuntimePaths, SourceError, MAX_FILE_BYTES};

/// Requests waiting for the worker at most.
pub const QUEUE_LEN: usize = 256;
/// An entry unused this long is dropped.
pub const IDLE_TTL: Duration = Duration::from_secs(300);
/// How often the idle sweep runs at most.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// A container with no runtime file is looked up again after this long.
pub const NEGATIVE_RETRY: Duration = Duration::from_secs(5);
/// Default bound on cached containers.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaStats {
    pub entries: usize,
    /// Lookups handed to the worker.
    pub requested: u64,
    /// Lookups that found metadata.
    pub found: u64,
    /// No runtime file for the container.
    pub not_found: u64,
    /// Refused or failed reads: too large, not a regular file, I/O, parse.
    pub too_large: u64,
    pub not_regular: u64,
    pub read_errors: u64,
    pub parse_errors: u64,
    /// Requests dropped because the worker's queue was full.
    pub queue_full: u64,
    /// Entries evicted at capacity.
    pub evicted: u64,
    /// Entries dropped after [`IDLE_TTL`] unused.
    pub expired: u64,
}

#[derive(Debug)]
enum Slot {
    Pending,
    Ready {
        meta: Option<Arc<RuntimeMeta>>,
        fetched: Instant,
    },
}

#[derive(Debug)]
struct Entry {
    slot: Slot,
    last_used: Instant,
    /// Use counter value: exact LRU order.
    used_seq: u64,
}

struct Request {
    id: String,
    runtime: ContainerRuntime,
    /// The pod the container's cgroup puts it in: what docker's kubelet
    /// labels must agree with ([`RuntimeMeta::believed_in`]).
    pod_uid: Option<String>,
}

struct Response {
    id: String,
    result: Result<RuntimeMeta, SourceError>,
}

/// The cache the event loop owns, and the channel to its worker.
pub struct MetaResolver {
    entries: HashMap<String, Entry>,
    capacity: usize,
    requests: SyncSender<Request>,
    responses: Receiver<Response>,
    stats: MetaStats,
    seq: u64,
    last_sweep: Instant,
    /// The last refused or failed read since it was last taken, for the
    /// log (the live loop prints at most one a second).
    pub last_error: Option<String>,
}

impl MetaResolver {
    /// Starts the worker thread reading under `paths`.
    pub fn spawn(paths: RuntimePaths, capacity: usize) -> std::io::Result<MetaResolver> {
        let (requests, rx) = mpsc::sync_channel::<Request>(QUEUE_LEN);
        let (tx, responses) = mpsc::channel::<Response>();
        std::thread::Builder::new()
            .name("runtime-meta".into())
            .spawn(move || {
                // Ends when the resolver (the only sender) is dropped.
                while let Ok(req) = rx.recv() {
                    let result = paths
                        .lookup(&req.id, req.runtime)
                        .map(|m| m.believed_in(req.pod_uid.as_deref()));
                    if tx.send(Response { id: req.id, result }).is_err() {
                        break;
                    }
                }
            })?;
        Ok(MetaResolver {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            requests,
            responses,
            stats: MetaStats::default(),
            seq: 0,
            last_sweep: Instant::now(),
            last_error: None,
        })
    }

    pub fn stats(&self) -> MetaStats {
        MetaStats {
            entries: self.entries.len(),
            ..self.stats
        }
    }

    /// The metadata of container `c` if known now; otherwise `None`, and a
    /// lookup is started on the worker (never waited for).
    pub fn lookup(&mut self, c: &ContainerInfo) -> Option<Arc<RuntimeMeta>> {
        let (id, runtime) = (c.id.as_str(), c.runtime);
        self.take_responses();
        let now = Instant::now();
        if now.duration_since(self.last_sweep) >= SWEEP_EVERY {
            self.sweep(now);
        }
        self.seq += 1;
        let seq = self.seq;
        let retry = match self.entries.get_mut(id) {
            Some(e) => {
                e.last_used = now;
                e.used_seq = seq;
                match &e.slot {
                    Slot::Pending => return None,
                    Slot::Ready { meta: Some(m), .. } => return Some(Arc::clone(m)),
                    Slot::Ready {
                        meta: None,
                        fetched,
                    } => {
                        if now.duration_since(*fetched) < NEGATIVE_RETRY {
                            return None;
                        }
                        true
                    }
                }
            }
            None => false,
        };
        if !retry && self.entries.len() >= self.capacity {
            self.evict_lru();
        }
        match self.requests.try_send(Request {
            id: id.to_owned(),
            runtime,
            pod_uid: c.pod_uid.clone(),
        }) {
            Ok(()) => {
                self.stats.requested += 1;
                self.entries.insert(
                    id.to_owned(),
                    Entry {
                        slot: Slot::Pending,
                        last_used: now,
                        used_seq: seq,
                    },
                );
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.queue_full += 1;
            }
        }
        None
    }

    /// Applies every answer the worker has sent so far.
    fn take_responses(&mut self) {
        while let Ok(resp) = self.responses.try_recv() {
            self.apply(resp);
        }
    }

    /// One answer from the worker into the cache.
    fn apply(&mut self, resp: Response) {
        {
            let meta = match resp.result {
                Ok(m) => {
                    self.stats.found += 1;
                    Some(Arc::new(m))
                }
                Err(e) => {
                    match &e {
                        SourceError::NotFound => self.stats.not_found += 1,
                        SourceError::TooLarge { .. } => self.stats.too_large += 1,
                        SourceError::NotRegular { .. } => self.stats.not_regular += 1,
                        SourceError::Io { .. } => self.stats.read_errors += 1,
                        SourceError::Parse { .. } => self.stats.parse_errors += 1,
                    }
                    if !matches!(e, SourceError::NotFound) {
                        self.last_error = Some(format!("container {}: {e}", resp.id));
                    }
                    None
                }
            };
            // An entry evicted or expired meanwhile is not brought back.
            if let Some(e) = self.entries.get_mut(&resp.id) {
                e.slot = Slot::Ready {
                    meta,
                    fetched: Instant::now(),
                };
            }
        }
    }

    fn evict_lru(&mut self) {
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.used_seq)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.entries.remove(&k);
            self.stats.evicted += 1;
        }
    }

    fn sweep(&mut self, now: Instant) {
        self.last_sweep = now;
        let before = self.entries.len();
        self.entries
            .retain(|_, e| now.duration_since(e.last_used) < IDLE_TTL);
        self.stats.expired += (before - self.entries.len()) as u64;
    }

    /// Blocks until every queued lookup has been answered (tests only:
    /// the live path never waits).
    #[cfg(test)]
    pub(crate) fn settle(&mut self) {
        while self
            .entries
            .values()
            .any(|e| matches!(e.slot, Slot::Pending))
        {
            match self.responses.recv_timeout(Duration::from_secs(10)) {
                Ok(resp) => self.apply(resp),
                Err(_) => return,
            }
        }
    }

    /// Drops every entry's last use into the past, as if `by` had passed
    /// (tests of expiry without sleeping).
    #[cfg(test)]
    pub(crate) fn age(&mut self, by: Duration) {
        for e in self.entries.values_mut() {
            e.last_used = e.last_used.checked_sub(by).unwrap_or(e.last_used);
        }
        self.last_sweep = self.last_sweep.checked_sub(by).unwrap_or(self.last_sweep);
    }
}

/// The default runtime root: `/`.
pub fn default_root() -> PathBuf {
    PathBuf::from("/")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::path::Path;

    fn id(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    fn info(id: &str, runtime: ContainerRuntime) -> ContainerInfo {
        ContainerInfo {
            id: id.to_owned(),
            runtime,
            pod_uid: None,
        }
    }

    fn docker(root: &Path, id: &str, name: &str) {
        let dir = root.join("var/lib/docker/containers").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.v2.json"),
            format!(r#"{{"Name":"/{name}","Config":{{"Image":"img:1"}}}}"#),
        )
        .unwrap();
        std::fs::write(dir.join("hostconfig.json"), br#"{"Privileged":false}"#).unwrap();
    }

    #[test]
    fn first_lookup_is_queued_later_ones_answer() {
        let dir = tempfile::tempdir().unwrap();
        docker(dir.path(), &id(1), "one");
        let mut r = MetaResolver::spawn(RuntimePaths::new(dir.path()), 8).unwrap();
        assert_eq!(r.lookup(&info(&id(1), ContainerRuntime::Docker)), None);
        // Asked again, pending or already answered (the worker may be that
        // quick): no second request either way (`requested` below).
        let again = r.lookup(&info(&id(1), ContainerRuntime::Docker));
        assert!(again.is_none_or(|m| m.name.as_deref() == Some("one")));
        r.settle();
        let m = r.lookup(&info(&id(1), ContainerRuntime::Docker)).unwrap();
        assert_eq!(m.name.as_deref(), Some("one"));
        assert_eq!(m.privileged, Some(false));
        let s = r.stats();
        assert_eq!((s.requested, s.found, s.entries), (1, 1, 1));
    }

    #[test]
    fn unknown_container_is_counted_and_retried_later() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = MetaResolver::spawn(RuntimePaths::new(dir.path()), 8).unwrap();
        assert_eq!(r.lookup(&info(&id(2), ContainerRuntime::Unknown)), None);
        r.settle();
        assert_eq!(r.lookup(&info(&id(2), ContainerRuntime::Unknown)), None);
        assert_eq!(r.stats().not_found, 1);
        assert_eq!(r.stats().requested, 1, "not asked again at once");
    }

    #[test]
    fn capacity_evicts_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        for n in 1..=3 {
            docker(dir.path(), &id(n), &format!("c{n}"));
        }
        let mut r = MetaResolver::spawn(RuntimePaths::new(dir.path()), 2).unwrap();
        r.lookup(&info(&id(1), ContainerRuntime::Docker));
        r.lookup(&info(&id(2), ContainerRuntime::Docker));
        r.settle();
        r.lookup(&info(&id(1), ContainerRuntime::Docker)); // 2 is now the oldest
        r.lookup(&info(&id(3), ContainerRuntime::Docker));
        r.settle();
        let s = r.stats();
        assert_eq!((s.entries, s.evicted), (2, 1));
        assert!(r.lookup(&info(&id(1), ContainerRuntime::Docker)).is_some());
        assert!(r.lookup(&info(&id(3), ContainerRuntime::Docker)).is_some());
    }

    #[test]
    fn idle_entries_expire() {
        let dir = tempfile::tempdir().unwrap();
        docker(dir.path(), &id(4), "four");
        docker(dir.path(), &id(5), "five");
        let mut r = MetaResolver::spawn(RuntimePaths::new(dir.path()), 8).unwrap();
        r.lookup(&info(&id(4), ContainerRuntime::Docker));
        r.settle();
        r.age(IDLE_TTL + SWEEP_EVERY);
        r.lookup(&info(&id(5), ContainerRuntime::Docker));
        let s = r.stats();
        assert_eq!(s.expired, 1);
        assert_eq!(s.entries, 1);
    }

    #[test]
    fn hostile_files_are_counted_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("var/lib/docker/containers").join(id(6));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("config.v2.json"), b"{\"Name\": [").unwrap();
        let d7 = dir.path().join("var/lib/docker/containers").join(id(7));
        std::fs::create_dir_all(&d7).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d7.join("config.v2.json")).unwrap();
        let mut r = MetaResolver::spawn(RuntimePaths::new(dir.path()), 8).unwrap();
        r.lookup(&info(&id(6), ContainerRuntime::Docker));
        r.lookup(&info(&id(7), ContainerRuntime::Docker));
        r.settle();
        let s = r.stats();
        assert_eq!((s.parse_errors, s.not_regular, s.found), (1, 1, 0));
        assert!(r.last_error.is_some());
    }
}
