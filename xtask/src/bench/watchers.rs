//! The watchers compared in the exec storm: the sensor, bpftrace and
//! auditd, each started, drained and stopped the same way, and the idle
//! processes that fill the process table.

use super::*;

/// A child process in its own process group, killed (TERM, then KILL) when
/// dropped if still running.
pub(super) struct ChildGuard {
    pub(super) name: &'static str,
    pub(super) child: Child,
}

impl ChildGuard {
    pub(super) fn spawn(name: &'static str, cmd: &mut Command) -> Result<ChildGuard> {
        let child = cmd
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(ChildGuard { name, child })
    }

    pub(super) fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub(super) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `sig`, waits up to `grace`, then SIGKILLs; returns the status.
    pub(super) fn stop(&mut self, sig: libc::c_int, grace: Duration) -> Result<ExitStatus> {
        if let Some(s) = self.exited() {
            return Ok(s);
        }
        // SAFETY: kill(2) on our own, not yet reaped, child.
        unsafe { libc::kill(self.pid(), sig) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(s) = self.exited() {
                return Ok(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let s = self.child.wait()?;
        say(&format!(
            "warning: {} did not stop within {grace:?} of signal {sig}; killed",
            self.name
        ));
        Ok(s)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.stop(libc::SIGTERM, Duration::from_secs(5));
        }
    }
}

/// Lines a child writes to a pipe, collected by a thread.
pub(super) struct Lines {
    pub(super) rx: mpsc::Receiver<String>,
    pub(super) seen: Vec<String>,
}

impl Lines {
    pub(super) fn new(r: impl std::io::Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a line satisfying `pred`; Err on EOF or timeout.
    pub(super) fn wait_for(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            check_stop()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("timed out after {timeout:?}");
            }
            match self.rx.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(line) => {
                    let hit = pred(&line);
                    self.seen.push(line);
                    if hit {
                        return Ok(());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("output closed"),
            }
        }
    }

    pub(super) fn drain(&mut self, settle: Duration) {
        let deadline = Instant::now() + settle;
        while let Ok(l) = self
            .rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(l);
        }
    }

    pub(super) fn tail(&self, n: usize) -> String {
        let start = self.seen.len().saturating_sub(n);
        self.seen[start..].join("\n")
    }
}

// ------------------------------------------------------------------ sensor

pub(super) struct SensorRun {
    pub(super) child: ChildGuard,
    pub(super) stderr: Lines,
}

impl SensorRun {
    pub(super) fn start(bin: &Path, events: bool) -> Result<SensorRun> {
        let mut args = vec!["--alerts", "/dev/null"];
        if events {
            args.extend(["--events", "/dev/null"]);
        }
        SensorRun::start_with(bin, &args)
    }

