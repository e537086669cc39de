//! Real container engines end to end: the sensor sees what runs in docker
//! containers as docker containers; and (issue #14) the sensor's own image,
//! run with exactly the DaemonSet's privileges, alerts on a neighbour.
//!
//! Containers come from tests/src/engine.rs (`cargo xtask test` starts the
//! engine). Each test finds its own events by a unique marker and its own
//! container id: other tests may run containers at the same time.

// Helpers outside #[test] fns report broken manifests by panicking, too.
#![allow(clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use tests::engine::{self, CtrContainer, DockerContainer, DockerSpec};
use tests::yaml::yaml_docs;
use tests::{args_of, get, marker, skip_or_fail, start_or_skip, wait_line};

const WAIT: Duration = Duration::from_secs(15);
/// The seed rule, one of the built-in Defend-for-Containers pack the
/// DaemonSet runs (`--rules builtin:d4c`).
const SEED_RULE_ID: &str = "497a7091-0ebd-44d7-88c4-367ab4d4d852";

fn docker_or_skip() -> bool {
    match engine::docker_unavailable() {
        None => true,
        Some(why) => {
            skip_or_fail(&why);
            false
        }
    }
}

#[test]
fn docker_exec_is_seen_with_the_docker_container_id() {
    if !docker_or_skip() {
        return;
    }
    let Some(mut sensor) = start_or_skip(&[]) else {
        return;
    };
    let c = DockerContainer::run(&DockerSpec::new("docker-exec", &["/bin/sleep", "60"]))
        .expect("docker run");
    let m = marker("docker-exec");
    let script = format!("true {m}");
    let out = c.exec(&["/bin/sh", "-c", &script]).expect("docker exec");
    assert!(out.status.success(), "docker exec failed: {out:?}");
    let event = sensor
        .wait_event(WAIT, |e| {
            tests::is_shell(get(e, "process.name")) && args_of(e).iter().any(|a| a.contains(&m))
        })
        .expect("the sensor reports the docker exec");
    assert_eq!(get(&event, "container.id"), c.id.as_str(), "{event}");
    assert_eq!(get(&event, "container.runtime"), "docker", "{event}");
    assert_eq!(
        args_of(&event),
        vec!["/bin/sh".to_owned(), "-c".to_owned(), script]
    );
    sensor.stop().expect("sensor stops cleanly");
}

#[test]
fn ctr_containers_run_in_their_own_cgroup() {
    if let Some(why) = engine::ctr_unavailable() {
        skip_or_fail(&why);
        return;
    }
    let c = CtrContainer::run("ctr-cgroup", &["/bin/sleep", "60"]).expect("ctr run");
    let pid = c.pid().expect("ctr task pid");
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup file");
    let want = format!("/{}/{}", engine::CTR_NAMESPACE, c.id);
    assert!(
        cgroup.lines().any(|l| l.ends_with(&want)),
        "{want} not in {cgroup}"
    );
    let out = c
        .exec(&["/bin/cat", "/proc/self/cgroup"])
        .expect("ctr exec");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&want));
}

// ------------------------------------------------- the image as a DaemonSet

/// The DaemonSet and the ConfigMaps it mounts, parsed from the manifests
/// (PyYAML, as tests/tests/deploy_manifests.rs does): the pod below is
/// derived from them, so an edit to the manifest is what this test runs.
struct Manifest {
    pod: Value,
    container: Value,
    config_maps: Vec<Value>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

impl Manifest {
    fn load() -> Manifest {
        let base = repo_root().join("deploy/kubernetes/base");
        let ds = yaml_docs(&base.join("daemonset.yaml"))
            .into_iter()
            .find(|d| d["kind"] == "DaemonSet")
            .expect("a DaemonSet in daemonset.yaml");
        let pod = ds["spec"]["template"]["spec"].clone();
        let containers = pod["containers"].as_array().cloned().unwrap_or_default();
        assert_eq!(containers.len(), 1, "one container in the DaemonSet");
        let config_maps = yaml_docs(&base.join("configmap.yaml"))
            .into_iter()
            .filter(|d| d["kind"] == "ConfigMap")
            .collect();
        Manifest {
            container: containers[0].clone(),
            pod,
            config_maps,
        }
    }

