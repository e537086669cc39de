//! The deployment files (Dockerfile, deploy/kubernetes, deploy/systemd),
//! checked with real validators where they can run here and by structure
//! everywhere:
//! - the Kubernetes manifests against the API's JSON schemas
//!   (`kubernetes-validate --strict`, bundled schemas, offline);
//! - the Dockerfile with hadolint, and against the xtask's build recipe;
//! - the systemd unit with `systemd-analyze verify` and `security`;
//! - cross-file facts: the ConfigMap's rule is the repository's rule byte
//!   for byte, the DaemonSet and the unit grant the same capabilities.
//!
//! The tools are installed by `cargo xtask test` (xtask/src/deploy_check.rs)
//! into target/tools/deploy-check. With CI=true a missing tool fails the
//! test; elsewhere that part is skipped with a message.

// Helpers outside #[test] fns report broken files by panicking, too.
#![allow(clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tests::yaml::yaml_docs;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A missing tool: fatal in CI, a skip elsewhere.
fn skip_or_fail(why: &str) {
    assert!(!in_ci(), "CI=true: {why}");
    eprintln!("skipping: {why}");
}

/// What the sensor needs and nothing else (sensor/src/service/privileges.rs).
const CAPABILITIES: [&str; 6] = [
    "BPF",
    "PERFMON",
    "SYS_RESOURCE",
    "DAC_READ_SEARCH",
    "SYS_PTRACE",
    "MAC_ADMIN",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn base() -> PathBuf {
    root().join("deploy/kubernetes/base")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A tool from the validators' venv, else from PATH; `None` (after failing
/// in CI) when neither runs.
fn tool(name: &str) -> Option<PathBuf> {
    let venv = root().join("target/tools/deploy-check/bin").join(name);
    for candidate in [venv, PathBuf::from(name)] {
        let runs = Command::new(&candidate)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if runs {
            return Some(candidate);
        }
    }
    skip_or_fail(&format!(
        "{name} is not installed (`cargo xtask test` installs it); skipping this check"
    ));
    None
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The base's resources, as its kustomization lists them.
fn manifest_files() -> Vec<PathBuf> {
    let k = yaml_docs(&base().join("kustomization.yaml"));
    let resources = k[0]["resources"].as_array().cloned().unwrap_or_default();
    assert!(
        !resources.is_empty(),
        "base kustomization lists no resources"
    );
    resources
        .iter()
        .map(|r| base().join(r.as_str().unwrap_or_else(|| panic!("resource {r}"))))
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn all_docs() -> Vec<Value> {
    manifest_files().iter().flat_map(|f| yaml_docs(f)).collect()
}

/// Runs kubernetes-validate --strict and requires a pass for every document:
/// it exits 0 on a kind it has no schema for (a WARN), so passes are counted.
fn validate(kv: &Path, files: &[PathBuf], k8s_version: Option<&str>) {
    let expected: usize = files.iter().map(|f| yaml_docs(f).len()).sum();
    let mut cmd = Command::new(kv);
    cmd.arg("--strict");
    if let Some(v) = k8s_version {
        cmd.args(["--kubernetes-version", v]);
    }
    let out = cmd
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", kv.display()));
    let text = output_text(&out);
    let passed = text
        .lines()
        .filter(|l| l.contains(" passed for resource "))
        .count();
    assert!(
        out.status.success() && passed == expected && !text.contains("WARN"),
        "kubernetes-validate (version {}) on {files:?}: {passed} of {expected} documents passed:\n{text}",
        k8s_version.unwrap_or("default")
    );
}

#[test]
fn kubernetes_manifests_match_the_api_schemas() {
    let Some(kv) = tool("kubernetes-validate") else {
        return;
    };
    let files = manifest_files();
    // The newest API the validator knows, and the oldest it bundles: the
    // manifests use nothing newer than Kubernetes 1.25.
    validate(&kv, &files, None);
    validate(&kv, &files, Some("1.25.0"));

    // The validator is not a no-op: a misspelt field is rejected.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let daemonset = read(&base().join("daemonset.yaml")).replace("hostPID:", "hostPid:");
    std::fs::write(&bad, daemonset).unwrap();
    let out = Command::new(&kv)
        .arg("--strict")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a misspelt field passed:\n{}",
        output_text(&out)
    );

    // Both kustomizations, rendered, where a kubectl with kustomize is at
    // hand (not installable from this project's registries: optional).
    let kubectl_ok = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !kubectl_ok {
        eprintln!("kubectl not found: the kustomizations were not rendered");
        return;
    }
    for overlay in ["deploy/kubernetes", "deploy/kubernetes/privileged"] {
        let out = Command::new("kubectl")
            .args(["kustomize"])
            .arg(root().join(overlay))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl kustomize {overlay}:\n{}",
            output_text(&out)
        );
        let rendered = dir.path().join("rendered.yaml");
        std::fs::write(&rendered, &out.stdout).unwrap();
        validate(&kv, &[rendered], None);
    }
}

#[test]
fn kustomization_lists_every_manifest() {
    let listed: BTreeSet<PathBuf> = manifest_files().into_iter().collect();
    let present: BTreeSet<PathBuf> = std::fs::read_dir(base())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    assert_eq!(
        listed, present,
        "base/kustomization.yaml resources vs base/*.yaml"
    );
}

#[test]
fn rules_configmap_holds_only_site_rules_beside_the_builtin_pack() {
    let docs = yaml_docs(&base().join("configmap.yaml"));
    let rules = find(&docs, "ConfigMap", "sensor-rules")["data"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    // The Defend-for-Containers rules come from the binary (`builtin:d4c`):
    // a copy here would be refused as a duplicate rule_id.
    assert!(rules.is_empty(), "sensor-rules holds {:?}", rules.keys());
    // The config file is valid TOML and points at the rules' mount.
    let config = find(&docs, "ConfigMap", "sensor-config")["data"]["sensor.toml"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, tomllib; print(json.dumps(tomllib.loads(sys.stdin.read())))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(config.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "sensor.toml is not TOML:\n{}",
        output_text(&out)
    );
    let config: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        config["rules"],
        serde_json::json!(["builtin:d4c", "/etc/sensor/rules"])
    );
    assert_eq!(config["alerts"], "-");
}

#[test]
fn daemonset_has_least_privilege_and_what_the_sensor_needs() {
    let docs = all_docs();
    let ds = find(&docs, "DaemonSet", "sensor");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true);
    assert_ne!(pod["hostNetwork"], true);
    assert_eq!(pod["priorityClassName"], "system-node-critical");
    assert_eq!(pod["terminationGracePeriodSeconds"], 10);
    assert_eq!(
        pod["tolerations"],
        serde_json::json!([{"operator": "Exists"}])
    );
    assert_eq!(ds["spec"]["updateStrategy"]["type"], "RollingUpdate");
    let annotations = &ds["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "9100");

    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let added: BTreeSet<&str> = sc["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(added, CAPABILITIES.into_iter().collect());

    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args.first(), Some(&"run"));
    assert!(
        args.windows(2)
            .any(|w| w == ["--metrics-addr", "0.0.0.0:9100"]),
        "{args:?}"
    );
    let rules: Vec<&str> = args
        .windows(2)
        .filter(|w| w[0] == "--rules")
        .map(|w| w[1])
        .collect();
    assert_eq!(rules, ["builtin:d4c", "/etc/sensor/rules"], "{args:?}");
    let node_name = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "NODE_NAME")
        .expect("NODE_NAME env");
    assert_eq!(
        node_name["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );
    assert_eq!(c["ports"][0]["containerPort"], 9100);
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(c[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(c[probe]["httpGet"]["port"], "metrics", "{probe}");
    }
    for (kind, want) in [("requests", ("50m", "64Mi")), ("limits", ("500m", "256Mi"))] {
        assert_eq!(c["resources"][kind]["cpu"], want.0);
        assert_eq!(c["resources"][kind]["memory"], want.1);
    }

    // Every host path is mounted read-only: the kernel's and the node's
    // identity at the same path in the container (the sensor's paths are
    // the host's), the runtimes' per-container files under the runtime
    // root the sensor is pointed at (SENSOR_RUNTIME_ROOT).
    let volumes = pod["volumes"].as_array().unwrap();
    let mounts = c["volumeMounts"].as_array().unwrap();
    let runtime_root = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "SENSOR_RUNTIME_ROOT")
        .and_then(|e| e["value"].as_str())
        .expect("SENSOR_RUNTIME_ROOT in the sensor's env");
    assert_eq!(runtime_root, "/host");
    let mut host_paths = BTreeSet::new();
    let mut runtime_paths = BTreeSet::new();
    for v in volumes.iter().filter(|v| v.get("hostPath").is_some()) {
        let mount = mounts
            .iter()
            .find(|m| m["name"] == v["name"])
            .unwrap_or_else(|| panic!("volume {} is not mounted", v["name"]));
        assert_eq!(mount["readOnly"], true, "{mount}");
        let host = v["hostPath"]["path"].as_str().unwrap().to_owned();
        if v["hostPath"]["type"] == "DirectoryOrCreate" {
            assert_eq!(
                mount["mountPath"],
                format!("{runtime_root}{host}"),
                "{mount}"
            );
            runtime_paths.insert(host);
        } else {
            assert_eq!(mount["mountPath"], host.as_str(), "{mount}");
            host_paths.insert(host);
        }
    }
    let set =
        |paths: &[&str]| -> BTreeSet<String> { paths.iter().map(|p| p.to_string()).collect() };
    assert_eq!(
        host_paths,
        set(&[
            "/sys/kernel/tracing",
            "/sys/kernel/btf",
            "/sys/fs/cgroup",
            "/sys/kernel/security",
            "/etc/machine-id",
        ])
    );
    // The directories `context::runtime_meta` reads, and nothing wider
    // (no socket, no node root).
    assert_eq!(
        runtime_paths,
        set(&[
            "/run/containerd/io.containerd.runtime.v2.task",
            "/run/containers/storage/overlay-containers",
            "/var/lib/docker/containers",
        ])
    );
    for (volume, path) in [
        ("sensor-rules", "/etc/sensor/rules"),
        ("sensor-config", "/etc/sensor/config"),
    ] {
        let v = volumes
            .iter()
            .find(|v| v["configMap"]["name"] == volume)
            .unwrap_or_else(|| panic!("no volume for ConfigMap {volume}"));
        assert!(mounts
            .iter()
            .any(|m| m["name"] == v["name"] && m["mountPath"] == path));
    }
    // The privileged fallback must stay valid for the API (privileged with
    // allowPrivilegeEscalation: false is rejected).
    let patch = read(&root().join("deploy/kubernetes/privileged/privileged-patch.yaml"));
    assert!(patch.contains("privileged: true") && patch.contains("allowPrivilegeEscalation: true"));
}

#[test]
fn systemd_unit_verifies_and_matches_the_daemonset() {
    let unit_path = root().join("deploy/systemd/sensor.service");
    let unit = read(&unit_path);
    let value = |key: &str| -> String {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in the unit"))
            .to_owned()
    };
    let want: BTreeSet<String> = CAPABILITIES.iter().map(|c| format!("CAP_{c}")).collect();
    for key in ["CapabilityBoundingSet", "AmbientCapabilities"] {
        let got: BTreeSet<String> = value(key).split_whitespace().map(str::to_owned).collect();
        assert_eq!(got, want, "{key}");
    }
    assert_eq!(
        value("ExecStart"),
        "/usr/local/bin/sensor run --rules builtin:d4c --rules /etc/sensor/rules \
         --alerts /var/log/sensor/alerts.jsonl \
         --metrics-addr 127.0.0.1:9100"
    );
    assert_eq!(value("LimitMEMLOCK"), "infinity");
    assert_eq!(value("Restart"), "on-failure");
    assert_eq!(value("ProtectSystem"), "strict");
    assert_eq!(value("LogsDirectory"), "sensor");
    // These would hide other processes, /proc/sys or the capabilities'
    // effect from the sensor.
    for forbidden in ["ProtectProc=", "ProcSubset=", "PrivateUsers="] {
        assert!(
            !unit.lines().any(|l| l.starts_with(forbidden)),
            "{forbidden} must not be set"
        );
    }

    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    // A root with the unit, a stand-in executable and systemd's own units
    // (verify resolves the default dependencies, e.g. sysinit.target).
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::create_dir_all(r.join("usr/local/bin")).unwrap();
    std::fs::create_dir_all(r.join("etc/systemd/system")).unwrap();
    std::fs::create_dir_all(r.join("usr/lib/systemd/system")).unwrap();
    std::fs::copy("/bin/true", r.join("usr/local/bin/sensor")).unwrap();
    std::fs::write(r.join("etc/systemd/system/sensor.service"), &unit).unwrap();
    for dir in ["/lib/systemd/system", "/usr/lib/systemd/system"] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let dest = r.join("usr/lib/systemd/system").join(e.file_name());
            if e.path().is_file() && !dest.exists() {
                std::fs::copy(e.path(), dest).unwrap();
            }
        }
    }
    let root_arg = format!("--root={}", r.display());
    let out = Command::new(&analyze)
        .args(["verify", &root_arg, "sensor.service"])
        .output()
        .unwrap();
    let text = output_text(&out);
    // verify exits 0 on unknown keys and bad values: it only warns.
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("sensor.service"))
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify:\n{text}"
    );
    // A guard against hardening lost in an edit: 2.6 ("OK") when written.
    let out = Command::new(&analyze)
        .args([
            "security",
            "--offline=yes",
            &root_arg,
            "--threshold=30",
            "sensor.service",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemd-analyze security: exposure above 3.0:\n{}",
        output_text(&out)
    );
}

#[test]
fn dockerfile_builds_with_the_xtask_recipe() {
    let dockerfile = read(&root().join("Dockerfile"));
    let setup = read(&root().join("xtask/src/setup.rs"));
    let froms: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    // The two ways to the binary, the one selected, and the runtime.
    assert_eq!(
        froms,
        [
            "FROM ${BUILDER_BASE} AS sensor-source",
            "FROM scratch AS sensor-prebuilt",
            "FROM sensor-${SENSOR_FROM} AS sensor",
            "FROM ${RUNTIME_BASE} AS runtime",
        ]
    );
    // The real bases stay the defaults; `cargo xtask image` overrides them
    // with local stand-ins only where no registry can be reached.
    assert!(dockerfile.contains("\nARG BUILDER_BASE=debian:bookworm\n"));
    assert!(dockerfile.contains("\nARG RUNTIME_BASE=gcr.io/distroless/cc-debian12:latest\n"));
    assert!(dockerfile.contains("\nARG SENSOR_FROM=source\n"));
    assert!(dockerfile.contains("COPY target/release/sensor /out/sensor"));
    // A `# syntax=` line makes BuildKit pull a frontend image.
    assert!(!dockerfile.lines().any(|l| l.starts_with("# syntax=")));
    // The toolchain packages the xtask installs, installed the same way.
    for pkg in ["rustc-web", "libstd-rust-web-dev-bpf"] {
        assert!(
            setup.contains(&format!("\"{pkg}\"")),
            "xtask no longer installs {pkg}"
        );
        assert!(
            dockerfile.contains(&format!("      {pkg} \\")),
            "Dockerfile does not install {pkg}"
        );
    }
    assert!(
        setup.contains("\"llvm-{llvm}-dev\""),
        "xtask's llvm-NN-dev install changed"
    );
    assert!(dockerfile.contains("\"llvm-${LLVM_MAJOR}-dev\""));
    assert!(
        dockerfile.contains("cargo-web"),
        "the builder needs Debian's cargo"
    );
    // Same bpf-linker as the xtask.
    let linker = setup
        .lines()
        .find_map(|l| l.strip_prefix("const BPF_LINKER_VERSION: &str = \""))
        .and_then(|v| v.strip_suffix("\";"))
        .expect("BPF_LINKER_VERSION in setup.rs");
    assert!(
        dockerfile.contains(&format!("ARG BPF_LINKER_VERSION={linker}")),
        "Dockerfile's BPF_LINKER_VERSION is not {linker}"
    );
    // The LLVM major matches Debian's rustc where it is installed (the
    // image gets the same package from bookworm-security).
    if let Ok(out) = Command::new("/usr/bin/rustc").arg("-vV").output() {
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(major) = text
            .lines()
            .find_map(|l| l.strip_prefix("LLVM version: "))
            .and_then(|v| v.split('.').next())
        {
            assert!(
                dockerfile.contains(&format!("ARG LLVM_MAJOR={major}")),
                "Debian's rustc uses LLVM {major}: update ARG LLVM_MAJOR"
            );
        }
    }
    assert!(dockerfile.contains("cargo fetch --locked"));
    assert!(dockerfile.contains("cargo xtask build"));
    assert!(dockerfile.contains("COPY --from=sensor /out/sensor /usr/local/bin/sensor"));
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/sensor\"]"));
    assert!(dockerfile.contains("CMD [\"run\", \"--rules\", \"builtin:d4c\"]"));

    // The build context keeps what the build reads.
    let ignore = read(&root().join(".dockerignore"));
    let ignored: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in [
        "rules/",
        ".cargo/",
        "Cargo.lock",
        "Cargo.toml",
        "sensor/",
        "sensor-ebpf/",
        "xtask/",
        "tests/",
    ] {
        assert!(
            !ignored
                .iter()
                .any(|p| needed.starts_with(p.trim_end_matches('/'))),
            ".dockerignore drops {needed}"
        );
    }
    assert!(ignored.contains(&"target/"));
    // ... but for the binary the `prebuilt` stage copies.
    assert!(ignored.contains(&"!target/release/sensor"));

    let Some(hadolint) = tool("hadolint") else {
        return;
    };
    let out = Command::new(&hadolint)
        .arg(root().join("Dockerfile"))
        .output()
        .unwrap();
    assert!(out.status.success(), "hadolint:\n{}", output_text(&out));
}
