//! Real docker and containerd (`ctr`) containers for the end-to-end tests.
//!
//! `cargo xtask test` starts containerd and dockerd (xtask/src/engine.rs)
//! and passes the test image in `SENSOR_TEST_IMAGE`: a root-filesystem
//! skeleton without binaries, over which every container here bind-mounts
//! the host's `/usr` read-only, so any server installed on the host runs
//! inside. Run outside the xtask, the newest `sensor-test/base` image in
//! docker is used (`cargo xtask engine` makes one).
//!
//! Each container gets a unique name (from [`crate::marker`]) and the label
//! `sensor-test=<test name>`, so concurrent test runs never touch each
//! other's containers; Drop removes it (`docker rm -f`, or `ctr task kill`
//! + `ctr task delete` + `ctr container delete`).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Debian's docker client, else whatever `docker` is on PATH.
pub fn docker_cli() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/docker");
    if debian.is_file() {
        debian
    } else {
        PathBuf::from("docker")
    }
}

/// containerd namespace of the tests' `ctr` containers (and of the image).
pub const CTR_NAMESPACE: &str = "sensor-test";
const TEST_IMAGE_REPO: &str = "sensor-test/base";

fn docker() -> Command {
    Command::new(docker_cli())
}

fn ctr() -> Command {
    let mut c = Command::new("ctr");
    c.args(["-n", CTR_NAMESPACE]);
    c
}

/// Runs a command, failing with its command line and stderr.
fn checked(cmd: &mut Command) -> Result<Output> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed with {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

fn stdout_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Why docker cannot be used here, if it cannot.
pub fn docker_unavailable() -> Option<String> {
    match docker().arg("info").stdin(Stdio::null()).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`docker info` failed (run `cargo xtask engine`): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!(
            "no docker client ({e}); install docker.io and run `cargo xtask engine`"
        )),
    }
}

/// Why `ctr` cannot be used here, if it cannot.
pub fn ctr_unavailable() -> Option<String> {
    match Command::new("ctr")
        .arg("version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`ctr version` failed (run `cargo xtask engine`): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("no ctr ({e}); install containerd")),
    }
}

/// The test image's docker reference (`sensor-test/base:<hash>`).
pub fn test_image() -> Result<String> {
    if let Ok(image) = std::env::var("SENSOR_TEST_IMAGE") {
        if !image.is_empty() {
            return Ok(image);
        }
    }
    // Newest first.
    let out = checked(docker().args([
        "images",
        TEST_IMAGE_REPO,
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]))?;
    stdout_line(&out)
        .lines()
        .next()
        .map(str::to_owned)
        .context("no sensor-test/base image in docker: run `cargo xtask engine`")
}

/// What a docker container runs and how.
#[derive(Debug, Clone)]
pub struct DockerSpec {
    /// Names the test in the container's label and name.
    pub test: String,
    /// The container's command (the image has no entrypoint).
    pub args: Vec<String>,
    /// `none` (default: loopback only) or `host` (the host's loopback).
    pub network: String,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    /// Extra `-v` values (`/host:/ctr[:ro]`); the host's `/usr` is always
    /// mounted read-only.
    pub volumes: Vec<String>,
    /// Working directory inside.
    pub workdir: Option<String>,
    /// Image; default [`test_image`].
    pub image: Option<String>,
    /// Extra `--label` values (`key=value`), e.g. the `io.kubernetes.*`
    /// labels a kubelet sets through cri-dockerd.
    pub labels: Vec<String>,
    /// `--cgroup-parent`, e.g. `/kubepods/besteffort/pod<uid>` for a
    /// container as cri-dockerd places a pod's (cgroupfs driver); the
    /// parent's directories are removed with the container.
    pub cgroup_parent: Option<String>,
}