    fn security_context(&self) -> &Value {
        &self.container["securityContext"]
    }

    /// `capabilities.add`, as `CAP_*` names.
    fn capabilities(&self) -> Vec<String> {
        let sc = self.security_context();
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "the test assumes drop: [ALL]"
        );
        sc["capabilities"]["add"]
            .as_array()
            .expect("capabilities.add")
            .iter()
            .filter_map(Value::as_str)
            .map(|c| format!("CAP_{c}"))
            .collect()
    }
}

/// linux/capability.h numbers of the capabilities a manifest may name.
fn cap_number(name: &str) -> u32 {
    match name {
        "CAP_CHOWN" => 0,
        "CAP_DAC_OVERRIDE" => 1,
        "CAP_DAC_READ_SEARCH" => 2,
        "CAP_SYS_PTRACE" => 19,
        "CAP_SYS_ADMIN" => 21,
        "CAP_SYS_RESOURCE" => 24,
        "CAP_MAC_ADMIN" => 33,
        "CAP_PERFMON" => 38,
        "CAP_BPF" => 39,
        other => panic!("add {other} to cap_number"),
    }
}

fn host_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// The manifest's capabilities this machine can grant, and those it
/// cannot (with why).
fn grantable(manifest: &Manifest) -> (Vec<String>, Vec<String>) {
    let bounding = host_bounding_set();
    let (granted, left_out): (Vec<String>, Vec<String>) = manifest
        .capabilities()
        .into_iter()
        .partition(|c| bounding & (1 << cap_number(c)) != 0);
    for c in &left_out {
        eprintln!(
            "image test: leaving out the manifest's {c}: this machine's own capability \
             bounding set ({bounding:#x}) lacks it, so no container here can be granted it \
             (the sensor needs it only on kernels < 5.11 with a finite RLIMIT_MEMLOCK)"
        );
    }
    (granted, left_out)
}

/// containerd's RuntimeDefault seccomp profile for a container holding
/// exactly `caps` (containerd widens the profile by capability, e.g.
/// bpf() for CAP_BPF): read from a container it creates but never starts.
fn runtime_default_seccomp(caps: &[String]) -> Value {
    let image = format!("docker.io/{}", engine::test_image().expect("test image"));
    let id = marker("seccomp-probe");
    let defaults = Command::new("ctr")
        .args(["oci", "spec"])
        .output()
        .expect("ctr oci spec");
    let defaults: Value = serde_json::from_slice(&defaults.stdout).expect("default spec");
    let mut cmd = Command::new("ctr");
    cmd.args(["-n", engine::CTR_NAMESPACE, "containers", "create"])
        .args(["--seccomp", "--snapshotter", "native"]);
    for c in defaults["process"]["capabilities"]["bounding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        cmd.args(["--cap-drop", c]);
    }
    for c in caps {
        cmd.args(["--cap-add", c]);
    }
    let out = cmd
        .arg(&image)
        .arg(&id)
        .output()
        .expect("ctr containers create");
    assert!(out.status.success(), "ctr create: {out:?}");
    let info = Command::new("ctr")
        .args(["-n", engine::CTR_NAMESPACE, "containers", "info", &id])
        .output()
        .expect("ctr containers info");
    let _ = Command::new("ctr")
        .args(["-n", engine::CTR_NAMESPACE, "containers", "delete", &id])
        .output();
    let info: Value = serde_json::from_slice(&info.stdout).expect("container info");
    let spec = &info["Spec"];
    let mut got: Vec<&str> = spec["process"]["capabilities"]["bounding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    got.sort_unstable();
    let mut want: Vec<&str> = caps.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(got, want, "the probe container's capabilities");
    let profile = spec["linux"]["seccomp"].clone();
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO", "{profile}");
    profile
}

/// `hex` of `n` random bytes.
fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sensor image's root filesystem, exported from docker into a
/// directory (what containerd unpacks for the kubelet).
struct Rootfs {
    dir: tempfile::TempDir,
    entrypoint: Vec<String>,
    env: Vec<String>,
}

impl Rootfs {
    fn export(image: &str) -> Rootfs {
        let dir = tempfile::Builder::new()
            .prefix("sensor-image-")
            .tempdir()
            .expect("tempdir");
        let name = marker("sensor-image-export");
        let docker = engine::docker_cli();
        let out = Command::new(&docker)
            .args(["create", "--name", &name, image])
            .output()
            .expect("docker create");
        assert!(out.status.success(), "docker create {image}: {out:?}");
        let mut export = Command::new(&docker)
            .args(["export", &name])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker export");
        let stdout = export.stdout.take().expect("export stdout");
        let untar = Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(dir.path())
            .stdin(stdout)
            .status()
            .expect("tar");
        let exported = export.wait().expect("docker export");
        let _ = Command::new(&docker).args(["rm", "-f", &name]).output();
        assert!(untar.success() && exported.success(), "exporting {image}");
        let inspect = Command::new(&docker)
            .args(["image", "inspect", "-f", "{{json .Config}}", image])
            .output()
            .expect("docker image inspect");
        let config: Value = serde_json::from_slice(&inspect.stdout).expect("image config");
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        };
        Rootfs {
            entrypoint: strings(&config["Entrypoint"]),
            env: strings(&config["Env"]),
            dir,
        }
    }
}

