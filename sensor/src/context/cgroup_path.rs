//! Cgroup id → cgroup path (and → container), for enriching kernel events.
//!
//! The eBPF programs record `bpf_get_current_cgroup_id()`: on cgroup v2, and
//! on the unified hierarchy of a hybrid host, that is the inode number of the
//! cgroup's directory in the cgroup2 mount. Resolving it costs a tree walk,
//! so [`CgroupResolver`] walks once at start and keeps an `inode → path`
//! map; the per-event cost is one hash lookup.
//!
//! Cgroups are created and removed all the time (every container, every
//! systemd transient scope), so a miss triggers a re-walk, with two guards
//! that keep an exec storm from a cgroup we cannot see from turning into one
//! tree walk per event:
//! - at most one walk per [`DEFAULT_REWALK_INTERVAL`];
//! - an id a walk did not find is remembered as absent for
//!   [`DEFAULT_NEGATIVE_TTL`].
//!
//! A re-walk rebuilds the map from scratch, which is what drops removed
//! cgroups and keeps memory proportional to the live hierarchy. Cgroup ids
//! are 64-bit kernfs ids that the kernel does not reuse, so a cached id can
//! never silently start meaning another cgroup.
//!
//! When the caller knows the pid (exec events do), [`CgroupResolver::resolve_for_pid`]
//! first tries `/proc/<pid>/cgroup`, which is O(1) and not rate-limited, so
//! events from a freshly created container resolve even during a storm.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::byte_text::to_text;
use crate::context::container_id::{self, ContainerInfo};

/// Minimum time between two walks triggered by misses.
pub const DEFAULT_REWALK_INTERVAL: Duration = Duration::from_millis(100);
/// How long an id a walk did not find is answered `None` without walking.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(2);
/// Bound on remembered absent ids; the set is cleared when it is exceeded
/// (an attacker-controlled flood of bogus ids must not grow memory).
const MAX_NEGATIVE: usize = 4096;
/// Walk depth bound: the kernel's default `cgroup.max.depth` is unlimited,
/// but real hierarchies are < 15 deep; this only protects against a wrong
/// root (a loop through a bind mount, say).
const MAX_DEPTH: usize = 64;
/// Walk size bound, for the same reason.
const MAX_ENTRIES: usize = 1 << 20;

/// Why the cgroup2 hierarchy could not be found.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// `/proc/self/mountinfo` could not be read.
    #[error("cannot read {path}")]
    Mountinfo {
        /// The mountinfo file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No cgroup2 mount: container enrichment needs the unified hierarchy
    /// (pure v2, or hybrid with `/sys/fs/cgroup/unified`).
    #[error(
        "no cgroup2 filesystem is mounted (looked in {path}); container enrichment needs \
         cgroup v2 or a hybrid host's unified hierarchy, e.g. \
         `mount -t cgroup2 none /sys/fs/cgroup/unified`"
    )]
    NoCgroup2 {
        /// The mountinfo file searched.
        path: PathBuf,
    },
}

/// A cgroup2 mount as listed in mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup2Mount {
    /// Where it is mounted, e.g. `/sys/fs/cgroup` or `/sys/fs/cgroup/unified`.
    pub mount_point: PathBuf,
    /// Which cgroup is the mount's root, as a cgroup path (`/` normally;
    /// a subtree when a container bind-mounts part of the host's hierarchy).
    /// Prepended to walked paths so that they are full cgroup paths.
    pub root: String,
}

/// Find the cgroup2 mount in mountinfo text. When there are several, the
/// conventional locations win, then the first listed.
pub fn find_cgroup2_mount(mountinfo: &str) -> Option<Cgroup2Mount> {
    let mut mounts = mountinfo.lines().filter_map(parse_mountinfo_line);
    let first = mounts.next()?;
    let preferred = |m: &Cgroup2Mount| {
        m.mount_point == Path::new("/sys/fs/cgroup")
            || m.mount_point == Path::new("/sys/fs/cgroup/unified")
    };
    if preferred(&first) {
        return Some(first);
    }
    Some(mounts.find(preferred).unwrap_or(first))
}

