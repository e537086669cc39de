//! Parsers of what container runtimes write about a container: the OCI
//! bundle's `config.json` (containerd, CRI-O: CRI annotations) and docker's
//! `config.v2.json` + `hostconfig.json`. Pure functions over bytes, no I/O;
//! every malformed input is an error, never a panic.
//!
//! These files are writable only by root on the node, but the sensor treats
//! them as hostile anyway: sizes are capped by the reader
//! ([`super::source`]), and every value taken from them is bounded here
//! ([`MAX_VALUE_LEN`]) and only ever reported, never trusted for a verdict
//! beyond what the runtime itself enforces (`privileged`).

use std::collections::HashMap;

use serde::Deserialize;

use crate::context::container_id::ContainerRuntime;

/// Longest value kept from any annotation or label: Kubernetes names are at
/// most 253 bytes, image references a few hundred. Longer is refused.
pub const MAX_VALUE_LEN: usize = 1024;

/// What the runtime says about one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeMeta {
    /// ECS `container.name`: the Kubernetes container name, or docker's name.
    pub name: Option<String>,
    /// ECS `container.image.name`: the image reference without tag/digest.
    pub image_name: Option<String>,
    /// ECS `container.image.tag`.
    pub image_tag: Option<String>,
    /// ECS `orchestrator.resource.name`: the pod.
    pub pod_name: Option<String>,
    /// ECS `orchestrator.namespace`.
    pub pod_namespace: Option<String>,
    /// ECS `orchestrator.resource.id`: the pod uid.
    pub pod_uid: Option<String>,
    /// `container.security_context.privileged` (Defend for Containers).
    pub privileged: Option<bool>,
    /// Docker only: the kubelet's labels as cri-dockerd sets them, kept
    /// apart until [`RuntimeMeta::believed_in`] checks them against the
    /// container's cgroup (a docker container's labels include its image's
    /// own `LABEL`s, which the image's author chooses).
    pub kubelet_labels: Option<KubeletLabels>,
    /// The runtime whose files these are (set by the lookup that found
    /// them): names `container.runtime` where the cgroup path cannot (a
    /// bare id under `kubepods` is containerd's or cri-dockerd's).
    pub runtime: Option<ContainerRuntime>,
}

/// The pod and container names cri-dockerd puts in a docker container's
/// labels (`io.kubernetes.pod.*`, `io.kubernetes.container.name`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeletLabels {
    /// `io.kubernetes.container.name`.
    pub container_name: Option<String>,
    /// `io.kubernetes.pod.name`.
    pub pod_name: Option<String>,
    /// `io.kubernetes.pod.namespace`.
    pub pod_namespace: Option<String>,
    /// `io.kubernetes.pod.uid`: what the cgroup must agree with.
    pub pod_uid: String,
}

impl RuntimeMeta {
    /// The metadata to report for a container whose cgroup puts it in the
    /// pod `cgroup_pod_uid` (`None`: not under a `kubepods` cgroup). Docker
    /// labels name the pod and the container only when they name that same
    /// pod: a plain `docker run` of an image whose `LABEL`s claim a pod, or
    /// a pod's container whose image claims another pod, gets docker's own
    /// name and no pod from them.
    pub fn believed_in(mut self, cgroup_pod_uid: Option<&str>) -> RuntimeMeta {
        if let Some(k) = self.kubelet_labels.take() {
            if cgroup_pod_uid == Some(k.pod_uid.as_str()) {
                if k.container_name.is_some() {
                    self.name = k.container_name;
                }
                self.pod_name = k.pod_name;
                self.pod_namespace = k.pod_namespace;
                self.pod_uid = Some(k.pod_uid);
            }
        }
        self
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error("value of `{key}` is {len} bytes (limit {MAX_VALUE_LEN})")]
    TooLong { key: String, len: usize },
}

fn json_err(e: serde_json::Error) -> ParseError {
    ParseError::Json(e.to_string())
}

