//! The exec storm for `cargo xtask bench`: N worker threads each run
//! spawn /bin/true → waitpid in a tight loop until the shared budget of execs
//! is used up, optionally paced to a fixed global rate.
//!
//! Three ways to start the child are offered (`--spawner`); they differ only
//! in what the storm itself costs:
//! - `fork`: libc fork() + execve() + waitpid() — what a shell does; the
//!   kernel copies the (small) page tables of the xtask process per exec.
//! - `spawn`: posix_spawn() — glibc uses clone(CLONE_VM|CLONE_VFORK), no
//!   page-table copy; the lightest.
//! - `command`: std::process::Command (posix_spawn underneath, plus
//!   std's own setup per spawn).
//!
//! Every exec is a fork/clone event, an exec event and an exit event for a
//! sensor watching the sched tracepoints, whichever spawner is used.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Set by SIGINT/SIGTERM (see `bench::install_stop_handler`); the storm
/// stops early and the bench unwinds through its cleanup guards.
pub static STOP: AtomicBool = AtomicBool::new(false);

pub fn stopped() -> bool {
    STOP.load(Ordering::Relaxed)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Spawner {
    Fork,
    Spawn,
    Command,
}

impl Spawner {
    pub fn arg(self) -> &'static str {
        match self {
            Spawner::Fork => "fork",
            Spawner::Spawn => "spawn",
            Spawner::Command => "command",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Spawner::Fork => "fork+execve",
            Spawner::Spawn => "posix_spawn",
            Spawner::Command => "std Command",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct StormSpec {
    pub execs: u64,
    pub workers: usize,
    /// Paced: execs per second over all workers; None = as fast as possible.
    pub rate: Option<f64>,
    pub spawner: Spawner,
}

#[derive(Clone, Copy, Debug)]
pub struct StormResult {
    pub execs: u64,
    pub failures: u64,
    pub wall: Duration,
}

impl StormResult {
    pub fn rate(&self) -> f64 {
        self.execs as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

const TARGET: &str = "/bin/true";

/// The argv/envp, built before any fork: the child only calls
/// async-signal-safe functions (execve, _exit).
struct Prepared {
    path: CString,
    argv: [*const libc::c_char; 2],
    envp: [*const libc::c_char; 1],
    _arg0: CString,
}

// SAFETY: the raw pointers point into the CStrings owned by the same struct,
// which is only read (never mutated) after construction.
unsafe impl Sync for Prepared {}
unsafe impl Send for Prepared {}

impl Prepared {
    fn new() -> Result<Box<Prepared>> {
        let path = CString::new(TARGET)?;
        let arg0 = CString::new("true")?;
        let mut p = Box::new(Prepared {
            path,
            argv: [std::ptr::null(); 2],
            envp: [std::ptr::null(); 1],
            _arg0: arg0,
        });
        p.argv[0] = p._arg0.as_ptr();
        Ok(p)
    }
}

/// Runs the storm; returns how many execs ran and how long it took.
pub fn run(spec: &StormSpec) -> Result<StormResult> {
    if !std::path::Path::new(TARGET).exists() {
        bail!("{TARGET} not found");
    }
    let prepared = Prepared::new()?;
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let workers = spec.workers.max(1);
    let start = Instant::now();
    let errors: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        if stopped() {
                            return Ok(());
                        }
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= spec.execs {
                            return Ok(());
                        }
                        if let Some(rate) = spec.rate {
                            let due = start + Duration::from_secs_f64(n as f64 / rate);
                            let now = Instant::now();
                            if due > now {
                                std::thread::sleep(due - now);
                            }
                        }
                        let ok = spawn_one(spec.spawner, &prepared)?;
                        done.fetch_add(1, Ordering::Relaxed);
                        if !ok {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| match h.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("{e:#}")),
                Err(_) => Some("storm worker panicked".to_owned()),
            })
            .collect()
    });
    let wall = start.elapsed();
    if let Some(e) = errors.into_iter().next() {
        bail!("storm: {e}");
    }
    if stopped() {
        bail!("interrupted");
    }
    Ok(StormResult {
        execs: done.load(Ordering::Relaxed),
        failures: failures.load(Ordering::Relaxed),
        wall,
    })
}

/// Starts /bin/true once and reaps it; Ok(false) if it did not exit 0.
fn spawn_one(spawner: Spawner, p: &Prepared) -> Result<bool> {
    let pid = match spawner {
        Spawner::Fork => {
            // SAFETY: between fork and execve/_exit the child only makes
            // async-signal-safe calls on memory prepared before the fork.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                unsafe {
                    libc::execve(p.path.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
                    libc::_exit(127);
                }
            }
            if pid < 0 {
                return Err(std::io::Error::last_os_error()).context("fork");
            }
            pid
        }
        Spawner::Spawn => {
            let mut pid: libc::pid_t = 0;
            // SAFETY: argv/envp are NUL-terminated arrays of valid C strings.
            let rc = unsafe {
                libc::posix_spawn(
                    &mut pid,
                    p.path.as_ptr(),
                    std::ptr::null(),
                    std::ptr::null(),
                    p.argv.as_ptr() as *const *mut libc::c_char,
                    p.envp.as_ptr() as *const *mut libc::c_char,
                )
            };
            if rc != 0 {
                return Err(std::io::Error::from_raw_os_error(rc)).context("posix_spawn");
            }
            pid
        }
        Spawner::Command => {
            let status = std::process::Command::new(TARGET)
                .env_clear()
                .stdin(std::process::Stdio::null())
                .status()
                .context("spawning /bin/true")?;
            return Ok(status.success());
        }
    };
    let mut status = 0;
    loop {
        // SAFETY: plain waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("waitpid");
        }
    }
    Ok(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0)
}
