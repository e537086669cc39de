//! A stand-in for a compromised web server, for attacks that need a server
//! to do what real ones don't on their own: rename itself with
//! `prctl(PR_SET_NAME)`, call `setsid` and take a pty as its controlling
//! terminal, or exec a command line padded past any capture limit.
//!
//! It is a small C program compiled with the system's `cc` into a file of
//! the name under test (`nginx`, …): the name the kernel reports for its
//! exec is then that file's, exactly as for the real server. It reads one
//! command per line on fd 3 (a pipe kept apart from stdin, which it may
//! give to a pty) and answers `ok` on stdout after each:
//!
//! - `RENAME <name>`: `prctl(PR_SET_NAME, name)`;
//! - `TAKE-PTY`: `setsid`, a new pty as controlling terminal on fd 0 and 2;
//! - `SH <script>`: fork, exec `/bin/sh -c <script>`, wait;
//! - `PAD <n> <bytes> <script>`: as `SH`, with `n` more arguments of
//!   `bytes` spaces after the script, so argv is `n * bytes` longer;
//! - `EXEC <path> <script>`: fork, exec `<path> -c <script>` (argv[0] the
//!   path as given: a symlink's name, say), wait;
//! - `STDIN <file> <script>`: fork, open `<file>` as stdin, exec
//!   `/dev/stdin -c <script>`, wait;
//! - `MEMFD <arg>`: fork, copy `/bin/true` into a memfd named `payload`,
//!   `fexecve` it with argv `[payload, arg]`, wait;
//! - `REEXEC <arg>`: fork, exec `/proc/self/exe` with argv
//!   `[reexec-child, arg]` (the child exits at once), wait;
//! - `CLONE3 <cgroup dir>`: `clone3(CLONE_INTO_CGROUP)` a child straight
//!   into that cgroup (as systemd and crun start processes); it sleeps
//!   200 ms without exec'ing and exits; wait.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use anyhow::{bail, Context, Result};

const SOURCE: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sched.h>
#include <signal.h>

extern char **environ;

static void run(char **args) {
    pid_t pid = fork();
    if (pid == 0) {
        execv(args[0], args);
        _exit(127);
    }
    if (pid > 0) waitpid(pid, NULL, 0);
}

static void memfd_true(const char *arg) {
    pid_t pid = fork();
    if (pid == 0) {
        int src = open("/bin/true", O_RDONLY | O_CLOEXEC);
        int fd = memfd_create("payload", 0);
        char buf[65536];
        ssize_t n;
        if (src < 0 || fd < 0) _exit(126);
        while ((n = read(src, buf, sizeof buf)) > 0)
            if (write(fd, buf, n) != n) _exit(126);
        char *args[] = {"payload", (char *)arg, NULL};
        fexecve(fd, args, environ);
        _exit(127);
    }
    if (pid > 0) waitpid(pid, NULL, 0);
}