/// Both files are JSON objects; serde would also take an array for a
/// struct, which no runtime writes.
fn from_object<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ParseError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(ParseError::Json("not a JSON object".into()));
    }
    serde_json::from_slice(bytes).map_err(json_err)
}

// ---- OCI runtime spec (config.json) ----

#[derive(Deserialize, Default)]
struct OciSpec {
    #[serde(default)]
    annotations: HashMap<String, String>,
    #[serde(default)]
    process: Option<OciProcess>,
    #[serde(default)]
    linux: Option<OciLinux>,
}

#[derive(Deserialize, Default)]
struct OciProcess {
    #[serde(default)]
    capabilities: Option<OciCaps>,
}

#[derive(Deserialize, Default)]
struct OciCaps {
    #[serde(default)]
    bounding: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct OciLinux {
    #[serde(default)]
    masked_paths: Option<Vec<String>>,
    #[serde(default)]
    readonly_paths: Option<Vec<String>>,
}

/// containerd's CRI plugin annotations (`pkg/cri/annotations`).
const CRI_SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
const CRI_SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
const CRI_SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
const CRI_CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
const CRI_IMAGE_NAME: &str = "io.kubernetes.cri.image-name";
/// CRI-O's (and the kubelet's labels, which CRI-O and cri-dockerd carry).
const K8S_POD_NAME: &str = "io.kubernetes.pod.name";
const K8S_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
const K8S_POD_UID: &str = "io.kubernetes.pod.uid";
const K8S_CONTAINER_NAME: &str = "io.kubernetes.container.name";
const CRIO_IMAGE_NAME: &str = "io.kubernetes.cri-o.ImageName";

/// The capability a privileged container has and a default one never does.
const CAP_SYS_ADMIN: &str = "CAP_SYS_ADMIN";

fn bounded(map: &HashMap<String, String>, key: &str) -> Result<Option<String>, ParseError> {
    match map.get(key) {
        None => Ok(None),
        Some(v) if v.len() > MAX_VALUE_LEN => Err(ParseError::TooLong {
            key: key.to_owned(),
            len: v.len(),
        }),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => Ok(Some(v.clone())),
    }
}

fn first_of(map: &HashMap<String, String>, keys: &[&str]) -> Result<Option<String>, ParseError> {
    for k in keys {
        if let Some(v) = bounded(map, k)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// Fills the pod, container and image fields from CRI annotations or
/// kubelet labels (both use string maps).
fn from_kubernetes_map(
    meta: &mut RuntimeMeta,
    map: &HashMap<String, String>,
) -> Result<(), ParseError> {
    meta.pod_name = first_of(map, &[CRI_SANDBOX_NAME, K8S_POD_NAME])?;
    meta.pod_namespace = first_of(map, &[CRI_SANDBOX_NAMESPACE, K8S_POD_NAMESPACE])?;
    meta.pod_uid = first_of(map, &[CRI_SANDBOX_UID, K8S_POD_UID])?;
    if let Some(name) = first_of(map, &[CRI_CONTAINER_NAME, K8S_CONTAINER_NAME])? {
        meta.name = Some(name);
    }
    if let Some(image) = first_of(map, &[CRI_IMAGE_NAME, CRIO_IMAGE_NAME])? {
        let (name, tag) = split_image(&image);
        meta.image_name = Some(name);
        meta.image_tag = tag;
    }
    Ok(())
}

/// An OCI bundle's `config.json` as containerd and CRI-O write it.
///
/// `privileged` is decided from the spec the runtime will enforce, with one
/// precise criterion that both docker's and Kubernetes' privileged mode meet
/// and their defaults never do: `CAP_SYS_ADMIN` is in the bounding set
/// **and** `linux.maskedPaths` and `linux.readonlyPaths` are both empty or
/// absent. (A container merely granted `SYS_ADMIN` keeps its masked paths,
/// so it is not called privileged; one with masked paths removed but
/// without `SYS_ADMIN` cannot mount.) A spec without a `process` section
/// says nothing: `privileged` is left unknown.
pub fn oci_config(bytes: &[u8]) -> Result<RuntimeMeta, ParseError> {
    let spec: OciSpec = from_object(bytes)?;
    let mut meta = RuntimeMeta::default();
    from_kubernetes_map(&mut meta, &spec.annotations)?;
    if let Some(process) = &spec.process {
        let caps = process.capabilities.as_ref();
        let sys_admin = caps.is_some_and(|c| c.bounding.iter().any(|b| b == CAP_SYS_ADMIN));
        let linux = spec.linux.as_ref();
        let unmasked = linux.is_none_or(|l| {
            l.masked_paths.as_ref().is_none_or(Vec::is_empty)
                && l.readonly_paths.as_ref().is_none_or(Vec::is_empty)
        });
        meta.privileged = Some(sys_admin && unmasked);
    }
    Ok(meta)
}

// ---- docker (config.v2.json, hostconfig.json) ----

#[derive(Deserialize, Default)]
struct DockerConfigV2 {
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Config", default)]
    config: Option<DockerContainerConfig>,
}

#[derive(Deserialize, Default)]
struct DockerContainerConfig {
    #[serde(rename = "Image", default)]
    image: String,
    #[serde(rename = "Labels", default)]
    labels: Option<HashMap<String, String>>,
}

#[derive(Deserialize, Default)]
struct DockerHostConfig {
    #[serde(rename = "Privileged", default)]
    privileged: Option<bool>,
}

/// Docker's `config.v2.json` (and `hostconfig.json` when read): the name
/// (docker's, without its leading `/`), the image as the user named it
/// (`Config.Image`), `HostConfig.Privileged`, and cri-dockerd's kubelet
/// labels, set apart until the cgroup confirms them
/// ([`RuntimeMeta::believed_in`]).
pub fn docker_config(
    config_v2: &[u8],
    hostconfig: Option<&[u8]>,
) -> Result<RuntimeMeta, ParseError> {
    let cfg: DockerConfigV2 = from_object(config_v2)?;
    let mut meta = RuntimeMeta::default();
    let name = cfg.name.trim_start_matches('/');
    if name.len() > MAX_VALUE_LEN {
        return Err(ParseError::TooLong {
            key: "Name".into(),
            len: name.len(),
        });
    }
    if !name.is_empty() {
        meta.name = Some(name.to_owned());
    }
    if let Some(c) = &cfg.config {
        if c.image.len() > MAX_VALUE_LEN {
            return Err(ParseError::TooLong {
                key: "Config.Image".into(),
                len: c.image.len(),
            });
        }
        if !c.image.is_empty() {
            let (name, tag) = split_image(&c.image);
            meta.image_name = Some(name);
            meta.image_tag = tag;
        }
        if let Some(labels) = &c.labels {
            // cri-dockerd: the kubelet's labels name the pod and container;
            // only its keys (never containerd's `io.kubernetes.cri.*` nor an
            // image name: the image is docker's own `Config.Image`), and
            // believed only against the cgroup (`believed_in`).
            if let Some(pod_uid) = bounded(labels, K8S_POD_UID)? {
                meta.kubelet_labels = Some(KubeletLabels {
                    container_name: bounded(labels, K8S_CONTAINER_NAME)?,
                    pod_name: bounded(labels, K8S_POD_NAME)?,
                    pod_namespace: bounded(labels, K8S_POD_NAMESPACE)?,
                    pod_uid,
                });
            }
        }
    }
    if let Some(h) = hostconfig {
        let host: DockerHostConfig = from_object(h)?;
        meta.privileged = host.privileged;
    }
    Ok(meta)
}

/// `registry:5000/ns/app:1.2@sha256:…` → (`registry:5000/ns/app`, `1.2`).
/// A tag is what follows the last `:` after the last `/`; a digest is cut
/// off and is not a tag.
pub fn split_image(reference: &str) -> (String, Option<String>) {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            let tag = &without_digest[at + 1..];
            (
                without_digest[..at].to_owned(),
                (!tag.is_empty()).then(|| tag.to_owned()),
            )
        }
        None => (without_digest.to_owned(), None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn containerd_cri_bundle() {
        let m = oci_config(include_bytes!("fixtures/containerd-cri-config.json")).unwrap();
        assert_eq!(
            m,
            RuntimeMeta {
                name: Some("web".into()),
                image_name: Some("docker.io/library/nginx".into()),
                image_tag: Some("1.25.3".into()),
                pod_name: Some("web-7d9c".into()),
                pod_namespace: Some("shop".into()),
                pod_uid: Some("6f0d4b2e-3c1a-4d8e-9a57-1b2c3d4e5f60".into()),
                privileged: Some(false),
                kubelet_labels: None,
                runtime: None,
            }
        );
    }

    #[test]
    fn containerd_privileged_bundle() {
        let m = oci_config(include_bytes!("fixtures/containerd-privileged-config.json")).unwrap();
        assert_eq!(m.privileged, Some(true));
        assert_eq!(m.pod_name.as_deref(), Some("debug-pod"));
    }

    #[test]
    fn crio_bundle() {
        let m = oci_config(include_bytes!("fixtures/crio-config.json")).unwrap();
        assert_eq!(
            m,
            RuntimeMeta {
                name: Some("api".into()),
                image_name: Some("quay.io/acme/api".into()),
                image_tag: Some("v2".into()),
                pod_name: Some("api-0".into()),
                pod_namespace: Some("prod".into()),
                pod_uid: Some("0a1b2c3d-0000-4000-8000-000000000001".into()),
                privileged: Some(false),
                kubelet_labels: None,
                runtime: None,
            }
        );
    }

    #[test]
    fn docker_container_with_kubelet_labels() {
        let m = docker_config(
            include_bytes!("fixtures/docker-config.v2.json"),
            Some(include_bytes!("fixtures/docker-hostconfig.json")),
        )
        .unwrap();
        let uid = "11111111-2222-4333-8444-555555555555";
        assert_eq!(
            m.clone().believed_in(Some(uid)),
            RuntimeMeta {
                name: Some("app".into()),
                image_name: Some("localhost:5000/team/app".into()),
                image_tag: Some("3.1".into()),
                pod_name: Some("app-5f6b".into()),
                pod_namespace: Some("default".into()),
                pod_uid: Some(uid.into()),
                privileged: Some(true),
                kubelet_labels: None,
                runtime: None,
            }
        );
        // Not under that pod's cgroup: docker's own name, no pod.
        for cgroup_pod in [None, Some("99999999-2222-4333-8444-555555555555")] {
            assert_eq!(
                m.clone().believed_in(cgroup_pod),
                RuntimeMeta {
                    name: Some(
                        "k8s_app_app-5f6b_default_11111111-2222-4333-8444-555555555555_0".into()
                    ),
                    image_name: Some("localhost:5000/team/app".into()),
                    image_tag: Some("3.1".into()),
                    privileged: Some(true),
                    ..RuntimeMeta::default()
                },
                "{cgroup_pod:?}"
            );
        }
    }

    /// Issue #21: an image's `LABEL`s are merged into its docker
    /// container's labels. They never set the image, containerd's CRI keys
    /// are never read from them, and the pod keys count only where the
    /// cgroup puts the container in that pod.
    #[test]
    fn docker_image_labels_choose_nothing() {
        let config = br#"{"Name":"/web","Config":{"Image":"nginx:1.27","Labels":{
            "io.kubernetes.cri.container-name":"payments",
            "io.kubernetes.cri.sandbox-name":"payments-0",
            "io.kubernetes.cri.sandbox-namespace":"bank",
            "io.kubernetes.cri.sandbox-uid":"22222222-2222-4333-8444-555555555555",
            "io.kubernetes.cri.image-name":"bank/payments:9",
            "io.kubernetes.cri-o.ImageName":"bank/payments:9",
            "io.kubernetes.pod.name":"payments-0",
            "io.kubernetes.pod.namespace":"bank",
            "io.kubernetes.pod.uid":"22222222-2222-4333-8444-555555555555",
            "io.kubernetes.container.name":"payments"}}}"#;
        let m = docker_config(config, None).unwrap().believed_in(None);
        assert_eq!(
            m,
            RuntimeMeta {
                name: Some("web".into()),
                image_name: Some("nginx".into()),
                image_tag: Some("1.27".into()),
                ..RuntimeMeta::default()
            }
        );
        let in_other_pod = docker_config(config, None)
            .unwrap()
            .believed_in(Some("33333333-2222-4333-8444-555555555555"));
        assert_eq!(in_other_pod, m);
    }