    /// `sensor run --metrics-addr 127.0.0.1:0` plus `args`.
    pub(super) fn start_with(bin: &Path, args: &[&str]) -> Result<SensorRun> {
        let mut cmd = Command::new(bin);
        cmd.args(["run", "--metrics-addr", "127.0.0.1:0"])
            .args(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = ChildGuard::spawn("sensor", &mut cmd)?;
        let pipe = child.child.stderr.take().context("sensor stderr")?;
        let mut run = SensorRun {
            child,
            stderr: Lines::new(pipe),
        };
        if let Err(e) = run
            .stderr
            .wait_for(Duration::from_secs(60), |l| l == "sensor: ready")
        {
            run.stderr.drain(Duration::from_millis(300));
            bail!(
                "sensor did not become ready ({e}):\n{}",
                run.stderr.tail(20)
            );
        }
        Ok(run)
    }

    /// SIGTERM, wait for the summary line, return it as key → number.
    pub(super) fn stop(&mut self) -> Result<BTreeMap<String, u64>> {
        let status = self.child.stop(libc::SIGTERM, Duration::from_secs(15))?;
        self.stderr.drain(Duration::from_millis(500));
        if !status.success() {
            bail!("sensor exited with {status}:\n{}", self.stderr.tail(20));
        }
        let line = self
            .stderr
            .seen
            .iter()
            .find_map(|l| l.strip_prefix("sensor: summary "))
            .ok_or_else(|| anyhow!("no summary line from the sensor:\n{}", self.stderr.tail(20)))?;
        Ok(parse_flat_json_numbers(line))
    }

    pub(super) fn seeded(&self) -> Option<u64> {
        self.stderr.seen.iter().find_map(|l| {
            let rest = l.strip_prefix("sensor: process table seeded with ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
    }
}

impl Watcher for SensorRun {
    fn cpu_pids(&self) -> Vec<i32> {
        vec![self.child.pid()]
    }
    fn rss_pid(&self) -> Option<i32> {
        Some(self.child.pid())
    }
    fn finish(&mut self, _storm: &StormResult) -> Result<(Option<u64>, Option<u64>)> {
        let s = self.stop()?;
        let lost = ["lost_exec", "lost_fork", "lost_exit"]
            .iter()
            .map(|k| s.get(*k).copied().unwrap_or(0))
            .sum();
        Ok((Some(lost), s.get("exec").copied()))
    }
}

/// `{"a":1,"b":2}` → {a: 1, b: 2}; non-numeric values are skipped.
pub(super) fn parse_flat_json_numbers(s: &str) -> BTreeMap<String, u64> {
    let body = s.trim().trim_start_matches('{').trim_end_matches('}');
    body.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once(':')?;
            Some((
                k.trim().trim_matches('"').to_owned(),
                v.trim().parse().ok()?,
            ))
        })
        .collect()
}

// ---------------------------------------------------------------- bpftrace

pub(super) fn probe_bpftrace(no_install: bool) -> Result<()> {
    if which("bpftrace").is_none() {
        if no_install {
            bail!("bpftrace is not installed (--no-install)");
        }
        crate::setup::Apt::default().install(&["bpftrace"])?;
    }
    let out = Command::new("bpftrace")
        .arg("--version")
        .output()
        .context("running bpftrace --version")?;
    if !out.status.success() {
        bail!(
            "bpftrace --version failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

pub(super) struct BpftraceRun {
    pub(super) child: ChildGuard,
    pub(super) out: PathBuf,
    pub(super) err: PathBuf,
}

impl BpftraceRun {
    pub(super) fn start(work: &Path) -> Result<BpftraceRun> {
        let out = work.join("bpftrace.out");
        let err = work.join("bpftrace.err");
        let mut cmd = Command::new("bpftrace");
        cmd.args(["-e", BPFTRACE_PROGRAM])
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out)?)
            .stderr(fs::File::create(&err)?);
        let mut run = BpftraceRun {
            child: ChildGuard::spawn("bpftrace", &mut cmd)?,
            out,
            err,
        };
        // BEGIN fires once every probe is attached.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = fs::read_to_string(&run.out).unwrap_or_default();
            if text.lines().any(|l| l == "bench-ready") {
                return Ok(run);
            }
            if let Some(status) = run.child.exited() {
                bail!(
                    "bpftrace exited with {status} before attaching: {}",
                    last_lines(&fs::read_to_string(&run.err).unwrap_or_default(), 5)
                );
            }
            if Instant::now() > deadline {
                bail!("bpftrace did not attach within 60 s");
            }
            nap(Duration::from_millis(50))?;
        }
    }
}

impl Watcher for BpftraceRun {
    fn cpu_pids(&self) -> Vec<i32> {
        vec![self.child.pid()]
    }
    fn rss_pid(&self) -> Option<i32> {
        Some(self.child.pid())
    }
    fn finish(&mut self, _storm: &StormResult) -> Result<(Option<u64>, Option<u64>)> {
        self.child.stop(libc::SIGINT, Duration::from_secs(10))?;
        let out = fs::read(&self.out).unwrap_or_default();
        let err = fs::read_to_string(&self.err).unwrap_or_default();
        let seen = out
            .split(|b| *b == b'\n')
            .filter(|l| *l == b"/bin/true")
            .count() as u64;
        // bpftrace reports perf-buffer overflows as "Lost N events".
        let text = String::from_utf8_lossy(&out);
        let lost = text
            .lines()
            .chain(err.lines())
            .filter_map(|l| {
                let rest = l.trim().strip_prefix("Lost ")?;
                rest.strip_suffix(" events")?.trim().parse::<u64>().ok()
            })
            .sum();
        let _ = fs::remove_file(&self.out);
        Ok((Some(lost), Some(seen)))
    }
}

// ------------------------------------------------------------------ auditd

pub(super) fn probe_auditd(no_install: bool) -> Result<()> {
    if which("auditd").is_none() || which("auditctl").is_none() {
        if no_install {
            bail!("auditd is not installed (--no-install)");
        }
        crate::setup::Apt::default().install(&["auditd"])?;
    }
    let st = audit_status()?;
    if let Some(pid) = st.get("pid").filter(|p| **p != 0) {
        bail!("an audit daemon already runs (pid {pid}); the bench does not touch it");
    }
    Ok(())
}

/// `auditctl -s` as key → number.
pub(super) fn audit_status() -> Result<BTreeMap<String, u64>> {
    let out = Command::new("auditctl")
        .arg("-s")
        .output()
        .context("running auditctl -s")?;
    if !out.status.success() {
        bail!(
            "auditctl -s failed (no audit support or no CAP_AUDIT_CONTROL?): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect())
}

pub(super) fn auditctl(args: &[&str]) -> Result<()> {
    let out = Command::new("auditctl")
        .args(args)
        .output()
        .context("running auditctl")?;
    if !out.status.success() {
        bail!(
            "auditctl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// auditd in the foreground with its log in the bench's temporary
/// directory, Debian's default backlog settings, and one execve rule.
/// Dropping it removes the rule, stops auditd and restores the kernel's
/// audit settings as found.
pub(super) struct AuditRun {
    pub(super) saved: BTreeMap<String, u64>,
    pub(super) child: Option<ChildGuard>,
    pub(super) rule_added: bool,
    pub(super) dir: PathBuf,
    pub(super) lost_before: u64,
}

impl AuditRun {
    pub(super) fn start(work: &Path) -> Result<AuditRun> {
        let saved = audit_status()?;
        if let Some(pid) = saved.get("pid").filter(|p| **p != 0) {
            bail!("an audit daemon already runs (pid {pid})");
        }
        let dir = work.join("audit");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        let base = fs::read_to_string("/etc/audit/auditd.conf").unwrap_or_default();
        fs::write(
            dir.join("auditd.conf"),
            auditd_conf(&base, &dir.join("audit.log")),
        )?;
        fs::set_permissions(
            dir.join("auditd.conf"),
            std::os::unix::fs::PermissionsExt::from_mode(0o640),
        )?;
        let mut run = AuditRun {
            lost_before: saved.get("lost").copied().unwrap_or(0),
            saved,
            child: None,
            rule_added: false,
            dir: dir.clone(),
        };
        let mut cmd = Command::new("auditd");
        cmd.arg("-n")
            .arg("-c")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.join("auditd.stdout"))?)
            .stderr(fs::File::create(dir.join("auditd.stderr"))?);
        let child = ChildGuard::spawn("auditd", &mut cmd)?;
        let pid = child.pid() as u64;
        run.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if audit_status()?.get("pid") == Some(&pid) {
                break;
            }
            if let Some(status) = run.child.as_mut().and_then(ChildGuard::exited) {
                bail!(
                    "auditd exited with {status}: {}",
                    last_lines(
                        &fs::read_to_string(dir.join("auditd.stderr")).unwrap_or_default(),
                        5
                    )
                );
            }
            if Instant::now() > deadline {
                bail!("auditd did not register with the kernel within 15 s");
            }
            nap(Duration::from_millis(50))?;
        }
        auditctl(&["-b", "8192", "--backlog_wait_time", "60000"])?;
        run.rule_added = true; // set first: a half-added rule is still removed
        auditctl(&[
            "-a",
            "always,exit",
            "-F",
            "arch=b64",
            "-S",
            "execve",
            "-k",
            AUDIT_KEY,
        ])?;
        run.lost_before = audit_status()?.get("lost").copied().unwrap_or(0);
        Ok(run)
    }

    pub(super) fn cleanup(&mut self) -> Result<()> {
        let mut errors = Vec::new();
        if self.rule_added {
            if let Err(e) = auditctl(&["-D", "-k", AUDIT_KEY]) {
                errors.push(format!("{e:#}"));
            } else {
                self.rule_added = false;
            }
        }
        if let Some(mut c) = self.child.take() {
            if let Err(e) = c.stop(libc::SIGTERM, Duration::from_secs(10)) {
                errors.push(format!("{e:#}"));
            }
        }
        let mut restore: Vec<String> = Vec::new();
        for (key, flag) in [
            ("backlog_limit", "-b"),
            ("backlog_wait_time", "--backlog_wait_time"),
            ("enabled", "-e"),
        ] {
            if let Some(v) = self.saved.get(key) {
                restore.push(flag.to_owned());
                restore.push(v.to_string());
            }
        }
        if !restore.is_empty() {
            let r: Vec<&str> = restore.iter().map(String::as_str).collect();
            if let Err(e) = auditctl(&r) {
                errors.push(format!("{e:#}"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            bail!("audit cleanup: {}", errors.join("; "))
        }
    }
}

pub(super) fn auditd_conf(base: &str, log: &Path) -> String {
    let mut out = String::new();
    let mut have_log = false;
    for line in base.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        match key {
            "log_file" => {
                have_log = true;
                let _ = writeln!(out, "log_file = {}", log.display());
            }
            // One storm's records in one file, to count them.
            "max_log_file" => out.push_str("max_log_file = 1024\n"),
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if !have_log {
        let _ = writeln!(out, "log_file = {}", log.display());
        out.push_str("log_format = ENRICHED\nflush = INCREMENTAL_ASYNC\nfreq = 50\n");
    }
    out
}

impl Watcher for AuditRun {
    fn cpu_pids(&self) -> Vec<i32> {
        // The daemon and the kernel thread that feeds it.
        let mut p: Vec<i32> = self.child.iter().map(ChildGuard::pid).collect();
        p.extend(pid_of_comm("kauditd"));
        p
    }
    fn rss_pid(&self) -> Option<i32> {
        self.child.as_ref().map(ChildGuard::pid)
    }
    fn finish(&mut self, _storm: &StormResult) -> Result<(Option<u64>, Option<u64>)> {
        let lost_after = audit_status()?.get("lost").copied().unwrap_or(0);
        self.cleanup()?;
        let log = fs::read(self.dir.join("audit.log")).unwrap_or_default();
        let seen = log
            .split(|b| *b == b'\n')
            .filter(|l| l.starts_with(b"type=EXECVE ") && contains(l, b"a0=\"true\""))
            .count() as u64;
        let _ = fs::remove_dir_all(&self.dir);
        Ok((
            Some(lost_after.saturating_sub(self.lost_before)),
            Some(seen),
        ))
    }
}

impl Drop for AuditRun {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            say(&format!("warning: {e:#}"));
        }
    }
}

pub(super) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

pub(super) fn pid_of_comm(comm: &str) -> Option<i32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let c = fs::read_to_string(e.path().join("comm")).ok()?;
        (c.trim() == comm).then_some(pid)
    })
}

pub(super) fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

pub(super) fn last_lines(s: &str, n: usize) -> String {
    let v: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    v[v.len().saturating_sub(n)..].join(" | ")
}

// ---------------------------------------------------- live processes (RSS)

/// Sleeping processes in one process group; all SIGKILLed and reaped when
/// dropped.
pub(super) struct Sleepers {
    pub(super) pgid: i32,
    pub(super) children: Vec<Child>,
}

impl Sleepers {
    pub(super) fn start(n: usize) -> Result<Sleepers> {
        let mut s = Sleepers {
            pgid: 0,
            children: Vec::with_capacity(n),
        };
        for _ in 0..n {
            check_stop()?;
            let child = Command::new("sleep")
                .arg("600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(s.pgid)
                .spawn()
                .with_context(|| format!("starting sleeper #{}", s.children.len() + 1))?;
            if s.pgid == 0 {
                s.pgid = child.id() as i32;
            }
            s.children.push(child);
        }
        Ok(s)
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        if self.pgid > 0 {
            // SAFETY: the group holds only the sleepers started here.
            unsafe { libc::killpg(self.pgid, libc::SIGKILL) };
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
