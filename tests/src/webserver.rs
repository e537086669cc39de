//! Real Debian-packaged web servers for the live-detection suite, configured
//! from `tests/fixtures/` into a temporary directory (never /etc), started
//! on the host, in a runc container, or in a pseudo-terminal inside a
//! container (`script`: the server's stdin and stderr are the tty, which is
//! its controlling terminal, so it is "interactive").
//!
//! Every server listens on 127.0.0.1 only and exposes one or more "shells":
//! endpoints that run the `X-Cmd` request header with `/bin/sh -c`.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::container::{self, Container};

/// The servers the suite attacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// nginx in front of php-fpm 8.2 serving a PHP web shell.
    NginxPhpFpm,
    /// apache2 (prefork) with mod_php and a `#!/bin/sh` CGI script.
    Apache,
    /// gunicorn serving a WSGI app.
    Gunicorn,
    /// `python3 app.py --port N` (Flask's server).
    Flask,
    /// `node server.js --port N`.
    Node,
    /// Tomcat 10 (`java ... org.apache.catalina.startup.Bootstrap start`) with a JSP.
    Tomcat,
}

/// Where the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Directly on the host, in its own process group.
    Host,
    /// As the process of a runc container.
    Container,
    /// In a runc container, under `script` (a pty as controlling terminal,
    /// stdin and stderr).
    ContainerPty,
}

/// An endpoint that runs `X-Cmd` through `/bin/sh -c`, and the name the
/// sensor must report as the shell's `process.parent.name`: the file the
/// kernel executed, as Elastic names it (a `#!` script is its
/// interpreter: `run.cgi` is `dash`, gunicorn `python3.11`).
#[derive(Debug, Clone, Copy)]
pub struct Shell {
    pub path: &'static str,
    pub parent_name: &'static str,
    /// The seed rule matches this parent (by name, and args where the
    /// rule keys on them). A CGI script or gunicorn, named after their
    /// interpreter with no argument the rule lists, are not matched — as
    /// in Elastic, whose exec events name them so.
    pub seed_rule: bool,
    /// A substring of one of the parent's args that the rule keys on
    /// (for args-based branches), if any.
    pub parent_arg: Option<&'static str>,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::NginxPhpFpm => "nginx+php-fpm",
            Kind::Apache => "apache2",
            Kind::Gunicorn => "gunicorn",
            Kind::Flask => "flask",
            Kind::Node => "node",
            Kind::Tomcat => "tomcat",
        }
    }

    /// Binaries the server needs, with the Debian package that ships each.
    pub fn needs(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::NginxPhpFpm => &[
                ("/usr/sbin/nginx", "nginx"),
                ("/usr/sbin/php-fpm8.2", "php8.2-fpm"),
            ],
            Kind::Apache => &[
                ("/usr/sbin/apache2", "apache2"),
                (
                    "/usr/lib/apache2/modules/libphp8.2.so",
                    "libapache2-mod-php8.2",
                ),
            ],
            Kind::Gunicorn => &[("/usr/bin/gunicorn", "gunicorn")],
            Kind::Flask => &[
                ("/usr/bin/python3", "python3"),
                (
                    "/usr/lib/python3/dist-packages/flask/__init__.py",
                    "python3-flask",
                ),
            ],
            Kind::Node => &[("/usr/bin/node", "nodejs")],
            Kind::Tomcat => &[
                ("/usr/share/tomcat10/bin/bootstrap.jar", "tomcat10"),
                ("/usr/bin/java", "default-jre-headless"),
            ],
        }
    }

    /// What is missing to run this server, if anything.
    pub fn missing(self) -> Option<String> {
        let mut missing: Vec<String> = self
            .needs()
            .iter()
            .filter(|(path, _)| !Path::new(path).exists())
            .map(|(path, pkg)| format!("{path} (package {pkg})"))
            .collect();
        if !container::runc_available() {
            missing.push("runc (package runc)".into());
        }
        (!missing.is_empty()).then(|| format!("{}: missing {}", self.name(), missing.join(", ")))
    }

    /// The endpoints that run commands.
    pub fn shells(self) -> &'static [Shell] {
        const fn sh(
            path: &'static str,
            parent_name: &'static str,
            parent_arg: Option<&'static str>,
        ) -> Shell {
            Shell {
                path,
                parent_name,
                seed_rule: true,
                parent_arg,
            }
        }
        const fn unmatched(path: &'static str, parent_name: &'static str) -> Shell {
            Shell {
                seed_rule: false,
                ..sh(path, parent_name, None)
            }
        }
        const NGINX: &[Shell] = &[sh("/shell.php", "php-fpm8.2", None)];
        const APACHE: &[Shell] = &[
            sh("/shell.php", "apache2", None),
            unmatched("/cgi-bin/run.cgi", "dash"),
        ];
        const GUNICORN: &[Shell] = &[unmatched("/run", "python3.11")];
        const FLASK: &[Shell] = &[sh("/run", "python3.11", Some("/app.py"))];
        const NODE: &[Shell] = &[sh("/run", "node", Some("--port"))];
        const TOMCAT: &[Shell] = &[sh(
            "/shell.jsp",
            "java",
            Some("org.apache.catalina.startup.Bootstrap"),
        )];
        match self {
            Kind::NginxPhpFpm => NGINX,
            Kind::Apache => APACHE,
            Kind::Gunicorn => GUNICORN,
            Kind::Flask => FLASK,
            Kind::Node => NODE,
            Kind::Tomcat => TOMCAT,
        }
    }

    fn start_timeout(self) -> Duration {
        match self {
            Kind::Tomcat => Duration::from_secs(90),
            _ => Duration::from_secs(30),
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// A running server; stopped (container deleted or process group killed)
/// on drop.
pub struct Server {
    pub kind: Kind,
    pub place: Place,
    /// Started before the sensor under test: the sensor knows it from
    /// /proc, not from its exec (set by the test).
    pub seeded: bool,
    port: u16,
    dir: tempfile::TempDir,
    container: Option<Container>,
    host: Option<Child>,
}

fn fixture(rel: &str) -> Result<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel);
    fs::read_to_string(&p).with_context(|| format!("reading fixture {}", p.display()))
}

