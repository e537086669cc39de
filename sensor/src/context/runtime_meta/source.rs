//! Where each runtime keeps what it knows about a container, and the one
//! careful way those files are read.
//!
//! | runtime | file (under the runtime root) |
//! | --- | --- |
//! | docker | `var/lib/docker/containers/<id>/config.v2.json` and `hostconfig.json` |
//! | containerd | `run/containerd/io.containerd.runtime.v2.task/<namespace>/<id>/config.json` (the OCI bundle; `k8s.io` for the CRI plugin, `moby` under docker) |
//! | CRI-O, podman | `run/containers/storage/overlay-containers/<id>/userdata/config.json`, podman's root store `var/lib/containers/storage/overlay-containers/<id>/userdata/config.json` |
//!
//! The runtime root is `/` on a plain host; in a pod it is where the node's
//! root is reachable (`/proc/1/root` with `hostPID`, or a hostPath mount),
//! see `docs/operations.md`.
//!
//! Reads are hostile-input safe: the last path component is opened with
//! `O_NOFOLLOW` (a planted symlink to another file is refused, not read),
//! `O_NONBLOCK` (a FIFO cannot stall the worker), the opened file must be a
//! regular file no larger than [`MAX_FILE_BYTES`], and at most that many
//! bytes are ever read. Intermediate directories may be symlinks (a runtime
//! state directory moved to another disk is common); the container id in
//! the path is the 64-hex id the cgroup parser accepted, so it cannot
//! climb out.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::context::container_id::ContainerRuntime;

use super::parse::{self, ParseError, RuntimeMeta};

/// Largest metadata file read: a bundle with many mounts and a long
/// environment is tens of KiB; Kubernetes caps a pod's annotations at
/// 256 KiB.
pub const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;

/// Most containerd namespaces looked at for one container.
const MAX_NAMESPACES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("no runtime file describes the container")]
    NotFound,
    #[error("{path}: {size} bytes, more than the {MAX_FILE_BYTES}-byte limit")]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{path}: not a regular file (symlink, FIFO, device or directory)")]
    NotRegular { path: PathBuf },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: ParseError },
}

impl SourceError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceError::NotFound => "not_found",
            SourceError::TooLarge { .. } => "too_large",
            SourceError::NotRegular { .. } => "not_regular",
            SourceError::Io { .. } => "read_error",
            SourceError::Parse { .. } => "parse_error",
        }
    }
}

/// Reads `path` whole if it is a regular file of at most
/// [`MAX_FILE_BYTES`]; `Ok(None)` if it does not exist.
pub fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, SourceError> {
    let io_err = |source: io::Error| SourceError::Io {
        path: path.to_owned(),
        source,
    };
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // O_NOFOLLOW on a symlink: ELOOP.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(SourceError::NotRegular {
                path: path.to_owned(),
            })
        }
        Err(e) => return Err(io_err(e)),
    };
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(SourceError::NotRegular {
            path: path.to_owned(),
        });
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(SourceError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
        });
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // A file growing after the stat is still cut at the limit.
    file_take(file).read_to_end(&mut buf).map_err(io_err)?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(SourceError::TooLarge {
            path: path.to_owned(),
            size: buf.len() as u64,
        });
    }
    Ok(Some(buf))
}

fn file_take(file: File) -> io::Take<File> {
    file.take(MAX_FILE_BYTES + 1)
}

/// Where the runtimes' state is, under one root.
#[derive(Debug, Clone)]
pub struct RuntimePaths {
    root: PathBuf,
}