/// One mountinfo line (proc(5)): `id parent maj:min root mount_point opts
/// [optional fields…] - fstype source super_opts`. Returns the mount only if
/// the fstype is cgroup2.
fn parse_mountinfo_line(line: &str) -> Option<Cgroup2Mount> {
    let (left, right) = line.split_once(" - ")?;
    if right.split(' ').next()? != "cgroup2" {
        return None;
    }
    let mut fields = left.split(' ');
    let root = fields.nth(3)?;
    let mount_point = fields.next()?;
    let root = to_text(&unescape_mountinfo(root)).into_owned();
    // In a private cgroup namespace (a pod), a bind mount of the host's
    // hierarchy shows a root above the namespace's own, like `/../../..`:
    // the mount is the real hierarchy root, and paths from it (and from the
    // kernel's cgroup_mkdir records) are already absolute.
    let root = if root == "/.." || root.starts_with("/../") {
        "/".to_owned()
    } else {
        root
    };
    Some(Cgroup2Mount {
        mount_point: PathBuf::from(OsStr::from_bytes(&unescape_mountinfo(mount_point))),
        root,
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
pub(crate) fn unescape_mountinfo(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            if let Some(digits) = bytes.get(i + 1..i + 4) {
                if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    let value = digits
                        .iter()
                        .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                    if let Ok(byte) = u8::try_from(value) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Counters, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolverStats {
    /// Walks of the hierarchy done so far (including the initial one).
    pub walks: u64,
    /// Cgroups currently known.
    pub entries: usize,
    /// Ids currently remembered as absent.
    pub negative: usize,
    /// Lookups answered `None` because a walk was not allowed yet.
    pub rate_limited: u64,
}

#[derive(Debug)]
struct Entry {
    path: Arc<str>,
    /// Parsed lazily on the first [`CgroupResolver::container_for`]; `None`
    /// = not parsed yet, `Some(None)` = parsed, not a container.
    container: Option<Option<Arc<ContainerInfo>>>,
}

/// Resolves `bpf_get_current_cgroup_id()` values to cgroup paths and
/// containers. Not thread-safe by design: one owner (the enrichment task)
/// mutates the cache; wrap it in a mutex if it must be shared.
#[derive(Debug)]
pub struct CgroupResolver {
    mount_point: PathBuf,
    /// Cgroup path of the mount's root (`/` unless a subtree is mounted).
    mount_root: String,
    proc_root: PathBuf,
    by_id: HashMap<u64, Entry>,
    /// Cgroups announced by the kernel at creation (`cgroup_mkdir`). Kept
    /// across walks, so a container removed before its events are read
    /// still has a name; bounded by [`MAX_LEARNED`].
    learned: HashMap<u64, Arc<str>>,
    negative: HashMap<u64, Instant>,
    last_walk: Option<Instant>,
    /// Hierarchy walked: 0 is cgroup2; a v1 hierarchy id otherwise
    /// (see `cgroup_v1`).
    hierarchy_id: u32,
    rewalk_interval: Duration,
    negative_ttl: Duration,
    stats: ResolverStats,
}

impl CgroupResolver {
    /// Find the cgroup2 mount from `/proc/self/mountinfo` and walk it.
    pub fn discover() -> Result<Self, CgroupError> {
        let path = PathBuf::from("/proc/self/mountinfo");
        let text = std::fs::read_to_string(&path).map_err(|source| CgroupError::Mountinfo {
            path: path.clone(),
            source,
        })?;
        let mount = find_cgroup2_mount(&text).ok_or(CgroupError::NoCgroup2 { path })?;
        log::debug!(
            "cgroup2 mounted at {} (root {})",
            mount.mount_point.display(),
            mount.root
        );
        Ok(Self::with_mount(mount))
    }

    /// Use `root` as the cgroup2 mount point (tests use a temp tree), with
    /// paths reported relative to it.
    pub fn with_root(root: PathBuf) -> Self {
        Self::with_mount(Cgroup2Mount {
            mount_point: root,
            root: "/".to_owned(),
        })
    }

    /// Use an explicit mount (as found by [`find_cgroup2_mount`]).
    pub fn with_mount(mount: Cgroup2Mount) -> Self {
        let mut resolver = Self {
            mount_point: mount.mount_point,
            mount_root: mount.root,
            proc_root: PathBuf::from("/proc"),
            by_id: HashMap::new(),
            learned: HashMap::new(),
            negative: HashMap::new(),
            last_walk: None,
            hierarchy_id: 0,
            rewalk_interval: DEFAULT_REWALK_INTERVAL,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
            stats: ResolverStats::default(),
        };
        resolver.walk();
        // The initial walk does not count against the miss rate limit: the
        // first miss after start may walk at once.
        resolver.last_walk = None;
        resolver
    }

    /// Walk a cgroup v1 hierarchy (its id as in `/proc/cgroups`) instead of
    /// cgroup2: `/proc/<pid>/cgroup` is then read at that hierarchy's line.
    pub fn set_hierarchy_id(&mut self, id: u32) {
        self.hierarchy_id = id;
    }

    /// The hierarchy walked (0: cgroup2); `cgroup_mkdir` records of other
    /// hierarchies name cgroups this resolver never sees.
    pub fn hierarchy_id(&self) -> u32 {
        self.hierarchy_id
    }

    /// Where `/proc` is, for [`Self::resolve_for_pid`] (tests use a fake).
    pub fn set_proc_root(&mut self, proc_root: PathBuf) {
        self.proc_root = proc_root;
    }

    /// Minimum time between miss-triggered walks.
    pub fn set_rewalk_interval(&mut self, interval: Duration) {
        self.rewalk_interval = interval;
    }

    /// How long an id not found by a walk is answered `None` without walking.
    pub fn set_negative_ttl(&mut self, ttl: Duration) {
        self.negative_ttl = ttl;
    }

    /// The cgroup2 mount point in use.
    pub fn mount_point(&self) -> &Path {
        &self.mount_point
    }

    /// Counters.
    pub fn stats(&self) -> ResolverStats {
        ResolverStats {
            entries: self.by_id.len(),
            negative: self.negative.len(),
            ..self.stats
        }
    }

    /// The cgroup path (starting with `/`, e.g.
    /// `/kubepods/besteffort/pod<uid>/<id>`) of `cgroup_id`, or `None` if the
    /// cgroup is gone, unknown, or a walk is not allowed yet.
    pub fn resolve(&mut self, cgroup_id: u64) -> Option<Arc<str>> {
        self.ensure(cgroup_id)
            .then(|| self.by_id.get(&cgroup_id).map(|e| Arc::clone(&e.path)))
            .flatten()
    }

    /// Like [`Self::resolve`], but on a miss first asks `/proc/<pid>/cgroup`
    /// (cheap, and not rate-limited), keeping the answer only if the
    /// directory's inode really is `cgroup_id` (the process may have moved or
    /// exited, and its pid may have been reused).
    pub fn resolve_for_pid(&mut self, cgroup_id: u64, pid: u32) -> Option<Arc<str>> {
        if !self.by_id.contains_key(&cgroup_id) {
            self.learn_from_pid(cgroup_id, pid);
        }
        self.resolve(cgroup_id)
    }

    /// The container of `cgroup_id`, parsed once per cgroup and cached, so
    /// the per-event cost is one hash lookup. `None` for host cgroups.
    pub fn container_for(&mut self, cgroup_id: u64) -> Option<Arc<ContainerInfo>> {
        if !self.ensure(cgroup_id) {
            return None;
        }
        let entry = self.by_id.get_mut(&cgroup_id)?;
        entry
            .container
            .get_or_insert_with(|| container_id::from_cgroup_path(&entry.path).map(Arc::new))
            .clone()
    }

    /// [`Self::container_for`] with the pid fallback of [`Self::resolve_for_pid`].
    pub fn container_for_pid(&mut self, cgroup_id: u64, pid: u32) -> Option<Arc<ContainerInfo>> {
        if !self.by_id.contains_key(&cgroup_id) {
            self.learn_from_pid(cgroup_id, pid);
        }
        self.container_for(cgroup_id)
    }

    /// Records a cgroup the kernel just created (`path` from the hierarchy
    /// root). Cheap: no filesystem access.
    pub fn learn(&mut self, cgroup_id: u64, path: &str) {
        if self.learned.len() >= MAX_LEARNED {
            // Cgroups live long or die young; dropping the oldest half by
            // id (ids grow monotonically) keeps the recent ones.
            let mut ids: Vec<u64> = self.learned.keys().copied().collect();
            ids.sort_unstable();
            for id in &ids[..ids.len() / 2] {
                self.learned.remove(id);
            }
        }
        self.negative.remove(&cgroup_id);
        self.learned.insert(cgroup_id, Arc::from(path));
    }

    /// Make sure `cgroup_id` is in the map if it can be; true if it is.
    fn ensure(&mut self, cgroup_id: u64) -> bool {
        if self.by_id.contains_key(&cgroup_id) {
            return true;
        }
        if let Some(path) = self.learned.get(&cgroup_id) {
            self.by_id.insert(
                cgroup_id,
                Entry {
                    path: Arc::clone(path),
                    container: None,
                },
            );
            return true;
        }
        let now = Instant::now();
        if let Some(since) = self.negative.get(&cgroup_id) {
            if now.duration_since(*since) < self.negative_ttl {
                return false;
            }
            self.negative.remove(&cgroup_id);
        }
        if self
            .last_walk
            .is_some_and(|last| now.duration_since(last) < self.rewalk_interval)
        {
            self.stats.rate_limited += 1;
            return false;
        }
        self.walk();
        if self.by_id.contains_key(&cgroup_id) {
            return true;
        }
        if self.negative.len() >= MAX_NEGATIVE {
            let ttl = self.negative_ttl;
            self.negative
                .retain(|_, since| now.duration_since(*since) < ttl);
            if self.negative.len() >= MAX_NEGATIVE {
                self.negative.clear();
            }
        }
        self.negative.insert(cgroup_id, now);
        false
    }

    fn learn_from_pid(&mut self, cgroup_id: u64, pid: u32) {
        let file = self.proc_root.join(pid.to_string()).join("cgroup");
        let Ok(text) = std::fs::read(&file) else {
            return;
        };
        // `hierarchy-id:controllers:path`; cgroup2's line is `0::path`.
        let hierarchy = self.hierarchy_id.to_string();
        let Some(path) = text.split(|&b| b == b'\n').find_map(|line| {
            let mut f = line.splitn(3, |&b| b == b':');
            (f.next()? == hierarchy.as_bytes())
                .then(|| f.next())
                .flatten()
                .and(f.next())
        }) else {
            return;
        };
        // The `0::` path is relative to our cgroup namespace root; the mount
        // shows `mount_root`'s subtree, so strip that to find the directory.
        let relative = if self.mount_root == "/" {
            Some(path)
        } else {
            path.strip_prefix(self.mount_root.as_bytes())
                .filter(|rest| rest.is_empty() || rest.starts_with(b"/"))
        };
        let Some(relative) = relative else {
            return;
        };
        let relative = relative.strip_prefix(b"/").unwrap_or(relative);
        let dir = self.mount_point.join(OsStr::from_bytes(relative));
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() && meta.ino() == cgroup_id => {
                self.negative.remove(&cgroup_id);
                self.by_id.insert(
                    cgroup_id,
                    Entry {
                        path: Arc::from(to_text(path)),
                        container: None,
                    },
                );
            }
            _ => {}
        }
    }

    /// Rebuild the map from the hierarchy. Parsed containers of cgroups that
    /// still exist are kept; removed cgroups are dropped.
    fn walk(&mut self) {
        self.stats.walks += 1;
        self.last_walk = Some(Instant::now());
        let mut old = std::mem::take(&mut self.by_id);
        let mut fresh = HashMap::with_capacity(old.len().max(64));

        match std::fs::symlink_metadata(&self.mount_point) {
            Ok(meta) => {
                let path = Arc::<str>::from(self.mount_root.as_str());
                insert_keeping(&mut fresh, &mut old, meta.ino(), path);
            }
            Err(err) => {
                log::warn!("cgroup2 root {}: {err}", self.mount_point.display());
                self.by_id = fresh;
                return;
            }
        }
        // Iterative depth-first walk; `prefix` is the cgroup path of `dir`.
        let base = self.mount_root.trim_end_matches('/').to_owned();
        let mut stack: Vec<(PathBuf, String, usize)> = vec![(self.mount_point.clone(), base, 0)];
        while let Some((dir, prefix, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                // Removed while we walked, or unreadable: skip the subtree.
                continue;
            };
            for entry in entries.flatten() {
                // `DirEntry::file_type` does not follow symlinks.
                if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let Ok(meta) = entry.metadata() else { continue };
                let name = entry.file_name();
                let path = format!("{prefix}/{}", to_text(name.as_bytes()));
                if fresh.len() >= MAX_ENTRIES {
                    log::warn!(
                        "cgroup2 walk of {} stopped at {MAX_ENTRIES} cgroups",
                        self.mount_point.display()
                    );
                    self.by_id = fresh;
                    return;
                }
                insert_keeping(&mut fresh, &mut old, meta.ino(), Arc::from(path.as_str()));
                if depth + 1 < MAX_DEPTH {
                    stack.push((entry.path(), path, depth + 1));
                }
            }
        }
        self.by_id = fresh;
    }
}

/// Insert `id → path`, carrying over the parsed container when the same id
/// had the same path before (ids are not reused, but a rename moves a path).
/// Most cgroups remembered from creation announcements.
const MAX_LEARNED: usize = 65_536;

fn insert_keeping(
    fresh: &mut HashMap<u64, Entry>,
    old: &mut HashMap<u64, Entry>,
    id: u64,
    path: Arc<str>,
) {
    let container = match old.remove(&id) {
        Some(prev) if prev.path == path => prev.container,
        _ => None,
    };
    fresh.insert(id, Entry { path, container });
}

#[cfg(test)]
// Tests fail by panicking; that is what these lints exist to keep out of
// production code.
#[allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::context::container_id::ContainerRuntime;
    use std::fs;

    const ID: &str = "3f2c9e1b7a4d5c6e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9012345678abcd";
    const UID: &str = "6c8d7e2a-1b3f-4c5d-9e8f-0a1b2c3d4e5f";

    fn ino(path: &Path) -> u64 {
        fs::metadata(path)
            .map(|m| m.ino())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn mkdir(path: &Path) {
        fs::create_dir_all(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        mkdir(
            &dir.path()
                .join(format!("kubepods/besteffort/pod{UID}/{ID}")),
        );
        mkdir(&dir.path().join("system.slice/docker.service"));
        mkdir(
            &dir.path()
                .join("user.slice/user-1000.slice/session-1.scope"),
        );
        // Files in cgroup dirs (cgroup.procs etc.) are not cgroups.
        fs::write(dir.path().join("system.slice/cgroup.procs"), "")
            .unwrap_or_else(|e| panic!("{e}"));
        dir
    }

    #[test]
    fn resolves_walked_tree() {
        let dir = tree();
        let mut r = CgroupResolver::with_root(dir.path().to_path_buf());
        let leaf = format!("/kubepods/besteffort/pod{UID}/{ID}");
        let leaf_ino = ino(&dir.path().join(&leaf[1..]));
        assert_eq!(r.resolve(leaf_ino).as_deref(), Some(leaf.as_str()));
        assert_eq!(r.resolve(ino(dir.path())).as_deref(), Some("/"));
        assert_eq!(
            r.resolve(ino(&dir.path().join("system.slice/docker.service")))
                .as_deref(),
            Some("/system.slice/docker.service")
        );
        assert_eq!(r.stats().walks, 1);
        let file_ino = ino(&dir.path().join("system.slice/cgroup.procs"));
        assert_eq!(r.resolve(file_ino), None);

        let info = r
            .container_for(leaf_ino)
            .unwrap_or_else(|| panic!("no container"));
        assert_eq!(info.id, ID);
        assert_eq!(info.runtime, ContainerRuntime::Unknown);
        assert_eq!(info.pod_uid.as_deref(), Some(UID));
        // Cached: the same allocation comes back.
        let again = r
            .container_for(leaf_ino)
            .unwrap_or_else(|| panic!("no container"));
        assert!(Arc::ptr_eq(&info, &again));
        assert_eq!(
            r.container_for(ino(&dir.path().join("system.slice/docker.service"))),
            None
        );
        // Only the miss on the file's inode walked again.
        assert_eq!(r.stats().walks, 2);
    }

    #[test]
    fn new_cgroup_found_by_rewalk_and_removed_cgroups_dropped() {
        let dir = tree();
        let mut r = CgroupResolver::with_root(dir.path().to_path_buf());
        r.set_rewalk_interval(Duration::ZERO);
        let scope = dir.path().join(format!("system.slice/docker-{ID}.scope"));
        mkdir(&scope);
        let id = ino(&scope);
        let info = r.container_for(id).unwrap_or_else(|| panic!("not found"));
        assert_eq!(info.runtime, ContainerRuntime::Docker);
        assert_eq!(r.stats().walks, 2);
        let before = r.stats().entries;

        fs::remove_dir(&scope).unwrap_or_else(|e| panic!("{e}"));
        // A miss on an unknown id re-walks, which drops the removed cgroup.
        assert_eq!(r.resolve(u64::MAX), None);
        assert_eq!(r.stats().entries, before - 1);
        assert_eq!(r.resolve(id), None);
    }

    #[test]
    fn misses_are_rate_limited_and_remembered() {
        let dir = tree();
        let mut r = CgroupResolver::with_root(dir.path().to_path_buf());
        r.set_rewalk_interval(Duration::from_secs(3600));
        // First miss after start walks (the initial walk does not count).
        assert_eq!(r.resolve(u64::MAX), None);
        assert_eq!(r.stats().walks, 2);
        // A storm of misses, same id or new ids: no more walks.
        for i in 0..10_000u64 {
            assert_eq!(r.resolve(u64::MAX - (i % 7)), None);
        }
        let stats = r.stats();
        assert_eq!(stats.walks, 2);
        assert_eq!(stats.negative, 1);
        assert!(stats.rate_limited > 0);
        // A cgroup created now is not seen until the interval passes.
        let late = dir.path().join("late.scope");
        mkdir(&late);
        assert_eq!(r.resolve(ino(&late)), None);
        r.set_rewalk_interval(Duration::ZERO);
        assert_eq!(r.resolve(ino(&late)).as_deref(), Some("/late.scope"));

        // Negative results expire.
        r.set_negative_ttl(Duration::from_secs(3600));
        assert_eq!(r.resolve(u64::MAX), None);
        let walks = r.stats().walks;
        assert_eq!(r.resolve(u64::MAX), None);
        assert_eq!(r.stats().walks, walks, "remembered absent id must not walk");
        r.set_negative_ttl(Duration::ZERO);
        assert_eq!(r.resolve(u64::MAX), None);
        assert_eq!(r.stats().walks, walks + 1);
    }

    #[test]
    fn pid_hint_resolves_without_walking() {
        let dir = tree();
        let mut r = CgroupResolver::with_root(dir.path().to_path_buf());
        r.set_rewalk_interval(Duration::from_secs(3600));
        let _ = r.resolve(u64::MAX); // use up the free first walk
        let scope = dir
            .path()
            .join(format!("machine.slice/libpod-{ID}.scope/container"));
        mkdir(&scope);
        let proc = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        mkdir(&proc.path().join("42"));
        let cgroup = format!("0::/machine.slice/libpod-{ID}.scope/container\n");
        fs::write(proc.path().join("42/cgroup"), cgroup).unwrap_or_else(|e| panic!("{e}"));
        r.set_proc_root(proc.path().to_path_buf());
        let walks = r.stats().walks;
        // Wrong id for that pid: not learned.
        assert_eq!(r.resolve_for_pid(12345, 42), None);
        let info = r
            .container_for_pid(ino(&scope), 42)
            .unwrap_or_else(|| panic!("not found"));
        assert_eq!(info.runtime, ContainerRuntime::Podman);
        assert_eq!(r.stats().walks, walks);
        // Vanished pid: falls back to the normal path (rate-limited here).
        assert_eq!(r.resolve_for_pid(777, 9999), None);
    }

    #[test]
    fn mountinfo_parsing() {
        let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
";
        assert_eq!(
            find_cgroup2_mount(text),
            Some(Cgroup2Mount {
                mount_point: PathBuf::from("/sys/fs/cgroup/unified"),
                root: "/".to_owned()
            })
        );
        let two = "\
50 1 0:40 /kubepods/pod1 /host\\040cg rw - cgroup2 cgroup2 rw
51 1 0:40 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
";
        let m = find_cgroup2_mount(two).unwrap_or_else(|| panic!("none"));
        assert_eq!(m.mount_point, PathBuf::from("/sys/fs/cgroup"));
        let first = two.lines().next().and_then(parse_mountinfo_line);
        assert_eq!(
            first,
            Some(Cgroup2Mount {
                mount_point: PathBuf::from("/host cg"),
                root: "/kubepods/pod1".to_owned()
            })
        );
        assert_eq!(find_cgroup2_mount("garbage\n\n - \n1 2 3 - cgroup2"), None);
    }

    #[test]
    fn subtree_mount_paths_are_full_cgroup_paths() {
        let dir = tree();
        let mut r = CgroupResolver::with_mount(Cgroup2Mount {
            mount_point: dir.path().to_path_buf(),
            root: "/outer".to_owned(),
        });
        assert_eq!(r.resolve(ino(dir.path())).as_deref(), Some("/outer"));
        assert_eq!(
            r.resolve(ino(&dir.path().join("system.slice"))).as_deref(),
            Some("/outer/system.slice")
        );
    }

    #[test]
    fn missing_root_gives_empty_map() {
        let mut r = CgroupResolver::with_root(PathBuf::from("/nonexistent/cgroup/root"));
        assert_eq!(r.resolve(1), None);
        assert_eq!(r.stats().entries, 0);
    }

    /// The real thing: our own cgroup id (the inode of our cgroup2 dir)
    /// resolves to the `0::` path of `/proc/self/cgroup`.
    #[test]
    fn own_cgroup_resolves() {
        let mut r = match CgroupResolver::discover() {
            Ok(r) => r,
            Err(CgroupError::NoCgroup2 { .. }) => {
                eprintln!("skipped: no cgroup2 mount on this host");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let text = fs::read_to_string("/proc/self/cgroup").unwrap_or_else(|e| panic!("{e}"));
        let own = text
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap_or_else(|| panic!("no 0:: line in {text}"));
        let dir = r.mount_point().join(own.trim_start_matches('/'));
        let id = ino(&dir);
        assert_eq!(r.resolve(id).as_deref(), Some(own));
        let pid = std::process::id();
        assert_eq!(r.resolve_for_pid(id, pid).as_deref(), Some(own));
    }

    /// Removes the cgroup directories it was given, innermost first, even
    /// when the test fails.
    struct CgroupDirs(Vec<PathBuf>);
    impl Drop for CgroupDirs {
        fn drop(&mut self) {
            for dir in self.0.iter().rev() {
                let _ = fs::remove_dir(dir);
            }
        }
    }

    /// A kubepods-shaped cgroup created in the real cgroup2 hierarchy after
    /// start is found by a re-walk, with real kernfs inode numbers. Needs
    /// root (skips otherwise).
    #[test]
    fn real_hierarchy_new_container_cgroup() {
        let Ok(mut r) = CgroupResolver::discover() else {
            eprintln!("skipped: no cgroup2 mount");
            return;
        };
        r.set_rewalk_interval(Duration::ZERO);
        let top = r
            .mount_point()
            .join(format!("sensor-test-{}", std::process::id()));
        if fs::create_dir(&top).is_err() {
            eprintln!("skipped: cannot create cgroups (not root?)");
            return;
        }
        let pod = top.join(format!(
            "kubepods-besteffort-pod{}.slice",
            UID.replace('-', "_")
        ));
        let ctr = pod.join(format!("cri-containerd-{ID}.scope"));
        let _cleanup = CgroupDirs(vec![top.clone(), pod.clone(), ctr.clone()]);
        mkdir(&pod);
        mkdir(&ctr);
        let info = r
            .container_for(ino(&ctr))
            .unwrap_or_else(|| panic!("not found"));
        assert_eq!(info.id, ID);
        assert_eq!(info.runtime, ContainerRuntime::Containerd);
        // Under a non-default root (`/sensor-test-<pid>`): the pod slice's
        // name still says kubepods, so the uid is reported.
        assert_eq!(info.pod_uid.as_deref(), Some(UID));
        assert_eq!(r.container_for(ino(&pod)), None);
    }

    #[test]
    fn learned_cgroups_outlive_their_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut r = CgroupResolver::with_root(dir.path().to_path_buf());
        let id = "a".repeat(64);
        let path = format!("/system.slice/docker-{id}.scope");
        // Never existed on disk (created and removed before we looked).
        r.learn(987_654_321, &path);
        assert_eq!(r.resolve(987_654_321).as_deref(), Some(path.as_str()));
        let c = r.container_for(987_654_321).expect("container");
        assert_eq!(c.id, id);
        assert_eq!(r.container_for(987_654_322), None);
    }

    #[test]
    fn a_mount_above_the_cgroup_namespace_root_is_the_hierarchy_root() {
        let line = "1032 1031 0:26 /../../.. /host/sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw";
        let m = find_cgroup2_mount(line).expect("cgroup2 mount");
        assert_eq!(m.root, "/");
        assert_eq!(m.mount_point, Path::new("/host/sys/fs/cgroup"));
    }
}