    #[test]
    fn plain_docker_container() {
        let m = docker_config(
            br#"{"Name":"/quirky_turing","Config":{"Image":"busybox","Labels":{}}}"#,
            Some(br#"{"Privileged":false}"#),
        )
        .unwrap();
        assert_eq!(m.name.as_deref(), Some("quirky_turing"));
        assert_eq!(m.image_name.as_deref(), Some("busybox"));
        assert_eq!(m.image_tag, None);
        assert_eq!(m.pod_name, None);
        assert_eq!(m.privileged, Some(false));
    }

    #[test]
    fn image_references_split() {
        assert_eq!(split_image("nginx"), ("nginx".into(), None));
        assert_eq!(split_image("nginx:1"), ("nginx".into(), Some("1".into())));
        assert_eq!(split_image("reg:5000/a/b"), ("reg:5000/a/b".into(), None));
        assert_eq!(
            split_image("reg:5000/a/b:t@sha256:abc"),
            ("reg:5000/a/b".into(), Some("t".into()))
        );
        assert_eq!(split_image("a@sha256:abc"), ("a".into(), None));
        assert_eq!(split_image("a:"), ("a".into(), None));
    }

    #[test]
    fn malformed_inputs_are_errors() {
        for bad in [
            &b""[..],
            b"{",
            b"null",
            b"[]",
            b"{\"annotations\": 5}",
            b"{\"annotations\": {\"a\": 1}}",
            b"\xff\xfe",
        ] {
            assert!(
                oci_config(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(docker_config(b"{\"Name\": 1}", None).is_err());
        assert!(docker_config(b"{}", Some(b"{\"Privileged\": \"yes\"}")).is_err());
    }

    #[test]
    fn overlong_values_are_refused() {
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        let spec = format!(r#"{{"annotations":{{"{CRI_SANDBOX_NAME}":"{long}"}}}}"#);
        assert!(matches!(
            oci_config(spec.as_bytes()),
            Err(ParseError::TooLong { .. })
        ));
        let cfg = format!(r#"{{"Name":"/{long}"}}"#);
        assert!(matches!(
            docker_config(cfg.as_bytes(), None),
            Err(ParseError::TooLong { .. })
        ));
    }

    #[test]
    fn deep_nesting_neither_crashes_nor_counts() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        // Where a value is expected: serde_json's depth limit refuses it.
        let spec = format!(r#"{{"annotations":{deep}}}"#);
        assert!(oci_config(spec.as_bytes()).is_err());
        // In a field nobody reads: skipped without recursion, nothing taken.
        let spec = format!(r#"{{"annotations":{{}},"x":{deep}}}"#);
        assert_eq!(oci_config(spec.as_bytes()), Ok(RuntimeMeta::default()));
    }

    #[test]
    fn spec_without_process_leaves_privileged_unknown() {
        let m = oci_config(br#"{"annotations":{}}"#).unwrap();
        assert_eq!(m.privileged, None);
    }

    #[test]
    fn sys_admin_alone_is_not_privileged() {
        let spec = br#"{"process":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}},
            "linux":{"maskedPaths":["/proc/kcore"],"readonlyPaths":[]}}"#;
        assert_eq!(oci_config(spec).unwrap().privileged, Some(false));
        let spec = br#"{"process":{"capabilities":{"bounding":["CAP_CHOWN"]}},"linux":{}}"#;
        assert_eq!(oci_config(spec).unwrap().privileged, Some(false));
    }
}