impl DockerSpec {
    pub fn new(test: &str, args: &[&str]) -> DockerSpec {
        DockerSpec {
            test: test.to_owned(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            network: "none".to_owned(),
            env: Vec::new(),
            volumes: Vec::new(),
            workdir: None,
            image: None,
            labels: Vec::new(),
            cgroup_parent: None,
        }
    }
}

/// A running docker container, removed on drop.
pub struct DockerContainer {
    /// The full 64-hex id.
    pub id: String,
    pub name: String,
    cgroup_parent: Option<String>,
}

impl DockerContainer {
    /// `docker run -d` and wait until it runs (at most 20 s).
    pub fn run(spec: &DockerSpec) -> Result<DockerContainer> {
        if spec.args.is_empty() {
            bail!("docker container spec without a command");
        }
        let image = match &spec.image {
            Some(i) => i.clone(),
            None => test_image()?,
        };
        let name = crate::marker(&format!("sensor-test-{}", spec.test)).replace('_', "-");
        let mut cmd = docker();
        cmd.args(["run", "-d", "--name", &name])
            .arg("--label")
            .arg(format!("sensor-test={}", spec.test))
            .arg("--network")
            .arg(&spec.network)
            .args(["-v", "/usr:/usr:ro"]);
        for v in &spec.volumes {
            cmd.arg("-v").arg(v);
        }
        for e in &spec.env {
            cmd.arg("-e").arg(e);
        }
        for l in &spec.labels {
            cmd.arg("--label").arg(l);
        }
        if let Some(w) = &spec.workdir {
            cmd.arg("-w").arg(w);
        }
        if let Some(p) = &spec.cgroup_parent {
            cmd.arg("--cgroup-parent").arg(p);
        }
        cmd.arg(&image).args(&spec.args);
        let id = stdout_line(&checked(&mut cmd)?);
        let c = DockerContainer {
            id,
            name,
            cgroup_parent: spec.cgroup_parent.clone(),
        };
        if c.id.len() != 64 || !c.id.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("docker run printed {:?}, not a container id", c.id);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if c.pid()? > 0 {
                return Ok(c);
            }
            if Instant::now() > deadline {
                bail!("docker container {} did not start:\n{}", c.name, c.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The container's main process, as the host sees it (0 when stopped).
    pub fn pid(&self) -> Result<u32> {
        let out = checked(docker().args(["inspect", "-f", "{{.State.Pid}}", &self.id]))?;
        stdout_line(&out)
            .parse()
            .context("docker inspect printed no pid")
    }

    /// `docker exec` a command and wait for it.
    pub fn exec(&self, args: &[&str]) -> Result<Output> {
        docker()
            .arg("exec")
            .arg(&self.id)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("docker exec")
    }

    /// stdout and stderr so far.
    pub fn logs(&self) -> String {
        docker()
            .args(["logs", &self.id])
            .output()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_default()
    }
}

impl Drop for DockerContainer {
    fn drop(&mut self) {
        let _ = docker()
            .args(["rm", "-f", "-v", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // The cgroup parent's directories, innermost first, in every
        // hierarchy (cgroup v2 alone, or hybrid v1 + unified); a directory
        // still in use stays (rmdir refuses it).
        if let Some(parent) = &self.cgroup_parent {
            let mut hierarchies = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
            if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
                hierarchies.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
            }
            let mut rel = std::path::PathBuf::from(parent.trim_start_matches('/'));
            loop {
                for h in &hierarchies {
                    let _ = std::fs::remove_dir(h.join(&rel));
                }
                if !rel.pop() || rel.as_os_str().is_empty() {
                    break;
                }
            }
        }
    }
}

/// A running containerd container (`ctr run -d`), removed on drop. Its
/// cgroup is `/<namespace>/<id>`, as `ctr` makes it.
pub struct CtrContainer {
    pub id: String,
}

/// A `ctr run` beyond [`CtrContainer::run`]'s defaults.
#[derive(Debug, Clone, Default)]
pub struct CtrSpec {
    pub test: String,
    pub args: Vec<String>,
    /// OCI annotations (`key=value`), written to the bundle's
    /// `config.json` as the CRI plugin writes its `io.kubernetes.cri.*`.
    pub annotations: Vec<String>,
    /// `ctr run --privileged`.
    pub privileged: bool,
}

/// A 64-hex container id unique to this run (runtimes' own id shape, which
/// the sensor's cgroup parser requires), from a marker.
fn hex_id(test: &str) -> String {
    use std::hash::{Hash, Hasher};
    let m = crate::marker(test);
    let mut halves = [0u64; 4];
    for (salt, h) in halves.iter_mut().enumerate() {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (salt, &m).hash(&mut hasher);
        *h = hasher.finish();
    }
    halves.iter().map(|h| format!("{h:016x}")).collect()
}

impl CtrContainer {
    /// `ctr run -d` of the test image with the host's `/usr` read-only and
    /// the host's network namespace (its loopback); waits until it runs.
    pub fn run(test: &str, args: &[&str]) -> Result<CtrContainer> {
        let id = crate::marker(&format!("sensor-test-{test}")).replace('_', "-");
        Self::start(test, id, &[], args)
    }

    /// As [`CtrContainer::run`], with a 64-hex id, annotations and
    /// optionally privileged.
    pub fn run_spec(spec: &CtrSpec) -> Result<CtrContainer> {
        let mut extra: Vec<String> = Vec::new();
        for a in &spec.annotations {
            extra.push("--annotation".into());
            extra.push(a.clone());
        }
        if spec.privileged {
            extra.push("--privileged".into());
        }
        let args: Vec<&str> = spec.args.iter().map(String::as_str).collect();
        Self::start(&spec.test, hex_id(&spec.test), &extra, &args)
    }

    fn start(test: &str, id: String, extra: &[String], args: &[&str]) -> Result<CtrContainer> {
        if args.is_empty() {
            bail!("ctr container without a command");
        }
        let image = format!("docker.io/{}", test_image()?);
        checked(
            ctr()
                .args(["run", "-d", "--snapshotter", "native", "--net-host"])
                .arg("--label")
                .arg(format!("sensor-test={test}"))
                .args(extra)
                .args([
                    "--mount",
                    "type=bind,src=/usr,dst=/usr,options=rbind:ro",
                    &image,
                    &id,
                ])
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        )?;
        let c = CtrContainer { id };
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.pid()? == 0 {
            if Instant::now() > deadline {
                bail!("ctr container {} did not start", c.id);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(c)
    }

    /// The task's main process as the host sees it (0 when not running).
    pub fn pid(&self) -> Result<u32> {
        let out = checked(ctr().args(["task", "ls"]))?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (id, pid, status) = (f.next()?, f.next()?, f.next()?);
                (id == self.id && status == "RUNNING").then(|| pid.parse().ok())?
            })
            .next()
            .unwrap_or(0))
    }

    /// `ctr task exec` a command and wait for it.
    pub fn exec(&self, args: &[&str]) -> Result<Output> {
        let exec_id = crate::marker("exec");
        ctr()
            .args(["task", "exec", "--exec-id", &exec_id, &self.id])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("ctr task exec")
    }
}

impl Drop for CtrContainer {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = ctr()
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        quiet(&["task", "kill", "-s", "SIGKILL", &self.id]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.pid().unwrap_or(0) != 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        quiet(&["task", "delete", "--force", &self.id]);
        quiet(&["container", "delete", &self.id]);
    }
}