/// The sensor image run by runc the way the kubelet has containerd run the
/// DaemonSet's pod: an OCI bundle whose config.json is derived from the
/// manifest, field by field.
struct Pod {
    id: String,
    dir: tempfile::TempDir,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Pod {
    fn state_root(dir: &Path) -> PathBuf {
        dir.join("runc-state")
    }

    /// Writes the bundle and starts `runc run` (foreground, our child).
    fn start(manifest: &Manifest, rootfs: &Rootfs, caps: &[String], seccomp: &Value) -> Pod {
        let dir = tempfile::Builder::new()
            .prefix("sensor-pod-")
            .tempdir()
            .expect("tempdir");
        let id = random_hex(32);
        let bundle = dir.path().join("bundle");
        std::fs::create_dir_all(&bundle).expect("bundle dir");
        let out = Command::new("runc")
            .args(["spec", "--bundle"])
            .arg(&bundle)
            .output()
            .expect("runc spec");
        assert!(out.status.success(), "runc spec: {out:?}");
        let config_path = bundle.join("config.json");
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(&config_path).expect("config.json"))
                .expect("runc's spec");
        let c = &manifest.container;
        let sc = manifest.security_context();
        let pod = &manifest.pod;

        // The process: image ENTRYPOINT + the manifest's args (which
        // replace the image's CMD), its env, uid/gid, no privilege gain.
        let mut args = rootfs.entrypoint.clone();
        args.extend(
            c["args"]
                .as_array()
                .expect("args")
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned)),
        );
        let node_name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let mut env = rootfs.env.clone();
        for e in c["env"].as_array().into_iter().flatten() {
            let name = e["name"].as_str().expect("env name");
            let value = match (&e["value"], &e["valueFrom"]["fieldRef"]["fieldPath"]) {
                (Value::String(v), _) => v.clone(),
                (_, Value::String(f)) if f == "spec.nodeName" => node_name.clone(),
                other => panic!("env {name}: unsupported source {other:?}"),
            };
            env.push(format!("{name}={value}"));
        }
        let process = &mut config["process"];
        process["terminal"] = json!(false);
        process["args"] = json!(args);
        process["env"] = json!(env);
        process["cwd"] = json!("/");
        process["user"] = json!({
            "uid": sc["runAsUser"].as_u64().expect("runAsUser"),
            "gid": sc["runAsGroup"].as_u64().expect("runAsGroup"),
        });
        assert_eq!(sc["privileged"], false);
        process["noNewPrivileges"] = json!(sc["allowPrivilegeEscalation"] == false);
        // drop: [ALL] + add: exactly these; nothing inheritable or ambient
        // (as containerd sets it for a uid-0 container).
        process["capabilities"] = json!({
            "bounding": caps, "effective": caps, "permitted": caps,
            "inheritable": [], "ambient": [],
        });
        if let Some(p) = process.as_object_mut() {
            p.remove("rlimits");
        }
        config["root"] = json!({
            "path": rootfs.dir.path(),
            "readonly": sc["readOnlyRootFilesystem"] == true,
        });
        config["hostname"] = json!(format!("sensor-{}", &id[..5]));

        // Volumes: hostPath binds and ConfigMaps as the kubelet lays them
        // out (a directory with one file per key), at their mountPaths.
        let mut mounts: Vec<Value> = config["mounts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            // The hostPath volume replaces the container's own cgroup view.
            .filter(|m| m["destination"] != "/sys/fs/cgroup")
            .collect();
        let volumes = pod["volumes"].as_array().expect("volumes");
        for vm in c["volumeMounts"].as_array().expect("volumeMounts") {
            let volume = volumes
                .iter()
                .find(|v| v["name"] == vm["name"])
                .unwrap_or_else(|| panic!("no volume {}", vm["name"]));
            let source = if let Some(path) = volume["hostPath"]["path"].as_str() {
                // As the kubelet does for this type: an empty directory
                // where the node has none.
                if volume["hostPath"]["type"] == "DirectoryOrCreate" {
                    std::fs::create_dir_all(path).expect("hostPath DirectoryOrCreate");
                }
                PathBuf::from(path)
            } else if let Some(name) = volume["configMap"]["name"].as_str() {
                let cm = manifest
                    .config_maps
                    .iter()
                    .find(|m| m["metadata"]["name"] == name)
                    .unwrap_or_else(|| panic!("no ConfigMap {name}"));
                let out = dir.path().join("configmaps").join(name);
                std::fs::create_dir_all(&out).expect("configmap dir");
                for (key, value) in cm["data"].as_object().expect("ConfigMap data") {
                    std::fs::write(out.join(key), value.as_str().expect("string data"))
                        .expect("configmap file");
                }
                out
            } else {
                panic!("unsupported volume {volume}");
            };
            let ro = if vm["readOnly"] == true { "ro" } else { "rw" };
            mounts.push(json!({
                "destination": vm["mountPath"], "type": "bind", "source": source,
                "options": ["rbind", "rprivate", ro],
            }));
        }
        config["mounts"] = Value::Array(mounts);

        // hostPID: the host's pid namespace; hostNetwork: false keeps the
        // pod's own (loopback-only here) network namespace.
        let linux = &mut config["linux"];
        let host_pid = pod["hostPID"] == true;
        let host_net = pod["hostNetwork"] == true;
        let namespaces: Vec<Value> = linux["namespaces"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|n| !(host_pid && n["type"] == "pid"))
            .filter(|n| !(host_net && n["type"] == "network"))
            .collect();
        linux["namespaces"] = Value::Array(namespaces);
        linux["seccomp"] = seccomp.clone();
        linux["cgroupsPath"] = json!(format!("/kubepods/burstable/pod{}/{id}", random_hex(16)));
        linux["resources"]["memory"] = json!({
            "limit": parse_quantity(&c["resources"]["limits"]["memory"]),
        });
        std::fs::write(
            &config_path,
            serde_json::to_vec_pretty(&config).expect("json"),
        )
        .expect("writing config.json");

        let stdout = dir.path().join("stdout");
        let stderr = dir.path().join("stderr");
        let child = Command::new("runc")
            .arg("--root")
            .arg(Self::state_root(dir.path()))
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("runc run");
        Pod {
            id,
            dir,
            child,
            stdout,
            stderr,
        }
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits for `sensor: ready`, failing with the sensor's stderr if it
    /// exits or takes more than 60 s.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = self.stderr_text();
            if text.lines().any(|l| l == "sensor: ready") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the sensor pod exited with {status} before ready:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "the sensor pod was not ready within 60 s:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the pod to exit (at most 30 s): its status and stderr.
    fn wait_exit(&mut self) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (status, self.stderr_text());
            }
            assert!(
                Instant::now() < deadline,
                "the sensor pod still runs after 30 s:\n{}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pod's pid 1 as the host sees it.
    fn host_pid(&self) -> u32 {
        let out = Command::new("runc")
            .arg("--root")
            .arg(Self::state_root(self.dir.path()))
            .args(["state", &self.id])
            .output()
            .expect("runc state");
        let state: Value = serde_json::from_slice(&out.stdout).expect("runc state json");
        state["pid"].as_u64().expect("pid") as u32
    }

    /// `GET path` on the pod's loopback, from inside its network namespace
    /// (the pod has no host network): (status code, body).
    fn http_get(&self, port: u64, path: &str) -> (String, String) {
        let out = Command::new("nsenter")
            .args(["-t", &self.host_pid().to_string(), "-n", "--"])
            .args(["curl", "-s", "-m", "5", "-w", "\n%{http_code}"])
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .output()
            .expect("nsenter curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.to_owned(), body.to_owned())
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let root = Self::state_root(self.dir.path());
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["kill", &self.id, "KILL"])
            .output();
        let _ = self.child.wait();
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["delete", "--force", &self.id])
            .output();
    }
}

