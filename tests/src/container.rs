//! Real OCI containers for the end-to-end tests, run with `runc`.
//!
//! The root filesystem is an empty directory with the host's `/usr /etc
//! /bin /sbin /lib /lib64 /var` bind-mounted read-only (merged-/usr symlinks
//! are recreated as symlinks), a tmpfs on `/tmp` and `/run`, and whatever
//! writable bind mounts the caller asks for. The container shares the host's
//! network namespace, so a server inside listens on the host's loopback,
//! unless the spec names one (a test's veth pair). Its
//! cgroup is Kubernetes-shaped: `/kubepods/besteffort/pod<uid>/<64 hex id>`,
//! the id the sensor must report as `container.id`.
//!
//! `runc run` stays in the foreground as our child, its stdio on files (or a
//! pipe for stdin, kept open for the container's life); Drop kills and
//! deletes the container and removes the pod's cgroup directories.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// Host directories bind-mounted read-only into every container.
const HOST_DIRS: &[&str] = &["/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/var"];

/// Docker's default capability set: enough for servers that start as root
/// and switch to `www-data`.
const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// What to run and what the container may write.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// The container's process (absolute path first).
    pub args: Vec<String>,
    /// Extra `KEY=value` environment entries (PATH and TERM are set).
    pub env: Vec<String>,
    /// Working directory inside the container (default `/`).
    pub cwd: Option<String>,
    /// Writable bind mounts: host directory -> the same path inside.
    pub rw_binds: Vec<PathBuf>,
    /// Keep a pipe on the process's stdin (open while the container runs)
    /// instead of /dev/null.
    pub stdin_pipe: bool,
    /// Join this network namespace (e.g. a test's veth pair,
    /// `netns::VethPair::client_path`) instead of sharing the host's.
    pub netns: Option<PathBuf>,
}

/// A running container; killed and deleted on drop.
pub struct Container {
    id: String,
    pod_uid: String,
    pid: u32,
    dir: tempfile::TempDir,
    child: Option<Child>,
    _stdin: Option<ChildStdin>,
}

