//! Container identity from a cgroup path.
//!
//! The kernel gives every exec a cgroup id; [`crate::context::cgroup_path`] turns that
//! into a path such as
//! `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope`.
//! Container runtimes name the cgroup of a container after its id, so the
//! path is the one place where a host sensor can read `container.id` without
//! talking to every runtime's API. This module is that parser: pure string
//! work, no I/O, never panics.
//!
//! # Shapes recognised (one path segment, outermost match wins)
//!
//! | segment | runtime |
//! | --- | --- |
//! | `docker-<id>.scope` (systemd driver; also under kubepods with cri-dockerd) | docker |
//! | `cri-containerd-<id>.scope` | containerd |
//! | `crio-<id>.scope`, `crio-<id>` (cgroupfs driver) | cri-o |
//! | `libpod-<id>.scope`, `libpod-<id>` (cgroupfs driver), also with a `/container` child | podman |
//! | `<slice>:<prefix>:<id>` (containerd/cri-o "systemd-style" names, e.g. `kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>`) | from `<prefix>` |
//! | bare `<id>` | from the parent segment: `docker`/`moby`/`actions_job` → docker, `k8s.io` → containerd, `libpod_parent` → podman, anything else → [`ContainerRuntime::Unknown`] |
//!
//! `<id>` must be exactly 64 lowercase hex digits: every runtime we support
//! uses that form, and requiring it is what keeps host services out
//! (`docker.service` is the daemon, `crio-conmon-<id>.scope` and
//! `libpod-conmon-<id>.scope` are the runtime's monitor process, not the
//! container, and neither matches).
//!
//! Segments *inside* the container cgroup (a container running systemd
//! creates `init.scope`, podman creates `container`) are skipped, so any
//! process in the container's subtree gets the container's id. With nested
//! containers (docker-in-docker, or a container that nests a
//! `docker-<id>.scope` of its own choosing inside its cgroup) the
//! **outermost** id wins: a process that can write its own cgroup can
//! create any directory below its container's, so only the outermost
//! segment is the runtime's word. The one nesting taken from below is a
//! kubelet running inside a container that is not a pod's (kind, CI jobs):
//! the containers below its `kubepods` segment are the pods' own.
//!
//! Any prefix before the recognised segments is accepted, which covers
//! non-default cgroup roots (the sensor in a container without a cgroup
//! namespace sees `/kubelet.slice/kubelet-kubepods.slice/...` or
//! `/actions_job/<id>/kubepods/...`).
//!
//! # Why a bare id under `kubepods` is [`ContainerRuntime::Unknown`]
//!
//! Kubelet's cgroupfs driver gives containers the bare `<id>` name under
//! `/kubepods/<qos>/pod<uid>/`. Two runtimes produce exactly that shape:
//! containerd (including k3s, RKE2 and microk8s, which embed it) and Docker
//! Engine behind cri-dockerd. CRI-O never does (it prefixes `crio-` in both
//! drivers). The path alone therefore cannot tell containerd from docker, so
//! we report `Unknown` rather than guess; the ECS writer should omit
//! `container.runtime` then ([`ContainerRuntime::ecs_value`] is `None`), or
//! substitute a runtime configured for the node. `container.id` and the pod
//! uid are still reported: they are what rules and analysts join on.

use std::fmt;

/// Length of the container ids all supported runtimes use (sha256 in hex).
const ID_LEN: usize = 64;

/// The container runtime that created a container cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerRuntime {
    /// Docker Engine (`docker-<id>.scope`, `/docker/<id>`).
    Docker,
    /// containerd's CRI plugin or its namespaces (k3s, RKE2, microk8s).
    Containerd,
    /// CRI-O.
    CriO,
    /// Podman (libpod).
    Podman,
    /// A container id was found but the path does not name the runtime
    /// (kubelet cgroupfs layout, custom `--cgroup-parent`). See the module
    /// documentation for why this is not guessed.
    Unknown,
}

impl ContainerRuntime {
    /// Short lowercase name; for the four known runtimes this is the ECS
    /// `container.runtime` value, for [`ContainerRuntime::Unknown`] it is
    /// `"unknown"` (meant for logs, not for ECS documents).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Containerd => "containerd",
            Self::CriO => "cri-o",
            Self::Podman => "podman",
            Self::Unknown => "unknown",
        }
    }

    /// The ECS `container.runtime` value, or `None` when the field should be
    /// left out because the runtime is not known.
    pub fn ecs_value(self) -> Option<&'static str> {
        match self {
            Self::Unknown => None,
            known => Some(known.as_str()),
        }
    }
}