impl RuntimePaths {
    pub fn new(root: impl Into<PathBuf>) -> RuntimePaths {
        RuntimePaths { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn docker_dir(&self, id: &str) -> PathBuf {
        self.root.join("var/lib/docker/containers").join(id)
    }

    fn containerd_tasks(&self) -> PathBuf {
        self.root
            .join("run/containerd/io.containerd.runtime.v2.task")
    }

    fn storage_bundles(&self, id: &str) -> [PathBuf; 2] {
        [
            self.root
                .join("run/containers/storage/overlay-containers")
                .join(id)
                .join("userdata/config.json"),
            self.root
                .join("var/lib/containers/storage/overlay-containers")
                .join(id)
                .join("userdata/config.json"),
        ]
    }

    /// The metadata of container `id`, looking first where `runtime` keeps
    /// it, then at the others (the cgroup path does not always name the
    /// runtime).
    pub fn lookup(&self, id: &str, runtime: ContainerRuntime) -> Result<RuntimeMeta, SourceError> {
        type Probe = fn(&RuntimePaths, &str) -> Result<Option<RuntimeMeta>, SourceError>;
        // Docker's own directory first wherever docker is possible: docker
        // also leaves a bundle in containerd's `moby` namespace, which has
        // none of docker's names.
        let order: &[Probe] = match runtime {
            ContainerRuntime::Docker => &[Self::docker, Self::containerd],
            ContainerRuntime::Containerd => &[Self::containerd, Self::docker],
            ContainerRuntime::CriO | ContainerRuntime::Podman => &[Self::storage],
            ContainerRuntime::Unknown => &[Self::docker, Self::containerd, Self::storage],
        };
        for probe in order {
            if let Some(meta) = probe(self, id)? {
                return Ok(meta);
            }
        }
        Err(SourceError::NotFound)
    }

    fn docker(&self, id: &str) -> Result<Option<RuntimeMeta>, SourceError> {
        let dir = self.docker_dir(id);
        let config_path = dir.join("config.v2.json");
        let Some(config) = read_capped(&config_path)? else {
            return Ok(None);
        };
        let host_path = dir.join("hostconfig.json");
        let host = read_capped(&host_path)?;
        parse::docker_config(&config, host.as_deref())
            .map(|m| {
                Some(RuntimeMeta {
                    runtime: Some(ContainerRuntime::Docker),
                    ..m
                })
            })
            .map_err(|source| SourceError::Parse {
                path: config_path,
                source,
            })
    }

    fn containerd(&self, id: &str) -> Result<Option<RuntimeMeta>, SourceError> {
        let tasks = self.containerd_tasks();
        // `k8s.io` (the CRI plugin) first, then whatever namespaces exist.
        let mut namespaces = vec!["k8s.io".to_owned()];
        if let Ok(dir) = std::fs::read_dir(&tasks) {
            for entry in dir.flatten().take(MAX_NAMESPACES) {
                if let Some(name) = entry.file_name().to_str() {
                    if name != "k8s.io" && !name.starts_with('.') && !name.contains('/') {
                        namespaces.push(name.to_owned());
                    }
                }
            }
        }
        for ns in namespaces {
            let path = tasks.join(&ns).join(id).join("config.json");
            if let Some(bytes) = read_capped(&path)? {
                // `moby` is docker's namespace in containerd.
                let runtime = if ns == "moby" {
                    ContainerRuntime::Docker
                } else {
                    ContainerRuntime::Containerd
                };
                return parse::oci_config(&bytes)
                    .map(|m| {
                        Some(RuntimeMeta {
                            runtime: Some(runtime),
                            ..m
                        })
                    })
                    .map_err(|source| SourceError::Parse { path, source });
            }
        }
        Ok(None)
    }

    fn storage(&self, id: &str) -> Result<Option<RuntimeMeta>, SourceError> {
        for path in self.storage_bundles(id) {
            if let Some(bytes) = read_capped(&path)? {
                return parse::oci_config(&bytes)
                    .map(Some)
                    .map_err(|source| SourceError::Parse { path, source });
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const ID: &str = "7c1e5a0b9d8f7e6d5c4b3a29181716151413121110f0e0d0c0b0a09080706050";

    fn write(root: &Path, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn finds_each_runtime_where_it_writes() {
        let dir = tempfile::tempdir().unwrap();
        let paths = RuntimePaths::new(dir.path());
        assert!(matches!(
            paths.lookup(ID, ContainerRuntime::Unknown),
            Err(SourceError::NotFound)
        ));
        write(
            dir.path(),
            &format!("run/containerd/io.containerd.runtime.v2.task/default/{ID}/config.json"),
            include_bytes!("fixtures/containerd-cri-config.json"),
        );
        let m = paths.lookup(ID, ContainerRuntime::Containerd).unwrap();
        assert_eq!(m.pod_name.as_deref(), Some("web-7d9c"));
        // docker wins for a docker cgroup when both exist.
        write(
            dir.path(),
            &format!("var/lib/docker/containers/{ID}/config.v2.json"),
            include_bytes!("fixtures/docker-config.v2.json"),
        );
        let m = paths.lookup(ID, ContainerRuntime::Docker).unwrap();
        let m = m.believed_in(Some("11111111-2222-4333-8444-555555555555"));
        assert_eq!(m.name.as_deref(), Some("app"));
        assert_eq!(m.privileged, None, "no hostconfig.json: unknown");
        let crio = "b".repeat(64);
        write(
            dir.path(),
            &format!("run/containers/storage/overlay-containers/{crio}/userdata/config.json"),
            include_bytes!("fixtures/crio-config.json"),
        );
        let m = paths.lookup(&crio, ContainerRuntime::CriO).unwrap();
        assert_eq!(m.pod_namespace.as_deref(), Some("prod"));
    }

    #[test]
    fn a_symlinked_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let secret = write(dir.path(), "secret", br#"{"annotations":{}}"#);
        let link = dir.path().join("config.json");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        assert!(matches!(
            read_capped(&link),
            Err(SourceError::NotRegular { .. })
        ));
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("config.json");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(matches!(
            read_capped(&fifo),
            Err(SourceError::NotRegular { .. })
        ));
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("config.json")).unwrap();
        assert!(read_capped(&dir.path().join("config.json")).is_err());
    }

    #[test]
    fn a_huge_file_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        let f = File::create(&p).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert!(matches!(read_capped(&p), Err(SourceError::TooLarge { .. })));
    }

    #[test]
    fn malformed_bundle_is_a_parse_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID}/config.json"),
            b"{\"annotations\": [",
        );
        let e = RuntimePaths::new(dir.path())
            .lookup(ID, ContainerRuntime::Containerd)
            .unwrap_err();
        assert_eq!(e.kind(), "parse_error");
        assert!(e.to_string().contains("config.json"), "{e}");
    }
}