/// Single-quotes `s` for /bin/sh.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Server {
    /// Configures and starts `kind` at `place`, and waits until its first
    /// shell endpoint answers (without running a command).
    pub fn start(kind: Kind, place: Place) -> Result<Server> {
        if let Some(m) = kind.missing() {
            bail!("{m}");
        }
        let port = free_port()?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("live-{}-", kind.name().replace('+', "-")))
            .tempdir()?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
        let argv = configure(kind, dir.path(), port)?;
        let mut server = Server {
            seeded: false,
            kind,
            place,
            port,
            dir,
            container: None,
            host: None,
        };
        match place {
            Place::Host => {
                let out = fs::File::create(server.dir.path().join("server.out"))?;
                let err = fs::File::create(server.dir.path().join("server.err"))?;
                let child = Command::new(&argv[0])
                    .args(&argv[1..])
                    .current_dir(server.dir.path())
                    .stdin(Stdio::null())
                    .stdout(out)
                    .stderr(err)
                    .process_group(0)
                    .spawn()
                    .with_context(|| format!("starting {}", argv[0]))?;
                server.host = Some(child);
            }
            Place::Container | Place::ContainerPty => {
                let args = if place == Place::Container {
                    argv
                } else {
                    let cmd: Vec<String> = argv.iter().map(|a| sh_quote(a)).collect();
                    // -e: exit with the child's status; -f: flush; output to /dev/null.
                    vec![
                        "/usr/bin/script".into(),
                        "-q".into(),
                        "-e".into(),
                        "-f".into(),
                        "-c".into(),
                        cmd.join(" "),
                        "/dev/null".into(),
                    ]
                };
                let spec = container::Spec {
                    args,
                    env: vec!["SHELL=/bin/sh".into(), "LANG=C.UTF-8".into()],
                    cwd: Some(server.dir.path().display().to_string()),
                    rw_binds: vec![server.dir.path().to_path_buf()],
                    stdin_pipe: place == Place::ContainerPty,
                    netns: None,
                };
                server.container = Some(Container::start(&spec)?);
            }
        }
        server.wait_ready(kind.start_timeout())?;
        Ok(server)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let probe = self.kind.shells()[0].path;
        let mut last;
        loop {
            match http_get(self.port, probe, None, Duration::from_secs(10)) {
                Ok((200, body)) if body.contains("ok") => return Ok(()),
                Ok((status, body)) => last = format!("HTTP {status}: {}", body.trim()),
                Err(e) => last = format!("{e:#}"),
            }
            if !self.is_running() {
                bail!(
                    "{} ({:?}) exited during start-up ({last}):\n{}",
                    self.kind.name(),
                    self.place,
                    self.logs()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} ({:?}) not ready on 127.0.0.1:{} within {timeout:?} ({last}):\n{}",
                    self.kind.name(),
                    self.place,
                    self.port,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the server (or its container) is still running.
    pub fn is_running(&mut self) -> bool {
        if let Some(c) = self.container.as_mut() {
            return c.is_running();
        }
        self.host
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's configuration and state directory (same path inside).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The container, when the server runs in one.
    pub fn container(&self) -> Option<&Container> {
        self.container.as_ref()
    }

    /// The container id, when the server runs in a container.
    pub fn container_id(&self) -> Option<&str> {
        self.container.as_ref().map(Container::id)
    }

    /// The host pid of the server's top process (container init or host child).
    pub fn pid(&self) -> Option<u32> {
        self.container
            .as_ref()
            .map(Container::pid)
            .or_else(|| self.host.as_ref().map(Child::id))
    }

    /// Makes the server run `cmd` through `shell`, returning the response body.
    pub fn run(&self, shell: &Shell, cmd: &str) -> Result<String> {
        let (status, body) = http_get(self.port, shell.path, Some(cmd), Duration::from_secs(30))?;
        if status != 200 {
            bail!(
                "HTTP {status} from {}{}: {body}\n{}",
                self.kind.name(),
                shell.path,
                self.logs()
            );
        }
        Ok(body)
    }

    /// What the server and its container wrote so far (for failures).
    pub fn logs(&self) -> String {
        let mut s = String::new();
        if let Some(c) = &self.container {
            s.push_str(&c.logs());
        }
        if let Ok(rd) = fs::read_dir(self.dir.path()) {
            let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for p in paths {
                let is_log = p
                    .extension()
                    .is_some_and(|e| e == "log" || e == "out" || e == "err");
                if is_log {
                    let text = fs::read_to_string(&p).unwrap_or_default();
                    let tail: String = text
                        .chars()
                        .rev()
                        .take(4000)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    s.push_str(&format!("--- {} ---\n{tail}\n", p.display()));
                }
            }
        }
        s
    }
}

impl Server {
    /// Pids from `*.pid` files in our directory whose process is still
    /// running with our directory in its command line.
    fn own_pid_files(&self) -> Vec<i32> {
        let dir = self.dir.path().display().to_string();
        let Ok(rd) = fs::read_dir(self.dir.path()) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "pid"))
            .filter_map(|p| fs::read_to_string(p).ok()?.trim().parse::<i32>().ok())
            .filter(|pid| *pid > 1)
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&dir))
            })
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.host.take() {
            let pgid = child.id() as i32;
            // SAFETY: kill(2) on the process group we created for our child.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            // php-fpm's master calls setsid() even in the foreground: kill
            // the groups of the servers whose pid files are ours.
            for pid in self.own_pid_files() {
                // SAFETY: kill(2) on a server process (and its group) that we
                // started, checked by its command line naming our directory.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
        // Container: its Drop kills and deletes it.
        self.container.take();
    }
}