impl fmt::Display for ContainerRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a cgroup path says about the container a process runs in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ContainerInfo {
    /// The runtime's container id: 64 lowercase hex digits.
    pub id: String,
    /// The runtime, as far as the path tells.
    pub runtime: ContainerRuntime,
    /// The Kubernetes pod uid in its canonical form (dashed UUID, or the
    /// 32-hex hash that static pods use), when the container sits under a
    /// `kubepods` cgroup. Systemd-style names replace `-` by `_`; that is
    /// undone here so the value equals `metadata.uid` of the pod.
    pub pod_uid: Option<String>,
}

/// Parse a cgroup path (as in the `0::` line of `/proc/<pid>/cgroup`, or as
/// returned by [`crate::context::cgroup_path::CgroupResolver::resolve`]).
///
/// Returns `None` for host processes, runtime daemons and monitors, and pod
/// cgroups that hold no container (the pod-level parent of the sandbox).
pub fn from_cgroup_path(path: &str) -> Option<ContainerInfo> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let is_kubepods = |s: &&str| s.contains("kubepods");
    // Outermost container segment wins: walk from the root down. A process
    // that can write its own cgroup can create any directory *below* its
    // container's, so a segment nested inside a container never names the
    // container. One nesting is the host's own: a kubelet running inside a
    // container that is not itself a pod's (kind, CI jobs), whose pods'
    // containers sit under a `kubepods` segment below it; there the search
    // restarts below that `kubepods` segment.
    let mut start = 0;
    loop {
        let (index, found) = segments
            .iter()
            .enumerate()
            .skip(start)
            .find_map(|(i, segment)| {
                let parent = i.checked_sub(1).and_then(|p| segments.get(p)).copied();
                container_segment(segment, parent).map(|f| (i, f))
            })?;
        let ancestors = segments.get(..index).unwrap_or_default();
        let under_kubepods = ancestors.iter().any(is_kubepods)
            || found.slice.is_some_and(|s| s.contains("kubepods"));
        if !under_kubepods {
            if let Some(k) = segments.iter().skip(index + 1).position(is_kubepods) {
                start = index + 1 + k + 1;
                continue;
            }
        }
        let pod_uid = if under_kubepods {
            found
                .slice
                .and_then(pod_uid_of_segment)
                .or_else(|| ancestors.iter().rev().find_map(|s| pod_uid_of_segment(s)))
        } else {
            None
        };
        return Some(ContainerInfo {
            id: found.id.to_owned(),
            runtime: found.runtime,
            pod_uid,
        });
    }
}

/// A container id found in one segment.
struct Found<'a> {
    id: &'a str,
    runtime: ContainerRuntime,
    /// For `<slice>:<prefix>:<id>` segments: the `<slice>` part, which holds
    /// the pod uid.
    slice: Option<&'a str>,
}

fn container_segment<'a>(segment: &'a str, parent: Option<&str>) -> Option<Found<'a>> {
    if segment.contains(':') {
        // `<slice>:<prefix>:<id>`: exactly three parts, nothing else.
        let mut parts = segment.split(':');
        let (slice, prefix, id) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !is_container_id(id) {
            return None;
        }
        let runtime = runtime_of_prefix(prefix).unwrap_or(ContainerRuntime::Unknown);
        return Some(Found {
            id,
            runtime,
            slice: Some(slice),
        });
    }
    if is_container_id(segment) {
        return Some(Found {
            id: segment,
            runtime: parent
                .and_then(runtime_of_parent)
                .unwrap_or(ContainerRuntime::Unknown),
            slice: None,
        });
    }
    let base = segment.strip_suffix(".scope").unwrap_or(segment);
    // `<prefix>-<id>`; `crio-conmon-<id>` splits as prefix `crio-conmon`,
    // which is not a runtime prefix, so monitors are rejected here.
    let (prefix, id) = base.split_at_checked(base.len().checked_sub(ID_LEN + 1)?)?;
    let id = id.strip_prefix('-')?;
    if !is_container_id(id) {
        return None;
    }
    Some(Found {
        id,
        runtime: runtime_of_prefix(prefix)?,
        slice: None,
    })
}