/// `n` random bytes from the kernel.
fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `runc` can be run at all.
pub fn runc_available() -> bool {
    Command::new("runc")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Container {
    /// Creates the bundle, starts `runc run`, and waits until the container
    /// is running (at most 20 s).
    pub fn start(spec: &Spec) -> Result<Container> {
        if spec.args.is_empty() {
            bail!("container spec without a command");
        }
        let id = hex(&random_bytes(32)?);
        let u = random_bytes(16)?;
        let pod_uid = format!(
            "{}-{}-{}-{}-{}",
            hex(&u[0..4]),
            hex(&u[4..6]),
            hex(&u[6..8]),
            hex(&u[8..10]),
            hex(&u[10..16])
        );
        let dir = tempfile::Builder::new().prefix("ctr-").tempdir()?;
        let bundle = dir.path().join("bundle");
        let rootfs = bundle.join("rootfs");
        let state = dir.path().join("state");
        fs::create_dir_all(&rootfs)?;
        fs::create_dir_all(&state)?;
        let out = Command::new("runc")
            .arg("spec")
            .arg("--bundle")
            .arg(&bundle)
            .output()
            .context("running `runc spec` (is the runc package installed?)")?;
        if !out.status.success() {
            bail!("runc spec failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let config_path = bundle.join("config.json");
        let mut config: Value = serde_json::from_slice(&fs::read(&config_path)?)?;

        // Root filesystem: host dirs read-only, merged-/usr symlinks as symlinks.
        let mut mounts: Vec<Value> = config["mounts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m["destination"] != "/sys/fs/cgroup")
            .collect();
        for d in HOST_DIRS {
            let host = Path::new(d);
            let Ok(meta) = fs::symlink_metadata(host) else {
                continue;
            };
            let inside = rootfs.join(d.trim_start_matches('/'));
            if meta.file_type().is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(host)?, &inside)?;
            } else {
                fs::create_dir_all(&inside)?;
                mounts.push(json!({
                    "destination": d, "type": "bind", "source": d,
                    "options": ["rbind", "ro"],
                }));
            }
        }
        for (dest, mode) in [("/tmp", "1777"), ("/run", "755")] {
            mounts.push(json!({
                "destination": dest, "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", format!("mode={mode}"), "size=65536k"],
            }));
        }
        for host in &spec.rw_binds {
            let host = host
                .canonicalize()
                .with_context(|| format!("{}", host.display()))?;
            mounts.push(json!({
                "destination": host, "type": "bind", "source": host,
                "options": ["rbind", "rw"],
            }));
        }
        config["mounts"] = Value::Array(mounts);
        config["root"] = json!({ "path": "rootfs", "readonly": false });

        let process = &mut config["process"];
        process["terminal"] = json!(false);
        process["args"] = json!(spec.args);
        let mut env = vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            "TERM=xterm".to_owned(),
            "HOME=/root".to_owned(),
        ];
        env.extend(spec.env.iter().cloned());
        process["env"] = json!(env);
        process["cwd"] = json!(spec.cwd.as_deref().unwrap_or("/"));
        process["noNewPrivileges"] = json!(false);
        process["capabilities"] = json!({
            "bounding": CAPS, "effective": CAPS, "permitted": CAPS,
        });
        if let Some(p) = process.as_object_mut() {
            p.remove("rlimits");
        }
        config["hostname"] = json!(format!("ctr-{}", &id[..12]));

        let linux = &mut config["linux"];
        linux["cgroupsPath"] = json!(format!("/kubepods/besteffort/pod{pod_uid}/{id}"));
        let namespaces: Vec<Value> = linux["namespaces"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n["type"] != "network")
            .chain(
                spec.netns
                    .iter()
                    .map(|p| json!({ "type": "network", "path": p })),
            )
            .collect();
        linux["namespaces"] = Value::Array(namespaces);
        fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;

        let stdout = fs::File::create(dir.path().join("stdout.log"))?;
        let stderr = fs::File::create(dir.path().join("stderr.log"))?;
        let mut child = Command::new("runc")
            .arg("--root")
            .arg(&state)
            .arg("run")
            .arg("--bundle")
            .arg(&bundle)
            .arg(&id)
            .stdin(if spec.stdin_pipe {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .context("spawning `runc run`")?;
        let stdin = child.stdin.take();
        let mut c = Container {
            id,
            pod_uid,
            pid: 0,
            dir,
            child: Some(child),
            _stdin: stdin,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(child) = c.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!(
                        "`runc run` exited with {status} before the container was running:\n{}",
                        c.logs()
                    );
                }
            }
            if let Ok(st) = c.state() {
                if st["status"] == "running" {
                    c.pid = st["pid"].as_u64().unwrap_or(0) as u32;
                    return Ok(c);
                }
            }
            if Instant::now() > deadline {
                bail!("container {} not running within 20 s:\n{}", c.id, c.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The 64-hex container id (the last cgroup path component).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The pod uid in the cgroup path.
    pub fn pod_uid(&self) -> &str {
        &self.pod_uid
    }

    /// The container's init process, as a host pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The container's cgroup path.
    pub fn cgroup_path(&self) -> String {
        format!("/kubepods/besteffort/pod{}/{}", self.pod_uid, self.id)
    }

    fn runc(&self) -> Command {
        let mut c = Command::new("runc");
        c.arg("--root").arg(self.dir.path().join("state"));
        c
    }

    /// `runc state` as JSON.
    pub fn state(&self) -> Result<Value> {
        let out = self.runc().arg("state").arg(&self.id).output()?;
        if !out.status.success() {
            bail!("runc state: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// Whether the container's process is still running.
    pub fn is_running(&mut self) -> bool {
        let alive = self
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        alive && self.state().is_ok_and(|s| s["status"] == "running")
    }

    /// Runs a command inside the container (`runc exec`), returning its output.
    pub fn exec(&self, args: &[&str]) -> Result<Output> {
        let out = self
            .runc()
            .arg("exec")
            .arg(&self.id)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("runc exec")?;
        Ok(out)
    }

    /// What `runc run` and the container's process wrote so far.
    pub fn logs(&self) -> String {
        let read = |n: &str| fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
        format!(
            "--- stdout ---\n{}--- stderr ---\n{}",
            read("stdout.log"),
            read("stderr.log")
        )
    }

    fn cleanup(&mut self) {
        let _ = self
            .runc()
            .args(["kill", &self.id, "KILL"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self
            .runc()
            .args(["delete", "-f", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        remove_pod_cgroups(&self.pod_uid, &self.id);
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Removes `<hierarchy>/kubepods/besteffort/pod<uid>[/<id>]` under every
/// mounted cgroup hierarchy (v1 controllers and the unified one), if runc
/// left them. Shared parents (`/kubepods`, `besteffort`) stay.
fn remove_pod_cgroups(pod_uid: &str, id: &str) {
    let Ok(mounts) = fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(_), Some(mnt), Some(fstype)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let pod = Path::new(mnt).join(format!("kubepods/besteffort/pod{pod_uid}"));
        let _ = fs::remove_dir(pod.join(id));
        let _ = fs::remove_dir(&pod);
    }
}