/// Writes the server's files into `dir` and returns its command line.
fn configure(kind: Kind, dir: &Path, port: u16) -> Result<Vec<String>> {
    let d = dir.display().to_string();
    let fill = |rel: &str| -> Result<String> {
        Ok(fixture(rel)?
            .replace("@DIR@", &d)
            .replace("@PORT@", &port.to_string()))
    };
    let write = |rel: &str, to: &str, mode: u32| -> Result<()> {
        let p = dir.join(to);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&p, fill(rel)?)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
        Ok(())
    };
    let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    Ok(match kind {
        Kind::NginxPhpFpm => {
            write("nginx-php/nginx.conf", "nginx.conf", 0o644)?;
            write("nginx-php/php-fpm.conf", "php-fpm.conf", 0o644)?;
            write("nginx-php/start.sh", "start.sh", 0o755)?;
            write("nginx-php/shell.php", "www/shell.php", 0o644)?;
            fs::write(dir.join("www/index.html"), "index\n")?;
            fs::create_dir_all(dir.join("nginx-tmp"))?;
            vec!["/bin/sh".into(), format!("{d}/start.sh")]
        }
        Kind::Apache => {
            write("apache/apache2.conf", "apache2.conf", 0o644)?;
            write("nginx-php/shell.php", "www/shell.php", 0o644)?;
            write("apache/run.cgi", "cgi-bin/run.cgi", 0o755)?;
            fs::write(dir.join("www/index.html"), "index\n")?;
            vec![
                "/usr/sbin/apache2".into(),
                "-f".into(),
                format!("{d}/apache2.conf"),
                "-DFOREGROUND".into(),
            ]
        }
        Kind::Gunicorn => {
            write("python/wsgiapp.py", "wsgiapp.py", 0o644)?;
            let mut v = s(&["/usr/bin/gunicorn", "--bind"]);
            v.push(format!("127.0.0.1:{port}"));
            v.extend(s(&["--workers", "1", "--chdir"]));
            v.push(d.clone());
            v.push("wsgiapp:application".into());
            v
        }
        Kind::Flask => {
            write("python/app.py", "app.py", 0o644)?;
            vec![
                "/usr/bin/python3".into(),
                format!("{d}/app.py"),
                "--port".into(),
                port.to_string(),
            ]
        }
        Kind::Node => {
            write("node/server.js", "server.js", 0o644)?;
            vec![
                "/usr/bin/node".into(),
                format!("{d}/server.js"),
                "--port".into(),
                port.to_string(),
            ]
        }
        Kind::Tomcat => {
            write("tomcat/server.xml", "conf/server.xml", 0o644)?;
            write("tomcat/shell.jsp", "webapps/ROOT/shell.jsp", 0o644)?;
            // The stock web.xml maps *.jsp to Jasper; read from the package.
            let web_xml = ["/usr/share/tomcat10/etc/web.xml", "/etc/tomcat10/web.xml"]
                .iter()
                .find_map(|p| fs::read(p).ok())
                .context("tomcat10's web.xml not found")?;
            fs::write(dir.join("conf/web.xml"), web_xml)?;
            for sub in ["logs", "work", "temp"] {
                fs::create_dir_all(dir.join(sub))?;
            }
            vec![
                "/usr/bin/java".into(),
                format!("-Dcatalina.base={d}"),
                "-Dcatalina.home=/usr/share/tomcat10".into(),
                format!("-Djava.io.tmpdir={d}/temp"),
                "-Xmx256m".into(),
                "-XX:+UseSerialGC".into(),
                "-XX:TieredStopAtLevel=1".into(),
                "-cp".into(),
                "/usr/share/tomcat10/bin/bootstrap.jar:/usr/share/tomcat10/bin/tomcat-juli.jar"
                    .into(),
                "org.apache.catalina.startup.Bootstrap".into(),
                "start".into(),
            ]
        }
    })
}

/// A plain HTTP/1.0 GET to 127.0.0.1:`port` (loopback only), with the
/// command in `X-Cmd`; returns the status and body.
pub fn http_get(
    port: u16,
    path: &str,
    cmd: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String)> {
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let mut s = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(c) = cmd {
        if c.contains(['\r', '\n']) {
            bail!("a command in a header cannot contain line breaks");
        }
        req.push_str(&format!("X-Cmd: {c}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("no HTTP status in {head:?}"))?;
    Ok((status, body.to_owned()))
}