/// Runtime named by a segment prefix (`docker-<id>.scope`, `…:crio:<id>`).
fn runtime_of_prefix(prefix: &str) -> Option<ContainerRuntime> {
    match prefix {
        "docker" => Some(ContainerRuntime::Docker),
        "cri-containerd" => Some(ContainerRuntime::Containerd),
        "crio" => Some(ContainerRuntime::CriO),
        "libpod" => Some(ContainerRuntime::Podman),
        _ => None,
    }
}

/// Runtime implied by the parent of a bare `<id>` segment.
fn runtime_of_parent(parent: &str) -> Option<ContainerRuntime> {
    match parent {
        // Docker's cgroupfs driver default parent; `moby` is used by
        // dockerd-in-docker and buildkit; `actions_job` by GitHub Actions'
        // `--cgroup-parent` for job containers.
        "docker" | "moby" | "actions_job" => Some(ContainerRuntime::Docker),
        // containerd names the cgroup after its namespace when no parent is
        // given; `k8s.io` is the namespace of its CRI plugin and of k3s.
        "k8s.io" => Some(ContainerRuntime::Containerd),
        // Podman's cgroupfs manager parent.
        "libpod_parent" => Some(ContainerRuntime::Podman),
        _ => None,
    }
}

/// Exactly 64 lowercase hex digits.
fn is_container_id(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Pod uid from a pod-level segment: `pod<uid>` (cgroupfs) or
/// `<anything>-pod<uid_with_underscores>.slice` (systemd).
fn pod_uid_of_segment(segment: &str) -> Option<String> {
    let raw = if let Some(base) = segment.strip_suffix(".slice") {
        // The uid has no `-` in systemd form, so the last `-` starts `pod…`.
        let (_, last) = base.rsplit_once('-')?;
        last.strip_prefix("pod")?
    } else {
        segment.strip_prefix("pod")?
    };
    let canonical = raw.replace('_', "-");
    is_pod_uid(&canonical).then_some(canonical)
}

/// A dashed lowercase UUID (`8-4-4-4-12`), or the 32 lowercase hex digits
/// kubelet uses as the uid of static (file/manifest) pods.
fn is_pod_uid(s: &str) -> bool {
    let hex = |b: u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
    if s.len() == 32 {
        return s.bytes().all(hex);
    }
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8usize, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(hex))
}