int main(int argc, char **argv) {
    if (argc >= 1 && strcmp(argv[0], "reexec-child") == 0) return 0;
    FILE *cmds = fdopen(3, "r");
    if (!cmds) return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ready\n");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, cmds)) > 0) {
        if (line[len - 1] == '\n') line[--len] = 0;
        if (strncmp(line, "RENAME ", 7) == 0) {
            prctl(PR_SET_NAME, line + 7, 0, 0, 0);
        } else if (strcmp(line, "TAKE-PTY") == 0) {
            setsid();
            int m = posix_openpt(O_RDWR | O_NOCTTY);
            if (m < 0 || grantpt(m) || unlockpt(m)) return 3;
            int s = open(ptsname(m), O_RDWR);
            if (s < 0 || ioctl(s, TIOCSCTTY, 0) < 0) return 4;
            dup2(s, 0);
            dup2(s, 2);
        } else if (strncmp(line, "SH ", 3) == 0) {
            char *args[] = {"/bin/sh", "-c", line + 3, NULL};
            run(args);
        } else if (strncmp(line, "PAD ", 4) == 0) {
            char *rest = line + 4, *end;
            long n = strtol(rest, &end, 10);
            long bytes = strtol(end, &end, 10);
            char *script = end + 1;
            char *pad = malloc(bytes + 1);
            char **args = calloc(n + 5, sizeof *args);
            if (!pad || !args || n < 0) return 5;
            memset(pad, ' ', bytes);
            pad[bytes] = 0;
            args[0] = "/bin/sh";
            args[1] = "-c";
            args[2] = script;
            for (long i = 0; i < n; i++) args[3 + i] = pad;
            run(args);
            free(pad);
            free(args);
        } else if (strncmp(line, "EXEC ", 5) == 0) {
            char *path = line + 5;
            char *script = strchr(path, ' ');
            if (!script) return 6;
            *script++ = 0;
            char *args[] = {path, "-c", script, NULL};
            run(args);
        } else if (strncmp(line, "STDIN ", 6) == 0) {
            char *file = line + 6;
            char *script = strchr(file, ' ');
            if (!script) return 7;
            *script++ = 0;
            pid_t pid = fork();
            if (pid == 0) {
                int fd = open(file, O_RDONLY);
                if (fd < 0 || dup2(fd, 0) < 0) _exit(126);
                char *args[] = {"/dev/stdin", "-c", script, NULL};
                execv("/dev/stdin", args);
                _exit(127);
            }
            if (pid > 0) waitpid(pid, NULL, 0);
        } else if (strncmp(line, "MEMFD ", 6) == 0) {
            memfd_true(line + 6);
        } else if (strncmp(line, "CLONE3 ", 7) == 0) {
            int cg = open(line + 7, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            struct clone_args args;
            memset(&args, 0, sizeof args);
            args.flags = CLONE_INTO_CGROUP;
            args.exit_signal = SIGCHLD;
            args.cgroup = (unsigned long long)cg;
            long pid = cg < 0 ? -1 : syscall(SYS_clone3, &args, sizeof args);
            if (pid == 0) {
                usleep(200000);
                _exit(0);
            }
            if (pid > 0) waitpid((pid_t)pid, NULL, 0);
            if (cg >= 0) close(cg);
        } else if (strncmp(line, "REEXEC ", 7) == 0) {
            char *args[] = {"reexec-child", line + 7, NULL};
            pid_t pid = fork();
            if (pid == 0) {
                execv("/proc/self/exe", args);
                _exit(127);
            }
            if (pid > 0) waitpid(pid, NULL, 0);
        }
        printf("ok\n");
    }
    return 0;
}
"#;

/// Compiles the fake server into `dir/<name>`.
pub fn build(dir: &Path, name: &str) -> Result<PathBuf> {
    let src = dir.join("fake_server.c");
    std::fs::write(&src, SOURCE)?;
    let bin = dir.join(name);
    let out = Command::new("cc")
        .arg("-O1")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .output()
        .context("running cc (the fake server is compiled at test time)")?;
    if !out.status.success() {
        bail!("cc failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(bin)
}

/// A running fake server.
pub struct FakeServer {
    child: Child,
    commands: std::fs::File,
    replies: BufReader<ChildStdout>,
}

impl FakeServer {
    /// Starts `bin` (stdin and stderr on /dev/null: a daemon, not
    /// interactive) in the cgroup directory `cgroup` when given, and waits
    /// until it runs there.
    pub fn start(bin: &Path, cgroup: Option<&Path>) -> Result<FakeServer> {
        let (read_end, write_end) = pipe()?;
        let mut cmd = Command::new(bin);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let fd = read_end.as_raw_fd();
        let procs = cgroup.map(|d| d.join("cgroup.procs"));
        let procs_c = procs
            .as_ref()
            .map(|p| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()))
            .transpose()?;
        // SAFETY: between fork and exec only async-signal-safe calls (dup2,
        // open, write, close) on memory prepared before the fork.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                if fd == 3 {
                    // Already in place: only drop close-on-exec.
                    if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(path) = &procs_c {
                    // "0" moves the writing process itself.
                    let f = libc::open(path.as_ptr(), libc::O_WRONLY);
                    if f < 0 || libc::write(f, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(f);
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        drop(read_end);
        let stdout = child.stdout.take().context("fake server stdout")?;
        let mut server = FakeServer {
            child,
            commands: std::fs::File::from(write_end),
            replies: BufReader::new(stdout),
        };
        server.expect("ready")?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn expect(&mut self, want: &str) -> Result<()> {
        let mut line = String::new();
        self.replies.read_line(&mut line)?;
        if line.trim_end() != want {
            bail!("fake server said {line:?}, expected {want:?}");
        }
        Ok(())
    }

    /// Sends one command line and waits for its `ok`.
    pub fn send(&mut self, command: &str) -> Result<()> {
        writeln!(self.commands, "{command}")?;
        self.commands.flush()?;
        self.expect("ok")
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("pipe2: {}", std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned here only.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