/// `256Mi` → bytes (the suffixes the manifest uses).
fn parse_quantity(q: &Value) -> u64 {
    let s = q.as_str().expect("a quantity string");
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().expect("quantity digits");
    n * match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        other => panic!("unit {other}"),
    }
}

/// The image to run: `$SENSOR_IMAGE` (set by `cargo xtask test`), else
/// `sensor:dev` as `cargo xtask image` tags it.
fn sensor_image() -> Option<String> {
    if let Some(why) = engine::docker_unavailable() {
        skip_or_fail(&why);
        return None;
    }
    let image = std::env::var("SENSOR_IMAGE").unwrap_or_else(|_| "sensor:dev".to_owned());
    let present = Command::new(engine::docker_cli())
        .args(["image", "inspect", &image])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        skip_or_fail(&format!("no image {image}: run `cargo xtask image`"));
        return None;
    }
    Some(image)
}

/// A web shell in its own docker container: `python3 server.py PORT` on
/// the host's loopback, running each request's `X-Cmd` with `sh -c`.
const WEB_SHELL: &str = r#"import http.server, subprocess, sys
class Shell(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        cmd = self.headers.get("X-Cmd", "true")
        out = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True).stdout
        self.send_response(200)
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Shell).serve_forever()
"#;

fn free_loopback_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// GET / with an `X-Cmd` header on 127.0.0.1:port; retries while the
/// server starts (at most 20 s).
fn attack(port: u16, cmd: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let req = format!(
                "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Cmd: {cmd}\r\nConnection: close\r\n\r\n"
            );
            s.write_all(req.as_bytes()).expect("send request");
            let mut resp = String::new();
            let _ = s.read_to_string(&mut resp);
            return resp;
        }
        assert!(
            Instant::now() < deadline,
            "web shell on {port} never listened"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn image_runs_with_the_daemonset_privileges_and_alerts_on_a_neighbour() {
    let Some(image) = sensor_image() else {
        return;
    };
    let manifest = Manifest::load();
    let (caps, _left_out) = grantable(&manifest);
    let rootfs = Rootfs::export(&image);
    let seccomp = runtime_default_seccomp(&caps);
    let mut pod = Pod::start(&manifest, &rootfs, &caps, &seccomp);
    pod.wait_ready();
    let stderr = pod.stderr_text();
    eprintln!("image test: the sensor pod's start-up:\n{stderr}");
    assert!(
        stderr.lines().any(|l| l.contains(": attached ")),
        "the programs attach:\n{stderr}"
    );
    // /readyz on the metrics port the manifest's probes use.
    let port = manifest.container["ports"][0]["containerPort"]
        .as_u64()
        .expect("containerPort");
    let (code, body) = pod.http_get(port, "/readyz");
    assert_eq!((code.as_str(), body.trim()), ("200", "ready"), "{stderr}");

    // The neighbour: a web shell in a docker container.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("server.py"), WEB_SHELL).expect("server.py");
    let web_port = free_loopback_port();
    let mut spec = DockerSpec::new(
        "web-shell",
        &[
            "/usr/bin/python3",
            "/srv/app/server.py",
            &web_port.to_string(),
        ],
    );
    spec.network = "host".to_owned();
    spec.volumes
        .push(format!("{}:/srv/app:ro", dir.path().display()));
    let web = DockerContainer::run(&spec).expect("web shell container");
    let m = marker("image-attack");
    let cmd = format!("cat /etc/passwd # {m}");
    let resp = attack(web_port, &cmd);
    assert!(resp.contains("root:x:0:0"), "{resp}\n{}", web.logs());

    // Other D4C rules may alert on the same shell too: wait for the seed's.
    let alert = wait_line(&pod.stdout, WAIT, |a| {
        args_of(a).iter().any(|x| x.contains(&m))
            && get(a, "kibana.alert.rule.rule_id") == SEED_RULE_ID
    })
    .unwrap_or_else(|e| {
        panic!(
            "no alert from the sensor pod: {e}\n--- stderr ---\n{}",
            pod.stderr_text()
        )
    });
    assert_eq!(get(&alert, "container.id"), web.id.as_str(), "{alert}");
    assert_eq!(get(&alert, "container.runtime"), "docker", "{alert}");
    // Metadata from docker's own files, read through the node's root
    // (SENSOR_RUNTIME_ROOT=/proc/1/root in the manifest): docker names its
    // containers with a leading `/`, which the sensor strips.
    assert_eq!(get(&alert, "container.name"), web.name.as_str(), "{alert}");
    assert_eq!(
        get(&alert, "kibana.alert.rule.rule_id"),
        SEED_RULE_ID,
        "{alert}"
    );
    // Named after the file `python3` leads to (`python3.11`).
    let parent = get(&alert, "process.parent.name")
        .as_str()
        .unwrap_or_default();
    assert!(parent.starts_with("python3"), "{alert}");
    assert!(
        get(&alert, "process.parent.executable")
            .as_str()
            .is_some_and(|e| e.ends_with(&format!("/{parent}"))),
        "{alert}"
    );
    // The node's identity, not the pod's: NODE_NAME from the downward API
    // and the host's machine-id through its hostPath mount.
    let node_name = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    assert_eq!(get(&alert, "host.name"), node_name.trim(), "{alert}");
    if let Ok(id) = std::fs::read_to_string("/etc/machine-id") {
        assert_eq!(get(&alert, "host.id"), id.trim(), "{alert}");
    }
    assert_eq!(
        args_of(&alert),
        vec!["/bin/sh".to_owned(), "-c".to_owned(), cmd]
    );
}

#[test]
fn each_missing_daemonset_capability_is_named_at_start() {
    let Some(image) = sensor_image() else {
        return;
    };
    let manifest = Manifest::load();
    let (caps, _left_out) = grantable(&manifest);
    let bpf_lsm = std::fs::read_to_string("/sys/kernel/security/lsm")
        .is_ok_and(|l| l.trim().split(',').any(|x| x == "bpf"));
    let rootfs = Rootfs::export(&image);
    for dropped in &caps {
        if dropped == "CAP_MAC_ADMIN" && !bpf_lsm {
            eprintln!(
                "image test: {dropped} is needed only where `bpf` is an active LSM: not here"
            );
            continue;
        }
        let fewer: Vec<String> = caps.iter().filter(|c| *c != dropped).cloned().collect();
        let seccomp = runtime_default_seccomp(&fewer);
        let mut pod = Pod::start(&manifest, &rootfs, &fewer, &seccomp);
        let (status, stderr) = pod.wait_exit();
        assert!(!status.success(), "runs without {dropped}:\n{stderr}");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "one error line without {dropped}:\n{stderr}"
        );
        assert!(
            errors[0].contains(&format!("missing {dropped} (")),
            "the error names {dropped}:\n{stderr}"
        );
        eprintln!("image test: without {dropped}: {}", errors[0]);
    }
}