#[cfg(test)]
// Tests fail by panicking; that is what these lints exist to keep out of
// production code.
#[allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ID: &str = "3f2c9e1b7a4d5c6e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9012345678abcd";
    const ID2: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const UID: &str = "6c8d7e2a-1b3f-4c5d-9e8f-0a1b2c3d4e5f";
    const UID_SYSTEMD: &str = "6c8d7e2a_1b3f_4c5d_9e8f_0a1b2c3d4e5f";

    fn some(id: &str, runtime: ContainerRuntime, pod: Option<&str>) -> Option<ContainerInfo> {
        Some(ContainerInfo {
            id: id.to_owned(),
            runtime,
            pod_uid: pod.map(str::to_owned),
        })
    }

    #[test]
    fn real_world_shapes() {
        use ContainerRuntime::*;
        let static_pod = "0f3a8f0c4f0d2a6e1c9b7d5e3f1a2b4c";
        let cases: Vec<(String, Option<ContainerInfo>)> = vec![
            // docker, systemd and cgroupfs drivers
            (format!("/system.slice/docker-{ID}.scope"), some(ID, Docker, None)),
            (format!("/docker/{ID}"), some(ID, Docker, None)),
            (format!("/docker/{ID}/docker/{ID2}"), some(ID, Docker, None)), // dind: outermost
            (format!("/moby/{ID}"), some(ID, Docker, None)),
            (format!("/actions_job/{ID}"), some(ID, Docker, None)),
            (format!("/system.slice/docker-{ID}.scope/init.scope"), some(ID, Docker, None)),
            // containerd CRI, systemd driver, each QoS class
            (
                format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_SYSTEMD}.slice/cri-containerd-{ID}.scope"),
                some(ID, Containerd, Some(UID)),
            ),
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_SYSTEMD}.slice/cri-containerd-{ID}.scope"),
                some(ID, Containerd, Some(UID)),
            ),
            // guaranteed QoS has no qos level
            (
                format!("/kubepods.slice/kubepods-pod{UID_SYSTEMD}.slice/cri-containerd-{ID}.scope"),
                some(ID, Containerd, Some(UID)),
            ),
            // kubelet cgroupfs driver: runtime not named in the path
            (format!("/kubepods/besteffort/pod{UID}/{ID}"), some(ID, Unknown, Some(UID))),
            (format!("/kubepods/burstable/pod{UID}/{ID}"), some(ID, Unknown, Some(UID))),
            (format!("/kubepods/pod{UID}/{ID}"), some(ID, Unknown, Some(UID))),
            // static pod: uid is a 32-hex hash
            (format!("/kubepods/burstable/pod{static_pod}/{ID}"), some(ID, Unknown, Some(static_pod))),
            // systemd-style name under containerd.service
            (
                format!("/system.slice/containerd.service/kubepods-besteffort-pod{UID_SYSTEMD}.slice:cri-containerd:{ID}"),
                some(ID, Containerd, Some(UID)),
            ),
            (
                format!("/system.slice/crio.service/kubepods-pod{UID_SYSTEMD}.slice:crio:{ID}"),
                some(ID, CriO, Some(UID)),
            ),
            // cri-o: systemd and cgroupfs drivers; the monitor is not the container
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_SYSTEMD}.slice/crio-{ID}.scope"),
                some(ID, CriO, Some(UID)),
            ),
            (format!("/kubepods/besteffort/pod{UID}/crio-{ID}"), some(ID, CriO, Some(UID))),
            (format!("/machine.slice/crio-{ID}.scope"), some(ID, CriO, None)),
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_SYSTEMD}.slice/crio-conmon-{ID}.scope"),
                None,
            ),
            // podman, rootful and rootless, systemd and cgroupfs
            (format!("/machine.slice/libpod-{ID}.scope"), some(ID, Podman, None)),
            (format!("/machine.slice/libpod-{ID}.scope/container"), some(ID, Podman, None)),
            (
                format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"),
                some(ID, Podman, None),
            ),
            (format!("/libpod_parent/libpod-{ID}"), some(ID, Podman, None)),
            (format!("/machine.slice/libpod-conmon-{ID}.scope"), None),
            // k3s / RKE2 / microk8s
            (format!("/kubepods/besteffort/pod{UID}/{ID}"), some(ID, Unknown, Some(UID))),
            (format!("/k8s.io/{ID}"), some(ID, Containerd, None)),
            // non-default roots and nested kubelet
            (
                format!("/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{UID_SYSTEMD}.slice/cri-containerd-{ID}.scope"),
                some(ID, Containerd, Some(UID)),
            ),
            (
                format!("/actions_job/{ID2}/kubepods/besteffort/pod{UID}/{ID}"),
                some(ID, Unknown, Some(UID)),
            ),
            (
                format!("/system.slice/kubelet.service/kubepods/burstable/pod{UID}/crio-{ID}"),
                some(ID, CriO, Some(UID)),
            ),
            // docker via cri-dockerd, systemd driver
            (
                format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_SYSTEMD}.slice/docker-{ID}.scope"),
                some(ID, Docker, Some(UID)),
            ),
            // trailing slash, doubled slashes
            (format!("/docker//{ID}/"), some(ID, Docker, None)),
        ];
        for (path, want) in cases {
            assert_eq!(from_cgroup_path(&path), want, "path {path}");
        }
    }

    #[test]
    fn host_paths_are_not_containers() {
        let negatives = [
            "/".to_owned(),
            String::new(),
            "/init.scope".to_owned(),
            "/system.slice/docker.service".to_owned(),
            "/system.slice/containerd.service".to_owned(),
            "/system.slice/crio.service".to_owned(),
            "/system.slice/docker.socket".to_owned(),
            "/user.slice/user-1000.slice/session-3.scope".to_owned(),
            "/user.slice/user-0.slice/user@0.service/app.slice/podman-4242.scope".to_owned(),
            "/kubepods.slice".to_owned(),
            "/kubepods.slice/kubepods-besteffort.slice".to_owned(),
            // pod-level parents (the sandbox's parent), no container id
            format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_SYSTEMD}.slice"),
            format!("/kubepods/besteffort/pod{UID}"),
            format!("/kubepods/pod{UID}"),
            "/process_api/312311219748384382cb5cd579b05dda".to_owned(),
            // almost-ids: uppercase, 63 or 65 digits, unknown prefix, extra suffix
            format!("/docker/{}", ID.to_uppercase()),
            format!("/docker/{}", &ID[1..]),
            format!("/docker/{ID}0"),
            format!("/system.slice/foo-{ID}.scope"),
            format!("/system.slice/docker-{ID}.service"),
            format!("/system.slice/docker-{ID}.scopex"),
            format!("/x:{ID}"),
            format!("/a:b:c:{ID}"),
        ];
        for path in negatives {
            assert_eq!(from_cgroup_path(&path), None, "path {path}");
        }
    }

    /// Issue #21: a container that can write its own cgroup nests a
    /// `docker-<B>.scope` (or a bare id, or a fake kubepods tree) inside
    /// it; its processes keep the runtime's own id.
    #[test]
    fn a_container_nesting_a_chosen_id_keeps_its_own() {
        use ContainerRuntime::*;
        let pod = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_SYSTEMD}.slice/cri-containerd-{ID}.scope"
        );
        for nested in [
            format!("{pod}/docker-{ID2}.scope"),
            format!("{pod}/docker/{ID2}"),
            format!("{pod}/kubepods/besteffort/pod{UID}/{ID2}"),
            format!("{pod}/system.slice/cri-containerd-{ID2}.scope/init.scope"),
        ] {
            assert_eq!(
                from_cgroup_path(&nested),
                some(ID, Containerd, Some(UID)),
                "{nested}"
            );
        }
        assert_eq!(
            from_cgroup_path(&format!(
                "/system.slice/docker-{ID}.scope/docker-{ID2}.scope"
            )),
            some(ID, Docker, None)
        );
        // A kubelet inside a container that is no pod's (kind, CI jobs):
        // the pods' containers are below its kubepods segment.
        assert_eq!(
            from_cgroup_path(&format!("/docker/{ID2}/kubepods/besteffort/pod{UID}/{ID}")),
            some(ID, Unknown, Some(UID))
        );
    }

    #[test]
    fn pod_uid_outside_kubepods_is_not_reported() {
        assert_eq!(
            from_cgroup_path(&format!("/foo/pod{UID}/{ID}")),
            some(ID, ContainerRuntime::Unknown, None)
        );
    }

    #[test]
    fn runtime_names() {
        assert_eq!(ContainerRuntime::CriO.as_str(), "cri-o");
        assert_eq!(ContainerRuntime::CriO.ecs_value(), Some("cri-o"));
        assert_eq!(ContainerRuntime::Unknown.ecs_value(), None);
        assert_eq!(ContainerRuntime::Podman.to_string(), "podman");
    }

    /// Segments of host-like cgroup paths: systemd unit names, slices,
    /// numbers, hex shorter than an id, and the runtime words themselves.
    fn host_segment() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9@_.-]{0,30}",
            "[a-z]{1,10}-[0-9]{1,6}\\.(scope|slice|service)",
            "(docker|crio|libpod|cri-containerd|crio-conmon|libpod-conmon)-[0-9a-f]{1,63}\\.scope",
            "[0-9a-f]{1,63}",
            "pod[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "kubepods(-besteffort|-burstable)?(\\.slice)?",
            "[a-z.-]{0,10}:[a-z-]{0,14}:[0-9a-f]{0,63}",
        ]
    }

    proptest! {
        #[test]
        fn no_id_no_container(segments in prop::collection::vec(host_segment(), 0..8)) {
            let path = format!("/{}", segments.join("/"));
            prop_assert_eq!(from_cgroup_path(&path), None, "path {}", path);
        }

        #[test]
        fn never_panics(input in ".{0,300}") {
            let _ = from_cgroup_path(&input);
        }

        #[test]
        fn never_panics_on_near_misses(
            prefix in "[a-z:/_-]{0,20}",
            hex in "[0-9a-fA-F]{60,68}",
            suffix in "[a-z.:/-]{0,12}",
        ) {
            let path = format!("{prefix}{hex}{suffix}");
            if let Some(info) = from_cgroup_path(&path) {
                prop_assert!(is_container_id(&info.id));
            }
        }
    }
}
